/*
 * test_sign_batch.c - the batching of token signatures (sign_batch.c) over a
 * mock transport that stands for the signer: it records each SIGN record
 * sent, answers each with "signatures" made from the digests (so a member
 * that got another member's signature shows), and can die (every send and
 * receive fails UNAVAILABLE, as signer_send/signer_recv do when the signer
 * process is gone) or answer out of step.
 *
 * What is checked: a lone request goes at once; requests made while
 * SIGN_BATCH_FLIGHTS are in flight go together as one partial batch, each member getting its own
 * digest's signature; a full batch leaves the next one to go alone; a
 * dropped signature is still read; the signer dying with one batch in
 * flight and another open fails every member closed (UNAVAILABLE, the
 * broker's 503) and writes no signature, also with the members waiting in
 * threads; an answer that fails the exact checks fails its whole batch; a
 * partial batch's record is exact (unused digests zero, one byte more or
 * less refused).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/signer/sign_batch.h"
#include "broker/signer/signer_msg.h"

#define KID "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* 43 characters */
#define F   SIGN_BATCH_FLIGHTS                            /* records with the signer at once */

static pthread_mutex_t g_mock_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_dead;        /* the signer is gone: sends and receives fail */
static int g_die_on_recv; /* the next receive finds it gone */
static int g_bad_answer;  /* answer with one signature too few */
static unsigned g_recv_delay_us;
static unsigned g_sent, g_received;
static uint32_t g_counts[64];    /* digests per record sent */
static struct signer_req g_last; /* the last record sent */

/* The mock signature of digest d: d twice (64 bytes). */
static void mock_sig(const uint8_t d[32], uint8_t sig[64])
{
    memcpy(sig, d, 32);
    memcpy(sig + 32, d, 32);
}

static ztb_err mock_send(struct signer_req *req, struct signer_pending *p)
{
    pthread_mutex_lock(&g_mock_mu);
    int dead = g_dead;
    if (!dead) {
        req->version = SIGNER_PROTO_VERSION;
        req->seq = ++g_sent;
        if (g_sent <= 64)
            g_counts[g_sent - 1] = req->count;
        g_last = *req;
        p->fd = 1;
    }
    pthread_mutex_unlock(&g_mock_mu);
    /* a record the real signer would take: checked as it would check it */
    if (!dead)
        assert_int_equal(signer_req_decode(req, sizeof(*req), &(struct signer_req){0}, NULL),
                         ZTB_OK);
    return dead ? ZTB_ERR_UNAVAILABLE : ZTB_OK;
}

static ztb_err mock_recv(struct signer_pending *p, const struct signer_req *req, void *out,
                         size_t outsize)
{
    assert_int_equal(outsize, sizeof(struct signer_resp));
    assert_int_equal(p->fd, 1);
    p->fd = -1;
    if (g_recv_delay_us > 0)
        usleep(g_recv_delay_us);
    pthread_mutex_lock(&g_mock_mu);
    if (g_die_on_recv)
        g_dead = 1;
    int dead = g_dead, bad = g_bad_answer;
    g_received++;
    pthread_mutex_unlock(&g_mock_mu);
    if (dead)
        return ZTB_ERR_UNAVAILABLE;
    struct signer_resp a;
    memset(&a, 0, sizeof(a));
    a.version = SIGNER_PROTO_VERSION;
    a.op = req->op;
    a.seq = req->seq;
    memcpy(a.kid, req->kid, sizeof(a.kid));
    uint32_t n = bad ? req->count - 1 : req->count;
    for (uint32_t i = 0; i < n; i++)
        mock_sig(req->digest[i], a.data + 64 * i);
    a.len = 64 * n;
    /* the real checks of signer_resp_decode; signer_recv answers
     * UNAVAILABLE for an answer out of step */
    ztb_err rv = signer_resp_decode(req, &a, sizeof(a), out, outsize);
    return rv == ZTB_OK ? ZTB_OK : ZTB_ERR_UNAVAILABLE;
}

static int setup(void **state)
{
    (void)state;
    g_dead = g_die_on_recv = g_bad_answer = 0;
    g_recv_delay_us = 0;
    g_sent = g_received = 0;
    memset(g_counts, 0, sizeof(g_counts));
    sign_batch_set_transport(mock_send, mock_recv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sign_batch_set_transport(NULL, NULL);
    return 0;
}

static void digest_of(unsigned i, uint8_t d[32])
{
    memset(d, (int)(0x10 + i), 32);
    d[0] = (uint8_t)i;
}

static void assert_own_sig(unsigned i, const uint8_t sig[64])
{
    uint8_t d[32], want[64];
    digest_of(i, d);
    mock_sig(d, want);
    assert_memory_equal(sig, want, 64);
}

static void test_lone_request_goes_at_once(void **state)
{
    (void)state;
    struct sign_ticket t;
    uint8_t d[32], sig[64];
    digest_of(1, d);
    assert_int_equal(sign_batch_begin(KID, d, &t), ZTB_OK);
    assert_int_equal(g_sent, 1); /* sent by begin, before anyone waits */
    assert_int_equal(sign_batch_end(&t, sig), ZTB_OK);
    assert_own_sig(1, sig);
    assert_null(t.b);
    assert_int_equal(sign_batch_end(&t, sig), ZTB_ERR_UNAVAILABLE); /* nothing pending */
    /* a kid too long for the field is refused before anything is sent */
    char longkid[SIGNER_KID_FIELD + 1];
    memset(longkid, 'A', SIGNER_KID_FIELD);
    longkid[SIGNER_KID_FIELD] = '\0';
    assert_int_equal(sign_batch_begin(longkid, d, &t), ZTB_ERR_INVALID_ARG);
    assert_int_equal(g_sent, 1);
}

/* Three requests while F are in flight: one record of 3 (a partial
 * batch), each member with its own signature, whatever order they end in. */
static void test_partial_batch(void **state)
{
    (void)state;
    struct sign_ticket t[F + 3];
    uint8_t d[32], sig[64];
    for (unsigned i = 0; i < F + 3; i++) {
        digest_of(i, d);
        assert_int_equal(sign_batch_begin(KID, d, &t[i]), ZTB_OK);
    }
    assert_int_equal(g_sent, F); /* the others wait in the open batch */
    /* a member of the open batch ends first: it reads the oldest in
     * flight, which sends its own batch, and reads that */
    assert_int_equal(sign_batch_end(&t[F + 1], sig), ZTB_OK);
    assert_own_sig(F + 1, sig);
    assert_int_equal(g_sent, F + 1);
    for (unsigned i = 0; i < F; i++)
        assert_int_equal(g_counts[i], 1);
    assert_int_equal(g_counts[F], 3);
    /* the partial batch is an exact record: the unused digests are zero,
     * and one byte more or less is refused whole */
    static const uint8_t zero[(SIGNER_BATCH_MAX - 3) * 32];
    assert_memory_equal(g_last.digest[3], zero, sizeof(zero));
    uint8_t raw[sizeof(g_last) + 1];
    memset(raw, 0, sizeof(raw));
    memcpy(raw, &g_last, sizeof(g_last));
    struct signer_req back;
    assert_int_equal(signer_req_decode(raw, sizeof(g_last), &back, NULL), ZTB_OK);
    assert_int_equal(signer_req_decode(raw, sizeof(g_last) - 1, &back, NULL), ZTB_ERR_TRUNCATED);
    assert_int_equal(signer_req_decode(raw, sizeof(g_last) + 1, &back, NULL), ZTB_ERR_TOO_LARGE);
    raw[offsetof(struct signer_req, digest) + 3 * 32] = 1; /* a 4th digest not counted */
    assert_int_equal(signer_req_decode(raw, sizeof(g_last), &back, NULL), ZTB_ERR_MALFORMED);
    assert_int_equal(sign_batch_end(&t[F + 2], sig), ZTB_OK);
    assert_own_sig(F + 2, sig);
    for (unsigned i = 0; i <= F; i++) {
        assert_int_equal(sign_batch_end(&t[i], sig), ZTB_OK);
        assert_own_sig(i, sig);
    }
    assert_int_equal(g_received, F + 1);
    uint64_t rec, dig;
    sign_batch_counts(&rec, &dig);
    assert_true(rec >= F + 1 && dig >= F + 3);
}

/* A full batch: the next request goes alone, at once; another kid too. */
static void test_full_batch_and_other_kid(void **state)
{
    (void)state;
    struct sign_ticket t[F + SIGNER_BATCH_MAX + 2];
    uint8_t d[32], sig[64];
    unsigned n = F + SIGNER_BATCH_MAX + 1;
    for (unsigned i = 0; i < n; i++) {
        digest_of(i, d);
        assert_int_equal(sign_batch_begin(KID, d, &t[i]), ZTB_OK);
    }
    assert_int_equal(g_sent, F + 1); /* the first F, and the one after the full batch */
    assert_int_equal(g_counts[F], 1);
    digest_of(n, d);
    assert_int_equal(sign_batch_begin("BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", d, &t[n]),
                     ZTB_OK);
    assert_int_equal(g_sent, F + 2); /* another kid: alone */
    for (unsigned i = n + 1; i-- > 0;) {
        assert_int_equal(sign_batch_end(&t[i], sig), ZTB_OK);
        assert_own_sig(i, sig);
    }
    assert_int_equal(g_sent, F + 3);
    assert_int_equal(g_counts[F + 2], SIGNER_BATCH_MAX);
    assert_int_equal(g_received, F + 3);
}

/* A dropped signature is still read (the channel stays in step), and the
 * batch behind it still goes. */
static void test_dropped_signature_is_read(void **state)
{
    (void)state;
    struct sign_ticket t[F + 1];
    uint8_t d[32], sig[64];
    for (unsigned i = 0; i <= F; i++) {
        digest_of(i, d);
        assert_int_equal(sign_batch_begin(KID, d, &t[i]), ZTB_OK);
    }
    assert_int_equal(sign_batch_end(&t[0], NULL), ZTB_OK);
    assert_int_equal(g_received, 1);
    assert_int_equal(g_sent, F + 1); /* the open batch went when an answer was read */
    for (unsigned i = 1; i <= F; i++) {
        assert_int_equal(sign_batch_end(&t[i], sig), ZTB_OK);
        assert_own_sig(i, sig);
    }
    assert_int_equal(g_received, F + 1);
}

/* The signer dies with batches in flight and another open: every member
 * fails closed, none gets a signature, and nothing is left pending. */
static void test_signer_dies_mid_batch(void **state)
{
    (void)state;
    struct sign_ticket t[F + 3];
    uint8_t d[32], sig[F + 3][64];
    memset(sig, 0x5a, sizeof(sig));
    for (unsigned i = 0; i < F + 3; i++) {
        digest_of(i, d);
        assert_int_equal(sign_batch_begin(KID, d, &t[i]), ZTB_OK);
    }
    g_die_on_recv = 1;
    for (unsigned i = 0; i < F + 3; i++)
        assert_int_equal(sign_batch_end(&t[i], sig[i]), ZTB_ERR_UNAVAILABLE);
    uint8_t untouched[F + 3][64];
    memset(untouched, 0x5a, sizeof(untouched));
    assert_memory_equal(sig, untouched, sizeof(sig));
    assert_int_equal(g_sent, F); /* the open batch could not be sent */
    /* while it is down a new request fails at begin, with nothing pending */
    struct sign_ticket u;
    assert_int_equal(sign_batch_begin(KID, d, &u), ZTB_ERR_UNAVAILABLE);
    assert_null(u.b);
    /* back up: signatures again */
    g_dead = g_die_on_recv = 0;
    digest_of(7, d);
    assert_int_equal(sign_batch_begin(KID, d, &u), ZTB_OK);
    assert_int_equal(sign_batch_end(&u, sig[0]), ZTB_OK);
    assert_own_sig(7, sig[0]);
}

struct member {
    unsigned i;
    ztb_err rv;
    uint8_t sig[64];
};

static void *member_thread(void *arg)
{
    struct member *m = arg;
    struct sign_ticket t;
    uint8_t d[32];
    digest_of(m->i, d);
    m->rv = sign_batch_begin(KID, d, &t);
    if (m->rv == ZTB_OK)
        m->rv = sign_batch_end(&t, m->sig);
    return NULL;
}

/* The same with the members in threads, waiting on each other while one
 * reads a slow answer that never comes. */
static void test_signer_dies_with_members_waiting(void **state)
{
    (void)state;
    enum { N = 12 };
    struct member m[N];
    pthread_t th[N];
    g_recv_delay_us = 20000;
    g_die_on_recv = 1;
    for (unsigned i = 0; i < N; i++) {
        memset(&m[i], 0, sizeof(m[i]));
        m[i].i = i;
        memset(m[i].sig, 0x5a, sizeof(m[i].sig));
        assert_int_equal(pthread_create(&th[i], NULL, member_thread, &m[i]), 0);
    }
    uint8_t untouched[64];
    memset(untouched, 0x5a, sizeof(untouched));
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(m[i].rv, ZTB_ERR_UNAVAILABLE);
        assert_memory_equal(m[i].sig, untouched, 64);
    }
    /* and alive, the same threads each get their own signature */
    g_dead = g_die_on_recv = 0;
    g_recv_delay_us = 200;
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, member_thread, &m[i]), 0);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(m[i].rv, ZTB_OK);
        assert_own_sig(i, m[i].sig);
    }
    assert_int_equal(g_received, g_sent);
}

/* An answer that fails the exact checks (one signature short) fails the
 * whole batch: no member takes anything from it. */
static void test_bad_answer_fails_the_batch(void **state)
{
    (void)state;
    struct sign_ticket t[F + 2];
    uint8_t d[32], sig[64];
    for (unsigned i = 0; i < F + 2; i++) {
        digest_of(i, d);
        assert_int_equal(sign_batch_begin(KID, d, &t[i]), ZTB_OK);
    }
    g_bad_answer = 1;
    memset(sig, 0x5a, sizeof(sig));
    for (unsigned i = 0; i < F + 2; i++)
        assert_int_equal(sign_batch_end(&t[i], sig), ZTB_ERR_UNAVAILABLE);
    uint8_t untouched[64];
    memset(untouched, 0x5a, sizeof(untouched));
    assert_memory_equal(sig, untouched, 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lone_request_goes_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_batch_and_other_kid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_signature_is_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_dies_mid_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_dies_with_members_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_answer_fails_the_batch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
