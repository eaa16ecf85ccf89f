/*
 * admin_approvals.h - the operators' side of human approvals, on the admin
 * socket only (there is no approve path on the public API: an agent cannot
 * approve its own request).
 *
 *   GET  /v1/approvals                       recent approvals, newest first
 *   GET  /v1/approvals/ID                    one approval
 *   POST /v1/approvals/ID/approve            {"sudo_user"?}
 *   POST /v1/approvals/ID/deny               {"reason"?, "sudo_user"?}
 *   GET  /v1/approvers                       every approver group and its members
 *   GET  /v1/approvers/GROUP                 one group's members
 *   POST /v1/approvers/GROUP/add|remove      {"user": U}
 *
 * The approver is the socket peer's user name (SO_PEERCRED uid, looked up
 * in the password database). A root peer may name the user it acts for in
 * "sudo_user" (ztbctl passes SUDO_USER under sudo); anyone else naming one
 * is refused. Every decision is audited with that name.
 */
#ifndef ZTB_BROKER_ADMIN_APPROVALS_H
#define ZTB_BROKER_ADMIN_APPROVALS_H

#include <stddef.h>

#include "broker/http/http.h"

void handle_admin_approvals(struct http_req *req, struct http_resp *resp);
void handle_admin_approval(struct http_req *req, struct http_resp *resp);
void handle_admin_approvers(struct http_req *req, struct http_resp *resp);

/*
 * The approver's name for req into out: the peer's user name, or the
 * sudo_user a root peer names (NULL: none named). 0 if there is none (peer
 * unknown, no such user, a non-root peer naming another, a bad name) with
 * why set.
 */
int admin_approver_name(long uid, const char *sudo_user, char *out, size_t cap, const char **why);

#endif /* ZTB_BROKER_ADMIN_APPROVALS_H */
