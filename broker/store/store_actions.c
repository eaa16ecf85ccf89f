/*
 * store_actions.c - responses waiting for an operator, in Redis (see
 * store_actions.h for the keys): file one, decide it once, record how it
 * went, list them.
 *
 * How it works: filing and deciding are one Lua script each, so two
 * signals cannot file two actions for one target and two operators cannot
 * both decide one.
 *
 * Must never: let an action be decided twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/store/redis_client.h"
#include "broker/store/store_internal.h"
#include "broker/store/store_actions.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "common/secret.h"

/* KEYS: pending-by-target key, action hash, ztb:{act}:all. ARGV: id, entry,
 * response, kind, target, target exp, signals, created, ttl. */
static const char action_create_lua[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then\n"
    "  local k = 'ztb:{act}:id:' .. cur\n"
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
    ZTB_ENSURE(store_keyf(k1, "ztb:{act}:pend:%s:%s:%s", a->entry, a->target_kind, a->target) &&
                   store_keyf(k2, "ztb:{act}:id:%s", a->id),
               ZTB_ERR_TOO_LARGE);
    snprintf(exp, sizeof(exp), "%lld", (long long)a->target_exp);
    snprintf(cr, sizeof(cr), "%lld", (long long)now);
    snprintf(ttl, sizeof(ttl), "%d", STORE_ACTION_TTL);
    const char *argv[] = {
        k1,        k2,  "ztb:{act}:all", a->id, a->entry, a->response, a->target_kind,
        a->target, exp, a->signals,      cr,    ttl};
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
    a->target_exp = store_parse_ll(v[5]);
    snprintf(a->signals, sizeof(a->signals), "%s", v[6]);
    snprintf(a->status, sizeof(a->status), "%s", v[7]);
    a->created = store_parse_ll(v[8]);
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
    "  redis.call('DEL', 'ztb:{act}:pend:' .. f[1] .. ':' .. f[2] .. ':' .. f[3])\n"
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
    store_keyf(k, "ztb:{act}:id:%s", id);
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
    store_keyf(k, "ztb:{act}:id:%s", id);
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

ztb_err store_action_status(const char *id, char status[16])
{
    status[0] = '\0';
    ZTB_ENSURE(id != NULL && store_id_ok(id), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, "ztb:{act}:id:%s", id);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HGET %s status", k));
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return ZTB_ERR_NOT_FOUND;
    }
    if (r->type != REDIS_REPLY_STRING || r->len >= 16)
        return store_unexpected_reply(r, "action_status");
    memcpy(status, r->str, r->len + 1);
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_action_list(size_t limit, json_t **out)
{
    *out = NULL;
    redisReply *r;
    char last[24];
    snprintf(last, sizeof(last), "%zu", limit ? limit - 1 : 0); /* hiredis formats no %zu */
    ZTB_GUARD(redis_commandf(&r, "ZREVRANGE ztb:{act}:all 0 %s", last));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "action_list");
    json_t *arr = json_array();
    ztb_err rv = ZTB_OK;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING || !store_id_ok(m->str))
            continue;
        char k[STORE_KEY_MAX];
        store_keyf(k, "ztb:{act}:id:%s", m->str);
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
