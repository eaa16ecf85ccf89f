/*
 * test_redis_failover.c - the broker follows Redis through a failover and
 * says the truth about it, against real processes: redis-server master and
 * replica, three `redis-server --sentinel`, and ztb-broker, all on
 * loopback with random ports and scratch directories.
 *
 * - readiness: a Redis that refuses writes (min-replicas-to-write unmet, a
 *   master demoted to a replica) makes /readyz not ready with the kind of
 *   error, counted in ztb_redis_errors_total{kind}, while tokens get 503;
 *   ready again when Redis takes writes, with no restart;
 * - Sentinel: the broker finds the master through the sentinels
 *   (redis+sentinel://), a revocation is acknowledged only once a replica
 *   has it (WAIT), and after SENTINEL FAILOVER and after a kill -9 of the
 *   master, issuance resumes within 10 s of the switch without a restart
 *   and every revocation acknowledged before is in force.
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

#include "agent.h"
#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 120,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 100000, \"burst\": 10000, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 100000, \"burst\": 10000, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"gateway-introspects\", \"effect\": \"allow\", \"agents\": [\"gate\"],\n"
    "   \"actions\": [\"ztb:introspect\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"]}\n"
    " ]}\n";

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One token for a; its status (the token into tok when 200 and tok). */
/* The last refused issuance: status and body. */
static char last_refusal[512];

static long issue(const struct zh_broker *b, const struct za_agent *a, char *tok, size_t cap)
{
    struct zh_resp r;
    char local[4096];
    long st = za_token(b, a, "payments", "payments%3Aread", &r, tok ? tok : local,
                       tok ? cap : sizeof(local));
    if (st == 503) { /* fail closed, and says when to come back */
        char v[32];
        assert_non_null(zh_resp_header(&r, "Retry-After", v, sizeof(v)));
    }
    if (st != 200) /* for the failure message */
        snprintf(last_refusal, sizeof(last_refusal), "%ld %s", st, r.body ? r.body : "");
    zh_resp_free(&r);
    return st;
}

/* /readyz: its status, and its body into body (cap bytes). */
static long readyz(const struct zh_broker *b, char *body, size_t cap)
{
    struct zh_resp r;
    assert_int_equal(zh_get(b, "/readyz", &r), 0);
    long st = r.status;
    snprintf(body, cap, "%s", r.body ? r.body : "");
    zh_resp_free(&r);
    return st;
}

/* The value of one metric line (name with labels), or -1 if absent. */
static long long metric(const struct zh_broker *b, const char *series)
{
    struct zh_resp r;
    assert_int_equal(zh_get(b, "/metrics", &r), 0);
    const char *p = strstr(r.body, series);
    long long v = p ? strtoll(p + strlen(series) + 1, NULL, 10) : -1;
    zh_resp_free(&r);
    return v;
}

static void redis_do(const struct zh_redis *rd, const char *cmd)
{
    redisContext *c = zh_redis_connect(rd);
    redisReply *r = redisCommand(c, cmd);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", cmd, r ? r->str : c->errstr);
    freeReplyObject(r);
    redisFree(c);
}

/* Poll /readyz for up to ms until its status is want. */
static int readyz_becomes(const struct zh_broker *b, long want, unsigned ms, char *body, size_t cap)
{
    uint64_t end = now_ms() + ms;
    do {
        if (readyz(b, body, cap) == want)
            return 1;
        usleep(50000);
    } while (now_ms() < end);
    return 0;
}

/*
 * The attack: Redis refuses every write (below min-replicas-to-write, then
 * demoted to a replica) while it still answers PING. Every token gets 503;
 * /readyz used to say ready all the while. It must say not ready, name the
 * kind, count it, and come back when Redis takes writes again.
 */
static void test_readyz_tells_the_truth(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    struct zh_broker b;
    zh_broker_start_issuing(&b, rd.url, policy_doc);
    struct za_agent alice;
    za_enroll(&b, &alice, "alice");
    char body[1024];
    assert_int_equal(issue(&b, &alice, NULL, 0), 200);
    assert_int_equal(readyz(&b, body, sizeof(body)), 200);

    static const struct {
        const char *refuse, *allow, *kind;
    } cases[] = {
        {"CONFIG SET min-replicas-to-write 1", "CONFIG SET min-replicas-to-write 0", "noreplicas"},
        {"REPLICAOF 127.0.0.1 1", "REPLICAOF NO ONE", "readonly"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char series[96];
        snprintf(series, sizeof(series), "ztb_redis_errors_total{kind=\"%s\"}", cases[i].kind);
        long long before = metric(&b, series);
        redis_do(&rd, cases[i].refuse);
        for (int k = 0; k < 3; k++)
            assert_int_equal(issue(&b, &alice, NULL, 0), 503);
        assert_int_equal(readyz(&b, body, sizeof(body)), 503);
        if (strstr(body, cases[i].kind) == NULL)
            fail_msg("readyz does not name %s: %s", cases[i].kind, body);
        assert_true(metric(&b, series) > (before < 0 ? 0 : before));
        redis_do(&rd, cases[i].allow);
        if (!readyz_becomes(&b, 200, 5000, body, sizeof(body)))
            fail_msg("not ready again after %s: %s", cases[i].allow, body);
        int ok = 0;
        for (int k = 0; k < 40 && !ok; k++) {
            ok = issue(&b, &alice, NULL, 0) == 200;
            if (!ok)
                usleep(50000);
        }
        assert_true(ok);
    }
    za_free(&alice);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
}

/* Sentinel ------------------------------------------------------------------*/

#define MASTER_NAME "ztbm"

/* The master's port as sentinel s names it now (0: none). */
static int sentinel_master_port(const struct zh_redis *s)
{
    redisContext *c = zh_redis_connect_tcp(s);
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name " MASTER_NAME);
    int port = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? atoi(r->element[1]->str) : 0;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return port;
}

/* How many entries SENTINEL <what> ztbm lists at s, counting only those
 * without "down" or "disconnected" flags. */
static size_t sentinel_count(const struct zh_redis *s, const char *what)
{
    redisContext *c = zh_redis_connect_tcp(s);
    redisReply *r = redisCommand(c, "SENTINEL %s " MASTER_NAME, what);
    size_t n = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        for (size_t k = 0; e->type == REDIS_REPLY_ARRAY && k + 1 < e->elements; k += 2)
            if (strcmp(e->element[k]->str, "flags") == 0 &&
                strstr(e->element[k + 1]->str, "down") == NULL &&
                strstr(e->element[k + 1]->str, "disconnected") == NULL)
                n++;
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return n;
}

/* Sentinel s knows n healthy replicas (enough for SENTINEL FAILOVER). */
static void wait_known(const struct zh_redis *s, size_t n, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (sentinel_count(s, "replicas") < n) {
        if (now_ms() > end)
            fail_msg("the sentinel did not find %zu replicas within %u ms", n, ms);
        usleep(50000);
    }
}

/* Every sentinel knows the others and n healthy replicas. */
static int sentinels_settled(const struct zh_redis *s, size_t n)
{
    for (int i = 0; i < 3; i++)
        if (sentinel_count(&s[i], "replicas") < n || sentinel_count(&s[i], "sentinels") < 2)
            return 0;
    return 1;
}

static void wait_settled(const struct zh_redis *s, size_t n, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (!sentinels_settled(s, n)) {
        if (now_ms() > end)
            fail_msg("the sentinels did not settle within %u ms", ms);
        usleep(100000);
    }
}

/*
 * Wait until replica rd follows the master on master_port and its link is up
 * (it has synced). Right after a switch rd's link to the old master is still
 * up: the link alone says nothing about which master it follows.
 */
static void wait_link_up(const struct zh_redis *rd, int master_port, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    char want[32];
    snprintf(want, sizeof(want), "master_port:%d\r\n", master_port);
    for (;;) {
        redisContext *c = zh_redis_connect_tcp(rd);
        redisReply *r = redisCommand(c, "INFO replication");
        int up = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "role:slave") &&
                 strstr(r->str, want) && strstr(r->str, "master_link_status:up");
        if (r)
            freeReplyObject(r);
        redisFree(c);
        if (up)
            return;
        if (now_ms() > end)
            fail_msg("the replica on port %d did not sync with port %d within %u ms", rd->port,
                     master_port, ms);
        usleep(50000);
    }
}

/* An integer field of INFO replication on rd ("master_repl_offset"), or -1. */
static long long repl_field(const struct zh_redis *rd, const char *field)
{
    redisContext *c = zh_redis_connect_tcp(rd);
    redisReply *r = redisCommand(c, "INFO replication");
    long long v = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        char key[64];
        snprintf(key, sizeof(key), "%s:", field);
        const char *p = strstr(r->str, key);
        if (p)
            v = strtoll(p + strlen(key), NULL, 10);
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

/*
 * Wait until replica rd follows the master on master's port and has applied
 * everything the master had when this was called. A replica whose first
 * sync has just finished is not yet streaming (the master waits for its
 * first REPLCONF ACK): promoted then, it would come up with nothing, which
 * no broker setting can prevent. Production replicas are long in sync;
 * the test makes sure its own are before it fails a master over.
 */
static void wait_caught_up(const struct zh_redis *master, const struct zh_redis *rd, unsigned ms)
{
    wait_link_up(rd, master->port, ms);
    long long want = repl_field(master, "master_repl_offset");
    uint64_t end = now_ms() + ms;
    while (repl_field(rd, "slave_repl_offset") < want) {
        if (now_ms() > end)
            fail_msg("the replica on port %d did not catch up with port %d within %u ms", rd->port,
                     master->port, ms);
        usleep(20000);
    }
}

static int ctl(const struct zh_broker *b, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl"), "--socket", b->admin_sock};
    int n = 3;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    char *out, *err;
    int rc = zh_run(argv, &out, &err);
    if (rc != 0)
        fprintf(stderr, "ztbctl %s: %s%s\n", args[0], out ? out : "", err ? err : "");
    free(out);
    free(err);
    return rc;
}

/*
 * Revoke tok by jti through ztbctl; the jti into jti (64 bytes). Retried for
 * up to 10 s, as an operator would on 503: right after the sentinels agree
 * on a new master the broker may still write to the old one for a moment
 * (it learns of the switch from +switch-master), where WAIT finds no replica
 * and the revocation is, correctly, not acknowledged.
 */
static void revoke_tok(const struct zh_broker *b, const char *tok, char jti[64])
{
    json_t *c = za_claims(tok);
    snprintf(jti, 64, "%s", json_string_value(json_object_get(c, "jti")));
    char exp[32];
    snprintf(exp, sizeof(exp), "%lld", (long long)json_integer_value(json_object_get(c, "exp")));
    json_decref(c);
    const char *args[] = {"revoke", "token", jti, "--exp", exp, NULL};
    uint64_t end = now_ms() + 10000;
    while (ctl(b, args) != 0) {
        if (now_ms() > end) {
            zh_broker_dump_log(b);
            fail_msg("the revocation was not acknowledged within 10 s");
        }
        usleep(200000);
    }
}

/* 1 if the server on port has the revocation of jti (a replica too). */
static int has_revocation(const struct zh_redis *rd, const char *jti)
{
    redisContext *c = zh_redis_connect_tcp(rd);
    redisReply *r = redisCommand(c, "EXISTS ztb:{rev}:jti:%s", jti);
    int has = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return has;
}

/*
 * After the switch: tokens within 10 s (five in a row, so not a lucky one
 * on a server about to be demoted); returns how long it took in ms.
 */
/* The servers of the sentinel test, for the failure message. */
static const struct zh_redis *g_servers[3];

/* Each live server's port, role and number of keys, on stderr. */
static void describe_servers(void)
{
    static const char *names[] = {"m", "rep", "rep2"};
    for (int i = 0; i < 3; i++) {
        if (g_servers[i] == NULL)
            continue;
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", g_servers[i]->port, tv);
        if (c != NULL && c->err) {
            redisFree(c);
            c = NULL;
        }
        redisReply *role = c ? redisCommand(c, "ROLE") : NULL;
        redisReply *size = c ? redisCommand(c, "DBSIZE") : NULL;
        fprintf(stderr, "%s port %d: role %s, %lld keys\n", names[i], g_servers[i]->port,
                role && role->type == REDIS_REPLY_ARRAY && role->elements > 0
                    ? role->element[0]->str
                    : "(no answer)",
                size && size->type == REDIS_REPLY_INTEGER ? size->integer : -1LL);
        if (role)
            freeReplyObject(role);
        if (size)
            freeReplyObject(size);
        if (c)
            redisFree(c);
    }
}

static uint64_t issuance_resumes(const struct zh_broker *b, const struct za_agent *a)
{
    uint64_t t0 = now_ms();
    int run = 0;
    while (run < 5) {
        if (now_ms() - t0 > 10000) {
            zh_broker_dump_log(b);
            describe_servers();
            fail_msg("issuance did not resume within 10 s of the switch; last answer: %s",
                     last_refusal);
        }
        if (issue(b, a, NULL, 0) == 200) {
            run++;
        } else {
            run = 0;
            usleep(50000);
        }
    }
    return now_ms() - t0;
}

/* Wait until every sentinel names a master other than old_port; returns
 * its port. */
static int wait_switch(const struct zh_redis *s, int old_port, const struct zh_broker *b,
                       const struct za_agent *a)
{
    uint64_t end = now_ms() + 15000;
    for (;;) {
        int p[3] = {sentinel_master_port(&s[0]), sentinel_master_port(&s[1]),
                    sentinel_master_port(&s[2])};
        if (p[0] != old_port && p[0] != 0 && p[0] == p[1] && p[1] == p[2])
            return p[0];
        if (now_ms() > end)
            fail_msg("no failover within 15 s");
        (void)issue(b, a, NULL, 0); /* light load through the failover */
        usleep(50000);
    }
}

static void test_sentinel_failover(void **state)
{
    (void)state;
    uint64_t t_start = now_ms();
    /* a master and two replicas: after the first failover the second
     * replica follows the new master at once (the demoted master is only
     * converted at a sentinel's next INFO, up to 10 s later) */
    struct zh_redis m, rep, rep2, s[3];
    zh_redis_start_tcp(&m);
    zh_redis_start_replica(&rep, &m, 1);
    zh_redis_start_replica(&rep2, &m, 1);
    g_servers[0] = &m;
    g_servers[1] = &rep;
    g_servers[2] = &rep2;
    for (int i = 0; i < 3; i++)
        zh_sentinel_start(&s[i], &m, MASTER_NAME, 2);
    wait_known(&s[0], 2, 10000);
    char url[256];
    snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/%s",
             s[0].port, s[1].port, s[2].port, MASTER_NAME);
    struct zh_broker b;
    zh_broker_start_issuing(&b, url, policy_doc);
    struct za_agent alice, gate;
    za_enroll(&b, &alice, "alice");
    za_enroll(&b, &gate, "gate");
    char tok1[4096], tok2[4096], keep[4096], jti1[64], jti2[64];
    assert_int_equal(issue(&b, &alice, tok1, sizeof(tok1)), 200);
    assert_int_equal(issue(&b, &alice, tok2, sizeof(tok2)), 200);
    assert_int_equal(issue(&b, &alice, keep, sizeof(keep)), 200);

    /* acknowledged only once a replica has it (WAIT 1: either of the two) */
    revoke_tok(&b, tok1, jti1);
    assert_true(has_revocation(&rep, jti1) || has_revocation(&rep2, jti1));
    assert_int_equal(za_active(&b, &gate, tok1), 0);

    /* 1. a planned failover, of a master whose replicas are in sync */
    wait_caught_up(&m, &rep, 10000);
    wait_caught_up(&m, &rep2, 10000);
    redisContext *c = zh_redis_connect_tcp(&s[0]);
    redisReply *r = redisCommand(c, "SENTINEL FAILOVER " MASTER_NAME);
    assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    int p1 = wait_switch(s, m.port, &b, &alice);
    /* SENTINEL FAILOVER picks either replica: call the new master rep */
    if (p1 == rep2.port) {
        struct zh_redis t = rep;
        rep = rep2;
        rep2 = t;
    }
    assert_int_equal(p1, rep.port);
    uint64_t took1 = issuance_resumes(&b, &alice);
    assert_int_equal(za_active(&b, &gate, tok1), 0);
    assert_int_equal(za_active(&b, &gate, keep), 1);

    /* the other replica follows the new master: a revocation now waits for
     * it; the sentinels must know each other to elect a leader next */
    wait_link_up(&rep2, rep.port, 10000);
    wait_settled(s, 1, 10000);
    revoke_tok(&b, tok2, jti2);
    assert_true(has_revocation(&rep2, jti2));
    /* the demoted master rejoins as a replica, as a sentinel would make it
     * at its next INFO (up to 10 s later; an operator may do it at once):
     * both replicas in sync before the next failover */
    char replicaof[64];
    snprintf(replicaof, sizeof(replicaof), "REPLICAOF 127.0.0.1 %d", rep.port);
    redis_do(&m, replicaof);
    wait_caught_up(&rep, &rep2, 10000);
    wait_caught_up(&rep, &m, 10000);

    /* 2. the master dies */
    zh_redis_kill(&rep);
    int p2 = wait_switch(s, rep.port, &b, &alice);
    assert_true(p2 == rep2.port || p2 == m.port);
    uint64_t took2 = issuance_resumes(&b, &alice);
    assert_int_equal(za_active(&b, &gate, tok1), 0);
    assert_int_equal(za_active(&b, &gate, tok2), 0);
    assert_int_equal(za_active(&b, &gate, keep), 1);
    fprintf(stderr,
            "failover: issuance back %llu ms after SENTINEL FAILOVER's switch, %llu ms after "
            "kill -9's; whole test %llu ms\n",
            (unsigned long long)took1, (unsigned long long)took2,
            (unsigned long long)(now_ms() - t_start));

    za_free(&alice);
    za_free(&gate);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
    for (int i = 0; i < 3; i++)
        zh_redis_stop(&s[i], 1);
    zh_redis_stop(&m, 1);
    zh_redis_stop(&rep, 1);
    zh_redis_stop(&rep2, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readyz_tells_the_truth),
        cmocka_unit_test(test_sentinel_failover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
