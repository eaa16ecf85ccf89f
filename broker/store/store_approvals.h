/*
 * store_approvals.h - human approvals of token requests, and approver
 * groups, in Redis.
 *
 * Keys (names in wire/wire.h):
 *
 *   ztb:{apr}:id:<id>          HASH one approval: what it binds (agent,
 *                              generation, action, audience, resource,
 *                              authorization_details, jkt or x5t), the rule,
 *                              the approver group and how many approvers it
 *                              needs, who approved, status, reason, times.
 *                              Kept STORE_APPROVAL_KEEP s after it expires.
 *   ztb:{apr}:all              ZSET every approval id by creation time
 *   ztb:{apr}:agent:<A>        ZSET agent A's open approvals (pending or
 *                              approved, not yet used) by expiry: the limit
 *   ztb:{apr}:dup:<A>:<sha256> STR  the open approval of one exact request,
 *                              so a repeated request shares it
 *   ztb:{apr}:approvers:<grp>  SET  user names of an approver group
 *   ztb:{apr}:groups           SET  the groups that have members
 *
 * All under the hash tag {apr}, so every script touches one Redis Cluster
 * slot.
 *
 * Status: pending -> approved (enough distinct approvers) -> issued (the
 * token was handed out, once), or pending -> denied, or pending/approved ->
 * expired. Every transition is one Lua script, so two operators cannot both
 * decide one approval and an approval gives at most one token.
 *
 * Every function returns UNAVAILABLE when Redis cannot answer (callers fail
 * closed with 503); nothing here changes state half-way.
 */
#ifndef ZTB_BROKER_STORE_APPROVALS_H
#define ZTB_BROKER_STORE_APPROVALS_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "broker/store/store.h"

struct json_t;

#define STORE_APPROVAL_KEEP        86400 /* s an approval is kept after it expires */
#define STORE_APPROVALS_PER_AGENT  10    /* open approvals per agent */
#define STORE_APPROVAL_ID_MAX      39
#define STORE_APPROVER_NAME_MAX    64
#define STORE_APPROVAL_DETAILS_MAX 4096

struct store_approval {
    char id[STORE_APPROVAL_ID_MAX + 1];
    char agent[STORE_NAME_MAX + 1];
    int64_t generation;
    char action[129];
    char audience[513];
    char resource[513];                           /* "" when none */
    char details[STORE_APPROVAL_DETAILS_MAX + 1]; /* authorization_details as sent, or "" */
    char jkt[64];                                 /* DPoP key the token must be bound to, or "" */
    char x5t[64];                                 /* mTLS certificate thumbprint, or "" */
    char rule[65];   /* the policy rule that asked ("" for a signal response) */
    char group[65];  /* approver group, "" when any operator may approve */
    uint32_t needed; /* distinct approvers needed */
    char approvers[STORE_APPROVER_NAME_MAX * 10 + 16]; /* who approved, comma-separated */
    char status[12];                                   /* pending approved denied expired issued */
    char reason[257];                                  /* denial reason */
    char decided_by[STORE_APPROVER_NAME_MAX + 1];
    int64_t created, expires;
    char jti[40]; /* status issued: the token's jti */
};

/* 1 if s is a user or group name: 1..64 of [A-Za-z0-9._-], not starting with '-'. */
int store_approver_name_ok(const char *s);

/*
 * File a pending approval for a (filled in: agent .. needed, expires).
 * If an open approval of the same agent binds exactly the same request
 * (action, audience, resource, details, jkt, x5t), a is filled from it and
 * *created = 0. TOO_LARGE when the agent already has
 * STORE_APPROVALS_PER_AGENT open approvals. a->id, status and created set.
 */
ztb_err store_approval_create(struct store_approval *a, int64_t now, int *created);

/*
 * Read approval id into a. A pending or approved approval past its expiry
 * becomes expired now; *expired_now = 1 then (the caller records it, once).
 * NOT_FOUND for an unknown id.
 */
ztb_err store_approval_get(const char *id, int64_t now, struct store_approval *a, int *expired_now);

/*
 * An operator's decision on pending approval id: approve (1) or deny (0,
 * with reason). by must be a member of the approval's group (when it has
 * one) and not have approved it already. Fills a (afterwards).
 * NOT_FOUND unknown id; STATE not pending (a->status says what it is;
 * *expired_now = 1 if it expired just now); PERMISSION by is not in the
 * group; EXISTS by already approved it.
 */
ztb_err store_approval_decide(const char *id, int approve, const char *by, const char *reason,
                              int64_t now, struct store_approval *a, int *expired_now);

/*
 * The broker takes back pending approval id (denied by "broker" with
 * reason): one that was never recorded must not be approved. STATE if it
 * is no longer pending.
 */
ztb_err store_approval_withdraw(const char *id, const char *reason);

/*
 * Hand out the token of approved approval id to agent, once: approved ->
 * issued with jti. STATE if it is not approved (or is no longer),
 * NOT_FOUND if it is not that agent's.
 */
ztb_err store_approval_use(const char *id, const char *agent, const char *jti, int64_t now);

/* Recent approvals, newest first, at most limit: a new JSON array of
 * objects (store_approval_json). Expired ones are marked on the way. */
ztb_err store_approval_list(size_t limit, int64_t now, struct json_t **out);

/* a as a new JSON object (without the details text when it is empty). */
struct json_t *store_approval_json(const struct store_approval *a);

/* Approver groups: add or remove user (*changed 1 if it did anything), the
 * members of group (a new JSON array of strings), every group with members
 * (group NULL: a new JSON object group -> [users]). */
ztb_err store_approvers_add(const char *group, const char *user, int *changed);
ztb_err store_approvers_remove(const char *group, const char *user, int *changed);
ztb_err store_approvers_list(const char *group, struct json_t **out);

#endif /* ZTB_BROKER_STORE_APPROVALS_H */
