/*
 * jwks_cache.h - the broker's public keys as a verifier knows them.
 *
 * The keys come from the broker's JWKS URL or from a file, and are parsed
 * strictly (pki/jwk.h) into a key set that gateway threads read without a
 * shared lock (thread_cache.h). They are kept current in two ways:
 *
 *   - a refresher thread fetches the URL again when the Cache-Control
 *     max-age of the last answer runs out (default 300 s when it gives none,
 *     capped at a day, and never later than the max-age says: the broker
 *     publishes a new key one max-age before it signs with it; at most once
 *     a second), or re-reads the file when its size, mtime or inode changed;
 *     a failure keeps the current keys and retries with backoff;
 *   - a token naming a kid the set does not have triggers a fetch on the
 *     gateway's thread, at most once per refetch interval (default 30 s):
 *     a rotation is picked up by the first token signed with the new key,
 *     while a stream of tokens with made-up kids costs one fetch per
 *     interval and is otherwise refused without any I/O. Threads that see
 *     the unknown kid while that fetch runs wait for it and use its result.
 *
 * A new set replaces the old only when its keys differ; readers holding the
 * old set keep it alive until they let go.
 *
 * Keys are trusted only while they are confirmed: a set whose last successful
 * fetch (or, for a file, check) is older than its max-age plus
 * JWKS_STALE_MARGIN_S is stale, and jwks_cache_fresh refuses it, so a
 * verifier cut off from the broker does not trust a key the broker has since
 * withdrawn (or tainted) forever. Ages are measured on the monotonic clock.
 *
 * A JWKS file must be a regular file, owned by root or the effective user,
 * writable by nobody else (whoever can write it can mint tokens); symlinks
 * are followed (configuration systems publish files that way).
 */
#ifndef ZTB_SDK_JWKS_CACHE_H
#define ZTB_SDK_JWKS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "pki/keyset.h"
#include "sdk/src/http_client.h"

#define JWKS_DEFAULT_MAX_AGE_S 300
#define JWKS_MAX_MAX_AGE_S     86400
#define JWKS_DEFAULT_REFETCH_S 30
#define JWKS_MIN_REFRESH_MS    1000 /* the refresher's floor, for max-age=0 */
#define JWKS_STALE_MARGIN_S    60   /* beyond max-age: time for a few retries */

struct jwks_cache_opts {
    const char *url; /* one of url and file */
    const char *file;
    struct http_client *http; /* for url; borrowed, must outlive the cache */
    unsigned refetch_s;       /* least time between fetches; 0: the default */
    unsigned jwks_flags;      /* ztb_jwks_parse flags: 0 (kids are thumbprints), ZTB_JWK_KID_ANY */
};

struct jwks_cache;

/*
 * Load the keys now (blocking) and start the refresher. UNAVAILABLE (cannot
 * fetch), JWKS/JSON/TOO_LARGE (invalid document), PERMISSION/NOT_FOUND/IO
 * (file), with a message in err.
 */
ztb_err jwks_cache_new(const struct jwks_cache_opts *o, struct jwks_cache **out, char *err,
                       size_t errcap);

/* Stop the refresher and free the cache. c may be NULL. */
void jwks_cache_free(struct jwks_cache *c);

/*
 * The current key set for this thread (borrowed until this thread's next
 * jwks_cache_keyset call on c) and the epoch it belongs to. NULL only when
 * out of memory. Never blocks.
 */
const ztb_keyset *jwks_cache_keyset(struct jwks_cache *c, uint64_t *epoch);

/*
 * A token named a kid the set of epoch `seen` does not have: 1 if a newer
 * set is now current (look again), 0 if not (refuse). May fetch on the
 * calling thread (see the top of this file).
 */
int jwks_cache_unknown_kid(struct jwks_cache *c, uint64_t seen);

/*
 * 1 if the most recent fetch or read failed (the keys in force are the last
 * good ones), with its error in why[cap]; 0 if it succeeded. Tells "the kid
 * is not published" apart from "the keys could not be fetched". May wait for
 * a fetch in progress.
 */
int jwks_cache_last_fetch_failed(struct jwks_cache *c, char *why, size_t cap);

/*
 * ZTB_OK while the current set is confirmed (see the top of this file);
 * UNAVAILABLE once it is stale, with why (the age, the limit and the last
 * fetch error) in why[cap]. Never blocks; one atomic read and a clock read.
 */
ztb_err jwks_cache_fresh(struct jwks_cache *c, char *why, size_t cap);

/* Fetch or re-read now (blocking). ZTB_OK if the keys are current. */
ztb_err jwks_cache_refresh(struct jwks_cache *c);

/* Keys in the current set, and fetches/reads done so far. */
size_t jwks_cache_key_count(struct jwks_cache *c);
uint64_t jwks_cache_fetches(struct jwks_cache *c);

#endif /* ZTB_SDK_JWKS_CACHE_H */
