/*
 * signer_client.h - the HTTP process's side of the signer (see signer.h):
 * start it, talk to it, restart it.
 *
 * A pool of SOCK_SEQPACKET channels, one per concurrent caller (the HTTP
 * worker threads, the admin thread, the key refresher, the main thread): a
 * call takes a free channel, sends one request, waits for its answer with a
 * deadline, and gives the channel back. Calls never share a channel, so
 * answers need no routing; a sequence number drops a late answer to a call
 * that gave up.
 *
 * Supervision: a thread waits for the signer to exit. While it is down every
 * call fails at once with ZTB_ERR_UNAVAILABLE (the broker answers 503 with
 * Retry-After: fail closed). It is started again after a back-off of 1 s,
 * doubling to 30 s while it keeps failing, reset once one has run 60 s; the
 * on_restart callback then runs (keys.c refreshes the public key state).
 */
#ifndef ZTB_BROKER_SIGNER_CLIENT_H
#define ZTB_BROKER_SIGNER_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ztb/error.h>

#include "broker/signer/signer.h"

/*
 * Start the signer with o and channels channels. exe: the program to run
 * (the broker's own binary, "/proc/self/exe"); NULL runs the signer as
 * threads of this process over the same channels and codec (unit tests
 * only: then this process does hold the keys). Waits for its hello; on an
 * error the signer is gone and err says why (NOT_FOUND: no key store).
 * on_restart (may be NULL) runs on the supervisor thread after each restart.
 */
ztb_err signer_client_start(const struct signer_opts *o, const char *exe, unsigned channels,
                            void (*on_restart)(void), char *err, size_t errcap);

/* Stop the signer (close every channel, wait for it) and the supervisor. */
void signer_client_stop(void);

/* 1 while a signer is up. */
int signer_client_up(void);

/* The signer's process id (0 when none, or in the in-process mode). */
pid_t signer_client_pid(void);

/*
 * One call: send req (version and seq are set here) and decode the answer
 * into out (outsize: signer_resp_size(req->op)). UNAVAILABLE when the
 * signer is down, dies during the call or does not answer in time, and
 * then out is all zeros (nothing of a refused answer is left in it);
 * otherwise the answer's own err.
 */
ztb_err signer_call(struct signer_req *req, void *out, size_t outsize);

/*
 * The same call in two halves, so the caller can do other work (its Redis
 * round trip) while the signer signs: signer_send takes a channel and sends
 * req; then exactly one of signer_recv (waits for the answer, as
 * signer_call; req must be the one sent) or signer_cancel (the answer is
 * not wanted: it is read and dropped, so the channel goes back in step; a
 * channel that collected unread answers would fill until the signer blocks
 * on it) gives the channel back. p is
 * the caller's; after a failed send there is nothing to receive or cancel
 * (both are then harmless).
 */
struct signer_pending {
    int fd; /* the channel, -1 when none is held */
    uint64_t gen;
    int64_t deadline_ms;
};
ztb_err signer_send(struct signer_req *req, struct signer_pending *p);
ztb_err signer_recv(struct signer_pending *p, const struct signer_req *req, void *out,
                    size_t outsize);
void signer_cancel(struct signer_pending *p, const struct signer_req *req);

#endif /* ZTB_BROKER_SIGNER_CLIENT_H */
