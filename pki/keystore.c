/*
 * keystore.c - the key store directory (see keystore.h).
 *
 * The manifest is parsed strictly with jansson (unknown members, duplicate
 * names, wrong types and broken invariants are all refused: a manifest we
 * cannot fully understand must not decide which key signs). Every change
 * prepares all new in-memory state first, then writes the files in the
 * crash-safe order, then swaps the prepared state in, so a failure before
 * the manifest write leaves both disk and memory as they were.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/guard.h"
#include "common/secret.h"
#include "pki/jwk.h"
#include "pki/keyfile.h"
#include "pki/keystore.h"

#define MANIFEST_NAME   "keystore.json"
#define MANIFEST_FORMAT "ztb-keystore"
#define KEYS_DIR        "keys"
#define LOCK_NAME       ".lock"
#define LOCK_TRIES      250 /* x 20 ms: give up after 5 s */

struct entry {
    ztb_key_meta meta;
    ztb_key *key; /* private for next/active, public for retiring/retired */
};

struct manifest {
    int encrypted;
    uint64_t generation;
    ztb_rotation_params params;
    size_t n;
    ztb_key_meta keys[ZTB_ROTATION_MAX_KEYS];
};

struct ztb_keystore {
    int dirfd, keysfd, lockfd;
    char *pass; /* secret copy, passlen bytes + NUL */
    size_t passlen;
    int encrypted;
    uint64_t generation;
    ztb_rotation_params params;
    size_t n;
    struct entry e[ZTB_ROTATION_MAX_KEYS];
};

/* ---- locking ---- */

static ztb_err lock_store(ztb_keystore *ks, int op)
{
    for (int i = 0; i < LOCK_TRIES; i++) {
        if (flock(ks->lockfd, op | LOCK_NB) == 0)
            return ZTB_OK;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return ZTB_ERR_IO;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return ZTB_ERR_TIMEOUT;
}

static void unlock_store(ztb_keystore *ks)
{
    (void)flock(ks->lockfd, LOCK_UN);
}

/* ---- manifest ---- */

static int only_members(const json_t *obj, const char *const *allowed, size_t n)
{
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)obj, name, v)
    {
        (void)v;
        size_t i = 0;
        while (i < n && strcmp(name, allowed[i]) != 0)
            i++;
        if (i == n)
            return 0;
    }
    return 1;
}

static ztb_err get_int(const json_t *obj, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(obj, name);
    ZTB_ENSURE(json_is_integer(v), ZTB_ERR_MALFORMED);
    *out = (int64_t)json_integer_value(v);
    return ZTB_OK;
}

static ztb_err parse_key_entry(const json_t *e, ztb_key_meta *k)
{
    static const char *const allowed[] = {"kid",       "alg",         "state",    "created",
                                          "activated", "deactivated", "not_after"};
    ZTB_ENSURE(json_is_object(e), ZTB_ERR_MALFORMED);
    ZTB_ENSURE(only_members(e, allowed, ZTB_ARRAY_LEN(allowed)), ZTB_ERR_MALFORMED);
    const char *kid = json_string_value(json_object_get(e, "kid"));
    const char *alg = json_string_value(json_object_get(e, "alg"));
    const char *state = json_string_value(json_object_get(e, "state"));
    ZTB_ENSURE(kid != NULL && strlen(kid) == ZTB_KID_LEN, ZTB_ERR_MALFORMED);
    ZTB_ENSURE(alg != NULL && strcmp(alg, "ES256") == 0, ZTB_ERR_MALFORMED);
    ZTB_ENSURE(state != NULL, ZTB_ERR_MALFORMED);
    memcpy(k->kid, kid, ZTB_KID_LEN + 1);
    ZTB_GUARD(ztb_key_state_parse(state, &k->state));
    ZTB_GUARD(get_int(e, "created", &k->created));
    ZTB_GUARD(get_int(e, "activated", &k->activated));
    ZTB_GUARD(get_int(e, "deactivated", &k->deactivated));
    ZTB_GUARD(get_int(e, "not_after", &k->not_after));
    return ZTB_OK;
}

static ztb_err parse_manifest(const char *text, size_t len, struct manifest *m)
{
    static const char *const top[] = {"format",     "version", "encrypted",
                                      "generation", "params",  "keys"};
    static const char *const par[] = {"jwks_cache_s", "max_token_ttl_s", "skew_s"};
    ztb_err rv = ZTB_OK;
    json_error_t jerr;
    json_t *doc = NULL;
    ZTB_CHECK(rv, memchr(text, '\0', len) == NULL, ZTB_ERR_MALFORMED); /* jansson lets some by */
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    ZTB_CHECK(rv, doc != NULL, ZTB_ERR_MALFORMED);
    ZTB_CHECK(rv, json_is_object(doc) && only_members(doc, top, ZTB_ARRAY_LEN(top)),
              ZTB_ERR_MALFORMED);
    const char *fmt = json_string_value(json_object_get(doc, "format"));
    ZTB_CHECK(rv, fmt != NULL && strcmp(fmt, MANIFEST_FORMAT) == 0, ZTB_ERR_MALFORMED);
    const json_t *ver = json_object_get(doc, "version");
    ZTB_CHECK(rv, json_is_integer(ver) && json_integer_value(ver) == 1, ZTB_ERR_UNSUPPORTED);
    const json_t *enc = json_object_get(doc, "encrypted");
    ZTB_CHECK(rv, json_is_boolean(enc), ZTB_ERR_MALFORMED);
    m->encrypted = json_is_true(enc);
    int64_t gen;
    ZTB_TRY(rv, get_int(doc, "generation", &gen));
    ZTB_CHECK(rv, gen > 0, ZTB_ERR_MALFORMED);
    m->generation = (uint64_t)gen;

    const json_t *p = json_object_get(doc, "params");
    ZTB_CHECK(rv, json_is_object(p) && only_members(p, par, ZTB_ARRAY_LEN(par)), ZTB_ERR_MALFORMED);
    ZTB_TRY(rv, get_int(p, "jwks_cache_s", &m->params.jwks_cache_s));
    ZTB_TRY(rv, get_int(p, "max_token_ttl_s", &m->params.max_token_ttl_s));
    ZTB_TRY(rv, get_int(p, "skew_s", &m->params.skew_s));
    ZTB_CHECK(rv, ztb_rotation_params_check(&m->params) == ZTB_OK, ZTB_ERR_MALFORMED);

    const json_t *keys = json_object_get(doc, "keys");
    ZTB_CHECK(rv, json_is_array(keys), ZTB_ERR_MALFORMED);
    ZTB_CHECK(rv, json_array_size(keys) <= ZTB_ROTATION_MAX_KEYS, ZTB_ERR_MALFORMED);
    m->n = json_array_size(keys);
    for (size_t i = 0; i < m->n; i++)
        ZTB_TRY(rv, parse_key_entry(json_array_get(keys, i), &m->keys[i]));
    ZTB_TRY(rv, ztb_rotation_check(m->keys, m->n));
out:
    json_decref(doc);
    return rv;
}

static ztb_err render_manifest(const struct manifest *m, ztb_buf *out)
{
    ztb_buf_printf(out,
                   "{\n  \"format\": \"%s\",\n  \"version\": 1,\n  \"encrypted\": %s,\n"
                   "  \"generation\": %llu,\n"
                   "  \"params\": {\"jwks_cache_s\": %lld, \"max_token_ttl_s\": %lld, "
                   "\"skew_s\": %lld},\n  \"keys\": [",
                   MANIFEST_FORMAT, m->encrypted ? "true" : "false",
                   (unsigned long long)m->generation, (long long)m->params.jwks_cache_s,
                   (long long)m->params.max_token_ttl_s, (long long)m->params.skew_s);
    for (size_t i = 0; i < m->n; i++) {
        const ztb_key_meta *k = &m->keys[i];
        ztb_buf_printf(out,
                       "%s\n    {\"kid\": \"%s\", \"alg\": \"ES256\", \"state\": \"%s\", "
                       "\"created\": %lld, \"activated\": %lld, \"deactivated\": %lld, "
                       "\"not_after\": %lld}",
                       i ? "," : "", k->kid, ztb_key_state_name(k->state), (long long)k->created,
                       (long long)k->activated, (long long)k->deactivated, (long long)k->not_after);
    }
    return ztb_buf_append_str(out, "\n  ]\n}\n");
}

static ztb_err read_manifest(ztb_keystore *ks, struct manifest *m)
{
    ztb_buf b;
    ztb_buf_init(&b, ZTB_KEYSTORE_MANIFEST_MAX);
    ztb_err rv = ztb_keyfile_read(ks->dirfd, MANIFEST_NAME, ZTB_KEYSTORE_MANIFEST_MAX,
                                  ZTB_KEYFILE_PUBLIC, &b);
    if (rv == ZTB_OK)
        rv = parse_manifest((const char *)b.data, b.len, m);
    ztb_buf_free(&b);
    return rv;
}

/* ---- keys ---- */

static void pem_name(const char *kid, char out[ZTB_KID_LEN + 8])
{
    snprintf(out, ZTB_KID_LEN + 8, "%s.pem", kid);
}

static int keeps_private(ztb_key_state s)
{
    return s == ZTB_KEY_NEXT || s == ZTB_KEY_ACTIVE;
}

/* The form a key is held in for state s: itself, or its public part. */
static ztb_err key_for_state(ztb_key *k, ztb_key_state s, ztb_key **out)
{
    if (keeps_private(s) || !ztb_key_has_private(k)) {
        *out = ztb_key_ref(k);
        return ZTB_OK;
    }
    return ztb_key_public_only(k, out);
}

static ztb_err load_key(ztb_keystore *ks, int encrypted, const ztb_key_meta *m, ztb_key **out)
{
    char name[ZTB_KID_LEN + 8];
    pem_name(m->kid, name);
    ztb_buf b;
    ztb_buf_init_secret(&b, ZTB_KEY_PEM_MAX);
    ztb_key *k = NULL;
    int enc = 0;
    ztb_err rv = ztb_keyfile_read(ks->keysfd, name, ZTB_KEY_PEM_MAX, ZTB_KEYFILE_SECRET, &b);
    if (rv != ZTB_OK)
        goto out;
    ZTB_TRY(rv, ztb_key_from_pem_ex(b.data, b.len, ks->pass, ks->passlen, &k, &enc));
    ZTB_CHECK(rv, enc == encrypted, ZTB_ERR_KEY); /* no plaintext key in an encrypted store */
    ZTB_CHECK(rv, ztb_key_has_private(k), ZTB_ERR_KEY);
    ZTB_CHECK(rv, strcmp(ztb_key_kid(k), m->kid) == 0, ZTB_ERR_KEY);
    ZTB_TRY(rv, key_for_state(k, m->state, out));
out:
    ztb_key_free(k);
    ztb_buf_free(&b);
    return rv;
}

static void free_entries(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ztb_key_free(e[i].key);
        e[i].key = NULL;
    }
}

/*
 * Build entries for manifest m into out: reuse keys already held (by kid),
 * use fresh (if non-NULL) for its kid, load the rest from disk.
 */
static ztb_err prepare_entries(ztb_keystore *ks, const struct manifest *m, ztb_key *fresh,
                               struct entry *out)
{
    ztb_err rv = ZTB_OK;
    size_t done = 0;
    for (; done < m->n; done++) {
        const ztb_key_meta *km = &m->keys[done];
        out[done].meta = *km;
        out[done].key = NULL;
        ztb_key *have = NULL;
        if (fresh != NULL && strcmp(ztb_key_kid(fresh), km->kid) == 0)
            have = fresh;
        for (size_t j = 0; have == NULL && j < ks->n; j++)
            if (strcmp(ks->e[j].meta.kid, km->kid) == 0)
                have = ks->e[j].key;
        /* a key held public-only cannot become next/active again: reload it */
        if (have != NULL && (!keeps_private(km->state) || ztb_key_has_private(have)))
            rv = key_for_state(have, km->state, &out[done].key);
        else
            rv = load_key(ks, m->encrypted, km, &out[done].key);
        if (rv != ZTB_OK)
            break;
    }
    if (rv != ZTB_OK)
        free_entries(out, done);
    return rv;
}

/* Swap prepared entries (and the manifest's facts) into ks. */
static void install(ztb_keystore *ks, const struct manifest *m, struct entry *e)
{
    free_entries(ks->e, ks->n);
    memcpy(ks->e, e, m->n * sizeof(*e));
    ks->n = m->n;
    ks->generation = m->generation;
    ks->params = m->params;
    ks->encrypted = m->encrypted;
}

/* Bring ks up to date with the manifest on disk (the caller holds a lock). */
static ztb_err refresh(ztb_keystore *ks, int *changed)
{
    struct manifest m;
    struct entry e[ZTB_ROTATION_MAX_KEYS];
    if (changed != NULL)
        *changed = 0;
    ZTB_GUARD(read_manifest(ks, &m));
    if (m.generation == ks->generation && ks->n > 0)
        return ZTB_OK;
    ZTB_ENSURE(ks->n == 0 || m.encrypted == ks->encrypted, ZTB_ERR_STATE);
    ZTB_ENSURE(!m.encrypted || ks->passlen > 0, ZTB_ERR_PASSPHRASE);
    ZTB_GUARD(prepare_entries(ks, &m, NULL, e));
    install(ks, &m, e);
    if (changed != NULL)
        *changed = 1;
    return ZTB_OK;
}

/*
 * Write a change: fresh's PEM (if any), then the manifest, then delete the
 * PEMs of removed kids; swap in the new state. Caller holds LOCK_EX.
 */
static ztb_err commit(ztb_keystore *ks, struct manifest *m, ztb_key *fresh,
                      char (*removed)[ZTB_KID_LEN + 1], size_t nremoved)
{
    ztb_err rv = ZTB_OK;
    struct entry e[ZTB_ROTATION_MAX_KEYS];
    int prepared = 0;
    ztb_buf pem, text;
    ztb_buf_init_secret(&pem, ZTB_KEY_PEM_MAX);
    ztb_buf_init(&text, ZTB_KEYSTORE_MANIFEST_MAX);

    m->generation = ks->generation + 1;
    m->encrypted = ks->encrypted;
    ZTB_TRY(rv, ztb_rotation_check(m->keys, m->n));
    ZTB_TRY(rv, render_manifest(m, &text));
    ZTB_TRY(rv, prepare_entries(ks, m, fresh, e));
    prepared = 1;

    if (fresh != NULL) {
        char name[ZTB_KID_LEN + 8];
        pem_name(ztb_key_kid(fresh), name);
        ZTB_TRY(rv, ztb_key_private_pem(fresh, ks->pass, ks->passlen, &pem));
        ZTB_TRY(rv, ztb_keyfile_write_new(ks->keysfd, name, pem.data, pem.len, 0600));
        ztb_keyfile_fault_point("key-written");
    }
    ZTB_TRY(rv, ztb_keyfile_write_atomic(ks->dirfd, MANIFEST_NAME, text.data, text.len, 0600));
    ztb_keyfile_fault_point("manifest-written");
    /* from here on the new manifest is the truth */
    install(ks, m, e);
    prepared = 0;
    for (size_t i = 0; i < nremoved; i++) {
        char name[ZTB_KID_LEN + 8];
        pem_name(removed[i], name);
        (void)ztb_keyfile_remove(ks->keysfd, name); /* an orphan is harmless; prune retries */
        ztb_keyfile_fault_point("key-removed");
    }
out:
    if (prepared)
        free_entries(e, m->n);
    ztb_buf_free(&pem);
    ztb_buf_free(&text);
    return rv;
}

/* The current state as a manifest to transform. */
static void snapshot(const ztb_keystore *ks, struct manifest *m)
{
    m->encrypted = ks->encrypted;
    m->generation = ks->generation;
    m->params = ks->params;
    m->n = ks->n;
    for (size_t i = 0; i < ks->n; i++)
        m->keys[i] = ks->e[i].meta;
}

/* ---- open / init / close ---- */

static ztb_err alloc_store(const ztb_keystore_opts *o, ztb_keystore **out)
{
    ztb_keystore *ks = calloc(1, sizeof(*ks));
    ZTB_ENSURE(ks != NULL, ZTB_ERR_NOMEM);
    ks->dirfd = ks->keysfd = ks->lockfd = -1;
    if (o != NULL && o->passphrase != NULL && o->passphrase_len > 0) {
        ks->pass = malloc(o->passphrase_len + 1);
        if (ks->pass == NULL) {
            free(ks);
            return ZTB_ERR_NOMEM;
        }
        memcpy(ks->pass, o->passphrase, o->passphrase_len);
        ks->pass[o->passphrase_len] = '\0';
        ks->passlen = o->passphrase_len;
    }
    *out = ks;
    return ZTB_OK;
}

static ztb_err open_lock(ztb_keystore *ks)
{
    ks->lockfd = openat(ks->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    return ks->lockfd >= 0 ? ZTB_OK : ZTB_ERR_PERMISSION;
}

void ztb_keystore_close(ztb_keystore *ks)
{
    if (ks == NULL)
        return;
    free_entries(ks->e, ks->n);
    if (ks->pass != NULL)
        ztb_free_secret(ks->pass, ks->passlen + 1);
    if (ks->lockfd >= 0)
        close(ks->lockfd);
    if (ks->keysfd >= 0)
        close(ks->keysfd);
    if (ks->dirfd >= 0)
        close(ks->dirfd);
    free(ks);
}

ztb_err ztb_keystore_open(const char *dir, const ztb_keystore_opts *opts, ztb_keystore **out)
{
    ZTB_ENSURE(dir != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ztb_keystore *ks = NULL;
    ZTB_GUARD(alloc_store(opts, &ks));
    ztb_err rv = ZTB_OK;
    int locked = 0;
    ZTB_TRY(rv, ztb_keyfile_open_dir(dir, &ks->dirfd));
    ZTB_TRY(rv, ztb_keyfile_open_dir_at(ks->dirfd, KEYS_DIR, &ks->keysfd));
    ZTB_TRY(rv, open_lock(ks));
    ZTB_TRY(rv, lock_store(ks, LOCK_SH));
    locked = 1;
    ZTB_TRY(rv, refresh(ks, NULL));
out:
    if (locked)
        unlock_store(ks);
    if (rv != ZTB_OK) {
        ztb_keystore_close(ks);
        return rv;
    }
    *out = ks;
    return ZTB_OK;
}

ztb_err ztb_keystore_init(const char *dir, const ztb_keystore_opts *opts, int64_t now,
                          ztb_keystore **out)
{
    ZTB_ENSURE(dir != NULL && out != NULL && now >= 0, ZTB_ERR_INVALID_ARG);
    ztb_rotation_params params;
    if (opts != NULL && opts->params != NULL)
        params = *opts->params;
    else
        ztb_rotation_params_default(&params);
    ZTB_GUARD(ztb_rotation_params_check(&params));

    ztb_keystore *ks = NULL;
    ZTB_GUARD(alloc_store(opts, &ks));
    ztb_err rv = ZTB_OK;
    int locked = 0;
    ztb_key *k = NULL;
    struct manifest m;
    ZTB_TRY(rv, ztb_keyfile_make_dir(AT_FDCWD, dir, &ks->dirfd));
    ZTB_TRY(rv, ztb_keyfile_make_dir(ks->dirfd, KEYS_DIR, &ks->keysfd));
    ZTB_TRY(rv, open_lock(ks));
    ZTB_TRY(rv, lock_store(ks, LOCK_EX));
    locked = 1;
    struct stat st;
    if (fstatat(ks->dirfd, MANIFEST_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0)
        ZTB_CHECK(rv, 0, ZTB_ERR_EXISTS);
    ZTB_CHECK(rv, errno == ENOENT, ZTB_ERR_IO);

    ks->encrypted = ks->passlen > 0;
    ks->params = params;
    ks->generation = 0;
    ZTB_TRY(rv, ztb_key_generate(&k));
    memset(&m, 0, sizeof(m));
    m.params = params;
    m.n = 1;
    memcpy(m.keys[0].kid, ztb_key_kid(k), ZTB_KID_LEN + 1);
    m.keys[0].state = ZTB_KEY_ACTIVE;
    m.keys[0].created = now;
    m.keys[0].activated = now;
    ZTB_TRY(rv, commit(ks, &m, k, NULL, 0));
    *out = ks;
out:
    if (locked)
        unlock_store(ks);
    ztb_key_free(k);
    if (rv != ZTB_OK)
        ztb_keystore_close(ks);
    return rv;
}

ztb_err ztb_keystore_reload(ztb_keystore *ks, int *changed)
{
    ZTB_ENSURE(ks != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_GUARD(lock_store(ks, LOCK_SH));
    ztb_err rv = refresh(ks, changed);
    unlock_store(ks);
    return rv;
}

/* ---- read access ---- */

size_t ztb_keystore_count(const ztb_keystore *ks)
{
    return ks->n;
}

const ztb_key_meta *ztb_keystore_meta(const ztb_keystore *ks, size_t i)
{
    return i < ks->n ? &ks->e[i].meta : NULL;
}

const ztb_key *ztb_keystore_key(const ztb_keystore *ks, size_t i)
{
    return i < ks->n ? ks->e[i].key : NULL;
}

const ztb_rotation_params *ztb_keystore_params(const ztb_keystore *ks)
{
    return &ks->params;
}

int ztb_keystore_encrypted(const ztb_keystore *ks)
{
    return ks->encrypted;
}

uint64_t ztb_keystore_generation(const ztb_keystore *ks)
{
    return ks->generation;
}

ztb_err ztb_keystore_active(const ztb_keystore *ks, ztb_key **out)
{
    ZTB_ENSURE(ks != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    for (size_t i = 0; i < ks->n; i++) {
        if (ks->e[i].meta.state == ZTB_KEY_ACTIVE) {
            *out = ztb_key_ref(ks->e[i].key);
            return ZTB_OK;
        }
    }
    return ZTB_ERR_NO_ACTIVE_KEY;
}

static size_t published(const ztb_keystore *ks, int64_t now, ztb_key **keys)
{
    size_t n = 0;
    for (size_t i = 0; i < ks->n; i++)
        if (ztb_rotation_published(&ks->e[i].meta, now))
            keys[n++] = ks->e[i].key;
    return n;
}

ztb_err ztb_keystore_keyset(const ztb_keystore *ks, int64_t now, ztb_keyset **out)
{
    ZTB_ENSURE(ks != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ztb_key *keys[ZTB_ROTATION_MAX_KEYS];
    size_t n = published(ks, now, keys);
    return ztb_keyset_new(keys, NULL, n, out);
}

ztb_err ztb_keystore_jwks(const ztb_keystore *ks, int64_t now, ztb_buf *out)
{
    ZTB_ENSURE(ks != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ztb_key *keys[ZTB_ROTATION_MAX_KEYS];
    size_t n = published(ks, now, keys);
    return ztb_jwks_render((const ztb_key *const *)keys, n, out);
}

/* ---- changes ---- */

ztb_err ztb_keystore_rotate(ztb_keystore *ks, int64_t now, int force, ztb_rotate_result *res)
{
    ZTB_ENSURE(ks != NULL, ZTB_ERR_INVALID_ARG);
    ztb_rotate_result local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof(*res));
    ZTB_GUARD(lock_store(ks, LOCK_EX));
    ztb_err rv = ZTB_OK;
    ztb_key *fresh = NULL;
    struct manifest m;
    ZTB_TRY(rv, refresh(ks, NULL));
    snapshot(ks, &m);
    ztb_rotation_expire(m.keys, m.n, now);

    int ni = ztb_rotation_find_state(m.keys, m.n, ZTB_KEY_NEXT);
    if (ni < 0) {
        ZTB_TRY(rv, ztb_key_generate(&fresh));
        ZTB_TRY(rv, ztb_rotation_add_next(m.keys, &m.n, ZTB_ROTATION_MAX_KEYS, ztb_key_kid(fresh),
                                          now));
        ni = (int)m.n - 1;
        res->action = ZTB_ROTATE_PUBLISHED;
    } else {
        /* reported also when the next key is too young to promote */
        res->promotable_at = ztb_rotation_promotable_at(&m.keys[ni], &m.params);
        memcpy(res->kid, m.keys[ni].kid, ZTB_KID_LEN + 1);
        ZTB_TRY(rv, ztb_rotation_promote(m.keys, m.n, &m.params, now, force));
        res->action = ZTB_ROTATE_PROMOTED;
    }
    res->promotable_at = ztb_rotation_promotable_at(&m.keys[ni], &m.params);
    memcpy(res->kid, m.keys[ni].kid, ZTB_KID_LEN + 1);
    ZTB_TRY(rv, commit(ks, &m, fresh, NULL, 0));
out:
    unlock_store(ks);
    ztb_key_free(fresh);
    return rv;
}

ztb_err ztb_keystore_retire(ztb_keystore *ks, const char *kid, int64_t now, int force)
{
    ZTB_ENSURE(ks != NULL && kid != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_GUARD(lock_store(ks, LOCK_EX));
    ztb_err rv = ZTB_OK;
    struct manifest m;
    ZTB_TRY(rv, refresh(ks, NULL));
    snapshot(ks, &m);
    ztb_rotation_expire(m.keys, m.n, now);
    ZTB_TRY(rv, ztb_rotation_retire(m.keys, m.n, kid, now, force));
    ZTB_TRY(rv, commit(ks, &m, NULL, NULL, 0));
out:
    unlock_store(ks);
    return rv;
}

/* Delete key files the manifest does not name, and leftover temporaries. */
static void remove_orphans(ztb_keystore *ks)
{
    ztb_keyfile_remove_temps(ks->dirfd);
    ztb_keyfile_remove_temps(ks->keysfd);
    int d = openat(ks->keysfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return;
    DIR *dir = fdopendir(d);
    if (dir == NULL) {
        close(d);
        return;
    }
    char orphans[ZTB_ROTATION_MAX_KEYS][ZTB_KID_LEN + 8];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n < ZTB_ROTATION_MAX_KEYS) {
        size_t len = strlen(e->d_name);
        if (len != ZTB_KID_LEN + 4 || strcmp(e->d_name + ZTB_KID_LEN, ".pem") != 0)
            continue;
        int named = 0;
        for (size_t i = 0; i < ks->n && !named; i++)
            named = memcmp(ks->e[i].meta.kid, e->d_name, ZTB_KID_LEN) == 0;
        if (!named)
            memcpy(orphans[n++], e->d_name, len + 1);
    }
    closedir(dir);
    for (size_t i = 0; i < n; i++)
        (void)ztb_keyfile_remove(ks->keysfd, orphans[i]);
}

ztb_err ztb_keystore_prune(ztb_keystore *ks, int64_t now, size_t *removed)
{
    ZTB_ENSURE(ks != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_GUARD(lock_store(ks, LOCK_EX));
    ztb_err rv = ZTB_OK;
    struct manifest m;
    char gone[ZTB_ROTATION_MAX_KEYS][ZTB_KID_LEN + 1];
    size_t ngone = 0;
    ZTB_TRY(rv, refresh(ks, NULL));
    snapshot(ks, &m);
    unsigned changed = ztb_rotation_expire(m.keys, m.n, now);
    ngone = ztb_rotation_prune(m.keys, &m.n, now, gone);
    if (ngone > 0 || changed)
        ZTB_TRY(rv, commit(ks, &m, NULL, gone, ngone));
    remove_orphans(ks);
out:
    if (removed != NULL)
        *removed = rv == ZTB_OK ? ngone : 0;
    unlock_store(ks);
    return rv;
}

ztb_err ztb_keystore_tick(ztb_keystore *ks, int64_t now, unsigned *changed)
{
    ZTB_ENSURE(ks != NULL, ZTB_ERR_INVALID_ARG);
    if (changed != NULL)
        *changed = 0;
    ZTB_GUARD(lock_store(ks, LOCK_EX));
    ztb_err rv = ZTB_OK;
    struct manifest m;
    unsigned c = 0;
    ZTB_TRY(rv, refresh(ks, NULL));
    snapshot(ks, &m);
    ZTB_TRY(rv, ztb_rotation_tick(m.keys, m.n, &m.params, now, &c));
    if (c != 0)
        ZTB_TRY(rv, commit(ks, &m, NULL, NULL, 0));
    if (changed != NULL)
        *changed = c;
out:
    unlock_store(ks);
    return rv;
}
