/*
 * store_detect.c - the counters the broker's own detectors keep in Redis
 * (see store_detect.h for the keys): events per agent in a window, and the
 * audiences an agent was issued tokens for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/store/redis_client.h"
#include "broker/store/store_internal.h"
#include "broker/store/store.h"
#include "broker/store/store_detect.h"
#include "broker/store/store_rev.h"
#include "common/guard.h"

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
    store_keyf(k2, "ztb:{%s}:agent", agent);
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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

ztb_err store_detect_audiences(const char *agent, json_t **out)
{
    *out = NULL;
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX];
    store_keyf(k, "ztb:{%s}:auds", agent);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "SRANDMEMBER %s 1000", k));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "detect_audiences");
    const char *names[1000] = {NULL};
    size_t n = 0;
    for (size_t i = 0; i < r->elements && n < 1000; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && store_id_ok(r->element[i]->str))
            names[n++] = r->element[i]->str;
    qsort(names, n, sizeof(names[0]), cmp_str);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(names[i]));
    freeReplyObject(r);
    *out = arr;
    return ZTB_OK;
}
