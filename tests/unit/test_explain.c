/*
 * test_explain.c - explanations say the same as policy_eval, name the rules
 * that matched and why the others did not, and show who set each obligation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy_fixtures.h"

static policy *P;

static int setup(void **state)
{
    (void)state;
    char path[4096];
    return policy_load_file(fx_src(path, sizeof(path), "examples/policy/fleet.json"), &P, NULL) ==
                   ZTB_OK
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    policy_unref(P);
    return 0;
}

static const char *result_of(json_t *ex, const char *rule)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ex, "considered"), i,
                       e) if (strcmp(json_string_value(json_object_get(e, "rule")), rule) ==
                              0) return json_string_value(json_object_get(e, "result"));
    return NULL;
}

static const char *why_of(json_t *ex, const char *rule)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ex, "considered"), i,
                       e) if (strcmp(json_string_value(json_object_get(e, "rule")), rule) ==
                              0) return json_string_value(json_object_get(e, "why"));
    return NULL;
}

static char *text_of(json_t *ex)
{
    ztb_buf b;
    ztb_buf_init(&b, 1 << 20);
    assert_int_equal(policy_explain_text(ex, &b), ZTB_OK);
    char *s = ztb_buf_steal(&b, NULL);
    ztb_buf_free(&b);
    return s;
}

static void test_allow_explained(void **state)
{
    (void)state;
    json_t *ad = fx_json("[{\"type\": \"payment\", \"amount\": 20}]");
    policy_request r = {.agent = "billing-bot",
                        .action = "payments:refund",
                        .audience = "https://payments.internal",
                        .resource = "orders/1234",
                        .ctx = {.now = 1749031200, .authorization_details = ad}};
    policy_ip_parse("10.20.1.2", &r.ctx.source);
    json_t *ex = NULL;
    assert_int_equal(policy_explain(P, &r, &ex), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(ex, "decision")), "allow");
    assert_string_equal(json_string_value(json_object_get(ex, "rule")), "refund-small");
    assert_string_equal(result_of(ex, "refund-small"), "MATCHES");
    assert_string_equal(result_of(ex, "refund-large"), "not applicable");
    assert_non_null(strstr(why_of(ex, "refund-large"), "limits[0]"));
    assert_non_null(strstr(why_of(ex, "deny-disputed-orders"), "resource orders/1234 is not in"));
    assert_null(result_of(ex, "tickets-work")); /* not indexed under payments */
    json_t *ob = json_object_get(ex, "obligations");
    assert_non_null(ob);
    json_t *ttl = json_object_get(ob, "ttl");
    assert_int_equal(json_integer_value(json_object_get(ttl, "value")), 60);
    assert_string_equal(json_string_value(json_object_get(ttl, "from")), "rule refund-small");
    json_t *pa = json_object_get(json_object_get(ob, "rate_limits"), "per_agent");
    assert_non_null(strstr(json_string_value(json_object_get(pa, "from")), "settings"));
    json_t *req = json_object_get(ex, "request");
    assert_string_equal(json_string_value(json_object_get(req, "spiffe_id")),
                        "spiffe://acme.example/agent/billing-bot");
    assert_string_equal(json_string_value(json_array_get(json_object_get(req, "groups"), 0)),
                        "payments-agents");
    char *t = text_of(ex);
    assert_non_null(strstr(t, "decision: ALLOW"));
    assert_non_null(strstr(t, "refund-small"));
    assert_non_null(strstr(t, "binding"));
    assert_non_null(strstr(t, "dpop"));
    assert_non_null(strstr(t, "rules considered"));
    free(t);
    json_decref(ex);
    json_decref(ad);
}

static void test_denials_explained(void **state)
{
    (void)state;
    /* no rule covers the agent */
    policy_request r = {.agent = "support-bot-01",
                        .action = "payments:refund",
                        .audience = "https://payments.internal",
                        .resource = "orders/1",
                        .ctx = {.now = 1749031200}};
    json_t *ex = NULL;
    assert_int_equal(policy_explain(P, &r, &ex), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(ex, "decision")), "deny");
    /* the deny rule on missing amounts decides: it applies when unsure */
    assert_string_equal(json_string_value(json_object_get(ex, "rule")), "deny-huge-refunds");
    assert_string_equal(result_of(ex, "deny-huge-refunds"), "DENIES");
    assert_non_null(strstr(why_of(ex, "deny-huge-refunds"), "cannot be checked"));
    assert_non_null(strstr(why_of(ex, "refund-small"), "agent support-bot-01 is not in"));
    json_decref(ex);

    /* nothing covers this action on this audience at all */
    r.action = "payments:void";
    r.audience = "https://unknown.internal";
    assert_int_equal(policy_explain(P, &r, &ex), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(ex, "reason")), "no_match");
    assert_int_equal(json_array_size(json_object_get(ex, "considered")), 0);
    char *t = text_of(ex);
    assert_non_null(strstr(t, "no rule covers this action on this audience"));
    free(t);
    json_decref(ex);

    /* an action no rule names: the payments rules are looked at, none applies */
    r.audience = "https://payments.internal";
    r.agent = "billing-bot";
    assert_int_equal(policy_explain(P, &r, &ex), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(ex, "reason")), "no_match");
    assert_string_equal(result_of(ex, "deny-disputed-orders"), "not applicable");
    assert_non_null(strstr(why_of(ex, "refund-small"), "action payments:void is not in"));
    json_decref(ex);

    /* a malformed request is explained, and control characters are not printed raw */
    r.resource = "orders/1\x1b[2J";
    assert_int_equal(policy_explain(P, &r, &ex), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(ex, "reason")), "bad_request");
    t = text_of(ex);
    assert_null(strchr(t, '\x1b'));
    assert_non_null(strstr(t, "\\u001b"));
    free(t);
    json_decref(ex);
}

static void test_condition_explained(void **state)
{
    (void)state;
    policy_request r = {.agent = "sales-assistant",
                        .action = "crm:update",
                        .audience = "https://crm.internal",
                        .resource = "contacts/1",
                        .ctx = {.now = 1749031200}};
    json_t *ex = NULL;
    assert_int_equal(policy_explain(P, &r, &ex), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(ex, "reason")), "condition");
    assert_non_null(strstr(json_string_value(json_object_get(ex, "summary")),
                           "act in [spiffe://acme.example/user/*]"));
    json_decref(ex);
}

/* Explain and eval agree on every request of a small grid. */
static void test_agrees_with_eval(void **state)
{
    (void)state;
    const char *agents[] = {"billing-bot", "refund-agent-3", "support-bot-01", "sales-assistant",
                            "triage-bot",  "nobody",         "bad agent"};
    const char *actions[] = {"payments:refund", "payments:read",  "crm:read",
                             "crm:update",      "crm:export",     "crm:delete",
                             "tickets:close",   "tickets:create", "x"};
    const char *auds[] = {"https://payments.internal", "https://crm.internal",
                          "https://tickets.internal"};
    const char *res[] = {"orders/1", "orders/disputed/1", "contacts/1", "reports/q", "tickets/1"};
    const char *ads[] = {NULL, "[{\"type\": \"payment\", \"amount\": 20}]",
                         "[{\"type\": \"payment\", \"amount\": 200}]"};
    const char *acts[] = {NULL, "spiffe://acme.example/user/ann"};
    size_t n = 0;
    for (size_t a = 0; a < 7; a++)
        for (size_t c = 0; c < 9; c++)
            for (size_t u = 0; u < 3; u++)
                for (size_t s = 0; s < 5; s++)
                    for (size_t d = 0; d < 3; d++)
                        for (size_t k = 0; k < 2; k++) {
                            json_t *ad = ads[d] ? fx_json(ads[d]) : NULL;
                            policy_request r = {.agent = agents[a],
                                                .action = actions[c],
                                                .audience = auds[u],
                                                .resource = res[s],
                                                .ctx = {.now = 1749031200,
                                                        .act = acts[k],
                                                        .authorization_details = ad}};
                            policy_ip_parse("10.20.0.9", &r.ctx.source);
                            policy_decision dec;
                            json_t *ex = NULL;
                            assert_int_equal(policy_eval(P, &r, &dec), ZTB_OK);
                            /* INTERNAL here would mean explain and eval disagree */
                            assert_int_equal(policy_explain(P, &r, &ex), ZTB_OK);
                            assert_string_equal(json_string_value(json_object_get(ex, "decision")),
                                                policy_effect_name(dec.effect));
                            json_decref(ex);
                            json_decref(ad);
                            n++;
                        }
    assert_int_equal(n, 7 * 9 * 3 * 5 * 3 * 2);
    assert_int_equal(policy_explain(NULL, NULL, NULL), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_explained),
        cmocka_unit_test(test_denials_explained),
        cmocka_unit_test(test_condition_explained),
        cmocka_unit_test(test_agrees_with_eval),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
