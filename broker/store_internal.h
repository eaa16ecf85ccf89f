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

#endif /* ZTB_BROKER_STORE_INTERNAL_H */
