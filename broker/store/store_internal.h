/*
 * store_internal.h - helpers shared by the files that know ztb's Redis key
 * names and scripts: store.c (agents, join tokens, the per-request check),
 * store_rev.c (revocations), store_sources.c, store_signals.c,
 * store_quorum.c, store_actions.c, store_detect.c and store_ssf.c.
 *
 * Must never be included outside those files: everything else reaches
 * Redis through their headers (store.h, store_rev.h, store_sources.h, ...).
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

/* Defined in store_rev.c ------------------------------------------------- */

/* The SHA-1 of a constant script for EVALSHA, computed into sha on first
 * use; returns sha. */

/* SHA-256 of p[0..n) as 64 lower-case hex digits and a NUL into hex. */
void store_hex_sha256(const void *p, size_t n, char hex[65]);

/* A decimal from Redis; 0 if it is not one (callers treat 0 as unknown). */
long long store_parse_ll(const char *s);

/* The largest JSON record read back from Redis (signals, revocations). */
#define STORE_RECORD_JSON_MAX (1u << 20)

#endif /* ZTB_BROKER_STORE_INTERNAL_H */
