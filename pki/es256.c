/*
 * es256.c - ES256 sign/verify with per-thread OpenSSL contexts (see es256.h).
 *
 * The per-thread cache holds ES256_SLOTS keys (identified by their serial,
 * which is never reused) with an initialised sign and/or verify context each,
 * evicted round-robin. A process-wide flush generation (key.c) tells a thread
 * that some cached key was freed: it then drops all its contexts, so the
 * EVP_PKEY references they hold go too. The cache is freed by a pthread key
 * destructor when the thread exits.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "common/cursor.h"
#include "common/guard.h"
#include "pki/es256.h"

#define ES256_SLOTS 4

struct slot {
    uint64_t serial; /* 0: empty */
    EVP_PKEY_CTX *sign;
    EVP_PKEY_CTX *verify;
};

struct tcache {
    EVP_MD_CTX *md;
    uint64_t gen;
    unsigned clock;
    struct slot slot[ES256_SLOTS];
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t tcache_key;
static EVP_MD *sha256_md; /* fetched once, kept for the life of the process */
static int init_ok;
static __thread struct tcache *tcache;

static void slot_clear(struct slot *s)
{
    EVP_PKEY_CTX_free(s->sign);
    EVP_PKEY_CTX_free(s->verify);
    memset(s, 0, sizeof(*s));
}

static void tcache_destroy(void *p)
{
    struct tcache *c = p;
    if (c == NULL)
        return;
    for (size_t i = 0; i < ES256_SLOTS; i++)
        slot_clear(&c->slot[i]);
    EVP_MD_CTX_free(c->md);
    free(c);
    if (tcache == c)
        tcache = NULL;
}

static void do_init(void)
{
    if (pthread_key_create(&tcache_key, tcache_destroy) != 0)
        return;
    sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    init_ok = sha256_md != NULL;
}

/*
 * When the library is unloaded (dlclose of libztb), delete the thread key so
 * no thread later runs a destructor that is no longer mapped; caches of
 * threads still alive are then simply not freed.
 */
__attribute__((destructor)) static void es256_unload(void)
{
    if (init_ok)
        (void)pthread_key_delete(tcache_key);
    init_ok = 0;
}

/* The calling thread's cache, flushed if a cached key was freed. */
static struct tcache *cache_get(void)
{
    if (pthread_once(&init_once, do_init) != 0 || !init_ok)
        return NULL;
    struct tcache *c = tcache;
    uint64_t gen = ztb_key_flush_generation();
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return NULL;
        c->md = EVP_MD_CTX_new();
        if (c->md == NULL || pthread_setspecific(tcache_key, c) != 0) {
            EVP_MD_CTX_free(c->md);
            free(c);
            return NULL;
        }
        c->gen = gen;
        tcache = c;
    } else if (c->gen != gen) {
        for (size_t i = 0; i < ES256_SLOTS; i++)
            slot_clear(&c->slot[i]);
        c->gen = gen;
    }
    return c;
}

void ztb_es256_thread_cleanup(void)
{
    struct tcache *c = tcache;
    if (c == NULL)
        return;
    (void)pthread_setspecific(tcache_key, NULL);
    tcache_destroy(c);
}

/* The initialised sign (or verify) context for k in this thread's cache. */
static EVP_PKEY_CTX *ctx_for(struct tcache *c, const ztb_key *k, int sign)
{
    uint64_t serial = ztb_key_serial(k);
    struct slot *s = NULL;
    for (size_t i = 0; i < ES256_SLOTS; i++) {
        if (c->slot[i].serial == serial) {
            s = &c->slot[i];
            break;
        }
    }
    if (s != NULL) {
        EVP_PKEY_CTX *hit = sign ? s->sign : s->verify;
        if (hit != NULL)
            return hit;
    } else {
        s = &c->slot[c->clock++ % ES256_SLOTS];
        slot_clear(s);
        s->serial = serial;
    }
    /* record before the context takes its reference to the EVP_PKEY */
    ztb_key_note_cached(k);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ztb_key_evp(k), NULL);
    if (ctx == NULL)
        return NULL;
    if ((sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    if (sign)
        s->sign = ctx;
    else
        s->verify = ctx;
    return ctx;
}

static ztb_err hash(struct tcache *c, const void *msg, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(c->md, sha256_md, NULL) != 1 || EVP_DigestUpdate(c->md, msg, n) != 1 ||
        EVP_DigestFinal_ex(c->md, out, &len) != 1 || len != 32)
        return ZTB_ERR_CRYPTO;
    return ZTB_OK;
}

ztb_err ztb_es256_sha256(const void *msg, size_t n, uint8_t out[32])
{
    ZTB_ENSURE((msg != NULL || n == 0) && out != NULL, ZTB_ERR_INVALID_ARG);
    struct tcache *c = cache_get();
    ZTB_ENSURE(c != NULL, ZTB_ERR_NOMEM);
    ztb_err rv = hash(c, msg, n, out);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

ztb_err ztb_es256_sign(const ztb_key *k, const void *msg, size_t n, uint8_t sig[ZTB_ES256_SIG_LEN])
{
    ZTB_ENSURE(k != NULL && (msg != NULL || n == 0) && sig != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(ztb_key_alg(k) == ZTB_ALG_ES256, ZTB_ERR_ALG);
    ZTB_ENSURE(ztb_key_has_private(k), ZTB_ERR_KEY);
    ztb_err rv = ZTB_OK;
    uint8_t digest[32];
    uint8_t der[ZTB_ES256_DER_MAX];
    size_t derlen = sizeof(der);

    struct tcache *c = cache_get();
    ZTB_CHECK(rv, c != NULL, ZTB_ERR_NOMEM);
    ZTB_TRY(rv, hash(c, msg, n, digest));
    EVP_PKEY_CTX *ctx = ctx_for(c, k, 1);
    ZTB_CHECK(rv, ctx != NULL, ZTB_ERR_CRYPTO);
    ZTB_OSSL(rv, EVP_PKEY_sign(ctx, der, &derlen, digest, sizeof(digest)));
    /* our own OpenSSL's output: a parse failure here is a bug, not input */
    ZTB_CHECK(rv, ztb_es256_der_to_raw(der, derlen, sig) == ZTB_OK, ZTB_ERR_CRYPTO);
out:
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

ztb_err ztb_es256_sign_digest(const ztb_key *k, const uint8_t digest[32], uint8_t *der,
                              size_t *derlen)
{
    ZTB_ENSURE(k != NULL && digest != NULL && der != NULL && derlen != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(*derlen >= ZTB_ES256_DER_MAX, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(ztb_key_alg(k) == ZTB_ALG_ES256, ZTB_ERR_ALG);
    ZTB_ENSURE(ztb_key_has_private(k), ZTB_ERR_KEY);
    ztb_err rv = ZTB_OK;
    struct tcache *c = cache_get();
    ZTB_CHECK(rv, c != NULL, ZTB_ERR_NOMEM);
    EVP_PKEY_CTX *ctx = ctx_for(c, k, 1);
    ZTB_CHECK(rv, ctx != NULL, ZTB_ERR_CRYPTO);
    ZTB_OSSL(rv, EVP_PKEY_sign(ctx, der, derlen, digest, 32));
out:
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

ztb_err ztb_es256_verify(const ztb_key *k, const void *msg, size_t n, const uint8_t *sig,
                         size_t siglen)
{
    ZTB_ENSURE(k != NULL && (msg != NULL || n == 0), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(ztb_key_alg(k) == ZTB_ALG_ES256, ZTB_ERR_ALG);
    ZTB_ENSURE(sig != NULL && siglen == ZTB_ES256_SIG_LEN, ZTB_ERR_SIG_FORMAT);
    ztb_err rv = ZTB_OK;
    uint8_t digest[32];
    uint8_t der[ZTB_ES256_DER_MAX];
    size_t derlen = ztb_es256_raw_to_der(sig, der);

    struct tcache *c = cache_get();
    ZTB_CHECK(rv, c != NULL, ZTB_ERR_NOMEM);
    ZTB_TRY(rv, hash(c, msg, n, digest));
    EVP_PKEY_CTX *ctx = ctx_for(c, k, 0);
    ZTB_CHECK(rv, ctx != NULL, ZTB_ERR_CRYPTO);
    /* 1 valid; 0 invalid; < 0 also invalid for us (e.g. r = 0) */
    ZTB_CHECK(rv, EVP_PKEY_verify(ctx, der, derlen, digest, sizeof(digest)) == 1,
              ZTB_ERR_SIGNATURE);
out:
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

/* One DER INTEGER holding a big-endian 32-byte unsigned value. */
static size_t der_int(uint8_t *o, const uint8_t *v)
{
    size_t i = 0;
    while (i < ZTB_P256_COORD_LEN - 1 && v[i] == 0)
        i++;
    size_t len = ZTB_P256_COORD_LEN - i;
    size_t pad = (v[i] & 0x80) ? 1 : 0;
    size_t p = 0;
    o[p++] = 0x02;
    o[p++] = (uint8_t)(len + pad);
    if (pad)
        o[p++] = 0x00;
    memcpy(o + p, v + i, len);
    return p + len;
}

size_t ztb_es256_raw_to_der(const uint8_t raw[ZTB_ES256_SIG_LEN], uint8_t der[ZTB_ES256_DER_MAX])
{
    size_t n = 2;
    n += der_int(der + n, raw);
    n += der_int(der + n, raw + ZTB_P256_COORD_LEN);
    der[0] = 0x30;
    der[1] = (uint8_t)(n - 2); /* at most 70: short form */
    return n;
}

/* Read one strict DER INTEGER into a right-aligned 32-byte value. */
static ztb_err read_int(ztb_cursor *c, uint8_t out[ZTB_P256_COORD_LEN])
{
    uint8_t tag, len;
    ztb_span v;
    ZTB_ENSURE(ztb_cursor_read_u8(c, &tag) == ZTB_OK && tag == 0x02, ZTB_ERR_SIG_FORMAT);
    ZTB_ENSURE(ztb_cursor_read_u8(c, &len) == ZTB_OK, ZTB_ERR_SIG_FORMAT);
    ZTB_ENSURE(len >= 1 && len <= ZTB_P256_COORD_LEN + 1, ZTB_ERR_SIG_FORMAT);
    ZTB_ENSURE(ztb_cursor_take(c, len, &v) == ZTB_OK, ZTB_ERR_SIG_FORMAT);
    ZTB_ENSURE((v.ptr[0] & 0x80) == 0, ZTB_ERR_SIG_FORMAT); /* negative */
    if (v.len > 1 && v.ptr[0] == 0) {
        ZTB_ENSURE(v.ptr[1] & 0x80, ZTB_ERR_SIG_FORMAT); /* not minimal */
        v.ptr++;
        v.len--;
    }
    ZTB_ENSURE(v.len <= ZTB_P256_COORD_LEN, ZTB_ERR_SIG_FORMAT);
    memset(out, 0, ZTB_P256_COORD_LEN - v.len);
    memcpy(out + ZTB_P256_COORD_LEN - v.len, v.ptr, v.len);
    return ZTB_OK;
}

ztb_err ztb_es256_der_to_raw(const uint8_t *der, size_t n, uint8_t raw[ZTB_ES256_SIG_LEN])
{
    ZTB_ENSURE(der != NULL && raw != NULL, ZTB_ERR_INVALID_ARG);
    ztb_cursor c;
    uint8_t tag, len;
    ztb_cursor_init(&c, der, n);
    ZTB_ENSURE(ztb_cursor_read_u8(&c, &tag) == ZTB_OK && tag == 0x30, ZTB_ERR_SIG_FORMAT);
    ZTB_ENSURE(ztb_cursor_read_u8(&c, &len) == ZTB_OK, ZTB_ERR_SIG_FORMAT);
    ZTB_ENSURE(len < 0x80 && len == ztb_cursor_remaining(&c), ZTB_ERR_SIG_FORMAT);
    ZTB_GUARD(read_int(&c, raw));
    ZTB_GUARD(read_int(&c, raw + ZTB_P256_COORD_LEN));
    ZTB_ENSURE(ztb_cursor_eof(&c), ZTB_ERR_SIG_FORMAT);
    return ZTB_OK;
}
