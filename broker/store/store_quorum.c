/*
 * store_quorum.c - dual verification in Redis (see store_quorum.h for the
 * keys): how many independent sources reported the same (target, entry)
 * within a window, in one Lua script.
 *
 * Must never: count one source twice, or fire a quorum twice for the same
 * reports.
 */
#include <stdio.h>
#include <string.h>

#include "broker/store/redis_client.h"
#include "broker/store/store_internal.h"
#include "broker/store/store.h"
#include "broker/store/store_quorum.h"
#include "broker/store/store_rev.h"
#include "common/guard.h"

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
                 : store_keyf(k1, "ztb:dual:{%s:%s:%s}", target_kind, target, entry);
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
