/*
 * broker.h - the running broker: configuration and shared state that every
 * request handler reads. One instance per process (g_broker), set up by
 * main.c, which starts both HTTP servers with it as their context.
 *
 * Handlers reach it through broker_of(req), and what they call takes it as
 * a parameter, so a test can build its own. Two exceptions remain: the
 * signals per-address limiter (set up once, on first use) reads g_broker,
 * and client_auth.c keeps its own copies of the issuer and trust domain
 * (client_auth_set_issuer, set by main.c before the servers start).
 */
#ifndef ZTB_BROKER_BROKER_H
#define ZTB_BROKER_BROKER_H

#include <stdatomic.h>

#include "broker/config.h"
#include "broker/http/http.h"
#include "broker/store/redis_client.h"
#include "policy/holder.h"

struct policy_shadow;
struct route_holder;
struct ssf_config;

struct broker {
    struct broker_config cfg;
    struct redis_target redis;
    char redis_desc[300];
    uint16_t port;                     /* bound HTTP port */
    int private_redis;                 /* we run redis-server ourselves */
    char issuer[256];                  /* iss of our tokens; endpoints hang under it */
    policy_holder *policy;             /* the policy in force (reload swaps it) */
    struct policy_shadow *shadow;      /* a candidate decided beside it, or none */
    struct route_holder *authz_routes; /* GET /v1/authorize's table; NULL: off */
    struct ssf_config *ssf;            /* SSF transmitters and receivers; NULL: off */
    _Atomic int draining;              /* set on SIGTERM: readyz answers 503 */
};

extern struct broker g_broker;

/* The broker req is served for: its server's context (never NULL on the
 * servers main.c starts). */
static inline struct broker *broker_of(const struct http_req *req)
{
    return req->server_ctx;
}

/* Make jansson wipe what it frees (call once at start, before threads). */
void broker_json_wipe_on_free(void);

/* Route tables (routes.c): the public API and the admin API. */
extern const struct http_route api_routes[];
extern const size_t api_routes_n;
extern const struct http_route admin_routes[];
extern const size_t admin_routes_n;
extern const struct http_route metrics_routes[]; /* --metrics-listen */
extern const size_t metrics_routes_n;

/* health.c */
void handle_healthz(struct http_req *req, struct http_resp *resp);
void handle_readyz(struct http_req *req, struct http_resp *resp);
void handle_metrics(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_BROKER_H */
