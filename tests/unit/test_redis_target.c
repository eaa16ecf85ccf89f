/*
 * test_redis_target.c - the one Redis URL parser and connect step: every URL
 * form, refusals that name the problem and never the password, and AUTH as
 * the default or an ACL user and SELECT against a real redis-server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/redis_target.h"
#include "harness.h"

static void test_parse_forms(void **state)
{
    (void)state;
    struct redis_target t;
    char err[256], d[300];
    assert_int_equal(redis_target_parse("redis://db.internal:6380/3", 0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_string_equal(t.host, "db.internal");
    assert_int_equal(t.port, 6380);
    assert_int_equal(t.db, 3);
    assert_int_equal(t.timeout_ms, 1000);
    assert_string_equal(t.user, "");
    assert_string_equal(t.password, "");
    assert_int_equal(redis_target_parse("redis://localhost", 250, &t, err, sizeof(err)), ZTB_OK);
    assert_int_equal(t.port, 6379);
    assert_int_equal(t.timeout_ms, 250);
    assert_int_equal(redis_target_parse("redis://localhost/", 0, &t, err, sizeof(err)), ZTB_OK);
    assert_int_equal(t.db, 0);
    /* the default user's password, new and old spelling */
    assert_int_equal(redis_target_parse("redis://:s3cret@h:1/", 0, &t, err, sizeof(err)), ZTB_OK);
    assert_string_equal(t.user, "");
    assert_string_equal(t.password, "s3cret");
    redis_target_describe(&t, d, sizeof(d));
    assert_string_equal(d, "h:1");
    redis_target_wipe(&t);
    assert_string_equal(t.password, "");
    /* an ACL user: AUTH USER PASSWORD, not "user:pass" as a password */
    assert_int_equal(redis_target_parse("redis://ztb:pw@h", 0, &t, err, sizeof(err)), ZTB_OK);
    assert_string_equal(t.user, "ztb");
    assert_string_equal(t.password, "pw");
    redis_target_describe(&t, d, sizeof(d));
    assert_string_equal(d, "ztb@h:6379");
    assert_null(strstr(d, "pw"));
    /* percent-encoding, and an '@' in the password */
    assert_int_equal(redis_target_parse("redis://a%40b:p%3Aw@d@h:7/2", 0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_string_equal(t.user, "a@b");
    assert_string_equal(t.password, "p:w@d");
    assert_string_equal(t.host, "h");
    assert_int_equal(t.port, 7);
    assert_int_equal(t.db, 2);
    /* IPv6 */
    assert_int_equal(redis_target_parse("redis://u:p@[::1]:6390/1", 0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 6390);
    assert_int_equal(t.db, 1);
    redis_target_describe(&t, d, sizeof(d));
    assert_string_equal(d, "u@[::1]:6390");
    assert_int_equal(redis_target_parse("redis://[fe80::1]", 0, &t, err, sizeof(err)), ZTB_OK);
    assert_string_equal(t.host, "fe80::1");
    assert_int_equal(t.port, 6379);
    /* unix sockets */
    assert_int_equal(redis_target_parse("unix:///run/r.sock?db=2", 0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_string_equal(t.path, "/run/r.sock");
    assert_int_equal(t.db, 2);
    redis_target_describe(&t, d, sizeof(d));
    assert_string_equal(d, "unix:/run/r.sock");
}

static void test_parse_refusals(void **state)
{
    (void)state;
    struct redis_target t;
    char err[256];
    const char *bad[] = {"http://h:1",          "redis://",        "redis://h:0",
                         "redis://h:65536",     "redis://h:x",     "redis://h/16",
                         "redis://h/a",         "unix://rel/path", "unix://",
                         "unix:///p?db=99",     "unix:///p?x=1",   "redis://@h",
                         "redis://:hunter2@:1", "redis://[::1",    "redis://[::1]x",
                         "redis://h?db=1",      "redis://u:@h",    "redis://:p%4@h",
                         "redis://:p%00w@h",    "redis://h:12x",   NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        err[0] = '\0';
        assert_int_equal(redis_target_parse(bad[i], 0, &t, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
        assert_non_null(strstr(err, "redis: "));
        assert_null(strstr(err, "hunter2")); /* never echo a password */
        assert_string_equal(t.password, "");
    }
    char longpath[200] = "unix:///";
    memset(longpath + 8, 'p', 150);
    longpath[158] = '\0';
    assert_int_equal(redis_target_parse(longpath, 0, &t, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    /* TLS is named, and the message says what to do instead */
    assert_int_equal(redis_target_parse("rediss://:topsecret@h:6380", 0, &t, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "TLS"));
    assert_null(strstr(err, "topsecret"));
    assert_int_equal(t.password[0], 0);
}

static void test_connect_default_user_and_db(void **state)
{
    (void)state;
    struct zh_redis r;
    zh_redis_start(&r);
    redisContext *c = zh_redis_connect(&r);
    redisReply *x = redisCommand(c, "CONFIG SET requirepass pw1");
    freeReplyObject(x);
    redisFree(c);
    char url[400];
    struct redis_target t;
    char err[256];
    snprintf(url, sizeof(url), "%s?db=1", r.url);
    assert_int_equal(redis_target_parse(url, 500, &t, err, sizeof(err)), ZTB_OK);
    redisContext *rc = NULL;
    err[0] = '\0';
    assert_int_equal(redis_target_connect(&t, &rc, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_null(rc);
    assert_true(err[0] != '\0');
    snprintf(t.password, sizeof(t.password), "pw1");
    assert_int_equal(redis_target_connect(&t, &rc, err, sizeof(err)), ZTB_OK);
    redisReply *y = redisCommand(rc, "CLIENT INFO");
    assert_non_null(strstr(y->str, "db=1"));
    freeReplyObject(y);
    redisFree(rc);
    redis_target_wipe(&t);
    zh_redis_stop(&r, 1);
}

/* An ACL user authenticates as itself (AUTH USER PASSWORD). */
static void test_connect_acl_user(void **state)
{
    (void)state;
    struct zh_redis r;
    zh_redis_start(&r);
    redisContext *c = zh_redis_connect(&r);
    redisReply *x = redisCommand(c, "ACL SETUSER ztb on >s3cret ~* &* +@all");
    assert_int_equal(x->type, REDIS_REPLY_STATUS);
    freeReplyObject(x);
    redisFree(c);
    char url[400];
    struct redis_target t;
    char err[256];
    assert_int_equal(redis_target_parse(r.url, 500, &t, err, sizeof(err)), ZTB_OK);
    snprintf(t.user, sizeof(t.user), "ztb");
    snprintf(t.password, sizeof(t.password), "wrong");
    redisContext *rc = NULL;
    assert_int_equal(redis_target_connect(&t, &rc, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_non_null(strstr(err, "AUTH"));
    assert_null(strstr(err, "wrong"));
    snprintf(t.password, sizeof(t.password), "s3cret");
    assert_int_equal(redis_target_connect(&t, &rc, err, sizeof(err)), ZTB_OK);
    redisReply *y = redisCommand(rc, "ACL WHOAMI");
    assert_string_equal(y->str, "ztb");
    freeReplyObject(y);
    redisFree(rc);
    redis_target_wipe(&t);
    (void)url;
    zh_redis_stop(&r, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_connect_default_user_and_db),
        cmocka_unit_test(test_connect_acl_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
