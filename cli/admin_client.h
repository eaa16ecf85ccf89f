/*
 * admin_client.h - a client of the broker's admin API: HTTP/1.1 over the
 * admin unix socket (docs/broker.md, "Admin API"), made with libcurl.
 *
 * ztbctl and the integration tests both talk to the broker through this
 * one client (the library ztb_admin_client): the same requests, the same
 * size limit on answers, the same wording of transport errors. It knows
 * nothing of the broker's code; it does not read the JSON it carries.
 *
 * Each call makes one request on a new connection and blocks until the
 * answer is in or timeout_ms has passed. Thread-safe once
 * curl_global_init has run (libcurl's rule; the first call does it, so a
 * threaded program should make one call, or curl_global_init, first).
 */
#ifndef ZTB_CLI_ADMIN_CLIENT_H
#define ZTB_CLI_ADMIN_CLIENT_H

#include <stddef.h>

#include <ztb/error.h>

/* Timeout of a call that names none. */
#define ZTB_ADMIN_TIMEOUT_MS 30000L
/* Largest answer read, in bytes: an admin answer is never this large. */
#define ZTB_ADMIN_ANSWER_MAX (16u << 20)

struct ztb_admin_request {
    const char *socket_path;  /* the broker's --admin-socket */
    const char *method;       /* "GET", "POST", "DELETE", ... */
    const char *path;         /* "/v1/agents", ... (sent to http://localhost) */
    const char *content_type; /* NULL: no Content-Type header */
    const void *body;         /* NULL: none (a POST then sends an empty body) */
    size_t body_len;
    long timeout_ms; /* 0: ZTB_ADMIN_TIMEOUT_MS */
    /* NULL: none; else sent as "Ztb-Sudo-User: NAME" (the broker believes
     * it only from a root peer: ztbctl run under sudo) */
    const char *sudo_user;
};

struct ztb_admin_response {
    long status; /* the HTTP status; 0 if there was no answer */
    char *body;  /* the answer, NUL-terminated (owned: ztb_admin_response_free) */
    size_t len;
    char headers[4096]; /* the answer's header lines ("Name: value\r\n"...), cut short
                           beyond that: Retry-After and the like */
};

/*
 * Send rq and read the answer into rs (whatever its HTTP status: the caller
 * judges it). Returns OK with rs->body never NULL; UNAVAILABLE if the
 * socket could not be reached or the exchange failed (timeout, reset, an
 * answer over ZTB_ADMIN_ANSWER_MAX), then err (errcap bytes) holds
 * libcurl's one-line reason and rs is empty; NOMEM; INVALID_ARG for a
 * missing socket, method or path, or a path that does not start with '/'.
 */
ztb_err ztb_admin_call(const struct ztb_admin_request *rq, struct ztb_admin_response *rs, char *err,
                       size_t errcap);

/* Free what a call put in rs (safe on an empty or already freed rs). */
void ztb_admin_response_free(struct ztb_admin_response *rs);

#endif /* ZTB_CLI_ADMIN_CLIENT_H */
