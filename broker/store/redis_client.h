/*
 * redis_client.h - the broker's connections to Redis.
 *
 * Each worker thread has its own connection (thread-local, created
 * on first use), so there is no lock on the request path. Every command has
 * a timeout. When a connection fails, the thread drops it and refuses
 * further calls for a backoff interval (25 ms doubling to 1 s) before it
 * reconnects: while Redis is down requests fail fast with UNAVAILABLE (the
 * handlers answer 503, fail closed) instead of piling up on connect timeouts.
 */
#ifndef ZTB_BROKER_REDIS_CLIENT_H
#define ZTB_BROKER_REDIS_CLIENT_H

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <ztb/error.h>

#include "common/redis_target.h" /* the URL and connect step, shared with libztb */

/* Set the target for all threads (before starting them). Copies t. */
void redis_client_init(const struct redis_target *t);

/* Wipe the global target and free the thread connections (at shutdown). */
void redis_client_shutdown(void);

/*
 * Run one command (binary-safe argv) on this thread's connection. On success
 * *reply is the reply (the caller frees it with freeReplyObject), which may
 * be a Redis error reply (type REDIS_REPLY_ERROR) for the caller to judge.
 * UNAVAILABLE if there is no connection or the command failed in transport
 * (timeout, reset): the connection is dropped and backoff starts.
 */
ztb_err redis_command(redisReply **reply, int argc, const char **argv, const size_t *lens);

/*
 * A pipeline: send n commands (argc[i], argv[i], lens[i]; lens[i] may be
 * NULL for NUL-terminated arguments) in one write on this thread's
 * connection, then read their n replies into replies[0..n) (the caller frees
 * each with freeReplyObject; any may be an error reply). UNAVAILABLE as for
 * redis_command, and then no reply is handed back (all are NULL).
 */
ztb_err redis_pipeline(size_t n, const int *argc, const char *const *const *argv,
                       const size_t *const *lens, redisReply **replies);

/*
 * Like redis_command, but on the one connection the token path's threads
 * share, pipelined with the commands other threads send at the same time
 * (group commit: under load Redis takes several requests' commands per
 * read, write and wake-up). Same outcomes as redis_command; a command waits
 * for at most the batch in flight before its own. On a Cluster it is
 * redis_command.
 */
ztb_err redis_command_shared(redisReply **reply, int argc, const char **argv, const size_t *lens);

/* Like redis_command with printf-style hiredis formatting (%s, %b). */
ztb_err redis_commandf(redisReply **reply, const char *fmt, ...);

/*
 * One command (argv, argc words) to every server that holds data: each
 * master of a Cluster, in slot-map order, else the one connection (INFO for
 * the preflight, CONFIG GET save for its persistence report).
 * replies[0..*n) are the caller's (freeReplyObject each; any may be an
 * error reply); at most cap. UNAVAILABLE (and no replies) if any of them
 * cannot be reached.
 */
ztb_err redis_command_masters(int argc, const char **argv, redisReply **replies, size_t cap,
                              size_t *n);

/*
 * EVALSHA the script (sha1 computed once by the caller with
 * redis_script_sha), falling back to EVAL on NOSCRIPT. argv holds keys then
 * args.
 */
ztb_err redis_eval(redisReply **reply, const char *script, const char *sha, int nkeys, int nargs,
                   const char **argv, const size_t *lens);

/* redis_eval through redis_command_shared: for the per-token script. */
ztb_err redis_eval_shared(redisReply **reply, const char *script, const char *sha, int nkeys,
                          int nargs, const char **argv, const size_t *lens);

/* Hex SHA-1 of a script (41 bytes incl. NUL). */
void redis_script_sha(const char *script, char out[41]);

/* 1 if the target is a Redis Cluster (redis+cluster://). */
int redis_client_is_cluster(void);

/* PING: ZTB_OK if Redis answered PONG now. */
ztb_err redis_ping(void);

/*
 * Readiness: ZTB_OK if this thread's connection reaches a server that
 * would take a write now (a write-declared script that writes nothing is
 * not refused: not a replica, not loading, min-replicas-to-write met, not
 * out of memory) and real traffic's latest Redis outcome is not an error
 * of the last 2 s. Else UNAVAILABLE, and the error kind
 * ("readonly", "connection", ...) in why (cap bytes).
 */
ztb_err redis_ready(char *why, size_t cap);

/*
 * After a write that must survive a failover (a revocation): WAIT until
 * the configured number of replicas (redis_client_set_wait) has it, on the
 * connection that wrote it. ZTB_OK at once when that number is 0;
 * UNAVAILABLE if fewer confirmed within the timeout (the write is on the
 * master but not known to be safe: the caller must not acknowledge it).
 */
ztb_err redis_wait_replicas(void);

/*
 * Replicas a revocation waits for (-1: leave as is; the default after
 * redis_client_init is 1 for a Sentinel URL, on a Cluster 1 where the
 * master that took the write has replicas (the slot map lists one, or ROLE
 * shows one connected) and 0 where it has none, 0 otherwise) and WAIT's
 * timeout in ms (0: leave as is; default 1000).
 */
void redis_client_set_wait(int replicas, unsigned timeout_ms);

/* The number set above, -1 for the Cluster's per-shard default (tests). */
int redis_client_wait_replicas(void);

/* Make every thread reconnect (and, with a Sentinel URL, find the master
 * again) before its next command; why is logged. */
void redis_client_reresolve(const char *why);

#endif /* ZTB_BROKER_REDIS_CLIENT_H */
