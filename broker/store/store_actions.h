/*
 * store_actions.h - responses waiting for an operator's confirmation, in Redis.
 *
 * Keys:
 *
 *   ztb:{act}:id:<id>              HASH a response waiting for an operator, EX 7 d
 *   ztb:{act}:all                  ZSET action ids by creation time
 *   ztb:{act}:pend:<entry>:<kind>:<target>  STR the pending action for that target
 *
 * Every function returns UNAVAILABLE when Redis cannot answer (callers fail
 * closed with 503); nothing here changes state half-way.
 */
#ifndef ZTB_BROKER_STORE_ACTIONS_H
#define ZTB_BROKER_STORE_ACTIONS_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "broker/store/store_rev.h"

struct json_t;

#define STORE_ACTION_TTL (7 * 86400)

struct store_action {
    char id[32];
    char entry[65];       /* the anomaly_responses entry */
    char response[24];    /* its response name, e.g. "quarantine" */
    char target_kind[12]; /* agent, jti, audience, key */
    char target[STORE_ID_MAX + 1];
    int64_t target_exp; /* jti: the token's exp if known, else 0 */
    char signals[512];  /* the signals that asked for it, comma-separated */
    char status[16];    /* pending, confirmed, rejected, applied, failed */
    int64_t created;
};

/*
 * File a response for an operator. If one is already pending for the same
 * (entry, target), the signal ids are added to it and *created = 0; a->id is
 * set to the action's id either way.
 */
ztb_err store_action_create(struct store_action *a, int64_t now, int *created);

/*
 * An operator's decision: confirm = 1 (pending or failed -> confirmed) or 0
 * (pending -> rejected). Fills a. NOT_FOUND for an unknown or expired id,
 * STATE if it was already decided (a->status says how).
 */
ztb_err store_action_decide(const char *id, int confirm, const char *by, int64_t now,
                            struct store_action *a);

/* Record the outcome of a confirmed action ("applied" or "failed"). */
ztb_err store_action_set_status(const char *id, const char *status);

/* The status of action id into status (16 bytes): NOT_FOUND if it is
 * unknown or expired. */
ztb_err store_action_status(const char *id, char status[16]);

/* Recent actions, newest first, at most limit: a new JSON array. */
ztb_err store_action_list(size_t limit, struct json_t **out);

#endif /* ZTB_BROKER_STORE_ACTIONS_H */
