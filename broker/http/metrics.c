/*
 * metrics.c - lock-free counters rendered as Prometheus text (see metrics.h).
 *
 * Endpoint slots are claimed on first use with a compare-and-swap on the
 * name pointer (route names are string literals, so pointer identity is
 * enough and the common path is a short scan with no strcmp). Audience slots
 * work the same way but compare contents, under a small mutex only when a new
 * audience appears.
 *
 * Rendering: each family is written by one function that begins with
 * family() (its HELP and TYPE lines), so no metric goes out without them.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker/audit/audit.h"
#include "broker/audit/audit_stream.h"
#include "broker/http/metrics.h"
#include "broker/store/store_lease.h"
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
static const char *const denial_reasons[DENIED_REASONS_N] = {
    [DENIED_POLICY] = "policy",
    [DENIED_APPROVAL_REQUIRED] = "approval_required",
    [DENIED_RATE_LIMITED] = "rate_limited",
    [DENIED_QUARANTINED] = "quarantined",
    [DENIED_AUDIENCE_KILLED] = "audience_killed",
    [DENIED_INVALID_REQUEST] = "invalid_request",
    [DENIED_INVALID_GRANT] = "invalid_grant",
};
static _Atomic uint64_t denials[DENIED_REASONS_N];
static _Atomic int redis_up;
static _Atomic uint64_t redis_errors[REDIS_EK_N];

/* A bounded label set: values take slots in order of first use, those past
 * the cap (or too long) count as "_other", so the series stay bounded. */
struct label_slot {
    char name[128];
    _Atomic uint64_t n;
};
struct label_set {
    struct label_slot *slots;
    unsigned cap;
    _Atomic unsigned n;
    _Atomic uint64_t other;
    pthread_mutex_t lock;
};
static struct label_slot audience_slots[METRICS_MAX_AUDIENCES];
static struct label_set audiences = {audience_slots, METRICS_MAX_AUDIENCES, 0, 0,
                                     PTHREAD_MUTEX_INITIALIZER};
static struct label_slot scope_agent_slots[METRICS_MAX_SCOPE_AGENTS];
static struct label_set scope_agents = {scope_agent_slots, METRICS_MAX_SCOPE_AGENTS, 0, 0,
                                        PTHREAD_MUTEX_INITIALIZER};
static struct label_slot verdict_slots[2][METRICS_MAX_SCOPE_AGENTS];
static struct label_set verdicts[2] = {
    {verdict_slots[0], METRICS_MAX_SCOPE_AGENTS, 0, 0, PTHREAD_MUTEX_INITIALIZER},
    {verdict_slots[1], METRICS_MAX_SCOPE_AGENTS, 0, 0, PTHREAD_MUTEX_INITIALIZER}};

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

void metrics_redis_error(enum redis_error_kind k)
{
    if ((unsigned)k >= REDIS_EK_N)
        k = REDIS_EK_OTHER;
    atomic_fetch_add_explicit(&redis_errors[k], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&counters[METRIC_REDIS_ERRORS], 1, memory_order_relaxed);
}

uint64_t metrics_redis_error_get(enum redis_error_kind k)
{
    return (unsigned)k < REDIS_EK_N ? atomic_load(&redis_errors[k]) : 0;
}

void metrics_token_denied(enum metrics_denial why)
{
    if ((unsigned)why < DENIED_REASONS_N) {
        atomic_fetch_add_explicit(&denials[why], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&counters[METRIC_TOKENS_DENIED], 1, memory_order_relaxed);
    }
}

uint64_t metrics_denied_get(enum metrics_denial why)
{
    return (unsigned)why < DENIED_REASONS_N ? atomic_load(&denials[why]) : 0;
}

void metrics_set_redis_up(int up)
{
    atomic_store(&redis_up, up ? 1 : 0);
}

/* Count one for value in set: a scan without a lock when the value has its
 * slot; a new value takes the next slot under the set's mutex. */
static void label_set_add(struct label_set *set, const char *value)
{
    size_t len = strlen(value);
    unsigned n = atomic_load_explicit(&set->n, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(set->slots[i].name, value) == 0) {
            atomic_fetch_add_explicit(&set->slots[i].n, 1, memory_order_relaxed);
            return;
        }
    if (len >= sizeof(set->slots[0].name)) {
        atomic_fetch_add_explicit(&set->other, 1, memory_order_relaxed);
        return;
    }
    pthread_mutex_lock(&set->lock);
    n = atomic_load(&set->n);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(set->slots[i].name, value) == 0) {
            atomic_fetch_add_explicit(&set->slots[i].n, 1, memory_order_relaxed);
            pthread_mutex_unlock(&set->lock);
            return;
        }
    if (n < set->cap) {
        memcpy(set->slots[n].name, value, len + 1);
        atomic_store_explicit(&set->slots[n].n, 1, memory_order_relaxed);
        atomic_store_explicit(&set->n, n + 1, memory_order_release);
    } else {
        atomic_fetch_add_explicit(&set->other, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&set->lock);
}

void metrics_token_issued(const char *audience)
{
    metrics_add(METRIC_TOKENS_ISSUED, 1);
    label_set_add(&audiences, audience);
}

void metrics_signal_verdict(const char *from, int confirmed)
{
    metrics_add(confirmed ? METRIC_SIGNALS_CONFIRMED : METRIC_SIGNALS_DISMISSED, 1);
    label_set_add(&verdicts[confirmed ? 0 : 1], from);
}

void metrics_out_of_scope(const char *agent)
{
    metrics_add(METRIC_OUT_OF_SCOPE, 1);
    label_set_add(&scope_agents, agent);
}

#ifndef ZTB_VERSION
#define ZTB_VERSION "unknown"
#endif

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

/* The HELP and TYPE lines that open a family. */
static void family(ztb_buf *b, const char *name, const char *type, const char *help)
{
    ztb_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Counters without labels, one line each. NULL: rendered with labels below. */
static const struct {
    const char *name, *help;
} plain[METRIC_COUNTERS_N] = {
    [METRIC_REDIS_ERRORS] = {NULL, NULL}, /* by kind: render_redis_errors */
    [METRIC_REDIS_RECONNECTS] = {"ztb_redis_reconnects_total",
                                 "Redis connections opened again after a failure."},
    [METRIC_REDIS_BATCHES] = {"ztb_redis_shared_batches_total",
                              "Pipelines of token checks sent on the shared Redis connection."},
    [METRIC_REDIS_BATCHED] = {"ztb_redis_shared_commands_total",
                              "Token checks sent in them (the ratio is the mean batch size)."},
    [METRIC_TOKENS_ISSUED] = {NULL, NULL},
    [METRIC_TOKENS_DENIED] = {NULL, NULL},
    [METRIC_POLICY_RELOADS] = {"ztb_policy_reloads_total", "Policy reloads that took effect."},
    [METRIC_POLICY_RELOAD_FAILURES] = {"ztb_policy_reload_failures_total",
                                       "Policy reloads refused (the old policy stays)."},
    [METRIC_POLICY_SHADOW_EVALUATIONS] = {"ztb_policy_shadow_evaluations_total",
                                          "Token requests also decided by the candidate policy."},
    [METRIC_POLICY_SHADOW_DIFFERENCES] = {"ztb_policy_shadow_differences_total",
                                          "Token requests the candidate policy would have "
                                          "decided differently."},
    [METRIC_SIGNALS_CONFIRMED] = {"ztb_signals_confirmed_total",
                                  "Signals an operator marked confirmed."},
    [METRIC_SIGNALS_DISMISSED] = {"ztb_signals_dismissed_total",
                                  "Signals an operator marked false positives."},
    [METRIC_WEBHOOK_DELIVERED] = {"ztb_approval_webhook_delivered_total",
                                  "Approval notifications the webhook accepted (2xx)."},
    [METRIC_WEBHOOK_RETRIES] = {"ztb_approval_webhook_retries_total",
                                "Approval notification attempts that failed and were retried."},
    [METRIC_WEBHOOK_FAILED] = {"ztb_approval_webhook_failed_total",
                               "Approval notifications given up: attempts exhausted, or the "
                               "webhook refused them."},
    [METRIC_WEBHOOK_DROPPED] = {"ztb_approval_webhook_dropped_total",
                                "Approval notifications dropped: the queue was full, or the "
                                "broker stopped before delivering them."},
    [METRIC_OUT_OF_SCOPE] = {"ztb_out_of_scope_requests_total",
                             "Token requests denied by policy: out of the agent's scope."},
    [METRIC_SSF_PUSHED] = {"ztb_ssf_pushed_total",
                           "Security Event Tokens delivered to SSF receivers (RFC 8935)."},
    [METRIC_SSF_PUSH_FAILURES] = {"ztb_ssf_push_failures_total",
                                  "Failed attempts to deliver a Security Event Token."},
    [METRIC_SSF_PUSH_DROPPED] = {"ztb_ssf_push_dropped_total",
                                 "Security Event Tokens given up on (refused, too many "
                                 "attempts, queue full)."},
};

static void render_requests(ztb_buf *b)
{
    family(b, "ztb_http_requests_total", "counter", "HTTP requests by endpoint and status.");
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
}

static void render_durations(ztb_buf *b)
{
    family(b, "ztb_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer.");
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
}

static void render_plain(ztb_buf *b)
{
    for (size_t i = 0; i < METRIC_COUNTERS_N; i++)
        if (plain[i].name != NULL) {
            family(b, plain[i].name, "counter", plain[i].help);
            ztb_buf_printf(b, "%s %llu\n", plain[i].name,
                           (unsigned long long)atomic_load(&counters[i]));
        }
}

static void render_redis_errors(ztb_buf *b)
{
    family(b, "ztb_redis_errors_total", "counter",
           "Redis errors by kind: error replies (readonly, loading, noreplicas...) and failed "
           "connections.");
    for (unsigned k = REDIS_EK_CONNECTION; k < REDIS_EK_N; k++)
        if (k != REDIS_EK_NOSCRIPT)
            ztb_buf_printf(b, "ztb_redis_errors_total{kind=\"%s\"} %llu\n",
                           redis_error_kind_name((enum redis_error_kind)k),
                           (unsigned long long)atomic_load(&redis_errors[k]));
}

static void render_refusals(ztb_buf *b)
{
    family(b, "ztb_requests_refused_total", "counter",
           "Requests refused without an audit line: unauthenticated, or over a rate limit.");
    for (size_t e = 0; e <= NREFUSAL_ENDPOINTS; e++)
        for (size_t r = 0; r < REFUSED_REASONS_N; r++) {
            uint64_t v = atomic_load(&refusals[e][r]);
            if (v > 0)
                ztb_buf_printf(b,
                               "ztb_requests_refused_total{endpoint=\"%s\",reason=\"%s\"} %llu\n",
                               e < NREFUSAL_ENDPOINTS ? refusal_endpoints[e] : "other",
                               refusal_reasons[r], (unsigned long long)v);
        }
}

static void render_audit(ztb_buf *b)
{
    family(b, "ztb_audit_writable", "gauge",
           "Whether the audit log takes lines now (0: decisions fail closed, revocation records "
           "wait in memory).");
    ztb_buf_printf(b, "ztb_audit_writable %d\n", audit_writable());
    family(b, "ztb_audit_write_failures_total", "counter",
           "Attempts to write an audit line that failed (and were rolled back).");
    ztb_buf_printf(b, "ztb_audit_write_failures_total %llu\n",
                   (unsigned long long)audit_write_failures());
    family(b, "ztb_audit_pending_records", "gauge",
           "Records of decisions in effect waiting in memory for the audit log.");
    ztb_buf_printf(b, "ztb_audit_pending_records %llu\n",
                   (unsigned long long)audit_pending_records());
    family(b, "ztb_audit_records_lost_total", "counter",
           "Records lost: the pending queue was full.");
    ztb_buf_printf(b, "ztb_audit_records_lost_total %llu\n",
                   (unsigned long long)audit_records_lost());
    family(b, "ztb_audit_checkpoints_total", "counter", "Signed audit checkpoints written.");
    ztb_buf_printf(b, "ztb_audit_checkpoints_total %llu\n",
                   (unsigned long long)audit_checkpoints_written());
    family(b, "ztb_audit_checkpoint_failures_total", "counter",
           "Checkpoints that could not be signed or written.");
    ztb_buf_printf(b, "ztb_audit_checkpoint_failures_total %llu\n",
                   (unsigned long long)audit_checkpoint_failures());
    family(b, "ztb_audit_stream_dropped_total", "counter",
           "Audit lines not copied to the Redis stream (the file has them).");
    ztb_buf_printf(b, "ztb_audit_stream_dropped_total %llu\n",
                   (unsigned long long)audit_stream_dropped());
}

static void render_leases(ztb_buf *b)
{
    family(b, "ztb_rate_leases", "gauge",
           "Rate leases this broker holds (docs/redis.md, \"Rate leases\").");
    ztb_buf_printf(b, "ztb_rate_leases %zu\n", store_lease_count());
    family(b, "ztb_rate_lease_units_total", "counter",
           "Token requests whose rate limits a leased unit covered (no script run).");
    ztb_buf_printf(b, "ztb_rate_lease_units_total %llu\n",
                   (unsigned long long)store_lease_units_taken());
    family(b, "ztb_rate_lease_settle_failures_total", "counter",
           "Lease settlements Redis did not take (kept and retried).");
    ztb_buf_printf(b, "ztb_rate_lease_settle_failures_total %llu\n",
                   (unsigned long long)store_lease_settle_failures());
}

static void render_redis_up(ztb_buf *b)
{
    family(b, "ztb_redis_up", "gauge", "Whether the last Redis call succeeded (1) or not (0).");
    ztb_buf_printf(b, "ztb_redis_up %d\n", atomic_load(&redis_up));
}

/* One series per value of set, then "_other" if any; fixed ("" or
 * `name="value",`) goes before the set's label. */
static void render_label_set(ztb_buf *b, struct label_set *set, const char *metric,
                             const char *fixed, const char *label_name)
{
    unsigned n = atomic_load_explicit(&set->n, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        ztb_buf_printf(b, "%s{%s%s=\"", metric, fixed, label_name);
        label(b, set->slots[i].name);
        ztb_buf_printf(b, "\"} %llu\n", (unsigned long long)atomic_load(&set->slots[i].n));
    }
    uint64_t other = atomic_load(&set->other);
    if (other > 0)
        ztb_buf_printf(b, "%s{%s%s=\"_other\"} %llu\n", metric, fixed, label_name,
                       (unsigned long long)other);
}

static void render_tokens(ztb_buf *b)
{
    family(b, "ztb_tokens_issued_total", "counter", "Tokens issued by audience.");
    render_label_set(b, &audiences, "ztb_tokens_issued_total", "", "audience");
    family(b, "ztb_out_of_scope_requests_by_agent_total", "counter",
           "Token requests denied by policy, by agent (the first " METRICS_MAX_SCOPE_AGENTS_STR
           " agents by name, then _other).");
    render_label_set(b, &scope_agents, "ztb_out_of_scope_requests_by_agent_total", "", "agent");
    family(b, "ztb_signal_verdicts_total", "counter",
           "Analysts' verdicts by where the signal came from (source:NAME or detector:TYPE) and "
           "verdict: precision = confirmed / (confirmed + false_positive).");
    render_label_set(b, &verdicts[0], "ztb_signal_verdicts_total", "verdict=\"confirmed\",",
                     "from");
    render_label_set(b, &verdicts[1], "ztb_signal_verdicts_total", "verdict=\"false_positive\",",
                     "from");
}

static void render_denials(ztb_buf *b)
{
    family(b, "ztb_tokens_denied_total", "counter",
           "Token requests denied after authentication, by reason (each has an audit line).");
    for (size_t r = 0; r < DENIED_REASONS_N; r++)
        ztb_buf_printf(b, "ztb_tokens_denied_total{reason=\"%s\"} %llu\n", denial_reasons[r],
                       (unsigned long long)atomic_load(&denials[r]));
}

static void render_build_info(ztb_buf *b)
{
    family(b, "ztb_build_info", "gauge", "The running broker's version; always 1.");
    ztb_buf_append_str(b, "ztb_build_info{version=\"");
    label(b, ZTB_VERSION);
    ztb_buf_append_str(b, "\"} 1\n");
}

/* The number of open descriptors of this process; -1 if unknown. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Threads, virtual and resident pages of this process from /proc; 0 on failure. */
static int proc_stat(long *threads, unsigned long long *vsize, long long *rss_pages)
{
    FILE *f = fopen("/proc/self/stat", "re");
    if (f == NULL)
        return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name may hold spaces and parentheses: fields follow the last ')' */
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return 0;
    /* fields after the name, from 3: num_threads is 20, vsize 23, rss 24 */
    const char *q = p + 1;
    long long v[25] = {0};
    for (int i = 3; i <= 24; i++) {
        while (*q == ' ')
            q++;
        if (*q == '\0')
            return 0;
        char *end;
        v[i] = strtoll(q, &end, 10); /* the state (field 3) reads as 0 */
        q = end;
        while (*q != ' ' && *q != '\0')
            q++;
    }
    *threads = (long)v[20];
    *vsize = (unsigned long long)v[23];
    *rss_pages = v[24];
    return 1;
}

/* The process_* metrics every Prometheus client exports, and threads. */
static void render_process(ztb_buf *b)
{
    long fds = open_fds();
    if (fds >= 0) {
        family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        ztb_buf_printf(b, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        ztb_buf_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
    long threads;
    unsigned long long vsize;
    long long rss;
    if (proc_stat(&threads, &vsize, &rss)) {
        long page = sysconf(_SC_PAGESIZE);
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        ztb_buf_printf(b, "process_resident_memory_bytes %lld\n", rss * (page > 0 ? page : 4096));
        family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        ztb_buf_printf(b, "process_virtual_memory_bytes %llu\n", vsize);
        family(b, "process_threads", "gauge", "Number of threads of this process.");
        ztb_buf_printf(b, "process_threads %ld\n", threads);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                     ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
        family(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        ztb_buf_printf(b, "process_cpu_seconds_total %.3f\n", cpu);
    }
}

void metrics_render(ztb_buf *b)
{
    render_requests(b);
    render_durations(b);
    render_plain(b);
    render_redis_errors(b);
    render_refusals(b);
    render_audit(b);
    render_leases(b);
    render_redis_up(b);
    render_tokens(b);
    render_denials(b);
    render_build_info(b);
    render_process(b);
}
