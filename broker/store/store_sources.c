/*
 * store_sources.c - the registered signal sources in Redis (see
 * store_sources.h for the keys): add, remove, list, and find a source by
 * its bearer secret, its enrolled agent or its name (for its JWK).
 *
 * How it works: adding and removing are one Lua script each, so the source
 * hash, the set of names and the secret and agent indexes change together.
 *
 * Must never: store a source secret (only its SHA-256) or return one it did
 * not just make.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/store/redis_client.h"
#include "broker/store/store_internal.h"
#include "broker/store/store.h"
#include "broker/store/store_sources.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "common/secret.h"

/* KEYS: source hash, ztb:{src}:all, secret key, agent key (each
 * SRC_NO_KEY if none: a key in the same slot, never written). ARGV: name,
 * secret hash ("" if none), jwk, agent ("" if none), created. 0: name
 * taken, -1: agent taken, 1: added. */
#define SRC_NO_KEY "ztb:{src}:none"

static const char source_add_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "if ARGV[4] ~= '' and redis.call('EXISTS', KEYS[4]) == 1 then return -1 end\n"
    "redis.call('HSET', KEYS[1], 'name', ARGV[1], 'secret', ARGV[2], 'jwk', ARGV[3],\n"
    "           'agent', ARGV[4], 'created', ARGV[5])\n"
    "redis.call('SADD', KEYS[2], ARGV[1])\n"
    "if ARGV[2] ~= '' then redis.call('SET', KEYS[3], ARGV[1]) end\n"
    "if ARGV[4] ~= '' then redis.call('SET', KEYS[4], ARGV[1]) end\n"
    "return 1\n";
static struct store_script source_add_script = STORE_SCRIPT(source_add_lua);

ztb_err store_source_add(const char *name, const char *jwk, const char *agent, int64_t now,
                         char secret[STORE_SOURCE_SECRET_LEN + 1])
{
    ZTB_ENSURE(store_source_name_ok(name), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(agent == NULL || store_agent_name_ok(agent), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(jwk == NULL || strlen(jwk) < 4096, ZTB_ERR_TOO_LARGE);
    /* an unused key still names the {src} slot: "" would be another slot
     * (CROSSSLOT on a Cluster) */
    char k1[STORE_KEY_MAX], k3[STORE_KEY_MAX] = SRC_NO_KEY, k4[STORE_KEY_MAX] = SRC_NO_KEY,
                            hex[65] = "", created[24];
    store_keyf(k1, "ztb:{src}:id:%s", name);
    secret[0] = '\0';
    if (agent != NULL) {
        store_keyf(k4, "ztb:{src}:agent:%s", agent);
    } else {
        uint8_t raw[32];
        ZTB_GUARD(ztb_random(raw, sizeof(raw)));
        memcpy(secret, "ztbsrc_", 7);
        ztb_err rv =
            ztb_b64url_encode(raw, sizeof(raw), secret + 7, STORE_SOURCE_SECRET_LEN + 1 - 7, NULL);
        ztb_wipe(raw, sizeof(raw));
        ZTB_GUARD(rv);
        store_hex_sha256(secret, strlen(secret), hex);
        store_keyf(k3, "ztb:{src}:sec:%s", hex);
    }
    snprintf(created, sizeof(created), "%lld", (long long)now);
    const char *argv[] = {
        k1, "ztb:{src}:all", k3, k4, name, hex, jwk ? jwk : "", agent ? agent : "", created};
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

/* KEYS: source hash, ztb:{src}:all. ARGV: name. The secret and agent index
 * keys are named from the hash's fields (single Redis / Sentinel only, as
 * the agent set in store.c). */
static const char source_remove_lua[] =
    "local f = redis.call('HMGET', KEYS[1], 'secret', 'agent')\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "if f[1] and f[1] ~= '' then redis.call('DEL', 'ztb:{src}:sec:' .. f[1]) end\n"
    "if f[2] and f[2] ~= '' then redis.call('DEL', 'ztb:{src}:agent:' .. f[2]) end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('SREM', KEYS[2], ARGV[1])\n"
    "return 1\n";
static struct store_script source_remove_script = STORE_SCRIPT(source_remove_lua);

ztb_err store_source_remove(const char *name)
{
    ZTB_ENSURE(store_source_name_ok(name), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, "ztb:{src}:id:%s", name);
    const char *argv[] = {k, "ztb:{src}:all", name};
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
    ZTB_GUARD(redis_commandf(&r, "SMEMBERS ztb:{src}:all"));
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
        store_keyf(k, "ztb:{src}:id:%s", names[i]);
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
                                                 "created", (json_int_t)store_parse_ll(f[3])));
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
    store_hex_sha256(secret, STORE_SOURCE_SECRET_LEN, hex);
    store_keyf(k, "ztb:{src}:sec:%s", hex);
    return get_name(k, name);
}

ztb_err store_source_by_agent(const char *agent, char name[STORE_SOURCE_MAX + 1])
{
    name[0] = '\0';
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, "ztb:{src}:agent:%s", agent);
    return get_name(k, name);
}

ztb_err store_source_jwk(const char *name, char *jwk, size_t cap)
{
    ZTB_ENSURE(store_source_name_ok(name), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, "ztb:{src}:id:%s", name);
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
