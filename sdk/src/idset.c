/*
 * idset.c - compact set of 128-bit ids with expiries (see idset.h).
 *
 * Open addressing with linear probing over a power-of-two table. Entries are
 * never deleted one by one: an expired entry stays in its slot (lookups treat
 * it as absent; adding the same id again revives it) until the next rebuild
 * copies the live entries into a fresh table. That keeps probe chains intact
 * without tombstones and lets the owner rebuild without blocking readers.
 */
#include <stdlib.h>
#include <string.h>

#include "common/base64url.h"
#include "common/guard.h"
#include "pki/es256.h"
#include "sdk/src/idset.h"

#define MIN_CAP 64

static size_t slot_of(const uint8_t id[IDSET_ID_LEN], size_t mask)
{
    uint64_t x;
    memcpy(&x, id, sizeof(x));
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 29;
    return (size_t)x & mask;
}

void idset_init(struct idset *s, size_t max_count)
{
    s->e = NULL;
    s->cap = 0;
    s->count = 0;
    s->max_count = max_count;
}

void idset_free(struct idset *s)
{
    free(s->e);
    s->e = NULL;
    s->cap = 0;
    s->count = 0;
}

ztb_err idset_key(const char *jti, size_t n, uint8_t out[IDSET_ID_LEN])
{
    ZTB_ENSURE(jti != NULL && n > 0, ZTB_ERR_INVALID_ARG);
    size_t got = 0;
    if (n == 22 && ztb_b64url_decode(jti, n, out, IDSET_ID_LEN, &got) == ZTB_OK &&
        got == IDSET_ID_LEN)
        return ZTB_OK;
    uint8_t h[32];
    ZTB_GUARD(ztb_es256_sha256(jti, n, h));
    memcpy(out, h, IDSET_ID_LEN);
    return ZTB_OK;
}

/* The slot holding id, or the empty slot ending its probe chain. */
static struct idset_entry *find(const struct idset *s, const uint8_t id[IDSET_ID_LEN])
{
    size_t mask = s->cap - 1;
    for (size_t i = slot_of(id, mask);; i = (i + 1) & mask) {
        struct idset_entry *e = &s->e[i];
        if (e->exp == 0 || memcmp(e->id, id, IDSET_ID_LEN) == 0)
            return e;
    }
}

int idset_contains(const struct idset *s, const uint8_t id[IDSET_ID_LEN], int64_t now)
{
    if (s->count == 0)
        return 0;
    const struct idset_entry *e = find(s, id);
    return e->exp != 0 && (int64_t)e->exp >= now;
}

int idset_needs_grow(const struct idset *s)
{
    return s->cap == 0 || (s->count + 1) * 4 > s->cap * 3;
}

static size_t cap_for(size_t n)
{
    size_t cap = MIN_CAP;
    while (cap / 8 * 3 < n && cap < ((size_t)1 << 40)) /* at most 3/8 full after a rebuild */
        cap *= 2;
    return cap;
}

ztb_err idset_rebuild(const struct idset *s, int64_t now, size_t extra, struct idset *out)
{
    size_t live = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->e[i].exp != 0 && (int64_t)s->e[i].exp >= now)
            live++;
    idset_init(out, s->max_count);
    out->cap = cap_for(live + extra);
    out->e = calloc(out->cap, sizeof(*out->e));
    ZTB_ENSURE(out->e != NULL, ZTB_ERR_NOMEM);
    for (size_t i = 0; i < s->cap; i++) {
        const struct idset_entry *src = &s->e[i];
        if (src->exp == 0 || (int64_t)src->exp < now)
            continue;
        *find(out, src->id) = *src;
        out->count++;
    }
    return ZTB_OK;
}

void idset_swap(struct idset *a, struct idset *b)
{
    struct idset t = *a;
    *a = *b;
    *b = t;
}

ztb_err idset_add(struct idset *s, const uint8_t id[IDSET_ID_LEN], int64_t exp, int64_t now,
                  int *added)
{
    if (added != NULL)
        *added = 0;
    if (exp <= now)
        return ZTB_OK;
    uint32_t e32 = exp > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)exp;
    if (s->count > 0) {
        struct idset_entry *e = find(s, id);
        if (e->exp != 0) { /* already there, live or not */
            if (added != NULL)
                *added = (int64_t)e->exp < now;
            if (e32 > e->exp)
                e->exp = e32;
            return ZTB_OK;
        }
    }
    if (idset_needs_grow(s) || (s->max_count != 0 && s->count >= s->max_count)) {
        struct idset bigger;
        ZTB_GUARD(idset_rebuild(s, now, s->count / 2 + 1, &bigger));
        idset_swap(s, &bigger);
        idset_free(&bigger);
    }
    ZTB_ENSURE(s->max_count == 0 || s->count < s->max_count, ZTB_ERR_TOO_LARGE);
    struct idset_entry *e = find(s, id);
    memcpy(e->id, id, IDSET_ID_LEN);
    e->exp = e32;
    s->count++;
    if (added != NULL)
        *added = 1;
    return ZTB_OK;
}

size_t idset_bytes(const struct idset *s)
{
    return s->cap * sizeof(struct idset_entry);
}
