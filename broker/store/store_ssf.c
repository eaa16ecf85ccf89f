/*
 * store_ssf.c - the SSF event streams in Redis (see store_ssf.h).
 *
 * How it works: create, replace and delete are one Lua script each over
 * the two hashes of the family; the owner check reads the stored record's
 * "owner" member with Redis's cjson inside the script, so the check and
 * the change are one atomic step. Reads are plain HGET/HGETALL.
 *
 * Must never: log a record (it carries the receiver's authorization value).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/store/redis_client.h"
#include "broker/store/store_internal.h"
#include "broker/store/store_ssf.h"
#include "common/guard.h"
#include "common/secret.h"
#include "wire/wire.h"

#define SSF_MAX_STREAMS_LISTED 4096

int store_ssf_id_ok(const char *id)
{
    if (id == NULL || strncmp(id, "ssf_", 4) != 0 || strlen(id) != 26)
        return 0;
    for (const char *p = id + 4; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* KEYS: streams, owners. ARGV: owner, id, record, max per owner, max total.
 * 1 added, 0 id taken, -1 owner at its limit, -2 all streams at the limit. */
static const char create_lua[] =
    "if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then return 0 end\n"
    "local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')\n"
    "if mine >= tonumber(ARGV[4]) then return -1 end\n"
    "if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then return -2 end\n"
    "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n"
    "redis.call('HINCRBY', KEYS[2], ARGV[1], 1)\n"
    "return 1\n";
static struct store_script create_script = STORE_SCRIPT(create_lua);

/* The owner check both scripts below begin with. */
#define OWNER_CHECK_LUA                                                                            \
    "local rec = redis.call('HGET', KEYS[1], ARGV[2])\n"                                           \
    "if not rec then return 0 end\n"                                                               \
    "local ok, doc = pcall(cjson.decode, rec)\n"                                                   \
    "if not ok or type(doc) ~= 'table' or doc.owner ~= ARGV[1] then return 0 end\n"

/* KEYS: streams. ARGV: owner, id, record. 1 replaced, 0 not the owner's. */
static const char replace_lua[] = OWNER_CHECK_LUA "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n"
                                                  "return 1\n";
static struct store_script replace_script = STORE_SCRIPT(replace_lua);

/* KEYS: streams, owners. ARGV: owner, id. 1 deleted, 0 not the owner's. */
static const char delete_lua[] = OWNER_CHECK_LUA
    "redis.call('HDEL', KEYS[1], ARGV[2])\n"
    "if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[2], "
    "ARGV[1]) end\n"
    "return 1\n";
static struct store_script delete_script = STORE_SCRIPT(delete_lua);

/* Run s, expecting an integer reply into *v. */
static ztb_err run_int(struct store_script *s, int nkeys, int nargs, const char **argv,
                       long long *v, const char *what)
{
    redisReply *r;
    ZTB_GUARD(store_eval(&r, s, nkeys, nargs, argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, what);
    *v = r->integer;
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_ssf_create(const char *owner, const char *id, const char *record,
                         unsigned max_per_owner, unsigned max_total)
{
    ZTB_ENSURE(owner != NULL && store_ssf_id_ok(id) && record != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(strlen(record) <= STORE_SSF_RECORD_MAX, ZTB_ERR_TOO_LARGE);
    char per[16], all[16];
    snprintf(per, sizeof(per), "%u", max_per_owner);
    snprintf(all, sizeof(all), "%u", max_total);
    const char *argv[] = {
        ZTB_WIRE_SSF_STREAMS_KEY, ZTB_WIRE_SSF_OWNERS_KEY, owner, id, record, per, all};
    long long v = 0;
    ZTB_GUARD(run_int(&create_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, &v, "ssf_create"));
    return v == 1 ? ZTB_OK : v == 0 ? ZTB_ERR_EXISTS : v == -1 ? ZTB_ERR_STATE : ZTB_ERR_TOO_LARGE;
}

ztb_err store_ssf_get(const char *id, char **record)
{
    *record = NULL;
    ZTB_ENSURE(store_ssf_id_ok(id), ZTB_ERR_NOT_FOUND);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HGET %s %s", ZTB_WIRE_SSF_STREAMS_KEY, id));
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return ZTB_ERR_NOT_FOUND;
    }
    if (r->type != REDIS_REPLY_STRING || r->len > STORE_SSF_RECORD_MAX)
        return store_unexpected_reply(r, "ssf_get");
    *record = strndup(r->str, r->len);
    ztb_wipe(r->str, r->len);
    freeReplyObject(r);
    return *record ? ZTB_OK : ZTB_ERR_NOMEM;
}

ztb_err store_ssf_replace(const char *owner, const char *id, const char *record)
{
    ZTB_ENSURE(owner != NULL && record != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(store_ssf_id_ok(id), ZTB_ERR_NOT_FOUND);
    ZTB_ENSURE(strlen(record) <= STORE_SSF_RECORD_MAX, ZTB_ERR_TOO_LARGE);
    const char *argv[] = {ZTB_WIRE_SSF_STREAMS_KEY, owner, id, record};
    long long v = 0;
    ZTB_GUARD(run_int(&replace_script, 1, (int)ZTB_ARRAY_LEN(argv), argv, &v, "ssf_replace"));
    return v == 1 ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

ztb_err store_ssf_delete(const char *owner, const char *id)
{
    ZTB_ENSURE(owner != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(store_ssf_id_ok(id), ZTB_ERR_NOT_FOUND);
    const char *argv[] = {ZTB_WIRE_SSF_STREAMS_KEY, ZTB_WIRE_SSF_OWNERS_KEY, owner, id};
    long long v = 0;
    ZTB_GUARD(run_int(&delete_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, &v, "ssf_delete"));
    return v == 1 ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

void store_ssf_list_free(char **records, size_t n)
{
    for (size_t i = 0; records != NULL && i < n; i++)
        ztb_free_secret_str(records[i]);
    free(records);
}

ztb_err store_ssf_list(char ***records, size_t *n)
{
    *records = NULL;
    *n = 0;
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HVALS %s", ZTB_WIRE_SSF_STREAMS_KEY));
    if (r->type != REDIS_REPLY_ARRAY || r->elements > SSF_MAX_STREAMS_LISTED)
        return store_unexpected_reply(r, "ssf_list");
    char **out = calloc(r->elements ? r->elements : 1, sizeof(*out));
    ztb_err rv = out ? ZTB_OK : ZTB_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; rv == ZTB_OK && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len > STORE_SSF_RECORD_MAX)
            continue;
        out[k] = strndup(e->str, e->len);
        ztb_wipe(e->str, e->len);
        rv = out[k++] ? ZTB_OK : ZTB_ERR_NOMEM;
    }
    freeReplyObject(r);
    if (rv != ZTB_OK) {
        store_ssf_list_free(out, k);
        return rv;
    }
    *records = out;
    *n = k;
    return ZTB_OK;
}

ztb_err store_ssf_verify_throttle(const char *id, unsigned ms, int *allowed)
{
    *allowed = 0;
    ZTB_ENSURE(store_ssf_id_ok(id), ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX];
    if (!store_keyf(k, ZTB_WIRE_SSF_VERIFY_KEY_FMT, id))
        return ZTB_ERR_INVALID_ARG;
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "SET %s 1 NX PX %u", k, ms > 0 ? ms : 1));
    *allowed = r->type == REDIS_REPLY_STATUS;
    if (r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_NIL)
        return store_unexpected_reply(r, "ssf_verify");
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_ssf_verify_release(const char *id)
{
    ZTB_ENSURE(store_ssf_id_ok(id), ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX];
    if (!store_keyf(k, ZTB_WIRE_SSF_VERIFY_KEY_FMT, id))
        return ZTB_ERR_INVALID_ARG;
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "DEL %s", k));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "ssf_verify_release");
    freeReplyObject(r);
    return ZTB_OK;
}
