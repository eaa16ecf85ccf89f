/*
 * store_migrate.c - move the state an earlier broker wrote under the key
 * names that had no Redis Cluster hash tags to the tagged names
 * (docs/redis.md, "Upgrading to the tagged key layout").
 *
 * The earlier layout could only ever hold data on a single Redis or a
 * Sentinel master (every multi-key script failed on a Cluster), where a
 * script may touch keys of any slot: so the move is one Lua script, atomic
 * like any other, run once. It records that it ran in ZTB_LAYOUT_KEY;
 * a Redis that already has that key costs one GET per check. On a Cluster
 * the key is only written.
 *
 * What it moves: revoked tokens, tainted keys and killed audiences (into
 * the {rev} family), signal sources ({src}), approvals and approver groups
 * ({apr}), operator actions ({act}), unknown-client counts ({unknown}),
 * join tokens (ztb:join:{H}). The revocation events and their sequence are
 * copied (the new sequence never goes back) and the old copies left for
 * verifiers of the earlier version until they are upgraded. Agents, rate
 * limits and replay markers kept their names. What it does not move:
 * dual-verification windows of targets that are not agents (they restart).
 *
 * Must never: lose a revocation, or run on a Cluster (it names keys of
 * many slots).
 */
#include <stdio.h>
#include <string.h>

#include "broker/store/redis_client.h"
#include "broker/store/store_internal.h"
#include "broker/store/store_migrate.h"
#include "common/log.h"
#include "wire/wire.h"

/* Moves every key matching a prefix to another prefix (a key already in
 * the new layout, holding '{', is left alone); wrap puts the rest of the
 * name in a hash tag. Returns the number of keys moved. */
static const char migrate_lua[] =
    "local moved = 0\n"
    "local function each(pat, f)\n"
    "  local cur = '0'\n"
    "  repeat\n"
    "    local r = redis.call('SCAN', cur, 'MATCH', pat, 'COUNT', 1000)\n"
    "    cur = r[1]\n"
    "    for _, k in ipairs(r[2]) do f(k) end\n"
    "  until cur == '0'\n"
    "end\n"
    "local function move(pat, oldp, newp, wrap)\n"
    "  each(pat, function(k)\n"
    "    local rest = string.sub(k, #oldp + 1)\n"
    "    if string.find(rest, '{', 1, true) then return end\n"
    "    if wrap then rest = '{' .. rest .. '}' end\n"
    "    redis.call('RENAME', k, newp .. rest)\n"
    "    moved = moved + 1\n"
    "  end)\n"
    "end\n"
    "local function one(old, new)\n"
    "  if redis.call('EXISTS', old) == 1 then\n"
    "    redis.call('RENAME', old, new)\n"
    "    moved = moved + 1\n"
    "  end\n"
    "end\n"
    "move('ztb:rev:jti:*', 'ztb:rev:jti:', 'ztb:{rev}:jti:', false)\n"
    "move('ztb:key:*:tainted', 'ztb:key:', 'ztb:{rev}:key:', false)\n"
    "each('ztb:aud:*:killed', function(k)\n"
    "  local aud = string.sub(k, 9, -8)\n"
    "  redis.call('HSET', 'ztb:{rev}:auds', aud, redis.call('GET', k) or '0')\n"
    "  redis.call('DEL', k)\n"
    "  moved = moved + 1\n"
    "end)\n"
    "if redis.call('EXISTS', 'ztb:revocations') == 1 then\n"
    "  redis.call('ZUNIONSTORE', 'ztb:{rev}:events', 2, 'ztb:{rev}:events',\n"
    "             'ztb:revocations', 'AGGREGATE', 'MAX')\n"
    "  moved = moved + 1\n"
    "end\n"
    "local old = tonumber(redis.call('GET', 'ztb:revocations:seq') or '0') or 0\n"
    "local new = tonumber(redis.call('GET', 'ztb:{rev}:seq') or '0') or 0\n"
    "if old > new then redis.call('SET', 'ztb:{rev}:seq', string.format('%d', old)) end\n"
    "move('ztb:src:*', 'ztb:src:', 'ztb:{src}:id:', false)\n"
    "move('ztb:srcsec:*', 'ztb:srcsec:', 'ztb:{src}:sec:', false)\n"
    "move('ztb:srcagent:*', 'ztb:srcagent:', 'ztb:{src}:agent:', false)\n"
    "one('ztb:sources', 'ztb:{src}:all')\n"
    "move('ztb:approval:*', 'ztb:approval:', 'ztb:{apr}:id:', false)\n"
    "move('ztb:approvers:*', 'ztb:approvers:', 'ztb:{apr}:approvers:', false)\n"
    "one('ztb:approvals', 'ztb:{apr}:all')\n"
    "one('ztb:approver-groups', 'ztb:{apr}:groups')\n"
    "each('ztb:{*}:approvals', function(k)\n"
    "  local a = string.match(k, '^ztb:{([^}]*)}:approvals$')\n"
    "  if a then redis.call('RENAME', k, 'ztb:{apr}:agent:' .. a); moved = moved + 1 end\n"
    "end)\n"
    "each('ztb:{*}:apprdup:*', function(k)\n"
    "  local a, h = string.match(k, '^ztb:{([^}]*)}:apprdup:(.*)$')\n"
    "  if a then redis.call('RENAME', k, 'ztb:{apr}:dup:' .. a .. ':' .. h); moved = moved + 1 "
    "end\n"
    "end)\n"
    "move('ztb:action:*', 'ztb:action:', 'ztb:{act}:id:', false)\n"
    "move('ztb:actpend:*', 'ztb:actpend:', 'ztb:{act}:pend:', false)\n"
    "one('ztb:actions', 'ztb:{act}:all')\n"
    "one('ztb:unknown_clients', 'ztb:{unknown}:clients')\n"
    "one('ztb:unknown_clients:seen', 'ztb:{unknown}:seen')\n"
    "move('ztb:join:*', 'ztb:join:', 'ztb:join:', true)\n"
    "move('ztb:joinused:*', 'ztb:joinused:', 'ztb:joinused:', true)\n"
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "return moved\n";
static struct store_script migrate_script = STORE_SCRIPT(migrate_lua);

int store_layout_check(int cluster, char *err, size_t errcap)
{
    redisReply *r;
    if (redis_commandf(&r, "GET %s", ZTB_LAYOUT_KEY) != ZTB_OK) {
        snprintf(err, errcap, "cannot read %s", ZTB_LAYOUT_KEY);
        return -1;
    }
    int done = r->type == REDIS_REPLY_STRING && strcmp(r->str, ZTB_LAYOUT_VERSION) == 0;
    int other = r->type == REDIS_REPLY_STRING && !done;
    freeReplyObject(r);
    if (done)
        return 0;
    if (other) {
        snprintf(err, errcap,
                 "%s holds a key layout this broker does not know (a newer broker wrote it?): "
                 "run the broker version that wrote it",
                 ZTB_LAYOUT_KEY);
        return -1;
    }
    if (cluster) {
        /* the earlier layout never worked on a Cluster: nothing to move */
        if (redis_commandf(&r, "SET %s %s", ZTB_LAYOUT_KEY, ZTB_LAYOUT_VERSION) != ZTB_OK) {
            snprintf(err, errcap, "cannot write %s", ZTB_LAYOUT_KEY);
            return -1;
        }
        freeReplyObject(r);
        return 0;
    }
    const char *argv[] = {ZTB_LAYOUT_KEY, ZTB_LAYOUT_VERSION};
    if (store_eval(&r, &migrate_script, 1, 2, argv, NULL) != ZTB_OK) {
        snprintf(err, errcap,
                 "cannot move the earlier key layout to the tagged one (docs/redis.md, "
                 "\"Upgrading\"): Redis did not answer");
        return -1;
    }
    if (r->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errcap,
                 "cannot move the earlier key layout to the tagged one: %s (the broker's Redis "
                 "user needs SCAN, RENAME, ZUNIONSTORE on ztb:*; docs/redis.md, \"Upgrading\")",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    ztb_log(ZTB_LOG_INFO, "redis.layout_migrated", ZTB_F_INT("keys_moved", r->integer),
            ZTB_F_STR("layout", ZTB_LAYOUT_VERSION));
    freeReplyObject(r);
    return 0;
}
