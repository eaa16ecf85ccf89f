/*
 * test_signer_client.c - the HTTP process's side of the signer
 * (signer_client.c): start, call, fail closed, restart.
 *
 * The signer is a real child process started by the client the way the
 * broker starts it: this test binary is the "exe", and main() serves a call
 * with SIGNER_ARGV1 either as the real signer (signer_process_main) or, when
 * the key directory argument is "fake:MODE", as a fake signer that answers
 * the records on its channels as MODE says: correctly, short, long,
 * malformed, with a late answer first, with an error, not at all, or by
 * dying. The marker path (the passphrase file argument) lets a fake die
 * once and then serve.
 *
 * What is checked: calls are answered over the channels, each caller its
 * own answer, also from several threads over fewer channels; an answer of
 * the wrong length, version, op or contents, a signer that dies, one that
 * does not answer (killed at the deadline) and one that is not running all
 * give UNAVAILABLE, never ZTB_OK; a late answer to another call is skipped;
 * the signer's own error is passed on; a cancelled call's answer is drained
 * so the channel stays in step; a dead signer is started again and
 * on_restart runs; a start whose signer cannot load fails with its reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/signer/signer.h"
#include "broker/signer/signer_client.h"
#include "pki/keystore.h"

#define KID "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* 43 characters */

/* ---- the fake signer (runs in the child) -------------------------------- */

/* The correct answer to q in out (sizeof(struct signer_state) bytes); its
 * length. MAC data is the digest xor 0x5a, so each caller can tell its own. */
static size_t fake_answer(const struct signer_req *q, uint8_t *out)
{
    memset(out, 0, sizeof(struct signer_state));
    if (q->op == SIGNER_OP_STATE || q->op == SIGNER_OP_LIST) {
        struct signer_state *s = (struct signer_state *)out;
        s->version = SIGNER_PROTO_VERSION;
        s->op = q->op;
        s->seq = q->seq;
        s->len = 2;
        memcpy(s->text, "{}", 2);
        return sizeof(*s);
    }
    struct signer_resp *r = (struct signer_resp *)out;
    r->version = SIGNER_PROTO_VERSION;
    r->op = q->op;
    r->seq = q->seq;
    if (q->op == SIGNER_OP_SIGN) {
        memcpy(r->kid, q->kid, sizeof(r->kid));
        r->len = 64 * q->count;
        for (uint32_t i = 0; i < q->count; i++) {
            memcpy(r->data + 64 * i, q->digest[i], 32);
            memcpy(r->data + 64 * i + 32, q->digest[i], 32);
        }
    } else if (q->op == SIGNER_OP_MAC) {
        r->len = 32;
        for (int i = 0; i < 32; i++)
            r->data[i] = q->digest[0][i] ^ 0x5a;
    }
    return sizeof(*r);
}

/* Serve fds 3.. as mode says until every channel is closed. */
static int fake_signer(unsigned nch, const char *mode, const char *marker)
{
    if (strcmp(mode, "dieonce") == 0) {
        int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {
            close(fd);
            mode = "die";
        } else {
            mode = "ok";
        }
    }
    if (strcmp(mode, "nohello") == 0)
        return 1;
    struct signer_hello h;
    memset(&h, 0, sizeof(h));
    h.version = SIGNER_PROTO_VERSION;
    if (strcmp(mode, "refuse") == 0) {
        h.err = ZTB_ERR_NOT_FOUND;
        snprintf(h.msg, sizeof(h.msg), "no key store here: run ztbctl keys init");
    }
    if (send(SIGNER_FIRST_FD, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h) || h.err != 0)
        return 1;
    struct pollfd p[SIGNER_MAX_CHANNELS];
    for (unsigned i = 0; i < nch; i++)
        p[i] = (struct pollfd){.fd = SIGNER_FIRST_FD + (int)i, .events = POLLIN};
    static uint8_t out[sizeof(struct signer_state) + 1];
    unsigned open_ch = nch;
    while (open_ch > 0) {
        if (poll(p, nch, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (unsigned i = 0; i < nch; i++) {
            if (p[i].fd < 0 || p[i].revents == 0)
                continue;
            struct signer_req q;
            ssize_t n = recv(p[i].fd, &q, sizeof(q), 0);
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_ch--;
                continue;
            }
            if (strcmp(mode, "die") == 0)
                _exit(3);
            if (strcmp(mode, "hang") == 0)
                continue;
            size_t len = fake_answer(&q, out);
            struct signer_resp *r = (struct signer_resp *)out;
            if (strcmp(mode, "short") == 0)
                len--;
            else if (strcmp(mode, "long") == 0)
                len++;
            else if (strcmp(mode, "badver") == 0)
                r->version = 2;
            else if (strcmp(mode, "wrongop") == 0)
                r->op = SIGNER_OP_CA_SIGN;
            else if (strcmp(mode, "badlen") == 0)
                r->len = 64; /* a MAC is 32 bytes */
            else if (strcmp(mode, "errans") == 0) {
                r->err = ZTB_ERR_UNKNOWN_KID;
                r->len = 0;
                memset(r->data, 0, sizeof(r->data));
            } else if (strcmp(mode, "stale") == 0) {
                r->seq = q.seq - 1; /* the answer to an abandoned call first */
                memset(r->data, 0xee, r->len);
                (void)send(p[i].fd, out, len, MSG_NOSIGNAL);
                len = fake_answer(&q, out);
            }
            (void)send(p[i].fd, out, len, MSG_NOSIGNAL);
        }
    }
    return 0;
}

/* ---- the test side ------------------------------------------------------- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static unsigned g_restarts;

static void on_restart(void)
{
    pthread_mutex_lock(&g_mu);
    g_restarts++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

/* 1 once on_restart has run n times (waits up to 10 s). */
static int restarted(unsigned n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&g_mu);
    while (g_restarts < n && pthread_cond_timedwait(&g_cv, &g_mu, &until) != ETIMEDOUT)
        ;
    int ok = g_restarts >= n;
    pthread_mutex_unlock(&g_mu);
    return ok;
}

/* 1 once the client has seen the signer go down (waits up to 10 s). */
static int went_down(void)
{
    for (int i = 0; i < 1000 && signer_client_up(); i++)
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    return !signer_client_up();
}

struct fix {
    char dir[64];
    char marker[128];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ztb-signer-client-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->marker, sizeof(f->marker), "%s/died", f->dir);
    pthread_mutex_lock(&g_mu);
    g_restarts = 0;
    pthread_mutex_unlock(&g_mu);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    signer_client_stop();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Start a fake signer in mode with channels channels. */
static ztb_err start_fake(struct fix *f, const char *mode, unsigned channels)
{
    struct signer_opts o;
    memset(&o, 0, sizeof(o));
    snprintf(o.keys_dir, sizeof(o.keys_dir), "fake:%s", mode);
    snprintf(o.passphrase_file, sizeof(o.passphrase_file), "%s", f->marker);
    char err[512] = "";
    return signer_client_start(&o, "/proc/self/exe", channels, on_restart, err, sizeof(err));
}

static void mac_req(struct signer_req *q, uint8_t fill)
{
    memset(q, 0, sizeof(*q));
    q->op = SIGNER_OP_MAC;
    q->count = 1;
    memset(q->digest[0], fill, 32);
}

/* A MAC call; its answer must be the fake's MAC of fill when ZTB_OK. */
static ztb_err mac_call(uint8_t fill)
{
    struct signer_req q;
    struct signer_resp r;
    mac_req(&q, fill);
    memset(&r, 0xee, sizeof(r));
    ztb_err rv = signer_call(&q, &r, sizeof(r));
    if (rv == ZTB_ERR_UNAVAILABLE) {
        /* nothing of a refused answer is left for a careless caller */
        static const struct signer_resp zero;
        assert_memory_equal(&r, &zero, sizeof(r));
    }
    if (rv == ZTB_OK) {
        uint8_t want[32];
        memset(want, fill ^ 0x5a, sizeof(want));
        assert_int_equal(r.len, 32);
        assert_memory_equal(r.data, want, 32);
    }
    return rv;
}

/* With no signer every call fails at once; a bad start is refused. */
static void test_not_started(void **state)
{
    struct fix *f = *state;
    assert_int_equal(signer_client_up(), 0);
    assert_int_equal(mac_call(1), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(start_fake(f, "ok", 0), ZTB_ERR_INVALID_ARG);
    assert_int_equal(start_fake(f, "ok", SIGNER_MAX_CHANNELS + 1), ZTB_ERR_INVALID_ARG);
    struct signer_req q;
    struct signer_resp r;
    mac_req(&q, 1);
    q.op = 99; /* no answer size: refused before anything is sent */
    assert_int_equal(signer_call(&q, &r, sizeof(r)), ZTB_ERR_INVALID_ARG);
}

/* Calls are answered; SIGN carries the kid; STATE the big answer; a second
 * start is refused; after stop calls fail UNAVAILABLE. */
static void test_calls(void **state)
{
    struct fix *f = *state;
    assert_int_equal(start_fake(f, "ok", 2), ZTB_OK);
    assert_int_equal(signer_client_up(), 1);
    assert_true(signer_client_pid() > 0);
    assert_int_equal(start_fake(f, "ok", 2), ZTB_ERR_STATE);
    assert_int_equal(mac_call(7), ZTB_OK);

    struct signer_req q;
    struct signer_resp r;
    memset(&q, 0, sizeof(q));
    q.op = SIGNER_OP_SIGN;
    memcpy(q.kid, KID, strlen(KID));
    q.count = 2;
    memset(q.digest[0], 3, 32);
    memset(q.digest[1], 4, 32);
    assert_int_equal(signer_call(&q, &r, sizeof(r)), ZTB_OK);
    assert_int_equal(q.version, SIGNER_PROTO_VERSION); /* set by the call */
    assert_int_equal(r.seq, q.seq);
    assert_int_equal(r.len, 128);
    assert_string_equal(r.kid, KID);
    assert_int_equal(r.data[64], 4);

    static struct signer_state st;
    memset(&q, 0, sizeof(q));
    q.op = SIGNER_OP_STATE;
    q.now = 1;
    assert_int_equal(signer_call(&q, &st, sizeof(st)), ZTB_OK);
    assert_string_equal(st.text, "{}");
    /* the wrong answer size for the op: refused */
    assert_int_equal(signer_call(&q, &r, sizeof(r)), ZTB_ERR_INVALID_ARG);

    signer_client_stop();
    assert_int_equal(signer_client_up(), 0);
    assert_int_equal(signer_client_pid(), 0);
    assert_int_equal(mac_call(7), ZTB_ERR_UNAVAILABLE);
}

/* Every malformed answer fails the call closed: UNAVAILABLE, never ZTB_OK. */
static void test_bad_answers(void **state)
{
    struct fix *f = *state;
    static const char *const modes[] = {"short", "long", "badver", "wrongop", "badlen"};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        assert_int_equal(start_fake(f, modes[i], 1), ZTB_OK);
        if (mac_call(9) != ZTB_ERR_UNAVAILABLE)
            fail_msg("mode %s: not UNAVAILABLE", modes[i]);
        signer_client_stop();
    }
}

/* The signer's own error is the call's; a late answer to another call is
 * skipped and the caller gets its own. */
static void test_error_and_stale(void **state)
{
    struct fix *f = *state;
    assert_int_equal(start_fake(f, "errans", 1), ZTB_OK);
    assert_int_equal(mac_call(5), ZTB_ERR_UNKNOWN_KID);
    assert_int_equal(mac_call(5), ZTB_ERR_UNKNOWN_KID); /* the channel is still in step */
    signer_client_stop();
    assert_int_equal(start_fake(f, "stale", 1), ZTB_OK);
    assert_int_equal(mac_call(6), ZTB_OK); /* mac_call checks the data is its own */
    assert_int_equal(mac_call(8), ZTB_OK);
}

/* A cancelled call's answer is read and dropped: with one channel, the next
 * call gets its own answer, not the cancelled one. A recv after a failed
 * send, or a second cancel, is harmless. */
static void test_send_cancel(void **state)
{
    struct fix *f = *state;
    assert_int_equal(start_fake(f, "ok", 1), ZTB_OK);
    struct signer_req q;
    struct signer_pending p;
    mac_req(&q, 0x11);
    assert_int_equal(signer_send(&q, &p), ZTB_OK);
    assert_true(p.fd >= 0);
    signer_cancel(&p, &q);
    assert_int_equal(p.fd, -1);
    signer_cancel(&p, &q);
    assert_int_equal(mac_call(0x22), ZTB_OK);

    /* send and receive in two halves */
    struct signer_resp r;
    mac_req(&q, 0x33);
    assert_int_equal(signer_send(&q, &p), ZTB_OK);
    assert_int_equal(signer_recv(&p, &q, &r, sizeof(r)), ZTB_OK);
    assert_int_equal(r.data[0], 0x33 ^ 0x5a);
    assert_int_equal(signer_recv(&p, &q, &r, sizeof(r)), ZTB_ERR_UNAVAILABLE); /* none held */
}

/* A signer that dies during a call fails it UNAVAILABLE; calls fail at once
 * while it is down; it is started again after the back-off, on_restart
 * runs and calls are answered again. */
static void test_dies_and_restarts(void **state)
{
    struct fix *f = *state;
    assert_int_equal(start_fake(f, "dieonce", 2), ZTB_OK);
    pid_t first = signer_client_pid();
    assert_int_equal(mac_call(1), ZTB_ERR_UNAVAILABLE);
    assert_true(went_down());
    assert_int_equal(mac_call(1), ZTB_ERR_UNAVAILABLE);
    assert_true(restarted(1));
    assert_int_equal(signer_client_up(), 1);
    assert_true(signer_client_pid() > 0);
    assert_true(signer_client_pid() != first);
    assert_int_equal(mac_call(2), ZTB_OK);
}

/* A signer that does not answer: the call fails UNAVAILABLE at its
 * deadline (2 s, not the slow 30 s), and the hung signer is killed, so the
 * supervisor sees it go down. */
static void test_hang(void **state)
{
    struct fix *f = *state;
    assert_int_equal(start_fake(f, "hang", 1), ZTB_OK);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(mac_call(1), ZTB_ERR_UNAVAILABLE);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (long)(b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    assert_true(ms >= 1900);
    assert_true(ms < 10000);
    assert_true(went_down());
}

/* A signer that cannot load fails the start with its own reason; one that
 * exits before its hello fails it UNAVAILABLE; nothing is left running. */
static void test_start_fails(void **state)
{
    struct fix *f = *state;
    struct signer_opts o;
    memset(&o, 0, sizeof(o));
    snprintf(o.keys_dir, sizeof(o.keys_dir), "fake:refuse");
    char err[512] = "";
    assert_int_equal(signer_client_start(&o, "/proc/self/exe", 1, NULL, err, sizeof(err)),
                     ZTB_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "ztbctl keys init"));
    assert_int_equal(signer_client_up(), 0);
    assert_int_equal(start_fake(f, "nohello", 1), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(signer_client_up(), 0);
    assert_int_equal(mac_call(1), ZTB_ERR_UNAVAILABLE);
    /* and a later start works */
    assert_int_equal(start_fake(f, "ok", 1), ZTB_OK);
    assert_int_equal(mac_call(1), ZTB_OK);
}

#define THREADS 6
#define CALLS   300

static void *caller(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (int i = 0; i < CALLS; i++)
        if (mac_call((uint8_t)(id * 31 + (uintptr_t)i)) != ZTB_OK)
            return (void *)1;
    return NULL;
}

/* Several threads over fewer channels: every call is answered, each with
 * its own MAC (mac_call checks), none waits forever for a channel. */
static void test_threads(void **state)
{
    struct fix *f = *state;
    assert_int_equal(start_fake(f, "ok", 2), ZTB_OK);
    pthread_t th[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, caller, (void *)i), 0);
    for (int i = 0; i < THREADS; i++) {
        void *rv = NULL;
        assert_int_equal(pthread_join(th[i], &rv), 0);
        assert_null(rv);
    }
}

/* The real signer process: STATE names the active key, SIGN with it gives
 * a signature; killed, calls fail UNAVAILABLE until it is started again,
 * and then sign again. */
static void test_real_signer(void **state)
{
    struct fix *f = *state;
    struct signer_opts o;
    memset(&o, 0, sizeof(o));
    snprintf(o.keys_dir, sizeof(o.keys_dir), "%s/keys", f->dir);
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(o.keys_dir, NULL, (int64_t)time(NULL), &ks), ZTB_OK);
    ztb_keystore_close(ks);
    char err[512] = "";
    assert_int_equal(signer_client_start(&o, "/proc/self/exe", 2, on_restart, err, sizeof(err)),
                     ZTB_OK);
    static struct signer_state st;
    struct signer_req q;
    memset(&q, 0, sizeof(q));
    q.op = SIGNER_OP_STATE;
    q.now = (int64_t)time(NULL);
    assert_int_equal(signer_call(&q, &st, sizeof(st)), ZTB_OK);
    assert_int_equal(strlen(st.active_kid), 43);

    struct signer_resp r;
    memset(&q, 0, sizeof(q));
    q.op = SIGNER_OP_SIGN;
    memcpy(q.kid, st.active_kid, 43);
    q.count = 1;
    memset(q.digest[0], 9, 32);
    assert_int_equal(signer_call(&q, &r, sizeof(r)), ZTB_OK);
    assert_int_equal(r.len, 64);

    pid_t pid = signer_client_pid();
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_true(went_down());
    memset(&r, 0, sizeof(r));
    assert_int_equal(signer_call(&q, &r, sizeof(r)), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(r.len, 0);
    assert_true(restarted(1));
    assert_int_equal(signer_call(&q, &r, sizeof(r)), ZTB_OK);
    assert_int_equal(r.len, 64);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], SIGNER_ARGV1) == 0) {
        if (argc == 8 && strncmp(argv[3], "fake:", 5) == 0)
            return fake_signer((unsigned)atoi(argv[2]), argv[3] + 5, argv[4]);
        return signer_process_main(argc, argv);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_not_started, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_and_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dies_and_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hang, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_signer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
