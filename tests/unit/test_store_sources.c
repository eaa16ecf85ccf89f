/*
 * test_store_sources.c - signal sources (secrets stored only hashed, by agent, JWKs, listing)
 * against a real redis-server.
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

#include "broker/store/store_sources.h"
#include "store_fixture.h"

static void test_sources(void **state)
{
    (void)state;
    char secret[STORE_SOURCE_SECRET_LEN + 1], name[STORE_SOURCE_MAX + 1];
    assert_int_equal(store_source_add("soc", NULL, NULL, 100, secret), ZTB_OK);
    assert_int_equal(strlen(secret), STORE_SOURCE_SECRET_LEN);
    assert_int_equal(strncmp(secret, "ztbsrc_", 7), 0);
    /* only the hash is stored */
    redisReply *r = cmd("KEYS *%s*", secret + 7);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    assert_int_equal(store_source_by_secret(secret, name), ZTB_OK);
    assert_string_equal(name, "soc");
    char wrong[STORE_SOURCE_SECRET_LEN + 1];
    memcpy(wrong, secret, sizeof(wrong));
    wrong[20] = wrong[20] == 'A' ? 'B' : 'A';
    assert_int_equal(store_source_by_secret(wrong, name), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_source_by_secret("ztbsrc_short", name), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_source_add("soc", NULL, NULL, 100, secret), ZTB_ERR_EXISTS);
    assert_int_equal(secret[0], '\0'); /* nothing leaks from a refused add */

    assert_int_equal(store_source_add("gw", NULL, "gateway-1", 100, secret), ZTB_OK);
    assert_int_equal(secret[0], '\0');
    assert_int_equal(store_source_by_agent("gateway-1", name), ZTB_OK);
    assert_string_equal(name, "gw");
    assert_int_equal(store_source_add("gw2", NULL, "gateway-1", 100, secret), ZTB_ERR_EXISTS);
    assert_int_equal(store_source_by_agent("other", name), ZTB_ERR_NOT_FOUND);

    const char *jwk = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"a\",\"y\":\"b\"}";
    char tx_secret[STORE_SOURCE_SECRET_LEN + 1];
    assert_int_equal(store_source_add("tx", jwk, NULL, 100, tx_secret), ZTB_OK);
    char got[512];
    assert_int_equal(store_source_jwk("tx", got, sizeof(got)), ZTB_OK);
    assert_string_equal(got, jwk);
    assert_int_equal(store_source_jwk("soc", got, sizeof(got)), ZTB_ERR_NOT_FOUND);

    json_t *list = NULL;
    assert_int_equal(store_source_list(&list), ZTB_OK);
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "gw");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "kind")),
                        "agent");
    assert_true(json_is_true(json_object_get(json_array_get(list, 2), "has_jwk")));
    json_decref(list);

    assert_int_equal(store_source_remove("soc"), ZTB_OK);
    assert_int_equal(store_source_by_secret(secret, name), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_source_remove("gw"), ZTB_OK);
    assert_int_equal(store_source_by_agent("gateway-1", name), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_source_remove("gw"), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_source_add("Bad Name", NULL, NULL, 1, secret), ZTB_ERR_INVALID_ARG);
}

/* Redis gone: UNAVAILABLE, nothing guessed. */
static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 0);
    char secret[STORE_SOURCE_SECRET_LEN + 1], name[STORE_SOURCE_MAX + 1];
    assert_int_equal(store_source_add("x", NULL, NULL, 1, secret), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(secret[0], '\0');
    char guess[STORE_SOURCE_SECRET_LEN + 1];
    memset(guess, 'A', STORE_SOURCE_SECRET_LEN);
    memcpy(guess, "ztbsrc_", 7);
    guess[STORE_SOURCE_SECRET_LEN] = '\0';
    assert_int_equal(store_source_by_secret(guess, name), ZTB_ERR_UNAVAILABLE);
    zh_redis_restart(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, store_setup, store_teardown);
}
