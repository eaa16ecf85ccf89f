/*
 * store_rev.c - revocation state, signals, sources, operator actions and
 * detector counters in Redis (see store_rev.h for the keys).
 *
 * How it works: every change that must be atomic is one Lua script sent
 * with EVALSHA (EVAL on NOSCRIPT). Revocation events are built here, in C,
 * by the one encoder verifiers' decoder is built with (wire/revevent.h), so
 * the member stored in ztb:revocations and the message published are the
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
 * Must never: store a source secret (only its SHA-256), write a revocation
 * without announcing it (or announce one it did not write), or accept an id
 * that could break a key name (store_id_ok first).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "broker/redis_client.h"
#include "broker/store_internal.h"
#include "broker/store_rev.h"
#include "common/json_gate.h"
#include "common/base64url.h"
#include "common/buf.h"
#include "common/guard.h"
#include "common/secret.h"
#include "wire/revevent.h"
#include "wire/wire.h"

#define RECORD_JSON_MAX (1u << 20) /* one record read back from Redis, JSON */
#define EVENT_MAX       (STORE_ID_MAX * 2 + 128)
#define SIGNALS_MAXLEN  "10000"

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

/* The start of an agent event, which the script ends (revevent.h). */
static int agent_event_prefix(char *out, const char *agent)
{
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, EVENT_MAX);
    return rev_event_agent_prefix(agent, &b) == ZTB_OK && ztb_buf_cstr(&b) != NULL;
}

/* ---- revocations --------------------------------------------------------- */

/* The broker's wall clock: the only clock revocation expiries are read from. */
static int64_t broker_now(void)
{
    return (int64_t)time(NULL);
}

/* Shared tail of every revocation script: trim what no verifier needs any
 * more, then announce. The script has set now (the broker's clock) and
 * skew from its ARGV; the channel is fixed. */
#define TRIM_AND_PUBLISH(member)                                                                   \
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - skew))\n"                       \
    "redis.call('PUBLISH', '" ZTB_WIRE_REV_CHANNEL "', " member ")\n"

/* KEYS: ztb:rev:jti:<jti> (or ztb:key:<kid>:tainted), ztb:revocations.
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
    const char *argv[] = {k, ZTB_WIRE_REV_ZSET, event, t, e, n, s};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &rev_until_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER || r->integer != 1)
        return store_unexpected_reply(r, "rev_until");
    if (applied != NULL)
        *applied = 1;
    freeReplyObject(r);
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

/* KEYS: agent hash, ztb:revocations. ARGV: event prefix (up to "gen":),
 * max ttl, skew, now (the broker's clock). */
static const char rev_agent_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 0} end\n"
    "local now = tonumber(ARGV[4])\n"
    "local skew = tonumber(ARGV[3])\n"
    "local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)\n"
    "local exp = now + tonumber(ARGV[2])\n"
    "local ev = ARGV[1] .. " REV_AGENT_EVENT_TAIL_LUA "\n"
    "redis.call('ZADD', KEYS[2], exp, ev)\n" TRIM_AND_PUBLISH("ev") "return {1, gen, exp}\n";
static struct store_script rev_agent_script = STORE_SCRIPT(rev_agent_lua);

ztb_err store_rev_agent(const char *agent, unsigned max_ttl, unsigned skew, int64_t *gen,
                        int64_t *exp)
{
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX], prefix[EVENT_MAX], ttl[16], s[16];
    ZTB_ENSURE(store_keyf(k, ZTB_WIRE_AGENT_KEY_FMT, agent) && agent_event_prefix(prefix, agent),
               ZTB_ERR_TOO_LARGE);
    char n[24];
    snprintf(ttl, sizeof(ttl), "%u", max_ttl ? max_ttl : 1);
    snprintf(s, sizeof(s), "%u", skew);
    snprintf(n, sizeof(n), "%lld", (long long)broker_now());
    const char *argv[] = {k, ZTB_WIRE_REV_ZSET, prefix, ttl, s, n};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &rev_agent_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (!store_reply_is_int_array(r, 3))
        return store_unexpected_reply(r, "rev_agent");
    int ok = store_reply_int(r, 0) == 1;
    if (gen != NULL)
        *gen = store_reply_int(r, 1);
    if (exp != NULL)
        *exp = store_reply_int(r, 2);
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

/* KEYS: ztb:aud:<aud>:killed, ztb:revocations. ARGV: kill event, lift
 * event, lift?, skew, now (the broker's clock). A kill has exp 0 (until
 * lifted): score +inf. */
static const char rev_aud_lua[] =
    "local now = tonumber(ARGV[5])\n"
    "local skew = tonumber(ARGV[4])\n"
    "if ARGV[3] == '1' then\n"
    "  local had = redis.call('DEL', KEYS[1])\n"
    "  redis.call('ZREM', KEYS[2], ARGV[1])\n" TRIM_AND_PUBLISH(
        "ARGV[2]") "  return had\n"
                   "end\n"
                   "local had = redis.call('EXISTS', KEYS[1])\n"
                   "redis.call('SET', KEYS[1], string.format('%d', now))\n"
                   "redis.call('ZADD', KEYS[2], '+inf', ARGV[1])\n" TRIM_AND_PUBLISH(
                       "ARGV[1]") "return 1 - had\n";
static struct store_script rev_aud_script = STORE_SCRIPT(rev_aud_lua);

ztb_err store_rev_audience(const char *audience, int lift, unsigned skew, int *changed)
{
    ZTB_ENSURE(store_id_ok(audience), ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX], kill[EVENT_MAX], lifted[EVENT_MAX], s[16];
    ZTB_ENSURE(store_keyf(k, ZTB_WIRE_AUD_KILLED_KEY_FMT, audience) &&
                   event_text(kill, REV_AUDIENCE, audience, 0, 0, 0) &&
                   event_text(lifted, REV_AUDIENCE, audience, 0, 0, 1),
               ZTB_ERR_TOO_LARGE);
    char n[24];
    snprintf(s, sizeof(s), "%u", skew);
    snprintf(n, sizeof(n), "%lld", (long long)broker_now());
    const char *argv[] = {k, ZTB_WIRE_REV_ZSET, kill, lifted, lift ? "1" : "0", s, n};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &rev_aud_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "rev_audience");
    if (changed != NULL)
        *changed = r->integer == 1;
    freeReplyObject(r);
    return ZTB_OK;
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
    return ZTB_OK;
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
            (void)ztb_json_gate_load(m->str, m->len, RECORD_JSON_MAX, ZTB_JSON_GATE_DEPTH, 0, &ev,
                                     NULL, 0);
        if (json_is_object(ev))
            json_array_append_new(arr, ev);
        else
            json_decref(ev);
    }
    freeReplyObject(r);
    *out = arr;
    return ZTB_OK;
}

/* KEYS: rev jti, agent hash, audience kill, key taint, used.
 * ARGV: token gen, consume ms (0: only look). */
static const char token_state_lua[] =
    "local revoked = redis.call('EXISTS', KEYS[1])\n"
    "local a = redis.call('HMGET', KEYS[2], 'status', 'gen')\n"
    "local gen = -1\n"
    "if a[1] then gen = tonumber(a[2] or '0') end\n"
    "local killed = redis.call('EXISTS', KEYS[3])\n"
    "local tainted = redis.call('EXISTS', KEYS[4])\n"
    "local used, consumed = 0, 0\n"
    "local alive = revoked == 0 and gen >= 0 and tonumber(ARGV[1]) >= gen and killed == 0\n"
    "  and tainted == 0\n"
    "if ARGV[2] ~= '0' then\n"
    "  if alive then\n"
    "    if redis.call('SET', KEYS[5], '1', 'NX', 'PX', ARGV[2]) then consumed = 1\n"
    "    else used = 1 end\n"
    "  end\n"
    "else\n"
    "  used = redis.call('EXISTS', KEYS[5])\n"
    "end\n"
    "return {revoked, gen, killed, tainted, used, consumed}\n";
static struct store_script token_state_script = STORE_SCRIPT(token_state_lua);

ztb_err store_token_state(const char *jti, const char *agent, const char *audience, const char *kid,
                          int64_t token_gen, uint64_t consume_ms, struct store_token_state *out)
{
    memset(out, 0, sizeof(*out));
    ZTB_ENSURE(store_id_ok(jti) && store_agent_name_ok(agent) && store_id_ok(audience) &&
                   store_id_ok(kid),
               ZTB_ERR_INVALID_ARG);
    char k1[STORE_KEY_MAX], k2[STORE_KEY_MAX], k3[STORE_KEY_MAX], k4[STORE_KEY_MAX],
        k5[STORE_KEY_MAX], g[24], c[24];
    ZTB_ENSURE(store_keyf(k1, ZTB_WIRE_REV_JTI_KEY_FMT, jti) &&
                   store_keyf(k2, ZTB_WIRE_AGENT_KEY_FMT, agent) &&
                   store_keyf(k3, ZTB_WIRE_AUD_KILLED_KEY_FMT, audience) &&
                   store_keyf(k4, ZTB_WIRE_KEY_TAINTED_KEY_FMT, kid) &&
                   store_keyf(k5, ZTB_WIRE_USED_KEY_FMT, jti),
               ZTB_ERR_TOO_LARGE);
    snprintf(g, sizeof(g), "%lld", (long long)token_gen);
    snprintf(c, sizeof(c), "%llu", (unsigned long long)consume_ms);
    const char *argv[] = {k1, k2, k3, k4, k5, g, c};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &token_state_script, 5, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (!store_reply_is_int_array(r, 6))
        return store_unexpected_reply(r, "token_state");
    out->revoked = store_reply_int(r, 0) != 0;
    out->gen = store_reply_int(r, 1);
    out->killed = store_reply_int(r, 2) != 0;
    out->tainted = store_reply_int(r, 3) != 0;
    out->used = store_reply_int(r, 4) != 0;
    out->consumed = store_reply_int(r, 5) != 0;
    freeReplyObject(r);
    return ZTB_OK;
}

/* ---- signal sources ------------------------------------------------------ */

/* KEYS: source hash, ztb:sources, secret key ("" if none), agent key ("" if
 * none). ARGV: name, secret hash, jwk, agent, created. 0: name taken, -1:
 * agent taken, 1: added. */
static const char source_add_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "if KEYS[4] ~= '' and redis.call('EXISTS', KEYS[4]) == 1 then return -1 end\n"
    "redis.call('HSET', KEYS[1], 'name', ARGV[1], 'secret', ARGV[2], 'jwk', ARGV[3],\n"
    "           'agent', ARGV[4], 'created', ARGV[5])\n"
    "redis.call('SADD', KEYS[2], ARGV[1])\n"
    "if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[1]) end\n"
    "if KEYS[4] ~= '' then redis.call('SET', KEYS[4], ARGV[1]) end\n"
    "return 1\n";
static struct store_script source_add_script = STORE_SCRIPT(source_add_lua);

ztb_err store_source_add(const char *name, const char *jwk, const char *agent, int64_t now,
                         char secret[STORE_SOURCE_SECRET_LEN + 1])
{
    ZTB_ENSURE(store_source_name_ok(name), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(agent == NULL || store_agent_name_ok(agent), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(jwk == NULL || strlen(jwk) < 4096, ZTB_ERR_TOO_LARGE);
    char k1[STORE_KEY_MAX], k3[STORE_KEY_MAX] = "", k4[STORE_KEY_MAX] = "", hex[65] = "",
                            created[24];
    store_keyf(k1, "ztb:src:%s", name);
    secret[0] = '\0';
    if (agent != NULL) {
        store_keyf(k4, "ztb:srcagent:%s", agent);
    } else {
        uint8_t raw[32];
        ZTB_GUARD(ztb_random(raw, sizeof(raw)));
        memcpy(secret, "ztbsrc_", 7);
        ztb_err rv =
            ztb_b64url_encode(raw, sizeof(raw), secret + 7, STORE_SOURCE_SECRET_LEN + 1 - 7, NULL);
        ztb_wipe(raw, sizeof(raw));
        ZTB_GUARD(rv);
        hex_sha256(secret, strlen(secret), hex);
        store_keyf(k3, "ztb:srcsec:%s", hex);
    }
    snprintf(created, sizeof(created), "%lld", (long long)now);
    const char *argv[] = {
        k1, "ztb:sources", k3, k4, name, hex, jwk ? jwk : "", agent ? agent : "", created};
    redisReply *r;
    ztb_err rv = store_eval(&r, &source_add_script, 4, (int)ZTB_ARRAY_LEN(argv), argv, NULL);
    if (rv == ZTB_OK && r->type != REDIS_REPLY_INTEGER)
        rv = store_unexpected_reply(r, "source_add");
    else if (rv == ZTB_OK) {
        rv = r->integer == 1 ? ZTB_OK : ZTB_ERR_EXISTS;
        freeReplyObject(r);
    }
    if (rv != ZTB_OK)
        ztb_wipe(secret, STORE_SOURCE_SECRET_LEN + 1);
    return rv;
}

/* KEYS: source hash, ztb:sources. ARGV: name. The secret and agent index
 * keys are named from the hash's fields (single Redis / Sentinel only, as
 * the agent set in store.c). */
static const char source_remove_lua[] =
    "local f = redis.call('HMGET', KEYS[1], 'secret', 'agent')\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "if f[1] and f[1] ~= '' then redis.call('DEL', 'ztb:srcsec:' .. f[1]) end\n"
    "if f[2] and f[2] ~= '' then redis.call('DEL', 'ztb:srcagent:' .. f[2]) end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('SREM', KEYS[2], ARGV[1])\n"
    "return 1\n";
static struct store_script source_remove_script = STORE_SCRIPT(source_remove_lua);

ztb_err store_source_remove(const char *name)
{
    ZTB_ENSURE(store_source_name_ok(name), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, "ztb:src:%s", name);
    const char *argv[] = {k, "ztb:sources", name};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &source_remove_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "source_remove");
    int ok = r->integer == 1;
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

ztb_err store_source_list(json_t **out)
{
    *out = NULL;
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "SMEMBERS ztb:sources"));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "source_list");
    const char **names = calloc(r->elements ? r->elements : 1, sizeof(*names));
    if (names == NULL) {
        freeReplyObject(r);
        return ZTB_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && store_source_name_ok(r->element[i]->str))
            names[n++] = r->element[i]->str;
    qsort(names, n, sizeof(*names), cmp_str);
    json_t *arr = json_array();
    ztb_err rv = ZTB_OK;
    for (size_t i = 0; i < n && rv == ZTB_OK; i++) {
        char k[STORE_KEY_MAX];
        store_keyf(k, "ztb:src:%s", names[i]);
        redisReply *h;
        rv = redis_commandf(&h, "HMGET %s secret jwk agent created", k);
        if (rv != ZTB_OK)
            break;
        if (h->type != REDIS_REPLY_ARRAY || h->elements != 4) {
            rv = store_unexpected_reply(h, "source_get");
            break;
        }
        const char *f[4];
        for (size_t j = 0; j < 4; j++)
            f[j] = h->element[j]->type == REDIS_REPLY_STRING ? h->element[j]->str : "";
        if (h->element[3]->type == REDIS_REPLY_STRING) {
            int is_agent = f[2][0] != '\0';
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s?,s:b,s:I}", "name", names[i], "kind",
                                                 is_agent ? "agent" : "secret", "agent",
                                                 is_agent ? f[2] : NULL, "has_jwk", f[1][0] != '\0',
                                                 "created", (json_int_t)parse_ll(f[3])));
        }
        freeReplyObject(h);
    }
    free(names);
    freeReplyObject(r);
    if (rv != ZTB_OK) {
        json_decref(arr);
        return rv;
    }
    *out = arr;
    return ZTB_OK;
}

static ztb_err get_name(const char *k, char name[STORE_SOURCE_MAX + 1])
{
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "GET %s", k));
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return ZTB_ERR_NOT_FOUND;
    }
    if (r->type != REDIS_REPLY_STRING)
        return store_unexpected_reply(r, "source_get");
    int ok = store_source_name_ok(r->str);
    if (ok)
        snprintf(name, STORE_SOURCE_MAX + 1, "%s", r->str);
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

ztb_err store_source_by_secret(const char *secret, char name[STORE_SOURCE_MAX + 1])
{
    name[0] = '\0';
    /* the shape first: nothing else reaches Redis */
    ZTB_ENSURE(secret != NULL && strlen(secret) == STORE_SOURCE_SECRET_LEN &&
                   strncmp(secret, "ztbsrc_", 7) == 0,
               ZTB_ERR_NOT_FOUND);
    char hex[65], k[STORE_KEY_MAX];
    hex_sha256(secret, STORE_SOURCE_SECRET_LEN, hex);
    store_keyf(k, "ztb:srcsec:%s", hex);
    return get_name(k, name);
}

ztb_err store_source_by_agent(const char *agent, char name[STORE_SOURCE_MAX + 1])
{
    name[0] = '\0';
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, "ztb:srcagent:%s", agent);
    return get_name(k, name);
}

ztb_err store_source_jwk(const char *name, char *jwk, size_t cap)
{
    ZTB_ENSURE(store_source_name_ok(name), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, "ztb:src:%s", name);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HGET %s jwk", k));
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return ZTB_ERR_NOT_FOUND;
    }
    if (r->type != REDIS_REPLY_STRING)
        return store_unexpected_reply(r, "source_jwk");
    int ok = r->len > 0 && r->len < cap;
    if (ok)
        memcpy(jwk, r->str, r->len + 1);
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

/* ---- signals ------------------------------------------------------------- */

/* ztb:sigjti:<sha256(source 0x1f jti)>: hashed, because the jti is the
 * source's string; the key stays fixed-size. */
static ztb_err sigjti_key(const char *source, const char *jti, char k[STORE_KEY_MAX])
{
    ZTB_ENSURE(source != NULL && jti != NULL, ZTB_ERR_INVALID_ARG);
    char buf[STORE_SOURCE_MAX + STORE_ID_MAX + 8], hex[65];
    int n = snprintf(buf, sizeof(buf), "%s%c%s", source, 0x1f, jti);
    ZTB_ENSURE(n > 0 && (size_t)n < sizeof(buf), ZTB_ERR_TOO_LARGE);
    hex_sha256(buf, (size_t)n, hex);
    store_keyf(k, "ztb:sigjti:%s", hex);
    return ZTB_OK;
}

ztb_err store_signal_known(const char *source, const char *jti)
{
    char k[STORE_KEY_MAX];
    ZTB_GUARD(sigjti_key(source, jti, k));
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "EXISTS %s", k));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "signal_known");
    int seen = r->integer == 1;
    freeReplyObject(r);
    return seen ? ZTB_ERR_REPLAY : ZTB_OK;
}

ztb_err store_signal_seen(const char *source, const char *jti, unsigned ttl_s)
{
    char k[STORE_KEY_MAX];
    ZTB_GUARD(sigjti_key(source, jti, k));
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "SET %s 1 NX EX %u", k, ttl_s ? ttl_s : 1));
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return ZTB_ERR_REPLAY;
    }
    if (r->type != REDIS_REPLY_STATUS)
        return store_unexpected_reply(r, "signal_seen");
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_signal_record(const char *json)
{
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "XADD ztb:signals MAXLEN ~ " SIGNALS_MAXLEN " * data %s", json));
    if (r->type != REDIS_REPLY_STRING)
        return store_unexpected_reply(r, "signal_record");
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_signal_list(size_t limit, json_t **out)
{
    *out = NULL;
    redisReply *r;
    char n[24];
    snprintf(n, sizeof(n), "%zu", limit ? limit : 1); /* hiredis formats no %zu */
    ZTB_GUARD(redis_commandf(&r, "XREVRANGE ztb:signals + - COUNT %s", n));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "signal_list");
    json_t *arr = json_array();
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        /* [id, [field, value, ...]] */
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[1]->type != REDIS_REPLY_ARRAY || e->element[1]->elements < 2)
            continue;
        const redisReply *v = e->element[1]->element[1];
        json_t *j = NULL;
        if (v->type == REDIS_REPLY_STRING)
            (void)ztb_json_gate_load(v->str, v->len, RECORD_JSON_MAX, ZTB_JSON_GATE_DEPTH, 0, &j,
                                     NULL, 0);
        if (json_is_object(j))
            json_array_append_new(arr, j);
        else
            json_decref(j);
    }
    freeReplyObject(r);
    *out = arr;
    return ZTB_OK;
}

/* KEYS: sources zset, source -> signal hash. ARGV: source, signal id,
 * window, need. Returns {have, fired, "id,id,..."}. */
static const char dual_lua[] =
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local w = tonumber(ARGV[3])\n"
    "local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - w))\n"
    "for _, m in ipairs(old) do redis.call('HDEL', KEYS[2], m) end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - w))\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
    "local members = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
    "local sigs = {}\n"
    "for _, m in ipairs(members) do sigs[#sigs + 1] = redis.call('HGET', KEYS[2], m) or '' end\n"
    "local fired = 0\n"
    "if #members >= tonumber(ARGV[4]) then\n"
    "  redis.call('DEL', KEYS[1], KEYS[2])\n"
    "  fired = 1\n"
    "else\n"
    "  redis.call('EXPIRE', KEYS[1], w)\n"
    "  redis.call('EXPIRE', KEYS[2], w)\n"
    "end\n"
    "return {#members, fired, table.concat(sigs, ',')}\n";
static struct store_script dual_script = STORE_SCRIPT(dual_lua);

ztb_err store_dual_count(const char *target_kind, const char *target, const char *entry,
                         const char *source, const char *signal_id, unsigned window_s,
                         unsigned need, unsigned *have, int *fired, char *signal_ids, size_t cap)
{
    *have = 0;
    *fired = 0;
    if (cap > 0)
        signal_ids[0] = '\0';
    ZTB_ENSURE(store_id_ok(target) && store_id_ok(entry) && store_id_ok(source) &&
                   store_id_ok(signal_id),
               ZTB_ERR_INVALID_ARG);
    char k1[STORE_KEY_MAX], k2[STORE_KEY_MAX], w[16], nd[16];
    int ok = strcmp(target_kind, "agent") == 0
                 ? store_agent_name_ok(target) && store_keyf(k1, "ztb:{%s}:dual:%s", target, entry)
                 : store_keyf(k1, "ztb:dual:%s:%s:%s", target_kind, target, entry);
    ZTB_ENSURE(ok && store_keyf(k2, "%s:sig", k1), ZTB_ERR_TOO_LARGE);
    snprintf(w, sizeof(w), "%u", window_s ? window_s : 1);
    snprintf(nd, sizeof(nd), "%u", need ? need : 1);
    const char *argv[] = {k1, k2, source, signal_id, w, nd};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &dual_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (!store_reply_is_int_array(r, 3) || r->element[2]->type != REDIS_REPLY_STRING)
        return store_unexpected_reply(r, "dual_count");
    int64_t h = store_reply_int(r, 0);
    *have = h < 0 ? 0 : (unsigned)h;
    *fired = store_reply_int(r, 1) == 1;
    if (cap > 0)
        snprintf(signal_ids, cap, "%s", r->element[2]->str);
    freeReplyObject(r);
    return ZTB_OK;
}

/* ---- operator confirmation ----------------------------------------------- */

/* KEYS: pending-by-target key, action hash, ztb:actions. ARGV: id, entry,
 * response, kind, target, target exp, signals, created, ttl. */
static const char action_create_lua[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then\n"
    "  local k = 'ztb:action:' .. cur\n"
    "  local s = redis.call('HGET', k, 'signals')\n"
    "  if s then\n"
    "    if #s + #ARGV[7] < 480 and not string.find(',' .. s .. ',', ',' .. ARGV[7] .. ',', 1,\n"
    "       true) then\n"
    "      redis.call('HSET', k, 'signals', s .. ',' .. ARGV[7])\n"
    "    end\n"
    "    return {0, cur}\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[2], 'id', ARGV[1], 'entry', ARGV[2], 'response', ARGV[3],\n"
    "           'target_kind', ARGV[4], 'target', ARGV[5], 'target_exp', ARGV[6],\n"
    "           'signals', ARGV[7], 'created', ARGV[8], 'status', 'pending')\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[9])\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[9])\n"
    "redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (tonumber(ARGV[8]) - "
    "tonumber(ARGV[9])))\n"
    "return {1, ARGV[1]}\n";
static struct store_script action_create_script = STORE_SCRIPT(action_create_lua);

ztb_err store_action_create(struct store_action *a, int64_t now, int *created)
{
    *created = 0;
    ZTB_ENSURE(store_id_ok(a->entry) && store_id_ok(a->target) && store_id_ok(a->response) &&
                   store_id_ok(a->target_kind),
               ZTB_ERR_INVALID_ARG);
    uint8_t raw[12];
    ZTB_GUARD(ztb_random(raw, sizeof(raw)));
    snprintf(a->id, sizeof(a->id), "act_");
    ZTB_GUARD(ztb_b64url_encode(raw, sizeof(raw), a->id + 4, sizeof(a->id) - 4, NULL));
    char k1[STORE_KEY_MAX], k2[STORE_KEY_MAX], exp[24], cr[24], ttl[16];
    ZTB_ENSURE(store_keyf(k1, "ztb:actpend:%s:%s:%s", a->entry, a->target_kind, a->target) &&
                   store_keyf(k2, "ztb:action:%s", a->id),
               ZTB_ERR_TOO_LARGE);
    snprintf(exp, sizeof(exp), "%lld", (long long)a->target_exp);
    snprintf(cr, sizeof(cr), "%lld", (long long)now);
    snprintf(ttl, sizeof(ttl), "%d", STORE_ACTION_TTL);
    const char *argv[] = {
        k1,        k2,  "ztb:actions", a->id, a->entry, a->response, a->target_kind,
        a->target, exp, a->signals,    cr,    ttl};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &action_create_script, 3, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (!store_reply_is_int_array(r, 2) || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[1]->len >= sizeof(a->id))
        return store_unexpected_reply(r, "action_create");
    *created = store_reply_int(r, 0) == 1;
    memcpy(a->id, r->element[1]->str, r->element[1]->len + 1);
    snprintf(a->status, sizeof(a->status), "pending");
    a->created = now;
    freeReplyObject(r);
    return ZTB_OK;
}

/* Fields of an action hash, in this order, for HMGET and the decide script. */
#define ACTION_FIELDS  "id entry response target_kind target target_exp signals status created"
#define ACTION_NFIELDS 9

static void action_from(const redisReply *const *f, struct store_action *a)
{
    memset(a, 0, sizeof(*a));
    const char *v[ACTION_NFIELDS];
    for (size_t i = 0; i < ACTION_NFIELDS; i++)
        v[i] = f[i]->type == REDIS_REPLY_STRING ? f[i]->str : "";
    snprintf(a->id, sizeof(a->id), "%s", v[0]);
    snprintf(a->entry, sizeof(a->entry), "%s", v[1]);
    snprintf(a->response, sizeof(a->response), "%s", v[2]);
    snprintf(a->target_kind, sizeof(a->target_kind), "%s", v[3]);
    snprintf(a->target, sizeof(a->target), "%s", v[4]);
    a->target_exp = parse_ll(v[5]);
    snprintf(a->signals, sizeof(a->signals), "%s", v[6]);
    snprintf(a->status, sizeof(a->status), "%s", v[7]);
    a->created = parse_ll(v[8]);
}

/* KEYS: action hash. ARGV: new status, by, now. Returns {code, fields...}:
 * 0 unknown, 2 already decided, 1 done. */
static const char action_decide_lua[] =
    "local st = redis.call('HGET', KEYS[1], 'status')\n"
    "if not st then return {0} end\n"
    "local ok = st == 'pending' or (ARGV[1] == 'confirmed' and st == 'failed')\n"
    "if ok then\n"
    "  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'decided_by', ARGV[2],\n"
    "             'decided_at', ARGV[3])\n"
    "  local f = redis.call('HMGET', KEYS[1], 'entry', 'target_kind', 'target')\n"
    "  redis.call('DEL', 'ztb:actpend:' .. f[1] .. ':' .. f[2] .. ':' .. f[3])\n"
    "end\n"
    "local out = redis.call('HMGET', KEYS[1], 'id', 'entry', 'response', 'target_kind', 'target',\n"
    "                       'target_exp', 'signals', 'status', 'created')\n"
    "table.insert(out, 1, ok and 1 or 2)\n"
    "return out\n";
static struct store_script action_decide_script = STORE_SCRIPT(action_decide_lua);

ztb_err store_action_decide(const char *id, int confirm, const char *by, int64_t now,
                            struct store_action *a)
{
    memset(a, 0, sizeof(*a));
    ZTB_ENSURE(store_id_ok(id) && strlen(id) < sizeof(a->id), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX], t[24];
    store_keyf(k, "ztb:action:%s", id);
    snprintf(t, sizeof(t), "%lld", (long long)now);
    const char *argv[] = {k, confirm ? "confirmed" : "rejected", by, t};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &action_decide_script, 1, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "action_decide");
    long long code = r->element[0]->integer;
    if (code == 0) {
        freeReplyObject(r);
        return ZTB_ERR_NOT_FOUND;
    }
    if (r->elements != 1 + ACTION_NFIELDS)
        return store_unexpected_reply(r, "action_decide");
    action_from((const redisReply *const *)r->element + 1, a);
    freeReplyObject(r);
    return code == 1 ? ZTB_OK : ZTB_ERR_STATE;
}

ztb_err store_action_set_status(const char *id, const char *status)
{
    ZTB_ENSURE(store_id_ok(id), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, "ztb:action:%s", id);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "EVAL %s 1 %s %s",
                             "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
                             "redis.call('HSET', KEYS[1], 'status', ARGV[1]) return 1",
                             k, status));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "action_set_status");
    int ok = r->integer == 1;
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

ztb_err store_action_list(size_t limit, json_t **out)
{
    *out = NULL;
    redisReply *r;
    char last[24];
    snprintf(last, sizeof(last), "%zu", limit ? limit - 1 : 0); /* hiredis formats no %zu */
    ZTB_GUARD(redis_commandf(&r, "ZREVRANGE ztb:actions 0 %s", last));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "action_list");
    json_t *arr = json_array();
    ztb_err rv = ZTB_OK;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING || !store_id_ok(m->str))
            continue;
        char k[STORE_KEY_MAX];
        store_keyf(k, "ztb:action:%s", m->str);
        redisReply *h;
        rv = redis_commandf(&h, "HMGET %s " ACTION_FIELDS, k);
        if (rv != ZTB_OK)
            break;
        if (h->type != REDIS_REPLY_ARRAY || h->elements != ACTION_NFIELDS) {
            rv = store_unexpected_reply(h, "action_get");
            break;
        }
        if (h->element[0]->type == REDIS_REPLY_STRING) { /* else expired */
            struct store_action a;
            action_from((const redisReply *const *)h->element, &a);
            json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "id", a.id, "entry", a.entry,
                                  "response", a.response, "target_kind", a.target_kind, "target",
                                  a.target, "signals", a.signals, "status", a.status, "created",
                                  (json_int_t)a.created);
            if (a.target_exp > 0)
                json_object_set_new(o, "target_exp", json_integer(a.target_exp));
            json_array_append_new(arr, o);
        }
        freeReplyObject(h);
    }
    freeReplyObject(r);
    if (rv != ZTB_OK) {
        json_decref(arr);
        return rv;
    }
    *out = arr;
    return ZTB_OK;
}

/* ---- detectors ----------------------------------------------------------- */

static const char detect_count_lua[] = "local n = redis.call('INCR', KEYS[1])\n"
                                       "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
                                       "return n\n";
static struct store_script detect_count_script = STORE_SCRIPT(detect_count_lua);

ztb_err store_detect_count(const char *agent, const char *kind, unsigned window_s, int64_t *count)
{
    *count = 0;
    ZTB_ENSURE(store_agent_name_ok(agent) && store_id_ok(kind), ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX], w[16];
    ZTB_ENSURE(store_keyf(k, "ztb:{%s}:det:%s", agent, kind), ZTB_ERR_TOO_LARGE);
    snprintf(w, sizeof(w), "%u", window_s ? window_s : 1);
    const char *argv[] = {k, w};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &detect_count_script, 1, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "detect_count");
    *count = r->integer;
    freeReplyObject(r);
    return ZTB_OK;
}

/* KEYS: audience set, agent hash. ARGV: audience, learning period.
 * -1 unknown agent, 1 new after learning, 0 otherwise. */
static const char detect_aud_lua[] =
    "if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end\n"
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local since = tonumber(redis.call('HGET', KEYS[2], 'auds_since') or '')\n"
    "if not since then\n"
    "  since = now\n"
    "  redis.call('HSET', KEYS[2], 'auds_since', string.format('%d', now))\n"
    "end\n"
    "local added = redis.call('SADD', KEYS[1], ARGV[1])\n"
    "if added == 1 and now - since >= tonumber(ARGV[2]) then return 1 end\n"
    "return 0\n";
static struct store_script detect_aud_script = STORE_SCRIPT(detect_aud_lua);

ztb_err store_detect_audience(const char *agent, const char *audience, unsigned learn_s, int *fire)
{
    *fire = 0;
    ZTB_ENSURE(store_agent_name_ok(agent) && store_id_ok(audience), ZTB_ERR_INVALID_ARG);
    char k1[STORE_KEY_MAX], k2[STORE_KEY_MAX], l[16];
    store_keyf(k1, "ztb:{%s}:auds", agent);
    store_keyf(k2, ZTB_WIRE_AGENT_KEY_FMT, agent);
    snprintf(l, sizeof(l), "%u", learn_s);
    const char *argv[] = {k1, k2, audience, l};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &detect_aud_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "detect_audience");
    long long v = r->integer;
    freeReplyObject(r);
    ZTB_ENSURE(v >= 0, ZTB_ERR_NOT_FOUND);
    *fire = v == 1;
    return ZTB_OK;
}
