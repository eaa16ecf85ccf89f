/*
 * test_diff.c - policy_diff: rules added, removed and changed by id, other
 * sections changed, and reformatting is no change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy_fixtures.h"

#define R_READ                                                                                     \
    "{\"id\": \"read\", \"effect\": \"allow\", \"agents\": [\"a\"], \"actions\": "                 \
    "[\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}"
#define R_WRITE                                                                                    \
    "{\"id\": \"write\", \"effect\": \"allow\", \"agents\": [\"a\"], \"actions\": "                \
    "[\"crm:write\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}"
#define R_WRITE_TTL                                                                                \
    "{\"id\": \"write\", \"effect\": \"allow\", \"agents\": [\"a\"], \"actions\": "                \
    "[\"crm:write\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"], \"obligations\": "        \
    "{\"ttl\": 30}}"
#define R_REFUND                                                                                   \
    "{\"id\": \"refund\", \"effect\": \"allow\", \"agents\": [\"a\"], \"actions\": "               \
    "[\"payments:refund\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"]}"

static policy *load2(const char *groups, const char *rules)
{
    char *doc = fx_doc(groups, rules);
    policy *p = fx_load(doc);
    free(doc);
    if (p == NULL)
        fail_msg("a fixture policy does not load");
    return p;
}

static void expect_ids(const json_t *d, const char *key, const char *want)
{
    const json_t *arr = json_object_get(d, key);
    assert_true(json_is_array(arr));
    char got[512] = "";
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (i > 0)
            strcat(got, ",");
        strcat(got, json_string_value(v));
    }
    assert_string_equal(got, want);
}

static void test_rules_added_removed_changed(void **state)
{
    (void)state;
    policy *a = load2("", R_READ "," R_WRITE);
    policy *b = load2("", R_WRITE_TTL "," R_REFUND);
    json_t *d = NULL;
    assert_int_equal(policy_diff(a, b, &d), ZTB_OK);
    expect_ids(d, "rules_added", "refund");
    expect_ids(d, "rules_removed", "read");
    expect_ids(d, "rules_changed", "write");
    expect_ids(d, "sections_changed", "");
    assert_string_equal(json_string_value(json_object_get(d, "from")), policy_digest(a));
    assert_string_equal(json_string_value(json_object_get(d, "to")), policy_digest(b));
    json_decref(d);
    policy_unref(a);
    policy_unref(b);
}

static void test_reformatting_is_no_change(void **state)
{
    (void)state;
    policy *a = load2("", R_READ);
    /* the same rule with its keys in another order and other spacing */
    policy *b = load2(
        "", "{ \"audiences\":[\"crm\"],\"actions\":[\"crm:read\"],"
            "\"resources\":[\"**\"],\"agents\":[ \"a\" ],\"effect\":\"allow\",\"id\":\"read\" }");
    assert_string_not_equal(policy_digest(a), policy_digest(b));
    json_t *d = NULL;
    assert_int_equal(policy_diff(a, b, &d), ZTB_OK);
    expect_ids(d, "rules_added", "");
    expect_ids(d, "rules_removed", "");
    expect_ids(d, "rules_changed", "");
    expect_ids(d, "sections_changed", "");
    json_decref(d);
    policy_unref(a);
    policy_unref(b);
}

static void test_sections(void **state)
{
    (void)state;
    policy *a = load2("", R_READ);
    policy *b = load2("\"ops\": {\"members\": [\"a\"]}", R_READ);
    json_t *d = NULL;
    assert_int_equal(policy_diff(a, b, &d), ZTB_OK);
    expect_ids(d, "sections_changed", "groups");
    expect_ids(d, "rules_changed", "");
    json_decref(d);
    policy_unref(a);
    policy_unref(b);
}

static void test_document_kept(void **state)
{
    (void)state;
    char *doc = fx_doc("", R_READ);
    policy *p = fx_load(doc);
    size_t n = 0;
    const char *kept = policy_document(p, &n);
    assert_int_equal(n, strlen(doc));
    assert_memory_equal(kept, doc, n);
    assert_int_equal(kept[n], '\0');
    free(doc);
    policy_unref(p);
    assert_int_equal(policy_diff(NULL, NULL, NULL), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_added_removed_changed),
        cmocka_unit_test(test_reformatting_is_no_change),
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_document_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
