/* test_claims_read.c - the access token claims reader (wire/claims_read.c): the broker's shape, and
 * each refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wire/claims.h"

/* What the broker writes (wire/claims_write.c), with every optional member. */
static const char FULL[] =
    "{\"iss\":\"https://broker.example\",\"sub\":\"spiffe://ztb.local/agent/billing-bot\","
    "\"aud\":\"payments\",\"iat\":1767225600,\"nbf\":1767225600,\"exp\":1767225660,"
    "\"jti\":\"kq3x9Jd0xV2aR8yQ1sLm7g\",\"client_id\":\"spiffe://ztb.local/agent/billing-bot\","
    "\"scope\":\"payments:refund\",\"authorization_details\":[{\"type\":\"payment\","
    "\"actions\":[\"payments:refund\"],\"locations\":[\"payments\"],\"identifier\":"
    "\"orders/1234\",\"amount\":40,\"currency\":\"EUR\"}],\"act\":{\"sub\":"
    "\"spiffe://ztb.local/agent/orchestrator\"},\"cnf\":{\"jkt\":"
    "\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I\"},\"ztb\":{\"agent\":\"billing-bot\","
    "\"gen\":3,\"single_use\":true,\"rule\":\"refunds-small\"}}";

/* The least the broker writes. */
static const char MINIMAL[] =
    "{\"iss\":\"i\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":10,\"exp\":20,\"jti\":\"j\","
    "\"scope\":\"x:y\",\"authorization_details\":[{\"type\":\"ztb_action\",\"actions\":"
    "[\"x:y\"],\"locations\":[\"a\"]}],\"ztb\":{\"agent\":\"n\",\"gen\":1}}";

static struct claims c;

static ztb_err parse(const char *s)
{
    return claims_parse(s, strlen(s), &c);
}

/* MINIMAL with the first occurrence of `from` replaced by `to`. */
static const char *minimal_with(const char *from, const char *to)
{
    static char out[4096];
    const char *m = MINIMAL;
    const char *at = strstr(m, from);
    assert_non_null(at);
    snprintf(out, sizeof(out), "%.*s%s%s", (int)(at - m), m, to, at + strlen(from));
    return out;
}

static void test_full_token(void **state)
{
    (void)state;
    assert_int_equal(parse(FULL), ZTB_OK);
    assert_string_equal(claims_str(&c, CL_ISS), "https://broker.example");
    assert_string_equal(claims_str(&c, CL_SUB), "spiffe://ztb.local/agent/billing-bot");
    assert_string_equal(claims_str(&c, CL_AUD), "payments");
    assert_string_equal(claims_str(&c, CL_JTI), "kq3x9Jd0xV2aR8yQ1sLm7g");
    assert_string_equal(claims_str(&c, CL_SCOPE), "payments:refund");
    assert_string_equal(claims_str(&c, CL_RESOURCE), "orders/1234");
    assert_string_equal(claims_str(&c, CL_ACT_SUB), "spiffe://ztb.local/agent/orchestrator");
    assert_string_equal(claims_str(&c, CL_JKT), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    assert_null(claims_str(&c, CL_X5T));
    assert_string_equal(claims_str(&c, CL_AGENT), "billing-bot");
    assert_string_equal(claims_str(&c, CL_RULE), "refunds-small");
    assert_int_equal(c.iat, 1767225600);
    assert_int_equal(c.nbf, 1767225600);
    assert_true(c.has_nbf);
    assert_int_equal(c.exp, 1767225660);
    assert_int_equal(c.gen, 3);
    assert_true(c.single_use);
    assert_true(c.cnf_present);
    assert_false(c.cnf_unknown);
    assert_string_equal(claims_str(&c, CL_DETAIL_TYPE), "payment");
    const char *d =
        "{\"type\":\"payment\",\"actions\":[\"payments:refund\"],\"locations\":"
        "[\"payments\"],\"identifier\":\"orders/1234\",\"amount\":40,\"currency\":\"EUR\"}";
    assert_int_equal(c.details_len, strlen(d));
    assert_memory_equal(c.text + c.details_off, d, c.details_len);
    assert_int_equal(claims_len(&c, CL_AUD), 8);
}

static void test_minimal_token(void **state)
{
    (void)state;
    assert_int_equal(parse(MINIMAL), ZTB_OK);
    assert_null(claims_str(&c, CL_RESOURCE));
    assert_null(claims_str(&c, CL_ACT_SUB));
    assert_null(claims_str(&c, CL_JKT));
    assert_null(claims_str(&c, CL_RULE));
    assert_false(c.single_use);
    assert_false(c.cnf_present);
    assert_false(c.has_nbf);
    assert_string_equal(claims_str(&c, CL_DETAIL_TYPE), "ztb_action");
    assert_true(c.details_len > 0);
    /* unknown members anywhere are skipped */
    assert_int_equal(parse(minimal_with("\"jti\"", "\"future\":{\"x\":[1,2]},\"jti\"")), ZTB_OK);
    /* escapes are undone */
    assert_int_equal(parse(minimal_with("\"sub\":\"s\"", "\"sub\":\"\\u0073\\/t\"")), ZTB_OK);
    assert_string_equal(claims_str(&c, CL_SUB), "s/t");
}

static void test_each_refusal(void **state)
{
    (void)state;
    struct {
        const char *from, *to;
        ztb_err want;
    } cases[] = {
        /* required members */
        {"\"iss\":\"i\",", "", ZTB_ERR_CLAIMS},
        {"\"sub\":\"s\",", "", ZTB_ERR_CLAIMS},
        {"\"aud\":\"a\",", "", ZTB_ERR_CLAIMS},
        {"\"iat\":10,", "", ZTB_ERR_CLAIMS},
        {"\"exp\":20,", "", ZTB_ERR_CLAIMS},
        {"\"jti\":\"j\",", "", ZTB_ERR_CLAIMS},
        {"\"jti\":\"j\"", "\"jti\":\"\"", ZTB_ERR_CLAIMS},
        {"\"scope\":\"x:y\",", "", ZTB_ERR_CLAIMS},
        {",\"ztb\":{\"agent\":\"n\",\"gen\":1}", "", ZTB_ERR_CLAIMS},
        {"\"agent\":\"n\",", "", ZTB_ERR_CLAIMS},
        {",\"gen\":1", "", ZTB_ERR_CLAIMS},
        {"\"authorization_details\":[{\"type\":\"ztb_action\",\"actions\":[\"x:y\"],"
         "\"locations\":[\"a\"]}],",
         "", ZTB_ERR_CLAIMS},
        /* types */
        {"\"aud\":\"a\"", "\"aud\":[\"a\"]", ZTB_ERR_CLAIMS},
        {"\"iss\":\"i\"", "\"iss\":1", ZTB_ERR_CLAIMS},
        {"\"exp\":20", "\"exp\":20.5", ZTB_ERR_CLAIMS},
        {"\"exp\":20", "\"exp\":\"20\"", ZTB_ERR_CLAIMS},
        {"\"iat\":10", "\"iat\":-1", ZTB_ERR_CLAIMS},
        {"\"exp\":20", "\"exp\":253402300800", ZTB_ERR_CLAIMS},
        {"\"gen\":1", "\"gen\":-1", ZTB_ERR_CLAIMS},
        {"\"gen\":1", "\"gen\":\"1\"", ZTB_ERR_CLAIMS},
        {"\"gen\":1", "\"gen\":1,\"single_use\":1", ZTB_ERR_CLAIMS},
        {"\"exp\":20", "\"exp\":10", ZTB_ERR_CLAIMS}, /* not after iat */
        /* strings: control characters, length */
        {"\"sub\":\"s\"", "\"sub\":\"a\\u0007b\"", ZTB_ERR_CLAIMS},
        {"\"sub\":\"s\"", "\"sub\":\"a\\nb\"", ZTB_ERR_CLAIMS},
        /* authorization_details */
        {"\"actions\":[\"x:y\"]", "\"actions\":[\"x:z\"]", ZTB_ERR_CLAIMS},
        {"\"actions\":[\"x:y\"]", "\"actions\":[\"x:y\",\"x:z\"]", ZTB_ERR_CLAIMS},
        {"\"actions\":[\"x:y\"]", "\"actions\":[]", ZTB_ERR_CLAIMS},
        {"\"actions\":[\"x:y\"]", "\"actions\":\"x:y\"", ZTB_ERR_CLAIMS},
        {"\"type\":\"ztb_action\"", "\"type\":7", ZTB_ERR_CLAIMS},
        {"\"type\":\"ztb_action\"", "\"type\":\"\"", ZTB_ERR_CLAIMS},
        {"{\"type\":\"ztb_action\",", "{", ZTB_ERR_CLAIMS},
        {",\"actions\":[\"x:y\"]", "", ZTB_ERR_CLAIMS},
        {",\"locations\":[\"a\"]", "", ZTB_ERR_CLAIMS},
        {"\"locations\":[\"a\"]", "\"locations\":[\"other\"]", ZTB_ERR_CLAIMS},
        {"[\"a\"]}]", "[\"a\"]},{\"type\":\"ztb_action\",\"actions\":[\"x:y\"]}]", ZTB_ERR_CLAIMS},
        {"[\"a\"]}]", "[\"a\"],\"identifier\":7}]", ZTB_ERR_CLAIMS},
        {"[{\"type\"", "{\"type\"", ZTB_ERR_CLAIMS},
        /* act and cnf */
        {"\"jti\"", "\"act\":{},\"jti\"", ZTB_ERR_CLAIMS},
        {"\"jti\"", "\"act\":\"x\",\"jti\"", ZTB_ERR_CLAIMS},
        {"\"jti\"", "\"may_act\":{},\"jti\"", ZTB_ERR_CLAIMS},
        {"\"jti\"", "\"may_act\":{\"sub\":5},\"jti\"", ZTB_ERR_CLAIMS},
        {"\"jti\"", "\"may_act\":[\"s\"],\"jti\"", ZTB_ERR_CLAIMS},
        {"\"jti\"", "\"cnf\":[],\"jti\"", ZTB_ERR_CLAIMS},
        /* JSON itself */
        {"\"iss\":\"i\",", "\"iss\":\"i\",\"iss\":\"j\",", ZTB_ERR_JSON},
        {"\"iss\":\"i\",", "\"iss\":\"i\",\"i\\u0073s\":\"j\",", ZTB_ERR_JSON},
        {"\"gen\":1}}", "\"gen\":1}},", ZTB_ERR_JSON},
        {"\"gen\":1}}", "\"gen\":1}}x", ZTB_ERR_JSON},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ztb_err rv = parse(minimal_with(cases[i].from, cases[i].to));
        if (rv != cases[i].want)
            fail_msg("case %zu (%s -> %s): got %s", i, cases[i].from, cases[i].to,
                     ztb_err_name(rv));
    }
}

static void test_may_act(void **state)
{
    (void)state;
    assert_int_equal(parse(minimal_with("\"jti\"", "\"may_act\":{\"sub\":\"spiffe://t/agent/b\","
                                                   "\"iss\":\"x\"},\"jti\"")),
                     ZTB_OK);
    assert_string_equal(claims_str(&c, CL_MAY_ACT_SUB), "spiffe://t/agent/b");
    assert_null(claims_str(&c, CL_ACT_SUB));
    assert_int_equal(parse(MINIMAL), ZTB_OK);
    assert_null(claims_str(&c, CL_MAY_ACT_SUB));
}

static void test_cnf_unknown_member_is_remembered(void **state)
{
    (void)state;
    assert_int_equal(parse(minimal_with("\"jti\"", "\"cnf\":{\"jwk\":{}},\"jti\"")), ZTB_OK);
    assert_true(c.cnf_present);
    assert_true(c.cnf_unknown);
    assert_int_equal(parse(minimal_with("\"jti\"", "\"cnf\":{\"x5t#S256\":\"abc\"},\"jti\"")),
                     ZTB_OK);
    assert_string_equal(claims_str(&c, CL_X5T), "abc");
    assert_false(c.cnf_unknown);
}

static void test_not_an_object_and_sizes(void **state)
{
    (void)state;
    assert_int_equal(parse("[]"), ZTB_ERR_CLAIMS);
    assert_int_equal(parse("\"x\""), ZTB_ERR_CLAIMS);
    assert_int_equal(parse(""), ZTB_ERR_JSON);
    assert_int_equal(parse("{"), ZTB_ERR_JSON);
    assert_int_equal(claims_parse(NULL, 5, &c), ZTB_ERR_INVALID_ARG);
    assert_int_equal(claims_parse(NULL, 0, &c), ZTB_ERR_JSON);
    static char big[CLAIMS_PAYLOAD_MAX + 64];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse(big), ZTB_ERR_CLAIMS);
    /* a long resource is refused, not truncated */
    static char res[CLAIMS_RESOURCE_MAX + 64];
    memset(res, 'r', sizeof(res) - 1);
    res[sizeof(res) - 1] = '\0';
    char to[CLAIMS_RESOURCE_MAX + 128];
    snprintf(to, sizeof(to), "[\"a\"],\"identifier\":\"%s\"}]", res);
    assert_int_equal(parse(minimal_with("[\"a\"]}]", to)), ZTB_ERR_CLAIMS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_token),
        cmocka_unit_test(test_minimal_token),
        cmocka_unit_test(test_each_refusal),
        cmocka_unit_test(test_may_act),
        cmocka_unit_test(test_cnf_unknown_member_is_remembered),
        cmocka_unit_test(test_not_an_object_and_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
