/*
 * rotation.c - key lifecycle transitions (see rotation.h). Each transition
 * checks everything before it changes anything, so a refused transition
 * leaves the list as it was (see rotation.h for what must never happen).
 */
#include <string.h>

#include "common/guard.h"
#include "pki/rotation.h"

/* Ten years: anything longer is a typo, not a policy. */
#define MAX_DURATION_S (10LL * 366 * 24 * 3600)

void ztb_rotation_params_default(ztb_rotation_params *p)
{
    p->jwks_cache_s = ZTB_ROTATION_DEFAULT_JWKS_CACHE_S;
    p->max_token_ttl_s = ZTB_ROTATION_DEFAULT_MAX_TOKEN_TTL_S;
    p->skew_s = ZTB_ROTATION_DEFAULT_SKEW_S;
}

ztb_err ztb_rotation_params_check(const ztb_rotation_params *p)
{
    ZTB_ENSURE(p != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(p->jwks_cache_s >= 0 && p->jwks_cache_s <= MAX_DURATION_S, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(p->max_token_ttl_s >= 0 && p->max_token_ttl_s <= MAX_DURATION_S,
               ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(p->skew_s >= 0 && p->skew_s <= MAX_DURATION_S, ZTB_ERR_INVALID_ARG);
    return ZTB_OK;
}

static const char *const state_names[] = {"next", "active", "retiring", "retired"};

const char *ztb_key_state_name(ztb_key_state s)
{
    return (unsigned)s < ZTB_ARRAY_LEN(state_names) ? state_names[s] : "unknown";
}

ztb_err ztb_key_state_parse(const char *name, ztb_key_state *out)
{
    ZTB_ENSURE(name != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    for (size_t i = 0; i < ZTB_ARRAY_LEN(state_names); i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (ztb_key_state)i;
            return ZTB_OK;
        }
    }
    return ZTB_ERR_MALFORMED;
}

static int kid_ok(const char *kid)
{
    size_t n = strnlen(kid, ZTB_KID_LEN + 1);
    if (n != ZTB_KID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = kid[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int ztb_rotation_find_state(const ztb_key_meta *keys, size_t n, ztb_key_state s)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i].state == s)
            return (int)i;
    return -1;
}

int ztb_rotation_find_kid(const ztb_key_meta *keys, size_t n, const char *kid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].kid, kid) == 0)
            return (int)i;
    return -1;
}

ztb_err ztb_rotation_check(const ztb_key_meta *keys, size_t n)
{
    ZTB_ENSURE(keys != NULL || n == 0, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= ZTB_ROTATION_MAX_KEYS, ZTB_ERR_MALFORMED);
    size_t active = 0, next = 0;
    for (size_t i = 0; i < n; i++) {
        const ztb_key_meta *k = &keys[i];
        ZTB_ENSURE(kid_ok(k->kid), ZTB_ERR_MALFORMED);
        ZTB_ENSURE(ztb_rotation_find_kid(keys, i, k->kid) < 0, ZTB_ERR_MALFORMED);
        ZTB_ENSURE(k->created >= 0 && k->activated >= 0 && k->deactivated >= 0 && k->not_after >= 0,
                   ZTB_ERR_MALFORMED);
        switch (k->state) {
        case ZTB_KEY_NEXT:
            next++;
            ZTB_ENSURE(k->activated == 0 && k->deactivated == 0, ZTB_ERR_MALFORMED);
            break;
        case ZTB_KEY_ACTIVE:
            active++;
            ZTB_ENSURE(k->activated >= k->created && k->deactivated == 0, ZTB_ERR_MALFORMED);
            break;
        case ZTB_KEY_RETIRING:
            ZTB_ENSURE(k->activated >= k->created && k->deactivated >= k->activated &&
                           k->not_after >= k->deactivated,
                       ZTB_ERR_MALFORMED);
            break;
        case ZTB_KEY_RETIRED:
            ZTB_ENSURE(k->deactivated >= k->created && k->not_after >= k->deactivated,
                       ZTB_ERR_MALFORMED);
            break;
        default: return ZTB_ERR_MALFORMED;
        }
    }
    ZTB_ENSURE(active == 1 && next <= 1, ZTB_ERR_MALFORMED);
    return ZTB_OK;
}

int ztb_rotation_published(const ztb_key_meta *k, int64_t now)
{
    if (k->state == ZTB_KEY_NEXT || k->state == ZTB_KEY_ACTIVE)
        return 1;
    return now < k->not_after; /* retiring or retired: while a token may live */
}

int ztb_rotation_prunable(const ztb_key_meta *k, int64_t now)
{
    return k->state == ZTB_KEY_RETIRED && now >= k->not_after;
}

int64_t ztb_rotation_promotable_at(const ztb_key_meta *k, const ztb_rotation_params *p)
{
    return k->created + p->jwks_cache_s;
}

ztb_err ztb_rotation_add_next(ztb_key_meta *keys, size_t *n, size_t cap, const char *kid,
                              int64_t now)
{
    ZTB_ENSURE(keys != NULL && n != NULL && kid != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(kid_ok(kid) && now >= 0, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(ztb_rotation_find_state(keys, *n, ZTB_KEY_NEXT) < 0, ZTB_ERR_STATE);
    ZTB_ENSURE(ztb_rotation_find_kid(keys, *n, kid) < 0, ZTB_ERR_EXISTS);
    ZTB_ENSURE(*n < cap && *n < ZTB_ROTATION_MAX_KEYS, ZTB_ERR_TOO_LARGE);
    ztb_key_meta *k = &keys[(*n)++];
    memset(k, 0, sizeof(*k));
    memcpy(k->kid, kid, ZTB_KID_LEN + 1);
    k->state = ZTB_KEY_NEXT;
    k->created = now;
    return ZTB_OK;
}

ztb_err ztb_rotation_promote(ztb_key_meta *keys, size_t n, const ztb_rotation_params *p,
                             int64_t now, int force)
{
    ZTB_ENSURE(keys != NULL && p != NULL, ZTB_ERR_INVALID_ARG);
    int ni = ztb_rotation_find_state(keys, n, ZTB_KEY_NEXT);
    int ai = ztb_rotation_find_state(keys, n, ZTB_KEY_ACTIVE);
    ZTB_ENSURE(ni >= 0, ZTB_ERR_STATE);
    ZTB_ENSURE(ai >= 0, ZTB_ERR_INTERNAL); /* the invariant says there is one */
    ZTB_ENSURE(force || now >= ztb_rotation_promotable_at(&keys[ni], p), ZTB_ERR_STATE);
    ZTB_ENSURE(now >= keys[ni].created && now >= keys[ai].activated, ZTB_ERR_STATE);
    ztb_key_meta *old = &keys[ai];
    old->state = ZTB_KEY_RETIRING;
    old->deactivated = now;
    old->not_after = now + p->max_token_ttl_s + p->skew_s;
    keys[ni].state = ZTB_KEY_ACTIVE;
    keys[ni].activated = now;
    return ZTB_OK;
}

ztb_err ztb_rotation_retire(ztb_key_meta *keys, size_t n, const char *kid, int64_t now, int force)
{
    ZTB_ENSURE(keys != NULL && kid != NULL, ZTB_ERR_INVALID_ARG);
    int i = ztb_rotation_find_kid(keys, n, kid);
    ZTB_ENSURE(i >= 0, ZTB_ERR_NOT_FOUND);
    ztb_key_meta *k = &keys[i];
    switch (k->state) {
    case ZTB_KEY_ACTIVE: return ZTB_ERR_STATE;
    case ZTB_KEY_NEXT:
        /* it never signed: nothing of it can be alive */
        k->state = ZTB_KEY_RETIRED;
        k->deactivated = now > k->created ? now : k->created;
        k->not_after = k->deactivated;
        return ZTB_OK;
    case ZTB_KEY_RETIRING: k->state = ZTB_KEY_RETIRED; break;
    case ZTB_KEY_RETIRED: break;
    }
    if (force && now < k->not_after)
        k->not_after = now > k->deactivated ? now : k->deactivated;
    return ZTB_OK;
}

unsigned ztb_rotation_expire(ztb_key_meta *keys, size_t n, int64_t now)
{
    unsigned c = 0;
    for (size_t i = 0; i < n; i++) {
        if (keys[i].state == ZTB_KEY_RETIRING && now >= keys[i].not_after) {
            keys[i].state = ZTB_KEY_RETIRED;
            c |= ZTB_ROTATION_RETIRED;
        }
    }
    return c;
}

ztb_err ztb_rotation_tick(ztb_key_meta *keys, size_t n, const ztb_rotation_params *p, int64_t now,
                          unsigned *changed)
{
    ZTB_ENSURE(keys != NULL && p != NULL, ZTB_ERR_INVALID_ARG);
    unsigned c = ztb_rotation_expire(keys, n, now);
    int ni = ztb_rotation_find_state(keys, n, ZTB_KEY_NEXT);
    if (ni >= 0 && now >= ztb_rotation_promotable_at(&keys[ni], p) &&
        ztb_rotation_promote(keys, n, p, now, 0) == ZTB_OK)
        c |= ZTB_ROTATION_PROMOTED;
    if (changed != NULL)
        *changed = c;
    return ZTB_OK;
}

size_t ztb_rotation_prune(ztb_key_meta *keys, size_t *n, int64_t now,
                          char (*removed)[ZTB_KID_LEN + 1])
{
    size_t out = 0, gone = 0;
    for (size_t i = 0; i < *n; i++) {
        if (ztb_rotation_prunable(&keys[i], now)) {
            if (removed != NULL)
                memcpy(removed[gone], keys[i].kid, ZTB_KID_LEN + 1);
            gone++;
            continue;
        }
        if (out != i)
            keys[out] = keys[i];
        out++;
    }
    *n = out;
    return gone;
}
