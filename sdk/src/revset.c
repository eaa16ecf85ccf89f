/*
 * revset.c - the verifier's local revocation state (see revset.h).
 *
 * Three small name maps (open addressing, linear probing, backward-shift
 * deletion so no tombstones) and one idset for token ids. Events are parsed
 * with the strict pull reader; nothing from an event is trusted beyond its
 * syntax: ids are bounded and printable, numbers are integers in range.
 */
#include <stdlib.h>
#include <string.h>

#include "common/guard.h"
#include "common/json_reader.h"
#include "sdk/src/revset.h"

/* ---- events ------------------------------------------------------------- */

static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return 0;
    }
    return 1;
}

static ztb_err parse_members(struct jr *r, struct rev_event *ev, int *has_gen, int *has_exp,
                             char *type, size_t type_cap)
{
    int more;
    ztb_span name;
    for (;;) {
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            return ZTB_OK;
        if (ztb_span_eq_str(name, "type")) {
            ZTB_GUARD(jr_read_string(r, type, type_cap, NULL));
        } else if (ztb_span_eq_str(name, "id")) {
            ZTB_GUARD(jr_read_string(r, ev->id, sizeof(ev->id), &ev->id_len));
        } else if (ztb_span_eq_str(name, "gen")) {
            ZTB_GUARD(jr_read_int(r, &ev->gen));
            *has_gen = 1;
        } else if (ztb_span_eq_str(name, "exp")) {
            ZTB_GUARD(jr_read_int(r, &ev->exp));
            *has_exp = 1;
        } else if (ztb_span_eq_str(name, "lifted")) {
            ZTB_GUARD(jr_read_bool(r, &ev->lifted));
        } else {
            ZTB_GUARD(jr_skip(r)); /* members a later broker may add */
        }
    }
}

ztb_err rev_event_parse(const void *json, size_t n, struct rev_event *ev)
{
    ZTB_ENSURE(json != NULL && ev != NULL, ZTB_ERR_INVALID_ARG);
    memset(ev, 0, sizeof(*ev));
    ZTB_ENSURE(n <= REV_EVENT_MAX, ZTB_ERR_TOO_LARGE);
    struct jr r;
    jr_init(&r, json, n);
    char type[16] = "";
    int has_gen = 0, has_exp = 0;
    ztb_err rv = jr_enter_object(&r);
    if (rv == ZTB_OK)
        rv = parse_members(&r, ev, &has_gen, &has_exp, type, sizeof(type));
    if (rv == ZTB_OK)
        rv = jr_finish(&r);
    if (rv == ZTB_ERR_TOO_LARGE)
        rv = ZTB_ERR_MALFORMED;
    ZTB_GUARD(rv);

    ZTB_ENSURE(ev->id_len > 0 && printable(ev->id, ev->id_len), ZTB_ERR_MALFORMED);
    if (strcmp(type, "jti") == 0)
        ev->kind = REV_JTI;
    else if (strcmp(type, "agent") == 0)
        ev->kind = REV_AGENT;
    else if (strcmp(type, "audience") == 0)
        ev->kind = REV_AUDIENCE;
    else if (strcmp(type, "key") == 0)
        ev->kind = REV_KEY;
    else
        return type[0] != '\0' ? ZTB_ERR_UNSUPPORTED : ZTB_ERR_MALFORMED;

    if (ev->kind == REV_AUDIENCE && ev->lifted) {
        ev->exp = 0;
        return ZTB_OK; /* exp and gen mean nothing for a lift */
    }
    ZTB_ENSURE(!ev->lifted, ZTB_ERR_MALFORMED); /* only an audience kill is lifted */
    ZTB_ENSURE(has_exp && ev->exp >= 0, ZTB_ERR_MALFORMED);
    ZTB_ENSURE(ev->kind == REV_AUDIENCE || ev->exp > 0, ZTB_ERR_MALFORMED);
    if (ev->kind == REV_AGENT)
        ZTB_ENSURE(has_gen && ev->gen > 0, ZTB_ERR_MALFORMED);
    return ZTB_OK;
}

/* ---- name maps ------------------------------------------------------------ */

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* The slot holding name, or the empty slot ending its probe chain. */
static struct rev_name *names_find(const struct rev_names *m, const char *name, size_t n,
                                   uint32_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct rev_name *e = &m->e[i];
        if (e->name == NULL ||
            (e->hash == h && strncmp(e->name, name, n) == 0 && e->name[n] == '\0'))
            return e;
    }
}

static const struct rev_name *names_get(const struct rev_names *m, const char *name)
{
    if (m->count == 0 || name == NULL)
        return NULL;
    size_t n = strlen(name);
    const struct rev_name *e = names_find(m, name, n, name_hash(name, n));
    return e->name != NULL ? e : NULL;
}

static ztb_err names_grow(struct rev_names *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct rev_names nm = {calloc(ncap, sizeof(struct rev_name)), ncap, 0};
    ZTB_ENSURE(nm.e != NULL, ZTB_ERR_NOMEM);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].name == NULL)
            continue;
        size_t n = strlen(m->e[i].name);
        *names_find(&nm, m->e[i].name, n, m->e[i].hash) = m->e[i];
        nm.count++;
    }
    free(m->e);
    *m = nm;
    return ZTB_OK;
}

/* The entry for name, created (gen 0, until 0) if missing. */
static ztb_err names_upsert(struct rev_names *m, const char *name, size_t n, struct rev_name **out)
{
    if (m->cap == 0 || (m->count + 1) * 4 > m->cap * 3)
        ZTB_GUARD(names_grow(m));
    uint32_t h = name_hash(name, n);
    struct rev_name *e = names_find(m, name, n, h);
    if (e->name == NULL) {
        char *copy = malloc(n + 1);
        ZTB_ENSURE(copy != NULL, ZTB_ERR_NOMEM);
        memcpy(copy, name, n);
        copy[n] = '\0';
        e->name = copy;
        e->hash = h;
        e->gen = 0;
        e->until = 0;
        m->count++;
    }
    *out = e;
    return ZTB_OK;
}

/* Remove the entry at slot i, shifting later members of its chain back. */
static void names_delete_at(struct rev_names *m, size_t i)
{
    size_t mask = m->cap - 1;
    free(m->e[i].name);
    m->e[i].name = NULL;
    m->count--;
    for (size_t j = (i + 1) & mask; m->e[j].name != NULL; j = (j + 1) & mask) {
        size_t home = m->e[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) { /* i lies on j's probe path */
            m->e[i] = m->e[j];
            m->e[j].name = NULL;
            i = j;
        }
    }
}

static void names_free(struct rev_names *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->e[i].name);
    free(m->e);
    m->e = NULL;
    m->cap = m->count = 0;
}

static void names_sweep(struct rev_names *m, int64_t now)
{
    for (size_t i = 0; i < m->cap;) {
        if (m->e[i].name != NULL && m->e[i].until < now)
            names_delete_at(m, i); /* an entry may have moved into i: look again */
        else
            i++;
    }
}

static size_t names_bytes(const struct rev_names *m)
{
    size_t b = m->cap * sizeof(struct rev_name);
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].name != NULL)
            b += strlen(m->e[i].name) + 1;
    return b;
}

/* ---- the state ------------------------------------------------------------ */

void revset_init(struct revset *rs, unsigned skew_s, size_t max_entries)
{
    memset(rs, 0, sizeof(*rs));
    idset_init(&rs->jtis, 0); /* the cap is on all entries together: see make_room */
    rs->skew_s = skew_s;
    rs->max_entries = max_entries;
}

void revset_free(struct revset *rs)
{
    idset_free(&rs->jtis);
    names_free(&rs->agents);
    names_free(&rs->audiences);
    names_free(&rs->keys);
}

/* exp + skew, or INT64_MAX for "never". */
static int64_t until_of(const struct revset *rs, int64_t exp)
{
    if (exp == 0 || exp > INT64_MAX - (int64_t)rs->skew_s)
        return INT64_MAX;
    return exp + (int64_t)rs->skew_s;
}

/*
 * Room for one more entry at now: ZTB_OK if there is (after evicting, and
 * counting, every entry that no longer matters), else the set becomes full
 * and TOO_LARGE. Rebuilding the jti table allocates; this only runs when the
 * set is at its cap.
 */
static ztb_err make_room(struct revset *rs, int64_t now)
{
    if (rs->max_entries == 0 || revset_count(rs) < rs->max_entries)
        return ZTB_OK;
    size_t before = revset_count(rs);
    revset_sweep_names(rs, now);
    if (rs->jtis.count > 0) {
        struct idset live;
        ZTB_GUARD(idset_rebuild(&rs->jtis, now, 1, &live));
        idset_swap(&rs->jtis, &live);
        idset_free(&live);
    }
    rs->evicted += before - revset_count(rs);
    if (revset_count(rs) < rs->max_entries)
        return ZTB_OK;
    rs->full = 1;
    rs->refused++;
    return ZTB_ERR_TOO_LARGE;
}

ztb_err revset_apply(struct revset *rs, const struct rev_event *ev, int64_t now)
{
    ZTB_ENSURE(ev->id_len > 0 && ev->id_len <= REV_ID_MAX, ZTB_ERR_INVALID_ARG);
    if (ev->kind == REV_AUDIENCE && ev->lifted) {
        if (rs->audiences.count > 0) {
            uint32_t h = name_hash(ev->id, ev->id_len);
            struct rev_name *e = names_find(&rs->audiences, ev->id, ev->id_len, h);
            if (e->name != NULL)
                names_delete_at(&rs->audiences, (size_t)(e - rs->audiences.e));
        }
        return ZTB_OK;
    }
    int64_t until = until_of(rs, ev->exp);
    if (until < now)
        return ZTB_OK; /* no token it could refuse is still acceptable */
    if (ev->kind == REV_JTI) {
        uint8_t id[IDSET_ID_LEN];
        ZTB_GUARD(idset_key(ev->id, ev->id_len, id));
        if (!idset_contains(&rs->jtis, id, 0)) /* held (even expired): reused in place */
            ZTB_GUARD(make_room(rs, now));
        return idset_add(&rs->jtis, id, until == INT64_MAX ? (int64_t)UINT32_MAX : until, now,
                         NULL);
    }
    struct rev_names *m = ev->kind == REV_AGENT      ? &rs->agents
                          : ev->kind == REV_AUDIENCE ? &rs->audiences
                                                     : &rs->keys;
    if (m->count == 0 ||
        names_find(m, ev->id, ev->id_len, name_hash(ev->id, ev->id_len))->name == NULL)
        ZTB_GUARD(make_room(rs, now));
    struct rev_name *e;
    ZTB_GUARD(names_upsert(m, ev->id, ev->id_len, &e));
    if (ev->kind == REV_AGENT && ev->gen > e->gen)
        e->gen = ev->gen;
    if (until > e->until)
        e->until = until;
    return ZTB_OK;
}

ztb_err revset_check(const struct revset *rs, const char *kid, const char *aud, const char *agent,
                     int64_t gen, const uint8_t jti_id[IDSET_ID_LEN], int64_t now)
{
    if (rs->full)
        return ZTB_ERR_REVOCATION_STALE; /* a revocation is missing: refuse everything */
    const struct rev_name *e;
    if ((e = names_get(&rs->keys, kid)) != NULL && e->until >= now)
        return ZTB_ERR_KEY_TAINTED;
    if ((e = names_get(&rs->audiences, aud)) != NULL && e->until >= now)
        return ZTB_ERR_AUDIENCE_KILLED;
    if ((e = names_get(&rs->agents, agent)) != NULL && e->until >= now && gen < e->gen)
        return ZTB_ERR_AGENT_REVOKED;
    if (jti_id != NULL && idset_contains(&rs->jtis, jti_id, now))
        return ZTB_ERR_REVOKED;
    return ZTB_OK;
}

void revset_sweep_names(struct revset *rs, int64_t now)
{
    names_sweep(&rs->agents, now);
    names_sweep(&rs->audiences, now);
    names_sweep(&rs->keys, now);
}

size_t revset_count(const struct revset *rs)
{
    return rs->jtis.count + rs->agents.count + rs->audiences.count + rs->keys.count;
}

size_t revset_bytes(const struct revset *rs)
{
    return idset_bytes(&rs->jtis) + names_bytes(&rs->agents) + names_bytes(&rs->audiences) +
           names_bytes(&rs->keys);
}
