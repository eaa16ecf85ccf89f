/*
 * http.c - the broker's HTTP server (see http.h).
 *
 * libmicrohttpd runs an epoll thread pool (four threads per core by default, at most 64).
 * For each request the access handler is called several times: first with
 * no body (we check the request line and headers; the per-request state
 * was made by on_uri, which keeps the raw request target), then once per
 * body chunk (appended to a bounded buffer), then once more with no data
 * (we route, call the handler and queue the response).
 *
 * A request refused for its shape is answered at once, from whichever call
 * finds the fault: an HTTP/1.1 request without exactly one Host header (400)
 * or with a Content-Length over the limit (413) on the first call, before
 * libmicrohttpd sends "100 Continue" or reads a byte of the body; a body
 * that grows past the limit (a chunked body has no length) on the chunk
 * that crosses it. A response queued before the body is complete makes
 * libmicrohttpd read nothing more and close the connection once it is sent,
 * so an endless body costs the sender, not us.
 *
 * Limits from outside: body (max_body), header block (connection memory
 * limit), connections (total and per IP: libmicrohttpd closes a connection
 * over its address's share as it accepts it), and an idle/slow-connection
 * timeout, so a slowloris client only holds its own connection slots. The
 * connection limit only protects if the process has a descriptor for every
 * connection it allows: http_fit_nofile() makes sure it has.
 */
#define _GNU_SOURCE /* struct ucred */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <jansson.h>
#include <microhttpd.h>

#include "broker/audit/audit.h"
#include "broker/http/http.h"
#include "broker/http/proxy.h"
#include "broker/http/traceparent.h"
#include "broker/http/metrics.h"
#include "common/guard.h"
#include "common/json_gate.h"
#include "common/json_reader.h"
#include "common/log.h"
#include "common/log_sample.h"
#include "common/secret.h"
#include "wire/error_response.h"

#define RESP_BODY_MAX       (1u << 20)
#define RESP_BODY_HINT      2048
#define HEADER_MEMORY_LIMIT (32u * 1024u)

struct http_server {
    struct MHD_Daemon *d;
    const char *name;
    const struct http_route *routes;
    size_t nroutes;
    struct http_limits lim;
    void *ctx;
    _Atomic int closing;        /* http_server_quiesce: accept nothing, close after each answer */
    _Atomic unsigned in_flight; /* requests begun and not yet completed */
};

struct req_state {
    ztb_buf body;
    int started;  /* the first call (request line and headers) was seen: in_flight counts it */
    int answered; /* a response is queued: ignore whatever comes after */
    uint64_t start_ns;
    char *target;         /* the request target as sent (on_uri), or NULL */
    const char *repeated; /* REFUSE_REPEATED: the field sent twice */
    const char *uri_at;   /* where libmicrohttpd held it (on_uri to the first call only) */
    size_t uri_len;
};

/* The access log (http_access_log_enable) and the agent of the request
 * this thread is answering (http_access_note_agent). */
static int access_log_on = 1;
static _Thread_local char access_agent[64];
static atomic_uint_fast64_t request_seq;
static uint32_t request_base; /* random per process: ids differ across restarts */

void http_access_log_enable(int on)
{
    access_log_on = on != 0;
}

void http_access_note_agent(const char *agent)
{
    snprintf(access_agent, sizeof(access_agent), "%s", agent ? agent : "");
}

/*
 * The TLS certificate chain and key the public listener presents, swapped by
 * http_tls_reload (SIGHUP). libmicrohttpd asks for them at every handshake
 * (MHD_OPTION_HTTPS_CERT_CALLBACK); GnuTLS may still use the ones it was
 * handed while that handshake runs, so a replaced pair is kept until the
 * process ends (a few KB per reload) and never freed under a handshake.
 * One per process: only the public listener speaks TLS.
 */
#define TLS_CHAIN_MAX 8
struct tls_pair {
    gnutls_pcert_st chain[TLS_CHAIN_MAX];
    unsigned n;
    gnutls_privkey_t key;
    struct tls_pair *older; /* replaced pairs, kept (see above) */
};
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_pair *tls_current;

static int tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                        const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                        gnutls_pcert_st **pcert, unsigned int *pcert_length,
                        gnutls_privkey_t *privkey)
{
    (void)session;
    (void)req_ca_dn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    pthread_mutex_lock(&tls_lock);
    struct tls_pair *t = tls_current;
    pthread_mutex_unlock(&tls_lock);
    if (t == NULL)
        return -1;
    *pcert = t->chain;
    *pcert_length = t->n;
    *privkey = t->key;
    return 0;
}

static void tls_pair_free(struct tls_pair *t)
{
    while (t != NULL) {
        struct tls_pair *older = t->older;
        for (unsigned i = 0; i < t->n; i++)
            gnutls_pcert_deinit(&t->chain[i]);
        if (t->key != NULL)
            gnutls_privkey_deinit(t->key);
        free(t);
        t = older;
    }
}

ztb_err http_tls_reload(const char *cert_pem, const char *key_pem, char *err, size_t errcap)
{
    struct tls_pair *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ZTB_ERR_NOMEM;
    /* GnuTLS only reads the data of an import's datum */
    gnutls_datum_t c = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    gnutls_datum_t k = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
    unsigned n = TLS_CHAIN_MAX;
    int rc = gnutls_pcert_list_import_x509_raw(t->chain, &n, &c, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || n == 0) {
        snprintf(err, errcap,
                 "the certificate file holds no PEM certificate chain (at most %d): %s",
                 TLS_CHAIN_MAX, gnutls_strerror(rc));
        free(t);
        return ZTB_ERR_INVALID_ARG;
    }
    t->n = n;
    if (gnutls_privkey_init(&t->key) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(t->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        snprintf(err, errcap, "the key file holds no usable PEM private key: %s",
                 gnutls_strerror(rc));
        tls_pair_free(t);
        return ZTB_ERR_INVALID_ARG;
    }
    /* the key must be the certificate's: compare the public keys' ids */
    gnutls_pubkey_t pub = NULL;
    unsigned char id_cert[64], id_key[64];
    size_t n_cert = sizeof(id_cert), n_key = sizeof(id_key);
    int same = gnutls_pubkey_init(&pub) >= 0 &&
               gnutls_pubkey_import_privkey(pub, t->key, 0, 0) >= 0 &&
               gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, id_key, &n_key) >= 0 &&
               gnutls_pubkey_get_key_id(t->chain[0].pubkey, GNUTLS_KEYID_USE_SHA256, id_cert,
                                        &n_cert) >= 0 &&
               n_cert == n_key && memcmp(id_cert, id_key, n_key) == 0;
    if (pub != NULL)
        gnutls_pubkey_deinit(pub);
    if (!same) {
        snprintf(err, errcap,
                 "the key is not the certificate's (the first certificate of the "
                 "file must be the server's own)");
        tls_pair_free(t);
        return ZTB_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&tls_lock);
    t->older = tls_current;
    tls_current = t;
    pthread_mutex_unlock(&tls_lock);
    return ZTB_OK;
}

void http_tls_free(void)
{
    pthread_mutex_lock(&tls_lock);
    struct tls_pair *t = tls_current;
    tls_current = NULL;
    pthread_mutex_unlock(&tls_lock);
    tls_pair_free(t);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *http_req_header(const struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

struct header_count {
    const char *name;
    const char *value;
    size_t value_len;
    int n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_len, const char *value, size_t value_len)
{
    (void)kind;
    struct header_count *h = cls;
    if (key != NULL && strlen(h->name) == key_len && strncasecmp(key, h->name, key_len) == 0) {
        h->n++;
        h->value = value;
        h->value_len = value_len;
    }
    return MHD_YES;
}

int http_req_header_once(const struct http_req *req, const char *name, const char **value)
{
    struct header_count h = {.name = name};
    *value = NULL;
    MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, count_header, &h);
    if (h.n == 0)
        return 0;
    if (h.n > 1 || h.value == NULL || memchr(h.value, '\0', h.value_len) != NULL)
        return -1;
    *value = h.value;
    return 1;
}

/* Query arguments are compared case-sensitively (RFC 3986), headers not. */
static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_len, const char *value, size_t value_len)
{
    (void)kind;
    struct header_count *h = cls;
    if (key != NULL && strlen(h->name) == key_len && memcmp(key, h->name, key_len) == 0) {
        h->n++;
        h->value = value;
        h->value_len = value_len;
    }
    return MHD_YES;
}

int http_req_query_once(const struct http_req *req, const char *name, const char **value)
{
    struct header_count h = {.name = name};
    *value = NULL;
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, count_arg, &h);
    if (h.n == 0)
        return 0;
    if (h.n > 1 || h.value == NULL || memchr(h.value, '\0', h.value_len) != NULL)
        return -1;
    *value = h.value;
    return 1;
}

void http_resp_header(struct http_resp *resp, const char *name, const char *fmt, ...)
{
    if (resp->nhdr >= HTTP_MAX_EXTRA_HEADERS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(resp->hdr_value[resp->nhdr], sizeof(resp->hdr_value[0]), fmt, ap);
    va_end(ap);
    resp->hdr_name[resp->nhdr++] = name;
}

void http_resp_json(struct http_resp *resp, unsigned status, const char *json)
{
    resp->status = status;
    resp->content_type = "application/json";
    ztb_buf_reset(&resp->body);
    ztb_buf_append_str(&resp->body, json);
}

void http_resp_error_as(struct http_resp *resp, unsigned status, const char *code, ztb_err err,
                        const char *desc)
{
    resp->status = status;
    resp->content_type = "application/json";
    ztb_buf_reset(&resp->body);
    if (err == ZTB_OK)
        err = error_response_for_code(code, status);
    (void)error_response_write(&resp->body, code, err, desc); /* the body's error says it */
}

void http_resp_error(struct http_resp *resp, unsigned status, const char *code, const char *desc)
{
    http_resp_error_as(resp, status, code, ZTB_OK, desc);
}

void http_resp_json_value(struct http_resp *resp, unsigned status, json_t *value)
{
    resp->status = status;
    resp->content_type = "application/json";
    ztb_buf_reset(&resp->body);
    char *s = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(value);
    if (s == NULL) {
        http_resp_error(resp, 500, "server_error", "cannot render the response");
        return;
    }
    ztb_buf_append_str(&resp->body, s);
    ztb_free_secret_str(s);
}

int http_req_content_type_is(const struct http_req *req, const char *ctype)
{
    const char *ct = req->content_type;
    if (ct == NULL)
        return 0;
    size_t n = strlen(ctype);
    if (strncasecmp(ct, ctype, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* Deeper than this is not a request, it is an attack on the parser. */
#define JSON_MAX_DEPTH 16

json_t *http_req_json_object(const struct http_req *req, struct http_resp *resp)
{
    if (!http_req_content_type_is(req, "application/json")) {
        http_resp_error(resp, 415, "invalid_request", "Content-Type must be application/json");
        return NULL;
    }
    /* the body's size was bounded by max_body before it was read */
    char why[200];
    json_t *j = NULL;
    if (ztb_json_gate_load(req->body, req->body_len, SIZE_MAX, JSON_MAX_DEPTH, 0, &j, why,
                           sizeof(why)) != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_request", why);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_resp_error(resp, 400, "invalid_request", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* One pass over the object: the wanted string members copied out. */
static ztb_err read_strings(struct jr *r, const char *const *names, size_t n, char **vals,
                            size_t cap, size_t *members)
{
    ZTB_GUARD(jr_enter_object(r));
    for (;;) {
        ztb_span name;
        int more;
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            break;
        (*members)++;
        size_t i = 0;
        while (i < n && !ztb_span_eq_str(name, names[i]))
            i++;
        if (i == n || jr_peek(r) != JR_STRING) {
            ZTB_GUARD(jr_skip(r));
            continue;
        }
        vals[i] = calloc(1, cap); /* an unescaped string is never longer than the body */
        ZTB_ENSURE(vals[i] != NULL, ZTB_ERR_NOMEM);
        ZTB_GUARD(jr_read_string(r, vals[i], cap, NULL));
    }
    return jr_finish(r);
}

void http_json_strings_free(char **vals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (vals[i] != NULL)
            ztb_free_secret_str(vals[i]);
        vals[i] = NULL;
    }
}

int http_req_json_strings(const struct http_req *req, struct http_resp *resp,
                          const char *const *names, size_t n, char **vals, size_t *members)
{
    for (size_t i = 0; i < n; i++)
        vals[i] = NULL;
    *members = 0;
    if (!http_req_content_type_is(req, "application/json")) {
        http_resp_error(resp, 415, "invalid_request", "Content-Type must be application/json");
        return 0;
    }
    struct jr r;
    jr_init(&r, req->body, req->body_len);
    ztb_err rv = read_strings(&r, names, n, vals, req->body_len + 1, members);
    if (rv != ZTB_OK) {
        http_json_strings_free(vals, n);
        char msg[160];
        if (rv == ZTB_ERR_NOMEM)
            snprintf(msg, sizeof(msg), "out of memory");
        else
            snprintf(msg, sizeof(msg), "the body must be one strict JSON object: %s (at byte %zu)",
                     jr_why(&r), jr_where(&r));
        http_resp_error(resp, rv == ZTB_ERR_NOMEM ? 503 : 400,
                        rv == ZTB_ERR_NOMEM ? "temporarily_unavailable" : "invalid_request", msg);
        return 0;
    }
    return 1;
}

ztb_err http_req_client_cert(const struct http_req *req, const uint8_t **der, size_t *len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL)
        return ZTB_ERR_NOT_FOUND;
    unsigned int n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(ci->tls_session, &n);
    if (certs == NULL || n == 0 || certs[0].size == 0)
        return ZTB_ERR_NOT_FOUND;
    *der = certs[0].data;
    *len = certs[0].size;
    return ZTB_OK;
}

void *http_req_conn_scratch(const struct http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, HTTP_CONN_SCRATCH);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context != NULL) {
        ztb_free_secret(*socket_context, HTTP_CONN_SCRATCH);
        *socket_context = NULL;
    }
}

long http_req_peer_uid(const struct http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL)
        return -1;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return -1;
    return (long)cred.uid;
}

void http_req_peer_ip(const struct http_req *req, uint8_t *family, uint8_t addr[16])
{
    uint8_t pf = 0, pa[16] = {0};
    *family = 0;
    memset(addr, 0, 16);
    if (req->peer == NULL)
        return;
    if (req->peer->sa_family == AF_INET) {
        pf = 4;
        memcpy(pa, &((const struct sockaddr_in *)req->peer)->sin_addr, 4);
    } else if (req->peer->sa_family == AF_INET6) {
        pf = 6;
        memcpy(pa, &((const struct sockaddr_in6 *)req->peer)->sin6_addr, 16);
    }
    if (!trusted_proxies_any() || req->conn == NULL) {
        *family = pf;
        memcpy(addr, pa, 16);
        return;
    }
    /* behind a trusted proxy: the client it names (proxy.h) */
    const char *xff = NULL;
    int n = http_req_header_once(req, "X-Forwarded-For", &xff);
    trusted_proxies_client(pf, pa, n == 1 ? xff : NULL, n < 0, family, addr);
}

static const struct http_route *route(const struct http_server *s, const char *method,
                                      const char *path, int *id, int *wrong_method)
{
    *wrong_method = 0;
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct http_route *r = &s->routes[i];
        size_t pl = strlen(r->path);
        int match = pl > 0 && r->path[pl - 1] == '*' ? strncmp(path, r->path, pl - 1) == 0
                                                     : strcmp(path, r->path) == 0;
        if (!match)
            continue;
        if (r->method != NULL && strcmp(r->method, method) != 0) {
            *wrong_method = 1;
            continue;
        }
        *id = (int)i;
        return r;
    }
    return NULL;
}

static void wipe_body(void *cls)
{
    ztb_free_secret_str(cls);
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, struct http_resp *resp)
{
    size_t len = resp->body.len;
    if (ztb_buf_error(&resp->body) != ZTB_OK) {
        /* the handler's body did not fit: a bug, never a partial body */
        http_resp_error(resp, 500, "server_error", "response too large");
        len = resp->body.len;
    }
    /* bodies carry tokens and credentials: wiped when libmicrohttpd is done */
    char *body = ztb_buf_steal(&resp->body, &len);
    struct MHD_Response *r =
        body ? MHD_create_response_from_buffer_with_free_callback_cls(len, body, wipe_body, body)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        ztb_free_secret_str(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type",
                            resp->content_type ? resp->content_type : "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    for (unsigned i = 0; i < resp->nhdr; i++) {
        if (strcmp(resp->hdr_name[i], "Cache-Control") == 0)
            MHD_del_response_header(r, "Cache-Control", "no-store");
        MHD_add_response_header(r, resp->hdr_name[i], resp->hdr_value[i]);
    }
    enum MHD_Result ok = MHD_queue_response(conn, resp->status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Write all n bytes of p on the connection's socket (TLS or not). 0 on success. */
static int write_all(struct MHD_Connection *conn, const char *p, size_t n)
{
    const union MHD_ConnectionInfo *tls =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (fd == NULL)
        return -1;
    for (int spins = 0; n > 0 && spins < 100; spins++) {
        ssize_t w;
        if (tls != NULL && tls->tls_session != NULL)
            w = gnutls_record_send(tls->tls_session, p, n);
        else
            w = send(fd->connect_fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED ||
                   (w < 0 && (errno == EAGAIN || errno == EINTR))) {
            usleep(1000); /* the socket is non-blocking; an answer is < 1 KB */
        } else {
            return -1;
        }
    }
    if (n == 0 && (tls == NULL || tls->tls_session == NULL))
        shutdown(fd->connect_fd, SHUT_WR); /* FIN after the answer, before any reset */
    return n == 0 ? 0 : -1;
}

/*
 * Send resp (an error answer) straight on the socket, in the middle of the
 * request's body. libmicrohttpd 0.9.75 cannot queue a response once it reads
 * a body (MHD_queue_response refuses in that state), and reading the rest of
 * an endless body to answer at its end is what the limit is there to stop.
 * The caller then returns MHD_NO: libmicrohttpd closes the connection and
 * reads nothing more. Returns MHD_NO.
 */
static enum MHD_Result send_resp_and_close(struct MHD_Connection *conn, struct http_resp *resp)
{
    ztb_buf out;
    ztb_buf_init(&out, 4096);
    const char *reason = MHD_get_reason_phrase_for(resp->status);
    ztb_buf_printf(&out,
                   "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                   "X-Content-Type-Options: nosniff\r\nConnection: close\r\n",
                   resp->status, reason ? reason : "",
                   resp->content_type ? resp->content_type : "application/json");
    for (unsigned i = 0; i < resp->nhdr; i++)
        if (strcasecmp(resp->hdr_name[i], "Connection") != 0 &&
            strcasecmp(resp->hdr_name[i], "Cache-Control") != 0)
            ztb_buf_printf(&out, "%s: %s\r\n", resp->hdr_name[i], resp->hdr_value[i]);
    ztb_buf_printf(&out, "Content-Length: %zu\r\n\r\n", resp->body.len);
    ztb_buf_append(&out, resp->body.data, resp->body.len);
    if (ztb_buf_error(&out) == ZTB_OK)
        (void)write_all(conn, (const char *)out.data, out.len);
    ztb_buf_free(&out);
    ztb_buf_free(&resp->body);
    return MHD_NO;
}

/*
 * The fields a request may carry once at most. RFC 9110 §5.3: only a
 * list-based field may be repeated; with two Authorization (or
 * Content-Type, Content-Length) headers, which one a handler, a proxy in
 * front or a gateway behind reads is anyone's guess, so the request is
 * refused before any handler sees it (RFC 6750 §3.1: 400 invalid_request).
 * Host is also needed once in HTTP/1.1 (RFC 9112 §3.2). DPoP is not here:
 * the endpoints that read it refuse a second one with the error RFC 9449
 * gives them (http_req_header_once). Host first: HOST_FIELD.
 */
static const char *const singleton_fields[] = {MHD_HTTP_HEADER_HOST, "Authorization",
                                               "Content-Type", "Content-Length"};
enum { HOST_FIELD = 0, N_SINGLETONS = sizeof(singleton_fields) / sizeof(singleton_fields[0]) };

/* MHD_KeyValueIterator counting each singleton field (cls: unsigned[N_SINGLETONS]). */
static enum MHD_Result count_singletons(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    (void)kind;
    (void)value;
    unsigned *n = cls;
    for (size_t i = 0; key != NULL && i < N_SINGLETONS; i++)
        if (strcasecmp(key, singleton_fields[i]) == 0)
            n[i]++;
    return MHD_YES;
}

/* Why a request is refused before its handler runs (answer() words each). */
enum refusal {
    REFUSE_NONE,
    REFUSE_HOST,       /* 400: HTTP/1.1 without exactly one Host (RFC 9112 §3.2) */
    REFUSE_REPEATED,   /* 400: a field of singleton_fields twice (st->repeated) */
    REFUSE_NUL_TARGET, /* 400: a raw NUL in the request target */
    REFUSE_TOO_LARGE,  /* 413: the body is over the limit */
};

/*
 * What is wrong with the request line and headers, before any body: an
 * HTTP/1.1 request without exactly one Host, a field that may come once
 * coming twice (its name in st->repeated), or a Content-Length over the
 * limit (or not a number). REFUSE_NONE if nothing.
 */
static enum refusal check_headers(const struct http_server *s, struct req_state *st,
                                  struct MHD_Connection *conn, const char *version)
{
    unsigned n[N_SINGLETONS] = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_singletons, n);
    if (version != NULL && strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && n[HOST_FIELD] != 1)
        return REFUSE_HOST;
    for (size_t i = 0; i < N_SINGLETONS; i++)
        if (n[i] > 1) {
            st->repeated = singleton_fields[i];
            return REFUSE_REPEATED;
        }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl != NULL) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno != 0 || *end != '\0' || v > s->lim.max_body)
            return REFUSE_TOO_LARGE;
    }
    return REFUSE_NONE;
}

/*
 * Answer the request: a refusal or, with REFUSE_NONE, the
 * route's handler on the whole body. Queues the response, or with mid_body
 * (part of the body read, the rest refused) sends it at once and returns
 * MHD_NO so that the connection is closed. st->answered is set so that later
 * calls for the same request do nothing.
 */
static enum MHD_Result answer(struct http_server *s, struct req_state *st,
                              struct MHD_Connection *conn, const char *url, const char *method,
                              enum refusal refuse, int mid_body)
{
    st->answered = 1;
    struct http_resp resp = {0};
    ztb_buf_init_secret(&resp.body, RESP_BODY_MAX);
    /* one allocation for the usual answer (a token response is ~1.3 KB):
     * doubling from 64 bytes cost five copies and wipes of the token */
    ztb_buf_reserve(&resp.body, RESP_BODY_HINT);
    struct http_req req = {
        .method = method,
        .path = url,
        .target = st->target,
        /* never NULL (an empty body has no buffer): handlers copy from it */
        .body = st->body.data != NULL ? st->body.data : (const uint8_t *)"",
        .body_len = st->body.len,
        .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"),
        .conn = conn,
        .start_ns = st->start_ns,
        .server_ctx = s->ctx,
        .route_id = -1,
    };
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    req.peer = ci ? ci->client_addr : NULL;
    if (req.peer != NULL && req.peer->sa_family != AF_INET && req.peer->sa_family != AF_INET6)
        req.peer = NULL;

    /* a trace id from a strictly valid traceparent (exactly one): into the
     * audit records this request causes and its access log line */
    char trace_id[TRACE_ID_HEX + 1] = "";
    const char *tp = NULL;
    if (http_req_header_once(&req, "traceparent", &tp) == 1)
        (void)traceparent_read(tp, strlen(tp), trace_id);
    req.trace_id = trace_id;
    audit_set_trace_id(trace_id);
    access_agent[0] = '\0';

    const char *metric = "unknown";
    if (refuse == REFUSE_HOST) {
        http_resp_error(&resp, 400, "invalid_request",
                        "an HTTP/1.1 request needs exactly one Host header");
    } else if (refuse == REFUSE_REPEATED) {
        char why[96];
        snprintf(why, sizeof(why), "more than one %s header (RFC 9110 allows one)", st->repeated);
        http_resp_error(&resp, 400, "invalid_request", why);
    } else if (refuse == REFUSE_NUL_TARGET) {
        http_resp_error(&resp, 400, "invalid_request",
                        "the request target holds a NUL byte (RFC 9112 allows no control "
                        "character there)");
    } else if (refuse == REFUSE_TOO_LARGE) {
        http_resp_error(&resp, 413, "invalid_request", "request body too large");
        if (s->lim.on_too_large != NULL) {
            req.body_len = 0;
            s->lim.on_too_large(&req, &resp);
        }
    } else {
        int wrong_method;
        const struct http_route *r = route(s, method, url, &req.route_id, &wrong_method);
        if (r != NULL) {
            metric = r->metric_name;
            resp.status = 200;
            if (s->lim.gate == NULL || s->lim.gate(&req, r, &resp))
                r->fn(&req, &resp);
        } else if (wrong_method) {
            http_resp_error(&resp, 405, "invalid_request", "method not allowed");
        } else {
            http_resp_error(&resp, 404, "not_found", "no such endpoint");
        }
    }
    /* a refused request's rest is never read; a draining server sends its
     * keep-alive clients to reconnect elsewhere */
    if (refuse != REFUSE_NONE || atomic_load_explicit(&s->closing, memory_order_relaxed))
        http_resp_header(&resp, "Connection", "close");
    uint64_t took_ns = now_ns() - st->start_ns;
    metrics_request(s->name, metric, resp.status, took_ns);
    audit_set_trace_id(NULL);
    /* a refusal anyone can cause (4xx before any agent authenticated, or a
     * rate limit) is sampled: a flood must not become the operator's disk
     * (common/log_sample.h); /metrics counts every one */
    static struct ztb_log_sampler refusals = ZTB_LOG_SAMPLER_INIT(20, 10);
    int anyones =
        (resp.status >= 400 && resp.status < 500 && access_agent[0] == '\0') || resp.status == 429;
    if (access_log_on && (!anyones || ztb_log_sample(&refusals, ZTB_LOG_INFO, "http.access"))) {
        char id[17];
        snprintf(id, sizeof(id), "%08x%08x", request_base,
                 (unsigned)(atomic_fetch_add(&request_seq, 1) & 0xffffffffu));
        /* the path only: MHD gives it without the query string */
        ztb_log(ZTB_LOG_INFO, "http.access", ZTB_F_STR("server", s->name), ZTB_F_STR("id", id),
                ZTB_F_STR("method", method), ZTB_F_STR("path", url),
                ZTB_F_INT("status", resp.status), ZTB_F_INT("us", took_ns / 1000),
                access_agent[0] ? ZTB_F_STR("agent", access_agent) : ZTB_F_SKIP_,
                trace_id[0] ? ZTB_F_STR("trace_id", trace_id) : ZTB_F_SKIP_);
    }
    if (mid_body)
        return send_resp_and_close(conn, &resp);
    return send_resp(conn, &resp);
}

/* A request's state, its body buffer bounded by the server's limit; NULL on
 * no memory. Freed by on_completed. */
static struct req_state *state_new(const struct http_server *s)
{
    struct req_state *st = calloc(1, sizeof(*st));
    if (st != NULL)
        ztb_buf_init_secret(&st->body, s->lim.max_body); /* bodies carry credentials */
    return st;
}

/*
 * MHD_OPTION_URI_LOG_CALLBACK: called once per request with the request
 * target exactly as the client sent it, before libmicrohttpd cuts off the
 * query and percent-decodes the path it gives on_request. The copy is
 * req->target (GET /v1/authorize/<path> needs the original bytes); every
 * other endpoint keeps routing on the decoded path. Returns the request's
 * state, which becomes its *con_cls (NULL on no memory: on_request then
 * makes one without a target).
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    struct req_state *st = state_new(cls);
    if (st != NULL && uri != NULL) {
        st->target = strdup(uri); /* NULL on no memory: the target is unknown */
        st->uri_at = uri;
        st->uri_len = strlen(uri);
    }
    return st;
}

/*
 * Whether the target may not be all of what the client sent: the one thing
 * a C string cannot show is a NUL byte inside it. libmicrohttpd 0.9.75
 * parses the request line in place, so a whole target ends where the NUL
 * that replaced the space before the version is, right before the version
 * string; a target cut short by a NUL of the client's ends earlier. Returns
 * 1 (and drops st->target) for such a target: the request is refused, on
 * every endpoint, rather than routed on the part before the NUL. (Should a
 * later libmicrohttpd copy the strings instead, every request is refused
 * and the tests fail at once, rather than decide on a cut target.) 0 when
 * the target is whole, or unknown (on_uri had no memory: no st->target,
 * which the prefix form of /v1/authorize refuses).
 */
static int check_target(struct req_state *st, const char *version)
{
    int cut = st->uri_at != NULL && (version == NULL || version != st->uri_at + st->uri_len + 1);
    if (cut) {
        ztb_free_secret_str(st->target);
        st->target = NULL;
    }
    st->uri_at = NULL;
    return cut;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct http_server *s = cls;
    struct req_state *st = *con_cls;

    if (st == NULL) {
        st = state_new(s);
        if (st == NULL)
            return MHD_NO;
        *con_cls = st;
    }
    if (!st->started) {
        st->started = 1;
        atomic_fetch_add(&s->in_flight, 1);
        st->start_ns = now_ns();
        enum refusal refuse =
            check_target(st, version) ? REFUSE_NUL_TARGET : check_headers(s, st, conn, version);
        if (refuse != REFUSE_NONE)
            return answer(s, st, conn, url, method, refuse, 0); /* before "100 Continue" */
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0; /* consumed (or, once answered, discarded) */
        if (st->answered)
            return MHD_YES;
        if (ztb_buf_append(&st->body, upload_data, n) != ZTB_OK)
            return answer(s, st, conn, url, method, REFUSE_TOO_LARGE, 1); /* cut it here */
        return MHD_YES;
    }
    if (st->answered)
        return MHD_YES;
    return answer(s, st, conn, url, method, REFUSE_NONE, 0);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    (void)conn;
    (void)toe;
    struct req_state *st = *con_cls;
    if (st == NULL)
        return;
    if (st->started)
        atomic_fetch_sub(&s->in_flight, 1);
    ztb_buf_free(&st->body);         /* wipes: the body may hold a credential */
    ztb_free_secret_str(st->target); /* so may a query string (NULL is fine) */
    free(st);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    ztb_log(ZTB_LOG_DEBUG, "http.mhd", ZTB_F_STR("detail", msg));
}

/*
 * libmicrohttpd's fatal errors: logged through ztb_log (its default prints
 * to stderr only, which a service manager may drop), then abort() as it
 * would. Does not return.
 */
__attribute__((noreturn)) static void on_mhd_panic(void *cls, const char *file, unsigned int line,
                                                   const char *reason)
{
    (void)cls;
    ztb_log(ZTB_LOG_ERROR, "http.mhd_panic", ZTB_F_STR("file", file ? file : "?"),
            ZTB_F_INT("line", line), ZTB_F_STR("reason", reason ? reason : "?"));
    abort();
}

/*
 * MHD's accept policy: while the server drains (http_server_quiesce), a new
 * connection is closed as soon as it is accepted, before a byte is read.
 * This, not MHD_quiesce_daemon, is how the server stops taking connections:
 * with an epoll thread pool MHD_quiesce_daemon races the worker threads for
 * the removal of the listen socket from their epoll sets, and the loser's
 * epoll_ctl fails with ENOENT, on which libmicrohttpd 0.9.75 aborts the
 * process ("Failed to remove listen FD from epoll set"), the broker with it,
 * mid-drain.
 */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    (void)addr;
    (void)len;
    const struct http_server *s = cls;
    return atomic_load_explicit(&s->closing, memory_order_relaxed) ? MHD_NO : MHD_YES;
}

struct http_server *http_server_start(const char *name, int listen_fd,
                                      const struct http_route *routes, size_t nroutes,
                                      const struct http_limits *lim, void *ctx)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (request_base == 0 && getrandom(&request_base, sizeof(request_base), 0) < 0)
        request_base = (uint32_t)getpid(); /* ids only: no secret */
    s->name = name;
    s->routes = routes;
    s->nroutes = nroutes;
    s->lim = *lim;
    s->ctx = ctx;
    unsigned threads = lim->threads ? lim->threads : 1;
    unsigned flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    /* a pool of one is just the internal thread (MHD warns otherwise) */
    int tls = lim->tls_cert_pem != NULL && lim->tls_key_pem != NULL;
    if (tls)
        flags |= MHD_USE_TLS;
    /* optional options, packed so that absent ones end the list early */
    struct MHD_OptionItem opt[6];
    size_t no = 0;
    if (threads > 1)
        opt[no++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
    if (tls) {
        /* the pair through the callback, so that SIGHUP can replace it */
        char why[256];
        if (http_tls_reload(lim->tls_cert_pem, lim->tls_key_pem, why, sizeof(why)) != ZTB_OK) {
            ztb_log(ZTB_LOG_ERROR, "http.tls_failed", ZTB_F_STR("server", name),
                    ZTB_F_STR("why", why));
            free(s);
            return NULL;
        }
        opt[no++] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)tls_retrieve};
        if (lim->tls_client_ca_pem != NULL)
            opt[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                                (void *)lim->tls_client_ca_pem};
    }
    opt[no] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    MHD_set_panic_func(on_mhd_panic, NULL);
    s->d = MHD_start_daemon(
        flags, 0, on_accept, s, on_request, s, MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, lim->connection_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        lim->per_ip_connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, lim->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY_LIMIT,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_ARRAY, opt, MHD_OPTION_END);
    if (s->d == NULL) {
        ztb_log(ZTB_LOG_ERROR, "http.start_failed", ZTB_F_STR("server", name));
        free(s);
        return NULL;
    }
    return s;
}

void http_server_quiesce(struct http_server *s)
{
    if (s != NULL)
        atomic_store(&s->closing, 1);
}

unsigned http_server_connections(struct http_server *s)
{
    if (s == NULL || s->d == NULL)
        return 0;
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return i ? i->num_connections : 0;
}

unsigned http_server_in_flight(struct http_server *s)
{
    return s != NULL ? atomic_load(&s->in_flight) : 0;
}

void http_server_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    if (s->d != NULL)
        MHD_stop_daemon(s->d);
    free(s);
}

unsigned http_fit_nofile(unsigned conns, unsigned reserve)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return conns;
    rlim_t need = (rlim_t)conns + reserve, was = rl.rlim_cur;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        struct rlimit want = {.rlim_cur = need, .rlim_max = rl.rlim_max};
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
            want.rlim_max = need; /* allowed with CAP_SYS_RESOURCE (root, before the drop) */
        if (setrlimit(RLIMIT_NOFILE, &want) != 0 && rl.rlim_max != rl.rlim_cur) {
            want.rlim_cur = want.rlim_max = rl.rlim_max; /* as far as we may go */
            (void)setrlimit(RLIMIT_NOFILE, &want);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            return conns;
        if (rl.rlim_cur > was)
            ztb_log(ZTB_LOG_INFO, "http.nofile_raised", ZTB_F_INT("from", was),
                    ZTB_F_INT("to", rl.rlim_cur), ZTB_F_INT("needed", need));
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return conns;
    /* Fewer connections than configured, each with its descriptor, rather
     * than accept() failing with EMFILE and Redis, audit and key files with
     * it once the descriptors run out. */
    unsigned fit = rl.rlim_cur > (rlim_t)reserve + HTTP_MIN_CONNECTIONS
                       ? (unsigned)(rl.rlim_cur - reserve)
                       : HTTP_MIN_CONNECTIONS;
    char hint[160];
    snprintf(hint, sizeof(hint),
             "raise the descriptor limit to %llu (LimitNOFILE= in the service unit, or ulimit "
             "-n), or lower connection_limit to %u",
             (unsigned long long)need, fit);
    ztb_log(ZTB_LOG_WARN, "http.nofile_short", ZTB_F_INT("connection_limit", conns),
            ZTB_F_INT("connection_limit_used", fit), ZTB_F_INT("needed", need),
            ZTB_F_INT("soft", rl.rlim_cur), ZTB_F_INT("hard", rl.rlim_max), ZTB_F_STR("fix", hint));
    return fit;
}

ztb_err http_listen_tcp(const char *host, uint16_t port, int *fd_out, uint16_t *bound_port,
                        char *err, size_t errcap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ports[8];
    snprintf(ports, sizeof(ports), "%u", (unsigned)port);
    int gai = getaddrinfo(host, ports, &hints, &res);
    if (gai != 0) {
        snprintf(err, errcap, "listen %s: %s", host, gai_strerror(gai));
        return ZTB_ERR_INVALID_ARG;
    }
    int fd = -1;
    int saved = 0;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errcap, "listen %s:%u: %s", host, (unsigned)port, strerror(saved));
        return ZTB_ERR_IO;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else
            *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    *fd_out = fd;
    return ZTB_OK;
}

/*
 * 1 if the directory holding the socket path is its owner's alone: owned by
 * us or root and writable by no group or other user (sticky or not), so
 * nobody else can put their own socket, or a symlink, in ours' place.
 * 0 with err filled otherwise.
 */
static int unix_dir_private(const char *path, char *err, size_t errcap)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "%s: the socket's directory %s is not a directory", path, dir);
        return 0;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 || (st.st_uid != geteuid() && st.st_uid != 0)) {
        snprintf(err, errcap,
                 "%s: the socket's directory %s (mode %04o, uid %ld) is writable by others "
                 "than its owner, or its owner is not uid %ld or root: another user could "
                 "take the socket's place; use a directory only the broker's user or root "
                 "can write (e.g. /run/ztb, 0755)",
                 path, dir, (unsigned)(st.st_mode & 07777), (long)st.st_uid, (long)geteuid());
        return 0;
    }
    return 1;
}

ztb_err http_listen_unix(const char *path, unsigned mode, int *fd_out, char *err, size_t errcap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errcap, "socket path longer than %zu bytes: %s", sizeof(sa.sun_path) - 1,
                 path);
        return ZTB_ERR_INVALID_ARG;
    }
    if (!unix_dir_private(path, err, errcap))
        return ZTB_ERR_PERMISSION;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return ZTB_ERR_IO;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errcap, "%s exists and is not a socket", path);
            close(fd);
            return ZTB_ERR_EXISTS;
        }
        unlink(path);
    }
    /* create it with no access, then open it to exactly `mode` */
    mode_t old = umask(0777);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc != 0 || chmod(path, mode) != 0 || listen(fd, 128) != 0) {
        snprintf(err, errcap, "bind %s: %s", path, strerror(errno));
        close(fd);
        return ZTB_ERR_IO;
    }
    *fd_out = fd;
    return ZTB_OK;
}
