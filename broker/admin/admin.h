/*
 * admin.h - the admin API, served only on the unix socket.
 *
 *   GET  /v1/agents                        list agents
 *   POST /v1/agents                        {"name": N} -> the agent and a join token
 *   GET  /v1/agents/NAME                   one agent
 *   DELETE /v1/agents/NAME                 revoke everything it holds, then delete it
 *                                          (its generation is never reused)
 *   POST /v1/agents/NAME/disable|enable    stop / resume issuing for it
 *   POST /v1/agents/NAME/join-tokens       {"ttl": S} -> a new one-time join token
 *   GET  /v1/keys                          the key store's keys and their states
 *   POST /v1/keys/rotate                   {"force": bool} publish a next key, or
 *                                          promote it once it has been published
 *                                          for the JWKS cache period
 *   POST /v1/policy/reload                 load the policy file again; its problems
 *                                          if it has any (the old one stays)
 *   /v1/approvals, /v1/approvers           human approvals: admin_approvals.h
 *
 * Every call is audited with the caller's user name (SO_PEERCRED, or the
 * sudo user when the peer is root: admin_roles.h). Responses are
 * JSON; errors use the RFC 6749 shape like the public API.
 */
#ifndef ZTB_BROKER_ADMIN_H
#define ZTB_BROKER_ADMIN_H

#include "broker/http/http.h"

void handle_admin_agents(struct http_req *req, struct http_resp *resp);
void handle_admin_agent(struct http_req *req, struct http_resp *resp);
void handle_admin_keys(struct http_req *req, struct http_resp *resp);
void handle_admin_keys_rotate(struct http_req *req, struct http_resp *resp);
void handle_admin_policy_reload(struct http_req *req, struct http_resp *resp);

/* Shared by the admin handlers (admin.c, admin_signals.c): the audit actor
 * "operator:NAME" of the caller; an RFC 6749 error for a store error (404,
 * 409, 400, 503 with Retry-After, 500); refuse (400) any field of obj not
 * in allowed (NULL-terminated), returning 0. */
struct json_t;
void admin_operator_actor(const struct http_req *req, char *out, size_t cap);
void admin_store_error(struct http_resp *resp, ztb_err rv, const char *what);
int admin_only_fields(struct json_t *obj, const char *const *allowed, struct http_resp *resp);

#endif /* ZTB_BROKER_ADMIN_H */
