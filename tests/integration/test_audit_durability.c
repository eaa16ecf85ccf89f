/*
 * test_audit_durability.c - the audit trail of the real broker on a real
 * full disk, and its proof.
 *
 * The broker's audit directory is a small tmpfs (mounted here, unmounted in
 * teardown; the tests run as root). While agents ask for tokens, the disk
 * is filled: no line is left half written, every decision that needs its
 * record fails closed (503, ztb_error AUDIT_UNAVAILABLE, Retry-After),
 * /readyz is not ready and the metrics say why, a quarantine still takes
 * effect and its answer says the record is pending. Once the disk is freed
 * the pending record is written and tokens flow again; the quarantined
 * agent's refused session is recorded. At the end the log
 * verifies with the broker's JWKS, every token that was handed out is in
 * it, and tampering with the real log (an edit, a cut head, a cut end
 * against an anchor) is found. Last, kill -9 under load: every token
 * answered is in the log, the chain verifies, and the broker starts again
 * on it.
 */
#define _GNU_SOURCE /* memrchr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 120,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 100000, \"burst\": 100000, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 100000, \"burst\": 100000, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static char root[256], state[300], audit_dir[320], log_path[400], jwks_path[400];
static int mounted;

#define MAX_JTI 20000
static char *g_jti[MAX_JTI]; /* tokens the broker handed out */
static _Atomic int g_njti, g_n503, g_stop, g_killed;

static int setup(void **st)
{
    (void)st;
    zh_redis_start(&rd);
    zh_tmpdir(root, sizeof(root));
    snprintf(state, sizeof(state), "%s/state", root);
    snprintf(audit_dir, sizeof(audit_dir), "%s/audit", state);
    snprintf(log_path, sizeof(log_path), "%s/audit.log", audit_dir);
    snprintf(jwks_path, sizeof(jwks_path), "%s/jwks.json", root);
    assert_int_equal(mkdir(state, 0700), 0);
    assert_int_equal(mkdir(audit_dir, 0700), 0);
    /* a real small filesystem: 512 KiB */
    if (mount("tmpfs", audit_dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0700") != 0)
        fail_msg("mount tmpfs on %s: %s (the test runs as root)", audit_dir, strerror(errno));
    mounted = 1;
    char keys[400];
    snprintf(keys, sizeof(keys), "%s/keys", state);
    const char *init[] = {zh_bin("ztbctl"), "keys", "--dir", keys, "init", NULL};
    const char *ca[] = {zh_bin("ztbctl"), "ca",        "--dir", keys, "init",
                        "--trust-domain", "ztb.local", NULL};
    char *out, *err;
    assert_int_equal(zh_run(init, &out, &err), 0);
    free(out);
    free(err);
    assert_int_equal(zh_run(ca, &out, &err), 0);
    free(out);
    free(err);
    const char *extra[] = {"--audit-replica", "replica-a", "--audit-checkpoint-records", "50",
                           NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .policy = policy_doc, .state_dir = state, .extra_args = extra};
    zh_broker_start(&b, &o);
    return 0;
}

/* Start the broker again on the same state (the same audit log). */
static void restart(void)
{
    const char *extra[] = {"--audit-replica", "replica-a", "--audit-checkpoint-records", "50",
                           NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .policy = policy_doc, .state_dir = state, .extra_args = extra};
    zh_broker_start(&b, &o);
}

static int teardown(void **st)
{
    (void)st;
    if (b.pid > 0)
        zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    if (mounted && umount2(audit_dir, MNT_DETACH) != 0)
        fprintf(stderr, "umount %s: %s\n", audit_dir, strerror(errno));
    zh_rmtree(b.dir);
    zh_rmtree(root);
    for (int i = 0; i < g_njti; i++)
        free(g_jti[i]);
    return 0;
}

/* za_token, but 0 (and an empty r) when no HTTP answer came: the broker
 * may be killed under it. */
static long try_token(const struct za_agent *a, struct zh_resp *r, char *tok, size_t cap)
{
    char form[2048], url[256];
    snprintf(form, sizeof(form),
             "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
             "&client_assertion_type=%s&client_assertion=%s&audience=payments"
             "&scope=payments%%3Aread",
             ZA_SESSION_TYPE, a->session);
    snprintf(url, sizeof(url), "%s/v1/token", b.url);
    if (zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form, strlen(form), NULL,
                r) != 0 ||
        r->body == NULL) {
        zh_resp_free(r);
        r->status = 0;
        return 0;
    }
    if (r->status == 200) {
        json_t *j = za_json(r);
        snprintf(tok, cap, "%s", json_string_value(json_object_get(j, "access_token")));
        json_decref(j);
    }
    return r->status;
}

/* Agents asking for tokens as fast as they are answered; remembers the jti
 * of every token handed out. */
static void *load(void *arg)
{
    struct za_agent *a = arg;
    char tok[4096];
    while (!atomic_load(&g_stop)) {
        struct zh_resp r;
        long s = try_token(a, &r, tok, sizeof(tok));
        if (atomic_load(&g_killed) && s != 200) { /* the broker is gone */
            zh_resp_free(&r);
            break;
        }
        if (s == 200) {
            json_t *c = za_claims(tok);
            int i = atomic_fetch_add(&g_njti, 1);
            if (i < MAX_JTI)
                g_jti[i] = strdup(json_string_value(json_object_get(c, "jti")));
            json_decref(c);
        } else if (s == 503) {
            char name[64];
            assert_non_null(strstr(r.body, "\"ztb_error\":\"AUDIT_UNAVAILABLE\""));
            assert_non_null(zh_resp_header(&r, "Retry-After", name, sizeof(name)));
            atomic_fetch_add(&g_n503, 1);
            usleep(20000);
        } else {
            fail_msg("token: %ld %s", s, r.body);
        }
        zh_resp_free(&r);
    }
    return NULL;
}

static long get_status(const char *path, char **body)
{
    struct zh_resp r;
    assert_int_equal(zh_get(&b, path, &r), 0);
    long s = r.status;
    if (body != NULL)
        *body = strdup(r.body);
    zh_resp_free(&r);
    return s;
}

/* Fill the filesystem of dir: a file of whatever room is left. */
static void fill(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static char chunk[4096];
    memset(chunk, 'x', sizeof(chunk));
    for (;;) {
        ssize_t w = write(fd, chunk, sizeof(chunk));
        if (w <= 0)
            break;
    }
    for (;;) { /* the last bytes of a page */
        ssize_t w = write(fd, chunk, 1);
        if (w <= 0)
            break;
    }
    close(fd);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static int ctl(char **out, char **err, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl")};
    int n = 1;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return zh_run(argv, out, err);
}

static void test_full_disk_under_load(void **st)
{
    (void)st;
    struct za_agent a1, a2, bob;
    za_enroll(&b, &a1, "alice");
    za_enroll(&b, &a2, "carol");
    za_enroll(&b, &bob, "bob");
    char *body;
    assert_int_equal(get_status("/readyz", &body), 200);
    free(body);
    /* the JWKS, for verifying the checkpoints later */
    struct zh_resp jr;
    assert_int_equal(zh_get(&b, "/.well-known/jwks.json", &jr), 0);
    FILE *jf = fopen(jwks_path, "w");
    fputs(jr.body, jf);
    fclose(jf);
    zh_resp_free(&jr);

    pthread_t t1, t2;
    pthread_create(&t1, NULL, load, &a1);
    pthread_create(&t2, NULL, load, &a2);
    usleep(300000);
    int before = atomic_load(&g_njti);
    assert_true(before > 0);

    /* the disk fills up */
    char filler[400];
    snprintf(filler, sizeof(filler), "%s/filler", audit_dir);
    fill(filler);
    for (int i = 0; i < 100 && atomic_load(&g_n503) < 5; i++)
        usleep(50000);
    assert_true(atomic_load(&g_n503) >= 5);
    /* lines shorter than a token's may still fit the log's last page for a
     * while (each is whole): until it is full, readiness may come back */
    int not_ready = 0;
    for (int i = 0; i < 50 && not_ready < 4; i++) {
        not_ready = get_status("/readyz", &body) == 503 ? not_ready + 1 : 0;
        if (not_ready)
            assert_non_null(strstr(body, "\"audit\":\"unwritable\""));
        free(body);
        usleep(400000);
    }
    assert_int_equal(not_ready, 4); /* 1.6 s: longer than the retry period */
    assert_int_equal(get_status("/metrics", &body), 200);
    assert_non_null(strstr(body, "ztb_audit_writable 0\n"));
    assert_null(strstr(body, "ztb_audit_write_failures_total 0\n"));
    free(body);
    /* a session is refused too, not handed out unrecorded */
    ztb_buf as;
    ztb_buf_init(&as, 8192);
    za_assertion(&b, &bob, NULL, &as);
    char form[8192];
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_ASSERTION_TYPE,
             ztb_buf_cstr(&as));
    ztb_buf_free(&as);
    struct zh_resp sr;
    assert_int_equal(za_post_form(&b, "/v1/session", form, &sr), 503);
    assert_non_null(strstr(sr.body, "AUDIT_UNAVAILABLE"));
    zh_resp_free(&sr);
    /* containment first: the quarantine takes effect, its record is pending */
    char *out, *err;
    const char *quar[] = {"--socket", b.admin_sock, "quarantine", "bob", "--reason", "disk", NULL};
    int rc = ctl(&out, &err, quar);
    assert_int_equal(rc, 3);
    assert_non_null(strstr(err, "pending"));
    free(out);
    free(err);
    struct zh_resp tr;
    char tok[4096];
    assert_int_equal(za_token(&b, &bob, "payments", "payments:read", &tr, tok, sizeof(tok)), 403);
    zh_resp_free(&tr);
    assert_int_equal(get_status("/metrics", &body), 200);
    assert_non_null(strstr(body, "ztb_audit_pending_records 1\n"));
    free(body);

    /* the disk is freed: the pending record goes in, tokens flow again */
    assert_int_equal(unlink(filler), 0);
    long s = 0;
    for (int i = 0; i < 100 && (s = get_status("/readyz", NULL)) != 200; i++)
        usleep(50000);
    assert_int_equal(s, 200);
    int mid = atomic_load(&g_njti);
    for (int i = 0; i < 100 && atomic_load(&g_njti) < mid + 20; i++)
        usleep(50000);
    assert_true(atomic_load(&g_njti) >= mid + 20);
    /* a quarantined agent refused a session leaves a record too */
    ztb_buf_init(&as, 8192);
    za_assertion(&b, &bob, NULL, &as);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_ASSERTION_TYPE,
             ztb_buf_cstr(&as));
    ztb_buf_free(&as);
    assert_int_equal(za_post_form(&b, "/v1/session", form, &sr), 403);
    zh_resp_free(&sr);
    atomic_store(&g_stop, 1);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(zh_broker_stop(&b), 0); /* a last checkpoint */
    b.pid = 0;

    /* the chain verifies with the broker's keys; everything handed out is in it */
    const char *verify[] = {"audit", "verify", log_path, "--jwks", jwks_path, NULL};
    rc = ctl(&out, &err, verify);
    if (rc != 0)
        fail_msg("verify: %s %s", out, err);
    assert_non_null(strstr(out, "chain intact from seq 1"));
    assert_non_null(strstr(out, "proven: seq 1.."));
    if (strstr(out, "after the last checkpoint") != NULL) { /* a clean stop covers all */
        zh_broker_dump_log(&b);
        fail_msg("verify: %s", out);
    }
    free(out);
    free(err);
    char *log = slurp(log_path);
    int n = atomic_load(&g_njti) < MAX_JTI ? atomic_load(&g_njti) : MAX_JTI;
    for (int i = 0; i < n; i++)
        if (strstr(log, g_jti[i]) == NULL)
            fail_msg("token %s was handed out and is not in the audit log", g_jti[i]);
    const char *q = strstr(log, "\"event\":\"revocation.applied\"");
    assert_non_null(q);
    assert_non_null(strstr(q, "\"queued_at\":\""));
    assert_non_null(strstr(log, "\"event\":\"audit.resumed\""));
    assert_non_null(strstr(log, "\"event\":\"auth.session_refused\",\"actor\":\"agent:bob\","
                                "\"agent\":\"bob\",\"reason\":\"quarantined\""));
    assert_non_null(strstr(log, "\"replica\":\"replica-a\""));
    assert_non_null(strstr(log, "\"event\":\"audit.checkpoint\""));
    free(log);
    za_free(&a1);
    za_free(&a2);
    za_free(&bob);
}

/* Tampering with the real broker's log, and cutting either end. */
static void test_tampering_the_real_log(void **st)
{
    (void)st;
    char *out, *err;
    const char *anchor[] = {"audit", "anchor", log_path, "--jwks", jwks_path, NULL};
    assert_int_equal(ctl(&out, &err, anchor), 0);
    char an[128];
    snprintf(an, sizeof(an), "%s", out);
    an[strcspn(an, "\n")] = '\0';
    free(out);
    free(err);
    char *log = slurp(log_path);
    size_t len = strlen(log);
    char copy[450];
    snprintf(copy, sizeof(copy), "%s/copy.log", root);

    /* a token.issued line in the middle changed */
    char *t = strstr(log + len / 2, "\"event\":\"token.issued\"");
    assert_non_null(t);
    char *jti = strstr(t, "\"jti\":\"") + 7;
    char keep = *jti;
    *jti = *jti == 'A' ? 'B' : 'A';
    FILE *f = fopen(copy, "w");
    fputs(log, f);
    fclose(f);
    *jti = keep;
    const char *v[] = {"audit", "verify", copy, "--jwks", jwks_path, NULL};
    assert_int_equal(ctl(&out, &err, v), 1);
    assert_non_null(strstr(err, "was changed"));
    free(out);
    free(err);

    /* `tail -n 10` */
    char *p = log + len - 1;
    for (int i = 0; i < 10; i++)
        p = memrchr(log, '\n', (size_t)(p - log));
    f = fopen(copy, "w");
    fputs(p + 1, f);
    fclose(f);
    assert_int_equal(ctl(&out, &err, v), 1);
    assert_non_null(strstr(err, "head truncated"));
    free(out);
    free(err);

    /* `head -n 20`: chained, proven only as far as its checkpoints; the
     * anchor shows the cut */
    p = log;
    for (int i = 0; i < 20; i++)
        p = strchr(p, '\n') + 1;
    f = fopen(copy, "w");
    fwrite(log, 1, (size_t)(p - log), f);
    fclose(f);
    assert_int_equal(ctl(&out, &err, v), 0);
    free(out);
    free(err);
    const char *va[] = {"audit", "verify", copy, "--jwks", jwks_path, "--anchor", an, NULL};
    assert_int_equal(ctl(&out, &err, va), 1);
    assert_non_null(strstr(err, "its end was cut off"));
    free(out);
    free(err);
    /* the whole log holds its anchor */
    const char *vw[] = {"audit", "verify", log_path, "--jwks", jwks_path, "--anchor", an, NULL};
    assert_int_equal(ctl(&out, &err, vw), 0);
    assert_non_null(strstr(out, "anchor found"));
    free(out);
    free(err);
    free(log);
}

/*
 * kill -9 under load: whatever the broker answered 200 to is in the log, the
 * chain verifies (only what follows the last checkpoint is unproven), and
 * the broker starts again on it and goes on with the same chain.
 */
static void test_kill_9_under_load(void **st)
{
    (void)st;
    for (int i = 0; i < g_njti && i < MAX_JTI; i++)
        free(g_jti[i]);
    atomic_store(&g_njti, 0);
    atomic_store(&g_stop, 0);
    restart();
    struct za_agent a1, a2;
    za_enroll(&b, &a1, "dave");
    za_enroll(&b, &a2, "erin");
    pthread_t t1, t2;
    pthread_create(&t1, NULL, load, &a1);
    pthread_create(&t2, NULL, load, &a2);
    for (int i = 0; i < 100 && atomic_load(&g_njti) < 200; i++)
        usleep(20000);
    assert_true(atomic_load(&g_njti) > 0);
    atomic_store(&g_killed, 1);
    assert_int_equal(kill(b.pid, SIGKILL), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    fprintf(stderr, "(the broker log that follows ends with the kill -9 this test sent)\n");
    assert_int_equal(zh_broker_stop(&b), -SIGKILL);
    atomic_store(&g_killed, 0);

    char *out, *err;
    const char *verify[] = {"audit", "verify", log_path, "--jwks", jwks_path, NULL};
    int rc = ctl(&out, &err, verify);
    if (rc != 0)
        fail_msg("verify after kill -9: %s %s", out, err);
    assert_non_null(strstr(out, "chain intact from seq 1"));
    free(out);
    free(err);
    char *log = slurp(log_path);
    int n = atomic_load(&g_njti) < MAX_JTI ? atomic_load(&g_njti) : MAX_JTI;
    for (int i = 0; i < n; i++)
        if (strstr(log, g_jti[i]) == NULL)
            fail_msg("token %s was handed out before kill -9 and is not in the audit log",
                     g_jti[i]);
    free(log);
    fprintf(stderr, "kill -9: %d tokens handed out, all in the log\n", n);

    /* the broker starts on the log a kill left, and chains on */
    restart();
    struct zh_resp r;
    char tok[4096];
    assert_int_equal(za_token(&b, &a1, "payments", "payments:read", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);
    assert_int_equal(zh_broker_stop(&b), 0);
    b.pid = 0;
    rc = ctl(&out, &err, verify);
    if (rc != 0)
        fail_msg("verify after the restart: %s %s", out, err);
    assert_non_null(strstr(out, "chain intact from seq 1"));
    free(out);
    free(err);
    za_free(&a1);
    za_free(&a2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_disk_under_load),
        cmocka_unit_test(test_tampering_the_real_log),
        cmocka_unit_test(test_kill_9_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
