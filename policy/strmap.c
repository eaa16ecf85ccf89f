/*
 * strmap.c - immutable open-addressing string map (see strmap.h).
 *
 * Must never: grow or change after building (readers take no lock), or
 * probe forever (the table is at most half full).
 */
#include <string.h>

#include "policy/strmap.h"

uint64_t policy_strmap_hash(const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    /* fold the high bits down: the table index uses the low ones */
    return h ^ (h >> 32);
}

ztb_err policy_strmap_init(policy_strmap *m, ztb_arena *a, uint32_t max_keys)
{
    memset(m, 0, sizeof(*m));
    if (max_keys > (1u << 30))
        return ZTB_ERR_TOO_LARGE;
    uint32_t size = 8;
    while (size < 2 * max_keys)
        size *= 2;
    m->slots = ztb_arena_calloc(a, size, sizeof(*m->slots));
    m->entries = ztb_arena_calloc(a, max_keys ? max_keys : 1, sizeof(*m->entries));
    if (m->slots == NULL || m->entries == NULL)
        return ztb_arena_error(a);
    m->mask = size - 1;
    m->limit = max_keys;
    return ZTB_OK;
}

/* The slot holding key, or the empty slot where it would go. */
static struct policy_strmap_slot *find(const policy_strmap *m, const char *key, size_t len,
                                       uint32_t h)
{
    uint32_t i = h & m->mask;
    for (;;) {
        struct policy_strmap_slot *s = &m->slots[i];
        if (s->entry == 0)
            return s;
        if (s->hash == h) {
            const struct policy_strmap_entry *e = &m->entries[s->entry - 1];
            if (e->len == len && (len == 0 || memcmp(e->key, key, len) == 0))
                return s;
        }
        i = (i + 1) & m->mask;
    }
}

ztb_err policy_strmap_put(policy_strmap *m, const char *key, size_t len, uint32_t value,
                          uint32_t *existing)
{
    if (m->slots == NULL || key == NULL || len > UINT32_MAX)
        return ZTB_ERR_INVALID_ARG;
    uint32_t h = (uint32_t)policy_strmap_hash(key, len);
    struct policy_strmap_slot *s = find(m, key, len, h);
    if (s->entry != 0) {
        if (existing != NULL)
            *existing = m->entries[s->entry - 1].value;
        return ZTB_ERR_EXISTS;
    }
    if (m->count >= m->limit)
        return ZTB_ERR_TOO_LARGE;
    struct policy_strmap_entry *e = &m->entries[m->count];
    e->key = key;
    e->len = (uint32_t)len;
    e->value = value;
    s->hash = h;
    s->entry = ++m->count;
    return ZTB_OK;
}

int policy_strmap_get(const policy_strmap *m, const char *key, size_t len, uint32_t *value)
{
    if (m->slots == NULL || m->count == 0 || (key == NULL && len != 0) || len > UINT32_MAX)
        return 0;
    const struct policy_strmap_slot *s = find(m, key, len, (uint32_t)policy_strmap_hash(key, len));
    if (s->entry == 0)
        return 0;
    *value = m->entries[s->entry - 1].value;
    return 1;
}
