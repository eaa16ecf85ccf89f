/*
 * test_load_groups.c - strict loading of the "groups" section: members required, group names,
 * unknown fields, the shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "load_fixture.h"

static void test_groups(void **state)
{
    (void)state;
    char *doc = fx_doc("\"a\": {\"members\": []}", "");
    refuse(doc, ZTB_ERR_POLICY, "group \"a\": members: must be a non-empty list", NULL);
    free(doc);
    doc = fx_doc("\"a b\": {\"members\": [\"x\"]}", "");
    refuse(doc, ZTB_ERR_POLICY, "group name \"a b\"", NULL);
    free(doc);
    doc = fx_doc("\"a\": {\"members\": [\"x\"], \"memebers\": 1}", "");
    refuse(doc, ZTB_ERR_POLICY, "unknown field \"memebers\" (did you mean \"members\"?)", NULL);
    free(doc);
    doc = fx_doc("\"a\": [\"x\"]", "");
    refuse(doc, ZTB_ERR_POLICY, "group \"a\": must be an object", NULL);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
