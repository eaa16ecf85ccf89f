/*
 * test_proxy.c - X-Forwarded-For believed from trusted proxies only: the
 * rightmost untrusted hop is the client; an untrusted peer's header means
 * nothing; a trusted peer's malformed or doubled header gives no address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/http/proxy.h"

static const uint8_t LB[16] = {10, 0, 0, 5};          /* a trusted proxy */
static const uint8_t OUTSIDE[16] = {198, 51, 100, 7}; /* anyone */

static void client(const uint8_t peer[16], const char *xff, int twice, uint8_t *fam,
                   uint8_t addr[16])
{
    trusted_proxies_client(4, peer, xff, twice, fam, addr);
}

static void expect4(uint8_t fam, const uint8_t addr[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    assert_int_equal(fam, 4);
    const uint8_t want[4] = {a, b, c, d};
    assert_memory_equal(addr, want, 4);
}

static void test_list_parsing(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(trusted_proxies_set("", err, sizeof(err)), ZTB_OK);
    assert_false(trusted_proxies_any());
    assert_int_equal(trusted_proxies_set("10.0.0.0/8, fd00::/8,192.0.2.7", err, sizeof(err)),
                     ZTB_OK);
    assert_true(trusted_proxies_any());
    assert_int_equal(trusted_proxies_set("10.0.0.0/8,nope", err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "'nope' is not a network"));
    assert_false(trusted_proxies_any()); /* a bad list trusts nothing */
    assert_int_equal(trusted_proxies_set("10.0.0.1/8", err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_int_equal(trusted_proxies_set("10.0.0.0/8,,", err, sizeof(err)), ZTB_ERR_INVALID_ARG);
}

static void test_rightmost_untrusted_hop(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(trusted_proxies_set("10.0.0.0/8", err, sizeof(err)), ZTB_OK);
    uint8_t fam, addr[16];
    client(LB, "203.0.113.9", 0, &fam, addr);
    expect4(fam, addr, 203, 0, 113, 9);
    /* the client wrote a fake first hop; the proxies appended the truth */
    client(LB, "127.0.0.1, 203.0.113.9, 10.1.2.3", 0, &fam, addr);
    expect4(fam, addr, 203, 0, 113, 9);
    /* only trusted hops: the leftmost */
    client(LB, "10.9.9.9,10.1.1.1", 0, &fam, addr);
    expect4(fam, addr, 10, 9, 9, 9);
    /* IPv4-mapped IPv6 in the header is IPv4 */
    client(LB, "::ffff:203.0.113.10", 0, &fam, addr);
    expect4(fam, addr, 203, 0, 113, 10);
    /* no header: the proxy itself */
    client(LB, NULL, 0, &fam, addr);
    expect4(fam, addr, 10, 0, 0, 5);
}

static void test_untrusted_peer_header_ignored(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(trusted_proxies_set("10.0.0.0/8", err, sizeof(err)), ZTB_OK);
    uint8_t fam, addr[16];
    /* attack: claim to come from inside */
    client(OUTSIDE, "10.1.2.3", 0, &fam, addr);
    expect4(fam, addr, 198, 51, 100, 7);
    client(OUTSIDE, "garbage", 1, &fam, addr);
    expect4(fam, addr, 198, 51, 100, 7);
    /* no trusted proxies at all: the header never counts */
    assert_int_equal(trusted_proxies_set("", err, sizeof(err)), ZTB_OK);
    client(LB, "203.0.113.9", 0, &fam, addr);
    expect4(fam, addr, 10, 0, 0, 5);
}

static void test_malformed_from_trusted_gives_nothing(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(trusted_proxies_set("10.0.0.0/8", err, sizeof(err)), ZTB_OK);
    static const char *const bad[] = {"",          "nope",          "203.0.113.9:443",
                                      "1.2.3.4,,", "203.0.113.999", "203.0.113.9, "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t fam = 9, addr[16];
        client(LB, bad[i], 0, &fam, addr);
        if (fam != 0)
            fail_msg("'%s' gave an address", bad[i]);
    }
    uint8_t fam = 9, addr[16];
    client(LB, "203.0.113.9", 1, &fam, addr); /* sent twice */
    assert_int_equal(fam, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_parsing),
        cmocka_unit_test(test_rightmost_untrusted_hop),
        cmocka_unit_test(test_untrusted_peer_header_ignored),
        cmocka_unit_test(test_malformed_from_trusted_gives_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
