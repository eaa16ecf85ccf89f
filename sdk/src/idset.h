/*
 * idset.h - a compact set of 128-bit ids, each with an expiry.
 *
 * The verifier keeps every revoked token id (jti) it has heard of until the
 * token could no longer be accepted anyway, and every DPoP proof id until the
 * proof is too old. A gateway may hold a million of them, so an entry is 20
 * bytes (16 id bytes and a 32-bit expiry in Unix seconds) in an open-addressing
 * table with linear probing, kept between 3/8 and 3/4 full: 27 to 53 bytes per
 * live entry. Ids are random or hashed, so their first bytes are the hash.
 *
 * An id is a token's jti decoded when it is the canonical 22-character
 * base64url of 16 bytes (what the broker issues), otherwise the first 16
 * bytes of SHA-256 over the jti string (idset_key()).
 *
 * Expired entries are ignored by lookups and removed by idset_rebuild(),
 * which copies the live entries into a new table: the owner builds it without
 * holding its lock (only one thread ever writes) and swaps it in. The set
 * itself does no locking.
 */
#ifndef ZTB_SDK_IDSET_H
#define ZTB_SDK_IDSET_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#define IDSET_ID_LEN 16

struct idset_entry {
    uint8_t id[IDSET_ID_LEN];
    uint32_t exp; /* Unix seconds after which the entry no longer matters; 0: empty slot */
};

struct idset {
    struct idset_entry *e;
    size_t cap; /* a power of two, or 0 before the first insert */
    size_t count;
    size_t max_count; /* most entries allowed (0: no limit) */
};

/* An empty set holding at most max_count entries (0: no limit). */
void idset_init(struct idset *s, size_t max_count);

/* Free the table. */
void idset_free(struct idset *s);

/* The 16-byte id of a jti string (see the top of this file). */
ztb_err idset_key(const char *jti, size_t n, uint8_t out[IDSET_ID_LEN]);

/*
 * 1 if id is in the set with an expiry at or after now. Never allocates.
 */
int idset_contains(const struct idset *s, const uint8_t id[IDSET_ID_LEN], int64_t now);

/*
 * Insert id until exp (a later exp for an id already there extends it).
 * *added (may be NULL) is 1 if the id was not live in the set before. Grows
 * the table when it is 3/4 full (after dropping expired entries); TOO_LARGE
 * at max_count live entries; NOMEM. exp <= now is a no-op.
 */
ztb_err idset_add(struct idset *s, const uint8_t id[IDSET_ID_LEN], int64_t exp, int64_t now,
                  int *added);

/*
 * Would idset_add need to reallocate the table now? Lets an owner that shares
 * the set with readers prepare the bigger table outside its lock.
 */
int idset_needs_grow(const struct idset *s);

/*
 * A new table holding the entries of s still live at now, sized for them
 * (and room for `extra` more). The caller swaps it in (idset_swap) and frees
 * the old one. s is only read.
 */
ztb_err idset_rebuild(const struct idset *s, int64_t now, size_t extra, struct idset *out);

/* Exchange the contents of a and b. */
void idset_swap(struct idset *a, struct idset *b);

/* Bytes the table uses (for stats and the docs' memory figure). */
size_t idset_bytes(const struct idset *s);

#endif /* ZTB_SDK_IDSET_H */
