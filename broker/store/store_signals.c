/*
 * store_signals.c - what the broker remembers of received signals in Redis
 * (see store_signals.h for the keys): the replay marks of (source, jti) and
 * the ztb:signals stream operators read.
 *
 * Must never: put a source's jti into a key name unhashed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/store/redis_client.h"
#include "broker/store/store_internal.h"
#include "common/json_gate.h"
#include "broker/store/store_rev.h"
#include "broker/store/store_signals.h"
#include "broker/store/store_sources.h"
#include "common/guard.h"

#define SIGNALS_MAXLEN "10000"

/* ztb:sigjti:<sha256(source 0x1f jti)>: hashed, because the jti is the
 * source's string; the key stays fixed-size. */
static ztb_err sigjti_key(const char *source, const char *jti, char k[STORE_KEY_MAX])
{
    ZTB_ENSURE(source != NULL && jti != NULL, ZTB_ERR_INVALID_ARG);
    char buf[STORE_SOURCE_MAX + STORE_ID_MAX + 8], hex[65];
    int n = snprintf(buf, sizeof(buf), "%s%c%s", source, 0x1f, jti);
    ZTB_ENSURE(n > 0 && (size_t)n < sizeof(buf), ZTB_ERR_TOO_LARGE);
    store_hex_sha256(buf, (size_t)n, hex);
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
            (void)ztb_json_gate_load(v->str, v->len, STORE_RECORD_JSON_MAX, ZTB_JSON_GATE_DEPTH, 0,
                                     &j, NULL, 0);
        if (json_is_object(j))
            json_array_append_new(arr, j);
        else
            json_decref(j);
    }
    freeReplyObject(r);
    *out = arr;
    return ZTB_OK;
}

#define MODES_KEY "ztb:signal_modes"

ztb_err store_signal_mode_set(const char *who, int observe)
{
    ZTB_ENSURE(who != NULL && strlen(who) < STORE_KEY_MAX, ZTB_ERR_INVALID_ARG);
    redisReply *r;
    if (observe)
        ZTB_GUARD(redis_commandf(&r, "HSET " MODES_KEY " %s observe", who));
    else
        ZTB_GUARD(redis_commandf(&r, "HDEL " MODES_KEY " %s", who));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "signal_mode_set");
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_signal_mode_get(const char *source, const char *type, int detector, int *observe)
{
    *observe = 0;
    ZTB_ENSURE(source != NULL && type != NULL, ZTB_ERR_INVALID_ARG);
    char fs[STORE_KEY_MAX], fd[STORE_KEY_MAX];
    int a = snprintf(fs, sizeof(fs), "source:%s", source);
    int b = snprintf(fd, sizeof(fd), "detector:%s", detector ? type : "");
    ZTB_ENSURE(a > 0 && (size_t)a < sizeof(fs) && b > 0 && (size_t)b < sizeof(fd),
               ZTB_ERR_TOO_LARGE);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HMGET " MODES_KEY " %s %s", fs, fd));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return store_unexpected_reply(r, "signal_mode_get");
    for (size_t i = 0; i < 2; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING && strcmp(e->str, "observe") == 0 && (i == 0 || detector))
            *observe = 1;
    }
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_signal_modes(json_t **out)
{
    *out = NULL;
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HGETALL " MODES_KEY));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "signal_modes");
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            json_object_set_new(o, r->element[i]->str, json_string(r->element[i + 1]->str));
    freeReplyObject(r);
    if (o == NULL)
        return ZTB_ERR_NOMEM;
    *out = o;
    return ZTB_OK;
}

#define OUTCOMES_KEY "ztb:signal_outcomes"

ztb_err store_signal_outcome_set(const char *id, const char *json)
{
    ZTB_ENSURE(id != NULL && json != NULL && store_id_ok(id), ZTB_ERR_INVALID_ARG);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HSET " OUTCOMES_KEY " %s %s", id, json));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "signal_outcome_set");
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_signal_outcomes(json_t **out)
{
    *out = NULL;
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HGETALL " OUTCOMES_KEY));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "signal_outcomes");
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        json_t *j = NULL;
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            (void)ztb_json_gate_load(v->str, v->len, STORE_RECORD_JSON_MAX, ZTB_JSON_GATE_DEPTH, 0,
                                     &j, NULL, 0);
        if (json_is_object(j))
            json_object_set_new(o, k->str, j);
        else
            json_decref(j);
    }
    freeReplyObject(r);
    if (o == NULL)
        return ZTB_ERR_NOMEM;
    *out = o;
    return ZTB_OK;
}
