/*
 * test_revevent.c - the revocation events (wire/revevent.c): parsing each
 * kind and each refusal, and the encoder the broker uses writing exactly
 * the documented bytes, which the decoder reads back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wire/revevent.h"

static ztb_err parse(const char *s, struct rev_event *ev)
{
    return rev_event_parse(s, strlen(s), ev);
}

static void test_parse_each_kind(void **state)
{
    (void)state;
    struct rev_event ev;
    assert_int_equal(
        parse("{\"type\":\"jti\",\"id\":\"kq3x9Jd0xV2aR8yQ1sLm7g\",\"exp\":1767225660}", &ev),
        ZTB_OK);
    assert_int_equal(ev.kind, REV_JTI);
    assert_string_equal(ev.id, "kq3x9Jd0xV2aR8yQ1sLm7g");
    assert_int_equal(ev.exp, 1767225660);
    assert_int_equal(
        parse("{\"type\":\"agent\",\"id\":\"billing-bot\",\"gen\":4,\"exp\":1767229200}", &ev),
        ZTB_OK);
    assert_int_equal(ev.kind, REV_AGENT);
    assert_int_equal(ev.gen, 4);
    assert_int_equal(parse("{\"type\":\"audience\",\"id\":\"payments\",\"exp\":0}", &ev), ZTB_OK);
    assert_int_equal(ev.kind, REV_AUDIENCE);
    assert_int_equal(ev.exp, 0);
    assert_int_equal(parse("{\"type\":\"audience\",\"id\":\"payments\",\"lifted\":true}", &ev),
                     ZTB_OK);
    assert_true(ev.lifted);
    assert_int_equal(parse("{\"type\":\"key\",\"id\":\"kid1\",\"exp\":5,\"note\":[1]}", &ev),
                     ZTB_OK);
    assert_int_equal(ev.kind, REV_KEY);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    struct rev_event ev;
    struct {
        const char *s;
        ztb_err want;
    } cases[] = {
        {"{\"type\":\"session\",\"id\":\"x\",\"exp\":5}", ZTB_ERR_UNSUPPORTED},
        {"{\"id\":\"x\",\"exp\":5}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"jti\",\"exp\":5}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"jti\",\"id\":\"\",\"exp\":5}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"jti\",\"id\":\"a\\nb\",\"exp\":5}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"jti\",\"id\":\"x\"}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"jti\",\"id\":\"x\",\"exp\":0}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"jti\",\"id\":\"x\",\"exp\":-1}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"jti\",\"id\":\"x\",\"exp\":1.5}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"agent\",\"id\":\"x\",\"exp\":5}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"agent\",\"id\":\"x\",\"gen\":0,\"exp\":5}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"key\",\"id\":\"x\",\"exp\":5,\"lifted\":true}", ZTB_ERR_MALFORMED},
        {"{\"type\":\"jti\",\"id\":\"x\",\"exp\":5,\"exp\":6}", ZTB_ERR_JSON},
        {"{\"type\":\"jti\",\"id\":7,\"exp\":5}", ZTB_ERR_JSON},
        {"[\"jti\"]", ZTB_ERR_JSON},
        {"{\"type\":\"jti\",\"id\":\"x\",\"exp\":5} x", ZTB_ERR_JSON},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ztb_err rv = parse(cases[i].s, &ev);
        if (rv != cases[i].want)
            fail_msg("case %zu %s: got %s", i, cases[i].s, ztb_err_name(rv));
    }
    char big[REV_EVENT_MAX + 2];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse(big, &ev), ZTB_ERR_TOO_LARGE);
}

/* Encode ev into out (NUL-terminated). */
static ztb_err write_event(const struct rev_event *ev, char *out, size_t cap)
{
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, cap);
    ztb_err rv = rev_event_write(ev, &b);
    if (rv == ZTB_OK && ztb_buf_cstr(&b) == NULL)
        rv = ZTB_ERR_TOO_LARGE;
    return rv;
}

static void test_write_documented_bytes(void **state)
{
    (void)state;
    /* docs/protocol.md: compact JSON, members in this order */
    struct {
        struct rev_event ev;
        const char *want;
    } cases[] = {
        {{.kind = REV_JTI, .id = "kq3x9Jd0xV2aR8yQ1sLm7g", .exp = 1767225660},
         "{\"type\":\"jti\",\"id\":\"kq3x9Jd0xV2aR8yQ1sLm7g\",\"exp\":1767225660}"},
        {{.kind = REV_AGENT, .id = "billing-bot", .gen = 4, .exp = 1767229200},
         "{\"type\":\"agent\",\"id\":\"billing-bot\",\"gen\":4,\"exp\":1767229200}"},
        {{.kind = REV_AUDIENCE, .id = "payments", .exp = 99},
         "{\"type\":\"audience\",\"id\":\"payments\",\"exp\":0}"},
        {{.kind = REV_AUDIENCE, .id = "payments", .lifted = 1},
         "{\"type\":\"audience\",\"id\":\"payments\",\"lifted\":true}"},
        {{.kind = REV_KEY, .id = "kid1", .exp = 5}, "{\"type\":\"key\",\"id\":\"kid1\",\"exp\":5}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[REV_EVENT_MAX];
        assert_int_equal(write_event(&cases[i].ev, out, sizeof(out)), ZTB_OK);
        assert_string_equal(out, cases[i].want);
        /* and the decoder reads back what was written */
        struct rev_event back;
        assert_int_equal(parse(out, &back), ZTB_OK);
        assert_int_equal(back.kind, cases[i].ev.kind);
        assert_string_equal(back.id, cases[i].ev.id);
        assert_int_equal(back.lifted, cases[i].ev.lifted);
        if (back.kind == REV_AGENT)
            assert_int_equal(back.gen, cases[i].ev.gen);
        if (back.kind == REV_JTI || back.kind == REV_KEY || back.kind == REV_AGENT)
            assert_int_equal(back.exp, cases[i].ev.exp);
    }
}

static void test_write_escapes_and_refuses(void **state)
{
    (void)state;
    char out[REV_EVENT_MAX];
    struct rev_event ev = {.kind = REV_AUDIENCE, .id = "a\"b\\c"};
    assert_int_equal(write_event(&ev, out, sizeof(out)), ZTB_OK);
    assert_string_equal(out, "{\"type\":\"audience\",\"id\":\"a\\\"b\\\\c\",\"exp\":0}");
    struct rev_event back;
    assert_int_equal(parse(out, &back), ZTB_OK);
    assert_string_equal(back.id, "a\"b\\c");
    /* no id, no kind, no room */
    struct rev_event empty = {.kind = REV_JTI, .exp = 5};
    assert_int_equal(write_event(&empty, out, sizeof(out)), ZTB_ERR_INVALID_ARG);
    struct rev_event nokind = {.id = "x", .exp = 5};
    assert_int_equal(write_event(&nokind, out, sizeof(out)), ZTB_ERR_INVALID_ARG);
    struct rev_event ok = {.kind = REV_JTI, .id = "x", .exp = 5};
    assert_int_not_equal(write_event(&ok, out, 10), ZTB_OK);
}

static void test_agent_prefix_and_script_tail(void **state)
{
    (void)state;
    /* what the broker's script builds: the prefix, then gen and exp */
    char out[REV_EVENT_MAX];
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, sizeof(out));
    assert_int_equal(rev_event_agent_prefix("billing-bot", &b), ZTB_OK);
    ztb_buf_append_str(&b, "4,\"exp\":1767229200}");
    const char *whole = ztb_buf_cstr(&b);
    assert_non_null(whole);
    char full[REV_EVENT_MAX];
    struct rev_event ev = {.kind = REV_AGENT, .id = "billing-bot", .gen = 4, .exp = 1767229200};
    assert_int_equal(write_event(&ev, full, sizeof(full)), ZTB_OK);
    assert_string_equal(whole, full);
    /* the Lua tail appends exactly that shape */
    assert_non_null(strstr(REV_AGENT_EVENT_TAIL_LUA, "',\"exp\":'"));
    ztb_buf_init_fixed(&b, out, sizeof(out));
    assert_int_equal(rev_event_agent_prefix("", &b), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_each_kind),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_write_documented_bytes),
        cmocka_unit_test(test_write_escapes_and_refuses),
        cmocka_unit_test(test_agent_prefix_and_script_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
