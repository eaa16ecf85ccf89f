/*
 * store_internal.h - helpers shared by the two files that know ztb's Redis
 * key names and scripts: store.c (agents, join tokens, the per-request
 * check) and store_rev.c (revocations, signals, sources, detectors).
 *
 * Must never be included outside those two files: everything else reaches
 * Redis through store.h and store_rev.h.
 */
#ifndef ZTB_BROKER_STORE_INTERNAL_H
#define ZTB_BROKER_STORE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <ztb/error.h>

#define STORE_KEY_MAX 512

/*
 * A Lua script and its SHA-1 for EVALSHA. The SHA is computed on first use,
 * once, under a lock, and published with release/acquire ordering: HTTP
 * worker threads, the detector thread and the admin thread all run scripts,
 * and a plain "compute if the first byte is NUL" cache is a data race (a
 * reader can see a half-written SHA). Define one per script, static:
 *
 *   static struct store_script agent_add_script = STORE_SCRIPT(agent_add_lua);
 */
struct store_script {
    const char *lua;
    atomic_int ready; /* 1 once sha holds the whole SHA-1 */
    char sha[41];
};
#define STORE_SCRIPT(text)                                                                         \
    {                                                                                              \
        .lua = (text), .ready = 0, .sha = ""                                                       \
    }

/* Run the script (EVALSHA, EVAL on NOSCRIPT): redis_eval with the script's
 * SHA, computed on the first call from any thread. *reply as redis_eval. */
ztb_err store_eval(redisReply **reply, struct store_script *s, int nkeys, int nargs,
                   const char **argv, const size_t *lens);

/* Format a key into out (STORE_KEY_MAX bytes); 0 if it would not fit. */
int store_keyf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A reply we did not expect: log its type, free it, return UNAVAILABLE. */
ztb_err store_unexpected_reply(redisReply *r, const char *what);

/* 1 if r is an array of at least min integers or strings. */
int store_reply_is_int_array(const redisReply *r, size_t min);

/* Element i of such an array as an integer. */
int64_t store_reply_int(const redisReply *r, size_t i);

#endif /* ZTB_BROKER_STORE_INTERNAL_H */
