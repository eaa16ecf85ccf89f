/* test_spiffe.c - SPIFFE ID syntax and the one agent ID shape ztb accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pki/spiffe.h"

static ztb_err check(const char *id)
{
    return ztb_spiffe_check_id(id, strlen(id));
}

static void test_valid_ids(void **state)
{
    (void)state;
    const char *ok[] = {
        "spiffe://example.org",
        "spiffe://example.org/agent/a1",
        "spiffe://ex-ample_1.org/a/b.c/D-e_f",
        "spiffe://x/...",
        "spiffe://x/.a",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(check(ok[i]), ZTB_OK);
}

static void test_invalid_ids(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "spiffe:/example.org",
        "SPIFFE://example.org", /* scheme is lower case */
        "https://example.org/agent/a",
        "spiffe://", /* no trust domain */
        "spiffe:///agent/a",
        "spiffe://Example.org/agent/a",     /* upper case trust domain */
        "spiffe://example.org:443/agent/a", /* port */
        "spiffe://user@example.org/a",      /* user info */
        "spiffe://example.org/",            /* trailing slash */
        "spiffe://example.org/agent/",
        "spiffe://example.org//a", /* empty segment */
        "spiffe://example.org/agent/./a",
        "spiffe://example.org/agent/../a",
        "spiffe://example.org/agent/a%20b", /* percent-encoding */
        "spiffe://example.org/agent/a?x=1",
        "spiffe://example.org/agent/a#f",
        "spiffe://example.org/agent/a b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(check(bad[i]), ZTB_ERR_SPIFFE_ID);
    /* an embedded NUL is a byte like any other, and not allowed */
    assert_int_equal(ztb_spiffe_check_id("spiffe://a\0b/x", 14), ZTB_ERR_SPIFFE_ID);
    /* 2048 bytes at most */
    static char longid[ZTB_SPIFFE_ID_MAX + 2];
    strcpy(longid, "spiffe://x/");
    memset(longid + 11, 'a', sizeof(longid) - 12);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(ztb_spiffe_check_id(longid, ZTB_SPIFFE_ID_MAX), ZTB_OK);
    assert_int_equal(ztb_spiffe_check_id(longid, ZTB_SPIFFE_ID_MAX + 1), ZTB_ERR_SPIFFE_ID);
}

static void test_names_and_domains(void **state)
{
    (void)state;
    assert_int_equal(ztb_spiffe_check_trust_domain("example.org"), ZTB_OK);
    assert_int_equal(ztb_spiffe_check_trust_domain(""), ZTB_ERR_SPIFFE_ID);
    assert_int_equal(ztb_spiffe_check_trust_domain("Example.org"), ZTB_ERR_SPIFFE_ID);
    assert_int_equal(ztb_spiffe_check_trust_domain("ex/ample"), ZTB_ERR_SPIFFE_ID);
    char td[ZTB_TRUST_DOMAIN_MAX + 2];
    memset(td, 'a', sizeof(td) - 1);
    td[sizeof(td) - 1] = '\0';
    assert_int_equal(ztb_spiffe_check_trust_domain(td), ZTB_ERR_SPIFFE_ID);
    td[ZTB_TRUST_DOMAIN_MAX] = '\0';
    assert_int_equal(ztb_spiffe_check_trust_domain(td), ZTB_OK);

    assert_int_equal(ztb_spiffe_check_agent_name("Agent-1.v2_x"), ZTB_OK);
    const char *bad[] = {"", ".", "..", "a/b", "a b", "a%b", "ä"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ztb_spiffe_check_agent_name(bad[i]), ZTB_ERR_SPIFFE_ID);
    char name[ZTB_AGENT_NAME_MAX + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(ztb_spiffe_check_agent_name(name), ZTB_ERR_SPIFFE_ID);
}

/* The names the broker registers agents under (and ztbctl checks before
 * sending): a strict subset of the SPIFFE segments. */
static void test_registered_names(void **state)
{
    (void)state;
    static const char *const good[] = {"a", "0", "bot-1", "pay.agent_2", "x-", "a..b"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!ztb_agent_name_ok(good[i]))
            fail_msg("%s refused", good[i]);
    char max[ZTB_AGENT_NAME_REGISTERED_MAX + 2];
    memset(max, 'a', sizeof(max));
    max[ZTB_AGENT_NAME_REGISTERED_MAX] = '\0';
    assert_true(ztb_agent_name_ok(max));
    max[ZTB_AGENT_NAME_REGISTERED_MAX] = 'a';
    max[ZTB_AGENT_NAME_REGISTERED_MAX + 1] = '\0';
    assert_false(ztb_agent_name_ok(max)); /* 64 */
    static const char *const bad[] = {"",   "-a",  ".",   "..",   "_x",       "Bot", "a/b",
                                      "a?", "a#b", "a b", "a\nb", "\xc3\xa9", "a%2f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ztb_agent_name_ok(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);
    assert_false(ztb_agent_name_ok(NULL));
    /* every registered name is a valid SPIFFE agent name */
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(ztb_spiffe_check_agent_name(good[i]), ZTB_OK);
}

static void test_agent_id_round_trip(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init(&b, 4096);
    assert_int_equal(ztb_spiffe_agent_id("example.org", "a1", &b), ZTB_OK);
    assert_string_equal(ztb_buf_cstr(&b), "spiffe://example.org/agent/a1");
    char name[ZTB_AGENT_NAME_MAX + 1];
    assert_int_equal(
        ztb_spiffe_parse_agent(ztb_buf_cstr(&b), b.len, "example.org", name, sizeof(name)), ZTB_OK);
    assert_string_equal(name, "a1");
    ztb_buf_reset(&b);
    assert_int_equal(ztb_spiffe_agent_id("example.org", "a/b", &b), ZTB_ERR_SPIFFE_ID);
    assert_int_equal(ztb_spiffe_agent_id("EXAMPLE", "a", &b), ZTB_ERR_SPIFFE_ID);
    ztb_buf_free(&b);
}

static void test_parse_agent_refusals(void **state)
{
    (void)state;
    char name[ZTB_AGENT_NAME_MAX + 1];
    const char *bad[] = {
        "spiffe://other.org/agent/a1",         /* another trust domain */
        "spiffe://example.org.evil/agent/a1",  /* a longer one */
        "spiffe://example.or/agent/a1",        /* a shorter one */
        "spiffe://example.org/workload/a1",    /* another kind */
        "spiffe://example.org/agent",          /* no name */
        "spiffe://example.org/agent/a1/extra", /* more path */
        "spiffe://example.org/agents/a1",      "spiffe://example.org",
        "spiffe://example.org/agent/a1/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            ztb_spiffe_parse_agent(bad[i], strlen(bad[i]), "example.org", name, sizeof(name)),
            ZTB_ERR_SPIFFE_ID);
    /* the caller's buffer must hold any name */
    assert_int_equal(
        ztb_spiffe_parse_agent("spiffe://example.org/agent/a", 28, "example.org", name, 8),
        ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ids),           cmocka_unit_test(test_invalid_ids),
        cmocka_unit_test(test_names_and_domains),   cmocka_unit_test(test_registered_names),
        cmocka_unit_test(test_agent_id_round_trip), cmocka_unit_test(test_parse_agent_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
