/*
 * test_policy.c - the policy object: reference counting, accessors, names,
 * one-line descriptions; and the documented example stays loadable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy_fixtures.h"

static void test_fleet_example(void **state)
{
    (void)state;
    char path[4096];
    policy *p = NULL;
    policy_diag d;
    policy_diag_init(&d);
    ztb_err e = policy_load_file(fx_src(path, sizeof(path), "examples/policy/fleet.json"), &p, &d);
    if (e != ZTB_OK) {
        char *m = fx_messages(&d);
        fail_msg("examples/policy/fleet.json does not load:\n%s", m);
    }
    policy_diag_free(&d);
    assert_string_equal(policy_trust_domain(p), "acme.example");
    assert_int_equal(policy_max_ttl(p), 300);
    assert_int_equal(policy_rule_count(p), 11);
    assert_int_equal(policy_group_count(p), 3);
    assert_int_equal(policy_response_count(p), 6);
    assert_int_equal(policy_agent_count(p), 6); /* refund-agent-* is a pattern */
    const char *g[4];
    size_t n;
    assert_int_equal(policy_agent_groups(p, "refund-agent-12", g, 4, &n), ZTB_OK);
    assert_int_equal(n, 1);
    assert_string_equal(g[0], "payments-agents");
    policy_unref(p);
}

static char *slurp(const char *rel)
{
    char path[4096];
    FILE *f = fopen(fx_src(path, sizeof(path), rel), "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    static const size_t cap = 1 << 20;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t n = fread(s, 1, cap - 1, f);
    fclose(f);
    s[n] = '\0';
    return s;
}

/* The complete example printed in docs/policy.md is the file the tests load. */
static void test_docs_show_the_example(void **state)
{
    (void)state;
    char *doc = slurp("docs/policy.md");
    char *file = slurp("examples/policy/fleet.json");
    const char *begin = strstr(doc, "<!-- fleet.json begin -->\n```json\n");
    const char *end = strstr(doc, "```\n<!-- fleet.json end -->");
    assert_non_null(begin);
    assert_non_null(end);
    begin += strlen("<!-- fleet.json begin -->\n```json\n");
    assert_true(end > begin);
    if ((size_t)(end - begin) != strlen(file) || memcmp(begin, file, strlen(file)) != 0)
        fail_msg("docs/policy.md and examples/policy/fleet.json differ: update one from the other");
    free(doc);
    free(file);
}

static void test_refcount(void **state)
{
    (void)state;
    char *doc = fx_doc("", "");
    policy *p = fx_load(doc);
    assert_ptr_equal(policy_ref(p), p);
    policy_unref(p);
    assert_int_equal(strlen(policy_digest(p)), 64); /* one reference left: still valid */
    policy_unref(p);
    assert_null(policy_ref(NULL));
    policy_unref(NULL);
    free(doc);
}

static void test_digest_identifies_document(void **state)
{
    (void)state;
    /* SHA-256 of the exact bytes: "{}" would not load, so hash a real doc twice */
    char *a = fx_doc("", "");
    char *b = fx_doc("", "");
    policy *pa = fx_load(a), *pb = fx_load(b);
    assert_string_equal(policy_digest(pa), policy_digest(pb));
    policy_unref(pb);
    b[strlen(b) - 1] = ' '; /* "...]} " minus the brace: change one byte */
    strcat(b, "}");
    pb = fx_load(b);
    assert_non_null(pb);
    assert_string_not_equal(policy_digest(pa), policy_digest(pb));
    policy_unref(pa);
    policy_unref(pb);
    free(a);
    free(b);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(policy_effect_name(POLICY_DENY), "deny");
    assert_string_equal(policy_effect_name(POLICY_APPROVAL_REQUIRED), "approval_required");
    assert_string_equal(policy_effect_name((policy_effect)7), "unknown");
    assert_string_equal(policy_binding_name(POLICY_BINDING_MTLS), "mtls");
    assert_string_equal(policy_reason_name(POLICY_REASON_CONFLICT), "conflict");
    assert_string_equal(policy_reason_name((policy_reason)-1), "unknown");
    assert_string_equal(policy_severity_name(POLICY_SEVERITY_CRITICAL), "critical");
    assert_string_equal(policy_response_name(POLICY_RESPONSE_TAINT_KEY), "taint_key");
    policy_severity s;
    assert_int_equal(policy_severity_parse("medium", &s), ZTB_OK);
    assert_int_equal(s, POLICY_SEVERITY_MEDIUM);
    assert_int_equal(policy_severity_parse("Medium", &s), ZTB_ERR_INVALID_ARG);
    assert_int_equal(policy_severity_parse(NULL, &s), ZTB_ERR_INVALID_ARG);
    policy_response_kind r;
    assert_int_equal(policy_response_parse("kill_audience", &r), ZTB_OK);
    assert_int_equal(r, POLICY_RESPONSE_KILL_AUDIENCE);
    assert_int_equal(policy_response_parse("kill", &r), ZTB_ERR_INVALID_ARG);
}

static void test_describe(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init(&b, 4096);
    policy_decision d = {.effect = POLICY_DENY, .reason = POLICY_REASON_NO_MATCH};
    policy_decision_describe(&d, &b);
    assert_string_equal(ztb_buf_cstr(&b), "deny: no rule allows this request");
    ztb_buf_reset(&b);
    d.reason = POLICY_REASON_CONDITION;
    d.rule = "refund-small";
    d.detail = "limits[0]: amount <= 50";
    policy_decision_describe(&d, &b);
    assert_string_equal(ztb_buf_cstr(&b),
                        "deny: condition \"limits[0]: amount <= 50\" not met in rule "
                        "\"refund-small\"");
    ztb_buf_reset(&b);
    d.detail_unknown = 1;
    policy_decision_describe(&d, &b);
    assert_non_null(strstr(ztb_buf_cstr(&b), "cannot be checked"));
    ztb_buf_reset(&b);
    policy_decision a = {.effect = POLICY_APPROVAL_REQUIRED,
                         .reason = POLICY_REASON_ALLOWED,
                         .rule = "refund-large",
                         .n_matched = 3,
                         .ob = {.approval_group = "finance", .approvers = 2}};
    policy_decision_describe(&a, &b);
    assert_string_equal(ztb_buf_cstr(&b), "approval_required: rule \"refund-large\" and 2 other "
                                          "matching rules (2 approvers from group \"finance\")");
    ztb_buf_reset(&b);
    policy_decision c = {.effect = POLICY_DENY,
                         .reason = POLICY_REASON_CONFLICT,
                         .rule = "a",
                         .other_rule = "b",
                         .detail = "binding"};
    policy_decision_describe(&c, &b);
    assert_string_equal(ztb_buf_cstr(&b), "deny: rules \"a\" and \"b\" conflict (binding)");
    ztb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fleet_example), cmocka_unit_test(test_docs_show_the_example),
        cmocka_unit_test(test_refcount),      cmocka_unit_test(test_digest_identifies_document),
        cmocka_unit_test(test_names),         cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
