/*
 * redis_cluster.h - Redis Cluster: which slot a key is in, the slot map,
 * and commands routed to the master that serves their key's slot.
 *
 * Shared by the broker (broker/store/redis_client.c: one cluster handle per
 * thread) and libztb (sdk/src/redis_conn.c, sdk/src/revfeed.c), on top of
 * common/redis_target.c (redis+cluster:// URLs, connecting and AUTH to a
 * node) and common/redis_link.c (the sockets).
 *
 * A handle holds the slot map (read with CLUSTER SLOTS from a node it
 * knows, the URL's seeds first) and one connection per master, made on
 * first use. A command's slot comes from its encoded form
 * (redis_command_slot: the key of EVAL/EVALSHA is the first after numkeys,
 * SPUBLISH's is the channel, keyless commands go to the node the previous
 * command went to). Replies steer it:
 *   MOVED   the slot is served elsewhere: the map is read again, the
 *           command sent there (at most REDIS_CLUSTER_MAX_REDIRECTS times);
 *   ASK     the slot is migrating: ASKING, then the command, once, there;
 *   TRYAGAIN  a multi-key command during resharding: sent again after
 *           2, 4, 8 ms (then the reply is handed back);
 *   CLUSTERDOWN and anything else: handed back, for the caller to fail
 *           closed.
 * Every MOVED, ASK and TRYAGAIN is reported through the note callback
 * (the broker counts them in ztb_redis_errors_total{kind}). A command that
 * failed in transport is never sent again (it may have run).
 *
 * A handle is not thread-safe: one per thread, or one per pooled
 * connection. Never logs; never puts a credential in errstr.
 */
#ifndef ZTB_COMMON_REDIS_CLUSTER_H
#define ZTB_COMMON_REDIS_CLUSTER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <ztb/error.h>

#include "common/redis_link.h"
#include "common/redis_target.h"

#define REDIS_CLUSTER_SLOTS         16384
#define REDIS_CLUSTER_MAX_NODES     64
#define REDIS_CLUSTER_MAX_REDIRECTS 5

/* The slot of a key (CRC16-XMODEM mod 16384 of the key, or of its hash tag:
 * the bytes between the first '{' and the next '}', if not empty). */
unsigned redis_key_slot(const char *key, size_t len);

/* The slot a RESP-encoded command (len bytes) must go to: its key's; -1 for
 * a command without a key (PING, INFO, WAIT, EVAL with 0 keys...); -2 if
 * the bytes are not one whole command. */
int redis_command_slot(const char *cmd, size_t len);

struct redis_cluster_node {
    char host[256];
    int port;
    struct redis_link *link; /* NULL until used, or after it failed */
    int replicas;            /* replicas the map lists for it (a master), not failed */
};

struct redis_cluster {
    const struct redis_target *t;           /* borrowed: outlives the handle */
    uint8_t slot_node[REDIS_CLUSTER_SLOTS]; /* node index + 1; 0: unknown */
    struct redis_cluster_node nodes[REDIS_CLUSTER_MAX_NODES];
    size_t nnodes;
    int mapped;                      /* the slot map was read */
    int last;                        /* node of the last command; -1 none */
    enum redis_error_kind fail_kind; /* why the last command got no reply */
    char errstr[300];
    void (*note)(enum redis_error_kind kind, void *arg); /* may be NULL */
    void *note_arg;
};

/* A handle for the Cluster target t (t->nseeds > 0; t must outlive it).
 * Connects nothing yet. NULL when out of memory. */
struct redis_cluster *redis_cluster_new(const struct redis_target *t,
                                        void (*note)(enum redis_error_kind, void *), void *arg);

/* Close every connection and free; cl may be NULL. */
void redis_cluster_free(struct redis_cluster *cl);

/* Forget the slot map and close every connection (after a failover): the
 * next command reads the map again. */
void redis_cluster_reset(struct redis_cluster *cl);

/*
 * Run one command: RESP-encoded (raw, len), binary-safe argv, or hiredis
 * printf-style. The reply is the caller's (freeReplyObject), possibly an
 * error reply (CLUSTERDOWN, CROSSSLOT, an unresolved MOVED...). NULL if no
 * node could be reached or the command failed in transport: fail_kind and
 * errstr say why, and that node's connection is closed.
 */
redisReply *redis_cluster_command_raw(struct redis_cluster *cl, const char *raw, size_t len);
redisReply *redis_cluster_command_argv(struct redis_cluster *cl, int argc, const char **argv,
                                       const size_t *lens);
redisReply *redis_cluster_vcommandf(struct redis_cluster *cl, const char *fmt, va_list ap);
redisReply *redis_cluster_commandf(struct redis_cluster *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Run n commands (at most REDIS_CLUSTER_PIPELINE_MAX; binary-safe argv,
 * lens[i] may be NULL) and put their replies in replies[0..n). When all
 * are for one slot (the audit stream's XADDs) they go as one pipeline to
 * its master; a reply of MOVED, ASK or TRYAGAIN (the command did not run)
 * is replaced by the command sent again alone, routed as above. Commands
 * for several slots go one by one. 0 when every reply is there (any may
 * be an error reply); -1 on a transport failure (fail_kind, errstr), and
 * then no reply is handed back: commands sent may have run.
 */
#define REDIS_CLUSTER_PIPELINE_MAX 1024
int redis_cluster_pipeline_argv(struct redis_cluster *cl, size_t n, const int *argc,
                                const char *const *const *argv, const size_t *const *lens,
                                redisReply **replies);

/* The connection the last command went over (for WAIT, which must follow
 * the write on the same master), or NULL. Owned by cl. */
struct redis_link *redis_cluster_last_link(struct redis_cluster *cl);

/* How many replicas the slot map (CLUSTER SLOTS, which leaves out failed
 * ones) lists for the master the last command went to; 0 if none or no
 * command went anywhere. For WAIT: a master with replicas must confirm a
 * durable write on one of them. */
int redis_cluster_last_replicas(const struct redis_cluster *cl);

/*
 * The masters of the map (reading it if needed): n (at most cap) node
 * indexes into out; 0 if the map cannot be read. redis_cluster_link_of
 * connects to one of them (NULL and errstr if it cannot).
 */
size_t redis_cluster_masters(struct redis_cluster *cl, int *out, size_t cap);
struct redis_link *redis_cluster_link_of(struct redis_cluster *cl, int node);

/*
 * A connection of its own to whatever serves key: for a Cluster target the
 * master of key's slot (read from the seeds' map), else
 * redis_target_connect. For subscribers and loaders (the revocation feed).
 * *out is the caller's (redis_link_free); UNAVAILABLE and why in err.
 */
ztb_err redis_cluster_connect_key(const struct redis_target *t, const char *key,
                                  struct redis_link **out, char *err, size_t errcap);

#endif /* ZTB_COMMON_REDIS_CLUSTER_H */
