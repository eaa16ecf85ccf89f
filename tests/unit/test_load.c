/*
 * test_load.c - strict loading: every kind of mistake is refused with a
 * message that says where (line:column, or the rule / group / setting).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "load_fixture.h"

static void test_minimal_documents_load(void **state)
{
    (void)state;
    char *doc = fx_doc("", "");
    policy *p = fx_load(doc); /* no rules: a policy that denies everything */
    assert_non_null(p);
    assert_int_equal(policy_rule_count(p), 0);
    assert_string_equal(policy_trust_domain(p), "example.org");
    assert_int_equal(strlen(policy_digest(p)), 64);
    policy_unref(p);
    free(doc);
    doc = fx_doc("", "{\"id\": \"r1\", \"effect\": \"allow\", " RULE_OK "}");
    p = fx_load(doc);
    assert_non_null(p);
    assert_int_equal(policy_rule_count(p), 1);
    policy_unref(p);
    free(doc);
}

static void test_syntax_errors_have_line_and_column(void **state)
{
    (void)state;
    refuse("{\"version\": 1,\n  \"rules\": [\n  }", ZTB_ERR_JSON, "3:3: ", NULL);
    refuse("{\"version\": 1, \"version\": 1}", ZTB_ERR_JSON, "1:", "duplicate");
    refuse("", ZTB_ERR_JSON, "1:", NULL);
    refuse("{\"a\": \"\xff\"}", ZTB_ERR_JSON, "1:", NULL);
    refuse("{\"a\": 1} trailing", ZTB_ERR_JSON, "1:", NULL);
    refuse("{\"a\": 99999999999999999999999}", ZTB_ERR_JSON, "1:", NULL);
    refuse("{\"a\": \"\\u0000\"}", ZTB_ERR_JSON, "1:", NULL);
}

static void test_document_level(void **state)
{
    (void)state;
    refuse("[]", ZTB_ERR_POLICY, "must be a JSON object", NULL);
    refuse("{\"trust_domain\": \"example.org\", \"rules\": []}", ZTB_ERR_POLICY,
           "document: version: missing", NULL);
    refuse("{\"version\": 2}", ZTB_ERR_POLICY, "version: must be 1", NULL);
    refuse("{\"version\": \"1\"}", ZTB_ERR_POLICY, "version: must be 1", NULL);
    refuse("{\"version\": 1, \"rulez\": []}", ZTB_ERR_POLICY,
           "unknown field \"rulez\" (did you mean \"rules\"?)", NULL);
    refuse("{\"version\": 1, \"zzzzzz\": []}", ZTB_ERR_POLICY, "unknown field \"zzzzzz\"", NULL);
    refuse("{\"version\": 1, \"trust_domain\": \"Example.org\"}", ZTB_ERR_POLICY,
           "trust domain is lowercase", NULL);
    refuse("{\"version\": 1}", ZTB_ERR_POLICY, "trust_domain: missing", "settings: missing");
    /* many problems, one run */
    refuse("{\"version\": 1}", ZTB_ERR_POLICY, "rules: missing", NULL);
    refuse("{\"version\": 1, \"trust_domain\": \"example.org\", \"description\": \"a\\u0001b\"}",
           ZTB_ERR_POLICY, "without control characters", NULL);
}

static void test_unique_ids_and_many_errors(void **state)
{
    (void)state;
    char *doc = fx_doc("", "{\"id\": \"r1\", \"effect\": \"allow\", " RULE_OK "},"
                           "{\"id\": \"r1\", \"effect\": \"deny\", " RULE_OK "}");
    refuse(doc, ZTB_ERR_POLICY, "used by rules[0] and rules[1]; ids must be unique", NULL);
    free(doc);
    /* two bad rules: both named in one run */
    doc = fx_doc("", "{\"id\": \"a\", \"effect\": \"allow\", " RULE_OK ", \"obligations\": "
                     "{\"ttl\": 301}},"
                     "{\"id\": \"b\", \"effect\": \"allow\", " RULE_OK ", \"conditions\": "
                     "{\"source_ip\": [\"nope\"]}}");
    refuse(doc, ZTB_ERR_POLICY, "rule \"a\": obligations.ttl: 301 exceeds",
           "rule \"b\": conditions.source_ip: \"nope\"");
    free(doc);
}

static void test_too_large(void **state)
{
    (void)state;
    size_t n = (16u << 20) + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    policy *p = NULL;
    policy_diag d;
    policy_diag_init(&d);
    assert_int_equal(policy_load(big, n, &p, &d), ZTB_ERR_TOO_LARGE);
    assert_null(p);
    assert_true(policy_diag_count(&d) > 0);
    policy_diag_free(&d);
    free(big);
    assert_int_equal(policy_load(NULL, 5, &p, NULL), ZTB_ERR_INVALID_ARG);
    assert_int_equal(policy_load("{}", 2, NULL, NULL), ZTB_ERR_INVALID_ARG);
}

static void test_files(void **state)
{
    (void)state;
    char path[4096];
    policy *p = NULL;
    policy_diag d;
    policy_diag_init(&d);
    assert_int_equal(
        policy_load_file(fx_src(path, sizeof(path), "examples/policy/fleet.json"), &p, &d), ZTB_OK);
    assert_non_null(p);
    assert_int_equal(policy_diag_count(&d), 0);
    policy_unref(p);
    assert_int_equal(policy_load_file("/nonexistent/policy.json", &p, &d), ZTB_ERR_IO);
    assert_null(p);
    assert_non_null(strstr(d.msgs[0].text, "/nonexistent/policy.json"));
    policy_diag_free(&d);
    policy_diag_init(&d);
    assert_int_equal(policy_load_file("/", &p, &d), ZTB_ERR_IO);
    assert_non_null(strstr(d.msgs[0].text, "not a regular file"));
    policy_diag_free(&d);
    /* an invalid file gives its messages */
    char tmpl[] = "/tmp/ztb-test-policy-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\n\"version\": 1,\n}", 17), 17);
    close(fd);
    policy_diag_init(&d);
    assert_int_equal(policy_load_file(tmpl, &p, &d), ZTB_ERR_JSON);
    assert_int_equal(d.msgs[0].line, 3);
    policy_diag_free(&d);
    unlink(tmpl);
}

/*
 * A policy file any local user may write is refused, at start and at every
 * reload (the old policy stays): whoever can write it decides what every
 * agent may do. Writable by its group is the operators' choice and loads.
 */
static void test_file_writable_by_others_refused(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/ztb-test-policy-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    char *doc = fx_doc("", "");
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    free(doc);
    close(fd);
    policy *p = NULL;
    policy_diag d;
    assert_int_equal(chmod(tmpl, 0666), 0);
    policy_diag_init(&d);
    assert_int_equal(policy_load_file(tmpl, &p, &d), ZTB_ERR_PERMISSION);
    assert_null(p);
    assert_non_null(strstr(d.msgs[0].text, "writable by every user"));
    policy_diag_free(&d);
    assert_int_equal(chmod(tmpl, 0664), 0);
    policy_diag_init(&d);
    assert_int_equal(policy_load_file(tmpl, &p, &d), ZTB_OK);
    policy_unref(p);
    policy_diag_free(&d);
    unlink(tmpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_documents_load),
        cmocka_unit_test(test_syntax_errors_have_line_and_column),
        cmocka_unit_test(test_document_level),
        cmocka_unit_test(test_unique_ids_and_many_errors),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_file_writable_by_others_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
