/*
 * store_internal.h - helpers shared by the files that know ztb's Redis key
 * names and scripts: store.c (agents, join tokens, the per-request check),
 * store_rev.c (revocations), store_sources.c, store_signals.c,
 * store_quorum.c, store_actions.c and store_detect.c.
 *
 * Must never be included outside those files: everything else reaches
 * Redis through their headers (store.h, store_rev.h, store_sources.h, ...).
 */
#ifndef ZTB_BROKER_STORE_INTERNAL_H
#define ZTB_BROKER_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <ztb/error.h>

#define STORE_KEY_MAX 512

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
const char *store_script_sha(const char *script, char sha[41]);

/* SHA-256 of p[0..n) as 64 lower-case hex digits and a NUL into hex. */
void store_hex_sha256(const void *p, size_t n, char hex[65]);

/* A decimal from Redis; 0 if it is not one (callers treat 0 as unknown). */
long long store_parse_ll(const char *s);

#endif /* ZTB_BROKER_STORE_INTERNAL_H */
