/*
 * http_client.h - HTTP(S) requests for libztb, with connection reuse.
 *
 * libcurl easy handles are not thread-safe, and each one keeps its own
 * connections alive, so an http_client is a small pool of handles: a request
 * borrows an idle handle (its kept-alive connection to the broker comes with
 * it), runs on the caller's thread, and returns it. Up to HTTP_POOL_MAX idle
 * handles are kept; more threads simply make more.
 *
 * Every request: http and https only, no redirects, peer and host verified
 * for https (with the configured CA file, else the system store), a total
 * and a connect timeout, a cap on the response body, no signals (libcurl's
 * CURLOPT_NOSIGNAL: sends use MSG_NOSIGNAL, so no SIGPIPE either). Plain
 * http is accepted only for loopback hosts unless the owner allows it
 * (http_url_check).
 *
 * Response bodies go into a secret ztb_buf (they carry tokens and session
 * credentials) that the caller frees with http_response_free.
 */
#ifndef ZTB_SDK_HTTP_CLIENT_H
#define ZTB_SDK_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/buf.h"

#define HTTP_POOL_MAX 8
#define HTTP_BODY_MAX ((size_t)256 * 1024)

struct http_client_opts {
    const char *ca_file;         /* PEM bundle for https peers; NULL: system store */
    unsigned timeout_ms;         /* whole request; 0: 10000 */
    unsigned connect_timeout_ms; /* 0: 3000 */
};

struct http_request {
    const char *method; /* "GET" or "POST" */
    const char *url;
    const char *content_type; /* of body (POST) */
    const void *body;
    size_t body_len;
    const char *headers[4]; /* extra "Name: value" lines, NULL-terminated */
    size_t max_body;        /* 0: HTTP_BODY_MAX */
};

struct http_response {
    long status;
    ztb_buf body;          /* secret; NUL-terminated */
    int64_t retry_after_s; /* Retry-After in seconds, -1 if absent */
    int64_t max_age_s;     /* Cache-Control max-age, -1 if absent, 0 for no-store/no-cache */
    char error[256];       /* transport error text when the call fails */
};

struct http_client;

/* A new client (opts copied; NULL for defaults). NOMEM. */
ztb_err http_client_new(const struct http_client_opts *opts, struct http_client **out);

/* Free the client and its idle handles. No request may be running. c may be NULL. */
void http_client_free(struct http_client *c);

/*
 * Run rq on the calling thread; rs is initialised here and the caller frees
 * it with http_response_free whatever the result. ZTB_OK means an HTTP
 * response arrived (any status); UNAVAILABLE (cannot connect or resolve),
 * TIMEOUT, TOO_LARGE (body over the cap), HTTP (any other transport or TLS
 * failure, text in rs->error), NOMEM. Thread-safe; blocks up to the timeout.
 */
ztb_err http_client_do(struct http_client *c, const struct http_request *rq,
                       struct http_response *rs);

/* Release the body (wiped). */
void http_response_free(struct http_response *rs);

/*
 * INVALID_ARG unless url is an absolute http(s) URL without user info or
 * fragment, and (unless allow_http) https or http to a loopback host
 * (localhost, 127.0.0.0/8, [::1]).
 */
ztb_err http_url_check(const char *url, int allow_http);

#endif /* ZTB_SDK_HTTP_CLIENT_H */
