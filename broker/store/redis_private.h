/*
 * redis_private.h - a redis-server the broker runs for itself.
 *
 * With no --redis configured, the broker starts redis-server as a child on a
 * unix socket in STATE_DIR/redis/ (mode 0700, no TCP port, AOF on with
 * fsync every second) and supervises it: if it exits, it is restarted with
 * backoff; until it is back, Redis calls fail and the broker answers 503.
 * On shutdown the child gets SIGTERM (it writes its AOF) and is reaped.
 */
#ifndef ZTB_BROKER_REDIS_PRIVATE_H
#define ZTB_BROKER_REDIS_PRIVATE_H

#include <stddef.h>

#include <ztb/error.h>

/*
 * Write the config, start redis-server and wait (up to 10 s) until its
 * socket answers. redis_server may be "" to look it up in PATH. Writes the
 * socket path into sock (cap bytes). Starts the supervisor thread.
 */
ztb_err redis_private_start(const char *state_dir, const char *redis_server, char *sock, size_t cap,
                            char *err, size_t errcap);

/* Stop supervising, SIGTERM the child and wait for it. */
void redis_private_stop(void);

#endif /* ZTB_BROKER_REDIS_PRIVATE_H */
