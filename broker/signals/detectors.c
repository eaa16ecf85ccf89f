/*
 * detectors.c - the broker's own anomaly detectors (see detectors.h).
 *
 * How it works: a ring of QUEUE_CAP events under a mutex; handlers copy an
 * event in and signal a condition variable, the worker takes events out and
 * handles them one by one on its own Redis connection. "Audience used"
 * events, one per issued token, are first filtered by a small direct-mapped
 * table of (agent, audience) hashes already recorded, so the token path
 * costs a hash and an atomic load, and Redis sees each pair about once per
 * broker.
 *
 * Must never: block or fail a request, call Redis from a request thread,
 * or raise a signal from anything but a counted threshold crossing.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/signals/detectors.h"
#include "broker/store/store_baseline.h"
#include "broker/store/store_detect.h"
#include "broker/store/store_rev.h"
#include "common/guard.h"
#include "common/log.h"
#include "wire/unknown_report.h"

#define QUEUE_CAP   1024
#define TICK_MS     1000 /* verifiers' reports popped, the tick hook called */
#define REPORTS_MAX 100  /* reports popped per tick */
#define AUD_SLOTS   4096
#define FIELD_SHORT 128

struct det_event {
    enum detect_kind kind;
    char agent[STORE_NAME_MAX + 1];
    char action[FIELD_SHORT + 1];
    char audience[STORE_ID_MAX + 1];
    char detail[FIELD_SHORT + 1];
    struct store_baseline_seen bl; /* DETECT_BASELINE */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wake; /* on the monotonic clock (init_wake), so a wall clock step
                                 never turns the tick's wait into a spin */
static pthread_once_t g_wake_once = PTHREAD_ONCE_INIT;
static struct det_event g_queue[QUEUE_CAP];
static size_t g_head, g_count;
static int g_running, g_stop;
static pthread_t g_thread;
static struct detect_config g_cfg;
static detect_publish_fn g_publish; /* set before the worker starts */
static void *g_publish_ud;
static _Atomic uint64_t g_dropped, g_handled;
static _Atomic uint64_t g_aud_seen[AUD_SLOTS];
static detect_tick_fn g_tick; /* set before the worker starts */
static void *g_tick_ud;
static _Atomic uint64_t g_reports, g_reports_bad;

void detectors_defaults(struct detect_config *c)
{
    c->window_s = 60;
    c->denials = 10;
    c->rate_limited = 20;
    c->new_audience_after = 86400;
    c->baseline_rate_factor = 4;
    c->baseline_rate_min = 20;
    c->shadow_ai_threshold = 10;
}

static double clamp_confidence(double c)
{
    return c < 0.05 ? 0.05 : c > 0.99 ? 0.99 : c;
}

double detect_novelty_confidence(int64_t learned, int64_t distinct)
{
    if (learned < 0)
        learned = 0;
    if (distinct < 0)
        distinct = 0;
    return clamp_confidence(1.0 - (double)(distinct + 1) / (double)(learned + 2));
}

double detect_rate_confidence(double expected, int64_t count)
{
    if (count <= 0)
        return 0.05;
    return clamp_confidence(1.0 - (expected > 1.0 ? expected : 1.0) / (double)count);
}

int64_t detect_rate_threshold(const struct detect_config *c, double expected)
{
    if (c->baseline_rate_factor == 0)
        return 0;
    double t = ceil((double)c->baseline_rate_factor * expected);
    int64_t thr = t > 1e15 ? (int64_t)1e15 : (int64_t)t;
    return thr < (int64_t)c->baseline_rate_min ? (int64_t)c->baseline_rate_min : thr < 1 ? 1 : thr;
}

/* Tokens expected this hour from what seen says was learned. */
static double expected_rate(const struct store_baseline_seen *seen)
{
    return (double)seen->learned_hour / (double)(seen->learn_days > 0 ? seen->learn_days : 1);
}

/* The hour's count reached thr with this record: one token, or the tokens
 * a rate lease settled at once (store_lease.h), which may step over it. */
static int rate_crossed(const struct store_baseline_seen *seen, int64_t thr)
{
    int64_t added = seen->hour_added > 0 ? seen->hour_added : 1;
    return thr > 0 && seen->hour_count >= thr && seen->hour_count - added < thr;
}

uint64_t detectors_dropped(void)
{
    return atomic_load(&g_dropped);
}

uint64_t detectors_handled(void)
{
    return atomic_load(&g_handled);
}

uint64_t detectors_reports(int bad)
{
    return atomic_load(bad ? &g_reports_bad : &g_reports);
}

void detectors_on_tick(detect_tick_fn fn, void *ud)
{
    pthread_mutex_lock(&g_lock);
    if (!g_running) {
        g_tick = fn;
        g_tick_ud = ud;
    }
    pthread_mutex_unlock(&g_lock);
}

static uint64_t pair_hash(const char *agent, const char *audience)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (const char *p = agent; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;
    for (const char *p = audience; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h ? h : 1;
}

static void copy_field(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Copy one event into the queue (or count it dropped). */
static void enqueue(enum detect_kind k, const char *agent, const char *action, const char *audience,
                    const char *detail, const struct store_baseline_seen *bl)
{
    pthread_mutex_lock(&g_lock);
    if (!g_running || g_stop || g_count == QUEUE_CAP) {
        pthread_mutex_unlock(&g_lock);
        atomic_fetch_add(&g_dropped, 1);
        return;
    }
    struct det_event *e = &g_queue[(g_head + g_count) % QUEUE_CAP];
    e->kind = k;
    copy_field(e->agent, sizeof(e->agent), agent);
    copy_field(e->action, sizeof(e->action), action);
    copy_field(e->audience, sizeof(e->audience), audience);
    copy_field(e->detail, sizeof(e->detail), detail);
    if (bl != NULL)
        e->bl = *bl;
    else
        memset(&e->bl, 0, sizeof(e->bl));
    g_count++;
    pthread_cond_signal(&g_wake);
    pthread_mutex_unlock(&g_lock);
}

void detect_event(enum detect_kind k, const char *agent, const char *action, const char *audience,
                  const char *detail)
{
    if (k == DETECT_BASELINE)
        return; /* detect_baseline() */
    if ((unsigned)k >= DETECT_KINDS_N || !store_agent_name_ok(agent))
        return;
    if (k == DETECT_AUDIENCE_USED) {
        if (audience == NULL || !store_id_ok(audience))
            return;
        uint64_t h = pair_hash(agent, audience);
        if (atomic_load_explicit(&g_aud_seen[h % AUD_SLOTS], memory_order_relaxed) == h)
            return; /* recorded already */
    }
    enqueue(k, agent, action, audience, detail, NULL);
}

void detect_baseline(const char *agent, const char *action, const char *audience,
                     const char *prefix, const struct store_baseline_seen *seen)
{
    if (seen == NULL || seen->phase != STORE_BL_WATCHING || !store_agent_name_ok(agent))
        return;
    /* g_cfg is written before the worker and the HTTP threads start */
    int64_t thr = detect_rate_threshold(&g_cfg, expected_rate(seen));
    if (seen->new_bits == 0 && !rate_crossed(seen, thr))
        return;
    enqueue(DETECT_BASELINE, agent, action, audience, prefix, seen);
}

void detect_unknown_client(const char *reason, const char *source)
{
    if (g_cfg.shadow_ai_threshold == 0 || reason == NULL)
        return;
    /* the reason goes in action, the source in detail; no agent */
    enqueue(DETECT_UNKNOWN_CLIENT, "", reason, NULL,
            store_source_label_ok(source) ? source : "invalid", NULL);
}

/* What each kind raises. */
static const struct {
    const char *counter;     /* Redis counter name */
    const char *signal_type; /* policy signal type */
    policy_severity severity;
    double confidence;
} kinds[DETECT_KINDS_N] = {
    [DETECT_POLICY_DENIAL] = {"denials", "policy_violation", POLICY_SEVERITY_MEDIUM, 0.7},
    [DETECT_RATE_LIMITED] = {"rate_limited", "rate_limit_burst", POLICY_SEVERITY_LOW, 0.6},
    [DETECT_ASSERTION_REPLAY] = {"assertion_replay", "assertion_replay", POLICY_SEVERITY_HIGH, 0.9},
    [DETECT_DPOP_REPLAY] = {"dpop_replay", "dpop_replay", POLICY_SEVERITY_HIGH, 0.8},
    [DETECT_JOIN_REUSE] = {"join_reuse", "join_token_reuse", POLICY_SEVERITY_HIGH, 0.9},
    [DETECT_AUDIENCE_USED] = {"audience", "new_audience", POLICY_SEVERITY_MEDIUM, 0.5},
    [DETECT_BASELINE] = {"baseline", "baseline_rate", POLICY_SEVERITY_MEDIUM, 0.0},
    [DETECT_UNKNOWN_CLIENT] = {"unknown_client", "shadow_ai", POLICY_SEVERITY_MEDIUM, 0.5},
    [DETECT_TOKEN_DENIED] = {"token_denied", NULL, POLICY_SEVERITY_LOW, 0.0},
};

/* The first out-of-policy request of an agent in a window: scope adherence
 * has zero tolerance, so policy may answer the very first one. */
#define OUT_OF_SCOPE_TYPE       "out_of_scope"
#define OUT_OF_SCOPE_CONFIDENCE 0.5 /* it happened; whether it is hostile is open */

/* Raise a signal of type about agent with evidence ev (taken) and hand it
 * to the publish callback: what it returns. */
static ztb_err publish_signal(const char *agent, const char *type, policy_severity severity,
                              double confidence, json_t *ev, int64_t count)
{
    struct signal s;
    memset(&s, 0, sizeof(s));
    snprintf(s.type, sizeof(s.type), "%s", type);
    s.severity = severity;
    s.confidence = confidence;
    snprintf(s.agent, sizeof(s.agent), "%s", agent);
    char *text = ev ? json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(ev);
    if (text != NULL && strlen(text) <= SIGNAL_EVIDENCE_MAX)
        memcpy(s.evidence, text, strlen(text) + 1);
    free(text);
    ztb_log(ZTB_LOG_WARN, "detector.fired", ZTB_F_STR("type", s.type), ZTB_F_STR("agent", s.agent),
            ZTB_F_INT("count", count));
    return g_publish(&s, g_publish_ud);
}

static ztb_err raise_signal_as(const struct det_event *e, int64_t count, const char *type,
                               policy_severity severity, double confidence)
{
    json_t *ev = json_pack("{s:s,s:I,s:I}", "detector", kinds[e->kind].counter, "count",
                           (json_int_t)count, "window", (json_int_t)g_cfg.window_s);
    if (e->action[0])
        json_object_set_new(ev, "action", json_string(e->action));
    if (e->audience[0])
        json_object_set_new(ev, "audience", json_string(e->audience));
    if (e->detail[0])
        json_object_set_new(ev, "detail", json_string(e->detail));
    return publish_signal(e->agent, type, severity, confidence, ev, count);
}

/*
 * A baseline deviation (detect_baseline): one signal per new value, and one
 * for the rate at its threshold. A new value the full baseline could not
 * record raises at most one signal per agent and window (it would be new
 * again on every request).
 */
static ztb_err handle_baseline(const struct det_event *e)
{
    static const struct {
        unsigned bit;
        const char *type, *kind;
        policy_severity severity;
    } novel[3] = {
        {STORE_BL_NEW_ACTION, "baseline_new_action", "action", POLICY_SEVERITY_MEDIUM},
        {STORE_BL_NEW_AUDIENCE, "baseline_new_audience", "audience", POLICY_SEVERITY_MEDIUM},
        {STORE_BL_NEW_PREFIX, "baseline_new_resource", "resource_prefix", POLICY_SEVERITY_LOW},
    };
    const struct store_baseline_seen *bl = &e->bl;
    ztb_err rv = ZTB_OK;
    if (bl->new_bits & STORE_BL_FULL) {
        int64_t n = 0;
        ZTB_GUARD(store_detect_count(e->agent, "baseline_full", g_cfg.window_s, &n));
        if (n != 1)
            return ZTB_OK;
    }
    const char *values[3] = {e->action, e->audience, e->detail};
    int64_t learned = 0, distinct[3] = {0, 0, 0};
    if (bl->new_bits & 7u) /* fixed since the window ended: read once here */
        ZTB_GUARD(store_baseline_counts(e->agent, &learned, distinct));
    for (size_t i = 0; i < 3; i++) {
        if (!(bl->new_bits & novel[i].bit))
            continue;
        double conf = detect_novelty_confidence(learned, distinct[i]);
        json_t *ev = json_pack("{s:s,s:s,s:s,s:I,s:I,s:b}", "detector", "baseline", "kind",
                               novel[i].kind, "value", values[i], "tokens_learned",
                               (json_int_t)learned, "distinct_learned", (json_int_t)distinct[i],
                               "baseline_full", (bl->new_bits & STORE_BL_FULL) != 0);
        ztb_err r = publish_signal(e->agent, novel[i].type, novel[i].severity, conf, ev, 1);
        if (r != ZTB_OK)
            rv = r;
    }
    double expected = expected_rate(bl);
    int64_t thr = detect_rate_threshold(&g_cfg, expected);
    if (rate_crossed(bl, thr)) {
        json_t *ev =
            json_pack("{s:s,s:s,s:I,s:f,s:I,s:I}", "detector", "baseline", "kind", "rate", "count",
                      (json_int_t)bl->hour_count, "expected", expected, "threshold",
                      (json_int_t)thr, "factor", (json_int_t)g_cfg.baseline_rate_factor);
        ztb_err r =
            publish_signal(e->agent, "baseline_rate", POLICY_SEVERITY_MEDIUM,
                           detect_rate_confidence(expected, bl->hour_count), ev, bl->hour_count);
        if (r != ZTB_OK)
            rv = r;
    }
    return rv;
}

static ztb_err raise_signal(const struct det_event *e, int64_t count)
{
    return raise_signal_as(e, count, kinds[e->kind].signal_type, kinds[e->kind].severity,
                           kinds[e->kind].confidence);
}

/* Handle one event on the worker thread. */
static ztb_err handle(const struct det_event *e)
{
    int64_t count = 0;
    unsigned threshold = 1;
    if (e->kind == DETECT_BASELINE)
        return handle_baseline(e);
    if (e->kind == DETECT_TOKEN_DENIED) /* counted for `agent show`, nothing raised */
        return store_activity_denied(e->agent, (int64_t)time(NULL));
    if (e->kind == DETECT_UNKNOWN_CLIENT) {
        ZTB_GUARD(store_unknown_client_count(e->action, e->detail, &count));
        if (count != (int64_t)g_cfg.shadow_ai_threshold)
            return ZTB_OK;
        json_t *ev = json_pack("{s:s,s:s,s:s,s:I}", "detector", "unknown_client", "reason",
                               e->action, "source", e->detail, "count", (json_int_t)count);
        return publish_signal("", "shadow_ai", POLICY_SEVERITY_MEDIUM, 0.5, ev, count);
    }
    if (e->kind == DETECT_AUDIENCE_USED) {
        if (g_cfg.new_audience_after == 0)
            return ZTB_OK;
        int fire = 0;
        ztb_err rv = store_detect_audience(e->agent, e->audience, g_cfg.new_audience_after, &fire);
        if (rv == ZTB_OK) {
            uint64_t h = pair_hash(e->agent, e->audience);
            atomic_store_explicit(&g_aud_seen[h % AUD_SLOTS], h, memory_order_relaxed);
        }
        if (rv != ZTB_OK || !fire)
            return rv == ZTB_ERR_NOT_FOUND ? ZTB_OK : rv;
        return raise_signal(e, 1);
    }
    if (e->kind == DETECT_POLICY_DENIAL)
        threshold = g_cfg.denials;
    else if (e->kind == DETECT_RATE_LIMITED)
        threshold = g_cfg.rate_limited;
    if (threshold == 0)
        return ZTB_OK;
    ZTB_GUARD(store_detect_count(e->agent, kinds[e->kind].counter, g_cfg.window_s, &count));
    if (e->kind == DETECT_POLICY_DENIAL && count == 1)
        ZTB_GUARD(raise_signal_as(e, count, OUT_OF_SCOPE_TYPE, POLICY_SEVERITY_MEDIUM,
                                  OUT_OF_SCOPE_CONFIDENCE));
    /* exactly at the crossing: one signal per window, not one per event */
    return count == (int64_t)threshold ? raise_signal(e, count) : ZTB_OK;
}

/*
 * One verifier's report (wire/unknown_report.h), untrusted: each entry is
 * added to the unknown clients, and a source whose count crosses the
 * shadow_ai threshold with this report raises the signal once, as the Nth
 * refusal at /v1/authorize does. A report only adds counts; its signal
 * names no agent.
 */
static void handle_report(const char *text, size_t len, void *ud)
{
    (void)ud;
    struct unknown_report r;
    ztb_err rv = unknown_report_parse(text, len, &r);
    if (rv != ZTB_OK) {
        atomic_fetch_add(&g_reports_bad, 1);
        ztb_log(ZTB_LOG_WARN, "unknown_report.refused", ZTB_F_ERR(rv));
        return;
    }
    atomic_fetch_add(&g_reports, 1);
    int64_t thr = (int64_t)g_cfg.shadow_ai_threshold;
    for (size_t i = 0; i < r.n; i++) {
        const struct unknown_client *c = &r.c[i];
        const char *reason = unknown_reason_name(c->reason);
        int64_t after = 0;
        rv = store_unknown_client_add(reason, c->source, c->count, &after);
        if (rv != ZTB_OK) {
            ztb_log(ZTB_LOG_WARN, "detector.failed", ZTB_F_STR("detector", "unknown_client"),
                    ZTB_F_ERR(rv));
            return;
        }
        if (!(after - c->count < thr && after >= thr))
            continue;
        json_t *ev =
            json_pack("{s:s,s:s,s:s,s:I,s:s}", "detector", "unknown_client", "reason", reason,
                      "source", c->source, "count", (json_int_t)after, "gateway", r.gateway);
        rv = publish_signal("", "shadow_ai", POLICY_SEVERITY_MEDIUM, 0.5, ev, after);
        if (rv != ZTB_OK)
            ztb_log(ZTB_LOG_WARN, "detector.failed", ZTB_F_STR("detector", "unknown_client"),
                    ZTB_F_ERR(rv));
    }
}

/* Once a second on the worker: the verifiers' reports, then the tick hook. */
static void tick(void)
{
    if (g_cfg.shadow_ai_threshold > 0) {
        size_t popped = 0;
        ztb_err rv = store_unknown_reports_pop(REPORTS_MAX, handle_report, NULL, &popped);
        if (rv != ZTB_OK)
            ztb_log(ZTB_LOG_WARN, "detector.failed", ZTB_F_STR("detector", "unknown_reports"),
                    ZTB_F_ERR(rv));
    }
    if (g_tick != NULL)
        g_tick(g_tick_ud);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void init_wake(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_wake, &ca);
    pthread_condattr_destroy(&ca);
}

/* Wait on g_wake (g_lock held) until an event, a stop, or due_ms (monotonic). */
static void wait_until(int64_t due_ms)
{
    int64_t left = due_ms - mono_ms();
    if (left <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (long)(left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_wake, &g_lock, &ts);
}

static void *worker(void *arg)
{
    (void)arg;
    int64_t next_tick = mono_ms() + TICK_MS;
    pthread_mutex_lock(&g_lock);
    for (;;) {
        while (g_count == 0 && !g_stop && mono_ms() < next_tick)
            wait_until(next_tick);
        if (g_count == 0 && g_stop)
            break;
        if (mono_ms() >= next_tick) {
            next_tick = mono_ms() + TICK_MS;
            pthread_mutex_unlock(&g_lock);
            tick();
            pthread_mutex_lock(&g_lock);
            continue;
        }
        if (g_count == 0)
            continue;
        struct det_event e = g_queue[g_head];
        g_head = (g_head + 1) % QUEUE_CAP;
        g_count--;
        pthread_mutex_unlock(&g_lock);
        ztb_err rv = handle(&e);
        if (rv != ZTB_OK)
            ztb_log(ZTB_LOG_WARN, "detector.failed", ZTB_F_STR("agent", e.agent),
                    ZTB_F_STR("detector", kinds[e.kind].counter), ZTB_F_ERR(rv));
        atomic_fetch_add(&g_handled, 1);
        pthread_mutex_lock(&g_lock);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

ztb_err detectors_start(const struct detect_config *c, detect_publish_fn publish, void *ud)
{
    if (c == NULL || publish == NULL)
        return ZTB_ERR_INVALID_ARG;
    pthread_once(&g_wake_once, init_wake);
    pthread_mutex_lock(&g_lock);
    if (g_running) {
        pthread_mutex_unlock(&g_lock);
        return ZTB_ERR_STATE;
    }
    g_cfg = *c;
    g_publish = publish;
    g_publish_ud = ud;
    if (g_cfg.window_s == 0)
        g_cfg.window_s = 60;
    g_stop = 0;
    g_head = g_count = 0;
    int rc = pthread_create(&g_thread, NULL, worker, NULL);
    g_running = rc == 0;
    pthread_mutex_unlock(&g_lock);
    return rc == 0 ? ZTB_OK : ZTB_ERR_NOMEM;
}

void detectors_stop(void)
{
    pthread_mutex_lock(&g_lock);
    if (!g_running) {
        pthread_mutex_unlock(&g_lock);
        return;
    }
    g_stop = 1;
    pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_lock);
    pthread_join(g_thread, NULL);
    pthread_mutex_lock(&g_lock);
    g_running = 0;
    pthread_mutex_unlock(&g_lock);
}
