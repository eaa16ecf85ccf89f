/*
 * test_redis_clock.c - revocations and rate limits when Redis's wall clock
 * is not the broker's, against the real broker and a real redis-server
 * whose clock the clockshift library moves (harness zh_redis_start_clock).
 *
 * The attacks: with Redis's clock 400 s ahead, a revocation of a live token
 * was judged "already expired" by Redis's clock, not stored, reported as
 * "nothing to do", and the token kept working; a revocation whose exp a
 * source or an operator supplied lived only until that exp; a token already
 * dead by a lifted state (an audience kill) was reported as revoked without
 * storing anything; and a Redis restarted with its clock an hour behind
 * rate-limited every agent for that hour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

#define AHEAD_S   400
#define BEHIND_S  (-3600)
#define LONGEST_S 3600 /* the key store's max token life (ztbctl keys init default) */

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 120, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 2, \"burst\": 2, \"period\": 1},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"gate-introspects\", \"effect\": \"allow\", \"agents\": [\"gate\"],\n"
    "   \"actions\": [\"ztb:introspect\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent alice, gate;

static void start(long redis_clock_offset_s)
{
    zh_redis_start_clock(&rd, redis_clock_offset_s);
    zh_broker_start_issuing(&b, rd.url, policy_doc);
    za_enroll(&b, &alice, "alice");
    za_enroll(&b, &gate, "gate");
}

static int setup_ahead(void **state)
{
    (void)state;
    start(AHEAD_S);
    return 0;
}

static int setup_plain(void **state)
{
    (void)state;
    start(0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    za_free(&alice);
    za_free(&gate);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

/* Redis's TIME minus ours, in seconds. */
static long long redis_offset(void)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "TIME");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    long long off = strtoll(r->element[0]->str, NULL, 10) - (long long)time(NULL);
    freeReplyObject(r);
    redisFree(c);
    return off;
}

/* Redis's TTL of a key (-2: no such key). */
static long long redis_ttl(const char *key)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "TTL %s", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long t = r->integer;
    freeReplyObject(r);
    redisFree(c);
    return t;
}

static int ctl(char **out, char **err, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl"), "--socket", b.admin_sock};
    int n = 3;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return zh_run(argv, out, err);
}

/* Run ztbctl; fail unless it exits with want. Its stdout into *out (caller frees). */
static void run(const char *const *args, int want, char **out)
{
    char *o, *e;
    int rc = ctl(&o, &e, args);
    if (rc != want)
        fail_msg("ztbctl %s %s: exit %d, want %d: %s%s", args[0], args[1] ? args[1] : "", rc, want,
                 o, e);
    free(e);
    if (out != NULL)
        *out = o;
    else
        free(o);
}

static void token(const struct za_agent *a, char *tok)
{
    struct zh_resp r;
    if (za_token(&b, a, "payments", "payments%3Aread", &r, tok, 4096) != 200)
        fail_msg("token: HTTP %ld %s", r.status, r.body);
    zh_resp_free(&r);
}

static void claim(const char *tok, char *jti, size_t cap, long long *exp)
{
    json_t *c = za_claims(tok);
    snprintf(jti, cap, "%s", json_string_value(json_object_get(c, "jti")));
    *exp = (long long)json_integer_value(json_object_get(c, "exp"));
    json_decref(c);
}

static void write_token(const char *tok, char *path, size_t cap)
{
    snprintf(path, cap, "%s/token.jwt", b.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(tok, f);
    fclose(f);
}

/* ---- Redis's clock ahead --------------------------------------------------- */

/* ztbctl revoke token --token-file: the broker verified the token's exp;
 * Redis's clock says it passed long ago; the revocation is stored all the same. */
static void test_revoke_token_file_redis_ahead(void **state)
{
    (void)state;
    long long off = redis_offset();
    if (off < AHEAD_S - 5 || off > AHEAD_S + 5)
        fail_msg("Redis's clock is %lld s off, want %d (clockshift not loaded?)", off, AHEAD_S);
    char tok[4096], jti[128], path[400], key[200], *out;
    long long exp;
    token(&alice, tok);
    claim(tok, jti, sizeof(jti), &exp);
    assert_true(za_active(&b, &gate, tok));
    write_token(tok, path, sizeof(path));
    const char *args[] = {"revoke", "token", "--token-file", path, NULL};
    run(args, 0, &out);
    if (strstr(out, "nothing to do") != NULL || strstr(out, "revoked until") == NULL)
        fail_msg("ztbctl revoke token --token-file said: %s", out);
    free(out);
    snprintf(key, sizeof(key), "ztb:{rev}:jti:%s", jti);
    /* verified exp: until exp + skew by the broker's clock, whatever Redis's says */
    long long ttl = redis_ttl(key);
    if (ttl < exp - (long long)time(NULL))
        fail_msg("the revocation lives %lld s in Redis; the token has %lld s left", ttl,
                 exp - (long long)time(NULL));
    assert_false(za_active(&b, &gate, tok));
    /* verifiers loading the revocation set see it too */
    const char *list[] = {"--json", "revoke", "list", NULL};
    run(list, 0, &out);
    if (strstr(out, jti) == NULL)
        fail_msg("revoke list does not show %s: %s", jti, out);
    free(out);
}

/* ztbctl revoke token JTI --exp E: the exp is the operator's word, not a
 * verified fact: the revocation lives for the longest token life. */
static void test_revoke_jti_claimed_exp_redis_ahead(void **state)
{
    (void)state;
    char tok[4096], jti[128], e[32], key[200], *out;
    long long exp;
    token(&alice, tok);
    claim(tok, jti, sizeof(jti), &exp);
    snprintf(e, sizeof(e), "%lld", exp);
    const char *args[] = {"revoke", "token", jti, "--exp", e, NULL};
    run(args, 0, &out);
    if (strstr(out, "nothing to do") != NULL || strstr(out, "revoked until") == NULL)
        fail_msg("ztbctl revoke token JTI --exp said: %s", out);
    free(out);
    snprintf(key, sizeof(key), "ztb:{rev}:jti:%s", jti);
    long long ttl = redis_ttl(key);
    if (ttl < LONGEST_S - 5)
        fail_msg("a revocation with a claimed exp lives %lld s, want the longest life %d", ttl,
                 LONGEST_S);
    assert_false(za_active(&b, &gate, tok));

    /* a short exp in the past changes nothing: still the longest life */
    char past[32];
    snprintf(past, sizeof(past), "%lld", (long long)time(NULL) - 10);
    const char *args2[] = {"revoke", "token", "some-other-jti", "--exp", past, NULL};
    run(args2, 0, &out);
    if (strstr(out, "nothing to do") != NULL)
        fail_msg("ztbctl revoke token --exp PAST said: %s", out);
    free(out);
    ttl = redis_ttl("ztb:{rev}:jti:some-other-jti");
    if (ttl < LONGEST_S - 5)
        fail_msg("a revocation with a past claimed exp lives %lld s", ttl);
}

/* A token already dead because its audience is killed: revoking it must
 * store its revocation, or lifting the kill brings it back to life. */
static void test_revoke_token_dead_by_lifted_state(void **state)
{
    (void)state;
    char tok[4096], jti[128], path[400], key[200], *out;
    long long exp;
    token(&alice, tok);
    claim(tok, jti, sizeof(jti), &exp);
    const char *kill[] = {"revoke", "audience", "payments", NULL};
    run(kill, 0, NULL);
    assert_false(za_active(&b, &gate, tok));
    write_token(tok, path, sizeof(path));
    const char *args[] = {"revoke", "token", "--token-file", path, NULL};
    run(args, 0, &out);
    if (strstr(out, "revoked until") == NULL)
        fail_msg("ztbctl revoke token --token-file of a dead token said: %s", out);
    free(out);
    snprintf(key, sizeof(key), "ztb:{rev}:jti:%s", jti);
    assert_true(redis_ttl(key) > 0);
    const char *lift[] = {"revoke", "audience", "payments", "--lift", NULL};
    run(lift, 0, NULL);
    assert_false(za_active(&b, &gate, tok));
}

/* ---- Redis's clock stepped back -------------------------------------------- */

static int issued(void *arg)
{
    (void)arg;
    char tok[4096];
    struct zh_resp r;
    long st = za_token(&b, &alice, "payments", "payments%3Aread", &r, tok, sizeof(tok));
    zh_resp_free(&r);
    return st == 200;
}

/* Redis restarts with its clock an hour behind (the rate-limit state was
 * persisted): agents wait at most one burst window, not the hour. */
static void test_rate_limit_clock_step_back(void **state)
{
    (void)state;
    char tok[4096];
    token(&alice, tok); /* stores alice's theoretical arrival time */
    zh_redis_stop(&rd, 0);
    rd.clock_offset_s = BEHIND_S;
    zh_redis_restart(&rd);
    long long off = redis_offset();
    if (off > BEHIND_S + 5 || off < BEHIND_S - 5)
        fail_msg("Redis's clock is %lld s off, want %d", off, BEHIND_S);
    za_settle(&b, &gate, tok);
    /* per_agent: 2 per second, burst 2: the burst window is one second */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct zh_resp r;
    long st = za_token(&b, &alice, "payments", "payments%3Aread", &r, tok, sizeof(tok));
    char ra[32] = "";
    zh_resp_header(&r, "Retry-After", ra, sizeof(ra));
    zh_resp_free(&r);
    if (st != 200 && (st != 429 || atoi(ra) > 1))
        fail_msg("after Redis's clock stepped back: HTTP %ld, Retry-After %s", st, ra);
    if (!za_wait(issued, NULL, 3000))
        fail_msg("no token within 3 s of Redis's clock stepping back");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec <= 3);
    /* and the limit still holds: a burst beyond 2 is refused */
    int refused = 0;
    for (int i = 0; i < 6; i++) {
        st = za_token(&b, &alice, "payments", "payments%3Aread", &r, tok, sizeof(tok));
        zh_resp_free(&r);
        refused += st == 429;
    }
    assert_true(refused > 0);
}

/* ---- the broker's own timers ------------------------------------------------ */

/* CPU time (user + system) of process pid so far, in clock ticks. */
static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    assert_non_null(p);
    unsigned long long ut = 0, st = 0;
    /* after "pid (comm)": state and 10 fields, then utime and stime */
    assert_int_equal(
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2);
    return (long long)(ut + st);
}

/*
 * The broker's periodic timers (audit fsync, key refresh) measure
 * durations. Run with a wall clock two minutes behind the clock its sleeps
 * are measured on, a timer computed from the wall clock has its deadline
 * already past: the thread spins (and the fsync never comes). On
 * CLOCK_MONOTONIC an idle broker stays idle.
 */
static void test_broker_timers_ignore_wall_clock(void **state)
{
    (void)state;
    struct zh_broker w;
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .clock_offset_s = -120};
    zh_broker_start(&w, &o);
    struct timespec settle = {.tv_nsec = 300000000L};
    nanosleep(&settle, NULL);
    long long t0 = cpu_ticks(w.pid);
    struct timespec idle = {.tv_sec = 2};
    while (nanosleep(&idle, &idle) != 0)
        ;
    long long spent_ms = (cpu_ticks(w.pid) - t0) * 1000 / sysconf(_SC_CLK_TCK);
    int rc = zh_broker_stop(&w);
    if (spent_ms > 400) {
        zh_broker_dump_log(&w);
        fail_msg("an idle broker with its wall clock behind spent %lld ms of CPU in 2 s", spent_ms);
    }
    assert_int_equal(rc, 0);
    zh_rmtree(w.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_revoke_token_file_redis_ahead, setup_ahead, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_jti_claimed_exp_redis_ahead, setup_ahead,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revoke_token_dead_by_lifted_state, setup_ahead,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_clock_step_back, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_broker_timers_ignore_wall_clock, setup_plain,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
