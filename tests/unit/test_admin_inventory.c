/*
 * test_admin_inventory.c - the operators' inventory and baselines
 * (admin_inventory.c), served on a unix socket by a real http_server in this
 * process (broker_fixture.h bf_serve) against a real Redis: every agent with
 * its identity, status, the rules that name it and its activity; a baseline
 * read and a new learning window (audited, bounded); 405 for other methods,
 * 404 for an unknown agent, 503 when Redis is gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "broker/store/store.h"
#include "broker/store/store_baseline.h"
#include "broker_fixture.h"

static const char policy_text[] =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 10, \"burst\": 10, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 10, \"burst\": 10, \"period\": 60}}},\n"
    " \"rules\": [{\"id\": \"crm-read\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}]}\n";

static int setup(void **state)
{
    (void)state;
    bf_setup(policy_text);
    bf_serve(0);
    assert_int_equal(store_agent_add("bot", 1), ZTB_OK);
    assert_int_equal(store_agent_add("other", 1), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_unserve();
    bf_teardown();
    return 0;
}

/* The entry of agents[] named name, NULL if none (borrowed from inv). */
static json_t *entry(json_t *inv, const char *name)
{
    json_t *agents = json_object_get(inv, "agents"), *o;
    size_t i;
    json_array_foreach(agents, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            return o;
    }
    return NULL;
}

static void test_inventory(void **state)
{
    (void)state;
    json_t *inv = bf_admin("GET", "/v1/inventory", NULL, 200);
    assert_true(json_is_array(json_object_get(inv, "agents")));
    assert_int_equal(json_array_size(json_object_get(inv, "agents")), 2);
    /* callers that are not agents: none yet */
    assert_true(json_is_array(json_object_get(inv, "unknown_clients")));
    assert_int_equal(json_array_size(json_object_get(inv, "unknown_clients")), 0);
    json_t *bot = entry(inv, "bot"), *other = entry(inv, "other");
    assert_non_null(bot);
    assert_non_null(other);
    assert_string_equal(json_string_value(json_object_get(bot, "spiffe_id")),
                        "spiffe://ztb.local/agent/bot");
    assert_string_equal(json_string_value(json_object_get(bot, "status")), "active");
    assert_true(json_is_false(json_object_get(bot, "quarantined")));
    assert_true(json_is_null(json_object_get(bot, "identity_expires"))); /* never enrolled */
    /* the rules that name it, from the loaded policy; none for the other */
    json_t *rules = json_object_get(bot, "rules");
    assert_int_equal(json_array_size(rules), 1);
    assert_string_equal(json_string_value(json_array_get(rules, 0)), "crm-read");
    assert_int_equal(json_array_size(json_object_get(other, "rules")), 0);
    json_decref(inv);
    bf_admin_refused("POST", "/v1/inventory", "{}", 405, "invalid_request");
    bf_admin_refused("DELETE", "/v1/inventory", NULL, 405, "invalid_request");
}

static void test_baseline(void **state)
{
    (void)state;
    json_t *b = bf_admin("GET", "/v1/agents/bot/baseline", NULL, 200);
    assert_true(json_is_null(json_object_get(b, "last_seen")));
    assert_int_equal(json_integer_value(json_object_get(b, "tokens_last_day")), 0);
    json_decref(b);
    bf_admin_refused("GET", "/v1/agents/ghost/baseline", NULL, 404, "not_found");

    /* a new learning window: asked for explicitly, bounded, audited */
    const char *path = "/v1/agents/bot/baseline";
    bf_admin_refused("POST", path, "{}", 400, "invalid_request");
    bf_admin_refused("POST", path, "{\"relearn\": false}", 400, "invalid_request");
    bf_admin_refused("POST", path, "{\"relearn\": true, \"for\": 0}", 400, "invalid_request");
    bf_admin_refused("POST", path, "{\"relearn\": true, \"for\": 31622401}", 400,
                     "invalid_request");
    bf_admin_refused("POST", path, "{\"relearn\": true, \"for\": \"1h\"}", 400, "invalid_request");
    bf_admin_refused("POST", path, "{\"relearn\": true, \"extra\": 1}", 400, "invalid_request");
    assert_false(bf_audit_has("admin.baseline_relearn", "\"agent\":\"bot\""));
    int64_t before = (int64_t)time(NULL);
    b = bf_admin("POST", path, "{\"relearn\": true, \"for\": 3600}", 200);
    assert_string_equal(json_string_value(json_object_get(b, "phase")), "learning");
    json_decref(b);
    assert_true(bf_audit_has("admin.baseline_relearn", "\"agent\":\"bot\""));
    long long until = bf_redis_int("HGET ztb:{%s}:agent bl_until", "bot");
    assert_true(until >= before + 3600 && until <= (long long)time(NULL) + 3600);
    /* without "for", the broker's window; with baselines off, one must be named */
    unsigned learn = g_broker.cfg.baseline_learn_s;
    assert_true(learn > 0);
    b = bf_admin("POST", path, "{\"relearn\": true}", 200);
    json_decref(b);
    until = bf_redis_int("HGET ztb:{%s}:agent bl_until", "bot");
    assert_true(until >= before + (long long)learn);
    g_broker.cfg.baseline_learn_s = 0;
    bf_admin_refused("POST", path, "{\"relearn\": true}", 400, "invalid_request");
    g_broker.cfg.baseline_learn_s = learn;
    bf_admin_refused("POST", "/v1/agents/ghost/baseline", "{\"relearn\": true, \"for\": 60}", 404,
                     "not_found");
    bf_admin_refused("PUT", path, "{\"relearn\": true}", 405, "invalid_request");
}

/* Last: Redis gone is 503, nothing made up. */
static void test_redis_down(void **state)
{
    (void)state;
    zh_redis_kill(&bf_redis);
    bf_admin_refused("GET", "/v1/inventory", NULL, 503, "temporarily_unavailable");
    bf_admin_refused("GET", "/v1/agents/bot/baseline", NULL, 503, "temporarily_unavailable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inventory),
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
