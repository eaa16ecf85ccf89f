/*
 * metrics.h - counters and histograms exported at GET /metrics.
 *
 * All updates are relaxed atomic adds on fixed arrays: no lock and no
 * allocation on the request path. Label sets are bounded: endpoints come
 * from the route tables (at most METRICS_MAX_ENDPOINTS), status codes are
 * bucketed, and audiences past METRICS_MAX_AUDIENCES count as "_other", so a
 * hostile client cannot grow the metrics without bound.
 */
#ifndef ZTB_BROKER_METRICS_H
#define ZTB_BROKER_METRICS_H

#include <stdint.h>

#include "common/buf.h"
#include "common/redis_target.h"

#define METRICS_MAX_ENDPOINTS        96
#define METRICS_MAX_AUDIENCES        256
#define METRICS_MAX_SCOPE_AGENTS     64 /* ztb_out_of_scope_requests_by_agent_total */
#define METRICS_MAX_SCOPE_AGENTS_STR "64"

enum metrics_counter {
    METRIC_REDIS_ERRORS = 0,
    METRIC_REDIS_RECONNECTS,
    METRIC_REDIS_BATCHES, /* pipelines sent on the shared connection */
    METRIC_REDIS_BATCHED, /* ... and the commands in them */
    METRIC_TOKENS_ISSUED,
    METRIC_TOKENS_DENIED,
    METRIC_POLICY_RELOADS,
    METRIC_POLICY_RELOAD_FAILURES,
    METRIC_POLICY_SHADOW_EVALUATIONS,
    METRIC_POLICY_SHADOW_DIFFERENCES,
    METRIC_SIGNALS_CONFIRMED,
    METRIC_SIGNALS_DISMISSED,
    METRIC_OUT_OF_SCOPE,
    METRIC_SSF_PUSHED,
    METRIC_SSF_PUSH_FAILURES,
    METRIC_SSF_PUSH_DROPPED,
    METRIC_WEBHOOK_DELIVERED, /* approval webhook: notifications delivered */
    METRIC_WEBHOOK_RETRIES,   /* ... attempts that failed and were retried */
    METRIC_WEBHOOK_FAILED,    /* ... given up after the last attempt or a refusal */
    METRIC_WEBHOOK_DROPPED,   /* ... not queued (queue full) or dropped at stop */
    METRIC_COUNTERS_N
};

/*
 * Why a request was refused without an audit line of its own: refusals of
 * requests nobody authenticated, and requests over a rate limit. Anyone can
 * send those, so each costs a counter here (and a sampled log line,
 * common/log_sample.h), never a line on disk. Shown as
 * ztb_requests_refused_total{endpoint,reason}; the endpoint label is one of
 * a fixed list (METRICS_REFUSAL_ENDPOINTS in metrics.c) or "other".
 */
enum metrics_refusal {
    REFUSED_INVALID_CLIENT = 0,  /* no credential, or one that does not authenticate */
    REFUSED_ASSERTION_REPLAY,    /* a client assertion presented again */
    REFUSED_INVALID_REQUEST,     /* malformed before authentication (400, 413, 415) */
    REFUSED_UNAVAILABLE,         /* Redis could not answer during authentication */
    REFUSED_RATE_LIMITED_IP,     /* over the per-address rate (before authentication) */
    REFUSED_RATE_LIMITED_SOURCE, /* a signal source over its rate */
    REFUSED_JOIN_TOKEN_REUSED,   /* a join token presented again after use */
    REFUSED_REASONS_N
};

/*
 * Why a token request was denied (after authentication, with an audit
 * line): ztb_tokens_denied_total{reason}.
 */
enum metrics_denial {
    DENIED_POLICY = 0,        /* no rule allows it, or no policy is loaded */
    DENIED_APPROVAL_REQUIRED, /* policy wants a human's approval first */
    DENIED_RATE_LIMITED,      /* over the agent's or the action's rate */
    DENIED_QUARANTINED,       /* the agent is quarantined */
    DENIED_AUDIENCE_KILLED,   /* the audience is disabled */
    DENIED_INVALID_REQUEST,   /* a request policy cannot serve (binding, details) */
    DENIED_INVALID_GRANT,     /* the subject token (delegation) is not usable */
    DENIED_REASONS_N
};

/* Count one token denied for why. */
void metrics_token_denied(enum metrics_denial why);

/* Current value of one denial counter (tests). */
uint64_t metrics_denied_get(enum metrics_denial why);

/* Count one refusal of a request to path (the request's path) for why. */
void metrics_refused(const char *path, enum metrics_refusal why);

/* Current value of one refusal counter (tests). */
uint64_t metrics_refused_get(const char *path, enum metrics_refusal why);

/* Count one finished request on server ("api"/"admin") and endpoint. */
void metrics_request(const char *server, const char *endpoint, unsigned status,
                     uint64_t duration_ns);

/* Add n to a plain counter. */
void metrics_add(enum metrics_counter c, uint64_t n);

/* Count one token issued for audience. */
void metrics_token_issued(const char *audience);

/* One token request of agent denied by policy (out of its scope): the total
 * and the per-agent series (bounded: METRICS_MAX_SCOPE_AGENTS, then _other). */
void metrics_out_of_scope(const char *agent);

/* An analyst's verdict on a signal from `from` ("source:NAME" or
 * "detector:TYPE"): the totals and ztb_signal_verdicts_total{verdict,from}
 * (bounded like the agents above). */
void metrics_signal_verdict(const char *from, int confirmed);

/* Count one Redis error of kind k (ztb_redis_errors_total{kind}; the sum
 * is metrics_get(METRIC_REDIS_ERRORS)). */
void metrics_redis_error(enum redis_error_kind k);

/* Current count of one kind (tests). */
uint64_t metrics_redis_error_get(enum redis_error_kind k);

/* Set a gauge-like value read at render time (e.g. redis up 0/1). */
void metrics_set_redis_up(int up);

/*
 * Append the Prometheus text exposition (format 0.0.4) to b: every family
 * with its HELP and TYPE (promtool check metrics is clean; a test runs it),
 * then ztb_build_info and the process_* metrics of this process.
 *
 * Adding a metric: a plain counter is one enum value above plus one line in
 * the table `plain` in metrics.c (name and HELP text); a labelled family
 * gets its bounded label list, its update function here, and one render
 * function in metrics.c that starts with family() and is called from
 * metrics_render.
 */
void metrics_render(ztb_buf *b);

/* Current value of a counter (tests). */
uint64_t metrics_get(enum metrics_counter c);

#endif /* ZTB_BROKER_METRICS_H */
