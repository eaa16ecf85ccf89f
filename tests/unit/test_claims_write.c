/*
 * test_claims_write.c - the broker's claims writer (wire/claims_write.c):
 * the documented shape, read back by the one reader (wire/claims_read.c) so
 * writer and reader cannot drift apart; escaping of request strings; the
 * required members; a buffer too small; fresh jtis.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wire/claims.h"

static struct claims rd;

/* Write c into out (NUL-terminated) and read it back into rd. */
static void write_and_read(const struct token_claims *c, char *out, size_t cap)
{
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, cap);
    assert_int_equal(claims_write(c, &b), ZTB_OK);
    assert_non_null(ztb_buf_cstr(&b));
    assert_int_equal(claims_parse(out, b.len, &rd), ZTB_OK);
}

static void test_minimal_shape(void **state)
{
    (void)state;
    struct token_claims c = {.iss = "https://broker.example",
                             .agent = "bot",
                             .spiffe_id = "spiffe://ztb.local/agent/bot",
                             .audience = "payments",
                             .action = "payments:refund",
                             .jti = "j1",
                             .iat = 100,
                             .exp = 160,
                             .generation = 3};
    char out[2048];
    write_and_read(&c, out, sizeof(out));
    assert_string_equal(
        out, "{\"iss\":\"https://broker.example\",\"sub\":\"spiffe://ztb.local/agent/bot\","
             "\"aud\":\"payments\",\"iat\":100,\"nbf\":100,\"exp\":160,\"jti\":\"j1\","
             "\"client_id\":\"spiffe://ztb.local/agent/bot\",\"scope\":\"payments:refund\","
             "\"authorization_details\":[{\"type\":\"ztb_action\",\"actions\":"
             "[\"payments:refund\"],\"locations\":[\"payments\"]}],\"ztb\":{\"agent\":\"bot\","
             "\"gen\":3}}");
    assert_string_equal(claims_str(&rd, CL_DETAIL_TYPE), "ztb_action");
    assert_null(claims_str(&rd, CL_RESOURCE));
    assert_null(claims_str(&rd, CL_ACT_SUB));
    assert_null(claims_str(&rd, CL_MAY_ACT_SUB));
    assert_false(rd.cnf_present);
    assert_false(rd.single_use);
    assert_int_equal(rd.gen, 3);
    assert_int_equal(rd.nbf, 100);
}

static void test_every_member_reads_back(void **state)
{
    (void)state;
    struct token_claims c = {.iss = "i",
                             .agent = "bot",
                             .spiffe_id = "spiffe://t/agent/bot",
                             .audience = "aud",
                             .action = "s:v",
                             .resource = "orders/1",
                             .act_sub = "spiffe://t/agent/boss",
                             .may_act_sub = "spiffe://t/agent/helper",
                             .cnf_jkt = "thumb",
                             .rule = "r1",
                             .jti = "j",
                             .iat = 1,
                             .exp = 2,
                             .generation = 9,
                             .single_use = 1};
    char out[2048];
    write_and_read(&c, out, sizeof(out));
    assert_string_equal(claims_str(&rd, CL_RESOURCE), "orders/1");
    assert_string_equal(claims_str(&rd, CL_ACT_SUB), "spiffe://t/agent/boss");
    assert_string_equal(claims_str(&rd, CL_MAY_ACT_SUB), "spiffe://t/agent/helper");
    assert_string_equal(claims_str(&rd, CL_JKT), "thumb");
    assert_null(claims_str(&rd, CL_X5T));
    assert_string_equal(claims_str(&rd, CL_RULE), "r1");
    assert_true(rd.single_use);
    /* mTLS binding instead (never both) */
    c.cnf_jkt = NULL;
    c.cnf_x5t = "x5t";
    write_and_read(&c, out, sizeof(out));
    assert_string_equal(claims_str(&rd, CL_X5T), "x5t");
    assert_null(claims_str(&rd, CL_JKT));
    /* the request's own authorization detail object */
    c.details_json =
        "{\"actions\":[\"s:v\"],\"amount\":40,\"locations\":[\"aud\"],\"type\":\"pay\"}";
    write_and_read(&c, out, sizeof(out));
    assert_string_equal(claims_str(&rd, CL_DETAIL_TYPE), "pay");
    assert_non_null(strstr(rd.text + rd.details_off, "\"amount\":40"));
}

static void test_request_strings_escaped(void **state)
{
    (void)state;
    /* a resource that tries to close the string and add a claim */
    struct token_claims c = {.iss = "i",
                             .agent = "bot",
                             .spiffe_id = "s",
                             .audience = "a",
                             .action = "s:v",
                             .resource = "x\",\"ztb\":{\"agent\":\"root\",\"gen\":99}",
                             .jti = "j",
                             .iat = 1,
                             .exp = 2,
                             .generation = 1};
    char out[2048];
    write_and_read(&c, out, sizeof(out));
    assert_string_equal(claims_str(&rd, CL_RESOURCE), c.resource);
    assert_string_equal(claims_str(&rd, CL_AGENT), "bot");
    assert_int_equal(rd.gen, 1);
}

static void test_refusals(void **state)
{
    (void)state;
    struct token_claims c = {.iss = "i", .agent = "bot", .spiffe_id = "s", .audience = "a"};
    char out[64];
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, sizeof(out));
    assert_int_equal(claims_write(&c, &b), ZTB_ERR_INVALID_ARG); /* no action */
    c.action = "s:v";
    ztb_buf_init_fixed(&b, out, sizeof(out));
    assert_int_not_equal(claims_write(&c, &b), ZTB_OK); /* does not fit 64 bytes */
}

static void test_new_jti(void **state)
{
    (void)state;
    struct token_claims a = {0}, b = {0};
    assert_int_equal(claims_new_jti(&a), ZTB_OK);
    assert_int_equal(claims_new_jti(&b), ZTB_OK);
    assert_int_equal(strlen(a.jti), 22); /* 128 bits, base64url */
    assert_string_not_equal(a.jti, b.jti);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_shape),
        cmocka_unit_test(test_every_member_reads_back),
        cmocka_unit_test(test_request_strings_escaped),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_new_jti),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
