/*
 * admin_approvals.c - operators list, show, approve and deny approvals,
 * and manage approver groups (see admin_approvals.h).
 *
 * How it works: the store's scripts (broker/store/store_approvals.c) decide
 * atomically (group membership, one vote per person, pending only); this
 * file finds who is asking and records every decision in the audit log,
 * durably, before it answers.
 *
 * Must never: take an approver's name from anything a non-root peer says.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "broker/admin/admin.h"
#include "broker/admin/admin_approvals.h"
#include "broker/audit/audit.h"
#include "broker/store/store_approvals.h"
#include "broker/tokens/approval.h"
#include "broker/tokens/approval_webhook.h"

int admin_approver_name(long uid, const char *sudo_user, char *out, size_t cap, const char **why)
{
    out[0] = '\0';
    if (uid < 0) {
        *why = "cannot tell who is calling (no peer credentials on the admin socket)";
        return 0;
    }
    if (sudo_user != NULL) {
        if (uid != 0) {
            *why = "sudo_user is accepted only from root (ztbctl run under sudo)";
            return 0;
        }
        if (!store_approver_name_ok(sudo_user) || strlen(sudo_user) >= cap) {
            *why = "sudo_user must be a user name of A-Z a-z 0-9 . _ -";
            return 0;
        }
        snprintf(out, cap, "%s", sudo_user);
        return 1;
    }
    struct passwd pw, *res = NULL;
    char buf[2048];
    if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL ||
        !store_approver_name_ok(pw.pw_name) || strlen(pw.pw_name) >= cap) {
        *why = "the caller's uid has no usable user name";
        return 0;
    }
    snprintf(out, cap, "%s", pw.pw_name);
    return 1;
}

void handle_admin_approvals(struct http_req *req, struct http_resp *resp)
{
    json_t *list = NULL;
    ztb_err rv = store_approval_list(200, (int64_t)time(NULL), &list);
    if (rv != ZTB_OK) {
        admin_store_error(resp, rv, "cannot list approvals");
        return;
    }
    (void)req;
    http_resp_json_value(resp, 200, json_pack("{s:o}", "approvals", list));
}

/* An approval's id from /v1/approvals/ID[/verb] into id; verb set to the
 * rest ("" for none). 0 if it does not fit. */
static int split_path(const char *path, const char *prefix, char *id, size_t cap, const char **verb)
{
    const char *rest = path + strlen(prefix);
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n == 0 || n >= cap)
        return 0;
    memcpy(id, rest, n);
    id[n] = '\0';
    *verb = slash ? slash + 1 : "";
    return 1;
}

/* Approve or deny: who asks, the store's decision, the audit line. */
static void decide(struct http_req *req, struct http_resp *resp, const char *id, int approve)
{
    static const char *const fields[] = {"reason", "sudo_user", NULL};
    json_t *body = req->body_len ? http_req_json_object(req, resp) : json_object();
    if (body == NULL)
        return;
    if (!admin_only_fields(body, fields, resp))
        goto out;
    json_t *jr = json_object_get(body, "reason"), *js = json_object_get(body, "sudo_user");
    if ((jr != NULL && (!json_is_string(jr) || strlen(json_string_value(jr)) > 256)) ||
        (js != NULL && !json_is_string(js))) {
        http_resp_error(resp, 400, "invalid_request",
                        "reason is a string of at most 256 bytes; sudo_user a user name");
        goto out;
    }
    const char *reason = jr ? json_string_value(jr) : "";
    for (const char *p = reason; *p; p++)
        if ((unsigned char)*p < 0x20) {
            http_resp_error(resp, 400, "invalid_request", "reason must be one line of text");
            goto out;
        }
    char who[STORE_APPROVER_NAME_MAX + 1];
    const char *why = NULL;
    if (!admin_approver_name(http_req_peer_uid(req), js ? json_string_value(js) : NULL, who,
                             sizeof(who), &why)) {
        http_resp_error(resp, 403, "access_denied", why);
        goto out;
    }
    char actor[96];
    snprintf(actor, sizeof(actor), "operator:%s", who);
    struct store_approval *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        http_resp_error(resp, 500, "server_error", "out of memory");
        goto out;
    }
    int expired_now = 0;
    int64_t now = (int64_t)time(NULL);
    ztb_err rv = store_approval_decide(id, approve, who, reason, now, a, &expired_now);
    if (expired_now)
        approval_audit_expired(a);
    char msg[320];
    switch (rv) {
    case ZTB_OK: break;
    case ZTB_ERR_STATE:
        snprintf(msg, sizeof(msg), "the approval is %s, no longer pending", a->status);
        http_resp_error(resp, 409, "conflict", msg);
        goto done;
    case ZTB_ERR_PERMISSION:
        snprintf(msg, sizeof(msg), "%s is not in the approver group \"%s\" (ztbctl approvers add)",
                 who, a->group);
        (void)audit("approval.refused", actor, 0, ZTB_F_STR("approval", id), ZTB_F_STR("by", who),
                    ZTB_F_STR("reason", "not in the approver group"));
        http_resp_error(resp, 403, "access_denied", msg);
        goto done;
    case ZTB_ERR_EXISTS:
        snprintf(msg, sizeof(msg), "%s already approved it: another approver must", who);
        http_resp_error(resp, 409, "conflict", msg);
        goto done;
    default: admin_store_error(resp, rv, "no such approval"); goto done;
    }
    if (audit(approve ? "approval.approved" : "approval.denied", actor, 1,
              ZTB_F_STR("approval", a->id), ZTB_F_STR("agent", a->agent),
              ZTB_F_STR("action", a->action), ZTB_F_STR("audience", a->audience),
              ZTB_F_STR("resource", a->resource), ZTB_F_STR("by", who),
              ZTB_F_STR("approvers", a->approvers), ZTB_F_INT("needed", a->needed),
              ZTB_F_STR("status", a->status),
              ZTB_F_STR("reason", approve ? NULL : reason)) != ZTB_OK) {
        http_resp_error(resp, 503, "temporarily_unavailable",
                        "the decision is made but its audit record could not be written");
        goto done;
    }
    approval_webhook_resolved(a); /* approved (the last approver) or denied */
    http_resp_json_value(resp, 200, store_approval_json(a));
done:
    free(a);
out:
    json_decref(body);
}

void handle_admin_approval(struct http_req *req, struct http_resp *resp)
{
    char id[STORE_APPROVAL_ID_MAX + 1];
    const char *verb = NULL;
    if (!split_path(req->path, "/v1/approvals/", id, sizeof(id), &verb)) {
        http_resp_error(resp, 404, "not_found", "no such approval");
        return;
    }
    if (verb[0] == '\0') {
        if (strcmp(req->method, "GET") != 0) {
            http_resp_error(resp, 405, "invalid_request", "method not allowed");
            return;
        }
        struct store_approval *a = calloc(1, sizeof(*a));
        int expired_now = 0;
        ztb_err rv =
            a ? store_approval_get(id, (int64_t)time(NULL), a, &expired_now) : ZTB_ERR_NOMEM;
        if (rv == ZTB_OK && expired_now)
            approval_audit_expired(a);
        if (rv == ZTB_OK)
            http_resp_json_value(resp, 200, store_approval_json(a));
        else
            admin_store_error(resp, rv, "no such approval");
        free(a);
        return;
    }
    int approve = strcmp(verb, "approve") == 0;
    if (!approve && strcmp(verb, "deny") != 0) {
        http_resp_error(resp, 404, "not_found", "no such endpoint: approve or deny");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    decide(req, resp, id, approve);
}

void handle_admin_approvers(struct http_req *req, struct http_resp *resp)
{
    char group[STORE_APPROVER_NAME_MAX + 1];
    const char *verb = "";
    json_t *out = NULL;
    ztb_err rv;
    if (strcmp(req->path, "/v1/approvers") == 0) {
        rv = store_approvers_list(NULL, &out);
        if (rv != ZTB_OK)
            admin_store_error(resp, rv, "cannot list approver groups");
        else
            http_resp_json_value(resp, 200, json_pack("{s:o}", "groups", out));
        return;
    }
    if (!split_path(req->path, "/v1/approvers/", group, sizeof(group), &verb) ||
        !store_approver_name_ok(group)) {
        http_resp_error(resp, 400, "invalid_request",
                        "an approver group is 1 to 64 of A-Z a-z 0-9 . _ -");
        return;
    }
    if (verb[0] == '\0') {
        rv = store_approvers_list(group, &out);
        if (rv != ZTB_OK)
            admin_store_error(resp, rv, "cannot list the group");
        else
            http_resp_json_value(resp, 200, json_pack("{s:s,s:o}", "group", group, "users", out));
        return;
    }
    int add = strcmp(verb, "add") == 0;
    if ((!add && strcmp(verb, "remove") != 0) || strcmp(req->method, "POST") != 0) {
        http_resp_error(resp, 404, "not_found", "no such endpoint: POST .../add or .../remove");
        return;
    }
    static const char *const fields[] = {"user", NULL};
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    const char *user = json_string_value(json_object_get(body, "user"));
    if (admin_only_fields(body, fields, resp)) {
        if (!store_approver_name_ok(user)) {
            http_resp_error(resp, 400, "invalid_request",
                            "user must be a user name of A-Z a-z 0-9 . _ -");
        } else {
            char actor[64];
            admin_operator_actor(req, actor, sizeof(actor));
            int changed = 0;
            rv = add ? store_approvers_add(group, user, &changed)
                     : store_approvers_remove(group, user, &changed);
            if (rv != ZTB_OK)
                admin_store_error(resp, rv, "cannot change the group");
            else if (audit(add ? "admin.approver_added" : "admin.approver_removed", actor, 1,
                           ZTB_F_STR("group", group), ZTB_F_STR("user", user),
                           ZTB_F_BOOL("changed", changed)) != ZTB_OK)
                http_resp_error(resp, 503, "temporarily_unavailable",
                                "changed, but its audit record could not be written");
            else
                http_resp_json_value(
                    resp, 200,
                    json_pack("{s:s,s:s,s:b}", "group", group, "user", user, "changed", changed));
        }
    }
    json_decref(body);
}
