/*
 * session.c - mint and check session credentials (see session.h).
 *
 * Every token request checks one MAC, so each thread keeps an HMAC-SHA256
 * context keyed once: EVP_MAC_init with no key restarts it from the stored
 * key (~0.25 µs), where the one-shot HMAC() fetched the digest and set the
 * key up on every call (~1.2 µs, and a read lock on OpenSSL's provider store
 * that every worker thread takes). A key generation tells a thread that its
 * context holds an old key; contexts are freed (and their key copies
 * cleansed by OpenSSL) when their thread exits or the key is cleared.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "broker/session.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "common/secret.h"

#define VERSION     2
#define FIXED_LEN   (1 + 8 + 8 + 8 + 16)
#define PAYLOAD_MAX (FIXED_LEN + STORE_NAME_MAX)

static uint8_t g_key[SESSION_KEY_LEN];
static int g_have_key;
static _Atomic uint64_t g_key_gen = 1; /* bumped whenever the key changes */

static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static pthread_key_t mac_tkey;
static EVP_MAC *g_hmac; /* fetched once, kept for the life of the process */
static __thread EVP_MAC_CTX *t_mac;
static __thread uint64_t t_mac_gen;

static void mac_ctx_destroy(void *p)
{
    EVP_MAC_CTX_free(p); /* HMAC's free cleanses the key schedule */
    if (p == t_mac)
        t_mac = NULL;
}

static void mac_init_once(void)
{
    if (pthread_key_create(&mac_tkey, mac_ctx_destroy) == 0)
        g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static void drop_thread_ctx(void)
{
    if (t_mac != NULL) {
        pthread_setspecific(mac_tkey, NULL);
        EVP_MAC_CTX_free(t_mac);
        t_mac = NULL;
    }
}

void session_set_key(const uint8_t key[SESSION_KEY_LEN])
{
    memcpy(g_key, key, SESSION_KEY_LEN);
    g_have_key = 1;
    atomic_fetch_add(&g_key_gen, 1);
}

void session_clear_key(void)
{
    ztb_wipe(g_key, sizeof(g_key));
    g_have_key = 0;
    atomic_fetch_add(&g_key_gen, 1);
    drop_thread_ctx(); /* other threads' go when they exit or see the new generation */
}

/* This thread's HMAC context keyed with the current key, or NULL. */
static EVP_MAC_CTX *thread_ctx(void)
{
    uint64_t gen = atomic_load(&g_key_gen);
    if (t_mac != NULL && t_mac_gen == gen)
        return t_mac;
    pthread_once(&mac_once, mac_init_once);
    drop_thread_ctx();
    if (g_hmac == NULL)
        return NULL;
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(g_hmac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (c == NULL || EVP_MAC_init(c, g_key, SESSION_KEY_LEN, params) != 1 ||
        pthread_setspecific(mac_tkey, c) != 0) {
        EVP_MAC_CTX_free(c);
        return NULL;
    }
    t_mac = c;
    t_mac_gen = gen;
    return c;
}

static void put64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)u;
        u >>= 8;
    }
}

static int64_t get64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

static ztb_err mac(const void *msg, size_t n, uint8_t out[32])
{
    EVP_MAC_CTX *c = thread_ctx();
    size_t len = 0;
    /* a NULL key restarts the MAC with the key the context holds */
    ZTB_ENSURE(c != NULL && EVP_MAC_init(c, NULL, 0, NULL) == 1 && EVP_MAC_update(c, msg, n) == 1 &&
                   EVP_MAC_final(c, out, &len, 32) == 1 && len == 32,
               ZTB_ERR_CRYPTO);
    return ZTB_OK;
}

ztb_err session_mint(const char *agent, int64_t generation, int64_t epoch, int64_t expires,
                     char out[SESSION_CRED_MAX])
{
    ZTB_ENSURE(g_have_key, ZTB_ERR_STATE);
    ZTB_ENSURE(store_agent_name_ok(agent), ZTB_ERR_INVALID_ARG);
    uint8_t p[PAYLOAD_MAX];
    size_t nl = strlen(agent);
    p[0] = VERSION;
    put64(p + 1, expires);
    put64(p + 9, generation);
    put64(p + 17, epoch);
    ZTB_GUARD(ztb_random(p + 25, 16));
    /* binary payload: the name is length-delimited by the payload's end */
    memcpy(p + FIXED_LEN, agent, nl); // NOLINT(bugprone-not-null-terminated-result)
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, SESSION_CRED_MAX);
    ztb_buf_append_str(&b, "ztbs_");
    ztb_b64url_encode_buf(&b, p, FIXED_LEN + nl);
    uint8_t m[32];
    ZTB_GUARD(mac(out, b.len, m));
    ztb_buf_append_byte(&b, '.');
    ztb_b64url_encode_buf(&b, m, sizeof(m));
    ztb_wipe(m, sizeof(m));
    return ztb_buf_error(&b);
}

ztb_err session_verify(const char *cred, size_t len, int64_t now, struct session_claims *c)
{
    ZTB_ENSURE(g_have_key, ZTB_ERR_STATE);
    ZTB_ENSURE(cred != NULL && len > 5 && len < SESSION_CRED_MAX && memcmp(cred, "ztbs_", 5) == 0,
               ZTB_ERR_INVALID_CLIENT);
    const char *dot = memchr(cred, '.', len);
    ZTB_ENSURE(dot != NULL, ZTB_ERR_INVALID_CLIENT);
    size_t signed_len = (size_t)(dot - cred);
    uint8_t got[32], want[32];
    size_t n;
    ZTB_ENSURE(ztb_b64url_decode(dot + 1, len - signed_len - 1, got, sizeof(got), &n) == ZTB_OK &&
                   n == 32,
               ZTB_ERR_INVALID_CLIENT);
    ZTB_GUARD(mac(cred, signed_len, want));
    int ok = ztb_ct_eq(got, want, 32);
    ztb_wipe(want, sizeof(want));
    ZTB_ENSURE(ok, ZTB_ERR_INVALID_CLIENT);
    /* authentic from here on: still parse defensively */
    uint8_t p[PAYLOAD_MAX];
    ZTB_ENSURE(ztb_b64url_decode(cred + 5, signed_len - 5, p, sizeof(p), &n) == ZTB_OK &&
                   n > FIXED_LEN && p[0] == VERSION,
               ZTB_ERR_INVALID_CLIENT);
    size_t nl = n - FIXED_LEN;
    memcpy(c->agent, p + FIXED_LEN, nl);
    c->agent[nl] = '\0';
    ZTB_ENSURE(store_agent_name_ok(c->agent), ZTB_ERR_INVALID_CLIENT);
    c->expires = get64(p + 1);
    c->generation = get64(p + 9);
    c->epoch = get64(p + 17);
    memcpy(c->sid, p + 25, 16);
    ZTB_ENSURE(now < c->expires, ZTB_ERR_EXPIRED);
    return ZTB_OK;
}
