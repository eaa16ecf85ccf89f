/*
 * test_privsep.c - privilege separation, against the real ztb-broker, its
 * signer process and a real Redis.
 *
 * The attack: anything that reads the memory of the process that parses the
 * network (an over-read, a leaked core, a debugger on that process) must not
 * find a private key. The test reads the secrets from the key files the way
 * an auditor would (the raw P-256 scalar d of every signing key and of the
 * agent CA key, parsed from the PEM with OpenSSL; the 32-byte session key),
 * makes the broker use all of them (enroll: CA signature; session: MAC;
 * token: ES256), then scans every readable mapping of the HTTP process
 * (/proc/PID/maps, /proc/PID/mem) for each secret, in big-endian and in
 * little-endian order (OpenSSL's bignum limbs): none may be there. The same
 * scan of the signer process must find them, which shows the scan works.
 *
 * Fail closed: the signer killed, every request needing a signature or MAC
 * answers 503 with Retry-After (never 401, never a token), and the broker
 * recovers by itself (its supervisor starts a new signer). A hung signer
 * (SIGSTOP) is treated the same way.
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
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
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "agent.h"
#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"rate_limits\": {\n"
    "   \"per_agent\": {\"rate\": 6000, \"burst\": 1000, \"period\": 60},\n"
    "   \"per_action\": {\"rate\": 6000, \"burst\": 1000, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"crm-read\", \"effect\": \"allow\", \"agents\": [\"worker\", \"w2\", \"w3\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}]}\n";

static struct zh_broker b;
static struct zh_redis rd;

#define MAX_SECRETS 16

struct secret {
    char what[64];
    uint8_t be[32], le[32];
};

static struct secret secrets[MAX_SECRETS];
static size_t nsecrets;

static void add_secret(const char *what, const uint8_t v[32])
{
    assert_true(nsecrets < MAX_SECRETS);
    struct secret *s = &secrets[nsecrets++];
    snprintf(s->what, sizeof(s->what), "%s", what);
    memcpy(s->be, v, 32);
    for (int i = 0; i < 32; i++)
        s->le[i] = v[31 - i];
}

/* The raw private scalar d of a PEM private key file. */
static void add_pem_key(const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("%s: cannot open %s", what, path);
    EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(pk);
    BIGNUM *d = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
    uint8_t raw[32];
    assert_int_equal(BN_bn2binpad(d, raw, 32), 32);
    add_secret(what, raw);
    BN_clear_free(d);
    EVP_PKEY_free(pk);
}

static void read_secrets(void)
{
    nsecrets = 0;
    char path[600];
    snprintf(path, sizeof(path), "%s/keys", b.keys);
    DIR *dir = opendir(path);
    assert_non_null(dir);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".pem") != 0)
            continue;
        char p[900];
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        add_pem_key("signing key", p);
    }
    closedir(dir);
    assert_true(nsecrets >= 1);
    snprintf(path, sizeof(path), "%s/ca/ca.key.pem", b.keys);
    add_pem_key("agent CA key", path);
    snprintf(path, sizeof(path), "%s/session.key", b.keys);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t sk[32];
    assert_int_equal(fread(sk, 1, 32, f), 32);
    fclose(f);
    add_secret("session key", sk);
}

/* Scan every readable mapping of pid; found[i] |= 1 if secret i is in it. */
static void scan(pid_t pid, int *found)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *maps = fopen(path, "r");
    assert_non_null(maps);
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    int mem = open(path, O_RDONLY);
    assert_true(mem >= 0);
    size_t cap = 4u << 20;
    uint8_t *buf = malloc(cap + 32);
    assert_non_null(buf);
    char line[512];
    size_t scanned = 0;
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long lo, hi;
        char perms[8];
        /* over 128 MiB: AddressSanitizer's shadow memory (reading it would
         * fault in terabytes); heaps, stacks and libraries are far smaller */
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
            strstr(line, "[vvar]") != NULL || strstr(line, "[vsyscall]") != NULL ||
            hi - lo > (128ul << 20))
            continue;
        size_t carry = 0;
        for (unsigned long at = lo; at < hi;) {
            size_t want = hi - at < cap ? hi - at : cap;
            ssize_t n = pread(mem, buf + carry, want, (off_t)at);
            if (n <= 0)
                break;
            size_t len = carry + (size_t)n;
            for (size_t i = 0; i < nsecrets; i++)
                if (memmem(buf, len, secrets[i].be, 32) || memmem(buf, len, secrets[i].le, 32))
                    found[i] = 1;
            carry = len < 31 ? len : 31; /* a secret may straddle two reads */
            memmove(buf, buf + len - carry, carry);
            at += (unsigned long)n;
            scanned += (size_t)n;
        }
    }
    free(buf);
    close(mem);
    fclose(maps);
    assert_true(scanned > 1u << 20); /* the scan did read the process */
}

/* The signer: the broker's child whose command line says so. */
static pid_t signer_pid(void)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *e;
    pid_t found = 0;
    while ((e = readdir(d)) != NULL && found == 0) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        char p[64], stat[512];
        snprintf(p, sizeof(p), "/proc/%ld/stat", pid);
        FILE *f = fopen(p, "r");
        if (f == NULL)
            continue;
        size_t n = fread(stat, 1, sizeof(stat) - 1, f);
        fclose(f);
        stat[n] = '\0';
        const char *rp = strrchr(stat, ')');
        long ppid = 0;
        char st;
        if (rp == NULL || sscanf(rp + 1, " %c %ld", &st, &ppid) != 2 || ppid != b.pid || st == 'Z')
            continue;
        snprintf(p, sizeof(p), "/proc/%ld/cmdline", pid);
        f = fopen(p, "r");
        char cmd[256] = "";
        if (f != NULL) {
            size_t m = fread(cmd, 1, sizeof(cmd) - 1, f);
            cmd[m] = '\0';
            /* argv[1] follows argv[0]'s NUL */
            const char *a1 = cmd + strlen(cmd) + 1;
            if (a1 < cmd + m && strcmp(a1, "--signer-process") == 0)
                found = (pid_t)pid;
            fclose(f);
        }
    }
    closedir(d);
    return found;
}

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, policy_doc);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
    zh_redis_stop(&rd, 1);
    return 0;
}

static void test_http_process_holds_no_private_key(void **state)
{
    (void)state;
    struct za_agent w;
    za_enroll(&b, &w, "worker"); /* CA signature and a session MAC */
    struct zh_resp r;
    char tok[4096];
    for (int i = 0; i < 20; i++) { /* ES256 signatures and MAC checks */
        assert_int_equal(za_token(&b, &w, "crm", "crm%3Aread", &r, tok, sizeof(tok)), 200);
        zh_resp_free(&r);
    }
    read_secrets();
    int in_http[MAX_SECRETS] = {0}, in_signer[MAX_SECRETS] = {0};
    scan(b.pid, in_http);
    int leaked = 0;
    for (size_t i = 0; i < nsecrets; i++) {
        if (in_http[i]) {
            fprintf(stderr, "the HTTP process (pid %d) holds the %s\n", (int)b.pid,
                    secrets[i].what);
            leaked = 1;
        }
    }
    assert_false(leaked);
    pid_t signer = signer_pid();
    assert_true(signer > 0);
    assert_int_not_equal(signer, b.pid);
    scan(signer, in_signer);
    /* the scan finds what is there: the signer holds the active key, the
     * CA key and the session key */
    size_t signing_found = 0;
    for (size_t i = 0; i < nsecrets; i++)
        if (strcmp(secrets[i].what, "signing key") == 0)
            signing_found += (size_t)in_signer[i];
        else if (!in_signer[i])
            fail_msg("the scan did not find the %s in the signer (pid %d)", secrets[i].what,
                     (int)signer);
    assert_true(signing_found >= 1);

    /* the signer writes no core file */
    char p[64], lim[4096];
    snprintf(p, sizeof(p), "/proc/%d/limits", (int)signer);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    size_t n = fread(lim, 1, sizeof(lim) - 1, f);
    fclose(f);
    lim[n] = '\0';
    const char *core = strstr(lim, "Max core file size");
    assert_non_null(core);
    long soft = -1, hard = -1;
    assert_int_equal(sscanf(core + strlen("Max core file size"), " %ld %ld", &soft, &hard), 2);
    assert_int_equal(soft, 0);
    assert_int_equal(hard, 0);

    /* a seccomp filter is on, and it is not dumpable: the kernel then owns
     * its /proc files as root although it runs as the service user */
    char st[4096];
    snprintf(p, sizeof(p), "/proc/%d/status", (int)signer);
    f = fopen(p, "r");
    assert_non_null(f);
    n = fread(st, 1, sizeof(st) - 1, f);
    fclose(f);
    st[n] = '\0';
    assert_non_null(strstr(st, "\nSeccomp:\t2\n"));
    const char *uid = strstr(st, "\nUid:\t");
    assert_non_null(uid);
    long ruid = strtol(uid + 6, NULL, 10);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    if (ruid != 0) /* as root the owner is root either way */
        assert_int_equal(sb.st_uid, 0);
    za_free(&w);
}

/* 1 once pid has exited (a zombie, or reaped): a cheap look at one file. */
static int dead_or_zombie(pid_t pid)
{
    char p[64], stat[512];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (f == NULL)
        return 1;
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *rp = strrchr(stat, ')');
    return rp == NULL || rp[1] == '\0' || rp[2] == 'Z' || rp[2] == 'X';
}

/* 1 once every thread of pid is stopped: kill(SIGSTOP) only queues the stop,
 * and until each thread has taken it a signer thread woken by a request may
 * still answer it. */
static int all_threads_stopped(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/task", (int)pid);
    DIR *d = opendir(p);
    if (d == NULL)
        return 0;
    struct dirent *e;
    int threads = 0, stopped = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sp[300], stat[512];
        snprintf(sp, sizeof(sp), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        FILE *f = fopen(sp, "r");
        if (f == NULL)
            continue;
        size_t n = fread(stat, 1, sizeof(stat) - 1, f);
        fclose(f);
        stat[n] = '\0';
        const char *rp = strrchr(stat, ')');
        threads++;
        if (rp != NULL && rp[1] == ' ' && (rp[2] == 'T' || rp[2] == 't'))
            stopped++;
    }
    closedir(d);
    return threads > 0 && stopped == threads;
}

static void stop_signer(pid_t pid)
{
    assert_int_equal(kill(pid, SIGSTOP), 0);
    for (int i = 0; i < 2000 && !all_threads_stopped(pid); i++)
        usleep(2500);
    assert_true(all_threads_stopped(pid));
}

/* Poll until a token is issued again (at most 20 s). */
static int token_ok(void *arg)
{
    struct za_agent *a = arg;
    struct zh_resp r;
    long st = za_token(&b, a, "crm", "crm%3Aread", &r, NULL, 0);
    zh_resp_free(&r);
    return st == 200;
}

static void expect_503(long st, struct zh_resp *r)
{
    if (st != 503)
        fail_msg("expected 503 with the signer down, got %ld %s", st, r->body ? r->body : "");
    char ra[32];
    assert_non_null(zh_resp_header(r, "Retry-After", ra, sizeof(ra)));
    zh_resp_free(r);
}

static void test_signer_killed_fails_closed_and_recovers(void **state)
{
    (void)state;
    struct za_agent w;
    za_enroll(&b, &w, "w2");
    struct zh_resp r;
    assert_int_equal(za_token(&b, &w, "crm", "crm%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    pid_t signer = 0;
    long st = 0;
    /* tokens (signature and session MAC), sessions and enrollment: 503.
     * The broker restarts its signer after 1 s; on a machine so loaded that
     * the request came later than that, a new signer rightly signed it:
     * then kill that one too (a 200 with no signer running fails) */
    for (int attempt = 0; attempt < 5; attempt++) {
        signer = signer_pid();
        assert_true(signer > 0);
        assert_int_equal(kill(signer, SIGKILL), 0);
        for (int i = 0; i < 400 && !dead_or_zombie(signer); i++)
            usleep(2500);
        st = za_token(&b, &w, "crm", "crm%3Aread", &r, NULL, 0);
        if (st == 503)
            break;
        pid_t now = signer_pid();
        if (now == 0 || now == signer)
            fail_msg("a token (%ld) while the signer was down", st);
        zh_resp_free(&r);
    }
    expect_503(st, &r);
    struct za_agent w3;
    memset(&w3, 0, sizeof(w3));
    snprintf(w3.name, sizeof(w3.name), "w3");
    assert_int_equal(ztb_key_generate(&w3.key), ZTB_OK);
    char *join = za_join_token(&b, "w3");
    expect_503(za_enroll_with(&b, &w3, join, &r), &r);
    free(join);
    assert_int_equal(zh_get(&b, "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    zh_resp_free(&r);

    /* it recovers by itself */
    if (!za_wait(token_ok, &w, 20000)) {
        zh_broker_dump_log(&b);
        fail_msg("no token within 20 s of the signer's death");
    }
    pid_t again = signer_pid();
    assert_true(again > 0);
    assert_int_not_equal(again, signer);

    /* a hung signer: calls time out (503), the hung one is replaced */
    stop_signer(again);
    expect_503(za_token(&b, &w, "crm", "crm%3Aread", &r, NULL, 0), &r);
    if (!za_wait(token_ok, &w, 20000)) {
        zh_broker_dump_log(&b);
        fail_msg("no token within 20 s of the signer hanging");
    }
    assert_int_not_equal(signer_pid(), again);
    za_free(&w);
    za_free(&w3);
}

/* A hung signer does not hang the broker's stop: it is ended within its
 * grace period and the broker exits cleanly. */
static void test_broker_stops_with_a_hung_signer(void **state)
{
    (void)state;
    pid_t signer = signer_pid();
    assert_true(signer > 0);
    stop_signer(signer);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(zh_broker_stop(&b), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(s < 15.0);
    assert_true(dead_or_zombie(signer));
    /* a fresh one, so that the teardown has a broker to stop */
    zh_rmtree(b.dir);
    zh_broker_start_issuing(&b, rd.url, policy_doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_process_holds_no_private_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_killed_fails_closed_and_recovers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_broker_stops_with_a_hung_signer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
