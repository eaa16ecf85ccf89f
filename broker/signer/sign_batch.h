/*
 * sign_batch.h - token signatures asked of the signer in batches (a group
 * commit), for keys.c: one SIGN record, one answer and one wake-up of the
 * signer serve several tokens when several HTTP threads sign at once.
 *
 * A signature is asked in two halves: sign_batch_begin hands over a digest
 * and returns at once; sign_batch_end waits for the signature (or drops it).
 * At most SIGN_BATCH_FLIGHTS SIGN records are with the signer at a time; a
 * digest handed over while that many are in flight joins the open batch,
 * which is sent, as one record of up to SIGNER_BATCH_MAX digests, as soon as
 * one in flight is answered (by whichever member is waiting first). A
 * request that finds fewer in flight goes at once. A digest that finds the open batch full, or for
 * another kid, goes alone on its own channel (as before batching).
 *
 * Failure is shared and closed: if a batch cannot be sent, its answer does
 * not come in time, the signer dies, or the answer fails signer_msg.c's
 * exact checks, every member gets the same error (UNAVAILABLE: the broker
 * answers 503) and no signature. The records are the signer_msg.h ones:
 * nothing about the messages or their checks changes here.
 */
#ifndef ZTB_BROKER_SIGN_BATCH_H
#define ZTB_BROKER_SIGN_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "broker/signer/signer_client.h"
#include "broker/signer/signer_msg.h"

/* SIGN records with the signer at once; further digests collect in the
 * open batch. 2: the signer runs a drain thread per CPU, so on two cores two
 * signatures are made at the same time, and a request goes at once unless
 * both are busy (1 made every token behind the next signature wait for the
 * one in flight: fewer tokens/s, docs/BENCHMARKS.md). */
#ifndef SIGN_BATCH_FLIGHTS
#define SIGN_BATCH_FLIGHTS 2
#endif

struct sign_batch;

/* A member's place in a batch, from begin to end. */
struct sign_ticket {
    struct sign_batch *b; /* NULL: nothing pending */
    unsigned i;           /* its digest's index in the batch */
};

/*
 * Hand digest over to be signed with kid (the caller's active kid; shorter
 * than SIGNER_KID_FIELD). ZTB_OK: exactly one sign_batch_end(t, ...) must
 * follow. Otherwise nothing is pending (NOMEM, INVALID_ARG, or the error of
 * sending the batch this request had to send at once, UNAVAILABLE).
 */
ztb_err sign_batch_begin(const char *kid, const uint8_t digest[32], struct sign_ticket *t);

/*
 * Wait for t's signature and copy it into sig (raw r||s); sig NULL drops
 * it (the token is not issued). Returns the batch's result: ZTB_OK,
 * UNAVAILABLE (signer down, dead, hung or out of step), UNKNOWN_KID (the
 * signer's active key moved on: refresh and sign again), or its own error.
 * t is empty afterwards; calling it on an empty ticket returns UNAVAILABLE.
 */
ztb_err sign_batch_end(struct sign_ticket *t, uint8_t sig[64]);

/*
 * The transport (tests only): send and recv as signer_send / signer_recv
 * (the default, also after sign_batch_set_transport(NULL, NULL)).
 */
typedef ztb_err (*sign_batch_send_fn)(struct signer_req *req, struct signer_pending *p);
typedef ztb_err (*sign_batch_recv_fn)(struct signer_pending *p, const struct signer_req *req,
                                      void *out, size_t outsize);
void sign_batch_set_transport(sign_batch_send_fn send, sign_batch_recv_fn recv);

/* Counters since start (for tests and benchmarks): SIGN records sent and
 * digests they carried. */
void sign_batch_counts(uint64_t *records, uint64_t *digests);

#endif /* ZTB_BROKER_SIGN_BATCH_H */
