/*
 * store_baseline.c - learning windows, baselines and activity records of
 * agents (see store_baseline.h for the keys). The token path writes them
 * inside the issue script (store.c); this file starts windows and reads
 * them for the admin API. Redis contents are read as untrusted: anything
 * that is not what the script writes is skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/store/redis_client.h"
#include "broker/store/store.h"
#include "broker/store/store_baseline.h"
#include "broker/store/store_internal.h"
#include "broker/store/store_lease.h"
#include "common/guard.h"
#include "wire/unknown_report.h"
#include "wire/wire.h"

void store_resource_prefix(const char *resource, char out[STORE_BL_PREFIX_MAX + 1])
{
    out[0] = '\0';
    const char *slash = resource ? strrchr(resource, '/') : NULL;
    if (slash == NULL)
        return;
    size_t n = (size_t)(slash - resource) + 1;
    if (n > STORE_BL_PREFIX_MAX) {
        n = STORE_BL_PREFIX_MAX;
        while (n > 0 && ((unsigned char)resource[n] & 0xc0u) == 0x80u)
            n--; /* never end inside a UTF-8 sequence */
    }
    memcpy(out, resource, n);
    out[n] = '\0';
}

/* KEYS: agent hash, baseline. ARGV: learn_s, only_if_new ('1'), days.
 * {-1}: unknown agent; {0}: kept; {1, until}: started. */
static const char start_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end\n"
    "if ARGV[2] == '1' and redis.call('HEXISTS', KEYS[1], 'bl_until') == 1 then\n"
    "  return {0, 0}\n"
    "end\n"
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local till = now + tonumber(ARGV[1])\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('HSET', KEYS[2], 'days', ARGV[3])\n"
    "redis.call('HSET', KEYS[1], 'bl_since', now, 'bl_until', till)\n"
    "return {1, till}\n";
static struct store_script start_script = STORE_SCRIPT(start_lua);

ztb_err store_baseline_start(const char *agent, unsigned learn_s, int only_if_new, int64_t *until)
{
    *until = 0;
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    ZTB_ENSURE(learn_s > 0 && learn_s <= 366u * 86400u, ZTB_ERR_INVALID_ARG);
    char k1[STORE_KEY_MAX], k2[STORE_KEY_MAX], l[16], days[16];
    store_keyf(k1, ZTB_WIRE_AGENT_KEY_FMT, agent);
    store_keyf(k2, STORE_BASELINE_KEY_FMT, agent);
    snprintf(l, sizeof(l), "%u", learn_s);
    snprintf(days, sizeof(days), "%u", (learn_s + 86399u) / 86400u);
    const char *argv[] = {k1, k2, l, only_if_new ? "1" : "0", days};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &start_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (!store_reply_is_int_array(r, 2))
        return store_unexpected_reply(r, "baseline_start");
    int64_t code = store_reply_int(r, 0);
    *until = code == 1 ? store_reply_int(r, 1) : 0;
    freeReplyObject(r);
    return code < 0 ? ZTB_ERR_NOT_FOUND : ZTB_OK;
}

/* The integer text s, or -1 if it is not one. */
static long long num_or(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return end != s && *end == '\0' ? v : -1;
}

/* Add one baseline field (name without its "x:" prefix, value) to arr. */
static void add_value(json_t *arr, const char *name, const char *value)
{
    json_t *s = json_string(name); /* NULL if Redis holds no UTF-8 here */
    if (s == NULL || json_array_size(arr) >= STORE_BL_CAP) {
        json_decref(s);
        return;
    }
    json_t *o = json_pack("{s:o}", "value", s);
    if (value[0] == '-')
        json_object_set_new(o, "first_seen", json_integer(num_or(value + 1)));
    else
        json_object_set_new(o, "learned_at", json_integer(num_or(value)));
    json_array_append_new(arr, o);
}

ztb_err store_baseline_get(const char *agent, json_t **out)
{
    *out = NULL;
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    char k1[STORE_KEY_MAX], k2[STORE_KEY_MAX];
    store_keyf(k1, ZTB_WIRE_AGENT_KEY_FMT, agent);
    store_keyf(k2, STORE_BASELINE_KEY_FMT, agent);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HMGET %s status bl_since bl_until", k1));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return store_unexpected_reply(r, "baseline_get");
    if (r->element[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return ZTB_ERR_NOT_FOUND;
    }
    long long since = r->element[1]->type == REDIS_REPLY_STRING ? num_or(r->element[1]->str) : 0;
    long long till = r->element[2]->type == REDIS_REPLY_STRING ? num_or(r->element[2]->str) : 0;
    freeReplyObject(r);
    ZTB_GUARD(redis_commandf(&r, "HGETALL %s", k2));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "baseline_get");
    json_t *acts = json_array(), *auds = json_array(), *pfx = json_array(), *hours = json_array();
    long long hv[24] = {0}, n = 0, days = 1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        const char *name = f->str;
        if (strncmp(name, "a:", 2) == 0)
            add_value(acts, name + 2, v->str);
        else if (strncmp(name, "u:", 2) == 0)
            add_value(auds, name + 2, v->str);
        else if (strncmp(name, "p:", 2) == 0)
            add_value(pfx, name + 2, v->str);
        else if (strncmp(name, "h:", 2) == 0 && num_or(name + 2) >= 0 && num_or(name + 2) < 24)
            hv[num_or(name + 2)] = num_or(v->str);
        else if (strcmp(name, "days") == 0 && num_or(v->str) >= 1)
            days = num_or(v->str);
    }
    freeReplyObject(r);
    for (size_t h = 0; h < 24; h++) {
        json_array_append_new(hours, json_integer(hv[h] < 0 ? 0 : hv[h]));
        n += hv[h] < 0 ? 0 : hv[h];
    }
    long long now = (long long)time(NULL);
    const char *phase = till <= 0 ? "none" : now < till ? "learning" : "watching";
    *out = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o}", "agent", agent, "phase", phase,
                     "learning_since", (json_int_t)(since > 0 ? since : 0), "learning_until",
                     (json_int_t)(till > 0 ? till : 0), "tokens_learned",
                     (json_int_t)(n > 0 ? n : 0), "days", (json_int_t)days, "actions", acts,
                     "audiences", auds, "resource_prefixes", pfx, "hours", hours);
    return *out ? ZTB_OK : ZTB_ERR_NOMEM;
}

ztb_err store_baseline_counts(const char *agent, int64_t *learned, int64_t distinct[3])
{
    *learned = 0;
    distinct[0] = distinct[1] = distinct[2] = 0;
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, STORE_BASELINE_KEY_FMT, agent);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r,
                             "HMGET %s h:0 h:1 h:2 h:3 h:4 h:5 h:6 h:7 h:8 h:9 h:10 h:11 h:12 "
                             "h:13 h:14 h:15 h:16 h:17 h:18 h:19 h:20 h:21 h:22 h:23 ka ku kp",
                             k));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 27)
        return store_unexpected_reply(r, "baseline_counts");
    for (size_t i = 0; i < 27; i++) {
        long long v = r->element[i]->type == REDIS_REPLY_STRING ? num_or(r->element[i]->str) : 0;
        if (v < 0)
            v = 0;
        if (i < 24)
            *learned += v;
        else
            distinct[i - 24] = v;
    }
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_activity_get(const char *agent, int64_t *last_seen, int64_t *tokens_day)
{
    struct store_activity a;
    ztb_err rv = store_activity_read(agent, (int64_t)time(NULL), &a);
    *last_seen = a.last_seen;
    *tokens_day = a.tokens_day;
    return rv;
}

/* The slot of an "i:<slot>" or "d:<slot>" field (kind 'i' or 'd'), or -1. */
static long long slot_of(const char *f, char kind)
{
    if (f[0] != kind || f[1] != ':')
        return -1;
    return num_or(f + 2);
}

/* KEYS: the activity record. ARGV: slot, slots kept. */
static const char denied_lua[] =
    "local q = tonumber(ARGV[1])\n"
    "if redis.call('HINCRBY', KEYS[1], 'd:' .. q, 1) == 1 then\n"
    "  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do\n"
    "    local p = string.match(f, '^[id]:(%d+)$')\n"
    "    if p and tonumber(p) <= q - tonumber(ARGV[2]) then redis.call('HDEL', KEYS[1], f) end\n"
    "  end\n"
    "  redis.call('EXPIRE', KEYS[1], 172800)\n"
    "end\n"
    "return 1\n";
static struct store_script denied_script = STORE_SCRIPT(denied_lua);

ztb_err store_activity_denied(const char *agent, int64_t now)
{
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX], slot[24], keep[8];
    store_keyf(k, STORE_SEEN_KEY_FMT, agent);
    snprintf(slot, sizeof(slot), "%lld", (long long)(now / STORE_ACTIVITY_SLOT_S));
    snprintf(keep, sizeof(keep), "%d", STORE_ACTIVITY_SLOTS);
    const char *argv[] = {k, slot, keep};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &denied_script, 1, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "activity_denied");
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_activity_read(const char *agent, int64_t now, struct store_activity *out)
{
    memset(out, 0, sizeof(*out));
    int64_t *last_seen = &out->last_seen, *tokens_day = &out->tokens_day;
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    /* this broker's rate leases first (store_lease.h): what it issued is
     * in the counts now; another replica's is at most one sweep behind */
    (void)store_lease_settle_agent(agent);
    char k[STORE_KEY_MAX];
    store_keyf(k, STORE_SEEN_KEY_FMT, agent);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HGETALL %s", k));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "activity_get");
    long long hr = (long long)now / 3600, q = (long long)now / STORE_ACTIVITY_SLOT_S;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        long long val = num_or(v->str);
        if (val < 0)
            continue;
        if (strcmp(f->str, "last") == 0) {
            *last_seen = val;
            continue;
        }
        long long s = slot_of(f->str, 'i');
        if (s > q - STORE_ACTIVITY_SLOTS && s <= q + 1) {
            out->tokens_hour += val;
            continue;
        }
        s = slot_of(f->str, 'd');
        if (s > q - STORE_ACTIVITY_SLOTS && s <= q + 1) {
            out->denied_hour += val;
            continue;
        }
        long long h = num_or(f->str);
        if (h > hr - 24 && h <= hr + 1)
            *tokens_day += val;
    }
    freeReplyObject(r);
    return ZTB_OK;
}

/* ---- inventory ------------------------------------------------------------- */

ztb_err store_agent_set_meta(const char *agent, const char *owner, const char *description)
{
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    ZTB_ENSURE((owner == NULL || strlen(owner) <= STORE_OWNER_MAX) &&
                   (description == NULL || strlen(description) <= STORE_DESCRIPTION_MAX),
               ZTB_ERR_INVALID_ARG);
    if (owner == NULL && description == NULL)
        return ZTB_OK;
    char k[STORE_KEY_MAX];
    store_keyf(k, ZTB_WIRE_AGENT_KEY_FMT, agent);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "EVAL %s 1 %s %s %s",
                             "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
                             "if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'owner', "
                             "ARGV[1]) end "
                             "if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], "
                             "'description', ARGV[2]) end return 1",
                             k, owner ? owner : "", description ? description : ""));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "agent_set_meta");
    int ok = r->integer == 1;
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_NOT_FOUND;
}

ztb_err store_agent_meta(const char *agent, char owner[STORE_OWNER_MAX + 1],
                         char description[STORE_DESCRIPTION_MAX + 1])
{
    owner[0] = description[0] = '\0';
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, ZTB_WIRE_AGENT_KEY_FMT, agent);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HMGET %s owner description", k));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return store_unexpected_reply(r, "agent_meta");
    if (r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len <= STORE_OWNER_MAX)
        memcpy(owner, r->element[0]->str, r->element[0]->len + 1);
    if (r->element[1]->type == REDIS_REPLY_STRING && r->element[1]->len <= STORE_DESCRIPTION_MAX)
        memcpy(description, r->element[1]->str, r->element[1]->len + 1);
    freeReplyObject(r);
    return ZTB_OK;
}

int store_source_label_ok(const char *s)
{
    return unknown_label_ok(s); /* the label verifiers' reports carry (wire/) */
}

static const char unknown_lua[] =
    "local f = ARGV[1]\n"
    "if redis.call('HEXISTS', KEYS[1], f) == 0 and\n"
    "   redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[2]) then f = ARGV[3] end\n"
    "local n = redis.call('HINCRBY', KEYS[1], f, tonumber(ARGV[4]))\n"
    "redis.call('HSET', KEYS[2], f, redis.call('TIME')[1])\n"
    "return n\n";
static struct store_script unknown_script = STORE_SCRIPT(unknown_lua);

ztb_err store_unknown_client_add(const char *reason, const char *source, int64_t by, int64_t *count)
{
    *count = 0;
    ZTB_ENSURE(reason != NULL && store_source_label_ok(reason) && store_source_label_ok(source) &&
                   by >= 1 && by <= UNKNOWN_COUNT_MAX,
               ZTB_ERR_INVALID_ARG);
    char field[160], cap[16], n[24];
    snprintf(field, sizeof(field), "%s|%s", reason, source);
    snprintf(cap, sizeof(cap), "%d", (int)STORE_UNKNOWN_CAP);
    snprintf(n, sizeof(n), "%lld", (long long)by);
    const char *argv[] = {
        "ztb:{unknown}:clients", "ztb:{unknown}:seen", field, cap, "other|overflow", n};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &unknown_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "unknown_client_count");
    *count = r->integer;
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_unknown_client_count(const char *reason, const char *source, int64_t *count)
{
    return store_unknown_client_add(reason, source, 1, count);
}

ztb_err store_unknown_reports_pop(size_t max, store_report_fn each, void *ud, size_t *popped)
{
    *popped = 0;
    ZTB_ENSURE(max >= 1 && max <= 1000 && each != NULL, ZTB_ERR_INVALID_ARG);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "RPOP %s %d", ZTB_WIRE_UNKNOWN_REPORTS_KEY, (int)max));
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return ZTB_OK;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "unknown_reports_pop");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING)
            each(e->str, e->len, ud);
        (*popped)++;
    }
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_unknown_clients(json_t **out)
{
    *out = NULL;
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "HGETALL ztb:{unknown}:clients"));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "unknown_clients");
    redisReply *seen;
    ztb_err rv = redis_commandf(&seen, "HGETALL ztb:{unknown}:seen");
    if (rv != ZTB_OK) {
        freeReplyObject(r);
        return rv;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i + 1 < r->elements && i / 2 < STORE_UNKNOWN_CAP + 1; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        const char *bar = strchr(f->str, '|');
        if (bar == NULL || bar - f->str > 63)
            continue;
        char reason[64];
        memcpy(reason, f->str, (size_t)(bar - f->str));
        reason[bar - f->str] = '\0';
        if (!store_source_label_ok(reason) || !store_source_label_ok(bar + 1))
            continue;
        long long last = 0;
        for (size_t j = 0; seen->type == REDIS_REPLY_ARRAY && j + 1 < seen->elements; j += 2)
            if (seen->element[j]->type == REDIS_REPLY_STRING &&
                seen->element[j + 1]->type == REDIS_REPLY_STRING &&
                strcmp(seen->element[j]->str, f->str) == 0)
                last = num_or(seen->element[j + 1]->str);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I}", "reason", reason, "source",
                                             bar + 1, "count", (json_int_t)num_or(v->str),
                                             "last_seen", (json_int_t)last));
    }
    freeReplyObject(r);
    freeReplyObject(seen);
    *out = arr;
    return ZTB_OK;
}
