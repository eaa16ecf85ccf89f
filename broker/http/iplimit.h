/*
 * iplimit.h - a per-address rate limit kept in the broker's own memory.
 *
 * Used before authentication, where the request has not yet earned a Redis
 * round trip: an unauthenticated flood must be stopped without touching the
 * resource it would otherwise flood (Redis, which every token request
 * needs). Limits that must hold across replicas (agents, signal sources) use
 * the Redis GCRA in store.c; this one is per replica by design, so with N
 * replicas an address gets up to N times the rate.
 *
 * The same GCRA as store.c: an address may send `burst` requests at once and
 * then one per 1/rate seconds. Time is CLOCK_MONOTONIC (a wall-clock step
 * neither opens nor closes the gate). IPv4 addresses count one by one; IPv6
 * addresses by their /64 (one host is usually given a whole /64).
 *
 * Memory is fixed at creation: a set-associative table of 4-entry buckets.
 * When an address needs a slot in a full bucket, the entry whose budget is
 * fullest (lowest TAT) is replaced; an address with a full budget loses
 * nothing by being forgotten. An attacker with many addresses can push an
 * address out of its bucket and so reset it: per-address limits cannot stop
 * an attacker who has many addresses, only one who has few. Slots are
 * placed by a hash keyed with a random secret, so nobody can aim at one.
 *
 * Thread-safe (one mutex, held for a few lookups).
 */
#ifndef ZTB_BROKER_IPLIMIT_H
#define ZTB_BROKER_IPLIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ztb/error.h>

struct iplimit;

/*
 * A limiter of rate requests per second with bursts of burst (0: rate),
 * holding about `slots` addresses (rounded up to a power of two, at least 4).
 * rate 0 makes a limiter that allows everything. NOMEM. Free with
 * iplimit_free.
 */
ztb_err iplimit_new(unsigned rate, unsigned burst, size_t slots, struct iplimit **out);

/* Free l (NULL is fine). */
void iplimit_free(struct iplimit *l);

/*
 * Charge one request from peer at now_us (CLOCK_MONOTONIC µs). 1: allowed;
 * 0: over the limit, nothing charged, *retry_after_ms (>= 1) until one would
 * be allowed. A peer that is neither IPv4 nor IPv6 (a unix socket) is always
 * allowed.
 */
int iplimit_take(struct iplimit *l, const struct sockaddr *peer, int64_t now_us,
                 uint32_t *retry_after_ms);

/* CLOCK_MONOTONIC now in µs, for iplimit_take. */
int64_t iplimit_now_us(void);

#endif /* ZTB_BROKER_IPLIMIT_H */
