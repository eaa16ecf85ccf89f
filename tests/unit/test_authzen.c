/*
 * test_authzen.c - AuthZEN 1.0 evaluation bodies mapped to ztb's policy
 * request (broker/authzen/authzen.c): the 4-tuple, default values and
 * their replacement, evaluations_semantic, and the bodies that must be
 * refused with a message naming the problem (unknown members, wrong
 * types, missing parts, too many evaluations, duplicate names, a bad
 * ip_address or authorization_details); the subject mapping and the
 * reason codes for each kind of policy decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/authzen/authzen.h"

static ztb_err parse(const char *body, int batch, struct authzen_req *r, char *why)
{
    return authzen_parse(body, strlen(body), batch, r, why, 300);
}

static void test_single(void **state)
{
    (void)state;
    struct authzen_req r;
    char why[300];
    const char *body =
        "{\"subject\": {\"type\": \"agent\", \"id\": \"alice\","
        "  \"properties\": {\"ip_address\": \"10.1.2.3\", \"department\": \"x\"}},"
        " \"action\": {\"name\": \"payments:refund\", \"properties\": {\"method\": \"POST\"}},"
        " \"resource\": {\"type\": \"payments\", \"id\": \"orders/7\"},"
        " \"context\": {\"time\": \"2026-12-04T03:00:00Z\"}}";
    assert_int_equal(parse(body, 0, &r, why), ZTB_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.batch, 0);
    assert_string_equal(r.ev[0].subject_type, "agent");
    assert_string_equal(r.ev[0].subject_id, "alice");
    assert_string_equal(r.ev[0].action, "payments:refund");
    assert_string_equal(r.ev[0].audience, "payments");
    assert_string_equal(r.ev[0].resource, "orders/7");
    assert_int_equal(r.ev[0].source.family, 4);
    assert_int_equal(r.ev[0].source.addr[0], 10);
    assert_int_equal(r.ev[0].source.addr[3], 3);
    assert_null(r.ev[0].details);
    authzen_req_free(&r);
    authzen_req_free(&r); /* twice is harmless */

    /* the evaluations endpoint without "evaluations" is one evaluation */
    assert_int_equal(parse("{\"subject\": {\"type\": \"agent\", \"id\": \"a\"},"
                           " \"action\": {\"name\": \"s:v\"},"
                           " \"resource\": {\"type\": \"aud\", \"id\": \"\"}}",
                           1, &r, why),
                     ZTB_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.batch, 0);
    assert_string_equal(r.ev[0].resource, "");
    assert_int_equal(r.ev[0].source.family, 0);
    authzen_req_free(&r);

    /* IPv6, and authorization_details held to the token endpoint's rules */
    assert_int_equal(parse("{\"subject\": {\"type\": \"agent\", \"id\": \"a\","
                           "  \"properties\": {\"ip_address\": \"2001:db8::1\"}},"
                           " \"action\": {\"name\": \"payments:refund\"},"
                           " \"resource\": {\"type\": \"payments\", \"id\": \"orders/7\"},"
                           " \"context\": {\"authorization_details\": [{\"type\": \"payment\","
                           "   \"actions\": [\"payments:refund\"], \"amount\": 30}]}}",
                           0, &r, why),
                     ZTB_OK);
    assert_int_equal(r.ev[0].source.family, 6);
    assert_non_null(r.ev[0].details);
    assert_true(json_is_array(r.ev[0].details));
    authzen_req_free(&r);
}

static void test_batch_defaults(void **state)
{
    (void)state;
    struct authzen_req r;
    char why[300];
    const char *body =
        "{\"subject\": {\"type\": \"agent\", \"id\": \"alice\"},"
        " \"action\": {\"name\": \"crm:read\"},"
        " \"context\": {\"authorization_details\": [{\"type\": \"t\"}]},"
        " \"options\": {\"evaluations_semantic\": \"deny_on_first_deny\", \"other\": 1},"
        " \"evaluations\": ["
        "  {\"resource\": {\"type\": \"crm\", \"id\": \"c/1\"}},"
        "  {\"action\": {\"name\": \"crm:write\"}, \"resource\": {\"type\": \"crm\", \"id\": "
        "\"c/2\"}, \"context\": {}},"
        "  {\"subject\": {\"type\": \"agent\", \"id\": \"bob\"},"
        "   \"resource\": {\"type\": \"billing\", \"id\": \"\"}}]}";
    assert_int_equal(parse(body, 1, &r, why), ZTB_OK);
    assert_int_equal(r.batch, 1);
    assert_int_equal(r.semantic, AUTHZEN_DENY_ON_FIRST_DENY);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.ev[0].subject_id, "alice");
    assert_string_equal(r.ev[0].action, "crm:read");
    assert_string_equal(r.ev[0].resource, "c/1");
    assert_non_null(r.ev[0].details); /* the default context */
    assert_string_equal(r.ev[1].action, "crm:write");
    assert_null(r.ev[1].details); /* replaced whole by the evaluation's own */
    assert_string_equal(r.ev[2].subject_id, "bob");
    assert_string_equal(r.ev[2].audience, "billing");
    authzen_req_free(&r);

    const char *names[] = {"execute_all", "deny_on_first_deny", "permit_on_first_permit"};
    for (int i = 0; i < 3; i++) {
        char b2[600];
        snprintf(b2, sizeof(b2),
                 "{\"options\": {\"evaluations_semantic\": \"%s\"}, \"evaluations\": "
                 "[{\"subject\": {\"type\": \"agent\", \"id\": \"a\"}, \"action\": {\"name\": "
                 "\"s:v\"}, \"resource\": {\"type\": \"x\", \"id\": \"y\"}}]}",
                 names[i]);
        assert_int_equal(parse(b2, 1, &r, why), ZTB_OK);
        assert_int_equal(r.semantic, (enum authzen_semantic)i);
        assert_string_equal(authzen_semantic_name(r.semantic), names[i]);
        authzen_req_free(&r);
    }
}

/* body must be refused (batch as given) with a message holding want. */
static void refused(const char *body, int batch, const char *want)
{
    struct authzen_req r;
    char why[300] = "";
    ztb_err rv = parse(body, batch, &r, why);
    if (rv == ZTB_OK)
        fail_msg("accepted: %s", body);
    if (strstr(why, want) == NULL)
        fail_msg("\"%s\" does not say \"%s\" for %s", why, want, body);
    assert_null(r.root);
    assert_int_equal(r.n, 0);
}

#define TUPLE                                                                                      \
    "\"subject\": {\"type\": \"agent\", \"id\": \"a\"}, \"action\": {\"name\": \"s:v\"}, "         \
    "\"resource\": {\"type\": \"x\", \"id\": \"y\"}"

static void test_refused(void **state)
{
    (void)state;
    refused("", 0, "invalid JSON");
    refused("[1]", 0, "must be a JSON object");
    refused("{" TUPLE ", \"subject\": {}}", 0, "duplicate");
    refused("{" TUPLE "} x", 0, "invalid JSON");
    refused("{" TUPLE ", \"extra\": 1}", 0, "unknown member \"extra\"");
    refused("{" TUPLE ", \"evaluations\": []}", 0, "/access/v1/evaluations");
    refused("{\"action\": {\"name\": \"s:v\"}, \"resource\": {\"type\": \"x\", \"id\": \"y\"}}", 0,
            "subject required");
    refused("{\"subject\": 1, \"action\": {\"name\": \"s:v\"}, "
            "\"resource\": {\"type\": \"x\", \"id\": \"y\"}}",
            0, "subject must be an object");
    refused("{\"subject\": {\"type\": \"agent\"}, \"action\": {\"name\": \"s:v\"}, "
            "\"resource\": {\"type\": \"x\", \"id\": \"y\"}}",
            0, "subject.id must be a string");
    refused("{\"subject\": {\"type\": \"agent\", \"id\": \"a b\"}, \"action\": {\"name\": "
            "\"s:v\"}, \"resource\": {\"type\": \"x\", \"id\": \"y\"}}",
            0, "subject.id must be 1 to");
    refused("{\"subject\": {\"type\": \"agent\", \"id\": \"a\", \"role\": 1}, \"action\": "
            "{\"name\": \"s:v\"}, \"resource\": {\"type\": \"x\", \"id\": \"y\"}}",
            0, "subject has an unknown member \"role\"");
    refused("{\"subject\": {\"type\": \"agent\", \"id\": \"a\", \"properties\": []}, "
            "\"action\": {\"name\": \"s:v\"}, \"resource\": {\"type\": \"x\", \"id\": \"y\"}}",
            0, "subject.properties must be an object");
    refused("{\"subject\": {\"type\": \"agent\", \"id\": \"a\", \"properties\": "
            "{\"ip_address\": \"10.0.0.300\"}}, \"action\": {\"name\": \"s:v\"}, "
            "\"resource\": {\"type\": \"x\", \"id\": \"y\"}}",
            0, "ip_address must be an IPv4 or IPv6 address");
    refused("{\"subject\": {\"type\": \"agent\", \"id\": \"a\"}, \"action\": {\"name\": 7}, "
            "\"resource\": {\"type\": \"x\", \"id\": \"y\"}}",
            0, "action.name must be a string");
    refused("{\"subject\": {\"type\": \"agent\", \"id\": \"a\"}, \"action\": {\"name\": \"s:v\"},"
            " \"resource\": {\"type\": \"\", \"id\": \"y\"}}",
            0, "resource.type must be 1 to");
    refused("{\"subject\": {\"type\": \"agent\", \"id\": \"a\\u0000b\"}, \"action\": {\"name\": "
            "\"s:v\"}, \"resource\": {\"type\": \"x\", \"id\": \"y\"}}",
            0, "is not allowed"); /* the gate refuses \u0000 before anything else */
    refused("{" TUPLE ", \"context\": []}", 0, "context must be an object");
    refused("{" TUPLE ", \"context\": {\"authorization_details\": {\"type\": 1}}}", 0,
            "context.authorization_details");
    refused("{\"evaluations\": [], " TUPLE "}", 1, "evaluations must be an array of 1 to 32");
    refused("{\"evaluations\": {}}", 1, "evaluations must be an array");
    refused("{\"evaluations\": [1]}", 1, "evaluations[0]. must be an object");
    refused("{\"evaluations\": [{" TUPLE ", \"x\": 1}]}", 1,
            "evaluations[0]. has an unknown member \"x\"");
    refused("{\"evaluations\": [{" TUPLE "}, {\"action\": {\"name\": \"s:v\"}}]}", 1,
            "evaluations[1].subject required");
    refused("{\"options\": [], \"evaluations\": [{" TUPLE "}]}", 1, "options must be an object");
    refused("{\"options\": {\"evaluations_semantic\": \"first\"}, \"evaluations\": [{" TUPLE "}]}",
            1, "evaluations_semantic must be");
    refused("{\"a\": {\"b\": {\"c\": {\"d\": {\"e\": {\"f\": {\"g\": {\"h\": {\"i\": {\"j\": "
            "{\"k\": 1}}}}}}}}}}}",
            0, "nested too deeply");

    /* one more than the batch limit */
    char *big = malloc(AUTHZEN_BODY_MAX);
    assert_non_null(big);
    size_t n = (size_t)snprintf(big, AUTHZEN_BODY_MAX, "{\"evaluations\": [");
    for (int i = 0; i <= AUTHZEN_MAX_EVALUATIONS; i++)
        n += (size_t)snprintf(big + n, AUTHZEN_BODY_MAX - n, "%s{" TUPLE "}", i ? "," : "");
    snprintf(big + n, AUTHZEN_BODY_MAX - n, "]}");
    refused(big, 1, "evaluations must be an array of 1 to 32");
    /* and a body over the size limit */
    char *huge = malloc(AUTHZEN_BODY_MAX + 2);
    assert_non_null(huge);
    memset(huge, ' ', AUTHZEN_BODY_MAX + 1);
    huge[0] = '{';
    huge[AUTHZEN_BODY_MAX] = '}';
    huge[AUTHZEN_BODY_MAX + 1] = '\0';
    refused(huge, 0, "too large");
    free(big);
    free(huge);
}

static void test_subject_agent(void **state)
{
    (void)state;
    struct authzen_eval e = {.subject_type = "agent", .subject_id = "alice"};
    char agent[65];
    const char *reason = NULL;
    assert_int_equal(authzen_subject_agent(&e, "ztb.local", agent, sizeof(agent), &reason), 1);
    assert_string_equal(agent, "alice");
    e.subject_id = "spiffe://ztb.local/agent/bob";
    assert_int_equal(authzen_subject_agent(&e, "ztb.local", agent, sizeof(agent), &reason), 1);
    assert_string_equal(agent, "bob");
    e.subject_id = "spiffe://other.example/agent/bob"; /* another trust domain */
    assert_int_equal(authzen_subject_agent(&e, "ztb.local", agent, sizeof(agent), &reason), 0);
    assert_string_equal(reason, "unknown_subject");
    e.subject_id = "spiffe://ztb.local/workload/bob";
    assert_int_equal(authzen_subject_agent(&e, "ztb.local", agent, sizeof(agent), &reason), 0);
    e.subject_type = "user";
    e.subject_id = "alice";
    assert_int_equal(authzen_subject_agent(&e, "ztb.local", agent, sizeof(agent), &reason), 0);
    assert_string_equal(reason, "unsupported_subject_type");
}

static void test_reasons(void **state)
{
    (void)state;
    policy_decision d = {.effect = POLICY_ALLOW, .reason = POLICY_REASON_ALLOWED};
    assert_null(authzen_policy_reason(&d));
    d.ob.single_use = 1;
    assert_string_equal(authzen_policy_reason(&d), "single_use_token_required");
    d.effect = POLICY_APPROVAL_REQUIRED;
    assert_string_equal(authzen_policy_reason(&d), "approval_required");
    d.effect = POLICY_DENY;
    struct {
        policy_reason r;
        const char *want;
    } cases[] = {{POLICY_REASON_NO_MATCH, "no_matching_rule"},
                 {POLICY_REASON_CONDITION, "condition_not_met"},
                 {POLICY_REASON_DENY_RULE, "deny_rule"},
                 {POLICY_REASON_CONFLICT, "conflict"},
                 {POLICY_REASON_BAD_REQUEST, "invalid_request"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        d.reason = cases[i].r;
        assert_string_equal(authzen_policy_reason(&d), cases[i].want);
    }
}

static void test_decision_json(void **state)
{
    (void)state;
    json_t *j = authzen_decision_json(1, "allowed", "allow: rule \"r\"", 60, "dpop");
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"context\":{\"binding\":\"dpop\",\"reason\":\"allowed\","
                           "\"reason_admin\":{\"en\":\"allow: rule \\\"r\\\"\"},\"ttl\":60},"
                           "\"decision\":true}");
    free(s);
    json_decref(j);
    j = authzen_decision_json(0, "approval_required", NULL, 60, "dpop");
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    /* no obligations on a deny */
    assert_string_equal(s, "{\"context\":{\"reason\":\"approval_required\"},\"decision\":false}");
    free(s);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single),  cmocka_unit_test(test_batch_defaults),
        cmocka_unit_test(test_refused), cmocka_unit_test(test_subject_agent),
        cmocka_unit_test(test_reasons), cmocka_unit_test(test_decision_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
