/*
 * admin_roles.h - who is calling the admin API, and what they may do.
 *
 * The admin API has two roles, told apart by the socket a caller reached
 * (file permissions stay the access control):
 *
 *   operator   --admin-socket (0600, or 0660 for --admin-group): everything
 *   read-only  --admin-readonly-socket (0660 for --admin-readonly-group):
 *              list, show, stats; every other call gets 403
 *              "read-only role: ..."
 *
 * What a call needs is one table, admin_route_writes(): method and path to
 * "reads only" or "writes". A route missing from the table writes (fail
 * closed), so a new endpoint is never open to the read-only role by
 * accident.
 *
 * Callers are named in the audit by user name: the socket peer's uid
 * (SO_PEERCRED) mapped through the password database; when the peer is
 * root and ztbctl ran under sudo, the invoking user (header Ztb-Sudo-User,
 * ignored from anyone but root).
 */
#ifndef ZTB_BROKER_ADMIN_ROLES_H
#define ZTB_BROKER_ADMIN_ROLES_H

#include <stddef.h>

#include "broker/http/http.h"

/* The header ztbctl sends under sudo with the invoking user's name. */
#define ADMIN_SUDO_USER_HEADER "Ztb-Sudo-User"

/* 1 if method on path changes state (or is not known to be a read); 0 if
 * it only reads. path is the request path without the query string. */
int admin_route_writes(const char *method, const char *path);

/*
 * The read-only socket's gate (http_limits.gate): returns 1 to let the
 * call through, or 0 with a 403 "read-only role: ..." in resp (audited).
 */
int admin_readonly_gate(struct http_req *req, const struct http_route *r, struct http_resp *resp);

/*
 * The audit actor of the caller into out (cap bytes): "operator:NAME" with
 * the peer's user name (under sudo, the invoking user when the peer is
 * root: "operator:NAME"), else "operator:uid=N" when the uid has no usable
 * name, "operator:unknown" without peer credentials.
 */
void admin_caller_actor(const struct http_req *req, char *out, size_t cap);

#endif /* ZTB_BROKER_ADMIN_ROLES_H */
