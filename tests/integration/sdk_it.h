/*
 * sdk_it.h - what the libztb integration tests share (header-only): the
 * policy the broker runs, provisioning an agent through the admin API, and
 * making SDK handles for the real broker and Redis the harness started.
 */
#ifndef ZTB_TEST_SDK_IT_H
#define ZTB_TEST_SDK_IT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <ztb/ztb.h>

#include "harness.h"

/* billing-bot may refund small amounts (single-use), read and list orders,
 * and open tickets with DPoP-bound tokens; ticket-bot may list orders and
 * open tickets; disputed orders are off limits. */
static const char *const sdk_it_policy =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 100000, \"burst\": 10000, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 100000, \"burst\": 10000, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"refund-small\", \"effect\": \"allow\", \"agents\": [\"billing-bot\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/*\"],\n"
    "   \"conditions\": {\"limits\": [{\"path\": \"amount\", \"max\": 50}]},\n"
    "   \"obligations\": {\"ttl\": 30, \"single_use\": true}},\n"
    "  {\"id\": \"refund-large\", \"effect\": \"allow\",\n"
    "   \"agents\": [\"refund-bot\", \"billing-bot\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/*\"],\n"
    "   \"conditions\": {\"limits\": [{\"path\": \"amount\", \"min\": 1000, \"max\": 9999}]},\n"
    "   \"obligations\": {\"ttl\": 30, \"single_use\": true,\n"
    "     \"approval_required\": {\"group\": \"finance\", \"approvers\": 1}}},\n"
    "  {\"id\": \"orders-list\", \"effect\": \"allow\",\n"
    "   \"agents\": [\"billing-bot\", \"ticket-bot\"],\n"
    "   \"actions\": [\"payments:list\"], \"audiences\": [\"payments\"], \"resources\": "
    "[\"**\"]},\n"
    "  {\"id\": \"orders-read\", \"effect\": \"allow\", \"agents\": [\"billing-bot\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"rate_limits\": {\"per_action\": {\"rate\": 3, \"burst\": 3,\n"
    "                     \"period\": 60}}}},\n"
    "  {\"id\": \"tickets-dpop\", \"effect\": \"allow\",\n"
    "   \"agents\": [\"billing-bot\", \"ticket-bot\"],\n"
    "   \"actions\": [\"tickets:create\"], \"audiences\": [\"payments\"], \"resources\": "
    "[\"**\"],\n"
    "   \"obligations\": {\"binding\": \"dpop\"}},\n"
    "  {\"id\": \"no-disputed\", \"effect\": \"deny\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:*\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/disputed-*\"]}\n"
    " ]}\n";

/*
 * A one-time join token for agent `name` from the admin API (free()): the
 * agent is registered first if it is not yet.
 */
static inline char *sdk_it_join_token(const struct zh_broker *b, const char *name)
{
    char body[128], path[160];
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    struct zh_resp r;
    if (zh_admin(b, "POST", "/v1/agents", body, &r) == 0 && r.status == 409) {
        zh_resp_free(&r);
        snprintf(path, sizeof(path), "/v1/agents/%s/join-tokens", name);
        zh_admin(b, "POST", path, "{}", &r);
    }
    if (r.status != 201 && r.status != 200) {
        fprintf(stderr, "admin: HTTP %ld: %s\n", r.status, r.body);
        zh_broker_dump_log(b);
        exit(1);
    }
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    const char *t = json_string_value(json_object_get(j, "join_token"));
    char *tok = t ? strdup(t) : NULL;
    json_decref(j);
    zh_resp_free(&r);
    if (tok == NULL) {
        fprintf(stderr, "admin: no join token\n");
        exit(1);
    }
    return tok;
}

/* An agent handle for the broker (not enrolled yet). */
static inline ztb_agent *sdk_it_agent(const struct zh_broker *b, const char *name, int dpop)
{
    ztb_agent_config *c = ztb_agent_config_new();
    ztb_agent *a = NULL;
    if (c == NULL || ztb_agent_config_set_broker(c, b->url) != ZTB_OK ||
        ztb_agent_config_set_name(c, name) != ZTB_OK ||
        ztb_agent_config_set_dpop(c, dpop) != ZTB_OK ||
        ztb_agent_config_set_retries(c, 2, 3000) != ZTB_OK || ztb_agent_new(c, &a) != ZTB_OK) {
        fprintf(stderr, "agent: %s\n", ztb_agent_errdetail(NULL));
        exit(1);
    }
    ztb_agent_config_free(c);
    return a;
}

/* An enrolled agent handle. */
static inline ztb_agent *sdk_it_enrolled(const struct zh_broker *b, const char *name, int dpop)
{
    ztb_agent *a = sdk_it_agent(b, name, dpop);
    char *join = sdk_it_join_token(b, name);
    ztb_err rv = ztb_agent_enroll(a, join);
    free(join);
    if (rv != ZTB_OK) {
        fprintf(stderr, "enroll: %s: %s\n", ztb_err_name(rv), ztb_agent_errdetail(a));
        zh_broker_dump_log(b);
        exit(1);
    }
    return a;
}

/* A verifier for audience "payments" of this broker, revocation from redis_url. */
static inline ztb_verifier *sdk_it_verifier(const struct zh_broker *b, const char *redis_url)
{
    char jwks[128];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b->url);
    ztb_verifier_config *c = ztb_verifier_config_new();
    ztb_verifier *v = NULL;
    if (c == NULL || ztb_verifier_config_set_issuer(c, b->url) != ZTB_OK ||
        ztb_verifier_config_set_audience(c, "payments") != ZTB_OK ||
        ztb_verifier_config_set_jwks_url(c, jwks) != ZTB_OK ||
        ztb_verifier_config_set_redis(c, redis_url) != ZTB_OK ||
        ztb_verifier_new(c, &v) != ZTB_OK) {
        fprintf(stderr, "verifier: %s\n", ztb_verifier_errdetail(NULL));
        exit(1);
    }
    ztb_verifier_config_free(c);
    return v;
}

#endif /* ZTB_TEST_SDK_IT_H */
