/*
 * metrics.c - lock-free counters rendered as Prometheus text (see metrics.h).
 *
 * Endpoint slots are claimed on first use with a compare-and-swap on the
 * name pointer (route names are string literals, so pointer identity is
 * enough and the common path is a short scan with no strcmp). Audience slots
 * work the same way but compare contents, under a small mutex only when a new
 * audience appears.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "broker/audit/audit.h"
#include "broker/audit/audit_stream.h"
#include "broker/http/metrics.h"
#include "common/guard.h"

static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
#define NBUCKETS ZTB_ARRAY_LEN(bucket_le)

static const unsigned status_codes[] = {200, 201, 204, 400, 401, 403, 404,
                                        405, 409, 413, 415, 429, 500, 503};
#define NSTATUS ZTB_ARRAY_LEN(status_codes)

struct endpoint_slot {
    _Atomic(const char *) server;
    _Atomic(const char *) name;
    _Atomic uint64_t by_status[NSTATUS + 1]; /* last: other */
    _Atomic uint64_t buckets[NBUCKETS + 1];  /* last: +Inf */
    _Atomic uint64_t sum_us;
    _Atomic uint64_t count;
};

static struct endpoint_slot endpoints[METRICS_MAX_ENDPOINTS];

/* Endpoints whose refusals are counted by name; anything else is "other". */
static const char *const refusal_endpoints[] = {"/v1/signals",    "/v1/token",  "/v1/session",
                                                "/v1/introspect", "/v1/revoke", "/v1/renew",
                                                "/v1/enroll"};
#define NREFUSAL_ENDPOINTS ZTB_ARRAY_LEN(refusal_endpoints)
static const char *const refusal_reasons[REFUSED_REASONS_N] = {
    "invalid_client",  "assertion_replay",    "invalid_request",  "unavailable",
    "rate_limited_ip", "rate_limited_source", "join_token_reused"};
static _Atomic uint64_t refusals[NREFUSAL_ENDPOINTS + 1][REFUSED_REASONS_N];
static _Atomic uint64_t counters[METRIC_COUNTERS_N];
static _Atomic int redis_up;

struct audience_slot {
    char name[128];
    _Atomic uint64_t n;
};
static struct audience_slot audiences[METRICS_MAX_AUDIENCES];
static _Atomic unsigned naudiences;
static _Atomic uint64_t audience_other;
static pthread_mutex_t audience_lock = PTHREAD_MUTEX_INITIALIZER;

static struct endpoint_slot *endpoint_slot(const char *server, const char *name)
{
    for (size_t i = 0; i < METRICS_MAX_ENDPOINTS; i++) {
        struct endpoint_slot *s = &endpoints[i];
        const char *n = atomic_load_explicit(&s->name, memory_order_acquire);
        if (n == name && atomic_load_explicit(&s->server, memory_order_relaxed) == server)
            return s;
        if (n == NULL) {
            /* claim the slot: server first so readers never see a half slot */
            const char *expect = NULL;
            if (atomic_compare_exchange_strong(&s->server, &expect, server)) {
                atomic_store_explicit(&s->name, name, memory_order_release);
                return s;
            }
            /* lost the race for this slot; if the winner is us-equal, use it */
            while ((n = atomic_load_explicit(&s->name, memory_order_acquire)) == NULL)
                ;
            if (n == name && atomic_load(&s->server) == server)
                return s;
        }
    }
    return NULL;
}

void metrics_request(const char *server, const char *endpoint, unsigned status,
                     uint64_t duration_ns)
{
    struct endpoint_slot *s = endpoint_slot(server, endpoint);
    if (s == NULL)
        return;
    size_t si = NSTATUS;
    for (size_t i = 0; i < NSTATUS; i++)
        if (status_codes[i] == status) {
            si = i;
            break;
        }
    atomic_fetch_add_explicit(&s->by_status[si], 1, memory_order_relaxed);
    double secs = (double)duration_ns / 1e9;
    size_t b = 0;
    while (b < NBUCKETS && secs > bucket_le[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, duration_ns / 1000, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

static size_t refusal_endpoint(const char *path)
{
    for (size_t i = 0; path != NULL && i < NREFUSAL_ENDPOINTS; i++)
        if (strcmp(path, refusal_endpoints[i]) == 0)
            return i;
    return NREFUSAL_ENDPOINTS;
}

void metrics_refused(const char *path, enum metrics_refusal why)
{
    if ((unsigned)why < REFUSED_REASONS_N)
        atomic_fetch_add_explicit(&refusals[refusal_endpoint(path)][why], 1, memory_order_relaxed);
}

uint64_t metrics_refused_get(const char *path, enum metrics_refusal why)
{
    return (unsigned)why < REFUSED_REASONS_N ? atomic_load(&refusals[refusal_endpoint(path)][why])
                                             : 0;
}

void metrics_add(enum metrics_counter c, uint64_t n)
{
    if (c < METRIC_COUNTERS_N)
        atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

uint64_t metrics_get(enum metrics_counter c)
{
    return c < METRIC_COUNTERS_N ? atomic_load(&counters[c]) : 0;
}

void metrics_set_redis_up(int up)
{
    atomic_store(&redis_up, up ? 1 : 0);
}

void metrics_token_issued(const char *audience)
{
    metrics_add(METRIC_TOKENS_ISSUED, 1);
    size_t alen = strlen(audience);
    unsigned n = atomic_load_explicit(&naudiences, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(audiences[i].name, audience) == 0) {
            atomic_fetch_add_explicit(&audiences[i].n, 1, memory_order_relaxed);
            return;
        }
    if (alen >= sizeof(audiences[0].name)) {
        atomic_fetch_add_explicit(&audience_other, 1, memory_order_relaxed);
        return;
    }
    pthread_mutex_lock(&audience_lock);
    n = atomic_load(&naudiences);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(audiences[i].name, audience) == 0) {
            atomic_fetch_add_explicit(&audiences[i].n, 1, memory_order_relaxed);
            pthread_mutex_unlock(&audience_lock);
            return;
        }
    if (n < METRICS_MAX_AUDIENCES) {
        memcpy(audiences[n].name, audience, alen + 1);
        atomic_store_explicit(&audiences[n].n, 1, memory_order_relaxed);
        atomic_store_explicit(&naudiences, n + 1, memory_order_release);
    } else {
        atomic_fetch_add_explicit(&audience_other, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&audience_lock);
}

/* Label values are ours or bounded audience strings: escape \ " and newline. */
static void label(ztb_buf *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            ztb_buf_append_byte(b, '\\');
        if (*p == '\n') {
            ztb_buf_append_str(b, "\\n");
            continue;
        }
        ztb_buf_append_byte(b, (uint8_t)*p);
    }
}

void metrics_render(ztb_buf *b)
{
    ztb_buf_append_str(b, "# HELP ztb_http_requests_total HTTP requests by endpoint and status.\n"
                          "# TYPE ztb_http_requests_total counter\n");
    for (size_t i = 0; i < METRICS_MAX_ENDPOINTS; i++) {
        struct endpoint_slot *s = &endpoints[i];
        const char *name = atomic_load(&s->name);
        if (name == NULL)
            break;
        for (size_t k = 0; k <= NSTATUS; k++) {
            uint64_t v = atomic_load(&s->by_status[k]);
            if (v == 0)
                continue;
            ztb_buf_printf(b, "ztb_http_requests_total{server=\"%s\",endpoint=\"%s\",code=\"",
                           atomic_load(&s->server), name);
            if (k < NSTATUS)
                ztb_buf_printf(b, "%u", status_codes[k]);
            else
                ztb_buf_append_str(b, "other");
            ztb_buf_printf(b, "\"} %llu\n", (unsigned long long)v);
        }
    }
    ztb_buf_append_str(b, "# HELP ztb_http_request_duration_seconds Request latency.\n"
                          "# TYPE ztb_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < METRICS_MAX_ENDPOINTS; i++) {
        struct endpoint_slot *s = &endpoints[i];
        const char *name = atomic_load(&s->name);
        if (name == NULL)
            break;
        const char *srv = atomic_load(&s->server);
        uint64_t cum = 0;
        for (size_t k = 0; k <= NBUCKETS; k++) {
            cum += atomic_load(&s->buckets[k]);
            ztb_buf_printf(b,
                           "ztb_http_request_duration_seconds_bucket{server=\"%s\",endpoint="
                           "\"%s\",le=\"",
                           srv, name);
            if (k < NBUCKETS)
                ztb_buf_printf(b, "%g", bucket_le[k]);
            else
                ztb_buf_append_str(b, "+Inf");
            ztb_buf_printf(b, "\"} %llu\n", (unsigned long long)cum);
        }
        ztb_buf_printf(b,
                       "ztb_http_request_duration_seconds_sum{server=\"%s\",endpoint=\"%s\"} "
                       "%.6f\n"
                       "ztb_http_request_duration_seconds_count{server=\"%s\",endpoint=\"%s\"} "
                       "%llu\n",
                       srv, name, (double)atomic_load(&s->sum_us) / 1e6, srv, name,
                       (unsigned long long)atomic_load(&s->count));
    }
    static const char *const names[METRIC_COUNTERS_N] = {
        "ztb_redis_errors_total",
        "ztb_redis_reconnects_total",
        NULL /* rendered by audience below */,
        "ztb_tokens_denied_total",
        "ztb_policy_reloads_total",
        "ztb_policy_reload_failures_total",
    };
    for (size_t i = 0; i < METRIC_COUNTERS_N; i++)
        if (names[i] != NULL)
            ztb_buf_printf(b, "# TYPE %s counter\n%s %llu\n", names[i], names[i],
                           (unsigned long long)atomic_load(&counters[i]));
    ztb_buf_append_str(b, "# HELP ztb_requests_refused_total Requests refused without an audit "
                          "line: unauthenticated, or over a rate limit.\n"
                          "# TYPE ztb_requests_refused_total counter\n");
    for (size_t e = 0; e <= NREFUSAL_ENDPOINTS; e++)
        for (size_t r = 0; r < REFUSED_REASONS_N; r++) {
            uint64_t v = atomic_load(&refusals[e][r]);
            if (v > 0)
                ztb_buf_printf(b,
                               "ztb_requests_refused_total{endpoint=\"%s\",reason=\"%s\"} %llu\n",
                               e < NREFUSAL_ENDPOINTS ? refusal_endpoints[e] : "other",
                               refusal_reasons[r], (unsigned long long)v);
        }
    ztb_buf_printf(
        b,
        "# HELP ztb_audit_writable Whether the audit log takes lines now (0: "
        "decisions fail closed, revocation records wait in memory).\n"
        "# TYPE ztb_audit_writable gauge\nztb_audit_writable %d\n"
        "# HELP ztb_audit_write_failures_total Attempts to write an audit line that "
        "failed (and were rolled back).\n"
        "# TYPE ztb_audit_write_failures_total counter\n"
        "ztb_audit_write_failures_total %llu\n"
        "# HELP ztb_audit_pending_records Records of decisions in effect waiting in "
        "memory for the audit log.\n"
        "# TYPE ztb_audit_pending_records gauge\nztb_audit_pending_records %llu\n"
        "# HELP ztb_audit_records_lost_total Records lost: the pending queue was full.\n"
        "# TYPE ztb_audit_records_lost_total counter\nztb_audit_records_lost_total %llu\n"
        "# HELP ztb_audit_checkpoints_total Signed audit checkpoints written.\n"
        "# TYPE ztb_audit_checkpoints_total counter\nztb_audit_checkpoints_total %llu\n"
        "# HELP ztb_audit_checkpoint_failures_total Checkpoints that could not be "
        "signed or written.\n"
        "# TYPE ztb_audit_checkpoint_failures_total counter\n"
        "ztb_audit_checkpoint_failures_total %llu\n"
        "# HELP ztb_audit_stream_dropped_total Audit lines not copied to the Redis stream (the "
        "file has them).\n"
        "# TYPE ztb_audit_stream_dropped_total counter\nztb_audit_stream_dropped_total %llu\n",
        audit_writable(), (unsigned long long)audit_write_failures(),
        (unsigned long long)audit_pending_records(), (unsigned long long)audit_records_lost(),
        (unsigned long long)audit_checkpoints_written(),
        (unsigned long long)audit_checkpoint_failures(),
        (unsigned long long)audit_stream_dropped());
    ztb_buf_printf(b,
                   "# HELP ztb_redis_up Whether the last Redis call succeeded.\n"
                   "# TYPE ztb_redis_up gauge\nztb_redis_up %d\n",
                   atomic_load(&redis_up));
    ztb_buf_append_str(b, "# HELP ztb_tokens_issued_total Tokens issued by audience.\n"
                          "# TYPE ztb_tokens_issued_total counter\n");
    unsigned n = atomic_load_explicit(&naudiences, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        ztb_buf_append_str(b, "ztb_tokens_issued_total{audience=\"");
        label(b, audiences[i].name);
        ztb_buf_printf(b, "\"} %llu\n", (unsigned long long)atomic_load(&audiences[i].n));
    }
    uint64_t other = atomic_load(&audience_other);
    if (other > 0)
        ztb_buf_printf(b, "ztb_tokens_issued_total{audience=\"_other\"} %llu\n",
                       (unsigned long long)other);
}
