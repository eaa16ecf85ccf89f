/*
 * test_tls_reload.c - SIGHUP makes the real broker present a new TLS
 * certificate from the next handshake on, without a restart; a pair that a
 * start would refuse (a key that is not the certificate's, a file that is
 * not PEM) is refused at the reload too, and the certificate in force
 * stays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void copy(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    assert_non_null(in);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf), in);
    fclose(in);
    FILE *out = fopen(to, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(out);
    /* the broker re-reads them as its service user (nobody under root) */
    if (geteuid() == 0)
        assert_int_equal(chown(to, 65534, 65534), 0);
}

/* The status of GET /healthz trusting only ca (0: the handshake failed). */
static long get_trusting(const struct zh_broker *b, const char *ca)
{
    zh_tls_trust(ca);
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", b->url);
    struct zh_resp r;
    (void)zh_http("GET", url, NULL, NULL, NULL, 0, NULL, &r);
    long st = r.status;
    zh_resp_free(&r);
    return st;
}

static int log_count(const struct zh_broker *b, const char *needle)
{
    FILE *f = fopen(b->log, "r");
    assert_non_null(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* SIGHUP and wait for the reload's log line (the count of needle to grow). */
static void hup_and_wait(const struct zh_broker *b, const char *needle)
{
    int before = log_count(b, needle);
    assert_int_equal(kill(b->pid, SIGHUP), 0);
    for (int i = 0; i < 250; i++) {
        if (log_count(b, needle) > before)
            return;
        usleep(20000);
    }
    fail_msg("no %s after SIGHUP", needle);
}

static void test_sighup_swaps_the_certificate(void **state)
{
    (void)state;
    char a_dir[256], b_dir[256], live[256];
    char a_crt[300], a_key[300], b_crt[300], b_key[300], crt[300], key[300];
    zh_tmpdir(a_dir, sizeof(a_dir));
    zh_tmpdir(b_dir, sizeof(b_dir));
    zh_tmpdir(live, sizeof(live));
    zh_tls_server_cert(a_dir, a_crt, a_key);
    zh_tls_server_cert(b_dir, b_crt, b_key);
    snprintf(crt, sizeof(crt), "%s/tls.crt", live);
    snprintf(key, sizeof(key), "%s/tls.key", live);
    copy(a_crt, crt);
    copy(a_key, key);

    struct zh_broker b;
    struct zh_broker_opts o = {.tls_cert = crt, .tls_key = key};
    zh_broker_start(&b, &o);
    assert_int_equal(get_trusting(&b, a_crt), 200);
    assert_int_equal(get_trusting(&b, b_crt), 0);

    /* the new pair in place, SIGHUP: presented from the next handshake */
    copy(b_crt, crt);
    copy(b_key, key);
    hup_and_wait(&b, "\"tls.reloaded\"");
    assert_int_equal(get_trusting(&b, b_crt), 200);
    assert_int_equal(get_trusting(&b, a_crt), 0);

    /* a key that is not the certificate's: refused, B stays */
    copy(a_key, key);
    hup_and_wait(&b, "\"tls.reload_refused\"");
    assert_int_equal(log_count(&b, "the key is not the certificate's"), 1);
    assert_int_equal(get_trusting(&b, b_crt), 200);
    /* not PEM at all: refused, B stays */
    FILE *f = fopen(crt, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    copy(b_key, key);
    hup_and_wait(&b, "\"tls.reload_refused\"");
    assert_int_equal(get_trusting(&b, b_crt), 200);

    zh_tls_trust(NULL);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
    zh_rmtree(a_dir);
    zh_rmtree(b_dir);
    zh_rmtree(live);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sighup_swaps_the_certificate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
