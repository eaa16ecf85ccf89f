/* test_cond.c - condition values and their evaluation, including missing data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/cond.h"
#include "policy_fixtures.h"

static void test_hhmm_offset_day(void **state)
{
    (void)state;
    uint16_t m;
    assert_int_equal(policy_parse_hhmm("00:00", &m), ZTB_OK);
    assert_int_equal(m, 0);
    assert_int_equal(policy_parse_hhmm("08:30", &m), ZTB_OK);
    assert_int_equal(m, 510);
    assert_int_equal(policy_parse_hhmm("24:00", &m), ZTB_OK);
    assert_int_equal(m, 1440);
    const char *bad[] = {"24:01", "8:30", "08:60", "25:00", "08-30", "0830", "", "08:3a", "+8:30"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(policy_parse_hhmm(bad[i], &m), ZTB_ERR_MALFORMED);
    assert_int_equal(policy_parse_hhmm(NULL, &m), ZTB_ERR_MALFORMED);

    int16_t o;
    assert_int_equal(policy_parse_utc_offset("+01:00", &o), ZTB_OK);
    assert_int_equal(o, 60);
    assert_int_equal(policy_parse_utc_offset("-05:30", &o), ZTB_OK);
    assert_int_equal(o, -330);
    assert_int_equal(policy_parse_utc_offset("+14:00", &o), ZTB_OK);
    assert_int_equal(policy_parse_utc_offset("+14:01", &o), ZTB_ERR_MALFORMED);
    assert_int_equal(policy_parse_utc_offset("01:00", &o), ZTB_ERR_MALFORMED);
    assert_int_equal(policy_parse_utc_offset("Z", &o), ZTB_ERR_MALFORMED);

    unsigned d;
    assert_int_equal(policy_parse_day("sun", &d), ZTB_OK);
    assert_int_equal(d, 0);
    assert_int_equal(policy_parse_day("sat", &d), ZTB_OK);
    assert_int_equal(d, 6);
    assert_int_equal(policy_parse_day("Mon", &d), ZTB_ERR_MALFORMED);
    assert_int_equal(policy_parse_day("monday", &d), ZTB_ERR_MALFORMED);
}

static void test_times(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(policy_parse_time("1970-01-01T00:00:00Z", &t), ZTB_OK);
    assert_int_equal(t, 0);
    assert_int_equal(policy_parse_time("2024-02-29T12:00:00Z", &t), ZTB_OK);
    assert_int_equal(t, 1709208000);
    assert_int_equal(policy_parse_time("2000-02-29T00:00:00Z", &t), ZTB_OK); /* 400-year leap */
    const char *bad[] = {
        "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
        "2024-04-31T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:60Z",
        "2024-01-01 00:00:00Z", "2024-01-01T00:00:00",  "2024-01-01T00:00:00+01:00",
        "1969-12-31T23:59:59Z", "2024-1-01T00:00:00Z",  ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (policy_parse_time(bad[i], &t) != ZTB_ERR_MALFORMED)
            fail_msg("accepted %s", bad[i]);
    /* format and parse are inverses across many days, including far ahead */
    char buf[32];
    for (int64_t x = 0; x < 4102444800LL; x += 86400 * 37 + 3671) {
        policy_format_time(x, buf, sizeof(buf));
        assert_int_equal(policy_parse_time(buf, &t), ZTB_OK);
        assert_int_equal(t, x);
    }
    policy_format_time(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59Z");
}

static void test_ip_parse(void **state)
{
    (void)state;
    policy_ip ip;
    assert_int_equal(policy_ip_parse("10.20.1.2", &ip), ZTB_OK);
    assert_int_equal(ip.family, 4);
    assert_int_equal(ip.addr[0], 10);
    assert_int_equal(ip.addr[3], 2);
    assert_int_equal(policy_ip_parse("fd00:20::1", &ip), ZTB_OK);
    assert_int_equal(ip.family, 6);
    assert_int_equal(policy_ip_parse("::ffff:10.20.1.2", &ip), ZTB_OK);
    assert_int_equal(ip.family, 4); /* mapped becomes v4 */
    assert_int_equal(ip.addr[1], 20);
    const char *bad[] = {
        "",          "10.20.1",   "10.20.1.256", "010.20.1.2", "10.20.1.2/32", "fe80::1%eth0",
        " 10.0.0.1", "10.0.0.1 ", "::g",         NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(policy_ip_parse(bad[i], &ip), ZTB_ERR_MALFORMED);
        assert_int_equal(ip.family, 0);
    }
    char longs[200];
    memset(longs, '1', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    assert_int_equal(policy_ip_parse(longs, &ip), ZTB_ERR_MALFORMED);
}

static void test_cidr(void **state)
{
    (void)state;
    struct policy_cidr c;
    policy_ip ip;
    assert_int_equal(policy_parse_cidr("10.20.0.0/16", &c), ZTB_OK);
    assert_int_equal(c.prefix, 16);
    policy_ip_parse("10.20.255.255", &ip);
    assert_true(policy_cidr_contains(&c, &ip));
    policy_ip_parse("10.21.0.0", &ip);
    assert_false(policy_cidr_contains(&c, &ip));
    policy_ip_parse("::ffff:10.20.0.1", &ip);
    assert_true(policy_cidr_contains(&c, &ip));
    policy_ip_parse("fd00:20::1", &ip);
    assert_false(policy_cidr_contains(&c, &ip)); /* other family */

    assert_int_equal(policy_parse_cidr("10.20.0.0/13", &c), ZTB_ERR_MALFORMED); /* host bits */
    assert_int_equal(policy_parse_cidr("10.16.0.0/13", &c), ZTB_OK);
    policy_ip_parse("10.23.255.255", &ip);
    assert_true(policy_cidr_contains(&c, &ip));
    policy_ip_parse("10.24.0.0", &ip);
    assert_false(policy_cidr_contains(&c, &ip));

    assert_int_equal(policy_parse_cidr("0.0.0.0/0", &c), ZTB_OK);
    policy_ip_parse("203.0.113.9", &ip);
    assert_true(policy_cidr_contains(&c, &ip));
    assert_int_equal(policy_parse_cidr("192.0.2.7", &c), ZTB_OK); /* bare: /32 */
    assert_int_equal(c.prefix, 32);
    assert_int_equal(policy_parse_cidr("2001:db8::/32", &c), ZTB_OK);
    policy_ip_parse("2001:db8:ffff::1", &ip);
    assert_true(policy_cidr_contains(&c, &ip));
    policy_ip_parse("2001:db9::1", &ip);
    assert_false(policy_cidr_contains(&c, &ip));
    assert_int_equal(policy_parse_cidr("::/0", &c), ZTB_OK);
    assert_int_equal(policy_parse_cidr("::1", &c), ZTB_OK);
    assert_int_equal(c.prefix, 128);

    const char *bad[] = {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08",  "10.0.0.0/-1", "::/129",
                         "10.0.0.1/8",  "x/8",       "10.0.0.0/8/8", "/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (policy_parse_cidr(bad[i], &c) != ZTB_ERR_MALFORMED)
            fail_msg("accepted %s", bad[i]);
}

/* A CIDR written in IPv4-mapped form means the IPv4 addresses, as a mapped
 * client address does (docs/policy.md): a deny rule on
 * "::ffff:192.0.2.0/120" fires for 192.0.2.5 and for ::ffff:192.0.2.5.
 * Before, such a CIDR stayed IPv6 while every client address was made IPv4,
 * so it matched nothing, not even the very address written in it. */
static void test_cidr_mapped(void **state)
{
    (void)state;
    struct policy_cidr c;
    policy_ip ip;
    assert_int_equal(policy_parse_cidr("::ffff:192.0.2.0/120", &c), ZTB_OK);
    assert_int_equal(c.family, 4);
    assert_int_equal(c.prefix, 24);
    policy_ip_parse("192.0.2.5", &ip);
    assert_true(policy_cidr_contains(&c, &ip));
    policy_ip_parse("::ffff:192.0.2.5", &ip);
    assert_true(policy_cidr_contains(&c, &ip));
    policy_ip_parse("192.0.3.5", &ip);
    assert_false(policy_cidr_contains(&c, &ip));
    /* a bare mapped address is that one IPv4 address */
    assert_int_equal(policy_parse_cidr("::ffff:198.51.100.7", &c), ZTB_OK);
    assert_int_equal(c.prefix, 32);
    policy_ip_parse("::ffff:198.51.100.7", &ip);
    assert_true(policy_cidr_contains(&c, &ip));
    policy_ip_parse("198.51.100.8", &ip);
    assert_false(policy_cidr_contains(&c, &ip));
    /* the whole mapped range is every IPv4 address */
    assert_int_equal(policy_parse_cidr("::ffff:0.0.0.0/96", &c), ZTB_OK);
    policy_ip_parse("203.0.113.9", &ip);
    assert_true(policy_cidr_contains(&c, &ip));
    /* host bits are still refused */
    assert_int_equal(policy_parse_cidr("::ffff:192.0.2.1/120", &c), ZTB_ERR_MALFORMED);
    /* other IPv6 networks stay IPv6 */
    assert_int_equal(policy_parse_cidr("2001:db8::/32", &c), ZTB_OK);
    assert_int_equal(c.family, 6);

    /* end to end: the deny wins over the allow */
    char *doc =
        fx_doc("", "{\"id\": \"deny-net\", \"effect\": \"deny\", \"agents\": [\"*\"], \"actions\": "
                   "[\"*\"], \"audiences\": [\"**\"], \"resources\": [\"**\"], \"conditions\": "
                   "{\"source_ip\": [\"::ffff:192.0.2.0/120\"]}},"
                   "{\"id\": \"all\", \"effect\": \"allow\", \"agents\": [\"*\"], \"actions\": "
                   "[\"*\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]}");
    policy *p = fx_load(doc);
    assert_non_null(p);
    policy_request rq = {.agent = "a", .action = "s:v", .audience = "aud", .resource = "r"};
    policy_decision d;
    policy_ip_parse("192.0.2.5", &rq.ctx.source);
    assert_int_equal(policy_eval(p, &rq, &d), ZTB_OK);
    assert_int_equal(d.effect, POLICY_DENY);
    assert_string_equal(d.rule, "deny-net");
    policy_ip_parse("203.0.113.9", &rq.ctx.source);
    assert_int_equal(policy_eval(p, &rq, &d), ZTB_OK);
    assert_int_equal(d.effect, POLICY_ALLOW);
    policy_unref(p);
    free(doc);
}

/* 2025-06-02 was a Monday. */
#define MON_0000 1748822400LL

static void test_windows(void **state)
{
    (void)state;
    struct policy_window w = {.days = 0x3e /* mon-fri */, .start = 8 * 60, .end = 18 * 60};
    assert_false(policy_window_contains(&w, MON_0000 + 7 * 3600 + 3599));
    assert_true(policy_window_contains(&w, MON_0000 + 8 * 3600));
    assert_true(policy_window_contains(&w, MON_0000 + 18 * 3600 - 1));
    assert_false(policy_window_contains(&w, MON_0000 + 18 * 3600));         /* end is exclusive */
    assert_false(policy_window_contains(&w, MON_0000 - 86400 + 10 * 3600)); /* Sunday */
    assert_true(policy_window_contains(&w, MON_0000 + 4 * 86400 + 10 * 3600));  /* Friday */
    assert_false(policy_window_contains(&w, MON_0000 + 5 * 86400 + 10 * 3600)); /* Saturday */

    /* +01:00: 07:30 UTC Monday is 08:30 local */
    w.offset = 60;
    assert_true(policy_window_contains(&w, MON_0000 + 7 * 3600 + 1800));
    /* -05:00: 02:00 UTC Monday is 21:00 Sunday local: outside */
    w.offset = -300;
    assert_false(policy_window_contains(&w, MON_0000 + 13 * 3600 - 1));
    assert_true(policy_window_contains(&w, MON_0000 + 13 * 3600));

    /* overnight Friday 22:00 - 06:00: Saturday 03:00 is inside, Friday 03:00 is not */
    struct policy_window n = {.days = 1u << 5, .start = 22 * 60, .end = 6 * 60};
    int64_t fri = MON_0000 + 4 * 86400;
    assert_true(policy_window_contains(&n, fri + 23 * 3600));
    assert_true(policy_window_contains(&n, fri + 86400 + 3 * 3600));
    assert_false(policy_window_contains(&n, fri + 3 * 3600));
    assert_false(policy_window_contains(&n, fri + 12 * 3600));

    /* before 1970 the arithmetic still holds: 1969-12-31 was a Wednesday */
    struct policy_window wed = {.days = 1u << 3, .start = 0, .end = 1440};
    assert_true(policy_window_contains(&wed, -1));
    assert_false(policy_window_contains(&wed, 0));
}

static struct policy_limit limit(const char *const *seg, uint32_t n, int has_min, double min,
                                 int has_max, double max, const char *type)
{
    struct policy_limit l = {.seg = seg, .n_seg = n, .type = type};
    l.has_min = (uint8_t)has_min;
    l.has_max = (uint8_t)has_max;
    l.min = min;
    l.max = max;
    /* as load.c computes them */
    l.imin = (int64_t)min + ((double)(int64_t)min < min);
    l.imax = (int64_t)max - ((double)(int64_t)max > max);
    return l;
}

static void test_limits(void **state)
{
    (void)state;
    static const char *const amount[] = {"amount"};
    static const char *const nested[] = {"limits", "amount"};
    struct policy_limit le50 = limit(amount, 1, 0, 0, 1, 50, NULL);
    struct {
        const char *ad;
        policy_tri allow, deny;
    } v[] = {
        {"[{\"amount\": 50}]", POLICY_TRUE, POLICY_TRUE},
        {"[{\"amount\": 50.0}]", POLICY_TRUE, POLICY_TRUE},
        {"[{\"amount\": 50.000001}]", POLICY_FALSE, POLICY_FALSE},
        {"[{\"amount\": 51}]", POLICY_FALSE, POLICY_FALSE},
        {"[{\"amount\": -1e300}]", POLICY_TRUE, POLICY_TRUE},
        {"[{\"amount\": \"20\"}]", POLICY_UNKNOWN, POLICY_UNKNOWN}, /* a string is not a number */
        {"[{\"amount\": true}]", POLICY_UNKNOWN, POLICY_UNKNOWN},
        {"[{\"amount\": null}]", POLICY_UNKNOWN, POLICY_UNKNOWN},
        {"[{\"other\": 1}]", POLICY_UNKNOWN, POLICY_UNKNOWN},
        {"[]", POLICY_UNKNOWN, POLICY_UNKNOWN},
        {"{\"amount\": 10}", POLICY_TRUE, POLICY_TRUE},                      /* one object */
        {"[{\"amount\": 10}, {\"amount\": 90}]", POLICY_FALSE, POLICY_TRUE}, /* every / any */
        {"[{\"amount\": 10}, {\"x\": 1}]", POLICY_UNKNOWN, POLICY_TRUE},
        {"[{\"amount\": 90}, {\"x\": 1}]", POLICY_FALSE, POLICY_UNKNOWN},
        {"[5]", POLICY_UNKNOWN, POLICY_UNKNOWN},
        {"\"amount\"", POLICY_UNKNOWN, POLICY_UNKNOWN},
        {"[{\"amount\": 9223372036854775807}]", POLICY_FALSE, POLICY_FALSE},
        {"[{\"amount\": -9223372036854775808}]", POLICY_TRUE, POLICY_TRUE},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        json_t *ad = fx_json(v[i].ad);
        policy_tri a = policy_limit_eval(&le50, ad, 0), d = policy_limit_eval(&le50, ad, 1);
        if (a != v[i].allow || d != v[i].deny)
            fail_msg("%s: allow %d deny %d", v[i].ad, a, d);
        json_decref(ad);
    }
    assert_int_equal(policy_limit_eval(&le50, NULL, 0), POLICY_UNKNOWN);
    assert_int_equal(policy_limit_eval(&le50, NULL, 1), POLICY_UNKNOWN);

    /* nested path and a type filter */
    struct policy_limit typed = limit(nested, 2, 1, 1, 1, 100, "payment");
    json_t *ad = fx_json("[{\"type\": \"payment\", \"limits\": {\"amount\": 99}},"
                         " {\"type\": \"note\", \"limits\": {\"amount\": 1000}}]");
    assert_int_equal(policy_limit_eval(&typed, ad, 0), POLICY_TRUE);
    json_decref(ad);
    ad = fx_json("[{\"type\": \"note\", \"limits\": {\"amount\": 5}}]");
    assert_int_equal(policy_limit_eval(&typed, ad, 0), POLICY_UNKNOWN); /* none selected */
    json_decref(ad);
    ad = fx_json("[{\"type\": \"payment\", \"limits\": {\"amount\": 0}}]");
    assert_int_equal(policy_limit_eval(&typed, ad, 0), POLICY_FALSE); /* below min */
    json_decref(ad);
    ad = fx_json("[{\"type\": \"payment\", \"limits\": 5}]");
    assert_int_equal(policy_limit_eval(&typed, ad, 0), POLICY_UNKNOWN);
    json_decref(ad);

    /* fractional bounds against integers: 1.5 <= x <= 2.5 holds only for 2 */
    struct policy_limit frac = limit(amount, 1, 1, 1.5, 1, 2.5, NULL);
    for (int x = 0; x <= 4; x++) {
        json_t *j = json_pack("[{s:i}]", "amount", (json_int_t)x);
        assert_int_equal(policy_limit_eval(&frac, j, 0), x == 2 ? POLICY_TRUE : POLICY_FALSE);
        json_decref(j);
    }
    /* 2^53 edges stay exact for integers */
    struct policy_limit big = limit(amount, 1, 0, 0, 1, 9007199254740992.0, NULL);
    json_t *j = json_pack("[{s:I}]", "amount", (json_int_t)9007199254740993LL);
    assert_int_equal(policy_limit_eval(&big, j, 0), POLICY_FALSE);
    json_decref(j);
    j = json_pack("[{s:I}]", "amount", (json_int_t)9007199254740992LL);
    assert_int_equal(policy_limit_eval(&big, j, 0), POLICY_TRUE);
    json_decref(j);
}

static void test_cond_eval(void **state)
{
    (void)state;
    struct policy_cidr net;
    policy_parse_cidr("10.0.0.0/8", &net);
    static const char *const amount[] = {"amount"};
    struct policy_limit l = limit(amount, 1, 0, 0, 1, 50, NULL);
    const char *ld[] = {"limits[0]: amount <= 50"};
    struct policy_conditions c = {.any = 1,
                                  .n_cidrs = 1,
                                  .cidrs = &net,
                                  .desc_source_ip = "source_ip in [10.0.0.0/8]",
                                  .n_limits = 1,
                                  .limits = &l,
                                  .desc_limits = ld,
                                  .delegation = POLICY_DELEGATION_REQUIRED,
                                  .desc_delegation = "delegation required"};
    policy_context ctx = {.now = 1000, .act = "spiffe://example.org/user/alice"};
    json_t *ok = fx_json("[{\"amount\": 10}]");
    const char *failed = NULL;

    /* no source address: UNKNOWN - an allow does not apply, a deny does */
    ctx.authorization_details = ok;
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_ALLOW, &failed), POLICY_UNKNOWN);
    assert_string_equal(failed, "source_ip in [10.0.0.0/8]");
    policy_ip_parse("10.1.2.3", &ctx.source);
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_ALLOW, &failed), POLICY_TRUE);
    assert_null(failed);
    /* FALSE beats UNKNOWN, and names the first false condition */
    ctx.act = NULL;
    ctx.source.family = 0;
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_DENY, &failed), POLICY_FALSE);
    assert_string_equal(failed, "delegation required");
    ctx.act = "x";
    policy_ip_parse("192.168.0.1", &ctx.source);
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_ALLOW, &failed), POLICY_FALSE);
    assert_string_equal(failed, "source_ip in [10.0.0.0/8]");
    /* missing authorization_details */
    policy_ip_parse("10.1.2.3", &ctx.source);
    ctx.authorization_details = NULL;
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_ALLOW, &failed), POLICY_UNKNOWN);
    assert_string_equal(failed, "limits[0]: amount <= 50");
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_DENY, &failed), POLICY_UNKNOWN);
    /* no conditions at all: TRUE */
    struct policy_conditions none = {0};
    assert_int_equal(policy_cond_eval(&none, &ctx, POLICY_ALLOW, &failed), POLICY_TRUE);
    /* not_before / not_after inclusive edges */
    struct policy_conditions t = {.any = 1,
                                  .has_not_before = 1,
                                  .not_before = 100,
                                  .desc_not_before = "nb",
                                  .has_not_after = 1,
                                  .not_after = 200,
                                  .desc_not_after = "na"};
    ctx.now = 99;
    assert_int_equal(policy_cond_eval(&t, &ctx, POLICY_ALLOW, &failed), POLICY_FALSE);
    assert_string_equal(failed, "nb");
    ctx.now = 100;
    assert_int_equal(policy_cond_eval(&t, &ctx, POLICY_ALLOW, NULL), POLICY_TRUE);
    ctx.now = 200;
    assert_int_equal(policy_cond_eval(&t, &ctx, POLICY_ALLOW, NULL), POLICY_TRUE);
    ctx.now = 201;
    assert_int_equal(policy_cond_eval(&t, &ctx, POLICY_ALLOW, &failed), POLICY_FALSE);
    assert_string_equal(failed, "na");
    json_decref(ok);
}

/* "restricted": delegated, by a subject token whose may_act named the agent */
static void test_delegation_restricted(void **state)
{
    (void)state;
    struct policy_conditions c = {.any = 1,
                                  .delegation = POLICY_DELEGATION_RESTRICTED,
                                  .desc_delegation = "delegation restricted"};
    policy_context ctx = {.now = 1000};
    const char *failed = NULL;
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_ALLOW, &failed), POLICY_FALSE);
    assert_string_equal(failed, "delegation restricted");
    ctx.act_restricted = 1; /* not delegated at all: still false */
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_ALLOW, &failed), POLICY_FALSE);
    ctx.act = "spiffe://ztb.local/agent/alice";
    ctx.act_restricted = 0; /* delegated, but anyone could have presented the token */
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_ALLOW, &failed), POLICY_FALSE);
    ctx.act_restricted = 1;
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_ALLOW, &failed), POLICY_TRUE);
    assert_null(failed);
    /* "required" is satisfied either way */
    c.delegation = POLICY_DELEGATION_REQUIRED;
    ctx.act_restricted = 0;
    assert_int_equal(policy_cond_eval(&c, &ctx, POLICY_ALLOW, &failed), POLICY_TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hhmm_offset_day),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_ip_parse),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_cidr_mapped),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_cond_eval),
        cmocka_unit_test(test_delegation_restricted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
