/*
 * push_client.h - the broker's one outbound HTTP POST, at two levels:
 *   push_post          one blocking attempt, for a caller that keeps its own
 *                      queue and retry schedule (RFC 8935 delivery of SETs,
 *                      broker/ssf/ssf_transmit.c: it decides per receiver
 *                      what may be sent again);
 *   push_client_*      a bounded queue and a thread that retries, for a
 *                      fire-and-forget notification to one URL (the approval
 *                      webhook, approval_webhook.c).
 * Both go through the same libcurl setup (push_client.c: attempt()).
 *
 * push_client_enqueue copies the body into a bounded queue and returns at
 * once: it never waits for the network, so a request handler may call it.
 * One thread per client sends what is due with libcurl (a whole-request
 * timeout, no redirects, http and https only, TLS verified against the
 * system's CAs). A 2xx answer delivers; a network error, a timeout, 408,
 * 425, 429 or 5xx is retried after an exponential back-off with jitter
 * (half the delay fixed, half random), at most max_attempts times; any
 * other answer gives up at once (the receiver refused it: retrying would
 * not help). A full queue refuses the new body (UNAVAILABLE): the caller counts
 * and logs it.
 *
 * The URL may carry a secret (chat webhooks put theirs in the path): it
 * is never logged; log lines name only its scheme and host.
 *
 * Must never: block the caller, follow a redirect, or send to a URL
 * push_url_check refused.
 */
#ifndef ZTB_BROKER_PUSH_CLIENT_H
#define ZTB_BROKER_PUSH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/buf.h"

#define PUSH_URL_MAX      2048
#define PUSH_BODY_MAX     (64 * 1024)
#define PUSH_DEFAULT_QMAX 256

/* What happened to one body (or one attempt of it). */
enum push_outcome {
    PUSH_DELIVERED = 0, /* the receiver answered 2xx */
    PUSH_RETRY,         /* an attempt failed; another is scheduled */
    PUSH_GAVE_UP,       /* the last attempt failed, or the receiver refused it */
    PUSH_DROPPED,       /* the queue was full (enqueue), or the client stopped first */
};

struct push_client_opts {
    const char *name;            /* in log lines, e.g. "approval_webhook" */
    const char *url;             /* checked with push_url_check first */
    const char *content_type;    /* NULL: application/json */
    unsigned timeout_ms;         /* one attempt, whole request (0: 5000) */
    unsigned connect_timeout_ms; /* 0: 2000 */
    unsigned max_attempts;       /* 0: 8 */
    unsigned backoff_ms;         /* delay before the first retry (0: 500) */
    unsigned backoff_max_ms;     /* longest delay (0: 60000) */
    size_t queue_max;            /* bodies waiting at most (0: PUSH_DEFAULT_QMAX) */
    /*
     * Optional: append extra request header lines ("Name: value", one per
     * line, '\n'-separated) for body to hdrs. Called on the push thread,
     * once per body, before its first attempt (a signature). An error is
     * a failed attempt (retried: the signer may be back).
     */
    ztb_err (*headers)(void *arg, const void *body, size_t n, ztb_buf *hdrs);
    /* Optional: told every outcome (counters); on the push thread, or the
     * caller's for a PUSH_DROPPED of enqueue. */
    void (*outcome)(void *arg, enum push_outcome o);
    void *arg;
};

/* ---- one attempt ------------------------------------------------------------ */

#define PUSH_ANSWER_MAX 1024 /* bytes of a receiver's answer kept for the log */

struct push_request {
    const char *url;           /* http:// or https:// (push_url_check) */
    const char *content_type;  /* e.g. "application/secevent+jwt" */
    const char *accept;        /* Accept header, or NULL */
    const char *authorization; /* the whole Authorization value, or NULL (a secret) */
    const char *extra_headers; /* more "Name: value" lines, '\n'-separated, or NULL */
    const void *body;
    size_t body_len;
    unsigned timeout_ms;         /* whole request; 0: 5000 */
    unsigned connect_timeout_ms; /* 0: 2000 */
};

struct push_answer {
    long status;                    /* HTTP status; 0 when none came */
    char body[PUSH_ANSWER_MAX + 1]; /* the start of the answer body, NUL-terminated */
    char error[128];                /* transport error text when status is 0 */
};

/* libcurl's global set-up, once (any thread; also done by push_client_new
 * and push_post). INTERNAL if libcurl cannot start. */
ztb_err push_client_init(void);

/*
 * POST r->body to r->url, once. Returns OK when an HTTP answer came (any
 * status: a->status says which), INVALID_ARG for a URL push_url_check
 * refuses (http allowed) or no content type, UNAVAILABLE when no answer
 * came (refused, reset, TLS, timeout: a->error). Blocks for at most the
 * timeout; thread-safe (a handle per call).
 */
ztb_err push_post(const struct push_request *r, struct push_answer *a);

/* 1 if a receiver answering status should be sent the same body again
 * (408, 425, 429, 5xx); 0 for 2xx and other refusals. */
int push_status_retryable(long status);

/* ---- queued, with retries --------------------------------------------------- */

struct push_client;

/*
 * Check url for pushing: http:// or https:// with a host, no user
 * information, no fragment, at most PUSH_URL_MAX bytes, no control or
 * space characters; http:// only to a loopback host (127.0.0.0/8, ::1,
 * localhost) unless allow_http. Returns OK, or INVALID_ARG with the reason
 * and the fix in err.
 */
ztb_err push_url_check(const char *url, int allow_http, char *err, size_t errcap);

/* The host of url (no brackets, no port) into out. Returns 0 if url has
 * none or it does not fit. */
int push_url_host(const char *url, char *out, size_t cap);

/* "scheme://host[:port]" of url (what log lines show) into out. */
void push_url_origin(const char *url, char *out, size_t cap);

/*
 * A client for o->url, its thread started. The options are copied.
 * INVALID_ARG (err says why) for a bad URL: check it with push_url_check
 * first, which also applies the http rule. Caller frees with
 * push_client_free.
 */
ztb_err push_client_new(const struct push_client_opts *o, struct push_client **out, char *err,
                        size_t errcap);

/*
 * Queue a copy of body[0..n) for delivery; returns at once. UNAVAILABLE when
 * the queue is full (counted as PUSH_DROPPED), TOO_LARGE over PUSH_BODY_MAX,
 * STATE after push_client_free began.
 */
ztb_err push_client_enqueue(struct push_client *c, const void *body, size_t n);

/* Bodies waiting (queued or between attempts). */
size_t push_client_queued(struct push_client *c);

/*
 * Stop: wait for an attempt in flight (at most its timeout), then drop
 * what still waits (logged, counted PUSH_DROPPED) and free c. NULL is fine.
 */
void push_client_free(struct push_client *c);

/*
 * The delay before retry number attempt (1 = after the first failure):
 * d = min(backoff_max, backoff * 2^(attempt-1)), then d/2 + a random part
 * of [0, d/2] from rnd. Exposed for the unit test.
 */
uint64_t push_backoff_ms(unsigned attempt, unsigned backoff_ms, unsigned backoff_max_ms,
                         uint32_t rnd);

#endif /* ZTB_BROKER_PUSH_CLIENT_H */
