/*
 * test_store_ssf.c - the SSF streams in Redis (store_ssf.c) against a real
 * redis-server: create with its limits, the owner check on replace and
 * delete (inside the script), listing, the verification throttle, the keys
 * all in the {ssf} hash tag, and Redis down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/store/store_ssf.h"
#include "common/secret.h"
#include "store_fixture.h"

#define ID1 "ssf_AAAAAAAAAAAAAAAAAAAAAA"
#define ID2 "ssf_BBBBBBBBBBBBBBBBBBBBBB"
#define ID3 "ssf_CCCCCCCCCCCCCCCCCCCCCC"

static void test_ids(void **state)
{
    (void)state;
    assert_true(store_ssf_id_ok(ID1));
    assert_true(store_ssf_id_ok("ssf_-_-_-_-_-_-_-_-_-_-_09"));
    assert_false(store_ssf_id_ok(NULL));
    assert_false(store_ssf_id_ok("ssf_AAAA"));
    assert_false(store_ssf_id_ok("xxx_AAAAAAAAAAAAAAAAAAAAAA"));
    assert_false(store_ssf_id_ok("ssf_AAAAAAAAAAAAAAAAAAAA:*"));
    assert_false(store_ssf_id_ok("ssf_AAAAAAAAAAAAAAAAAAAAAAA"));
}

static void test_streams(void **state)
{
    (void)state;
    const char *r1 = "{\"owner\":\"rx-a\",\"v\":1}";
    assert_int_equal(store_ssf_create("rx-a", ID1, r1, 2, 3), ZTB_OK);
    assert_int_equal(store_ssf_create("rx-a", ID1, r1, 2, 3), ZTB_ERR_EXISTS);
    assert_int_equal(store_ssf_create("rx-a", ID2, "{\"owner\":\"rx-a\"}", 2, 3), ZTB_OK);
    /* the owner's limit, then the total */
    assert_int_equal(store_ssf_create("rx-a", ID3, "{\"owner\":\"rx-a\"}", 2, 3), ZTB_ERR_STATE);
    assert_int_equal(store_ssf_create("rx-b", ID3, "{\"owner\":\"rx-b\"}", 2, 3), ZTB_OK);
    assert_int_equal(
        store_ssf_create("rx-c", "ssf_DDDDDDDDDDDDDDDDDDDDDD", "{\"owner\":\"rx-c\"}", 2, 3),
        ZTB_ERR_TOO_LARGE);

    char *rec = NULL;
    assert_int_equal(store_ssf_get(ID1, &rec), ZTB_OK);
    assert_string_equal(rec, r1);
    ztb_free_secret_str(rec);
    assert_int_equal(store_ssf_get("ssf_ZZZZZZZZZZZZZZZZZZZZZZ", &rec), ZTB_ERR_NOT_FOUND);
    assert_null(rec);
    assert_int_equal(store_ssf_get("../etc", &rec), ZTB_ERR_NOT_FOUND);

    /* another owner can neither replace nor delete */
    assert_int_equal(store_ssf_replace("rx-b", ID1, "{\"owner\":\"rx-b\"}"), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_ssf_delete("rx-b", ID1), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_ssf_get(ID1, &rec), ZTB_OK);
    assert_string_equal(rec, r1);
    ztb_free_secret_str(rec);
    assert_int_equal(store_ssf_replace("rx-a", ID1, "{\"owner\":\"rx-a\",\"v\":2}"), ZTB_OK);

    char **all = NULL;
    size_t n = 0;
    assert_int_equal(store_ssf_list(&all, &n), ZTB_OK);
    assert_int_equal(n, 3);
    store_ssf_list_free(all, n);

    /* delete gives the owner its slot back */
    assert_int_equal(store_ssf_delete("rx-a", ID2), ZTB_OK);
    assert_int_equal(store_ssf_delete("rx-a", ID2), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_ssf_create("rx-a", ID2, "{\"owner\":\"rx-a\"}", 2, 3), ZTB_OK);

    /* every key in one slot */
    redisReply *r = cmd("KEYS *");
    for (size_t i = 0; i < r->elements; i++)
        if (strncmp(r->element[i]->str, "ztb:ssf:", 8) == 0)
            assert_non_null(strstr(r->element[i]->str, "{ssf}"));
    freeReplyObject(r);

    int ok = 0;
    assert_int_equal(store_ssf_verify_throttle(ID1, 200, &ok), ZTB_OK);
    assert_true(ok);
    assert_int_equal(store_ssf_verify_throttle(ID1, 200, &ok), ZTB_OK);
    assert_false(ok);
    usleep(250 * 1000);
    assert_int_equal(store_ssf_verify_throttle(ID1, 200, &ok), ZTB_OK);
    assert_true(ok);
    /* a slot given back is free at once */
    assert_int_equal(store_ssf_verify_release(ID1), ZTB_OK);
    assert_int_equal(store_ssf_verify_throttle(ID1, 60000, &ok), ZTB_OK);
    assert_true(ok);
    assert_int_equal(store_ssf_verify_throttle(ID1, 60000, &ok), ZTB_OK);
    assert_false(ok);
    assert_int_equal(store_ssf_verify_release("not an id"), ZTB_ERR_INVALID_ARG);
}

static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 0);
    char *rec = NULL;
    assert_int_equal(store_ssf_get(ID1, &rec), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(store_ssf_create("rx-z", ID3, "{}", 2, 3), ZTB_ERR_UNAVAILABLE);
    char **all = NULL;
    size_t n = 0;
    assert_int_equal(store_ssf_list(&all, &n), ZTB_ERR_UNAVAILABLE);
    zh_redis_restart(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, store_setup, store_teardown);
}
