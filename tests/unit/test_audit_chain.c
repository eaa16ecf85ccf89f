/* test_audit_chain.c - a record's seq and prev are read exactly; the link is SHA-256 hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "audit/chain.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_hash_is_sha256_hex(void **state)
{
    (void)state;
    char h[AUDIT_HASH_HEX + 1];
    audit_chain_hash("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    audit_chain_hash("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(strlen(audit_genesis), AUDIT_HASH_HEX);
    assert_int_equal(strspn(audit_genesis, "0"), AUDIT_HASH_HEX);
}

static void test_seq(void **state)
{
    (void)state;
    uint64_t seq = 7;
    assert_int_equal(audit_chain_seq("{\"seq\":42,\"ts\":\"x\"", &seq), ZTB_OK);
    assert_int_equal(seq, 42);
    assert_int_equal(audit_chain_seq("{\"seq\":18446744073709551615,", &seq), ZTB_OK);
    assert_true(seq == UINT64_MAX);

    seq = 7;
    static const char *const bad[] = {
        "",
        "{\"seq\":",
        "{\"seq\":,",
        "{\"seq\":-1,",
        "{\"seq\":+1,",
        "{\"seq\": 1,",
        "{\"seq\":1}",
        "{\"seq\":1",
        "{\"seq\":1x,",
        "{\"seq\":18446744073709551616,", /* 2^64 */
        " {\"seq\":1,",
        "{\"Seq\":1,",
        "{\"prev\":\"" H64 "\",\"seq\":1,",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(audit_chain_seq(bad[i], &seq), ZTB_ERR_MALFORMED);
        assert_int_equal(seq, 7); /* untouched */
    }
}

static void test_prev(void **state)
{
    (void)state;
    char p[AUDIT_HASH_HEX + 1];
    assert_int_equal(
        audit_chain_prev("{\"seq\":1,\"ts\":\"t\",\"prev\":\"" H64 "\",\"event\":\"a\"}", p),
        ZTB_OK);
    assert_string_equal(p, H64);
    /* the first one counts */
    assert_int_equal(
        audit_chain_prev("{\"seq\":1,\"prev\":\"" H64 "\",\"x\":1,\"prev\":\"" H64 "\"}", p),
        ZTB_OK);

    static const char *const bad[] = {
        "{\"seq\":1}",
        "{\"seq\":1,\"prev\":\"\"}",
        "{\"seq\":1,\"prev\":\"0123\"}",     /* short, then NUL */
        "{\"seq\":1,\"prev\":\"" H64 "0\"}", /* 65 digits */
        "{\"seq\":1,\"prev\":\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\"}",
        "{\"seq\":1,\"prev\":\"g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
        "{\"seq\":1,\"prev\": \"" H64 "\"}",
        "{\"seq\":1,\"prev\":\"" H64, /* no closing quote: ends at the NUL */
        "{\"seq\":1,\"prev\":" H64 "}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(audit_chain_prev(bad[i], p), ZTB_ERR_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_sha256_hex),
        cmocka_unit_test(test_seq),
        cmocka_unit_test(test_prev),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
