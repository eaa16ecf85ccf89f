/*
 * sign_batch.c - token signatures asked of the signer in batches (see
 * sign_batch.h).
 *
 * How it works: a batch is OPEN (collecting digests, not sent), SENDING,
 * FLIGHT (with the signer, nobody reading its answer yet), RECEIVING (one
 * member is reading it) or DONE (rv and the signatures are final). There is
 * at most one open batch (g_open) and at most SIGN_BATCH_FLIGHTS batches in
 * flight (g_flight, oldest first: SENDING, FLIGHT or RECEIVING); a "solo"
 * batch (open batch full, or another kid) is sent at once on its own
 * channel and read by its one member.
 *
 * Nobody waits for a batch to fill: a member that reaches sign_batch_end
 * reads whatever answer stands between it and its signature - its own batch
 * in flight, or for a member of the open batch the oldest one in flight -
 * and, as soon as one in flight is answered, sends the open batch
 * (promote). So a request goes at once while the signer has a free drain
 * thread; the ones that arrive while both sign go together in the next
 * record; and the signer wakes once for all of them. Every other
 * member waits on g_cv for DONE.
 *
 * The lock is never held across a system call: the state (SENDING,
 * RECEIVING) says who owns the batch's channel meanwhile. A batch's memory
 * belongs to its members (refs) and is freed by the last one to end, which
 * is always after DONE.
 *
 * What this file must never do: hand a member a signature that is not its
 * own digest's (index i of the answer to the record that carried it), or
 * anything at all from an answer that failed its checks.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "broker/signer/sign_batch.h"

enum { B_OPEN, B_SENDING, B_FLIGHT, B_RECEIVING, B_DONE };

struct sign_batch {
    struct signer_req q; /* kid and q.count digests so far */
    struct signer_pending p;
    uint8_t sig[SIGNER_BATCH_MAX][64];
    ztb_err rv;
    int state;
    int solo;      /* sent alone, outside g_flight */
    unsigned refs; /* members that have not ended */
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER; /* a batch changed state */
static struct sign_batch *g_open;
static struct sign_batch *g_flight[SIGN_BATCH_FLIGHTS]; /* oldest first */
static unsigned g_nflight;
static sign_batch_send_fn g_send = signer_send;
static sign_batch_recv_fn g_recv = signer_recv;
static _Atomic uint64_t g_records, g_digests;

void sign_batch_set_transport(sign_batch_send_fn send, sign_batch_recv_fn recv)
{
    pthread_mutex_lock(&g_mu);
    g_send = send != NULL ? send : signer_send;
    g_recv = recv != NULL ? recv : signer_recv;
    pthread_mutex_unlock(&g_mu);
}

void sign_batch_counts(uint64_t *records, uint64_t *digests)
{
    *records = atomic_load(&g_records);
    *digests = atomic_load(&g_digests);
}

/* A new batch of one member (digest 0) for kid; NULL when out of memory. */
static struct sign_batch *batch_new(const char *kid, const uint8_t digest[32], int state)
{
    struct sign_batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->q.op = SIGNER_OP_SIGN;
    b->q.count = 1;
    memcpy(b->q.kid, kid, strlen(kid) + 1); /* fits (checked); calloc: NUL padding */
    memcpy(b->q.digest[0], digest, 32);
    b->p.fd = -1;
    b->refs = 1;
    b->state = state;
    return b;
}

/* b's result is final; caller holds g_mu. */
static void finish_locked(struct sign_batch *b, ztb_err rv)
{
    b->rv = rv;
    b->state = B_DONE;
    unsigned k = 0;
    for (unsigned i = 0; i < g_nflight; i++)
        if (g_flight[i] != b)
            g_flight[k++] = g_flight[i]; /* keeps the order: oldest first */
    g_nflight = k;
    pthread_cond_broadcast(&g_cv);
}

/* Send b (g_flight or solo); caller holds g_mu, which is dropped meanwhile. */
static void send_locked(struct sign_batch *b)
{
    b->state = B_SENDING;
    sign_batch_send_fn send = g_send;
    pthread_mutex_unlock(&g_mu);
    ztb_err rv = send(&b->q, &b->p);
    pthread_mutex_lock(&g_mu);
    if (rv != ZTB_OK) {
        finish_locked(b, rv); /* nothing pending: every member fails */
        return;
    }
    atomic_fetch_add(&g_records, 1);
    atomic_fetch_add(&g_digests, b->q.count);
    b->state = B_FLIGHT;
    pthread_cond_broadcast(&g_cv);
}

/* Read b's answer (b in FLIGHT); caller holds g_mu, dropped meanwhile. */
static void receive_locked(struct sign_batch *b)
{
    b->state = B_RECEIVING;
    sign_batch_recv_fn recv = g_recv;
    pthread_mutex_unlock(&g_mu);
    struct signer_resp r;
    ztb_err rv = recv(&b->p, &b->q, &r, sizeof(r));
    pthread_mutex_lock(&g_mu);
    /* signer_resp_decode checked r.len == 64 * count and the kid */
    if (rv == ZTB_OK)
        memcpy(b->sig, r.data, (size_t)b->q.count * 64);
    finish_locked(b, rv);
}

/* While fewer than SIGN_BATCH_FLIGHTS are in flight, send the open batch;
 * caller holds g_mu. */
static void promote_locked(void)
{
    while (g_nflight < SIGN_BATCH_FLIGHTS && g_open != NULL) {
        struct sign_batch *b = g_open;
        g_open = NULL;
        g_flight[g_nflight++] = b;
        send_locked(b); /* on failure it left g_flight again: try the next */
    }
}

/* An in-flight batch nobody reads yet (oldest first), or NULL; caller
 * holds g_mu. */
static struct sign_batch *unread_flight_locked(void)
{
    for (unsigned i = 0; i < g_nflight; i++)
        if (g_flight[i]->state == B_FLIGHT)
            return g_flight[i];
    return NULL;
}

ztb_err sign_batch_begin(const char *kid, const uint8_t digest[32], struct sign_ticket *t)
{
    t->b = NULL;
    t->i = 0;
    if (kid == NULL || strlen(kid) >= SIGNER_KID_FIELD)
        return ZTB_ERR_INVALID_ARG;
    pthread_mutex_lock(&g_mu);
    struct sign_batch *b = g_open;
    if (b != NULL && b->q.count < SIGNER_BATCH_MAX && strcmp(b->q.kid, kid) == 0) {
        /* join the batch that goes when the one in flight is answered */
        t->i = b->q.count++;
        memcpy(b->q.digest[t->i], digest, 32);
        b->refs++;
        t->b = b;
        promote_locked();
        pthread_mutex_unlock(&g_mu);
        return ZTB_OK;
    }
    int alone = b != NULL; /* the open batch is full, or for another kid */
    b = batch_new(kid, digest, B_OPEN);
    if (b == NULL) {
        pthread_mutex_unlock(&g_mu);
        return ZTB_ERR_NOMEM;
    }
    if (alone) {
        b->solo = 1;
        send_locked(b);
    } else {
        g_open = b;
        promote_locked(); /* at once if nothing is in flight */
    }
    if (b->state == B_DONE) { /* its send failed: nothing is pending */
        ztb_err rv = b->rv;
        if (--b->refs == 0)
            free(b);
        pthread_mutex_unlock(&g_mu);
        return rv;
    }
    t->b = b;
    pthread_mutex_unlock(&g_mu);
    return ZTB_OK;
}

ztb_err sign_batch_end(struct sign_ticket *t, uint8_t sig[64])
{
    struct sign_batch *b = t->b;
    if (b == NULL)
        return ZTB_ERR_UNAVAILABLE;
    t->b = NULL;
    pthread_mutex_lock(&g_mu);
    for (;;) {
        if (b->state == B_DONE)
            break;
        if (b->state == B_FLIGHT) {
            /* ours is with the signer and nobody reads it yet: read it */
            receive_locked(b);
            promote_locked();
        } else if (b->state == B_OPEN && g_nflight < SIGN_BATCH_FLIGHTS) {
            promote_locked();
        } else if (b->state == B_OPEN && unread_flight_locked() != NULL) {
            /* one ahead of ours is answered (or soon): read it, which
             * sends ours */
            receive_locked(unread_flight_locked());
            promote_locked();
        } else {
            pthread_cond_wait(&g_cv, &g_mu); /* another member reads or sends */
        }
    }
    ztb_err rv = b->rv;
    if (rv == ZTB_OK && sig != NULL)
        memcpy(sig, b->sig[t->i], 64);
    if (--b->refs == 0)
        free(b);
    pthread_mutex_unlock(&g_mu);
    return rv;
}
