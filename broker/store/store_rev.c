/*
 * store_rev.c - revocation state in Redis (see store_rev.h for the keys),
 * and the helpers the other store_*.c files share (store_internal.h).
 *
 * How it works: every change that must be atomic is one Lua script sent
 * with EVALSHA (EVAL on NOSCRIPT). Revocation events are built here, in C,
 * by the one encoder verifiers' decoder is built with (wire/revevent.h), so
 * the member stored in ztb:{rev}:events and the message published are the
 * same bytes. The key names verifiers share are wire/wire.h's.
 *
 * Clocks: no revocation script reads Redis's clock. The broker decides
 * every expiry from its own clock and the facts it verified, and hands
 * Redis a relative TTL (EX counts seconds, whatever Redis's wall clock
 * says) and its own "now" for trimming the snapshot. A Redis clock that
 * is ahead can therefore never make a revocation look expired and drop
 * it; one that is behind only keeps entries longer.
 *
 * Replies are checked for shape; anything unexpected is UNAVAILABLE (fail
 * closed), never guessed at.
 *
 * Durability across a failover: every revocation, kill and flag change is
 * acknowledged only after redis_wait_replicas (WAIT N on the connection
 * that wrote it) confirms the configured number of replicas has it; with
 * none configured (one Redis, the private one) the write itself is the
 * acknowledgement.
 *
 * Must never: store a source secret (only its SHA-256), write a revocation
 * without announcing it (or announce one it did not write), or accept an id
 * that could break a key name (store_id_ok first).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "broker/store/redis_client.h"
#include "broker/store/store_internal.h"
#include "broker/store/store_rev.h"
#include "common/json_gate.h"
#include "broker/store/store_sources.h"
#include "common/base64url.h"
#include "common/buf.h"
#include "common/guard.h"
#include "common/secret.h"
#include "wire/revevent.h"
#include "wire/wire.h"

#define EVENT_MAX      (STORE_ID_MAX * 2 + 128)
#define SIGNALS_MAXLEN "10000"

/* A decimal from Redis; 0 if it is not one (callers treat 0 as unknown). */
static long long parse_ll(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return end != s && *end == '\0' ? v : 0;
}

int store_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > STORE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

int store_source_name_ok(const char *name)
{
    return store_agent_name_ok(name);
}

/* Scripts are struct store_script, run with store_eval (store_internal.h):
 * each SHA is computed once, safely, whichever thread comes first. */

static void hex_sha256(const void *p, size_t n, char hex[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(p, n, d);
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex[2 * i] = x[d[i] >> 4];
        hex[2 * i + 1] = x[d[i] & 15];
    }
    hex[64] = '\0';
    ztb_wipe(d, sizeof(d));
}

/* An event's JSON text (wire/revevent.h) into out (EVENT_MAX bytes); 1 if it fit. */
static int event_text(char *out, enum rev_kind kind, const char *id, int64_t gen, int64_t exp,
                      int lifted)
{
    struct rev_event ev = {.kind = kind, .gen = gen, .exp = exp, .lifted = lifted};
    size_t n = strlen(id);
    if (n > REV_ID_MAX)
        return 0;
    memcpy(ev.id, id, n + 1);
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, EVENT_MAX);
    return rev_event_write(&ev, &b) == ZTB_OK && ztb_buf_cstr(&b) != NULL;
}

/* ---- revocations --------------------------------------------------------- */

/* ---- the killed audiences, held in memory -------------------------------- */

/*
 * The audience kill switch is checked on every issuance, but it lives in
 * the revocation state's slot ({rev}), not in the agent's: in Redis Cluster
 * the per-agent issuance script cannot read it. So each broker holds the
 * set of killed audiences (ZTB_WIRE_AUD_KILLED_HASH, a handful of names) in
 * memory, loaded with one HKEYS:
 *   - at most AUD_VIEW_REFRESH_MS old when an issuance reads it: the first
 *     request after that reloads it (one at a time; the others read the
 *     view they have);
 *   - never older than AUD_VIEW_STALE_MS: past that, every request reloads
 *     it itself and, if Redis cannot answer, store_audience_killed says
 *     "unknown" and the issuance is refused (fail closed);
 *   - reloaded before the next issuance after this broker kills or lifts
 *     an audience (aud_view_invalidate), so a kill it acknowledged is in
 *     force at once here, and at the other replicas within
 *     AUD_VIEW_REFRESH_MS.
 */
#define AUD_VIEW_REFRESH_MS 100
#define AUD_VIEW_STALE_MS   2000
#define AUD_VIEW_MAX        100000

static pthread_rwlock_t g_av_lock = PTHREAD_RWLOCK_INITIALIZER;
static char **g_av; /* sorted names, under g_av_lock */
static size_t g_av_n;
static _Atomic uint64_t g_av_at_ms; /* monotonic ms of the last load; 0: none */
static atomic_int g_av_loading;
/* Loads are numbered as they start; a load installs its view only if no
 * later-started load has (an HKEYS sent before a kill must not replace one
 * sent after it), and counts as fresh only if no kill or lift of this
 * broker (aud_view_invalidate bumps the epoch) happened while it ran. */
static _Atomic uint64_t g_av_ticket;
static uint64_t g_av_installed; /* ticket of the view in g_av, under g_av_lock */
static _Atomic uint64_t g_av_epoch;

static uint64_t av_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 1u;
}

static int av_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void av_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Load the view from Redis; 0 on success (the view replaced, unless a
 * load started later already replaced it), -1 if not. */
static int aud_view_load(void)
{
    uint64_t ticket = atomic_fetch_add(&g_av_ticket, 1) + 1;
    redisReply *r;
    if (redis_commandf(&r, "HKEYS %s", ZTB_WIRE_AUD_KILLED_HASH) != ZTB_OK)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements > AUD_VIEW_MAX) {
        (void)store_unexpected_reply(r, "audience_view");
        return -1;
    }
    char **v = calloc(r->elements ? r->elements : 1, sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; v != NULL && i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        if ((v[n] = strdup(r->element[i]->str)) == NULL) {
            av_free(v, n);
            v = NULL;
        } else {
            n++;
        }
    }
    freeReplyObject(r);
    if (v == NULL)
        return -1;
    qsort(v, n, sizeof(*v), av_cmp);
    pthread_rwlock_wrlock(&g_av_lock);
    if (ticket > g_av_installed) {
        char **old = g_av;
        size_t oldn = g_av_n;
        g_av = v;
        g_av_n = n;
        g_av_installed = ticket;
        v = old;
        n = oldn;
    }
    pthread_rwlock_unlock(&g_av_lock);
    av_free(v, n);
    return 0;
}

/* Load, and mark the view fresh (at now) only if no kill or lift of this
 * broker came while loading. 0, or -1 if Redis did not answer. */
static int aud_view_refresh(uint64_t now)
{
    uint64_t epoch = atomic_load(&g_av_epoch);
    if (aud_view_load() != 0)
        return -1;
    if (atomic_load(&g_av_epoch) == epoch)
        atomic_store(&g_av_at_ms, now);
    return 0;
}

static void aud_view_invalidate(void)
{
    atomic_fetch_add(&g_av_epoch, 1);
    atomic_store(&g_av_at_ms, 0);
}

int store_audience_killed(const char *audience)
{
    uint64_t now = av_mono_ms();
    uint64_t at = atomic_load(&g_av_at_ms);
    if (at == 0 || now - at >= AUD_VIEW_STALE_MS) {
        /* too old to use: load it here, whoever else is loading */
        if (aud_view_refresh(now) != 0)
            return -1;
    } else if (now - at >= AUD_VIEW_REFRESH_MS && !atomic_exchange(&g_av_loading, 1)) {
        (void)aud_view_refresh(now);
        atomic_store(&g_av_loading, 0);
    }
    pthread_rwlock_rdlock(&g_av_lock);
    const char *key = audience;
    int killed = g_av_n > 0 && bsearch(&key, g_av, g_av_n, sizeof(*g_av), av_cmp) != NULL;
    pthread_rwlock_unlock(&g_av_lock);
    return killed;
}

/* The broker's wall clock: the only clock revocation expiries are read from. */
static int64_t broker_now(void)
{
    return (int64_t)time(NULL);
}

/* Shared tail of every revocation script: trim what no verifier needs any
 * more, then announce with the next sequence number (KEYS[3], INCR'd in
 * the same script as the write: sequence order is commit order). The
 * script has set now (the broker's clock) and skew from its ARGV; its last
 * two ARGV are the publish command and channel (PUB_ARGS). */
#define TRIM_AND_PUBLISH(member)                                                                   \
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - skew))\n" REV_SEQ_PUBLISH_LUA(  \
        member)

/* How announcements go out: PUBLISH on ztb:revocations, or on a Cluster
 * SPUBLISH on ztb:{rev}:revocations, the shard of the {rev} slot only
 * (sharded pub/sub, Redis 7), where every verifier's feed subscribes. */
#define PUB_ARGS                                                                                   \
    (redis_client_is_cluster() ? "SPUBLISH" : "PUBLISH"),                                          \
        (redis_client_is_cluster() ? ZTB_WIRE_REV_SCHANNEL : ZTB_WIRE_REV_CHANNEL)

/* KEYS: ztb:{rev}:jti:<jti> (or ztb:{rev}:key:<kid>:tainted), ztb:{rev}:events, its seq.
 * ARGV: event, ttl (seconds, decided by the broker), exp (the score), now
 * (the broker's), skew. An entry that already lives longer keeps its TTL. */
static const char rev_until_lua[] =
    "local ttl = tonumber(ARGV[2])\n"
    "local now = tonumber(ARGV[4])\n"
    "local skew = tonumber(ARGV[5])\n"
    "local cur = redis.call('TTL', KEYS[1])\n"
    "if cur ~= -1 and cur < ttl then redis.call('SET', KEYS[1], '1', 'EX', ttl) end\n"
    "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])\n" TRIM_AND_PUBLISH("ARGV[1]") "return 1\n";
static struct store_script rev_until_script = STORE_SCRIPT(rev_until_lua);

/*
 * Store k until exp + skew by the broker's clock, and at least min_ttl
 * seconds (Redis gets the remaining seconds, not a time). *applied is 0,
 * and nothing is written, only when exp + skew has passed by the broker's
 * own clock.
 */
static ztb_err rev_until(const char *k, const char *event, int64_t exp, unsigned skew,
                         unsigned min_ttl, int *applied)
{
    int64_t now = broker_now();
    int64_t ttl = exp + (int64_t)skew - now;
    if (applied != NULL)
        *applied = 0;
    if (ttl <= 0)
        return ZTB_OK;
    if (ttl < (int64_t)min_ttl)
        ttl = (int64_t)min_ttl;
    char t[24], e[24], n[24], s[16];
    snprintf(t, sizeof(t), "%lld", (long long)ttl);
    snprintf(e, sizeof(e), "%lld", (long long)exp);
    snprintf(n, sizeof(n), "%lld", (long long)now);
    snprintf(s, sizeof(s), "%u", skew);
    const char *argv[] = {k, ZTB_WIRE_REV_ZSET, ZTB_WIRE_REV_SEQ_KEY, event, t, e, n, s, PUB_ARGS};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &rev_until_script, 3, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER || r->integer != 1)
        return store_unexpected_reply(r, "rev_until");
    freeReplyObject(r);
    ZTB_GUARD(redis_wait_replicas());
    if (applied != NULL)
        *applied = 1;
    return ZTB_OK;
}

ztb_err store_rev_jti(const char *jti, int64_t exp, unsigned skew, unsigned min_ttl, int *applied)
{
    ZTB_ENSURE(store_id_ok(jti) && exp > 0, ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX], ev[EVENT_MAX];
    ZTB_ENSURE(store_keyf(k, ZTB_WIRE_REV_JTI_KEY_FMT, jti) &&
                   event_text(ev, REV_JTI, jti, 0, exp, 0),
               ZTB_ERR_TOO_LARGE);
    return rev_until(k, ev, exp, skew, min_ttl, applied);
}

ztb_err store_rev_key(const char *kid, int64_t exp, unsigned skew)
{
    ZTB_ENSURE(store_id_ok(kid) && exp > 0, ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX], ev[EVENT_MAX];
    ZTB_ENSURE(store_keyf(k, ZTB_WIRE_KEY_TAINTED_KEY_FMT, kid) &&
                   event_text(ev, REV_KEY, kid, 0, exp, 0),
               ZTB_ERR_TOO_LARGE);
    int applied;
    return rev_until(k, ev, exp, skew, 0, &applied);
}

/* KEYS: agent hash. ARGV: max ttl, now (the broker's clock). Bumps the
 * generation: {1, gen, exp}, or {0, 0, 0} for an unknown agent. */
static const char rev_agent_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 0} end\n"
    "local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)\n"
    "return {1, gen, tonumber(ARGV[2]) + tonumber(ARGV[1])}\n";
static struct store_script rev_agent_script = STORE_SCRIPT(rev_agent_lua);

/* KEYS: ztb:{rev}:events (twice: the shared tail reads KEYS[2]), its seq.
 * ARGV: event, exp (the score), now (the broker's), skew. Records and
 * announces an event whose state lives elsewhere (an agent's generation,
 * in the agent's own slot). */
static const char rev_event_lua[] =
    "local now = tonumber(ARGV[3])\n"
    "local skew = tonumber(ARGV[4])\n"
    "redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])\n" TRIM_AND_PUBLISH("ARGV[1]") "return 1\n";
static struct store_script rev_event_script = STORE_SCRIPT(rev_event_lua);

/*
 * The generation lives in the agent's hash ({A} slot: the issuance script
 * reads it) and its event in the revocation state ({rev} slot): two
 * scripts, which Redis Cluster may run on two shards. The generation is
 * bumped first, so the broker (issuance, introspection) refuses the old
 * tokens at once; the revocation is acknowledged only after the event is
 * recorded and announced too, each write confirmed by WAIT on its own
 * shard. If the second step fails the caller gets UNAVAILABLE and retries:
 * the retry bumps again (a higher generation kills the same tokens) and
 * announces it.
 */
ztb_err store_rev_agent(const char *agent, unsigned max_ttl, unsigned skew, int64_t *gen,
                        int64_t *exp)
{
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX], ev[EVENT_MAX], ttl[16], s[16], n[24];
    ZTB_ENSURE(store_keyf(k, ZTB_WIRE_AGENT_KEY_FMT, agent), ZTB_ERR_TOO_LARGE);
    int64_t now = broker_now();
    snprintf(ttl, sizeof(ttl), "%u", max_ttl ? max_ttl : 1);
    snprintf(s, sizeof(s), "%u", skew);
    snprintf(n, sizeof(n), "%lld", (long long)now);
    const char *argv[] = {k, ttl, n};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &rev_agent_script, 1, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (!store_reply_is_int_array(r, 3))
        return store_unexpected_reply(r, "rev_agent");
    int ok = store_reply_int(r, 0) == 1;
    int64_t g = store_reply_int(r, 1), e = store_reply_int(r, 2);
    freeReplyObject(r);
    if (gen != NULL)
        *gen = g;
    if (exp != NULL)
        *exp = e;
    if (!ok)
        return ZTB_ERR_NOT_FOUND;
    ZTB_GUARD(redis_wait_replicas());
    char es[24];
    snprintf(es, sizeof(es), "%lld", (long long)e);
    ZTB_ENSURE(event_text(ev, REV_AGENT, agent, g, e, 0), ZTB_ERR_TOO_LARGE);
    const char *eargv[] = {ZTB_WIRE_REV_ZSET, ZTB_WIRE_REV_ZSET, ZTB_WIRE_REV_SEQ_KEY, ev, es, n, s,
                           PUB_ARGS};
    ZTB_GUARD(store_eval(&r, &rev_event_script, 3, (int)ZTB_ARRAY_LEN(eargv), eargv, NULL));
    if (r->type != REDIS_REPLY_INTEGER || r->integer != 1)
        return store_unexpected_reply(r, "rev_agent_event");
    freeReplyObject(r);
    return redis_wait_replicas();
}

/* KEYS: ztb:{rev}:auds, ztb:{rev}:events, its seq. ARGV: kill event, lift
 * event, lift?, skew, now (the broker's clock), audience. A kill has exp 0
 * (until lifted): score +inf. */
static const char rev_aud_lua[] =
    "local now = tonumber(ARGV[5])\n"
    "local skew = tonumber(ARGV[4])\n"
    "if ARGV[3] == '1' then\n"
    "  local had = redis.call('HDEL', KEYS[1], ARGV[6])\n"
    "  redis.call('ZREM', KEYS[2], ARGV[1])\n" TRIM_AND_PUBLISH(
        "ARGV[2]") "  return had\n"
                   "end\n"
                   "local new = redis.call('HSET', KEYS[1], ARGV[6], string.format('%d', now))\n"
                   "redis.call('ZADD', KEYS[2], '+inf', ARGV[1])\n" TRIM_AND_PUBLISH(
                       "ARGV[1]") "return new\n";
static struct store_script rev_aud_script = STORE_SCRIPT(rev_aud_lua);

ztb_err store_rev_audience(const char *audience, int lift, unsigned skew, int *changed)
{
    ZTB_ENSURE(store_id_ok(audience), ZTB_ERR_INVALID_ARG);
    char kill[EVENT_MAX], lifted[EVENT_MAX], s[16];
    ZTB_ENSURE(event_text(kill, REV_AUDIENCE, audience, 0, 0, 0) &&
                   event_text(lifted, REV_AUDIENCE, audience, 0, 0, 1),
               ZTB_ERR_TOO_LARGE);
    char n[24];
    snprintf(s, sizeof(s), "%u", skew);
    snprintf(n, sizeof(n), "%lld", (long long)broker_now());
    const char *argv[] = {ZTB_WIRE_AUD_KILLED_HASH,
                          ZTB_WIRE_REV_ZSET,
                          ZTB_WIRE_REV_SEQ_KEY,
                          kill,
                          lifted,
                          lift ? "1" : "0",
                          s,
                          n,
                          audience,
                          PUB_ARGS};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &rev_aud_script, 3, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    /* whatever the answer, this broker's view is reloaded before its next
     * issuance: a kill it acknowledges is in force here at once */
    aud_view_invalidate();
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "rev_audience");
    if (changed != NULL)
        *changed = r->integer == 1;
    freeReplyObject(r);
    return redis_wait_replicas();
}

/* KEYS: agent hash. ARGV: field, value. -1 unknown agent, 0 unchanged, 1 changed. */
static const char flag_lua[] = "local cur = redis.call('HMGET', KEYS[1], 'status', ARGV[1])\n"
                               "if not cur[1] then return -1 end\n"
                               "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
                               "if cur[2] == ARGV[2] then return 0 end\n"
                               "return 1\n";
static struct store_script flag_script = STORE_SCRIPT(flag_lua);

ztb_err store_agent_flag(const char *agent, const char *flag, int on, int *changed)
{
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    ZTB_ENSURE(strcmp(flag, "quarantined") == 0 || strcmp(flag, "approval") == 0,
               ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX];
    store_keyf(k, ZTB_WIRE_AGENT_KEY_FMT, agent);
    const char *argv[] = {k, flag, on ? "1" : "0"};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &flag_script, 1, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "agent_flag");
    long long v = r->integer;
    freeReplyObject(r);
    ZTB_ENSURE(v >= 0, ZTB_ERR_NOT_FOUND);
    if (changed != NULL)
        *changed = v == 1;
    return redis_wait_replicas();
}

ztb_err store_rev_list(unsigned skew, size_t limit, json_t **out)
{
    *out = NULL;
    redisReply *r;
    long long now = (long long)broker_now();
    char min[32], lim[24];
    snprintf(min, sizeof(min), "%lld", now - (long long)skew);
    snprintf(lim, sizeof(lim), "%zu", limit ? limit : 1);
    ZTB_GUARD(
        redis_commandf(&r, "ZRANGEBYSCORE %s %s +inf LIMIT 0 %s", ZTB_WIRE_REV_ZSET, min, lim));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "rev_list");
    json_t *arr = json_array();
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = r->element[i];
        json_t *ev = NULL;
        if (m->type == REDIS_REPLY_STRING)
            (void)ztb_json_gate_load(m->str, m->len, STORE_RECORD_JSON_MAX, ZTB_JSON_GATE_DEPTH, 0,
                                     &ev, NULL, 0);
        if (json_is_object(ev))
            json_array_append_new(arr, ev);
        else
            json_decref(ev);
    }
    freeReplyObject(r);
    *out = arr;
    return ZTB_OK;
}

/* KEYS: rev jti, ztb:{rev}:auds, key taint (all {rev}). ARGV: audience.
 * {revoked, killed, tainted}. */
static const char token_rev_lua[] = "return {redis.call('EXISTS', KEYS[1]),\n"
                                    "        redis.call('HEXISTS', KEYS[2], ARGV[1]),\n"
                                    "        redis.call('EXISTS', KEYS[3])}\n";
static struct store_script token_rev_script = STORE_SCRIPT(token_rev_lua);

/*
 * Three steps, each in one Redis Cluster slot: the revocation state
 * ({rev}), the agent's generation ({A}), then the single-use marker
 * (ztb:used:<jti>, shared with SDK verifiers). The marker is set only for a
 * token the first two found alive, SET NX, so exactly one caller consumes
 * it; a revocation landing between the reads and the SET is the same as
 * one landing just after the token was consumed.
 */
ztb_err store_token_state(const char *jti, const char *agent, const char *audience, const char *kid,
                          int64_t token_gen, uint64_t consume_ms, struct store_token_state *out)
{
    memset(out, 0, sizeof(*out));
    ZTB_ENSURE(store_id_ok(jti) && store_agent_name_ok(agent) && store_id_ok(audience) &&
                   store_id_ok(kid),
               ZTB_ERR_INVALID_ARG);
    char k1[STORE_KEY_MAX], k2[STORE_KEY_MAX], k4[STORE_KEY_MAX], k5[STORE_KEY_MAX], c[24];
    ZTB_ENSURE(store_keyf(k1, ZTB_WIRE_REV_JTI_KEY_FMT, jti) &&
                   store_keyf(k2, ZTB_WIRE_AGENT_KEY_FMT, agent) &&
                   store_keyf(k4, ZTB_WIRE_KEY_TAINTED_KEY_FMT, kid) &&
                   store_keyf(k5, ZTB_WIRE_USED_KEY_FMT, jti),
               ZTB_ERR_TOO_LARGE);
    const char *argv[] = {k1, ZTB_WIRE_AUD_KILLED_HASH, k4, audience};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &token_rev_script, 3, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (!store_reply_is_int_array(r, 3))
        return store_unexpected_reply(r, "token_state");
    out->revoked = store_reply_int(r, 0) != 0;
    out->killed = store_reply_int(r, 1) != 0;
    out->tainted = store_reply_int(r, 2) != 0;
    freeReplyObject(r);
    ZTB_GUARD(redis_commandf(&r, "HMGET %s status %s", k2, ZTB_WIRE_AGENT_GEN_FIELD));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return store_unexpected_reply(r, "token_state_agent");
    out->gen = -1;
    if (r->element[0]->type == REDIS_REPLY_STRING)
        out->gen = r->element[1]->type == REDIS_REPLY_STRING ? parse_ll(r->element[1]->str) : 0;
    freeReplyObject(r);
    int alive =
        !out->revoked && out->gen >= 0 && token_gen >= out->gen && !out->killed && !out->tainted;
    if (consume_ms > 0) {
        if (!alive)
            return ZTB_OK;
        int cl = snprintf(c, sizeof(c), "%llu", (unsigned long long)consume_ms);
        const char *sargv[] = {"SET", k5, "1", "NX", "PX", c};
        size_t lens[] = {3, strlen(k5), 1, 2, 2, (size_t)cl};
        ZTB_GUARD(redis_command(&r, 6, sargv, lens));
        if (r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_NIL)
            return store_unexpected_reply(r, "token_state_consume");
        out->consumed = r->type == REDIS_REPLY_STATUS;
        out->used = !out->consumed;
        freeReplyObject(r);
        return ZTB_OK;
    }
    ZTB_GUARD(redis_commandf(&r, "EXISTS %s", k5));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "token_state_used");
    out->used = r->integer != 0;
    freeReplyObject(r);
    return ZTB_OK;
}

/* Shared with the other store_*.c files (store_internal.h) ----------------*/

void store_hex_sha256(const void *p, size_t n, char hex[65])
{
    hex_sha256(p, n, hex);
}

long long store_parse_ll(const char *s)
{
    return parse_ll(s);
}

ztb_err store_dpop_remember(const char *jkt, const char *jti, uint64_t keep_ms)
{
    ZTB_ENSURE(store_id_ok(jkt) && store_id_ok(jti) && keep_ms > 0, ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX];
    store_keyf(k, ZTB_WIRE_DPOP_KEY_FMT, jkt, jti);
    char px[24];
    int pl = snprintf(px, sizeof(px), "%llu", (unsigned long long)keep_ms);
    const char *argv[] = {"SET", k, "1", "NX", "PX", px};
    size_t lens[] = {3, strlen(k), 1, 2, 2, (size_t)pl};
    redisReply *r;
    ZTB_GUARD(redis_command(&r, 6, argv, lens));
    ztb_err rv = r->type == REDIS_REPLY_STATUS ? ZTB_OK
                 : r->type == REDIS_REPLY_NIL  ? ZTB_ERR_DPOP_REPLAY
                                               : store_unexpected_reply(r, "dpop_remember");
    if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_NIL)
        freeReplyObject(r);
    return rv;
}
