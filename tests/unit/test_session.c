/* test_session.c - session credentials: round trip, forgery, expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "broker/session.h"

static const uint8_t key1[SESSION_KEY_LEN] = {1, 2, 3};
static const uint8_t key2[SESSION_KEY_LEN] = {9, 9, 9};

static void test_round_trip(void **state)
{
    (void)state;
    session_set_key(key1);
    char cred[SESSION_CRED_MAX];
    assert_int_equal(session_mint("billing-bot", 7, 2000, cred), ZTB_OK);
    assert_int_equal(strncmp(cred, "ztbs_", 5), 0);
    struct session_claims c;
    assert_int_equal(session_verify(cred, strlen(cred), 1999, &c), ZTB_OK);
    assert_string_equal(c.agent, "billing-bot");
    assert_int_equal(c.generation, 7);
    assert_int_equal(c.expires, 2000);
    assert_int_equal(session_verify(cred, strlen(cred), 2000, &c), ZTB_ERR_EXPIRED);
    /* two mints differ (random sid) */
    char cred2[SESSION_CRED_MAX];
    assert_int_equal(session_mint("billing-bot", 7, 2000, cred2), ZTB_OK);
    assert_string_not_equal(cred, cred2);
    /* another broker with the same key accepts it; one with another key does not */
    session_set_key(key2);
    assert_int_equal(session_verify(cred, strlen(cred), 1, &c), ZTB_ERR_INVALID_CLIENT);
    session_set_key(key1);
    assert_int_equal(session_verify(cred, strlen(cred), 1, &c), ZTB_OK);
}

static void test_forgeries(void **state)
{
    (void)state;
    session_set_key(key1);
    char cred[SESSION_CRED_MAX];
    assert_int_equal(session_mint("worker", 1, 5000, cred), ZTB_OK);
    struct session_claims c;
    size_t n = strlen(cred);
    /* flip every character in turn: nothing verifies */
    for (size_t i = 0; i < n; i++) {
        char f[SESSION_CRED_MAX];
        memcpy(f, cred, n + 1);
        f[i] = f[i] == 'A' ? 'B' : 'A';
        ztb_err rv = session_verify(f, n, 1, &c);
        assert_int_not_equal(rv, ZTB_OK);
    }
    /* truncations */
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(session_verify(cred, i, 1, &c), ZTB_OK);
    assert_int_equal(session_verify("ztbs_", 5, 1, &c), ZTB_ERR_INVALID_CLIENT);
    assert_int_equal(session_verify("ztbj_abc.def", 12, 1, &c), ZTB_ERR_INVALID_CLIENT);
    assert_int_equal(session_verify(NULL, 0, 1, &c), ZTB_ERR_INVALID_CLIENT);
    assert_int_equal(session_mint("Bad Name", 1, 2, cred), ZTB_ERR_INVALID_ARG);
    session_clear_key();
    assert_int_equal(session_mint("worker", 1, 2, cred), ZTB_ERR_STATE);
    assert_int_equal(session_verify(cred, strlen(cred), 1, &c), ZTB_ERR_STATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_forgeries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
