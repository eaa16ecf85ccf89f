/*
 * ssf_jwks.h - a transmitter's keys fetched from its JWKS URL (its
 * "jwks_uri" in the ssf_config file), for the receiving side.
 *
 * The fetching, caching and refetching are libztb's (sdk/src/jwks_cache.c,
 * the same code gateways verify ztb tokens with): https only, or http to a
 * loopback host; the document bounded (ZTB_JWKS_MAX) and the request
 * time-bounded; kept for the answer's Cache-Control max-age (default 300 s,
 * at most a day) by a refresher thread; a SET naming an unknown kid causes
 * at most one fetch per refetch interval (30 s); keys not confirmed for
 * max-age + 60 s are stale and refused. Fail closed: with no confirmed keys
 * every SET of that transmitter is refused (UNAVAILABLE), never accepted.
 *
 * The first fetch is tried at start (ssf_jwks_start) without holding the
 * broker up; when it fails, a SET that arrives tries again, at most once per
 * refetch interval.
 */
#ifndef ZTB_BROKER_SSF_JWKS_H
#define ZTB_BROKER_SSF_JWKS_H

#include <stddef.h>

#include <ztb/error.h>

#include "common/buf.h"
#include "pki/jws.h"

struct ssf_jwks;

/* A new remote key source for url (already checked: push_url_check). No I/O. */
ztb_err ssf_jwks_new(const char *url, struct ssf_jwks **out);

/* Try the first fetch now (blocking, bounded by the timeouts); on failure
 * the error is logged and left to ssf_jwks_verify to retry. */
void ssf_jwks_start(struct ssf_jwks *j, const char *transmitter);

/*
 * ztb_jws_verify of tok against the current keys (the arguments as there).
 * UNAVAILABLE (why says it) when no confirmed keys are to be had; an
 * unknown kid is looked up once more (at most once per refetch interval),
 * and is UNAVAILABLE rather than UNKNOWN_KID while that lookup fails.
 */
ztb_err ssf_jwks_verify(struct ssf_jwks *j, const char *tok, size_t len,
                        const ztb_jws_verify_opts *vo, ztb_jws_header *hdr, ztb_buf *payload,
                        char *why, size_t cap);

/* Stop the refresher and free j (NULL is fine). */
void ssf_jwks_free(struct ssf_jwks *j);

#endif /* ZTB_BROKER_SSF_JWKS_H */
