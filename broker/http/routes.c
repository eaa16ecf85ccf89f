/*
 * routes.c - every endpoint the broker serves, in one place.
 *
 * The public API listens on TCP (--listen); the admin API on a unix socket
 * (--admin-socket, mode 0600: file permissions are its access control);
 * the optional metrics listener (--metrics-listen) serves only what a
 * monitoring system reads.
 * The last field names the endpoint in /metrics.
 */
#include "broker/admin/admin.h"
#include "broker/admin/admin_inventory.h"
#include "broker/admin/admin_approvals.h"
#include "broker/admin/admin_signals.h"
#include "broker/admin/policy_shadow.h"
#include "broker/broker.h"
#include "broker/auth/enroll.h"
#include "broker/authzen/authzen_http.h"
#include "broker/tokens/authorize.h"
#include "broker/tokens/introspect_http.h"
#include "broker/signals/signals.h"
#include "broker/ssf/ssf_receive.h"
#include "broker/ssf/ssf_streams_http.h"
#include "broker/ssf/ssf_transmit.h"
#include "broker/tokens/token.h"
#include "broker/http/wellknown.h"

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
    {NULL, "/v1/approvals/*", handle_approval_poll, "approval_poll"},
    {"POST", "/v1/introspect", handle_introspect, "introspect"},
    {"POST", "/v1/revoke", handle_revoke, "revoke"},
    {"POST", "/v1/signals", handle_signals, "signals"},
    {"GET", "/v1/authorize", handle_authorize, "authorize"},
    /* the prefix form (Envoy ext_authz): any method, the original path after it */
    {NULL, "/v1/authorize/*", handle_authorize, "authorize_prefix"},
    {"GET", "/.well-known/authzen-configuration", handle_authzen_configuration, "authzen_metadata"},
    {"POST", "/access/v1/evaluation", handle_authzen_evaluation, "authzen_evaluation"},
    {"POST", "/access/v1/evaluations", handle_authzen_evaluations, "authzen_evaluations"},
    {"GET", "/.well-known/ssf-configuration", handle_ssf_configuration, "ssf_configuration"},
    {"POST", "/v1/ssf/events", handle_ssf_events, "ssf_events"},
    {NULL, "/v1/ssf/streams", handle_ssf_streams, "ssf_streams"},
    {NULL, "/v1/ssf/status", handle_ssf_status, "ssf_status"},
    {"POST", "/v1/ssf/verify", handle_ssf_verify, "ssf_verify"},
};
const size_t api_routes_n = sizeof(api_routes) / sizeof(api_routes[0]);

const struct http_route metrics_routes[] = {
    {"GET", "/metrics", handle_metrics, "metrics_metrics"},
    {"GET", "/healthz", handle_healthz, "metrics_healthz"},
};
const size_t metrics_routes_n = sizeof(metrics_routes) / sizeof(metrics_routes[0]);

const struct http_route admin_routes[] = {
    {"GET", "/healthz", handle_healthz, "admin_healthz"},
    {"GET", "/readyz", handle_readyz, "admin_readyz"},
    {"GET", "/metrics", handle_metrics, "admin_metrics"},
    {"GET", "/v1/agents", handle_admin_agents, "admin_agents_list"},
    {"POST", "/v1/agents", handle_admin_agents, "admin_agents_add"},
    {NULL, "/v1/agents/*", handle_admin_agent, "admin_agent"},
    {NULL, "/v1/revocations", handle_admin_revocations, "admin_revocations"},
    {"POST", "/v1/quarantine", handle_admin_quarantine, "admin_quarantine"},
    {"POST", "/v1/release", handle_admin_quarantine, "admin_release"},
    {"GET", "/v1/signals", handle_admin_signals, "admin_signals"},
    {NULL, "/v1/signals/*", handle_admin_signal_outcome, "admin_signal_outcome"},
    {"GET", "/v1/signal-stats", handle_admin_signal_stats, "admin_signal_stats"},
    {"GET", "/v1/inventory", handle_admin_inventory, "admin_inventory"},
    {NULL, "/v1/signal-sources", handle_admin_sources, "admin_signal_sources"},
    {NULL, "/v1/signal-sources/*", handle_admin_source, "admin_signal_source"},
    {"GET", "/v1/signal-actions", handle_admin_actions, "admin_signal_actions"},
    {NULL, "/v1/signal-modes", handle_admin_signal_modes, "admin_signal_modes"},
    {NULL, "/v1/signal-actions/*", handle_admin_action, "admin_signal_action"},
    {"GET", "/v1/keys", handle_admin_keys, "admin_keys"},
    {"POST", "/v1/keys/rotate", handle_admin_keys_rotate, "admin_keys_rotate"},
    {"POST", "/v1/policy/reload", handle_admin_policy_reload, "admin_policy_reload"},
    {NULL, "/v1/policy/shadow", handle_admin_policy_shadow, "admin_policy_shadow"},
    {NULL, "/v1/policy/shadow/*", handle_admin_policy_shadow_sub, "admin_policy_shadow_sub"},
    {"GET", "/v1/approvals", handle_admin_approvals, "admin_approvals"},
    {NULL, "/v1/approvals/*", handle_admin_approval, "admin_approval"},
    {NULL, "/v1/approvers", handle_admin_approvers, "admin_approvers"},
    {NULL, "/v1/approvers/*", handle_admin_approvers, "admin_approvers_group"},
};
const size_t admin_routes_n = sizeof(admin_routes) / sizeof(admin_routes[0]);
