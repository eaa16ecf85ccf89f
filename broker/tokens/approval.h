/*
 * approval.h - the agent's side of human approvals: filing a pending
 * approval for a token request, and the answers /v1/token and
 * /v1/approvals/{id} give while it waits, after a denial or an expiry
 * (docs/protocol.md, "Approvals"). The token itself is issued by token.c
 * under the approval; operators decide through the admin API
 * (broker/admin/admin_approvals.c).
 *
 * Answers (RFC 6749 §5.2 JSON, with the ztb_error name clients map):
 *
 *   400 authorization_pending  APPROVAL_PENDING  + approval_id, approval_uri,
 *                                                  expires_in, interval
 *   403 access_denied          APPROVAL_DENIED   + approval_id, reason
 *   400 expired_token          APPROVAL_EXPIRED  + approval_id
 *
 * Must never: answer anything but 404 to an agent asking about another
 * agent's approval (no oracle of ids), or file an approval without the
 * audit line that records it.
 */
#ifndef ZTB_BROKER_APPROVAL_H
#define ZTB_BROKER_APPROVAL_H

#include <stdint.h>

#include "broker/http/http.h"
#include "broker/store/store_approvals.h"
#include "policy/model.h"

/* s a pending approval waits when policy names nothing: the policy's own default */
#define APPROVAL_DEFAULT_TTL   POLICY_APPROVAL_TTL_DEFAULT
#define APPROVAL_POLL_INTERVAL 2 /* s between two polls, as the answer advises */

/*
 * File (or share) the pending approval a describes (everything but id,
 * status and times filled; ttl seconds from now), audit it
 * (approval.requested) and answer 400 authorization_pending. actor: the
 * agent's audit actor. On trouble fills resp: 429 over the per-agent limit,
 * 503 Redis or audit log. Returns 1 if an approval is pending.
 */
int approval_file(struct store_approval *a, uint32_t ttl, const char *issuer, const char *actor,
                  int64_t now, struct http_resp *resp);

/*
 * Answer a poll of an approval that is not approved (pending, denied,
 * expired, issued), recording an expiry noticed now (expired_now).
 * Returns 1 if it answered, 0 if a is approved (the caller issues).
 */
int approval_answer(const struct store_approval *a, int expired_now, const char *issuer,
                    int64_t now, struct http_resp *resp);

/* Record that approval a expired (approval.expired), once: callers pass
 * the expired_now the store reported. */
void approval_audit_expired(const struct store_approval *a);

/* Number of names in a comma-separated approvers list. */
uint32_t approval_count(const char *approvers);

#endif /* ZTB_BROKER_APPROVAL_H */
