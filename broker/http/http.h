/*
 * http.h - ztb-broker's HTTP server on libmicrohttpd.
 *
 * One mechanism serves both the public API (TCP) and the admin API (unix
 * socket): a daemon with a route table. The server reads the request body
 * into a bounded buffer, then calls the route's handler once with the whole
 * request. The handler fills an http_resp; the server sends it and records
 * metrics. Requests refused for their shape never reach a handler: an
 * HTTP/1.1 request without exactly one Host (400), a Content-Length over the
 * limit (413 before any of the body is read, no "100 Continue"), a chunked
 * body growing past it (413 where it crosses, then the connection closes).
 *
 * Handlers run on libmicrohttpd's worker threads and must be thread-safe.
 * They never see a partial body, and they never write to the connection.
 */
#ifndef ZTB_BROKER_HTTP_H
#define ZTB_BROKER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ztb/error.h>

#include "common/buf.h"

struct MHD_Connection;

#define HTTP_MAX_EXTRA_HEADERS 8

struct http_req {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* without the query string, percent-decoded by libmicrohttpd */
    const char *target;  /* the request target byte for byte as sent (path and query,
                            nothing decoded), or NULL if unknown (no memory, a NUL in it) */
    const uint8_t *body; /* never NULL: an empty body is "" */
    size_t body_len;
    const char *content_type;    /* NULL if absent; parameters included */
    struct MHD_Connection *conn; /* for header lookups: http_req_header() */
    const struct sockaddr *peer; /* NULL on the unix socket */
    uint64_t start_ns;
    void *server_ctx;     /* the ctx given to http_server_start */
    int route_id;         /* index of the matched route */
    const char *trace_id; /* "" or the W3C trace id of a valid traceparent header */
};

struct http_resp {
    unsigned status;
    const char *content_type; /* default application/json */
    ztb_buf body;             /* bounded; initialised by the server */
    const char *hdr_name[HTTP_MAX_EXTRA_HEADERS];
    char hdr_value[HTTP_MAX_EXTRA_HEADERS][1024]; /* a challenge with resource_metadata */
    unsigned nhdr;
};

typedef void (*http_handler)(struct http_req *req, struct http_resp *resp);

struct http_route {
    const char *method; /* NULL: any */
    const char *path;   /* exact match, or a prefix when it ends with '*' */
    http_handler fn;
    const char *metric_name; /* label in /metrics */
};

struct http_limits {
    /* TLS (all NULL: plain HTTP). PEM text, read before privileges are
     * dropped; client_ca set: clients may present a certificate chaining
     * to it (requested, not required). */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    const char *tls_client_ca_pem;
    size_t max_body;
    unsigned threads;
    unsigned connection_limit;
    unsigned per_ip_connection_limit;
    unsigned connection_timeout_s;
    /* Optional: answers requests whose body is over the limit (instead of
     * the generic 413), with the body empty and req->path set, e.g. to
     * audit the refusal. Part of the limits so that it is in place before
     * the first worker thread runs (it used to be set after the start, a
     * data race with the workers reading it). */
    http_handler on_too_large;
    /* Optional: asked before every matched route's handler; returns 1 to
     * call it, or 0 with the refusal in resp (e.g. the admin API's
     * read-only role, admin_roles.h). */
    int (*gate)(struct http_req *req, const struct http_route *r, struct http_resp *resp);
};

struct http_server;

/*
 * The access log: one line per request ("http.access": server, request id,
 * method, path without the query, status, latency in microseconds, the
 * agent when a handler authenticated one, the trace id). On by default;
 * process-wide, set before any server starts. Refusals anyone can cause
 * (4xx with no agent authenticated, 429) are sampled: 20 per 10 s, then a
 * log.suppressed summary.
 */
void http_access_log_enable(int on);

/* Name the agent the current request authenticated as, for its access log
 * line (the calling thread's request; copied). */
void http_access_note_agent(const char *agent);

/*
 * Start serving on listen_fd (a bound, listening socket, TCP or unix) with
 * the given routes (the array must outlive the server). ctx is handed to
 * handlers as req->server_ctx. Returns NULL and logs on failure.
 */
struct http_server *http_server_start(const char *name, int listen_fd,
                                      const struct http_route *routes, size_t nroutes,
                                      const struct http_limits *lim, void *ctx);

/*
 * Replace the TLS certificate chain and key the TLS listener presents from
 * the next handshake on (PEM text; the first certificate must be the key's).
 * Returns INVALID_ARG with the reason in err, the pair in force unchanged.
 * http_tls_free drops them at exit.
 */
ztb_err http_tls_reload(const char *cert_pem, const char *key_pem, char *err, size_t errcap);
void http_tls_free(void);

/* Drain: from now on a new connection is closed unanswered and every answer
 * carries Connection: close; requests in flight go on. Safe from any thread. */
void http_server_quiesce(struct http_server *s);

/* Connections still open (idle keep-alive ones included). */
unsigned http_server_connections(struct http_server *s);

/* Requests begun (request line read) and not yet answered and done: what a
 * drain waits for. An idle keep-alive connection holds none. */
unsigned http_server_in_flight(struct http_server *s);

/* Stop and free (closes remaining connections). NULL is fine. */
void http_server_stop(struct http_server *s);

/* A request header (case-insensitive name), NULL if absent. */
const char *http_req_header(const struct http_req *req, const char *name);

/*
 * A request header that must appear at most once (case-insensitive name):
 * 1 and *value (borrowed for the request) when it is there exactly once
 * without a NUL byte inside, 0 when absent, -1 when repeated or holding a
 * NUL (a proxy and ztb could otherwise read different values).
 */
int http_req_header_once(const struct http_req *req, const char *name, const char **value);

/* The same for a query argument (name compared exactly; the value decoded
 * by libmicrohttpd): 1, 0 when absent, -1 when repeated or holding a NUL. */
int http_req_query_once(const struct http_req *req, const char *name, const char **value);

/* Add a response header (name must be a static string). */
void http_resp_header(struct http_resp *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Set a JSON body from a jansson-free literal or built text. */
void http_resp_json(struct http_resp *resp, unsigned status, const char *json);

/*
 * An RFC 6749 §5.2 error with its ztb error name (wire/error_response.h):
 * {"error":code,"error_description":desc,"ztb_error":NAME}. Every error
 * answer of the broker is built here. http_resp_error names the ztb error
 * the code stands for (access_denied: ACCESS_DENIED); http_resp_error_as
 * names err (ZTB_OK: the code's), for refusals clients must tell apart
 * (QUARANTINED, AUDIENCE_KILLED, JOIN_TOKEN...). desc is escaped; it must
 * never contain a secret.
 */
void http_resp_error(struct http_resp *resp, unsigned status, const char *code, const char *desc);
void http_resp_error_as(struct http_resp *resp, unsigned status, const char *code, ztb_err err,
                        const char *desc);

/* Set a JSON body from a jansson value (the reference is taken). */
struct json_t;
void http_resp_json_value(struct http_resp *resp, unsigned status, struct json_t *value);

/*
 * Parse the request body as a JSON object, through the gate in front of
 * jansson (common/json_gate.h): Content-Type must be application/json, no
 * NUL byte, duplicate keys are refused, depth is bounded. For bodies of
 * authenticated callers. On failure fills resp with 415 or 400
 * (invalid_request, naming the problem) and returns NULL. The caller owns
 * the result (json_decref).
 */
struct json_t *http_req_json_object(const struct http_req *req, struct http_resp *resp);

/*
 * Read a JSON object body that arrives before authentication (enrollment,
 * renewal) with the strict reader (common/json_reader.h), no jansson: for
 * each of the n names, vals[i] is a malloc'd copy of that member's string
 * value, or NULL if it is absent or not a string; *members counts all the
 * object's members. Returns 1, or 0 with resp filled (415, or 400
 * invalid_request naming the JSON problem) and every vals[i] NULL. The
 * caller frees each vals[i] (http_json_strings_free).
 */
int http_req_json_strings(const struct http_req *req, struct http_resp *resp,
                          const char *const *names, size_t n, char **vals, size_t *members);

/* Free what http_req_json_strings returned (wiped: they may be credentials). */
void http_json_strings_free(char **vals, size_t n);

/* 1 if the Content-Type's media type is ctype (parameters ignored). */
int http_req_content_type_is(const struct http_req *req, const char *ctype);

/*
 * The client certificate the peer presented in the TLS handshake (DER,
 * borrowed for the request's life). NOT_FOUND without TLS or certificate.
 * The handshake already checked it chains to the client CA.
 */
ztb_err http_req_client_cert(const struct http_req *req, const uint8_t **der, size_t *len);

/*
 * A zeroed scratch area of HTTP_CONN_SCRATCH bytes that lives as long as the
 * TCP connection (all its kept-alive requests), for caching what was learned
 * once per connection (e.g. the verified client certificate). NULL if the
 * connection has none.
 */
#define HTTP_CONN_SCRATCH 256
void *http_req_conn_scratch(const struct http_req *req);

/* The peer's uid on a unix socket (SO_PEERCRED). -1 if unknown. */
long http_req_peer_uid(const struct http_req *req);

/*
 * Make room for conns connections plus reserve other descriptors (Redis
 * connections, files, pipes) under RLIMIT_NOFILE: the soft limit is raised
 * to conns + reserve, and the hard limit too where the process may (root,
 * before dropping privileges); otherwise as far as the hard limit. Returns
 * the number of connections that fit: conns, or fewer (never below
 * HTTP_MIN_CONNECTIONS) when the limit cannot be raised that far; then it
 * logs a warning naming the numbers and the fix. Call before starting the
 * servers, and give them the returned limit.
 */
#define HTTP_MIN_CONNECTIONS 16
unsigned http_fit_nofile(unsigned conns, unsigned reserve);

/*
 * The client's IP address (for policy source_ip conditions): the peer's,
 * or behind a --trusted-proxy the client its X-Forwarded-For names
 * (broker/http/proxy.h). *family 4 (addr gets 4 bytes) or 6 (16 bytes); 0
 * when unknown (the unix socket, a trusted proxy's malformed header). addr
 * has room for 16 bytes and is zeroed first.
 */
void http_req_peer_ip(const struct http_req *req, uint8_t *family, uint8_t addr[16]);

/* Bind a TCP listening socket; host may be an IPv4/IPv6 literal or name. */
ztb_err http_listen_tcp(const char *host, uint16_t port, int *fd_out, uint16_t *bound_port,
                        char *err, size_t errcap);

/* Bind a unix listening socket at path with mode (an old socket is replaced).
 * PERMISSION if path's directory is writable by anyone but its owner, or
 * its owner is neither us nor root (another user could take the socket's
 * place). */
ztb_err http_listen_unix(const char *path, unsigned mode, int *fd_out, char *err, size_t errcap);

#endif /* ZTB_BROKER_HTTP_H */
