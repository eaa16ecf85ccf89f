/*
 * bench_policy.c - policy evaluations per second on one core, and what each
 * evaluation allocates.
 *
 * Builds a synthetic policy the size of a large fleet (1,000 rules, 10,000
 * agents in 120 groups, 50 audiences, 20 services; a quarter of the rules
 * with conditions, 50 deny rules, 10 rules with audience and service
 * patterns that every request must consider), loads it, then evaluates a
 * fixed set of 4,096 prepared requests (allowed, denied, approval, unknown
 * agents, wrong resources) in a loop on one thread. Reports the median of
 * several timed rounds: the machine is shared and noisy.
 *
 * Allocations are counted honestly: this program defines malloc, calloc and
 * realloc itself (forwarding to glibc's __libc_* functions), so every
 * allocation in the process, jansson's and libc's included, goes through the
 * counter. Sanitizer builds replace malloc themselves; there the count is
 * reported as -1 (not measured).
 *
 * Metrics: evals_per_s (median wall clock; min and max too), ns_per_eval,
 * evals_per_cpu_s (median per second of CPU the thread got: robust when other
 * processes share the core),
 * allocs_per_eval, allocs_during_load (proves the counter counts), load_ms,
 * rules, agents, groups, allow_pct, approval_pct, deny_pct (what the requests
 * decide), holder_acquire_release_ns (the broker's per-request overhead).
 *
 * Must never: report a figure it did not measure (allocations under a
 * sanitizer are reported as -1, not 0).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "broker/admin/policy_shadow.h"
#include "common/buf.h"
#include "common/log.h"
#include "policy/policy.h"

#if defined(__SANITIZE_ADDRESS__)
#define BENCH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define BENCH_SANITIZED 1
#endif
#endif

static atomic_ulong alloc_calls;

#ifndef BENCH_SANITIZED
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}
#endif

enum {
    AGENTS = 10000,
    TEAMS = 100, /* team-NNN: 100 agents each */
    ROLES = 20,  /* role-NN: every agent has one */
    AUDIENCES = 50,
    SERVICES = 20,
    RULES = 1000,
    DENIES = 50,
    WILD = 10,
    REQUESTS = 4096,
};

static const char *const verbs[] = {"read", "write", "list", "export", "approve"};

/* The policy document (deterministic). */
static char *make_policy(size_t *len)
{
    ztb_buf b;
    ztb_buf_init(&b, 64u << 20);
    ztb_buf_append_str(&b, "{\"version\": 1, \"trust_domain\": \"bench.example\", \"settings\": "
                           "{\"max_ttl\": 600, \"default_ttl\": 60, \"rate_limits\": {"
                           "\"per_agent\": {\"rate\": 600, \"burst\": 60, \"period\": 60},"
                           "\"per_action\": {\"rate\": 120, \"burst\": 20, \"period\": 60}}},"
                           "\"groups\": {");
    for (int t = 0; t < TEAMS; t++) {
        ztb_buf_printf(&b, "%s\"team-%03d\": {\"members\": [", t ? "," : "", t);
        for (int i = 0; i < AGENTS / TEAMS; i++)
            ztb_buf_printf(&b, "%s\"agent-%05d\"", i ? "," : "", t * (AGENTS / TEAMS) + i);
        ztb_buf_append_str(&b, "]}");
    }
    for (int r = 0; r < ROLES; r++) {
        ztb_buf_printf(&b, ",\"role-%02d\": {\"members\": [", r);
        int first = 1;
        for (int a = r; a < AGENTS; a += ROLES) {
            ztb_buf_printf(&b, "%s\"agent-%05d\"", first ? "" : ",", a);
            first = 0;
        }
        ztb_buf_append_str(&b, "]}");
    }
    ztb_buf_append_str(&b, "}, \"rules\": [");
    int n = 0;
    /* allow rules: team k%100 on service k%20, audience k%50 */
    for (int k = 0; k < RULES - DENIES - WILD; k++, n++) {
        int svc = k % SERVICES, aud = (k / 2) % AUDIENCES, team = k % TEAMS;
        ztb_buf_printf(&b,
                       "%s{\"id\": \"allow-%04d\", \"effect\": \"allow\", \"agents\": "
                       "[\"group:team-%03d\", \"group:role-%02d\"], \"actions\": [\"svc%02d:%s\", "
                       "\"svc%02d:%s\"], \"audiences\": [\"https://aud%02d.internal\"], "
                       "\"resources\": [\"data/%d/*\", \"shared/**\"]",
                       n ? "," : "", k, team, k % ROLES, svc, verbs[k % 3], svc, verbs[(k + 1) % 3],
                       aud, k);
        switch (k % 8) {
        case 0:
            ztb_buf_append_str(&b, ", \"conditions\": {\"source_ip\": [\"10.0.0.0/8\"]}");
            break;
        case 1:
            ztb_buf_append_str(&b, ", \"conditions\": {\"limits\": [{\"path\": \"amount\", "
                                   "\"max\": 500}]}");
            break;
        case 2:
            ztb_buf_append_str(&b, ", \"conditions\": {\"time_windows\": [{\"days\": [\"mon\","
                                   "\"tue\",\"wed\",\"thu\",\"fri\"], \"start\": \"06:00\", "
                                   "\"end\": \"22:00\"}]}");
            break;
        case 3:
            ztb_buf_printf(&b,
                           ", \"obligations\": {\"ttl\": %d, \"binding\": \"dpop\", "
                           "\"single_use\": true}",
                           30 + k % 200);
            break;
        case 4:
            ztb_buf_append_str(&b, ", \"obligations\": {\"approval_required\": {\"group\": "
                                   "\"approvers\", \"approvers\": 2}}");
            break;
        default: break;
        }
        ztb_buf_append_str(&b, "}");
    }
    /* deny rules: nobody deletes protected data */
    for (int k = 0; k < DENIES; k++, n++)
        ztb_buf_printf(
            &b,
            ",{\"id\": \"deny-%02d\", \"effect\": \"deny\", \"agents\": [\"*\"], "
            "\"actions\": [\"svc%02d:*\"], \"audiences\": [\"https://aud%02d.internal\"],"
            " \"resources\": [\"protected/**\"]}",
            k, k % SERVICES, k % AUDIENCES);
    /* pattern rules every request must consider */
    for (int k = 0; k < WILD; k++, n++)
        ztb_buf_printf(&b,
                       ",{\"id\": \"wild-%02d\", \"effect\": \"allow\", \"agents\": "
                       "[\"group:role-%02d\"], \"actions\": [\"svc*:list\"], \"audiences\": "
                       "[\"https://*.internal\"], \"resources\": [\"public/%d/**\"]}",
                       k, k, k);
    ztb_buf_append_str(&b, "]}");
    if (ztb_buf_error(&b) != ZTB_OK) {
        fprintf(stderr, "policy document too large\n");
        exit(1);
    }
    return ztb_buf_steal(&b, len);
}

/* CPU time this thread has used, ns: immune to the time-sharing of a busy machine. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct req_store {
    char agent[REQUESTS][24];
    char action[REQUESTS][24];
    char audience[REQUESTS][40];
    char resource[REQUESTS][32];
    policy_request req[REQUESTS];
};

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Prepared requests: mostly aimed at a rule (so evaluation goes all the way). */
static void make_requests(struct req_store *s, json_t *ad)
{
    unsigned seed = 42;
    for (int i = 0; i < REQUESTS; i++) {
        int k = (int)(rnd(&seed) % (RULES - DENIES - WILD));
        int team = k % TEAMS, svc = k % SERVICES, aud = (k / 2) % AUDIENCES;
        int agent = team * (AGENTS / TEAMS) + (int)(rnd(&seed) % (AGENTS / TEAMS));
        int kind = (int)(rnd(&seed) % 10);
        if (kind == 9)
            snprintf(s->agent[i], sizeof(s->agent[i]), "unknown-%d", i); /* not in the policy */
        else
            snprintf(s->agent[i], sizeof(s->agent[i]), "agent-%05d", agent);
        snprintf(s->action[i], sizeof(s->action[i]), "svc%02d:%s", svc,
                 kind == 8 ? "list" : verbs[k % 3]);
        snprintf(s->audience[i], sizeof(s->audience[i]), "https://aud%02d.internal", aud);
        if (kind == 7)
            snprintf(s->resource[i], sizeof(s->resource[i]), "protected/x");
        else if (kind == 6)
            snprintf(s->resource[i], sizeof(s->resource[i]), "data/%d/a/b", k);
        else if (kind == 8)
            snprintf(s->resource[i], sizeof(s->resource[i]), "public/%d/x", (int)(i % 10));
        else
            snprintf(s->resource[i], sizeof(s->resource[i]), "data/%d/item-%d", k, i);
        policy_request *r = &s->req[i];
        r->agent = s->agent[i];
        r->action = s->action[i];
        r->audience = s->audience[i];
        r->resource = s->resource[i];
        r->ctx.now = 1749031200 + (int64_t)(i % 7) * 86400; /* a week of days */
        r->ctx.authorization_details = ad;
        policy_ip_parse(i % 2 ? "10.1.2.3" : "192.0.2.1", &r->ctx.source);
    }
}

int main(void)
{
    size_t len = 0;
    char *doc = make_policy(&len);
    policy *p = NULL;
    policy_diag d;
    policy_diag_init(&d);
    unsigned long load_a0 = atomic_load(&alloc_calls);
    uint64_t t0 = bench_now_ns();
    ztb_err e = policy_load(doc, len, &p, &d);
    uint64_t t1 = bench_now_ns();
    unsigned long load_allocs = atomic_load(&alloc_calls) - load_a0;
    if (e != ZTB_OK) {
        ztb_buf b;
        ztb_buf_init(&b, 1 << 16);
        for (size_t i = 0; i < d.n && i < 10; i++) {
            ztb_buf_reset(&b);
            policy_diag_format(&d.msgs[i], &b);
            fprintf(stderr, "%s\n", ztb_buf_cstr(&b));
        }
        fprintf(stderr, "bench policy does not load: %s\n", ztb_err_name(e));
        return 1;
    }
    policy_diag_free(&d);
    bench_note("policy: %zu bytes of JSON, %zu rules, %zu agents, %zu groups", len,
               policy_rule_count(p), policy_agent_count(p), policy_group_count(p));

    json_t *ad = json_pack("[{s:s, s:i}]", "type", "payment", "amount", (json_int_t)120);
    struct req_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return 1;
    make_requests(s, ad);

    /* what the requests decide (also warms the caches) */
    unsigned effects[3] = {0, 0, 0};
    for (int i = 0; i < REQUESTS; i++) {
        policy_decision dec;
        policy_eval(p, &s->req[i], &dec);
        effects[dec.effect]++;
    }

    enum { ROUNDS = 9, PER_ROUND = 1 << 21 };
    double rate[ROUNDS], cpu_rate[ROUNDS];
    unsigned long allocs = 0;
    volatile unsigned sink = 0;
    for (int r = 0; r < ROUNDS; r++) {
        unsigned long a0 = atomic_load(&alloc_calls);
        uint64_t s0 = bench_now_ns(), c0 = thread_cpu_ns();
        for (int i = 0; i < PER_ROUND; i++) {
            policy_decision dec;
            policy_eval(p, &s->req[i & (REQUESTS - 1)], &dec);
            sink += dec.effect;
        }
        uint64_t s1 = bench_now_ns(), c1 = thread_cpu_ns();
        allocs += atomic_load(&alloc_calls) - a0;
        rate[r] = (double)PER_ROUND / ((double)(s1 - s0) / 1e9);
        cpu_rate[r] = (double)PER_ROUND / ((double)(c1 - c0) / 1e9);
    }
    double med = bench_median(rate, ROUNDS);

    /* the holder path the broker takes on every request */
    policy_holder *h = NULL;
    policy_holder_new(&h);
    policy_holder_swap(h, policy_ref(p));
    enum { HOLDS = 1 << 22 };
    uint64_t h0 = bench_now_ns();
    for (int i = 0; i < HOLDS; i++)
        policy_holder_release(policy_holder_acquire(h));
    uint64_t h1 = bench_now_ns();
    policy_holder_free(h);

    /* shadow mode: the enforced decision, then the same request through the
     * broker's real shadow path with a candidate that decides alike (the
     * common case: a difference adds a lock and an audit record). Rounds
     * alternate with plain evaluation so the machine's noise hits both. */
    struct policy_shadow *sh = NULL;
    if (policy_shadow_new(&sh) != ZTB_OK)
        return 1;
    ztb_log_set_level(ZTB_LOG_OFF);
    policy_unref(policy_shadow_set(sh, policy_ref(p), "bench"));
    enum { SROUNDS = 7, SPER = 1 << 19 };
    double plain_ns[SROUNDS], shadow_ns[SROUNDS];
    for (int r = 0; r < SROUNDS; r++) {
        uint64_t a0 = thread_cpu_ns();
        for (int i = 0; i < SPER; i++) {
            policy_decision dec;
            policy_eval(p, &s->req[i & (REQUESTS - 1)], &dec);
            sink += dec.effect;
        }
        uint64_t a1 = thread_cpu_ns();
        for (int i = 0; i < SPER; i++) {
            policy_decision dec;
            policy_eval(p, &s->req[i & (REQUESTS - 1)], &dec);
            policy_shadow_observe(sh, &s->req[i & (REQUESTS - 1)], &dec);
            sink += dec.effect;
        }
        uint64_t a2 = thread_cpu_ns();
        plain_ns[r] = (double)(a1 - a0) / SPER;
        shadow_ns[r] = (double)(a2 - a1) / SPER;
    }
    uint64_t sev = 0, sdiff = 0;
    policy_shadow_counts(sh, &sev, &sdiff);
    policy_shadow_free(sh);

    bench_metric("rules", (double)policy_rule_count(p));
    bench_metric("agents", (double)policy_agent_count(p));
    bench_metric("groups", (double)policy_group_count(p));
    bench_metric("load_ms", (double)(t1 - t0) / 1e6);
    bench_metric("evals_per_s", med);
    bench_metric("evals_per_s_min", bench_percentile(rate, ROUNDS, 0));
    bench_metric("evals_per_s_max", bench_percentile(rate, ROUNDS, 100));
    bench_metric("ns_per_eval", 1e9 / med);
    /* per second of CPU this thread actually got: what one core does */
    bench_metric("evals_per_cpu_s", bench_median(cpu_rate, ROUNDS));
#ifdef BENCH_SANITIZED
    bench_metric("allocs_per_eval", -1);
    bench_note("sanitizer build: allocations not counted, speed not meaningful");
    (void)allocs;
    (void)load_allocs;
#else
    bench_metric("allocs_per_eval", (double)allocs / ((double)ROUNDS * PER_ROUND));
    /* the counter's own check: loading allocates, so this must not be 0 */
    bench_metric("allocs_during_load", (double)load_allocs);
#endif
    bench_metric("allow_pct", 100.0 * effects[POLICY_ALLOW] / REQUESTS);
    bench_metric("approval_pct", 100.0 * effects[POLICY_APPROVAL_REQUIRED] / REQUESTS);
    bench_metric("deny_pct", 100.0 * effects[POLICY_DENY] / REQUESTS);
    bench_metric("holder_acquire_release_ns", (double)(h1 - h0) / HOLDS);
    double pn = bench_median(plain_ns, SROUNDS), sn = bench_median(shadow_ns, SROUNDS);
    bench_metric("decide_cpu_ns", pn);
    bench_metric("decide_with_shadow_cpu_ns", sn);
    bench_metric("shadow_added_cpu_ns", sn - pn);
    bench_metric("shadow_differences", (double)sdiff); /* 0: the candidate decides alike */
    bench_note("median of %d rounds of %d evaluations on one thread (shared machine: noisy)",
               ROUNDS, PER_ROUND);
    (void)sink;
    json_decref(ad);
    free(s);
    free(doc);
    policy_unref(p);
    return 0;
}
