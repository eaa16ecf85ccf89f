/*
 * admin_roles.c - the admin API's roles and callers' names (see
 * admin_roles.h).
 *
 * The read table lists every call that only reads; everything else writes.
 * Must never: let a call not in the table through the read-only gate, or
 * take a sudo user's name from anyone but root.
 */
#include <stdio.h>
#include <string.h>

#include "broker/admin/admin_approvals.h"
#include "broker/admin/admin_roles.h"
#include "broker/audit/audit.h"

/* Every admin call that only reads: method and path ("*" at the end: any
 * path with that prefix). Keep in step with admin_routes (routes.c). */
static const struct {
    const char *method;
    const char *path;
} admin_reads[] = {
    {"GET", "/healthz"},           {"GET", "/readyz"},
    {"GET", "/metrics"},           {"GET", "/v1/agents"},
    {"GET", "/v1/agents/*"},       {"GET", "/v1/inventory"},
    {"GET", "/v1/revocations"},    {"GET", "/v1/signals"},
    {"GET", "/v1/signals/*"},      {"GET", "/v1/signal-stats"},
    {"GET", "/v1/signal-sources"}, {"GET", "/v1/signal-sources/*"},
    {"GET", "/v1/signal-actions"}, {"GET", "/v1/signal-actions/*"},
    {"GET", "/v1/signal-modes"},   {"GET", "/v1/keys"},
    {"GET", "/v1/policy/shadow"},  {"GET", "/v1/policy/shadow/*"},
    {"GET", "/v1/approvals"},      {"GET", "/v1/approvals/*"},
    {"GET", "/v1/approvers"},      {"GET", "/v1/approvers/*"},
};

int admin_route_writes(const char *method, const char *path)
{
    if (method == NULL || path == NULL)
        return 1;
    for (size_t i = 0; i < sizeof(admin_reads) / sizeof(admin_reads[0]); i++) {
        const char *p = admin_reads[i].path;
        size_t pl = strlen(p);
        int match = p[pl - 1] == '*' ? strncmp(path, p, pl - 1) == 0 : strcmp(path, p) == 0;
        if (match && strcmp(method, admin_reads[i].method) == 0)
            return 0;
    }
    return 1;
}

void admin_caller_actor(const struct http_req *req, char *out, size_t cap)
{
    long uid = http_req_peer_uid(req);
    const char *sudo_user = uid == 0 ? http_req_header(req, ADMIN_SUDO_USER_HEADER) : NULL;
    char name[48];
    const char *why = NULL;
    if (uid < 0) {
        snprintf(out, cap, "operator:unknown");
        return;
    }
    /* a malformed sudo name: root itself */
    int named = admin_approver_name(uid, sudo_user, name, sizeof(name), &why) ||
                (sudo_user != NULL && admin_approver_name(uid, NULL, name, sizeof(name), &why));
    if (named)
        snprintf(out, cap, "operator:%s", name);
    else
        snprintf(out, cap, "operator:uid=%ld", uid);
}

int admin_readonly_gate(struct http_req *req, const struct http_route *r, struct http_resp *resp)
{
    (void)r;
    if (!admin_route_writes(req->method, req->path))
        return 1;
    char actor[96], msg[256];
    admin_caller_actor(req, actor, sizeof(actor));
    snprintf(msg, sizeof(msg),
             "read-only role: %s %.120s changes state; use the operators' admin socket",
             req->method, req->path);
    http_resp_error(resp, 403, "access_denied", msg);
    audit("admin.readonly_refused", actor, 0, ZTB_F_STR("method", req->method),
          ZTB_F_STR("path", req->path));
    return 0;
}
