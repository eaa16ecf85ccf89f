/*
 * routes.c - every endpoint the broker serves, in one place.
 *
 * The public API listens on TCP (--listen); the admin API on a unix socket
 * (--admin-socket, mode 0600: file permissions are its access control).
 * The last field names the endpoint in /metrics.
 */
#include "broker/admin.h"
#include "broker/broker.h"
#include "broker/enroll.h"
#include "broker/token.h"
#include "broker/wellknown.h"

const struct http_route api_routes[] = {
    {"GET", "/healthz", handle_healthz, "healthz"},
    {"GET", "/readyz", handle_readyz, "readyz"},
    {"GET", "/metrics", handle_metrics, "metrics"},
    {"GET", "/.well-known/jwks.json", handle_jwks, "jwks"},
    {"GET", "/.well-known/oauth-authorization-server", handle_metadata, "metadata"},
    {"POST", "/v1/enroll", handle_enroll, "enroll"},
    {"POST", "/v1/renew", handle_renew, "renew"},
    {"POST", "/v1/session", handle_session, "session"},
    {"POST", "/v1/token", handle_token, "token"},
};
const size_t api_routes_n = sizeof(api_routes) / sizeof(api_routes[0]);

const struct http_route admin_routes[] = {
    {"GET", "/healthz", handle_healthz, "admin_healthz"},
    {"GET", "/readyz", handle_readyz, "admin_readyz"},
    {"GET", "/metrics", handle_metrics, "admin_metrics"},
    {"GET", "/v1/agents", handle_admin_agents, "admin_agents_list"},
    {"POST", "/v1/agents", handle_admin_agents, "admin_agents_add"},
    {NULL, "/v1/agents/*", handle_admin_agent, "admin_agent"},
    {"GET", "/v1/keys", handle_admin_keys, "admin_keys"},
    {"POST", "/v1/keys/rotate", handle_admin_keys_rotate, "admin_keys_rotate"},
    {"POST", "/v1/policy/reload", handle_admin_policy_reload, "admin_policy_reload"},
};
const size_t admin_routes_n = sizeof(admin_routes) / sizeof(admin_routes[0]);
