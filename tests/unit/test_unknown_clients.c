/*
 * test_unknown_clients.c - a verifier's count of unknown callers
 * (sdk/src/unknown_clients.c): bounded whatever the callers do (a flood of
 * one-off sources never pushes out a busy one, and every caller is counted
 * once, in its source or in "_other"), labels checked, and the report sent
 * to a real Redis as the documented LPUSH + LTRIM, readable by the broker's
 * decoder; a refused report is dropped and counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "sdk/src/unknown_clients.h"
#include "wire/wire.h"

static int64_t count_of(const struct unknown_report *r, enum unknown_reason reason,
                        const char *source)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->c[i].reason == reason && strcmp(r->c[i].source, source) == 0)
            return r->c[i].count;
    return 0;
}

static void test_bounded_top_sources(void **state)
{
    (void)state;
    struct unknown_clients *u;
    assert_int_equal(uc_new("payments", NULL, 0, &u), ZTB_OK);
    for (int i = 0; i < 50; i++)
        uc_note(u, UNKNOWN_NO_TOKEN, "10.0.0.1"); /* the busy one */
    uc_note(u, UNKNOWN_FOREIGN_TOKEN, "10.0.0.1");
    uc_note(u, UNKNOWN_NO_TOKEN, NULL);
    uc_note(u, UNKNOWN_NO_TOKEN, "bad label");
    uc_note(u, UNKNOWN_NO_TOKEN, "_other"); /* a caller cannot pose as the folded count */
    char src[32];
    for (int i = 0; i < 10000; i++) { /* a flood of one-off sources */
        snprintf(src, sizeof(src), "198.51.%d.%d", i / 256, i % 256);
        uc_note(u, UNKNOWN_FOREIGN_TOKEN, src);
    }
    struct unknown_report r;
    uc_take(u, &r);
    assert_string_equal(r.gateway, "payments");
    assert_true(r.n <= UC_TOP + UNKNOWN_REASONS_N);
    assert_int_equal(count_of(&r, UNKNOWN_NO_TOKEN, "10.0.0.1"), 50);
    int64_t total = 0, other = count_of(&r, UNKNOWN_FOREIGN_TOKEN, "_other");
    for (size_t i = 0; i < r.n; i++)
        total += r.c[i].count;
    assert_int_equal(total, 50 + 1 + 3 + 10000); /* nobody lost, nobody twice */
    assert_true(other > 9000);
    struct uc_stats st;
    uc_stats(u, &st);
    assert_int_equal(st.callers[UNKNOWN_NO_TOKEN], 53);
    assert_int_equal(st.callers[UNKNOWN_FOREIGN_TOKEN], 10001);
    assert_true(st.folded >= (uint64_t)other);
    /* the 1-caller sources "unknown" and "invalid" may have been folded; the
     * table is empty after a take */
    uc_take(u, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(uc_flush(u), ZTB_OK); /* nothing, and no pool */
    uc_free(u);
}

static void test_report_to_redis(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    struct redis_target t;
    char err[160];
    assert_int_equal(redis_target_parse(rd.url, 500, &t, err, sizeof(err)), ZTB_OK);
    struct rconn_pool p;
    assert_int_equal(rconn_pool_init(&p, &t), ZTB_OK);
    struct unknown_clients *u;
    assert_int_equal(uc_new("crm", &p, 0, &u), ZTB_OK);
    uc_note(u, UNKNOWN_NO_TOKEN, "10.9.8.7");
    uc_note(u, UNKNOWN_NO_TOKEN, "10.9.8.7");
    assert_int_equal(uc_flush(u), ZTB_OK);
    redisContext *c = zh_redis_connect(&rd);
    redisReply *rep = redisCommand(c, "LRANGE %s 0 -1", ZTB_WIRE_UNKNOWN_REPORTS_KEY);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_int_equal(rep->elements, 1);
    struct unknown_report r;
    assert_int_equal(unknown_report_parse(rep->element[0]->str, rep->element[0]->len, &r), ZTB_OK);
    assert_string_equal(r.gateway, "crm");
    assert_int_equal(count_of(&r, UNKNOWN_NO_TOKEN, "10.9.8.7"), 2);
    freeReplyObject(rep);
    /* the list is kept to UNKNOWN_REPORT_KEEP reports */
    for (int i = 0; i < UNKNOWN_REPORT_KEEP + 5; i++)
        freeReplyObject(redisCommand(c, "LPUSH %s x", ZTB_WIRE_UNKNOWN_REPORTS_KEY));
    uc_note(u, UNKNOWN_FOREIGN_TOKEN, "mcp-proxy");
    assert_int_equal(uc_flush(u), ZTB_OK);
    rep = redisCommand(c, "LLEN %s", ZTB_WIRE_UNKNOWN_REPORTS_KEY);
    assert_int_equal(rep->integer, UNKNOWN_REPORT_KEEP);
    freeReplyObject(rep);
    /* Redis refuses (the key holds another type): dropped and counted */
    freeReplyObject(redisCommand(c, "DEL %s", ZTB_WIRE_UNKNOWN_REPORTS_KEY));
    freeReplyObject(redisCommand(c, "SET %s x", ZTB_WIRE_UNKNOWN_REPORTS_KEY));
    uc_note(u, UNKNOWN_FOREIGN_TOKEN, "mcp-proxy");
    assert_int_equal(uc_flush(u), ZTB_ERR_PERMISSION);
    struct uc_stats st;
    uc_stats(u, &st);
    assert_int_equal(st.reports_sent, 2);
    assert_int_equal(st.reports_failed, 1);
    uc_free(u);
    /* with a thread: reports every interval, and once more when freed */
    freeReplyObject(redisCommand(c, "DEL %s", ZTB_WIRE_UNKNOWN_REPORTS_KEY));
    assert_int_equal(uc_new("crm", &p, 100, &u), ZTB_OK);
    uc_note(u, UNKNOWN_NO_TOKEN, "a");
    for (int i = 0; i < 100; i++) {
        rep = redisCommand(c, "LLEN %s", ZTB_WIRE_UNKNOWN_REPORTS_KEY);
        long long n = rep->integer;
        freeReplyObject(rep);
        if (n == 1)
            break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    uc_note(u, UNKNOWN_NO_TOKEN, "b");
    uc_free(u);
    rep = redisCommand(c, "LLEN %s", ZTB_WIRE_UNKNOWN_REPORTS_KEY);
    assert_int_equal(rep->integer, 2);
    freeReplyObject(rep);
    redisFree(c);
    rconn_pool_destroy(&p);
    redis_target_wipe(&t);
    zh_redis_stop(&rd, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded_top_sources),
        cmocka_unit_test(test_report_to_redis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
