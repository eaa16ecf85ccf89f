/*
 * inproc_signer_client.c - BENCHMARK ONLY: the signer_client.h API with the
 * signing done in the calling thread, for ztb-bench-broker-inproc.
 *
 * ztb-bench-broker-inproc is ztb-broker (the same main.c and the same
 * ztb_broker library) linked with this file in place of
 * broker/signer/signer_client.c: the linker takes every signer_client
 * symbol from here, so the library's signer_client.o is never pulled in.
 * Requests go straight to signer_handle() (the signer's own code: the same
 * exact-length checks, the same OpenSSL calls, the same keys) without a
 * process, a socket or a wake-up. It is the "in-process signing" that the
 * signer process replaced, kept only so ztb-bench-issue can measure the cost
 * of the process boundary in one run (--broker-bin, docs/BENCHMARKS.md).
 *
 * It is built in bench/ only, never installed, and is not a broker option:
 * a broker built this way holds its private keys in the process that parses
 * the network, which is exactly what the privilege separation forbids.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/signer/signer.h"
#include "broker/signer/sign_batch.h"
#include "broker/signer/signer_client.h"
#include "common/secret.h"

static int g_up;

ztb_err signer_client_start(const struct signer_opts *o, const char *exe, unsigned channels,
                            void (*on_restart)(void), char *err, size_t errcap)
{
    (void)exe;
    (void)channels;
    (void)on_restart;
    fprintf(stderr, "ztb-bench-broker-inproc: BENCHMARK BUILD, the private keys are held by "
                    "the HTTP process (no signer process)\n");
    ztb_err rv = signer_load(o, err, errcap);
    if (rv != ZTB_OK) {
        signer_unload();
        return rv;
    }
    g_up = 1;
    return ZTB_OK;
}

void signer_client_stop(void)
{
    if (g_up)
        signer_unload();
    g_up = 0;
}

int signer_client_up(void)
{
    return g_up;
}

pid_t signer_client_pid(void)
{
    return 0;
}

/* The request's answer, made here and now by the signer's handler. */
static ztb_err handle(struct signer_req *req, void *out, size_t outsize)
{
    static __thread struct signer_state *t_buf; /* big enough for any answer */
    if (!g_up)
        return ZTB_ERR_UNAVAILABLE;
    if (signer_resp_size(req->op) == 0 || outsize != signer_resp_size(req->op))
        return ZTB_ERR_INVALID_ARG;
    if (t_buf == NULL && (t_buf = malloc(sizeof(*t_buf))) == NULL)
        return ZTB_ERR_NOMEM;
    req->version = SIGNER_PROTO_VERSION;
    size_t n = signer_handle(req, sizeof(*req), t_buf, sizeof(*t_buf));
    ztb_err rv = signer_resp_decode(req, t_buf, n, out, outsize);
    ztb_wipe(t_buf, n);
    return rv == ZTB_OK ? (ztb_err)((const struct signer_resp *)out)->err : rv;
}

ztb_err signer_call(struct signer_req *req, void *out, size_t outsize)
{
    return handle(req, out, outsize);
}

/* Nothing is sent: the answer is made when it is collected. */
ztb_err signer_send(struct signer_req *req, struct signer_pending *p)
{
    p->fd = -1;
    if (!g_up)
        return ZTB_ERR_UNAVAILABLE;
    if (signer_resp_size(req->op) == 0)
        return ZTB_ERR_INVALID_ARG;
    p->fd = 0; /* "a call is pending" */
    p->gen = 0;
    p->deadline_ms = 0;
    return ZTB_OK;
}

ztb_err signer_recv(struct signer_pending *p, const struct signer_req *req, void *out,
                    size_t outsize)
{
    if (p->fd < 0)
        return ZTB_ERR_UNAVAILABLE;
    p->fd = -1;
    struct signer_req q = *req;
    return handle(&q, out, outsize);
}

void signer_cancel(struct signer_pending *p, const struct signer_req *req)
{
    (void)req;
    p->fd = -1;
}

/*
 * sign_batch.h, unbatched: in-process signing has no wake-up to share, so
 * each digest is signed by its own caller when it is collected, as before
 * the signer process. Defining every sign_batch symbol here keeps the
 * library's sign_batch.o out of this executable.
 */
struct sign_batch {
    struct signer_req q;
};

ztb_err sign_batch_begin(const char *kid, const uint8_t digest[32], struct sign_ticket *t)
{
    t->b = NULL;
    t->i = 0;
    if (kid == NULL || strlen(kid) >= SIGNER_KID_FIELD)
        return ZTB_ERR_INVALID_ARG;
    if (!g_up)
        return ZTB_ERR_UNAVAILABLE;
    struct sign_batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return ZTB_ERR_NOMEM;
    b->q.op = SIGNER_OP_SIGN;
    b->q.count = 1;
    memcpy(b->q.kid, kid, strlen(kid) + 1); /* fits (checked) */
    memcpy(b->q.digest[0], digest, 32);
    t->b = b;
    return ZTB_OK;
}

ztb_err sign_batch_end(struct sign_ticket *t, uint8_t sig[64])
{
    struct sign_batch *b = t->b;
    if (b == NULL)
        return ZTB_ERR_UNAVAILABLE;
    t->b = NULL;
    struct signer_resp r;
    ztb_err rv = sig != NULL ? handle(&b->q, &r, sizeof(r)) : ZTB_OK;
    if (rv == ZTB_OK && sig != NULL)
        memcpy(sig, r.data, 64);
    free(b);
    return rv;
}

void sign_batch_set_transport(sign_batch_send_fn send, sign_batch_recv_fn recv)
{
    (void)send;
    (void)recv;
}

void sign_batch_counts(uint64_t *records, uint64_t *digests)
{
    *records = 0;
    *digests = 0;
}
