/*
 * push_client.h - one outbound HTTP POST, for the broker's notifications to
 * other services: RFC 8935 push delivery of Security Event Tokens
 * (broker/ssf/ssf_transmit.c), and any webhook that needs the same.
 *
 * It is a thin, bounded layer on libcurl: http:// and https:// only (no
 * redirects followed, no other protocols, no proxy from the environment),
 * a total deadline, TLS peers verified against the system store, the answer
 * body read up to PUSH_ANSWER_MAX bytes. Retrying is the caller's business
 * (it knows what may be sent twice); push_backoff_ms gives the delay.
 *
 * Must never: log the Authorization value it is given, or follow a redirect
 * (a receiver must not be able to send our signed events elsewhere).
 */
#ifndef ZTB_BROKER_PUSH_CLIENT_H
#define ZTB_BROKER_PUSH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#define PUSH_ANSWER_MAX 1024 /* bytes of a receiver's answer kept for the log */

struct push_request {
    const char *url;           /* http:// or https:// */
    const char *content_type;  /* e.g. "application/secevent+jwt" */
    const char *accept;        /* Accept header, or NULL */
    const char *authorization; /* the whole Authorization value, or NULL (a secret) */
    const void *body;
    size_t body_len;
    unsigned timeout_ms; /* whole request; 0: 5000 */
};

struct push_answer {
    long status;                    /* HTTP status; 0 when none came */
    char body[PUSH_ANSWER_MAX + 1]; /* the start of the answer body, NUL-terminated */
    char error[128];                /* transport error text when status is 0 */
};

/* Call once before any thread uses push_post (main.c, or a test). */
ztb_err push_client_init(void);

/*
 * POST r->body to r->url. Returns OK when an HTTP answer came (any status:
 * a->status says which), INVALID_ARG for a URL that is not http(s)://,
 * UNAVAILABLE when no answer came (refused, reset, TLS, timeout: a->error).
 * Blocking for at most timeout_ms; thread-safe (one handle per call).
 */
ztb_err push_post(const struct push_request *r, struct push_answer *a);

/* The delay before retry number attempt (1, 2, ...): base_ms * 2^(attempt-1),
 * capped at cap_ms, with up to 25% subtracted at random (jitter). */
uint64_t push_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms);

/* 1 if url starts with http:// or https:// and holds no control character or space. */
int push_url_ok(const char *url);

#endif /* ZTB_BROKER_PUSH_CLIENT_H */
