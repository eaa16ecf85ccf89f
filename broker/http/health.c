/*
 * health.c - GET /healthz, /readyz, /metrics.
 *
 * healthz: the process is alive and serving (no dependency checked), for
 * restart decisions. readyz: this replica can issue tokens now (Redis
 * would take a write now and real traffic is not getting Redis errors:
 * redis_ready; an active signing key is loaded; not draining), for load
 * balancers. When Redis is the reason, "redis_error" names the kind
 * (readonly, loading, noreplicas, connection...), as counted in
 * ztb_redis_errors_total{kind}. metrics: Prometheus text.
 */
#include <stdatomic.h>

#include "broker/broker.h"
#include "broker/signer/keys.h"
#include "broker/http/metrics.h"
#include "broker/store/redis_client.h"
#include "common/buf.h"

void handle_healthz(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    http_resp_json(resp, 200, "{\"status\":\"ok\"}");
}

void handle_readyz(struct http_req *req, struct http_resp *resp)
{
    int draining = atomic_load(&broker_of(req)->draining);
    char redis_why[32];
    int redis_ok = redis_ready(redis_why, sizeof(redis_why)) == ZTB_OK;
    struct keys_state *ks = keys_acquire();
    int key_ok = ks != NULL && ks->active != NULL && keys_can_sign();
    keys_release(ks);
    int ready = redis_ok && key_ok && !draining;
    ztb_buf_reset(&resp->body);
    ztb_buf_printf(&resp->body,
                   "{\"status\":\"%s\",\"checks\":{\"redis\":\"%s\"%s%s%s,\"signing_key\":\"%s\","
                   "\"draining\":%s}}",
                   ready ? "ready" : "not_ready", redis_ok ? "ok" : "unavailable",
                   redis_ok ? "" : ",\"redis_error\":\"", redis_ok ? "" : redis_why,
                   redis_ok ? "" : "\"", key_ok ? "ok" : "missing", draining ? "true" : "false");
    resp->status = ready ? 200 : 503;
    resp->content_type = "application/json";
    if (!ready)
        http_resp_header(resp, "Retry-After", "1");
}

void handle_metrics(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    ztb_buf_reset(&resp->body);
    metrics_render(&resp->body);
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4";
}
