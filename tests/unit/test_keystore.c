/*
 * test_keystore.c - the key store on disk: layout and modes, encryption at
 * rest, refusals (loose modes, symlinks, tampered manifests, swapped key
 * files), rotation through the store with a fake clock, reload across two
 * handles, pruning, and crash safety: a child process is killed at every
 * step of every change (init, publish, promote, retire, prune) and the store
 * it leaves behind must open, have exactly one active key, still publish
 * every key a live token may need, and accept further changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "pki_test.h"

#include "pki/jwk.h"
#include "pki/jws.h"
#include "pki/keyfile.h"
#include "pki/keystore.h"

#define T0 1700000000LL

/* scratch paths are short (mkdtemp under $TMPDIR); truncation cannot happen */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static char path_buf[1024];

static const char *at(const char *dir, const char *rel)
{
    snprintf(path_buf, sizeof(path_buf), "%s/%s", dir, rel);
    return path_buf;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static const char *pem_path(const char *dir, const char *kid)
{
    static char p[1024];
    snprintf(p, sizeof(p), "%s/keys/%s.pem", dir, kid);
    return p;
}

/* A token signed now by the store's active key. */
static void sign_with_active(ztb_keystore *ks, ztb_buf *tok)
{
    ztb_key *k = NULL;
    assert_int_equal(ztb_keystore_active(ks, &k), ZTB_OK);
    ztb_jws_sign_opts o = {.typ = "at+jwt"};
    assert_int_equal(ztb_jws_sign(k, &o, "{\"sub\":\"x\"}", 11, tok), ZTB_OK);
    ztb_key_free(k);
}

/* Verify tok against the JWKS the store publishes at now (via text). */
static ztb_err verify_via_jwks(ztb_keystore *ks, int64_t now, const ztb_buf *tok)
{
    ztb_buf jwks;
    ztb_buf_init(&jwks, ZTB_JWKS_MAX);
    assert_int_equal(ztb_keystore_jwks(ks, now, &jwks), ZTB_OK);
    ztb_keyset *set = NULL;
    ztb_err rv = ztb_jwks_parse(ztb_buf_cstr(&jwks), jwks.len, 0, &set);
    if (rv == ZTB_OK)
        rv = ztb_jws_verify(set, ztb_buf_cstr(tok), tok->len, NULL, NULL, NULL);
    ztb_keyset_free(set);
    ztb_buf_free(&jwks);
    return rv;
}

static int count_state(ztb_keystore *ks, ztb_key_state s)
{
    int c = 0;
    for (size_t i = 0; i < ztb_keystore_count(ks); i++)
        c += ztb_keystore_meta(ks, i)->state == s;
    return c;
}

static void test_init_layout_and_modes(void **state)
{
    (void)state;
    char *base = pkt_tmpdir();
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/store", base); /* created by init */
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &ks), ZTB_OK);
    assert_int_equal(ztb_keystore_count(ks), 1);
    const ztb_key_meta *m = ztb_keystore_meta(ks, 0);
    assert_int_equal(m->state, ZTB_KEY_ACTIVE);
    assert_int_equal(m->created, T0);
    assert_int_equal(m->activated, T0);
    assert_string_equal(m->kid, ztb_key_kid(ztb_keystore_key(ks, 0)));
    assert_false(ztb_keystore_encrypted(ks));
    assert_int_equal(ztb_keystore_params(ks)->jwks_cache_s, ZTB_ROTATION_DEFAULT_JWKS_CACHE_S);

    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(mode_of(at(dir, "keys")), 0700);
    assert_int_equal(mode_of(at(dir, "keystore.json")), 0600);
    assert_int_equal(mode_of(pem_path(dir, m->kid)), 0600);
    assert_non_null(strstr(read_text(pem_path(dir, m->kid)), "-----BEGIN PRIVATE KEY-----"));
    const char *man = read_text(at(dir, "keystore.json"));
    assert_non_null(strstr(man, m->kid));
    assert_non_null(strstr(man, "\"state\": \"active\""));

    /* a second init on the same store is refused */
    ztb_keystore *again = NULL;
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &again), ZTB_ERR_EXISTS);

    /* what was written opens to the same thing, and signs */
    ztb_keystore *ks2 = NULL;
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks2), ZTB_OK);
    assert_string_equal(ztb_keystore_meta(ks2, 0)->kid, m->kid);
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    sign_with_active(ks2, &tok);
    assert_int_equal(verify_via_jwks(ks, T0, &tok), ZTB_OK);
    ztb_buf_free(&tok);
    ztb_keystore_close(ks2);
    ztb_keystore_close(ks);
    pkt_rmdir(base);
}

static void test_init_refuses_bad_params_and_loose_dir(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    ztb_rotation_params p;
    ztb_rotation_params_default(&p);
    p.jwks_cache_s = -1;
    ztb_keystore_opts o = {.params = &p};
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(dir, &o, T0, &ks), ZTB_ERR_INVALID_ARG);
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &ks), ZTB_ERR_PERMISSION);
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &ks), ZTB_OK);
    ztb_keystore_close(ks);
    /* a store whose directory became world-writable is refused at open */
    assert_int_equal(chmod(dir, 0757), 0);
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_ERR_PERMISSION);
    assert_int_equal(chmod(dir, 0700), 0);
    pkt_rmdir(dir);
}

static void test_open_missing(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_open(at(dir, "nope"), NULL, &ks), ZTB_ERR_NOT_FOUND);
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_ERR_NOT_FOUND); /* no keys/ */
    pkt_rmdir(dir);
}

static void test_encrypted_store(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    const char pass[] = "correct horse battery staple";
    ztb_keystore_opts o = {.passphrase = pass, .passphrase_len = strlen(pass)};
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(dir, &o, T0, &ks), ZTB_OK);
    assert_true(ztb_keystore_encrypted(ks));
    char kid[ZTB_KID_LEN + 1];
    strcpy(kid, ztb_keystore_meta(ks, 0)->kid);
    const char *pem = read_text(pem_path(dir, kid));
    assert_non_null(strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    /* rotation writes encrypted keys too */
    ztb_rotate_result r;
    assert_int_equal(ztb_keystore_rotate(ks, T0 + 10, 0, &r), ZTB_OK);
    assert_non_null(
        strstr(read_text(pem_path(dir, r.kid)), "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    ztb_keystore_close(ks);

    /* no passphrase, a wrong one, the right one */
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_ERR_PASSPHRASE);
    ztb_keystore_opts bad = {.passphrase = "wrong", .passphrase_len = 5};
    assert_int_equal(ztb_keystore_open(dir, &bad, &ks), ZTB_ERR_PASSPHRASE);
    assert_int_equal(ztb_keystore_open(dir, &o, &ks), ZTB_OK);
    assert_int_equal(ztb_keystore_count(ks), 2);
    ztb_keystore_close(ks);

    /* the files are ordinary encrypted PKCS#8: openssl reads them with the passphrase */
    char pf[1024], cmd[4096];
    snprintf(pf, sizeof(pf), "%s/pass", dir);
    assert_int_equal(pkt_write(pf, pass, strlen(pass), 0600), 0);
    snprintf(cmd, sizeof(cmd), "openssl pkey -in %s -passin file:%s -noout 2>/dev/null",
             pem_path(dir, kid), pf);
    assert_int_equal(system(cmd), 0);

    /* a plaintext key planted in an encrypted store is refused */
    ztb_key *k = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    ztb_buf plain;
    ztb_buf_init_secret(&plain, 4096);
    assert_int_equal(ztb_key_private_pem(k, NULL, 0, &plain), ZTB_OK);
    /* keep the kid in the manifest pointing at this file: rewrite the manifest kid */
    char man[65536];
    snprintf(man, sizeof(man), "%s", read_text(at(dir, "keystore.json")));
    char *p = strstr(man, kid);
    assert_non_null(p);
    memcpy(p, ztb_key_kid(k), ZTB_KID_LEN);
    assert_int_equal(pkt_write(at(dir, "keystore.json"), man, strlen(man), 0600), 0);
    assert_int_equal(pkt_write(pem_path(dir, ztb_key_kid(k)), plain.data, plain.len, 0600), 0);
    assert_int_equal(ztb_keystore_open(dir, &o, &ks), ZTB_ERR_KEY);
    ztb_buf_free(&plain);
    ztb_key_free(k);
    pkt_rmdir(dir);
}

static void test_refuses_loose_and_linked_files(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &ks), ZTB_OK);
    char kid[ZTB_KID_LEN + 1];
    strcpy(kid, ztb_keystore_meta(ks, 0)->kid);
    ztb_keystore_close(ks);
    char pem[1024];
    snprintf(pem, sizeof(pem), "%s", pem_path(dir, kid));

    /* a key file readable by others */
    assert_int_equal(chmod(pem, 0644), 0);
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_ERR_PERMISSION);
    assert_int_equal(chmod(pem, 0600), 0);
    /* a manifest writable by the group */
    assert_int_equal(chmod(at(dir, "keystore.json"), 0620), 0);
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_ERR_PERMISSION);
    assert_int_equal(chmod(at(dir, "keystore.json"), 0600), 0);
    /* a key file that is a symlink (to a perfectly good key) */
    char real[1024];
    snprintf(real, sizeof(real), "%s/elsewhere.pem", dir);
    assert_int_equal(rename(pem, real), 0);
    assert_int_equal(symlink(real, pem), 0);
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_ERR_PERMISSION);
    assert_int_equal(unlink(pem), 0);
    assert_int_equal(rename(real, pem), 0);
    /* a keys/ directory that is a symlink */
    char keys[1024], moved[1024];
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    snprintf(moved, sizeof(moved), "%s/keys.real", dir);
    assert_int_equal(rename(keys, moved), 0);
    assert_int_equal(symlink(moved, keys), 0);
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_ERR_PERMISSION);
    assert_int_equal(unlink(keys), 0);
    assert_int_equal(rename(moved, keys), 0);
    /* and once repaired it opens */
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_OK);
    ztb_keystore_close(ks);
    pkt_rmdir(dir);
}

/* Manifests that are valid JSON but must not be trusted. */
static void test_refuses_tampered_manifest(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &ks), ZTB_OK);
    ztb_rotate_result r;
    assert_int_equal(ztb_keystore_rotate(ks, T0 + 1, 0, &r), ZTB_OK); /* a next key too */
    ztb_keystore_close(ks);
    char orig[65536];
    snprintf(orig, sizeof(orig), "%s", read_text(at(dir, "keystore.json")));
    const char *man = at(dir, "keystore.json");
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", man);

    struct {
        const char *from, *to;
        ztb_err want;
    } cases[] = {
        {"\"state\": \"next\"", "\"state\": \"active\"", ZTB_ERR_MALFORMED}, /* two active */
        {"\"state\": \"active\"", "\"state\": \"next\"", ZTB_ERR_MALFORMED}, /* no active */
        {"\"state\": \"next\"", "\"state\": \"spare\"", ZTB_ERR_MALFORMED},
        {"\"version\": 1", "\"version\": 2", ZTB_ERR_UNSUPPORTED},
        {"\"format\": \"ztb-keystore\"", "\"format\": \"other\"", ZTB_ERR_MALFORMED},
        {"\"encrypted\": false", "\"encrypted\": false, \"extra\": 1", ZTB_ERR_MALFORMED},
        {"\"encrypted\": false", "\"encrypted\": false, \"encrypted\": true", ZTB_ERR_MALFORMED},
        {"\"alg\": \"ES256\"", "\"alg\": \"HS256\"", ZTB_ERR_MALFORMED},
        {"\"skew_s\": 60", "\"skew_s\": \"60\"", ZTB_ERR_MALFORMED},
        {"\"generation\": ", "\"generation\": -", ZTB_ERR_MALFORMED},
        {"\n}\n", "\n", ZTB_ERR_MALFORMED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char t[65536];
        const char *hit = strstr(orig, cases[i].from);
        assert_non_null(hit);
        snprintf(t, sizeof(t), "%.*s%s%s", (int)(hit - orig), orig, cases[i].to,
                 hit + strlen(cases[i].from));
        assert_int_equal(pkt_write(copy, t, strlen(t), 0600), 0);
        assert_int_equal(ztb_keystore_open(dir, NULL, &ks), cases[i].want);
    }
    /* key files swapped under their names: each no longer matches its kid */
    assert_int_equal(pkt_write(copy, orig, strlen(orig), 0600), 0);
    char a[1024], b[1024], tmp[1024];
    snprintf(a, sizeof(a), "%s", pem_path(dir, r.kid));
    const char *first = strstr(orig, "\"kid\": \"") + 8;
    char kid0[ZTB_KID_LEN + 1];
    memcpy(kid0, first, ZTB_KID_LEN);
    kid0[ZTB_KID_LEN] = '\0';
    snprintf(b, sizeof(b), "%s", pem_path(dir, kid0));
    snprintf(tmp, sizeof(tmp), "%s/swap", dir);
    assert_int_equal(rename(a, tmp), 0);
    assert_int_equal(rename(b, a), 0);
    assert_int_equal(rename(tmp, b), 0);
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_ERR_KEY);
    /* swapped back it opens; with one key file missing it does not */
    assert_int_equal(rename(a, tmp), 0);
    assert_int_equal(rename(b, a), 0);
    assert_int_equal(rename(tmp, b), 0);
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_OK);
    ztb_keystore_close(ks);
    assert_int_equal(unlink(a), 0);
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_ERR_NOT_FOUND);
    pkt_rmdir(dir);
}

/* Rotation through the store, with a fake clock, as an operator would do it. */
static void test_rotate_retire_prune(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &ks), ZTB_OK);
    const ztb_rotation_params *p = ztb_keystore_params(ks);
    char k0[ZTB_KID_LEN + 1];
    strcpy(k0, ztb_keystore_meta(ks, 0)->kid);
    ztb_buf old_tok;
    ztb_buf_init(&old_tok, 4096);
    sign_with_active(ks, &old_tok);

    /* step 1: publish a next key */
    ztb_rotate_result r;
    int64_t t1 = T0 + 1000;
    assert_int_equal(ztb_keystore_rotate(ks, t1, 0, &r), ZTB_OK);
    assert_int_equal(r.action, ZTB_ROTATE_PUBLISHED);
    assert_int_equal(r.promotable_at, t1 + p->jwks_cache_s);
    char k1[ZTB_KID_LEN + 1];
    strcpy(k1, r.kid);
    assert_int_equal(count_state(ks, ZTB_KEY_NEXT), 1);
    ztb_buf jwks;
    ztb_buf_init(&jwks, ZTB_JWKS_MAX);
    assert_int_equal(ztb_keystore_jwks(ks, t1, &jwks), ZTB_OK);
    assert_non_null(strstr(ztb_buf_cstr(&jwks), k1)); /* published before it signs */
    ztb_buf_reset(&jwks);
    /* the active key did not change */
    ztb_key *act = NULL;
    assert_int_equal(ztb_keystore_active(ks, &act), ZTB_OK);
    assert_string_equal(ztb_key_kid(act), k0);
    ztb_key_free(act);

    /* step 2, too early: refused, with the time it becomes possible */
    memset(&r, 0, sizeof(r));
    assert_int_equal(ztb_keystore_rotate(ks, t1 + p->jwks_cache_s - 1, 0, &r), ZTB_ERR_STATE);
    assert_int_equal(r.promotable_at, t1 + p->jwks_cache_s);
    assert_string_equal(r.kid, k1);

    /* step 2, on time: promoted */
    int64_t t2 = t1 + p->jwks_cache_s;
    assert_int_equal(ztb_keystore_rotate(ks, t2, 0, &r), ZTB_OK);
    assert_int_equal(r.action, ZTB_ROTATE_PROMOTED);
    assert_string_equal(r.kid, k1);
    assert_int_equal(ztb_keystore_active(ks, &act), ZTB_OK);
    assert_string_equal(ztb_key_kid(act), k1);
    ztb_key_free(act);
    /* the retiring key keeps only its public part in memory */
    for (size_t i = 0; i < ztb_keystore_count(ks); i++)
        if (strcmp(ztb_keystore_meta(ks, i)->kid, k0) == 0)
            assert_false(ztb_key_has_private(ztb_keystore_key(ks, i)));

    /* old tokens verify until the retiring key is unpublished, new ones too */
    int64_t na = t2 + p->max_token_ttl_s + p->skew_s;
    assert_int_equal(verify_via_jwks(ks, na - 1, &old_tok), ZTB_OK);
    ztb_buf new_tok;
    ztb_buf_init(&new_tok, 4096);
    sign_with_active(ks, &new_tok);
    assert_int_equal(verify_via_jwks(ks, na - 1, &new_tok), ZTB_OK);
    assert_int_equal(verify_via_jwks(ks, na, &old_tok), ZTB_ERR_UNKNOWN_KID);

    /* the active key cannot be retired; an unknown kid is not found */
    assert_int_equal(ztb_keystore_retire(ks, k1, t2 + 5, 0), ZTB_ERR_STATE);
    assert_int_equal(ztb_keystore_retire(ks, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", t2, 0),
                     ZTB_ERR_NOT_FOUND);

    /* prune before not_after removes nothing; after, the key and its file go */
    size_t removed = 99;
    assert_int_equal(ztb_keystore_prune(ks, na - 1, &removed), ZTB_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(access(pem_path(dir, k0), F_OK), 0);
    assert_int_equal(ztb_keystore_prune(ks, na, &removed), ZTB_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(ztb_keystore_count(ks), 1);
    assert_int_not_equal(access(pem_path(dir, k0), F_OK), 0);

    /* retire --force on a fresh next key; prune then deletes it */
    assert_int_equal(ztb_keystore_rotate(ks, na + 10, 0, &r), ZTB_OK);
    assert_int_equal(ztb_keystore_retire(ks, r.kid, na + 11, 1), ZTB_OK);
    assert_int_equal(ztb_keystore_jwks(ks, na + 11, &jwks), ZTB_OK);
    assert_null(strstr(ztb_buf_cstr(&jwks), r.kid));
    assert_int_equal(ztb_keystore_prune(ks, na + 11, &removed), ZTB_OK);
    assert_int_equal(removed, 1);
    assert_int_not_equal(access(pem_path(dir, r.kid), F_OK), 0);

    ztb_buf_free(&jwks);
    ztb_buf_free(&old_tok);
    ztb_buf_free(&new_tok);
    ztb_keystore_close(ks);
    pkt_rmdir(dir);
}

static void test_tick(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &ks), ZTB_OK);
    uint64_t gen = ztb_keystore_generation(ks);
    unsigned c = 99;
    assert_int_equal(ztb_keystore_tick(ks, T0 + 5, &c), ZTB_OK);
    assert_int_equal(c, 0);
    assert_int_equal(ztb_keystore_generation(ks), gen); /* nothing written */
    ztb_rotate_result r;
    assert_int_equal(ztb_keystore_rotate(ks, T0 + 10, 0, &r), ZTB_OK);
    assert_int_equal(ztb_keystore_tick(ks, r.promotable_at, &c), ZTB_OK);
    assert_int_equal(c, ZTB_ROTATION_PROMOTED);
    ztb_key *act = NULL;
    assert_int_equal(ztb_keystore_active(ks, &act), ZTB_OK);
    assert_string_equal(ztb_key_kid(act), r.kid);
    ztb_key_free(act);
    const ztb_rotation_params *p = ztb_keystore_params(ks);
    assert_int_equal(ztb_keystore_tick(ks, r.promotable_at + p->max_token_ttl_s + p->skew_s, &c),
                     ZTB_OK);
    assert_int_equal(c, ZTB_ROTATION_RETIRED);
    assert_int_equal(count_state(ks, ZTB_KEY_RETIRED), 1);
    ztb_keystore_close(ks);
    pkt_rmdir(dir);
}

/* Another process changes the store: reload picks it up; stale handles write safely. */
static void test_reload_two_handles(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    ztb_keystore *a = NULL, *b = NULL;
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &a), ZTB_OK);
    assert_int_equal(ztb_keystore_open(dir, NULL, &b), ZTB_OK);
    int changed = 9;
    assert_int_equal(ztb_keystore_reload(b, &changed), ZTB_OK);
    assert_int_equal(changed, 0);
    ztb_rotate_result r;
    assert_int_equal(ztb_keystore_rotate(a, T0 + 1, 0, &r), ZTB_OK);
    assert_int_equal(ztb_keystore_reload(b, &changed), ZTB_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(ztb_keystore_count(b), 2);
    /* b (now current) promotes; a, stale, then tries to publish another next:
     * it re-reads first, so it sees the promotion and adds a new next key */
    assert_int_equal(ztb_keystore_rotate(b, r.promotable_at, 0, &r), ZTB_OK);
    assert_int_equal(r.action, ZTB_ROTATE_PROMOTED);
    assert_int_equal(ztb_keystore_rotate(a, r.promotable_at + 1, 0, &r), ZTB_OK);
    assert_int_equal(r.action, ZTB_ROTATE_PUBLISHED);
    assert_int_equal(ztb_keystore_count(a), 3);
    assert_int_equal(count_state(a, ZTB_KEY_ACTIVE), 1);
    ztb_keystore_close(a);
    ztb_keystore_close(b);
    pkt_rmdir(dir);
}

/* Leftovers from crashes: orphan key files and temporaries; prune removes them. */
static void test_prune_removes_orphans(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &ks), ZTB_OK);
    ztb_key *k = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    ztb_buf pem;
    ztb_buf_init_secret(&pem, 4096);
    assert_int_equal(ztb_key_private_pem(k, NULL, 0, &pem), ZTB_OK);
    char orphan[1024];
    snprintf(orphan, sizeof(orphan), "%s", pem_path(dir, ztb_key_kid(k)));
    assert_int_equal(pkt_write(orphan, pem.data, pem.len, 0600), 0);
    assert_int_equal(pkt_write(at(dir, "keys/.x.pem.tmp.0011"), "x", 1, 0600), 0);
    assert_int_equal(pkt_write(at(dir, ".keystore.json.tmp.0022"), "x", 1, 0600), 0);
    assert_int_equal(pkt_write(at(dir, "keys/README"), "x", 1, 0600), 0); /* not ours */
    ztb_keystore_close(ks);
    /* they do not stop the store from opening */
    assert_int_equal(ztb_keystore_open(dir, NULL, &ks), ZTB_OK);
    assert_int_equal(ztb_keystore_count(ks), 1);
    size_t removed;
    assert_int_equal(ztb_keystore_prune(ks, T0 + 1, &removed), ZTB_OK);
    assert_int_equal(removed, 0);
    assert_int_not_equal(access(orphan, F_OK), 0);
    assert_int_not_equal(access(at(dir, "keys/.x.pem.tmp.0011"), F_OK), 0);
    assert_int_not_equal(access(at(dir, ".keystore.json.tmp.0022"), F_OK), 0);
    assert_int_equal(access(at(dir, "keys/README"), F_OK), 0);
    assert_int_equal(access(pem_path(dir, ztb_keystore_meta(ks, 0)->kid), F_OK), 0);
    ztb_buf_free(&pem);
    ztb_key_free(k);
    ztb_keystore_close(ks);
    pkt_rmdir(dir);
}

/* ---- crash safety ---- */

static int crash_at;    /* kill the process at this fault point (1-based) */
static int crash_count; /* fault points seen so far */

static void crash_hook(const char *step)
{
    (void)step;
    if (++crash_count == crash_at)
        raise(SIGKILL);
}

enum op { OP_INIT, OP_PUBLISH, OP_PROMOTE, OP_RETIRE, OP_PRUNE };

struct crash_case {
    enum op op;
    const char *name;
};

/* Bring a fresh store to the state just before op; remember what a verifier
 * must keep seeing and a token signed by the key that is active then. */
struct before {
    char kids[8][ZTB_KID_LEN + 1]; /* keys published just before op */
    size_t nkids;
    char active[ZTB_KID_LEN + 1];
    ztb_buf tok;
    int64_t now; /* when op runs */
};

static void prepare(const char *dir, enum op op, struct before *b)
{
    memset(b, 0, sizeof(*b));
    ztb_buf_init(&b->tok, 4096);
    b->now = T0;
    if (op == OP_INIT)
        return;
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(dir, NULL, T0, &ks), ZTB_OK);
    const ztb_rotation_params *p = ztb_keystore_params(ks);
    ztb_rotate_result r;
    int64_t now = T0 + 10;
    if (op == OP_PROMOTE || op == OP_RETIRE || op == OP_PRUNE) {
        assert_int_equal(ztb_keystore_rotate(ks, now, 0, &r), ZTB_OK);
        now = r.promotable_at;
        if (op != OP_PROMOTE) {
            assert_int_equal(ztb_keystore_rotate(ks, now, 0, &r), ZTB_OK);
            now += 1;
        }
    }
    if (op == OP_PRUNE) {
        /* a second rotation, the first key expires: prune has work */
        assert_int_equal(ztb_keystore_rotate(ks, now, 0, &r), ZTB_OK);
        now = r.promotable_at + p->max_token_ttl_s + p->skew_s + 1;
        assert_int_equal(ztb_keystore_rotate(ks, now, 0, &r), ZTB_OK);
    }
    b->now = now + 1;
    for (size_t i = 0; i < ztb_keystore_count(ks); i++) {
        const ztb_key_meta *m = ztb_keystore_meta(ks, i);
        if (ztb_rotation_published(m, b->now))
            strcpy(b->kids[b->nkids++], m->kid);
        if (m->state == ZTB_KEY_ACTIVE)
            strcpy(b->active, m->kid);
    }
    sign_with_active(ks, &b->tok);
    ztb_keystore_close(ks);
}

static void run_op(const char *dir, enum op op, const struct before *b)
{
    ztb_keystore *ks = NULL;
    ztb_err rv;
    if (op == OP_INIT) {
        rv = ztb_keystore_init(dir, NULL, b->now, &ks);
    } else {
        rv = ztb_keystore_open(dir, NULL, &ks);
        if (rv == ZTB_OK) {
            ztb_rotate_result r;
            size_t removed;
            switch (op) {
            case OP_PUBLISH:
            case OP_PROMOTE: rv = ztb_keystore_rotate(ks, b->now, 0, &r); break;
            case OP_RETIRE:
                /* retire the (retiring) previous key by hand */
                rv = ZTB_ERR_NOT_FOUND;
                for (size_t i = 0; i < ztb_keystore_count(ks); i++)
                    if (ztb_keystore_meta(ks, i)->state == ZTB_KEY_RETIRING)
                        rv = ztb_keystore_retire(ks, ztb_keystore_meta(ks, i)->kid, b->now, 0);
                break;
            case OP_PRUNE: rv = ztb_keystore_prune(ks, b->now, &removed); break;
            default: break;
            }
        }
    }
    ztb_keystore_close(ks);
    _exit(rv == ZTB_OK ? 0 : 3);
}

/* What the store must look like after a crash at any point. */
static void check_after_crash(const char *dir, enum op op, const struct before *b, int k)
{
    ztb_keystore *ks = NULL;
    ztb_err rv = ztb_keystore_open(dir, NULL, &ks);
    if (op == OP_INIT && rv == ZTB_ERR_NOT_FOUND) {
        /* died before the manifest existed: init simply runs again */
        assert_int_equal(ztb_keystore_init(dir, NULL, b->now, &ks), ZTB_OK);
        ztb_keystore_close(ks);
        return;
    }
    if (rv != ZTB_OK)
        fail_msg("crash at step %d of op %d: store does not open: %s", k, (int)op,
                 ztb_err_name(rv));
    assert_int_equal(count_state(ks, ZTB_KEY_ACTIVE), 1);
    ztb_key *act = NULL;
    assert_int_equal(ztb_keystore_active(ks, &act), ZTB_OK);
    assert_true(ztb_key_has_private(act));
    ztb_key_free(act);
    /* every key published before is still published (none of them may vanish
     * while a token could need it: in these scenarios none has expired) */
    ztb_keyset *set = NULL;
    assert_int_equal(ztb_keystore_keyset(ks, b->now, &set), ZTB_OK);
    for (size_t i = 0; i < b->nkids; i++)
        if (ztb_keyset_find(set, b->kids[i], ZTB_KID_LEN) == NULL)
            fail_msg("crash at step %d of op %d: key %s no longer published", k, (int)op,
                     b->kids[i]);
    if (b->tok.len > 0)
        assert_int_equal(ztb_jws_verify(set, ztb_buf_cstr(&b->tok), b->tok.len, NULL, NULL, NULL),
                         ZTB_OK);
    ztb_keyset_free(set);
    /* and it accepts further changes: a full rotation, then a prune */
    ztb_rotate_result r;
    rv = ztb_keystore_rotate(ks, b->now + 1, 1, &r);
    assert_int_equal(rv, ZTB_OK);
    assert_int_equal(ztb_keystore_rotate(ks, b->now + 2, 1, &r), ZTB_OK);
    assert_int_equal(count_state(ks, ZTB_KEY_ACTIVE), 1);
    size_t removed;
    assert_int_equal(ztb_keystore_prune(ks, b->now + 3, &removed), ZTB_OK);
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    sign_with_active(ks, &tok);
    assert_int_equal(verify_via_jwks(ks, b->now + 3, &tok), ZTB_OK);
    ztb_buf_free(&tok);
    ztb_keystore_close(ks);
}

static void crash_every_step(enum op op)
{
    int steps = 0;
    for (int k = 1; k < 100; k++) {
        char *base = pkt_tmpdir();
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/store", base);
        struct before b;
        prepare(dir, op, &b);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            crash_at = k;
            crash_count = 0;
            ztb_keyfile_fault_hook = crash_hook;
            run_op(dir, op, &b);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        int killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
        if (!killed)
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* it completed */
        check_after_crash(dir, op, &b, k);
        ztb_buf_free(&b.tok);
        pkt_rmdir(base);
        if (!killed)
            break; /* the operation has fewer than k steps: all were tried */
        steps++;
    }
    /* every operation writes at least one file: at least the 4 steps of a write */
    assert_true(steps >= 4);
}

static void test_crash_during_init(void **state)
{
    (void)state;
    crash_every_step(OP_INIT);
}

static void test_crash_during_publish(void **state)
{
    (void)state;
    crash_every_step(OP_PUBLISH);
}

static void test_crash_during_promote(void **state)
{
    (void)state;
    crash_every_step(OP_PROMOTE);
}

static void test_crash_during_retire(void **state)
{
    (void)state;
    crash_every_step(OP_RETIRE);
}

static void test_crash_during_prune(void **state)
{
    (void)state;
    crash_every_step(OP_PRUNE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_layout_and_modes),
        cmocka_unit_test(test_init_refuses_bad_params_and_loose_dir),
        cmocka_unit_test(test_open_missing),
        cmocka_unit_test(test_encrypted_store),
        cmocka_unit_test(test_refuses_loose_and_linked_files),
        cmocka_unit_test(test_refuses_tampered_manifest),
        cmocka_unit_test(test_rotate_retire_prune),
        cmocka_unit_test(test_tick),
        cmocka_unit_test(test_reload_two_handles),
        cmocka_unit_test(test_prune_removes_orphans),
        cmocka_unit_test(test_crash_during_init),
        cmocka_unit_test(test_crash_during_publish),
        cmocka_unit_test(test_crash_during_promote),
        cmocka_unit_test(test_crash_during_retire),
        cmocka_unit_test(test_crash_during_prune),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
