/*
 * store.c - ztb's Redis data model (see store.h).
 *
 * Scripts are sent with EVALSHA (loaded on first NOSCRIPT), so each request
 * costs one round trip. Every script, here and in store_rev.c, is a struct
 * store_script run through store_eval, which computes its SHA once however
 * many threads ask first. Script replies are small integer arrays; anything
 * else from Redis is treated as UNAVAILABLE (fail closed), never guessed at.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "broker/store/redis_client.h"
#include "broker/store/store.h"
#include "broker/store/store_baseline.h"
#include "broker/store/store_internal.h"
#include "broker/store/store_lease.h"
#include "broker/store/store_rev.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "common/log.h"
#include "common/secret.h"
#include "pki/spiffe.h"
#include "wire/wire.h"

#define KEY_MAX 512
/* The names of registered agents (SET; its own Cluster slot). */
#define STORE_AGENTS_KEY "ztb:agents"

int store_agent_name_ok(const char *name)
{
    return ztb_agent_name_ok(name);
}

/* Format a key into out (KEY_MAX bytes); 0 if it would not fit. */
__attribute__((format(printf, 2, 3))) static int key(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, KEY_MAX, fmt, ap);
    va_end(ap);
    return n > 0 && n < KEY_MAX;
}

/* Redis reply helpers -------------------------------------------------------*/

static int is_int_array(const redisReply *r, size_t min)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < min)
        return 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER && r->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

/* A decimal integer we wrote ourselves; 0 if it is not one (callers treat
 * Redis contents as untrusted all the same). */
static int64_t parse_i64(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' ? (int64_t)v : 0;
}

static int64_t elem_int(const redisReply *r, size_t i)
{
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    return parse_i64(e->str);
}

/* A reply we did not expect: log it (type only) and fail closed. */
static ztb_err unexpected(redisReply *r, const char *what)
{
    ztb_log(ZTB_LOG_ERROR, "store.unexpected_reply", ZTB_F_STR("op", what),
            ZTB_F_INT("type", r ? r->type : -1),
            ZTB_F_STR("detail", r && r->type == REDIS_REPLY_ERROR ? r->str : ""));
    if (r != NULL)
        freeReplyObject(r);
    return ZTB_ERR_UNAVAILABLE;
}

/* Agents -------------------------------------------------------------------*/

/* A deleted name's tombstone keeps its generation: the new agent starts
 * above it (never a generation that was handed out before). */
static const char agent_add_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
    "  if redis.call('HGET', KEYS[1], 'status') ~= 'deleted' then return 0 end\n"
    "  local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') + 1\n"
    "  redis.call('HSET', KEYS[1], 'status', 'active', 'gen', gen, 'quarantined', 0,\n"
    "             'approval', 0, 'created', ARGV[2])\n"
    "  redis.call('HINCRBY', KEYS[1], 'inc', 1)\n"
    "else\n"
    "  redis.call('HSET', KEYS[1], 'status', 'active', 'gen', 1, 'quarantined', 0,\n"
    "             'approval', 0, 'created', ARGV[2])\n"
    "end\n"
    "return 1\n";
static struct store_script agent_add_script = STORE_SCRIPT(agent_add_lua);

void store_init(void)
{
}

ztb_err store_agent_add(const char *name, int64_t now)
{
    ZTB_ENSURE(store_agent_name_ok(name), ZTB_ERR_INVALID_ARG);
    char k[KEY_MAX], created[24];
    key(k, ZTB_WIRE_AGENT_KEY_FMT, name);
    snprintf(created, sizeof(created), "%lld", (long long)now);
    /* The name set (ztb:agents) is in another Cluster slot than the
     * agent's {A} keys, so it is written first, on its own: a name listed
     * whose agent the script then did not create is harmless (the list
     * reads each agent), an agent never listed would be lost to operators. */
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "SADD %s %s", STORE_AGENTS_KEY, name));
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(r, "agent_list_add");
    freeReplyObject(r);
    const char *argv[] = {k, name, created};
    ZTB_GUARD(store_eval(&r, &agent_add_script, 1, 3, argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(r, "agent_add");
    int added = r->integer == 1;
    freeReplyObject(r);
    return added ? ZTB_OK : ZTB_ERR_EXISTS;
}

static const char agent_delete_lua[] = "local st = redis.call('HGET', KEYS[1], 'status')\n"
                                       "if not st or st == 'deleted' then return 0 end\n"
                                       "redis.call('HSET', KEYS[1], 'status', 'deleted')\n"
                                       "return 1\n";
static struct store_script agent_delete_script = STORE_SCRIPT(agent_delete_lua);

ztb_err store_agent_delete(const char *name)
{
    ZTB_ENSURE(store_agent_name_ok(name), ZTB_ERR_NOT_FOUND);
    char k[KEY_MAX];
    key(k, ZTB_WIRE_AGENT_KEY_FMT, name);
    const char *argv[] = {k};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &agent_delete_script, 1, 1, argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(r, "agent_delete");
    int deleted = r->integer == 1;
    freeReplyObject(r);
    /* the name set is in another Cluster slot: unlisted after the agent is
     * marked deleted, and again by a retry (the script then says 0) */
    ZTB_GUARD(redis_commandf(&r, "SREM %s %s", STORE_AGENTS_KEY, name));
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(r, "agent_list_remove");
    freeReplyObject(r);
    return deleted ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

ztb_err store_agent_get(const char *name, struct store_agent *out)
{
    ZTB_ENSURE(store_agent_name_ok(name), ZTB_ERR_NOT_FOUND);
    char k[KEY_MAX];
    key(k, ZTB_WIRE_AGENT_KEY_FMT, name);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HMGET %s status gen quarantined approval created inc", k));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 6)
        return unexpected(r, "agent_get");
    if (r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "deleted") == 0) {
        freeReplyObject(r);
        return ZTB_ERR_NOT_FOUND;
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", name);
    snprintf(out->status, sizeof(out->status), "%s", r->element[0]->str);
    out->generation = r->element[1]->type == REDIS_REPLY_STRING ? parse_i64(r->element[1]->str) : 0;
    out->quarantined =
        r->element[2]->type == REDIS_REPLY_STRING && strcmp(r->element[2]->str, "1") == 0;
    out->approval_required =
        r->element[3]->type == REDIS_REPLY_STRING && strcmp(r->element[3]->str, "1") == 0;
    out->created = r->element[4]->type == REDIS_REPLY_STRING ? parse_i64(r->element[4]->str) : 0;
    out->incarnation =
        r->element[5]->type == REDIS_REPLY_STRING ? parse_i64(r->element[5]->str) : 0;
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_agent_set_status(const char *name, const char *status)
{
    ZTB_ENSURE(store_agent_name_ok(name), ZTB_ERR_NOT_FOUND);
    ZTB_ENSURE(strcmp(status, "active") == 0 || strcmp(status, "disabled") == 0,
               ZTB_ERR_INVALID_ARG);
    char k[KEY_MAX];
    key(k, ZTB_WIRE_AGENT_KEY_FMT, name);
    redisReply *r;
    /* HSET only if the hash exists: set-if-present in one round trip */
    ZTB_GUARD(redis_commandf(&r, "EVAL %s 1 %s %s",
                             "local st = redis.call('HGET', KEYS[1], 'status') "
                             "if not st or st == 'deleted' then return 0 end "
                             "redis.call('HSET', KEYS[1], 'status', ARGV[1]) return 1",
                             k, status));
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(r, "agent_set_status");
    int ok = r->integer == 1;
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

ztb_err store_agent_list(char (**names)[STORE_NAME_MAX + 1], size_t *n)
{
    *names = NULL;
    *n = 0;
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "SMEMBERS %s", STORE_AGENTS_KEY));
    if (r->type != REDIS_REPLY_ARRAY)
        return unexpected(r, "agent_list");
    char(*out)[STORE_NAME_MAX + 1] = calloc(r->elements ? r->elements : 1, sizeof(*out));
    if (out == NULL) {
        freeReplyObject(r);
        return ZTB_ERR_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING && store_agent_name_ok(e->str))
            snprintf(out[k++], STORE_NAME_MAX + 1, "%s", e->str);
    }
    freeReplyObject(r);
    qsort(out, k, sizeof(*out), cmp_names);
    *names = out;
    *n = k;
    return ZTB_OK;
}

/* Join tokens ----------------------------------------------------------------*/

static void join_hash(const char *token, char hex[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), d);
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex[2 * i] = x[d[i] >> 4];
        hex[2 * i + 1] = x[d[i] & 15];
    }
    hex[64] = '\0';
    ztb_wipe(d, sizeof(d));
}

ztb_err store_join_create(const char *agent, unsigned ttl_s, int64_t now,
                          char token[STORE_JOIN_TOKEN_LEN + 1])
{
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    ZTB_ENSURE(ttl_s > 0 && ttl_s <= 7 * 86400, ZTB_ERR_INVALID_ARG);
    struct store_agent a;
    ZTB_GUARD(store_agent_get(agent, &a));
    uint8_t raw[32];
    ZTB_GUARD(ztb_random(raw, sizeof(raw)));
    /* the prefix; the encoder below writes the rest and the NUL */
    memcpy(token, "ztbj_", 5); // NOLINT(bugprone-not-null-terminated-result)
    ztb_err rv = ztb_b64url_encode(raw, sizeof(raw), token + 5, STORE_JOIN_TOKEN_LEN + 1 - 5, NULL);
    ztb_wipe(raw, sizeof(raw));
    ZTB_GUARD(rv);
    char hex[65], k[KEY_MAX], created[24], ttl[16];
    join_hash(token, hex);
    key(k, "ztb:join:{%s}", hex);
    snprintf(created, sizeof(created), "%lld", (long long)now);
    snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    redisReply *r;
    char inc[24];
    snprintf(inc, sizeof(inc), "%lld", (long long)a.incarnation);
    rv = redis_commandf(&r, "EVAL %s 1 %s %s %s %s %s",
                        "redis.call('HSET', KEYS[1], 'agent', ARGV[1], 'created', ARGV[2], "
                        "'inc', ARGV[4]) "
                        "redis.call('EXPIRE', KEYS[1], ARGV[3]) return 1",
                        k, agent, created, ttl, inc);
    if (rv != ZTB_OK) {
        ztb_wipe(token, STORE_JOIN_TOKEN_LEN + 1);
        return rv;
    }
    if (r->type != REDIS_REPLY_INTEGER) {
        ztb_wipe(token, STORE_JOIN_TOKEN_LEN + 1);
        return unexpected(r, "join_create");
    }
    freeReplyObject(r);
    return ZTB_OK;
}

static const char join_consume_lua[] = "local agent = redis.call('HGET', KEYS[1], 'agent')\n"
                                       "if not agent then\n"
                                       "  local used = redis.call('GET', KEYS[2])\n"
                                       "  if used then return {2, used} end\n"
                                       "  return {1, ''}\n"
                                       "end\n"
                                       "redis.call('DEL', KEYS[1])\n"
                                       "redis.call('SET', KEYS[2], agent, 'EX', 86400)\n"
                                       "return {0, agent}\n";
static struct store_script join_consume_script = STORE_SCRIPT(join_consume_lua);

ztb_err store_join_consume(const char *token, char agent[STORE_NAME_MAX + 1], int *reused)
{
    *reused = 0;
    agent[0] = '\0';
    /* the shape is checked first: nothing else reaches Redis */
    ZTB_ENSURE(token != NULL && strlen(token) == STORE_JOIN_TOKEN_LEN &&
                   strncmp(token, "ztbj_", 5) == 0,
               ZTB_ERR_JOIN_TOKEN);
    char hex[65], k1[KEY_MAX], k2[KEY_MAX];
    join_hash(token, hex);
    key(k1, "ztb:join:{%s}", hex);
    key(k2, "ztb:joinused:{%s}", hex);
    const char *argv[] = {k1, k2};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &join_consume_script, 2, 2, argv, NULL));
    if (!is_int_array(r, 2) || r->element[1]->type != REDIS_REPLY_STRING)
        return unexpected(r, "join_consume");
    int64_t code = elem_int(r, 0);
    const char *who = r->element[1]->str;
    if (code == 0 || code == 2) {
        if (!store_agent_name_ok(who)) {
            freeReplyObject(r);
            return ZTB_ERR_JOIN_TOKEN;
        }
        snprintf(agent, STORE_NAME_MAX + 1, "%s", who);
    }
    freeReplyObject(r);
    if (code == 0)
        return ZTB_OK;
    *reused = code == 2;
    return ZTB_ERR_JOIN_TOKEN;
}

/* The per-request check -------------------------------------------------------*/

/*
 * The GCRA step every rate-limit script shares (the token path's two
 * buckets, store_rate_take's one): with `now` in µs in scope,
 * gcra(stored TAT, interval µs, burst, want) returns, when at least one
 * unit is allowed, the new TAT to store for the units granted (0: no
 * limit), 0, nil, the units granted (1..want) and the TAT they are charged
 * from; when none is, -1, the µs to wait and, when the stored TAT was more
 * than one burst window ahead of now (Redis's clock stepped back), the
 * clamped TAT, which the caller stores although the request is refused.
 * With want 1 it is the classic one-request step.
 */
#define GCRA_LUA                                                                                   \
    "local function gcra(stored, interval, burst, want)\n"                                         \
    "  if interval <= 0 then return 0, 0, nil, want, 0 end\n"                                      \
    "  local tat = tonumber(stored or '0') or 0\n"                                                 \
    "  if tat < now then tat = now end\n"                                                          \
    "  local cap = now + burst * interval\n"                                                       \
    "  local clamped = nil\n"                                                                      \
    "  if tat > cap then tat = cap clamped = string.format('%d', cap) end\n"                       \
    "  local room = math.floor((now - tat) / interval) + burst\n"                                  \
    "  if room < 1 then return -1, tat + interval - burst * interval - now, clamped end\n"         \
    "  if room > want then room = want end\n"                                                      \
    "  return tat + room * interval, 0, nil, room, tat\n"                                          \
    "end\n"

/*
 * KEYS: the agent hash, the agent's activity record (which also holds its
 * two rate buckets), the DPoP proof's replay marker, the agent's baseline.
 * ARGV: agent interval_us, agent burst, action interval_us, action burst,
 * then what the caller's credential binds (generation, identity epoch,
 * identity document thumbprint; '' for any), the DPoP marker's life in ms
 * ('' for no proof), and '1' to go on to quarantine, audience and rates
 * ('0' stops after the caller). The caller is checked first: a stale
 * credential is refused before anything is remembered or charged.
 * GCRA: a request at time now is allowed if tat + interval - burst*interval
 * <= now, where tat = max(stored, now). Both buckets are checked before
 * either is charged, so a refused request costs nothing.
 *
 * now is Redis's clock, and a stored tat is never more than burst*interval
 * ahead of the now it was stored at. One further ahead means the clock
 * stepped back (a Redis restarted or failed over with its clock behind):
 * it is clamped to now + burst*interval (an empty bucket) and the clamp is
 * stored even when the request is refused (a repair, not a charge), so a
 * step back costs an agent at most one burst window, never the length of
 * the step. Only that rare path pays the extra write.
 *
 * Cost: this script runs for every token, and each redis.call costs Redis
 * ~1.5 µs beyond its own work plus, for a write, its copy to the AOF. So the
 * buckets are fields of the activity record (ztb:{A}:seen, fields 'rl' and
 * 'rl:<action>'): one HMGET reads both TATs and this hour's and this slot's
 * counts, one HSET writes all four and 'last'. A steady token costs four
 * calls (agent HMGET, TIME, that HMGET and HSET), plus the baseline's one
 * or two (BASELINE_LUA). A bucket field whose TAT has passed is the same as
 * no field; the hourly pass below drops such fields, so the record holds
 * at most one per action the agent used in the last hour. A number that
 * becomes a field name or value is formatted once with string.format('%d'):
 * Lua's `..` and Redis's conversion of a Lua number argument both go
 * through the C library's floating-point printf (~1 µs of the script's
 * ~18 in all, measured with redis-benchmark).
 *
 * An allowed request then goes to the agent's activity record and baseline
 * (ARGV[10..12] action, audience, resource prefix), see ACTIVITY_LUA and
 * BASELINE_LUA. Only this path writes them.
 */
/*
 * The activity record, ztb:{A}:seen: field 'last' = the last issuance
 * (Unix s), and one field per UTC hour (hours since the epoch) counting
 * the tokens issued in it. The first token of an hour drops the hours that
 * are a day old (and spent rate buckets), so the hash holds at most 25 hour
 * fields; it expires two days after the last new hour. Fields i:<slot>
 * count the tokens of each STORE_ACTIVITY_SLOT_S (300 s) slot of the last
 * hour (12 kept: the literals below), for `agent show`. With s = the HMGET
 * of {'rl', 'rl:<action>', hour, 'i:<slot>'} and n1, n2 the buckets' new
 * TATs (0: no limit), it writes them all with one HSET and leaves `cur`,
 * this hour's count.
 */
#define ACTIVITY_LUA                                                                               \
    "local cur = (tonumber(s[3] or '0') or 0) + inc\n"                                             \
    "local iq = (tonumber(s[4] or '0') or 0) + inc\n"                                              \
    "local w = {hrs, string.format('%d', cur), qs, string.format('%d', iq), 'last', t[1]}\n"       \
    "if n1 > 0 then w[7] = 'rl' w[8] = string.format('%d', n1) end\n"                              \
    "if n2 > 0 then w[#w + 1] = fa w[#w + 1] = string.format('%d', n2) end\n"                      \
    "redis.call('HSET', KEYS[2], unpack(w))\n"                                                     \
    "if iq == inc or cur == inc then\n"                                                            \
    "  local all = redis.call('HGETALL', KEYS[2])\n"                                               \
    "  for i = 1, #all, 2 do\n"                                                                    \
    "    local f = all[i]\n"                                                                       \
    "    local p = string.match(f, '^[id]:(%d+)$')\n"                                              \
    "    local h = tonumber(f)\n"                                                                  \
    "    if p then\n"                                                                              \
    "      if tonumber(p) <= q - 12 then redis.call('HDEL', KEYS[2], f) end\n"                     \
    "    elseif cur == inc and h then\n"                                                           \
    "      if h <= hr - 24 then redis.call('HDEL', KEYS[2], f) end\n"                              \
    "    elseif cur == inc and (f == 'rl' or string.sub(f, 1, 3) == 'rl:') and\n"                  \
    "           (tonumber(all[i + 1]) or 0) < now then\n"                                          \
    "      redis.call('HDEL', KEYS[2], f)\n"                                                       \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  if cur == inc then redis.call('EXPIRE', KEYS[2], 172800) end\n"                             \
    "end\n"
/*
 * The baseline, ztb:{A}:bl, kept only while the agent hash has bl_until
 * (store_baseline_start). Fields: a:<action>, u:<audience>, p:<prefix>
 * (the Unix time the value was learned; after learning a new value is
 * recorded as '-<time>'), h:<0-23> tokens learned per UTC hour of day,
 * ka ku kp (distinct values learned), days (the window in days). At most
 * 1024 fields: beyond that, new values are neither learned nor recorded
 * (and flagged STORE_BL_FULL after learning). One HMGET says which values
 * are known; only a new value is written, so a token costs 2 calls while
 * learning (HMGET, HINCRBY of its hour) and 1 after. Leaves bl = {phase,
 * new bits, learned this hour of day, days}.
 */
#define BASELINE_LUA                                                                               \
    "local bl = {0, 0, 0, 1}\n"                                                                    \
    "local till = tonumber(a[8] or '')\n"                                                          \
    "if till then\n"                                                                               \
    "  local hod = string.format('h:%d', hr % 24)\n"                                               \
    "  local f = {'a:' .. ARGV[10], 'u:' .. ARGV[11], 'p:' .. ARGV[12]}\n"                         \
    "  local m = ARGV[12] ~= '' and 3 or 2\n"                                                      \
    "  local learning = sec < till\n"                                                              \
    "  local v = redis.call('HMGET', KEYS[4], f[1], f[2], f[3], hod, 'days')\n"                    \
    "  local new, full = 0, 0\n"                                                                   \
    "  if not v[1] or not v[2] or (m == 3 and not v[3]) then\n"                                    \
    "    local room = redis.call('HLEN', KEYS[4]) < 1024\n"                                        \
    "    local kn, bits = {'ka', 'ku', 'kp'}, {1, 2, 4}\n"                                         \
    "    for i = 1, m do\n"                                                                        \
    "      if not v[i] then\n"                                                                     \
    "        if not learning then new = new + bits[i] end\n"                                       \
    "        if not room then full = 8\n"                                                          \
    "        elseif learning then\n"                                                               \
    "          redis.call('HSET', KEYS[4], f[i], t[1])\n"                                          \
    "          redis.call('HINCRBY', KEYS[4], kn[i], 1)\n"                                         \
    "        else redis.call('HSET', KEYS[4], f[i], '-' .. t[1]) end\n"                            \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  if learning then\n"                                                                         \
    "    redis.call('HINCRBY', KEYS[4], hod, 1)\n"                                                 \
    "    bl[1] = 1\n"                                                                              \
    "  else\n"                                                                                     \
    "    if new > 0 then new = new + full end\n"                                                   \
    "    bl = {2, new, tonumber(v[4] or '0') or 0, tonumber(v[5] or '1') or 1}\n"                  \
    "  end\n"                                                                                      \
    "end\n"

static const char issue_lua[] =
    "local a = redis.call('HMGET', KEYS[1], 'status', 'gen', 'quarantined', 'approval',\n"
    "                     'epoch', 'id_gen', 'x5t', 'bl_until')\n"
    "if not a[1] then return {1, 0, 0, 0} end\n"
    "if a[1] ~= 'active' then return {2, 0, 0, 0} end\n"
    "if a[6] ~= a[2] or (ARGV[5] ~= '' and a[2] ~= ARGV[5]) or\n"
    "   (ARGV[6] ~= '' and (a[5] or '0') ~= ARGV[6]) or\n"
    "   (ARGV[7] ~= '' and a[7] ~= ARGV[7]) then return {7, 0, 0, 0} end\n"
    "if ARGV[8] ~= '' and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[8]) then\n"
    "  return {8, 0, 0, 0}\n"
    "end\n"
    "local approval = a[4] == '1' and 1 or 0\n"
    "if ARGV[9] ~= '1' then return {0, tonumber(a[2]), 0, approval} end\n"
    "if a[3] == '1' then return {3, 0, 0, 0} end\n"
    "if ARGV[13] == '1' then return {4, 0, 0, 0} end\n"
    "local t = redis.call('TIME')\n"
    "local sec = tonumber(t[1])\n"
    "local now = sec * 1000000 + tonumber(t[2])\n"
    "local hr = math.floor(sec / 3600)\n"
    "local q = math.floor(sec / 300)\n"
    "local hrs, qs = string.format('%d', hr), string.format('i:%d', q)\n"
    "local fa = 'rl:' .. ARGV[10]\n"
    "local s = redis.call('HMGET', KEYS[2], 'rl', fa, hrs, qs)\n" GCRA_LUA
    "local want = tonumber(ARGV[14]) or 1\n"
    "local i1, i2 = tonumber(ARGV[1]), tonumber(ARGV[3])\n"
    "local n1, w1, c1, g1, t1 = gcra(s[1], i1, tonumber(ARGV[2]), want)\n"
    "if n1 < 0 then\n"
    "  if c1 then redis.call('HSET', KEYS[2], 'rl', c1) end\n"
    "  return {5, 0, math.ceil(w1 / 1000), 0}\n"
    "end\n"
    "local n2, w2, c2, g2, t2 = gcra(s[2], i2, tonumber(ARGV[4]), want)\n"
    "if n2 < 0 then\n"
    "  if c2 then redis.call('HSET', KEYS[2], fa, c2) end\n"
    "  return {6, 0, math.ceil(w2 / 1000), 0}\n"
    "end\n"
    "local got = g1 < g2 and g1 or g2\n"
    "if n1 > 0 and got < g1 then n1 = t1 + got * i1 end\n"
    "if n2 > 0 and got < g2 then n2 = t2 + got * i2 end\n"
    "local inc = 1\n" ACTIVITY_LUA BASELINE_LUA
    "return {0, tonumber(a[2]), 0, approval, bl[1], bl[2], cur, bl[3], bl[4], got, a[8] or '',\n"
    "        n1, n2}\n";
static struct store_script issue_script = STORE_SCRIPT(issue_lua);

/*
 * A rate lease's settlement (store_lease.h). KEYS: the agent hash, its
 * activity record, its baseline, the settlement's marker. ARGV: tokens
 * issued from the lease (not yet counted), the action, the agent and
 * action buckets' intervals (µs, 0: no limit), units charged and not used,
 * the TATs the refunded units' grants wrote (0: none). A settlement whose
 * marker exists was applied already (its answer was lost): nothing is done
 * again. The unused units come off each TAT, at most what their grant
 * still held ahead of now (store_lease_due) and never below now; the
 * tokens go to the activity record
 * (ACTIVITY_LUA with inc = their number) and, while the agent learns, to
 * its baseline's hour of day (their action, audience and prefix were known
 * to it: the lease's first token ran the issue script). Nothing is written
 * for an agent that is gone. Returns {this hour's count, phase, learned
 * this hour of day, days} as the issue script's cur and bl.
 */
static const char settle_lua[] =
    "if not redis.call('SET', KEYS[4], '1', 'NX', 'PX', 3600000) then return {0, 0, 0, 1} end\n"
    "local a = redis.call('HMGET', KEYS[1], 'status', 'bl_until')\n"
    "if not a[1] then return {0, 0, 0, 1} end\n"
    "local t = redis.call('TIME')\n"
    "local sec = tonumber(t[1])\n"
    "local now = sec * 1000000 + tonumber(t[2])\n"
    "local hr = math.floor(sec / 3600)\n"
    "local q = math.floor(sec / 300)\n"
    "local hrs, qs = string.format('%d', hr), string.format('i:%d', q)\n"
    "local fa = 'rl:' .. ARGV[2]\n"
    "local inc, r = tonumber(ARGV[1]), tonumber(ARGV[5])\n"
    "local s = redis.call('HMGET', KEYS[2], 'rl', fa, hrs, qs)\n"
    "local function back(v, interval, granted)\n"
    "  local tat = tonumber(v or '0') or 0\n"
    "  local ahead = (tonumber(granted) or 0) - now\n"
    "  if r <= 0 or interval <= 0 or tat <= now or ahead <= 0 then return 0 end\n"
    "  local give = r * interval\n"
    "  if give > ahead then give = ahead end\n"
    "  local b = tat - give\n"
    "  if b < now then b = now end\n"
    "  return b\n"
    "end\n"
    "local n1 = back(s[1], tonumber(ARGV[3]), ARGV[6])\n"
    "local n2 = back(s[2], tonumber(ARGV[4]), ARGV[7])\n"
    "if inc <= 0 then\n"
    "  local w = {}\n"
    "  if n1 > 0 then w[#w + 1] = 'rl' w[#w + 1] = string.format('%d', n1) end\n"
    "  if n2 > 0 then w[#w + 1] = fa w[#w + 1] = string.format('%d', n2) end\n"
    "  if #w > 0 then redis.call('HSET', KEYS[2], unpack(w)) end\n"
    "  return {0, 0, 0, 1}\n"
    "end\n" ACTIVITY_LUA "local bl = {0, 0, 1}\n"
    "local till = tonumber(a[2] or '')\n"
    "if till then\n"
    "  local hod = string.format('h:%d', hr % 24)\n"
    "  if sec < till then\n"
    "    redis.call('HINCRBY', KEYS[3], hod, inc)\n"
    "    bl[1] = 1\n"
    "  else\n"
    "    local v = redis.call('HMGET', KEYS[3], hod, 'days')\n"
    "    bl = {2, tonumber(v[1] or '0') or 0, tonumber(v[2] or '1') or 1}\n"
    "  end\n"
    "end\n"
    "return {cur, bl[1], bl[2], bl[3]}\n";
static struct store_script settle_script = STORE_SCRIPT(settle_lua);

static const char *script_sha(struct store_script *s);

/* A bucket's GCRA parameters: interval µs (0: no limit) and burst. */
static void rate_params(const struct store_rate *r, uint64_t *interval, uint32_t *burst)
{
    *interval = 0;
    *burst = 0;
    if (r == NULL || r->rate == 0 || r->period_s == 0)
        return;
    uint64_t us = (uint64_t)r->period_s * 1000000u / r->rate;
    *interval = us ? us : 1;
    *burst = r->burst ? r->burst : 1;
}

static void rate_args(const struct store_rate *r, char *interval, char *burst)
{
    uint64_t i;
    uint32_t b;
    rate_params(r, &i, &b);
    snprintf(interval, 24, "%llu", (unsigned long long)i);
    snprintf(burst, 16, "%u", (unsigned)b);
}

/* v as decimal text into out (24 bytes), or "" when v < 0 ("any"). */
static void expect_arg(int64_t v, char out[24])
{
    out[0] = '\0';
    if (v >= 0)
        snprintf(out, 24, "%lld", (long long)v);
}

/* The rate-lease path ------------------------------------------------------*/

/* Field i of an HMGET reply: NULL when absent (Lua's nil). */
static const redisReply *hfield(const redisReply *r, size_t i)
{
    const redisReply *e = r->element[i];
    return e->type == REDIS_REPLY_STRING ? e : NULL;
}

/* Two fields (or a field and text t) equal as Lua's == compares them: nil
 * only to nil, strings byte for byte, lengths included. */
static int same_field(const redisReply *a, const redisReply *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

static int field_is(const redisReply *a, const char *t)
{
    return a != NULL && a->len == strlen(t) && memcmp(a->str, t, a->len) == 0;
}

/*
 * The caller's verdict from those fields, in the issue script's order and
 * with its rules: unknown, not active, not the current identity. g, e, x:
 * the script's ARGV[5..7] ("" for any).
 */
static enum store_verdict caller_verdict(const redisReply *a, const char *g, const char *e,
                                         const char *x)
{
    const redisReply *status = hfield(a, 0), *gen = hfield(a, 1), *epoch = hfield(a, 4);
    if (status == NULL)
        return STORE_UNKNOWN_AGENT;
    if (!field_is(status, "active"))
        return STORE_DISABLED;
    if (!same_field(hfield(a, 5), gen) || (g[0] != '\0' && !field_is(gen, g)) ||
        (e[0] != '\0' && !(epoch ? field_is(epoch, e) : strcmp("0", e) == 0)) ||
        (x[0] != '\0' && !field_is(hfield(a, 6), x)))
        return STORE_STALE_IDENTITY;
    return STORE_OK;
}

/*
 * The agent's fields, read by a script that declares itself a write
 * (Redis 7's shebang without no-writes) although it writes nothing: Redis
 * refuses it exactly when it would refuse the issue script (READONLY on a
 * replica after a failover, NOREPLICAS below min-replicas-to-write, OOM,
 * LOADING), so a lease never issues a token from a Redis that could not
 * have charged one, and the refusal moves the connection on as the issue
 * script's does. It is not copied to the AOF or the replicas. A Redis
 * before 7.0 cannot compile it: leases are then turned off (g_no_leases)
 * and every request runs the issue script.
 */
static const char agent_read_lua[] = "#!lua\n"
                                     "return redis.call('HMGET', KEYS[1], 'status', 'gen', "
                                     "'quarantined', 'approval', 'epoch', 'id_gen', 'x5t', "
                                     "'bl_until')\n";
static struct store_script agent_read_script = STORE_SCRIPT(agent_read_lua);
static atomic_int g_no_leases;

void store_leases_off(const char *why)
{
    if (!atomic_exchange(&g_no_leases, 1))
        ztb_log(ZTB_LOG_WARN, "store.leases_off", ZTB_F_STR("why", why),
                ZTB_F_STR("effect", "every token runs the issue script"));
}

/* What lease_check leaves to the issue script. */
enum lease_outcome {
    LEASE_DONE,          /* out (or *rv) holds the answer */
    LEASE_SCRIPT,        /* run the script: nothing was recorded */
    LEASE_SCRIPT_MARKED, /* run the script: the DPoP proof is recorded */
};

/*
 * A token request while this broker holds a rate lease for it
 * (store_lease.h): the caller, its DPoP proof, quarantine and the audience
 * are checked against Redis's agent now, exactly as the issue script
 * checks them, and the rate limits by taking a leased unit. When no unit
 * is left after all, the script must run, asking for *want units.
 */
static enum lease_outcome lease_check(const char *k1, const char *k3,
                                      const struct store_expect *expect, const char *g,
                                      const char *e, const char *ttl, int killed,
                                      const struct store_lease_id *lid, uint64_t now_ms,
                                      unsigned *want, ztb_err *rv, struct store_check *out)
{
    const char *argv[] = {k1};
    redisReply *a;
    *rv = redis_eval_shared(&a, agent_read_script.lua, script_sha(&agent_read_script), 1, 1, argv,
                            NULL);
    if (*rv != ZTB_OK)
        return LEASE_DONE;
    if (a->type == REDIS_REPLY_ERROR && strstr(a->str, "Error compiling script") != NULL) {
        store_leases_off("Redis cannot run a write-declared script (before 7.0)");
        freeReplyObject(a);
        return LEASE_SCRIPT;
    }
    if (a->type != REDIS_REPLY_ARRAY || a->elements != 8) {
        *rv = unexpected(a, "issue_check");
        return LEASE_DONE;
    }
    out->verdict = caller_verdict(a, g, e, expect->x5t ? expect->x5t : "");
    /* the script answers a generation that is not a number with a reply
     * cut short (nil ends a Lua array): refused, fail closed */
    const redisReply *gen = hfield(a, 1);
    long long gv = 0;
    if (out->verdict == STORE_OK) {
        char *end = NULL;
        int ok = gen != NULL && strlen(gen->str) == gen->len;
        if (ok) {
            errno = 0;
            gv = strtoll(gen->str, &end, 10);
            ok = errno == 0 && end != gen->str && *end == '\0';
        }
        if (!ok) {
            *rv = unexpected(a, "issue_check");
            return LEASE_DONE;
        }
    }
    enum lease_outcome script = LEASE_SCRIPT;
    if (out->verdict == STORE_OK && expect->dpop_jti != NULL) {
        redisReply *m;
        const char *set[] = {"SET", k3, "1", "NX", "PX", ttl};
        *rv = redis_command_shared(&m, (int)ZTB_ARRAY_LEN(set), set, NULL);
        if (*rv != ZTB_OK) {
            freeReplyObject(a);
            return LEASE_DONE;
        }
        int fresh = m->type == REDIS_REPLY_STATUS;
        if (!fresh && m->type != REDIS_REPLY_NIL) {
            freeReplyObject(a);
            *rv = unexpected(m, "issue_check");
            return LEASE_DONE;
        }
        freeReplyObject(m);
        if (!fresh)
            out->verdict = STORE_DPOP_REPLAY;
        script = LEASE_SCRIPT_MARKED;
    }
    if (out->verdict == STORE_OK) {
        out->generation = gv;
        out->approval_required = field_is(hfield(a, 3), "1");
        if (field_is(hfield(a, 2), "1"))
            out->verdict = STORE_QUARANTINED;
        else if (killed)
            out->verdict = STORE_AUDIENCE_KILLED;
    }
    if (out->verdict != STORE_OK) {
        out->generation = 0;
        out->approval_required = 0;
        freeReplyObject(a);
        return LEASE_DONE;
    }
    const redisReply *bl = hfield(a, 7);
    int took = store_lease_take(lid, bl && strlen(bl->str) == bl->len ? bl->str : "", now_ms, want);
    freeReplyObject(a);
    return took ? LEASE_DONE : script;
}

ztb_err store_issue_check(const char *agent, const struct store_expect *expect, int charge,
                          const char *action, const char *audience,
                          const struct store_rate *agent_rate, const struct store_rate *action_rate,
                          struct store_check *out)
{
    memset(out, 0, sizeof(*out));
    ZTB_ENSURE(store_agent_name_ok(agent) && expect != NULL, ZTB_ERR_INVALID_ARG);
    const char *dpop = expect->dpop_jti;
    ZTB_ENSURE(dpop == NULL || (dpop[0] != '\0' && strlen(dpop) <= 128), ZTB_ERR_INVALID_ARG);
    const char *prefix = expect->resource_prefix ? expect->resource_prefix : "";
    ZTB_ENSURE(strlen(prefix) <= STORE_BL_PREFIX_MAX, ZTB_ERR_INVALID_ARG);
    /* The audience kill switch is revocation state ({rev} slot), not the
     * agent's: the broker holds it in memory (store_audience_killed) and
     * hands the answer to the script, which refuses at the same point of
     * its checks as before. A view too old to trust refuses everything. */
    int killed = 0;
    if (charge) {
        killed = store_audience_killed(audience);
        ZTB_ENSURE(killed >= 0, ZTB_ERR_UNAVAILABLE);
    }
    char k1[KEY_MAX], k2[KEY_MAX], k3[KEY_MAX], k4[KEY_MAX];
    char i1[24], b1[16], i2[24], b2[16], g[24], e[24], ttl[24];
    ZTB_ENSURE(key(k1, ZTB_WIRE_AGENT_KEY_FMT, agent) && key(k2, STORE_SEEN_KEY_FMT, agent) &&
                   key(k3, "ztb:{%s}:dpop:%s", agent, dpop ? dpop : "-") &&
                   key(k4, STORE_BASELINE_KEY_FMT, agent),
               ZTB_ERR_TOO_LARGE);
    rate_args(agent_rate, i1, b1);
    rate_args(action_rate, i2, b2);
    expect_arg(expect->generation, g);
    expect_arg(expect->epoch, e);
    ttl[0] = '\0';
    if (dpop != NULL)
        snprintf(ttl, sizeof(ttl), "%llu",
                 (unsigned long long)(expect->dpop_ttl_ms ? expect->dpop_ttl_ms : 1));
    struct store_lease_id lid = {
        .agent = agent, .action = action, .audience = audience, .prefix = prefix};
    rate_params(agent_rate, &lid.agent_interval_us, &lid.agent_burst);
    rate_params(action_rate, &lid.action_interval_us, &lid.action_burst);
    if (charge)
        lid.hash = store_lease_hash(&lid); /* for the lease table's two or three looks */
    uint64_t now_ms = store_lease_now_ms();
    unsigned want = 1;
    if (charge && !atomic_load(&g_no_leases) && store_lease_ready(&lid, now_ms, &want)) {
        ztb_err rv = ZTB_OK;
        enum lease_outcome lo =
            lease_check(k1, k3, expect, g, e, ttl, killed, &lid, now_ms, &want, &rv, out);
        if (lo == LEASE_DONE)
            return rv;
        if (lo == LEASE_SCRIPT_MARKED)
            ttl[0] = '\0'; /* the proof is recorded: the script must not see it again */
    }
    char want_s[16];
    snprintf(want_s, sizeof(want_s), "%u", want);
    const char *argv[] = {k1,
                          k2,
                          k3,
                          k4,
                          i1,
                          b1,
                          i2,
                          b2,
                          g,
                          e,
                          expect->x5t ? expect->x5t : "",
                          ttl,
                          charge ? "1" : "0",
                          action,
                          audience,
                          prefix,
                          killed ? "1" : "0",
                          want_s};
    redisReply *r;
    /* every token runs it: pipelined with other requests' (group commit) */
    ZTB_GUARD(redis_eval_shared(&r, issue_script.lua, script_sha(&issue_script), 4,
                                (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (!is_int_array(r, 4))
        return unexpected(r, "issue_check");
    int64_t code = elem_int(r, 0);
    if (code < STORE_OK || code > STORE_DPOP_REPLAY)
        return unexpected(r, "issue_check");
    out->verdict = (enum store_verdict)code;
    out->generation = elem_int(r, 1);
    int64_t wait = elem_int(r, 2);
    out->retry_after_ms = wait < 0 ? 0 : wait > 86400000 ? 86400000 : (uint32_t)wait;
    out->approval_required = elem_int(r, 3) == 1;
    if (code == STORE_OK && r->elements >= 9) {
        int64_t phase = elem_int(r, 4);
        out->bl.phase = phase == 1   ? STORE_BL_LEARNING
                        : phase == 2 ? STORE_BL_WATCHING
                                     : STORE_BL_NONE;
        out->bl.new_bits = (unsigned)elem_int(r, 5) & 15u;
        out->bl.hour_count = elem_int(r, 6);
        out->bl.learned_hour = elem_int(r, 7);
        out->bl.learn_days = elem_int(r, 8) < 1 ? 1 : elem_int(r, 8);
    }
    /* the units granted beyond this request's own become a lease (a
     * reply without them, as from a script of an older broker: none) */
    if (code == STORE_OK && charge && !atomic_load(&g_no_leases) && store_lease_cap(&lid) > 1 &&
        r->elements >= 11 && r->element[10]->type == REDIS_REPLY_STRING) {
        int64_t got = elem_int(r, 9);
        got = got < 1 ? 1 : got > (int64_t)want ? (int64_t)want : got;
        /* without the TATs (a reply cut short) the units are not given
         * back at the end: the safe direction */
        int64_t t1 = r->elements >= 13 ? elem_int(r, 11) : 0;
        int64_t t2 = r->elements >= 13 ? elem_int(r, 12) : 0;
        store_lease_grant(&lid, (unsigned)got, r->element[10]->str, t1, t2, now_ms);
    }
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_lease_settle(const struct store_lease_due *d)
{
    ZTB_ENSURE(store_agent_name_ok(d->agent), ZTB_ERR_INVALID_ARG);
    char k1[KEY_MAX], k2[KEY_MAX], k3[KEY_MAX], k4[KEY_MAX], used[24], i1[24], i2[24], refund[24],
        t1[24], t2[24];
    ZTB_ENSURE(key(k1, ZTB_WIRE_AGENT_KEY_FMT, d->agent) && key(k2, STORE_SEEN_KEY_FMT, d->agent) &&
                   key(k3, STORE_BASELINE_KEY_FMT, d->agent) &&
                   key(k4, "ztb:{%s}:settled:%s", d->agent, d->id),
               ZTB_ERR_TOO_LARGE);
    snprintf(t1, sizeof(t1), "%lld", (long long)d->agent_tat);
    snprintf(t2, sizeof(t2), "%lld", (long long)d->action_tat);
    snprintf(used, sizeof(used), "%llu", (unsigned long long)d->used);
    snprintf(i1, sizeof(i1), "%llu", (unsigned long long)d->agent_interval_us);
    snprintf(i2, sizeof(i2), "%llu", (unsigned long long)d->action_interval_us);
    snprintf(refund, sizeof(refund), "%llu", (unsigned long long)d->refund);
    const char *argv[] = {k1, k2, k3, k4, used, d->action, i1, i2, refund, t1, t2};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &settle_script, 4, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (!is_int_array(r, 4))
        return unexpected(r, "lease_settle");
    struct store_baseline_seen bl = {.hour_count = elem_int(r, 0),
                                     .hour_added = (int64_t)d->used,
                                     .learned_hour = elem_int(r, 2),
                                     .learn_days = elem_int(r, 3) < 1 ? 1 : elem_int(r, 3)};
    int64_t phase = elem_int(r, 1);
    freeReplyObject(r);
    bl.phase = phase == 1 ? STORE_BL_LEARNING : phase == 2 ? STORE_BL_WATCHING : STORE_BL_NONE;
    if (d->used > 0)
        store_lease_settled(d->agent, d->action, &bl);
    return ZTB_OK;
}

/*
 * One GCRA bucket (KEYS[1]); ARGV: interval_us, burst. The same step as the
 * token path's, for limits that are not an agent's (signal sources).
 * Returns {0, 0} (allowed and charged) or {1, ms to wait}.
 */
static const char rate_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n" GCRA_LUA
    "local n, w, c = gcra(redis.call('GET', KEYS[1]),\n"
    "  tonumber(ARGV[1]),\n"
    "  tonumber(ARGV[2]), 1)\n"
    "if n < 0 then\n"
    "  if c then redis.call('SET', KEYS[1], c, 'PX',\n"
    "    math.ceil(tonumber(ARGV[1]) * tonumber(ARGV[2]) / 1000) + 1000)\n"
    "  end\n"
    "  return {1, math.ceil(w / 1000)}\n"
    "end\n"
    "if n > 0 then redis.call('SET', KEYS[1], string.format('%d', n),\n"
    "  'PX', math.ceil((n - now) / 1000) + 1000) end\n"
    "return {0, 0}\n";
static struct store_script rate_script = STORE_SCRIPT(rate_lua);

ztb_err store_rate_take(const char *kind, const char *name, const struct store_rate *rate,
                        uint32_t *retry_after_ms)
{
    *retry_after_ms = 0;
    if (rate == NULL || rate->rate == 0 || rate->period_s == 0)
        return ZTB_OK;
    ZTB_ENSURE(kind != NULL && strchr(kind, ':') == NULL && store_agent_name_ok(name),
               ZTB_ERR_INVALID_ARG);
    char k[KEY_MAX], interval[24], burst[16];
    ZTB_ENSURE(key(k, "ztb:rl:%s:%s", kind, name), ZTB_ERR_TOO_LARGE);
    rate_args(rate, interval, burst);
    const char *argv[] = {k, interval, burst};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &rate_script, 1, 3, argv, NULL));
    if (!is_int_array(r, 2))
        return unexpected(r, "rate_take");
    int64_t code = elem_int(r, 0), wait = elem_int(r, 1);
    freeReplyObject(r);
    if (code == 0)
        return ZTB_OK;
    *retry_after_ms = wait < 1 ? 1 : wait > 86400000 ? 86400000 : (uint32_t)wait;
    return ZTB_ERR_RATE_LIMITED;
}

/* SET key NX PX ttl: REPLAY if it existed. */
static ztb_err seen_once(const char *kind, const char *agent, const char *jti, uint64_t ttl_ms)
{
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(jti != NULL && jti[0] != '\0' && strlen(jti) <= 128, ZTB_ERR_INVALID_ARG);
    char k[KEY_MAX];
    ZTB_ENSURE(key(k, "ztb:{%s}:%s:%s", agent, kind, jti), ZTB_ERR_TOO_LARGE);
    redisReply *r;
    ZTB_GUARD(
        redis_commandf(&r, "SET %s 1 NX PX %llu", k, (unsigned long long)(ttl_ms ? ttl_ms : 1)));
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return ZTB_ERR_REPLAY;
    }
    if (r->type != REDIS_REPLY_STATUS)
        return unexpected(r, "seen_once");
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_assertion_seen(const char *agent, const char *jti, uint64_t ttl_ms)
{
    return seen_once("jti", agent, jti, ttl_ms);
}

ztb_err store_join_incarnation(const char *token, int64_t *inc)
{
    *inc = 0;
    ZTB_ENSURE(token != NULL && strlen(token) == STORE_JOIN_TOKEN_LEN &&
                   strncmp(token, "ztbj_", 5) == 0,
               ZTB_ERR_JOIN_TOKEN);
    char hex[65], k[KEY_MAX];
    join_hash(token, hex);
    key(k, "ztb:join:{%s}", hex);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HMGET %s agent inc", k));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return unexpected(r, "join_incarnation");
    ztb_err rv = r->element[0]->type == REDIS_REPLY_STRING ? ZTB_OK : ZTB_ERR_JOIN_TOKEN;
    if (rv == ZTB_OK && r->element[1]->type == REDIS_REPLY_STRING)
        *inc = parse_i64(r->element[1]->str);
    freeReplyObject(r);
    return rv;
}

ztb_err store_join_peek(const char *token, char agent[STORE_NAME_MAX + 1], int *reused)
{
    *reused = 0;
    agent[0] = '\0';
    ZTB_ENSURE(token != NULL && strlen(token) == STORE_JOIN_TOKEN_LEN &&
                   strncmp(token, "ztbj_", 5) == 0,
               ZTB_ERR_JOIN_TOKEN);
    char hex[65], k1[KEY_MAX], k2[KEY_MAX];
    join_hash(token, hex);
    key(k1, "ztb:join:{%s}", hex);
    key(k2, "ztb:joinused:{%s}", hex);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HGET %s agent", k1));
    if (r->type == REDIS_REPLY_STRING && store_agent_name_ok(r->str)) {
        snprintf(agent, STORE_NAME_MAX + 1, "%s", r->str);
        freeReplyObject(r);
        return ZTB_OK;
    }
    if (r->type != REDIS_REPLY_NIL)
        return unexpected(r, "join_peek");
    freeReplyObject(r);
    ZTB_GUARD(redis_commandf(&r, "GET %s", k2));
    if (r->type == REDIS_REPLY_STRING && store_agent_name_ok(r->str)) {
        snprintf(agent, STORE_NAME_MAX + 1, "%s", r->str);
        *reused = 1;
    } else if (r->type != REDIS_REPLY_NIL) {
        return unexpected(r, "join_peek");
    }
    freeReplyObject(r);
    return ZTB_ERR_JOIN_TOKEN;
}

/*
 * KEYS: agent hash. ARGV: op (1 enroll, 2 renew), jwk, jkt, x5t, expiry,
 * the epoch the renewing caller authenticated in.
 * Returns {code, epoch}: 0 unknown agent, 1 done, 2 not active, 3 another
 * key (renew), 4 revoked or re-enrolled since (renew).
 */
static const char set_identity_lua[] =
    "local a = redis.call('HMGET', KEYS[1], 'status', 'gen', 'id_gen', 'jkt', 'epoch')\n"
    "if not a[1] then return {0, 0} end\n"
    "if a[1] ~= 'active' then return {2, 0} end\n"
    "local epoch = tonumber(a[5] or '0')\n"
    "if ARGV[1] == '2' then\n"
    "  if a[3] ~= a[2] or tostring(epoch) ~= ARGV[6] then return {4, epoch} end\n"
    "  if a[4] ~= ARGV[3] then return {3, epoch} end\n"
    "  redis.call('HSET', KEYS[1], 'x5t', ARGV[4], 'identity_exp', ARGV[5])\n"
    "  redis.call('HDEL', KEYS[1], 'serial')\n"
    "  return {1, epoch}\n"
    "end\n"
    "epoch = epoch + 1\n"
    "redis.call('HSET', KEYS[1], 'jwk', ARGV[2], 'jkt', ARGV[3], 'x5t', ARGV[4],\n"
    "           'identity_exp', ARGV[5], 'id_gen', a[2], 'epoch', epoch)\n"
    "redis.call('HDEL', KEYS[1], 'serial')\n"
    "return {1, epoch}\n";
static struct store_script set_identity_script = STORE_SCRIPT(set_identity_lua);

ztb_err store_agent_set_identity(const char *name, enum store_identity_op op, const char *jwk,
                                 const char *jkt, const char *x5t, int64_t not_after, int64_t epoch,
                                 int64_t *epoch_out)
{
    ZTB_ENSURE(store_agent_name_ok(name), ZTB_ERR_NOT_FOUND);
    ZTB_ENSURE(op == STORE_IDENTITY_ENROLL || op == STORE_IDENTITY_RENEW, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(jwk != NULL && jkt != NULL && x5t != NULL && jkt[0] && x5t[0], ZTB_ERR_INVALID_ARG);
    char k[KEY_MAX], o[4], exp[24], ep[24];
    key(k, ZTB_WIRE_AGENT_KEY_FMT, name);
    snprintf(o, sizeof(o), "%d", (int)op);
    snprintf(exp, sizeof(exp), "%lld", (long long)not_after);
    snprintf(ep, sizeof(ep), "%lld", (long long)epoch);
    const char *argv[] = {k, o, jwk, jkt, x5t, exp, ep};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &set_identity_script, 1, 7, argv, NULL));
    if (!is_int_array(r, 2))
        return unexpected(r, "agent_set_identity");
    int64_t code = elem_int(r, 0);
    if (epoch_out != NULL)
        *epoch_out = elem_int(r, 1);
    freeReplyObject(r);
    switch (code) {
    case 1: return ZTB_OK;
    case 0: return ZTB_ERR_NOT_FOUND;
    case 2: return ZTB_ERR_STATE;
    case 3: return ZTB_ERR_KEY;
    default: return ZTB_ERR_AGENT_REVOKED;
    }
}

/* KEYS: agent hash. ARGV: x5t, serial. */
static const char set_serial_lua[] =
    "if redis.call('HGET', KEYS[1], 'x5t') ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'serial', ARGV[2])\n"
    "return 1\n";
static struct store_script set_serial_script = STORE_SCRIPT(set_serial_lua);

ztb_err store_agent_set_identity_serial(const char *name, const char *x5t, const char *serial)
{
    ZTB_ENSURE(store_agent_name_ok(name), ZTB_ERR_NOT_FOUND);
    ZTB_ENSURE(x5t != NULL && serial != NULL && x5t[0] && serial[0] && strlen(serial) < 48,
               ZTB_ERR_INVALID_ARG);
    char k[KEY_MAX];
    key(k, ZTB_WIRE_AGENT_KEY_FMT, name);
    const char *argv[] = {k, x5t, serial};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &set_serial_script, 1, 3, argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(r, "agent_set_identity_serial");
    int ok = r->integer == 1;
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

/* Copy a string reply element into out (cap bytes); 0 if absent or too long. */
static int elem_str(const redisReply *r, size_t i, char *out, size_t cap)
{
    const redisReply *e = r->element[i];
    out[0] = '\0';
    if (e->type != REDIS_REPLY_STRING || e->len >= cap)
        return 0;
    memcpy(out, e->str, e->len + 1);
    return 1;
}

ztb_err store_agent_auth_get(const char *name, struct store_agent_auth *out)
{
    memset(out, 0, sizeof(*out));
    ZTB_ENSURE(store_agent_name_ok(name), ZTB_ERR_NOT_FOUND);
    char k[KEY_MAX];
    key(k, ZTB_WIRE_AGENT_KEY_FMT, name);
    redisReply *r;
    ZTB_GUARD(redis_commandf(
        &r, "HMGET %s status gen quarantined jwk jkt x5t identity_exp id_gen epoch serial", k));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 10)
        return unexpected(r, "agent_auth_get");
    if (!elem_str(r, 0, out->status, sizeof(out->status))) {
        freeReplyObject(r);
        return ZTB_ERR_NOT_FOUND;
    }
    char num[24];
    out->generation = elem_str(r, 1, num, sizeof(num)) ? parse_i64(num) : 0;
    out->quarantined = elem_str(r, 2, num, sizeof(num)) && strcmp(num, "1") == 0;
    int have = elem_str(r, 3, out->jwk, sizeof(out->jwk)) &&
               elem_str(r, 4, out->jkt, sizeof(out->jkt)) &&
               elem_str(r, 5, out->x5t, sizeof(out->x5t));
    out->identity_exp = elem_str(r, 6, num, sizeof(num)) ? parse_i64(num) : 0;
    int64_t id_gen = elem_str(r, 7, num, sizeof(num)) ? parse_i64(num) : -1;
    out->epoch = elem_str(r, 8, num, sizeof(num)) ? parse_i64(num) : 0;
    (void)elem_str(r, 9, out->serial, sizeof(out->serial));
    out->enrolled = have && out->generation > 0 && id_gen == out->generation;
    freeReplyObject(r);
    return ZTB_OK;
}

/* Shared with the other store_*.c files (store_internal.h) -------------------*/

/* Serialises the first computation of each script's SHA; never taken once
 * a script's ready flag is set. */
static pthread_mutex_t script_lock = PTHREAD_MUTEX_INITIALIZER;

/* s's SHA-1, computed on first use. */
static const char *script_sha(struct store_script *s)
{
    if (!atomic_load_explicit(&s->ready, memory_order_acquire)) {
        pthread_mutex_lock(&script_lock);
        if (!atomic_load_explicit(&s->ready, memory_order_relaxed)) {
            redis_script_sha(s->lua, s->sha);
            atomic_store_explicit(&s->ready, 1, memory_order_release);
        }
        pthread_mutex_unlock(&script_lock);
    }
    return s->sha;
}

ztb_err store_eval(redisReply **reply, struct store_script *s, int nkeys, int nargs,
                   const char **argv, const size_t *lens)
{
    return redis_eval(reply, s->lua, script_sha(s), nkeys, nargs, argv, lens);
}

int store_keyf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, KEY_MAX, fmt, ap);
    va_end(ap);
    return n > 0 && n < KEY_MAX;
}

ztb_err store_unexpected_reply(redisReply *r, const char *what)
{
    return unexpected(r, what);
}

int store_reply_is_int_array(const redisReply *r, size_t min)
{
    return is_int_array(r, min);
}

int64_t store_reply_int(const redisReply *r, size_t i)
{
    return elem_int(r, i);
}
