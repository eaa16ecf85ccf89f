/*
 * test_store_baseline.c - learning windows, baselines, activity records,
 * agent metadata and unknown clients (store_baseline.c) against a real
 * redis-server; the issue script's side is test_baseline (integration).
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

#include "broker/store/store.h"
#include "broker/store/store_baseline.h"
#include "store_fixture.h"

/* HSET key field value on a connection of its own. */
static void hset(const char *key, const char *field, const char *value)
{
    freeReplyObject(cmd("HSET %s %s %s", key, field, value));
}

/* 1 if the hash key has field, 0 if not. */
static int hexists(const char *key, const char *field)
{
    redisReply *r = cmd("HEXISTS %s %s", key, field);
    int n = r != NULL && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    freeReplyObject(r);
    return n;
}

static void test_resource_prefix(void **state)
{
    (void)state;
    char p[STORE_BL_PREFIX_MAX + 1];
    store_resource_prefix("crm://accounts/42", p);
    assert_string_equal(p, "crm://accounts/");
    store_resource_prefix("plain", p);
    assert_string_equal(p, "");
    store_resource_prefix(NULL, p);
    assert_string_equal(p, "");
    /* too long: cut on a UTF-8 boundary, never inside "é" */
    char long_res[300];
    memset(long_res, 'a', sizeof(long_res));
    memcpy(long_res + STORE_BL_PREFIX_MAX - 1, "\xc3\xa9", 2);
    long_res[250] = '/';
    long_res[299] = '\0';
    store_resource_prefix(long_res, p);
    assert_int_equal(strlen(p), STORE_BL_PREFIX_MAX - 1);
}

static void test_start_and_get(void **state)
{
    (void)state;
    int64_t until = 0;
    assert_int_equal(store_baseline_start("ghost", 60, 1, &until), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_baseline_start("Bad Name", 60, 1, &until), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_agent_add("learner", 1), ZTB_OK);
    assert_int_equal(store_baseline_start("learner", 0, 1, &until), ZTB_ERR_INVALID_ARG);
    json_t *o = NULL;
    assert_int_equal(store_baseline_get("learner", &o), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(o, "phase")), "none");
    json_decref(o);
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(store_baseline_start("learner", 2 * 86400 + 1, 1, &until), ZTB_OK);
    assert_true(until >= now + 2 * 86400 && until <= now + 2 * 86400 + 5);
    /* only_if_new: a second enrollment keeps the window */
    int64_t again = 0;
    assert_int_equal(store_baseline_start("learner", 60, 1, &again), ZTB_OK);
    assert_int_equal(again, 0);
    hset("ztb:{learner}:bl", "a:crm:read", "1700000001");
    hset("ztb:{learner}:bl", "u:crm", "-1700000000");
    hset("ztb:{learner}:bl", "h:5", "3");
    assert_int_equal(store_baseline_get("learner", &o), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(o, "phase")), "learning");
    assert_int_equal(json_integer_value(json_object_get(o, "days")), 3);
    json_t *a = json_array_get(json_object_get(o, "actions"), 0);
    assert_string_equal(json_string_value(json_object_get(a, "value")), "crm:read");
    assert_int_equal(json_integer_value(json_object_get(a, "learned_at")), 1700000001);
    a = json_array_get(json_object_get(o, "audiences"), 0);
    assert_int_equal(json_integer_value(json_object_get(a, "first_seen")), 1700000000);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(o, "hours"), 5)), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "tokens_learned")), 3);
    json_decref(o);
    int64_t learned = 0, distinct[3] = {9, 9, 9};
    hset("ztb:{learner}:bl", "ka", "1");
    hset("ztb:{learner}:bl", "h:6", "2");
    assert_int_equal(store_baseline_counts("learner", &learned, distinct), ZTB_OK);
    assert_int_equal(learned, 5);
    assert_int_equal(distinct[0], 1);
    assert_int_equal(distinct[1], 0);
    /* relearn drops what was learned */
    assert_int_equal(store_baseline_start("learner", 60, 0, &until), ZTB_OK);
    assert_int_equal(store_baseline_get("learner", &o), ZTB_OK);
    assert_int_equal(json_array_size(json_object_get(o, "actions")), 0);
    json_decref(o);
    assert_int_equal(store_baseline_get("ghost", &o), ZTB_ERR_NOT_FOUND);
}

static void test_activity_and_meta(void **state)
{
    (void)state;
    int64_t last = -1, day = -1;
    assert_int_equal(store_activity_get("quiet", &last, &day), ZTB_OK);
    assert_int_equal(last, 0);
    assert_int_equal(day, 0);
    long long hr = (long long)time(NULL) / 3600;
    char h[32], old[32];
    snprintf(h, sizeof(h), "%lld", hr);
    snprintf(old, sizeof(old), "%lld", hr - 30);
    hset("ztb:{busy}:seen", h, "5");
    hset("ztb:{busy}:seen", old, "100"); /* older than a day */
    hset("ztb:{busy}:seen", "last", "1800000000");
    assert_int_equal(store_activity_get("busy", &last, &day), ZTB_OK);
    assert_int_equal(last, 1800000000);
    assert_int_equal(day, 5);

    /* the last hour, in 5-minute slots: issued (i:) and refused (d:) */
    int64_t now = (int64_t)time(NULL);
    long long q = (long long)now / STORE_ACTIVITY_SLOT_S;
    char f[48];
    snprintf(f, sizeof(f), "i:%lld", q);
    hset("ztb:{busy}:seen", f, "3");
    snprintf(f, sizeof(f), "i:%lld", q - (STORE_ACTIVITY_SLOTS - 1));
    hset("ztb:{busy}:seen", f, "4");
    snprintf(f, sizeof(f), "i:%lld", q - STORE_ACTIVITY_SLOTS); /* over an hour ago */
    hset("ztb:{busy}:seen", f, "50");
    hset("ztb:{busy}:seen", "i:junk", "7");
    struct store_activity act;
    assert_int_equal(store_activity_denied("busy", now), ZTB_OK);
    assert_int_equal(store_activity_denied("busy", now), ZTB_OK);
    assert_int_equal(store_activity_denied("busy", now - 3600), ZTB_OK); /* an hour ago */
    assert_int_equal(store_activity_read("busy", now, &act), ZTB_OK);
    assert_int_equal(act.tokens_hour, 7);
    assert_int_equal(act.denied_hour, 2);
    assert_int_equal(act.tokens_day, 5); /* the slots are not hours */
    assert_int_equal(act.last_seen, 1800000000);
    /* a new slot's first refusal drops the slots an hour old */
    assert_int_equal(store_activity_denied("busy", now + STORE_ACTIVITY_SLOT_S), ZTB_OK);
    snprintf(f, sizeof(f), "i:%lld", q - STORE_ACTIVITY_SLOTS);
    assert_int_equal(hexists("ztb:{busy}:seen", f), 0);
    assert_int_equal(hexists("ztb:{busy}:seen", "i:junk"), 1); /* not a slot: left alone */
    assert_int_equal(store_activity_denied("bad name", now), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_activity_read("quiet", now, &act), ZTB_OK);
    assert_int_equal(act.tokens_hour + act.denied_hour, 0);

    char owner[STORE_OWNER_MAX + 1], desc[STORE_DESCRIPTION_MAX + 1];
    assert_int_equal(store_agent_set_meta("ghost", "x", NULL), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_agent_add("owned", 1), ZTB_OK);
    assert_int_equal(store_agent_meta("owned", owner, desc), ZTB_OK);
    assert_string_equal(owner, "");
    assert_int_equal(store_agent_set_meta("owned", "team a", "does b"), ZTB_OK);
    assert_int_equal(store_agent_set_meta("owned", NULL, "does c"), ZTB_OK);
    assert_int_equal(store_agent_meta("owned", owner, desc), ZTB_OK);
    assert_string_equal(owner, "team a");
    assert_string_equal(desc, "does c");
    char big[STORE_OWNER_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(store_agent_set_meta("owned", big, NULL), ZTB_ERR_INVALID_ARG);
}

static void test_unknown_clients(void **state)
{
    (void)state;
    assert_true(store_source_label_ok("10.0.0.1"));
    assert_true(store_source_label_ok("2001:db8::1"));
    assert_false(store_source_label_ok("a|b"));
    assert_false(store_source_label_ok(""));
    assert_false(store_source_label_ok("has space"));
    int64_t n = 0;
    assert_int_equal(store_unknown_client_count("no_token", "a|b", &n), ZTB_ERR_INVALID_ARG);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(store_unknown_client_count("no_token", "10.0.0.1", &n), ZTB_OK);
        assert_int_equal(n, i);
    }
    /* bounded: beyond the cap, new sources share one overflow field */
    for (unsigned i = 0; i < STORE_UNKNOWN_CAP + 5; i++) {
        char src[32];
        snprintf(src, sizeof(src), "s%u", i);
        assert_int_equal(store_unknown_client_count("foreign_token", src, &n), ZTB_OK);
    }
    assert_int_equal(cmd_int("HLEN %s", "ztb:{unknown}:clients"), STORE_UNKNOWN_CAP + 1);
    json_t *arr = NULL;
    assert_int_equal(store_unknown_clients(&arr), ZTB_OK);
    assert_int_equal(json_array_size(arr), STORE_UNKNOWN_CAP + 1);
    json_decref(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resource_prefix),
        cmocka_unit_test(test_start_and_get),
        cmocka_unit_test(test_activity_and_meta),
        cmocka_unit_test(test_unknown_clients),
    };
    return cmocka_run_group_tests(tests, store_setup, store_teardown);
}
