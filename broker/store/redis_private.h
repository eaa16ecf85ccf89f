/*
 * redis_private.h - a redis-server the broker runs for itself.
 *
 * With no --redis configured, the broker starts redis-server as a child on a
 * unix socket of its own, STATE_DIR/redis/run-XXXXXXXX/redis.sock (linked
 * from STATE_DIR/redis/redis.sock), with its data in STATE_DIR/redis/ (mode
 * 0700, no TCP port, AOF on with fsync every second), and supervises it: if
 * it exits, it is restarted with backoff; until it is back, Redis calls fail
 * and the broker answers 503. On shutdown the child gets SIGTERM (it writes
 * its AOF) and is reaped. A flock on STATE_DIR/redis/redis.lock, held by the
 * running Redis itself, keeps any two Redis off the data at the same time,
 * also across a broker crash and an immediate restart.
 */
#ifndef ZTB_BROKER_REDIS_PRIVATE_H
#define ZTB_BROKER_REDIS_PRIVATE_H

#include <stddef.h>

#include <ztb/error.h>

/*
 * Write the config, start redis-server and wait (up to 10 s) until its
 * socket answers. redis_server may be "" to look it up in PATH. Writes the
 * socket path into sock (cap bytes). Starts the supervisor thread.
 * First waits (up to 15 s) for a Redis an earlier broker of this state
 * directory left running; STATE if another live broker runs its Redis on
 * this state directory.
 */
ztb_err redis_private_start(const char *state_dir, const char *redis_server, char *sock, size_t cap,
                            char *err, size_t errcap);

/* Stop supervising, SIGTERM the child and wait for it; remove its run
 * directory and release the locks. */
void redis_private_stop(void);

#endif /* ZTB_BROKER_REDIS_PRIVATE_H */
