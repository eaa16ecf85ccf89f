/*
 * test_inventory.c - the agent inventory and shadow AI end to end: the real
 * broker, a real Redis, real ztbctl. Agents registered with an owner and a
 * description appear in `ztbctl agent inventory` with the rules that name
 * them, the audiences they used, when they were last seen and how many
 * tokens they had in the last day; callers the gateway decision endpoint
 * refuses for carrying no ztb token or a foreign one are counted by source,
 * listed as unknown AI clients, and the Nth from one source raises shadow_ai.
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
#include <jansson.h>

#include "agent.h"
#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"groups\": {\"billing\": {\"members\": [\"ledger\"]}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"crm-read\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"billing-pay\", \"effect\": \"allow\", \"agents\": [\"group:billing\"],\n"
    "   \"actions\": [\"pay:send\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"reporter-only\", \"effect\": \"allow\", \"agents\": [\"report*\"],\n"
    "   \"actions\": [\"crm:export\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static char dir[256];

static int ctl(char **out, char **err, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl"), "--socket", b.admin_sock};
    int n = 3;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return zh_run(argv, out, err);
}

static int setup(void **state)
{
    (void)state;
    zh_tmpdir(dir, sizeof(dir));
    char routes[300];
    snprintf(routes, sizeof(routes), "%s/routes.json", dir);
    FILE *f = fopen(routes, "w");
    assert_non_null(f);
    fputs("{\"routes\": [{\"method\": \"GET\", \"path\": \"/accounts/{id}\", \"audience\": "
          "\"crm\", \"action\": \"crm:read\", \"resource\": \"accounts/{id}\"}]}\n",
          f);
    fclose(f);
    zh_redis_start(&rd);
    const char *extra[] = {"--authorize-routes", routes, "--shadow-ai-threshold", "3", NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(&b, &o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    zh_rmtree(dir);
    return rc;
}

/* The inventory entry of name (a new reference) from `-o json agent inventory`. */
static json_t *entry_of(json_t *inv, const char *name)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(inv, "agents"), i,
                       a) if (strcmp(json_string_value(json_object_get(a, "name")), name) ==
                              0) return json_incref(a);
    return NULL;
}

static json_t *inventory_json(void)
{
    char *out, *err;
    const char *inv[] = {"-o", "json", "agent", "inventory", NULL};
    assert_int_equal(ctl(&out, &err, inv), 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    assert_non_null(j);
    free(out);
    free(err);
    return j;
}

static void test_agents(void **state)
{
    (void)state;
    char *out, *err;
    const char *add[] = {"agent",         "add",           "ledger",         "--owner",
                         "payments-team", "--description", "posts invoices", NULL};
    assert_int_equal(ctl(&out, &err, add), 0);
    free(out);
    free(err);
    const char *bad[] = {"agent", "add", "x1", "--owner", "a\tb", NULL};
    assert_int_equal(ctl(&out, &err, bad), 1);
    assert_non_null(strstr(err, "printable"));
    free(out);
    free(err);
    /* ledger enrolls (its own join token) and uses crm; reporter never does */
    char *join = NULL;
    const char *jt[] = {"-o", "json", "agent", "join-token", "ledger", NULL};
    assert_int_equal(ctl(&out, &err, jt), 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    join = strdup(json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    free(out);
    free(err);
    struct za_agent a;
    memset(&a, 0, sizeof(a));
    snprintf(a.name, sizeof(a.name), "ledger");
    assert_int_equal(ztb_key_generate(&a.key), ZTB_OK);
    struct zh_resp r;
    assert_int_equal(za_enroll_with(&b, &a, join, &r), 201);
    zh_resp_free(&r);
    free(join);
    struct za_agent rep;
    za_enroll(&b, &rep, "reporter");
    /* za_enroll_with gave no session: one for ledger through za_enroll's path */
    struct za_agent led2;
    za_enroll(&b, &led2, "ledger2");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(za_token(&b, &led2, "crm", "crm%3Aread", &r, NULL, 0), 200);
        zh_resp_free(&r);
    }
    time_t now = time(NULL);
    json_t *inv = inventory_json();
    json_t *l = entry_of(inv, "ledger");
    assert_non_null(l);
    assert_string_equal(json_string_value(json_object_get(l, "owner")), "payments-team");
    assert_string_equal(json_string_value(json_object_get(l, "description")), "posts invoices");
    char *rules = json_dumps(json_object_get(l, "rules"), JSON_COMPACT);
    assert_string_equal(rules, "[\"crm-read\",\"billing-pay\"]");
    free(rules);
    assert_true(json_is_null(json_object_get(l, "last_seen")));
    assert_true(json_integer_value(json_object_get(l, "identity_expires")) > now);
    assert_string_equal(json_string_value(json_object_get(l, "status")), "active");
    json_decref(l);
    json_t *l2 = entry_of(inv, "ledger2");
    assert_int_equal(json_integer_value(json_object_get(l2, "tokens_last_day")), 3);
    json_int_t seen = json_integer_value(json_object_get(l2, "last_seen"));
    assert_true(seen >= now - 5 && seen <= now + 5);
    rules = json_dumps(json_object_get(l2, "audiences"), JSON_COMPACT);
    assert_string_equal(rules, "[\"crm\"]");
    free(rules);
    json_decref(l2);
    json_t *rp = entry_of(inv, "reporter");
    rules = json_dumps(json_object_get(rp, "rules"), JSON_COMPACT);
    assert_string_equal(rules, "[\"crm-read\",\"reporter-only\"]");
    free(rules);
    json_decref(rp);
    json_decref(inv);
    /* the table, and `agent show` with last seen */
    const char *table[] = {"agent", "inventory", NULL};
    assert_int_equal(ctl(&out, &err, table), 0);
    assert_non_null(strstr(out, "OWNER"));
    assert_non_null(strstr(out, "payments-team"));
    assert_non_null(strstr(out, "crm-read,billing-pay"));
    free(out);
    free(err);
    const char *show[] = {"agent", "show", "ledger2", NULL};
    assert_int_equal(ctl(&out, &err, show), 0);
    assert_non_null(strstr(out, "last_seen"));
    assert_null(strstr(out, "never"));
    free(out);
    free(err);
    za_free(&a);
    za_free(&rep);
    za_free(&led2);
}

/* GET /v1/authorize as the gateway on loopback, with the client's source. */
static long authorize(const char *authz, const char *source)
{
    char url[160], src[128];
    snprintf(url, sizeof(url), "%s/v1/authorize", b.url);
    snprintf(src, sizeof(src), "X-Ztb-Source: %s", source);
    const char *h[] = {"X-Original-Method: GET", "X-Original-URI: /accounts/7", src, authz, NULL};
    struct zh_resp r;
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, h, &r), 0);
    long st = r.status;
    zh_resp_free(&r);
    return st;
}

static int shadow_signal(void *arg)
{
    (void)arg;
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "GET", "/v1/signals?limit=100", NULL, &r), 0);
    int found = strstr(r.body, "\"shadow_ai\"") != NULL && strstr(r.body, "10.9.8.7") != NULL;
    zh_resp_free(&r);
    return found;
}

static int inventory_counts(void *arg)
{
    (void)arg;
    json_t *inv = inventory_json();
    char *text = json_dumps(json_object_get(inv, "unknown_clients"), JSON_COMPACT | JSON_SORT_KEYS);
    int ok = strstr(text, "\"count\":3,\"last_seen\":") != NULL &&
             strstr(text, "\"reason\":\"no_token\",\"source\":\"10.9.8.7\"") != NULL &&
             strstr(text, "\"reason\":\"foreign_token\",\"source\":\"mcp-proxy\"") != NULL;
    free(text);
    json_decref(inv);
    return ok;
}

static void test_unknown_clients(void **state)
{
    (void)state;
    /* no token, three times from one address: shadow_ai once */
    for (int i = 0; i < 3; i++)
        assert_int_equal(authorize("X-Nothing: 1", "10.9.8.7"), 401);
    /* a token that is not ours (a JWT from some other issuer) */
    const char *foreign = "Authorization: Bearer "
                          "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJvdGhlciJ9.c2ln";
    assert_int_equal(authorize(foreign, "mcp-proxy"), 401);
    assert_true(za_wait(shadow_signal, NULL, 5000));
    assert_true(za_wait(inventory_counts, NULL, 5000));
    char *out, *err;
    const char *table[] = {"agent", "inventory", NULL};
    assert_int_equal(ctl(&out, &err, table), 0);
    assert_non_null(strstr(out, "unknown AI clients"));
    assert_non_null(strstr(out, "mcp-proxy"));
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agents),
        cmocka_unit_test(test_unknown_clients),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
