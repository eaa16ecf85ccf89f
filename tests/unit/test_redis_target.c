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
    /* TLS options belong to rediss://; the message says so */
    assert_int_equal(redis_target_parse("redis://:topsecret@h:6380?ca=/x", 0, &t, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "rediss://"));
    assert_null(strstr(err, "topsecret"));
    assert_int_equal(t.password[0], 0);
}

/* rediss:// and rediss+sentinel://: TLS on, the options from the query. */
static void test_parse_tls(void **state)
{
    (void)state;
    struct redis_target t;
    char err[256], d[300];
    assert_int_equal(redis_target_parse("rediss://u:p%40w@redis.example:6380/2?ca=/etc/ztb/ca.pem"
                                        "&cert=/c%20d.pem&key=/k.pem&tls_name=r.example",
                                        0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_true(t.tls.on);
    assert_string_equal(t.host, "redis.example");
    assert_int_equal(t.port, 6380);
    assert_int_equal(t.db, 2);
    assert_string_equal(t.user, "u");
    assert_string_equal(t.password, "p@w");
    assert_string_equal(t.tls.ca, "/etc/ztb/ca.pem");
    assert_string_equal(t.tls.cert, "/c d.pem");
    assert_string_equal(t.tls.key, "/k.pem");
    assert_string_equal(t.tls.server_name, "r.example");
    redis_target_describe(&t, d, sizeof(d));
    assert_string_equal(d, "tls:u@redis.example:6380");
    assert_int_equal(redis_target_parse("rediss://[::1]", 0, &t, err, sizeof(err)), ZTB_OK);
    assert_true(t.tls.on);
    assert_string_equal(t.host, "::1");
    assert_string_equal(t.tls.ca, "");
    assert_int_equal(redis_target_parse("redis://h", 0, &t, err, sizeof(err)), ZTB_OK);
    assert_false(t.tls.on);
    assert_int_equal(redis_target_parse("rediss+sentinel://s1,s2:26380/mymaster/1?ca=/ca.pem"
                                        "&sentinel_password=sp",
                                        0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_true(t.tls.on);
    assert_int_equal(t.nsentinels, 2);
    assert_string_equal(t.master_name, "mymaster");
    assert_string_equal(t.tls.ca, "/ca.pem");
    assert_string_equal(t.sentinel_password, "sp");
    redis_target_wipe(&t);
    static const char *const bad[] = {"rediss://:hunter2@h?cert=/c.pem",         /* no key */
                                      "rediss://:hunter2@h?key=/k.pem",          /* no cert */
                                      "rediss://:hunter2@h?ca=",                 /* empty */
                                      "rediss://:hunter2@h?ca=/a&ca=/b",         /* twice */
                                      "rediss://:hunter2@h?verify=none",         /* unknown */
                                      "rediss://:hunter2@h?sentinel_password=x", /* not sentinel */
                                      "rediss://:hunter2@h?ca=/a#f",
                                      "redis+sentinel://:hunter2@h/m?ca=/a", /* TLS option, plain */
                                      "unix:///tmp/s?ca=/a",
                                      NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        err[0] = '\0';
        if (redis_target_parse(bad[i], 0, &t, err, sizeof(err)) != ZTB_ERR_INVALID_ARG)
            fail_msg("accepted %s", bad[i]);
        assert_null(strstr(err, "hunter2"));
        assert_string_equal(t.password, "");
    }
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
    struct redis_link *rc = NULL;
    err[0] = '\0';
    assert_int_equal(redis_target_connect(&t, &rc, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_null(rc);
    assert_true(err[0] != '\0');
    snprintf(t.password, sizeof(t.password), "pw1");
    assert_int_equal(redis_target_connect(&t, &rc, err, sizeof(err)), ZTB_OK);
    redisReply *y = redis_link_commandf(rc, "CLIENT INFO");
    assert_non_null(strstr(y->str, "db=1"));
    freeReplyObject(y);
    redis_link_free(rc);
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
    struct redis_link *rc = NULL;
    assert_int_equal(redis_target_connect(&t, &rc, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_non_null(strstr(err, "AUTH"));
    assert_null(strstr(err, "wrong"));
    snprintf(t.password, sizeof(t.password), "s3cret");
    assert_int_equal(redis_target_connect(&t, &rc, err, sizeof(err)), ZTB_OK);
    redisReply *y = redis_link_commandf(rc, "ACL WHOAMI");
    assert_string_equal(y->str, "ztb");
    freeReplyObject(y);
    redis_link_free(rc);
    redis_target_wipe(&t);
    (void)url;
    zh_redis_stop(&r, 1);
}

/* The Sentinel form: several sentinels (IPv6 too), the master's name, a
 * database, the master's credentials and the sentinels' own. */
static void test_parse_sentinel(void **state)
{
    (void)state;
    struct redis_target t;
    char err[256], d[600];
    assert_int_equal(redis_target_parse("redis+sentinel://ztb:p%40w@s1:26380,s2,[::1]:26381/"
                                        "mymaster/2?sentinel_username=watch&sentinel_password=sp",
                                        0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_int_equal(t.nsentinels, 3);
    assert_string_equal(t.sentinels[0].host, "s1");
    assert_int_equal(t.sentinels[0].port, 26380);
    assert_string_equal(t.sentinels[1].host, "s2");
    assert_int_equal(t.sentinels[1].port, 26379);
    assert_string_equal(t.sentinels[2].host, "::1");
    assert_int_equal(t.sentinels[2].port, 26381);
    assert_string_equal(t.master_name, "mymaster");
    assert_int_equal(t.db, 2);
    assert_string_equal(t.user, "ztb");
    assert_string_equal(t.password, "p@w");
    assert_string_equal(t.sentinel_user, "watch");
    assert_string_equal(t.sentinel_password, "sp");
    redis_target_describe(&t, d, sizeof(d));
    assert_string_equal(d, "sentinel:ztb@mymaster@s1:26380,s2:26379,[::1]:26381");
    assert_null(strstr(d, "p@w"));
    assert_null(strstr(d, "sp"));
    redis_target_wipe(&t);
    assert_string_equal(t.password, "");
    assert_string_equal(t.sentinel_password, "");
    /* the smallest: one sentinel, no credentials, db 0 */
    assert_int_equal(redis_target_parse("redis+sentinel://10.0.0.1/m", 0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_int_equal(t.nsentinels, 1);
    assert_int_equal(t.db, 0);
    assert_string_equal(t.host, "");
    assert_int_equal(redis_target_parse("redis+sentinel://a,b/m/", 0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_int_equal(t.nsentinels, 2);
    const char *bad[] = {"redis+sentinel://",
                         "redis+sentinel:///m",
                         "redis+sentinel://h",
                         "redis+sentinel://h/",
                         "redis+sentinel://h,/m",
                         "redis+sentinel://,h/m",
                         "redis+sentinel://h,,g/m",
                         "redis+sentinel://h:0/m",
                         "redis+sentinel://[::1/m",
                         "redis+sentinel://h/m m",
                         "redis+sentinel://h/m/16",
                         "redis+sentinel://h/m/1/2",
                         "redis+sentinel://h/m#x",
                         "redis+sentinel://h/m?db=1",
                         "redis+sentinel://h/m?sentinel_password=",
                         "redis+sentinel://h/m?sentinel_username=u",
                         "redis+sentinel://h/m?sentinel_password=a&sentinel_password=b",
                         "redis+sentinel://:hunter2@h/m?sentinel_password=hunter2&x",
                         "redis+sentinel://a,b,c,d,e,f,g,h,i/m",
                         NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        err[0] = '\0';
        if (redis_target_parse(bad[i], 0, &t, err, sizeof(err)) != ZTB_ERR_INVALID_ARG)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(strstr(err, "redis: "));
        assert_null(strstr(err, "hunter2"));
        assert_string_equal(t.password, "");
        assert_string_equal(t.sentinel_password, "");
    }
}

static void test_error_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum redis_error_kind kind;
        int reresolve;
    } cases[] = {
        {"READONLY You can't write against a read only replica.", REDIS_EK_READONLY, 1},
        {"READONLY You can't write against a read only replica. script: 88c9, on "
         "@user_script:1.",
         REDIS_EK_READONLY, 1},
        {"ERR Error running script (call to f_1): @user_script:1: -READONLY You can't write",
         REDIS_EK_READONLY, 1},
        {"MASTERDOWN Link with MASTER is down", REDIS_EK_MASTERDOWN, 1},
        {"LOADING Redis is loading the dataset in memory", REDIS_EK_LOADING, 1},
        {"NOAUTH Authentication required.", REDIS_EK_NOAUTH, 1},
        {"WRONGPASS invalid username-password pair", REDIS_EK_NOAUTH, 1},
        {"NOPERM this user has no permissions", REDIS_EK_NOPERM, 0},
        {"NOREPLICAS Not enough good replicas to write.", REDIS_EK_NOREPLICAS, 0},
        {"OOM command not allowed when used memory > 'maxmemory'.", REDIS_EK_OOM, 0},
        {"CROSSSLOT Keys in request don't hash to the same slot", REDIS_EK_CROSSSLOT, 0},
        {"MOVED 3999 127.0.0.1:6381", REDIS_EK_MOVED, 0},
        {"ASK 3999 127.0.0.1:6381", REDIS_EK_ASK, 0},
        {"TRYAGAIN Multiple keys request during rehashing", REDIS_EK_TRYAGAIN, 0},
        {"CLUSTERDOWN The cluster is down", REDIS_EK_CLUSTERDOWN, 0},
        {"BUSY Redis is busy running a script.", REDIS_EK_BUSY, 0},
        {"NOSCRIPT No matching script.", REDIS_EK_NOSCRIPT, 0},
        {"ERR unknown command", REDIS_EK_OTHER, 0},
        {"ASKING-not-a-code", REDIS_EK_OTHER, 0},
        {"-", REDIS_EK_OTHER, 0},
        {"", REDIS_EK_OTHER, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply r = {
            .type = REDIS_REPLY_ERROR, .str = (char *)cases[i].text, .len = strlen(cases[i].text)};
        enum redis_error_kind k = redis_error_kind_of(NULL, &r);
        if (k != cases[i].kind)
            fail_msg("%s: %s", cases[i].text, redis_error_kind_name(k));
        assert_int_equal(redis_error_kind_reresolve(k), cases[i].reresolve);
    }
    redisReply ok = {.type = REDIS_REPLY_STATUS, .str = "OK", .len = 2};
    assert_int_equal(redis_error_kind_of(NULL, &ok), REDIS_EK_NONE);
    assert_int_equal(redis_error_kind_of(NULL, NULL), REDIS_EK_CONNECTION);
    assert_string_equal(redis_error_kind_name(REDIS_EK_READONLY), "readonly");
    assert_string_equal(redis_error_kind_name(REDIS_EK_N), "other");
    assert_true(redis_error_kind_reresolve(REDIS_EK_CONNECTION));
    assert_true(redis_error_kind_reresolve(REDIS_EK_TIMEOUT));
}

/* Discovery through real sentinels: the master is found and checked; a
 * sentinel that is down is skipped; one that names a replica (a stale
 * answer) is refused, never connected to; an unknown master name is
 * refused with a message. */
static void test_sentinel_discovery(void **state)
{
    (void)state;
    struct zh_redis m, rep, s, s_stale;
    zh_redis_start_tcp(&m);
    zh_redis_start_replica(&rep, &m, 1);
    zh_sentinel_start(&s, &m, "good", 1);
    zh_sentinel_start(&s_stale, &rep, "stale", 1); /* names the replica as "master" */
    char url[300], err[512], where[300];
    struct redis_target t;
    struct redis_link *c = NULL;
    /* a dead sentinel first: the next one answers */
    snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:1,127.0.0.1:%d/good", s.port);
    assert_int_equal(redis_target_parse(url, 500, &t, err, sizeof(err)), ZTB_OK);
    assert_int_equal(redis_target_connect_at(&t, &c, where, sizeof(where), err, sizeof(err)),
                     ZTB_OK);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", m.port);
    assert_string_equal(where, want);
    redisReply *r = redis_link_commandf(c, "SET k v");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redis_link_free(c);
    /* a stale answer: the named server is a replica */
    snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:%d/stale", s_stale.port);
    assert_int_equal(redis_target_parse(url, 500, &t, err, sizeof(err)), ZTB_OK);
    assert_int_equal(redis_target_connect(&t, &c, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_null(c);
    assert_non_null(strstr(err, "not a master"));
    /* a name the sentinel does not know */
    snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:%d/nosuch", s.port);
    assert_int_equal(redis_target_parse(url, 500, &t, err, sizeof(err)), ZTB_OK);
    assert_int_equal(redis_target_connect(&t, &c, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_non_null(strstr(err, "does not know a master named nosuch"));
    /* the sentinel's own password, apart from the master's */
    redisContext *sc = zh_redis_connect_tcp(&s);
    r = redisCommand(sc, "ACL SETUSER default resetpass >sentpw");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(sc);
    snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:%d/good", s.port);
    assert_int_equal(redis_target_parse(url, 500, &t, err, sizeof(err)), ZTB_OK);
    assert_int_equal(redis_target_connect(&t, &c, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_null(strstr(err, "sentpw"));
    snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:%d/good?sentinel_password=sentpw",
             s.port);
    assert_int_equal(redis_target_parse(url, 500, &t, err, sizeof(err)), ZTB_OK);
    assert_int_equal(redis_target_connect(&t, &c, err, sizeof(err)), ZTB_OK);
    redis_link_free(c);
    redis_target_wipe(&t);
    zh_redis_stop(&s, 1);
    zh_redis_stop(&s_stale, 1);
    zh_redis_stop(&rep, 1);
    zh_redis_stop(&m, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),      cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_parse_tls),        cmocka_unit_test(test_connect_default_user_and_db),
        cmocka_unit_test(test_connect_acl_user), cmocka_unit_test(test_parse_sentinel),
        cmocka_unit_test(test_error_kinds),      cmocka_unit_test(test_sentinel_discovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
