/* test_iplimit.c - the per-address GCRA: burst, refill, Retry-After, IPv6 /64,
 * addresses kept apart, a full table, unix peers and "off". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/http/iplimit.h"

static struct sockaddr_in v4(const char *a)
{
    struct sockaddr_in s;
    memset(&s, 0, sizeof(s));
    s.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
    return s;
}

static struct sockaddr_in6 v6(const char *a)
{
    struct sockaddr_in6 s;
    memset(&s, 0, sizeof(s));
    s.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
    return s;
}

#define SA(x) ((const struct sockaddr *)(const void *)&(x))

static void test_burst_then_rate(void **state)
{
    (void)state;
    struct iplimit *l;
    assert_int_equal(iplimit_new(10, 5, 64, &l), ZTB_OK); /* 10/s, bursts of 5 */
    struct sockaddr_in a = v4("192.0.2.1");
    uint32_t wait;
    int64_t t = 1000000000;
    for (int i = 0; i < 5; i++)
        assert_true(iplimit_take(l, SA(a), t, &wait));
    assert_false(iplimit_take(l, SA(a), t, &wait));
    assert_int_equal(wait, 100); /* one more in 1/10 s */
    /* refused requests cost nothing: still 100 ms */
    for (int i = 0; i < 100; i++)
        assert_false(iplimit_take(l, SA(a), t, &wait));
    assert_int_equal(wait, 100);
    assert_true(iplimit_take(l, SA(a), t + 100000, &wait));
    assert_false(iplimit_take(l, SA(a), t + 100000, &wait));
    /* another address has its own budget */
    struct sockaddr_in b = v4("192.0.2.2");
    assert_true(iplimit_take(l, SA(b), t, &wait));
    /* after a long quiet spell, a full burst again, not more */
    int ok = 0;
    for (int i = 0; i < 20; i++)
        ok += iplimit_take(l, SA(a), t + 60000000, &wait);
    assert_int_equal(ok, 5);
    iplimit_free(l);
}

static void test_ipv6_by_prefix_and_mapped(void **state)
{
    (void)state;
    struct iplimit *l;
    assert_int_equal(iplimit_new(1, 2, 64, &l), ZTB_OK);
    uint32_t wait;
    struct sockaddr_in6 a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9");
    struct sockaddr_in6 c = v6("2001:db8:1:3::1");
    assert_true(iplimit_take(l, SA(a), 1, &wait));
    assert_true(iplimit_take(l, SA(b), 1, &wait));
    assert_false(iplimit_take(l, SA(a), 1, &wait)); /* the same /64 */
    assert_int_equal(wait, 1000);
    assert_true(iplimit_take(l, SA(c), 1, &wait)); /* another /64 */
    /* an IPv4 address seen as v4-mapped IPv6 is the same address */
    struct sockaddr_in p = v4("198.51.100.7");
    struct sockaddr_in6 q = v6("::ffff:198.51.100.7");
    assert_true(iplimit_take(l, SA(p), 1, &wait));
    assert_true(iplimit_take(l, SA(q), 1, &wait));
    assert_false(iplimit_take(l, SA(p), 1, &wait));
    iplimit_free(l);
}

static void test_full_table_and_off(void **state)
{
    (void)state;
    struct iplimit *l;
    assert_int_equal(iplimit_new(1, 1, 4, &l), ZTB_OK); /* one bucket of 4 */
    uint32_t wait;
    char ip[32];
    /* many addresses in a small table: each gets its first request */
    for (int i = 0; i < 1000; i++) {
        snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250);
        struct sockaddr_in a = v4(ip);
        assert_true(iplimit_take(l, SA(a), 5, &wait));
    }
    /* a unix-socket peer (NULL) is not limited */
    for (int i = 0; i < 10; i++)
        assert_true(iplimit_take(l, NULL, 5, &wait));
    iplimit_free(l);
    assert_int_equal(iplimit_new(0, 0, 64, &l), ZTB_OK); /* off */
    struct sockaddr_in a = v4("192.0.2.1");
    for (int i = 0; i < 1000; i++)
        assert_true(iplimit_take(l, SA(a), 5, &wait));
    iplimit_free(l);
    iplimit_free(NULL);
    assert_true(iplimit_now_us() > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_ipv6_by_prefix_and_mapped),
        cmocka_unit_test(test_full_table_and_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
