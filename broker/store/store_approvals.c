/*
 * store_approvals.c - human approvals and approver groups in Redis (see
 * store_approvals.h for the keys and the states).
 *
 * How it works: filing, reading (which marks an overdue approval expired),
 * deciding and using an approval are one Lua script each, run through
 * store_eval. The scripts build the keys of other approvals from the same
 * prefixes as wire/wire.h (ztb:{apr}:id:, ztb:{apr}:agent:,
 * ztb:{apr}:approvers:); a change there must change them too. Every key
 * is under the hash tag {apr}: each script touches one Cluster slot.
 *
 * Must never: let an approval give more than one token, let one person
 * count twice towards its approvers, or let anyone outside its group
 * approve it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/store/redis_client.h"
#include "broker/store/store_approvals.h"
#include "broker/store/store_internal.h"
#include "broker/store/store_rev.h"
#include "common/base64url.h"
#include "common/buf.h"
#include "common/guard.h"
#include "common/secret.h"
#include "wire/wire.h"

int store_approver_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > STORE_APPROVER_NAME_MAX || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int approval_id_ok(const char *id);

/* The hash fields, in this order, for HMGET and the scripts' answers. */
#define APPROVAL_NFIELDS 19
#define APPROVAL_FIELDS_LUA                                                                        \
    "'id', 'agent', 'gen', 'action', 'audience', 'resource', 'details', 'jkt', 'x5t', 'rule', "    \
    "'group', 'needed', 'approvers', 'status', 'reason', 'decided_by', 'created', 'expires', "     \
    "'jti'"

/* Lua shared by the scripts: close an approval (off its agent's open set,
 * its duplicate marker gone), mark it expired when overdue, and keep of an
 * approvers list only those still in the approval's group (a vote counts
 * while its approver is a member). */
#define APPROVAL_LUA_HELPERS                                                                       \
    "local function close(h, id)\n"                                                                \
    "  local ag = redis.call('HGET', h, 'agent')\n"                                                \
    "  if ag then redis.call('ZREM', 'ztb:{apr}:agent:' .. ag, id) end\n"                          \
    "  local d = redis.call('HGET', h, 'dup')\n"                                                   \
    "  if d and redis.call('GET', d) == id then redis.call('DEL', d) end\n"                        \
    "end\n"                                                                                        \
    "local function overdue(h, id, now)\n"                                                         \
    "  local f = redis.call('HMGET', h, 'status', 'expires')\n"                                    \
    "  if (f[1] == 'pending' or f[1] == 'approved') and now >= tonumber(f[2]) then\n"              \
    "    redis.call('HSET', h, 'status', 'expired')\n"                                             \
    "    close(h, id)\n"                                                                           \
    "    return 1\n"                                                                               \
    "  end\n"                                                                                      \
    "  return 0\n"                                                                                 \
    "end\n"                                                                                        \
    "local function members(h, list)\n"                                                            \
    "  local g = redis.call('HGET', h, 'group')\n"                                                 \
    "  if list == '' or not g or g == '' then return list end\n"                                   \
    "  local keep = {}\n"                                                                          \
    "  for who in string.gmatch(list, '[^,]+') do\n"                                               \
    "    if redis.call('SISMEMBER', 'ztb:{apr}:approvers:' .. g, who) == 1 then\n"                 \
    "      keep[#keep + 1] = who\n"                                                                \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return table.concat(keep, ',')\n"                                                           \
    "end\n"

/* KEYS: dup marker, approval hash, agent's open set, all ids. ARGV: id, now,
 * expires, keep, limit, agent, gen, action, audience, resource, details,
 * jkt, x5t, rule, group, needed. Returns {1, id} filed, {0, id} shared,
 * {2, ''} over the limit. */
static const char approval_create_lua[] =
    "local now = tonumber(ARGV[2])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)\n"
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then\n"
    "  local f = redis.call('HMGET', 'ztb:{apr}:id:' .. cur, 'status', 'expires')\n"
    "  if (f[1] == 'pending' or f[1] == 'approved') and tonumber(f[2]) > now then\n"
    "    return {0, cur}\n"
    "  end\n"
    "end\n"
    "if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then return {2, ''} end\n"
    "redis.call('HSET', KEYS[2], 'id', ARGV[1], 'agent', ARGV[6], 'gen', ARGV[7],\n"
    "  'action', ARGV[8], 'audience', ARGV[9], 'resource', ARGV[10], 'details', ARGV[11],\n"
    "  'jkt', ARGV[12], 'x5t', ARGV[13], 'rule', ARGV[14], 'group', ARGV[15],\n"
    "  'needed', ARGV[16], 'approvers', '', 'status', 'pending', 'reason', '',\n"
    "  'decided_by', '', 'created', ARGV[2], 'expires', ARGV[3], 'jti', '', 'dup', KEYS[1])\n"
    "redis.call('EXPIREAT', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]))\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[3])\n"
    "redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])\n"
    "redis.call('EXPIREAT', KEYS[3], ARGV[3])\n"
    "redis.call('ZADD', KEYS[4], now, ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - 8 * 86400))\n"
    "return {1, ARGV[1]}\n";
static struct store_script approval_create_script = STORE_SCRIPT(approval_create_lua);

/* KEYS: approval hash. ARGV: id, now. Returns {0} unknown, or {1,
 * expired_now, fields...}. */
static const char approval_get_lua[] =
    APPROVAL_LUA_HELPERS "if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end\n"
                         "local e = overdue(KEYS[1], ARGV[1], tonumber(ARGV[2]))\n"
                         "local out = redis.call('HMGET', KEYS[1], " APPROVAL_FIELDS_LUA ")\n"
                         "table.insert(out, 1, e)\n"
                         "table.insert(out, 1, 1)\n"
                         "return out\n";
static struct store_script approval_get_script = STORE_SCRIPT(approval_get_lua);

/* KEYS: approval hash. ARGV: id, approve|deny, by, now, reason. Returns 0
 * unknown, 1 done, 2 not pending, 3 expired now, 4 not in the group, 5
 * already approved by by. */
static const char approval_decide_lua[] = APPROVAL_LUA_HELPERS
    "local h = KEYS[1]\n"
    "local st = redis.call('HGET', h, 'status')\n"
    "if not st then return 0 end\n"
    "if overdue(h, ARGV[1], tonumber(ARGV[4])) == 1 then return 3 end\n"
    "if st ~= 'pending' then return 2 end\n"
    "local g = redis.call('HGET', h, 'group')\n"
    "if g ~= '' and redis.call('SISMEMBER', 'ztb:{apr}:approvers:' .. g, ARGV[3]) == 0 then\n"
    "  return 4\n"
    "end\n"
    "local list = redis.call('HGET', h, 'approvers')\n"
    "if string.find(',' .. list .. ',', ',' .. ARGV[3] .. ',', 1, true) then return 5 end\n"
    "if ARGV[2] == 'deny' then\n"
    "  redis.call('HSET', h, 'status', 'denied', 'reason', ARGV[5], 'decided_by', ARGV[3])\n"
    "  close(h, ARGV[1])\n"
    "  return 1\n"
    "end\n"
    "list = members(h, list)\n"
    "if list == '' then list = ARGV[3] else list = list .. ',' .. ARGV[3] end\n"
    "redis.call('HSET', h, 'approvers', list, 'decided_by', ARGV[3])\n"
    "local _, commas = string.gsub(list, ',', '')\n"
    "if commas + 1 >= tonumber(redis.call('HGET', h, 'needed')) then\n"
    "  redis.call('HSET', h, 'status', 'approved')\n"
    "end\n"
    "return 1\n";
static struct store_script approval_decide_script = STORE_SCRIPT(approval_decide_lua);

/* KEYS: approval hash. ARGV: id, reason. Returns 1 if it was pending. */
static const char approval_withdraw_lua[] = APPROVAL_LUA_HELPERS
    "if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'status', 'denied', 'reason', ARGV[2], 'decided_by', 'broker')\n"
    "close(KEYS[1], ARGV[1])\n"
    "return 1\n";
static struct store_script approval_withdraw_script = STORE_SCRIPT(approval_withdraw_lua);

ztb_err store_approval_withdraw(const char *id, const char *reason)
{
    ZTB_ENSURE(approval_id_ok(id), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX];
    store_keyf(k, ZTB_WIRE_APPROVAL_KEY_FMT, id);
    const char *argv[] = {k, id, reason};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &approval_withdraw_script, 1, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "approval_withdraw");
    long long code = r->integer;
    freeReplyObject(r);
    return code == 1 ? ZTB_OK : ZTB_ERR_STATE;
}

/* KEYS: approval hash. ARGV: id, agent, now, jti. Returns 0 unknown or
 * another agent's, 1 used now, 2 not approved (or expired now, or one of
 * its approvers left the group since: pending again, for another member). */
static const char approval_use_lua[] =
    APPROVAL_LUA_HELPERS "local h = KEYS[1]\n"
                         "local ag = redis.call('HGET', h, 'agent')\n"
                         "if not ag or ag ~= ARGV[2] then return 0 end\n"
                         "if overdue(h, ARGV[1], tonumber(ARGV[3])) == 1 then return 2 end\n"
                         "if redis.call('HGET', h, 'status') ~= 'approved' then return 2 end\n"
                         "local list = members(h, redis.call('HGET', h, 'approvers'))\n"
                         "local _, commas = string.gsub(list, ',', '')\n"
                         "local n = list == '' and 0 or commas + 1\n"
                         "if n < tonumber(redis.call('HGET', h, 'needed')) then\n"
                         "  redis.call('HSET', h, 'status', 'pending', 'approvers', list)\n"
                         "  return 2\n"
                         "end\n"
                         "redis.call('HSET', h, 'status', 'issued', 'jti', ARGV[4])\n"
                         "close(h, ARGV[1])\n"
                         "return 1\n";
static struct store_script approval_use_script = STORE_SCRIPT(approval_use_lua);

/* approval ids: "apr_" and 22 base64url characters */
static int approval_id_ok(const char *id)
{
    return id != NULL && strncmp(id, "apr_", 4) == 0 && strlen(id) == 26 && store_id_ok(id);
}

/*
 * SHA-256 (hex) of everything an approval binds, each part NUL-terminated:
 * the request, and what it was asked under (the agent's generation, the
 * rule, group and approvers needed). A request after a re-enrollment or a
 * policy change is a new request: it does not get the earlier approval,
 * which could only be refused ("ask again") until it expired.
 */
static void binding_hash(const struct store_approval *a, char hex[65])
{
    ztb_buf b;
    char gen[24], needed[16];
    snprintf(gen, sizeof(gen), "%lld", (long long)a->generation);
    snprintf(needed, sizeof(needed), "%u", a->needed);
    char store[sizeof(a->action) + sizeof(a->audience) + sizeof(a->resource) + sizeof(a->details) +
               sizeof(a->jkt) + sizeof(a->x5t) + sizeof(gen) + sizeof(a->rule) + sizeof(a->group) +
               sizeof(needed)];
    ztb_buf_init_fixed(&b, store, sizeof(store));
    const char *parts[] = {a->action, a->audience, a->resource, a->details, a->jkt,
                           a->x5t,    gen,         a->rule,     a->group,   needed};
    for (size_t i = 0; i < ZTB_ARRAY_LEN(parts); i++)
        ztb_buf_append(&b, parts[i], strlen(parts[i]) + 1);
    store_hex_sha256(store, b.len, hex);
}

ztb_err store_approval_create(struct store_approval *a, int64_t now, int *created)
{
    *created = 0;
    ZTB_ENSURE(store_agent_name_ok(a->agent) && store_id_ok(a->action) &&
                   store_id_ok(a->audience) && a->needed >= 1 && a->expires > now &&
                   (a->group[0] == '\0' || store_approver_name_ok(a->group)),
               ZTB_ERR_INVALID_ARG);
    uint8_t raw[16];
    ZTB_GUARD(ztb_random(raw, sizeof(raw)));
    memcpy(a->id, "apr_", 4);
    ZTB_GUARD(ztb_b64url_encode(raw, sizeof(raw), a->id + 4, sizeof(a->id) - 4, NULL));
    char hex[65], kdup[STORE_KEY_MAX], kh[STORE_KEY_MAX], kag[STORE_KEY_MAX];
    binding_hash(a, hex);
    ZTB_ENSURE(store_keyf(kdup, ZTB_WIRE_APPROVAL_DUP_KEY_FMT, a->agent, hex) &&
                   store_keyf(kh, ZTB_WIRE_APPROVAL_KEY_FMT, a->id) &&
                   store_keyf(kag, ZTB_WIRE_APPROVALS_AGENT_KEY_FMT, a->agent),
               ZTB_ERR_TOO_LARGE);
    char snow[24], sexp[24], keep[16], limit[16], gen[24], needed[16];
    snprintf(snow, sizeof(snow), "%lld", (long long)now);
    snprintf(sexp, sizeof(sexp), "%lld", (long long)a->expires);
    snprintf(keep, sizeof(keep), "%d", STORE_APPROVAL_KEEP);
    snprintf(limit, sizeof(limit), "%d", STORE_APPROVALS_PER_AGENT);
    snprintf(gen, sizeof(gen), "%lld", (long long)a->generation);
    snprintf(needed, sizeof(needed), "%u", a->needed);
    const char *argv[] = {kdup,        kh,          kag,        ZTB_WIRE_APPROVALS_KEY,
                          a->id,       snow,        sexp,       keep,
                          limit,       a->agent,    gen,        a->action,
                          a->audience, a->resource, a->details, a->jkt,
                          a->x5t,      a->rule,     a->group,   needed};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &approval_create_script, 4, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (!store_reply_is_int_array(r, 2) || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[1]->len > STORE_APPROVAL_ID_MAX)
        return store_unexpected_reply(r, "approval_create");
    long long code = store_reply_int(r, 0);
    char id[STORE_APPROVAL_ID_MAX + 1];
    memcpy(id, r->element[1]->str, r->element[1]->len + 1);
    freeReplyObject(r);
    if (code == 2)
        return ZTB_ERR_TOO_LARGE;
    if (code == 1) {
        *created = 1;
        snprintf(a->status, sizeof(a->status), "pending");
        a->created = now;
        return ZTB_OK;
    }
    int expired = 0;
    return store_approval_get(id, now, a, &expired);
}

/* a from the scripts' field list (APPROVAL_NFIELDS replies). */
static void approval_from(const redisReply *const *f, struct store_approval *a)
{
    memset(a, 0, sizeof(*a));
    const char *v[APPROVAL_NFIELDS];
    for (size_t i = 0; i < APPROVAL_NFIELDS; i++)
        v[i] = f[i]->type == REDIS_REPLY_STRING ? f[i]->str : "";
    snprintf(a->id, sizeof(a->id), "%s", v[0]);
    snprintf(a->agent, sizeof(a->agent), "%s", v[1]);
    a->generation = store_parse_ll(v[2]);
    snprintf(a->action, sizeof(a->action), "%s", v[3]);
    snprintf(a->audience, sizeof(a->audience), "%s", v[4]);
    snprintf(a->resource, sizeof(a->resource), "%s", v[5]);
    snprintf(a->details, sizeof(a->details), "%s", v[6]);
    snprintf(a->jkt, sizeof(a->jkt), "%s", v[7]);
    snprintf(a->x5t, sizeof(a->x5t), "%s", v[8]);
    snprintf(a->rule, sizeof(a->rule), "%s", v[9]);
    snprintf(a->group, sizeof(a->group), "%s", v[10]);
    a->needed = (uint32_t)store_parse_ll(v[11]);
    snprintf(a->approvers, sizeof(a->approvers), "%s", v[12]);
    snprintf(a->status, sizeof(a->status), "%s", v[13]);
    snprintf(a->reason, sizeof(a->reason), "%s", v[14]);
    snprintf(a->decided_by, sizeof(a->decided_by), "%s", v[15]);
    a->created = store_parse_ll(v[16]);
    a->expires = store_parse_ll(v[17]);
    snprintf(a->jti, sizeof(a->jti), "%s", v[18]);
}

ztb_err store_approval_get(const char *id, int64_t now, struct store_approval *a, int *expired_now)
{
    memset(a, 0, sizeof(*a));
    *expired_now = 0;
    ZTB_ENSURE(approval_id_ok(id), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX], snow[24];
    store_keyf(k, ZTB_WIRE_APPROVAL_KEY_FMT, id);
    snprintf(snow, sizeof(snow), "%lld", (long long)now);
    const char *argv[] = {k, id, snow};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &approval_get_script, 1, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "approval_get");
    if (r->element[0]->integer == 0) {
        freeReplyObject(r);
        return ZTB_ERR_NOT_FOUND;
    }
    if (r->elements != 2 + APPROVAL_NFIELDS || r->element[1]->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "approval_get");
    *expired_now = r->element[1]->integer == 1;
    approval_from((const redisReply *const *)r->element + 2, a);
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_approval_decide(const char *id, int approve, const char *by, const char *reason,
                              int64_t now, struct store_approval *a, int *expired_now)
{
    memset(a, 0, sizeof(*a));
    *expired_now = 0;
    ZTB_ENSURE(approval_id_ok(id), ZTB_ERR_NOT_FOUND);
    ZTB_ENSURE(store_approver_name_ok(by), ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX], snow[24];
    store_keyf(k, ZTB_WIRE_APPROVAL_KEY_FMT, id);
    snprintf(snow, sizeof(snow), "%lld", (long long)now);
    const char *argv[] = {k, id, approve ? "approve" : "deny", by, snow, reason ? reason : ""};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &approval_decide_script, 1, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "approval_decide");
    long long code = r->integer;
    freeReplyObject(r);
    if (code == 0)
        return ZTB_ERR_NOT_FOUND;
    int dummy = 0;
    ZTB_GUARD(store_approval_get(id, now, a, &dummy));
    switch (code) {
    case 1: return ZTB_OK;
    case 3: *expired_now = 1; return ZTB_ERR_STATE;
    case 4: return ZTB_ERR_PERMISSION;
    case 5: return ZTB_ERR_EXISTS;
    default: return ZTB_ERR_STATE;
    }
}

ztb_err store_approval_use(const char *id, const char *agent, const char *jti, int64_t now)
{
    ZTB_ENSURE(approval_id_ok(id) && store_agent_name_ok(agent), ZTB_ERR_NOT_FOUND);
    char k[STORE_KEY_MAX], snow[24];
    store_keyf(k, ZTB_WIRE_APPROVAL_KEY_FMT, id);
    snprintf(snow, sizeof(snow), "%lld", (long long)now);
    const char *argv[] = {k, id, agent, snow, jti};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &approval_use_script, 1, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "approval_use");
    long long code = r->integer;
    freeReplyObject(r);
    return code == 1 ? ZTB_OK : code == 0 ? ZTB_ERR_NOT_FOUND : ZTB_ERR_STATE;
}

json_t *store_approval_json(const struct store_approval *a)
{
    json_t *o =
        json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:I,s:I}", "id", a->id, "agent",
                  a->agent, "generation", (json_int_t)a->generation, "action", a->action,
                  "audience", a->audience, "resource", a->resource, "rule", a->rule, "group",
                  a->group, "approvers_needed", (int)a->needed, "status", a->status, "created",
                  (json_int_t)a->created, "expires", (json_int_t)a->expires);
    if (o == NULL)
        return NULL;
    json_t *by = json_array();
    char list[sizeof(a->approvers)];
    snprintf(list, sizeof(list), "%s", a->approvers);
    char *save = NULL;
    for (char *p = strtok_r(list, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save))
        json_array_append_new(by, json_string(p));
    json_object_set_new(o, "approved_by", by);
    if (a->details[0] != '\0')
        json_object_set_new(o, "authorization_details", json_string(a->details));
    json_object_set_new(o, "binding",
                        json_string(a->jkt[0]   ? "dpop"
                                    : a->x5t[0] ? "mtls"
                                                : "none"));
    if (a->jkt[0] != '\0')
        json_object_set_new(o, "jkt", json_string(a->jkt));
    if (strcmp(a->status, "denied") == 0) {
        json_object_set_new(o, "denied_by", json_string(a->decided_by));
        json_object_set_new(o, "reason", json_string(a->reason));
    }
    if (a->jti[0] != '\0')
        json_object_set_new(o, "jti", json_string(a->jti));
    return o;
}

ztb_err store_approval_list(size_t limit, int64_t now, json_t **out)
{
    *out = NULL;
    redisReply *r;
    char last[24];
    snprintf(last, sizeof(last), "%zu", limit ? limit - 1 : 0);
    ZTB_GUARD(redis_commandf(&r, "ZREVRANGE %s 0 %s", ZTB_WIRE_APPROVALS_KEY, last));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "approval_list");
    json_t *arr = json_array();
    ztb_err rv = ZTB_OK;
    struct store_approval *a = malloc(sizeof(*a));
    if (a == NULL)
        rv = ZTB_ERR_NOMEM;
    for (size_t i = 0; rv == ZTB_OK && i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING)
            continue;
        int expired = 0;
        rv = store_approval_get(m->str, now, a, &expired);
        if (rv == ZTB_ERR_NOT_FOUND) { /* kept no longer */
            rv = ZTB_OK;
            continue;
        }
        if (rv == ZTB_OK)
            json_array_append_new(arr, store_approval_json(a));
    }
    free(a);
    freeReplyObject(r);
    if (rv != ZTB_OK) {
        json_decref(arr);
        return rv;
    }
    *out = arr;
    return ZTB_OK;
}

/* KEYS: group set, groups set. ARGV: add|remove, group, user. Returns 1 if
 * it changed something. */
static const char approvers_edit_lua[] =
    "local n\n"
    "if ARGV[1] == 'add' then\n"
    "  n = redis.call('SADD', KEYS[1], ARGV[3])\n"
    "  redis.call('SADD', KEYS[2], ARGV[2])\n"
    "else\n"
    "  n = redis.call('SREM', KEYS[1], ARGV[3])\n"
    "  if redis.call('SCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end\n"
    "end\n"
    "return n\n";
static struct store_script approvers_edit_script = STORE_SCRIPT(approvers_edit_lua);

static ztb_err approvers_edit(const char *op, const char *group, const char *user, int *changed)
{
    *changed = 0;
    ZTB_ENSURE(store_approver_name_ok(group) && store_approver_name_ok(user), ZTB_ERR_INVALID_ARG);
    char k[STORE_KEY_MAX];
    store_keyf(k, ZTB_WIRE_APPROVERS_KEY_FMT, group);
    const char *argv[] = {k, ZTB_WIRE_APPROVER_GROUPS_KEY, op, group, user};
    redisReply *r;
    ZTB_GUARD(store_eval(&r, &approvers_edit_script, 2, (int)ZTB_ARRAY_LEN(argv), argv, NULL));
    if (r->type != REDIS_REPLY_INTEGER)
        return store_unexpected_reply(r, "approvers_edit");
    *changed = r->integer == 1;
    freeReplyObject(r);
    return ZTB_OK;
}

ztb_err store_approvers_add(const char *group, const char *user, int *changed)
{
    return approvers_edit("add", group, user, changed);
}

ztb_err store_approvers_remove(const char *group, const char *user, int *changed)
{
    return approvers_edit("remove", group, user, changed);
}

/* The members of group as a new sorted JSON array. */
static ztb_err group_members(const char *group, json_t **out)
{
    char k[STORE_KEY_MAX];
    store_keyf(k, ZTB_WIRE_APPROVERS_KEY_FMT, group);
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "SORT %s ALPHA", k));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "approvers_list");
    json_t *arr = json_array();
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            json_array_append_new(arr, json_string(r->element[i]->str));
    freeReplyObject(r);
    *out = arr;
    return ZTB_OK;
}

ztb_err store_approvers_list(const char *group, json_t **out)
{
    *out = NULL;
    if (group != NULL) {
        ZTB_ENSURE(store_approver_name_ok(group), ZTB_ERR_INVALID_ARG);
        return group_members(group, out);
    }
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "SORT %s ALPHA", ZTB_WIRE_APPROVER_GROUPS_KEY));
    if (r->type != REDIS_REPLY_ARRAY)
        return store_unexpected_reply(r, "approver_groups");
    json_t *obj = json_object();
    ztb_err rv = ZTB_OK;
    for (size_t i = 0; rv == ZTB_OK && i < r->elements; i++) {
        const redisReply *g = r->element[i];
        json_t *m = NULL;
        if (g->type != REDIS_REPLY_STRING || !store_approver_name_ok(g->str))
            continue;
        rv = group_members(g->str, &m);
        if (rv == ZTB_OK)
            json_object_set_new(obj, g->str, m);
    }
    freeReplyObject(r);
    if (rv != ZTB_OK) {
        json_decref(obj);
        return rv;
    }
    *out = obj;
    return ZTB_OK;
}
