/*
 * approval.c - filing a pending approval and answering polls of it (see
 * approval.h).
 *
 * The pending answer is an RFC 6749 error ("authorization_pending", as a
 * device-flow or CIBA client already handles at its token endpoint) with
 * the approval's id, its polling URI, its remaining life and the polling
 * interval added to the ordinary error object.
 */
#include <stdio.h>
#include <string.h>

#include "broker/audit/audit.h"
#include "broker/tokens/approval.h"
#include "broker/tokens/approval_webhook.h"
#include "common/log.h"
#include "wire/wire.h"

/* Replace the closing brace of resp's error object by the approval's
 * members (the writer made {"error":...,"ztb_error":...}). */
static void add_members(struct http_resp *resp, const struct store_approval *a, const char *issuer,
                        int64_t now, int pending)
{
    ztb_buf *b = &resp->body;
    if (b->len == 0 || ((const char *)b->data)[b->len - 1] != '}')
        return;
    b->len--;
    ztb_buf_append_str(b, ",\"approval_id\":\"");
    ztb_buf_append_json_escaped(b, a->id, strlen(a->id));
    ztb_buf_append_str(b, "\"");
    if (pending) {
        int64_t left = a->expires - now;
        ztb_buf_append_str(b, ",\"approval_uri\":\"");
        ztb_buf_append_json_escaped(b, issuer, strlen(issuer));
        ztb_buf_append_str(b, ZTB_WIRE_APPROVAL_PATH);
        ztb_buf_append_json_escaped(b, a->id, strlen(a->id));
        ztb_buf_printf(b, "\",\"expires_in\":%lld,\"interval\":%d",
                       (long long)(left > 0 ? left : 0), APPROVAL_POLL_INTERVAL);
    }
    if (strcmp(a->status, "denied") == 0) {
        ztb_buf_append_str(b, ",\"reason\":\"");
        ztb_buf_append_json_escaped(b, a->reason, strlen(a->reason));
        ztb_buf_append_str(b, "\"");
    }
    ztb_buf_append_str(b, "}");
}

static void pending(struct http_resp *resp, const struct store_approval *a, const char *issuer,
                    int64_t now)
{
    char why[200];
    snprintf(why, sizeof(why), "waiting for %u approver%s%s%s: poll the approval_uri", a->needed,
             a->needed > 1 ? "s" : "", a->group[0] ? " of group " : "", a->group);
    http_resp_error_as(resp, 400, "authorization_pending", ZTB_ERR_APPROVAL_PENDING, why);
    add_members(resp, a, issuer, now, 1);
    http_resp_header(resp, "Cache-Control", "no-store");
}

uint32_t approval_count(const char *approvers)
{
    if (approvers == NULL || approvers[0] == '\0')
        return 0;
    uint32_t n = 1;
    for (const char *p = approvers; *p; p++)
        n += *p == ',';
    return n;
}

int approval_file(struct store_approval *a, uint32_t ttl, const char *issuer, const char *actor,
                  int64_t now, struct http_resp *resp)
{
    int created = 0;
    a->expires = now + (ttl ? ttl : APPROVAL_DEFAULT_TTL);
    ztb_err rv = store_approval_create(a, now, &created);
    if (rv == ZTB_ERR_TOO_LARGE) {
        char why[160];
        snprintf(why, sizeof(why),
                 "the agent already has %d approvals waiting: wait for them to be decided or "
                 "to expire",
                 STORE_APPROVALS_PER_AGENT);
        http_resp_error(resp, 429, "slow_down", why);
        http_resp_header(resp, "Retry-After", "%d", 30);
        return 0;
    }
    if (rv != ZTB_OK) {
        http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
        http_resp_header(resp, "Retry-After", "1");
        return 0;
    }
    if (created && audit("approval.requested", actor, 0, ZTB_F_STR("approval", a->id),
                         ZTB_F_STR("agent", a->agent), ZTB_F_STR("action", a->action),
                         ZTB_F_STR("audience", a->audience), ZTB_F_STR("resource", a->resource),
                         ZTB_F_STR("rule", a->rule[0] ? a->rule : "signal:require_approval"),
                         ZTB_F_STR("group", a->group), ZTB_F_INT("approvers", a->needed),
                         ZTB_F_INT("gen", a->generation),
                         ZTB_F_STR("binding", a->jkt[0]   ? "dpop"
                                              : a->x5t[0] ? "mtls"
                                                          : "none"),
                         ZTB_F_INT("expires", a->expires)) != ZTB_OK) {
        /* nobody may approve what was not recorded */
        int dummy = 0;
        struct store_approval d;
        (void)store_approval_decide(a->id, 0, "ztb-broker", "the audit log is unavailable", now, &d,
                                    &dummy);
        http_resp_error(resp, 503, "temporarily_unavailable", "audit log unavailable");
        http_resp_header(resp, "Retry-After", "1");
        return 0;
    }
    if (created)
        approval_webhook_requested(a); /* queued: never waits for the webhook */
    pending(resp, a, issuer, now);
    return 1;
}

void approval_audit_expired(const struct store_approval *a)
{
    (void)audit("approval.expired", "broker", 0, ZTB_F_STR("approval", a->id),
                ZTB_F_STR("agent", a->agent), ZTB_F_STR("action", a->action),
                ZTB_F_STR("approved_by", a->approvers));
    approval_webhook_resolved(a);
}

int approval_answer(const struct store_approval *a, int expired_now, const char *issuer,
                    int64_t now, struct http_resp *resp)
{
    if (expired_now)
        approval_audit_expired(a);
    if (strcmp(a->status, "approved") == 0)
        return 0;
    if (strcmp(a->status, "pending") == 0) {
        pending(resp, a, issuer, now);
    } else if (strcmp(a->status, "denied") == 0) {
        http_resp_error_as(resp, 403, "access_denied", ZTB_ERR_APPROVAL_DENIED,
                           "an approver denied the request");
        add_members(resp, a, issuer, now, 0);
    } else {
        http_resp_error_as(resp, 400, "expired_token", ZTB_ERR_APPROVAL_EXPIRED,
                           strcmp(a->status, "issued") == 0
                               ? "the approval was used: its token was issued; ask again"
                               : "the approval expired before it was approved; ask again");
        add_members(resp, a, issuer, now, 0);
    }
    return 1;
}
