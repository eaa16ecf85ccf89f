/*
 * redis_conn.h - libztb's connections to Redis: where it is, how to connect,
 * and a small pool for commands run on callers' threads.
 *
 * The verifier talks to Redis from two places: its revocation feed thread
 * (a subscriber connection and a loader connection, see revfeed.h) and the
 * gateway's own threads when a token must be consumed atomically (single-use
 * tokens, DPoP proof ids). The latter borrow a connection from a pool, run
 * one command with SIGPIPE blocked (sigpipe.h), and give it back; a
 * connection that failed is dropped, and after a failure to connect the pool
 * refuses at once for a short backoff instead of stacking connect timeouts.
 *
 * URLs are those the broker takes, parsed by the same code
 * (common/redis_target.h). The password is a secret: wiped, never in a
 * message.
 */
#ifndef ZTB_SDK_REDIS_CONN_H
#define ZTB_SDK_REDIS_CONN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <ztb/error.h>

#include "common/redis_cluster.h"
#include "common/redis_target.h" /* URLs and connecting, shared with the broker */

#define RCONN_POOL_MAX 16

struct rconn_pool {
    struct redis_target t;
    pthread_mutex_t mu;
    struct redis_link *idle[RCONN_POOL_MAX];
    size_t nidle;
    /* a Cluster target pools routed handles instead (common/redis_cluster.h) */
    struct redis_cluster *cidle[RCONN_POOL_MAX];
    size_t ncidle;
    int64_t down_until_ms; /* after a failed connect, refuse until then */
    unsigned backoff_ms;
};

/* A pool for target t (copied; the pool wipes its copy when destroyed). */
ztb_err rconn_pool_init(struct rconn_pool *p, const struct redis_target *t);

/* Close every idle connection and wipe the target. No command may be running. */
void rconn_pool_destroy(struct rconn_pool *p);

/*
 * Run one command (binary-safe argv) on a pooled connection, on the calling
 * thread, with SIGPIPE blocked around it. *reply is the caller's
 * (freeReplyObject), possibly an error reply. UNAVAILABLE if Redis cannot be
 * reached or the command failed in transport (then the command may or may
 * not have run: callers that consume something fail closed). Thread-safe;
 * blocks for at most about twice the target's timeout.
 */
ztb_err rconn_pool_command(struct rconn_pool *p, redisReply **reply, int argc, const char **argv,
                           const size_t *lens);

#endif /* ZTB_SDK_REDIS_CONN_H */
