/*
 * session.c - mint and check session credentials (see session.h).
 *
 * The MAC key is not in this process: the MAC is HMAC-SHA256(key,
 * SHA-256(signed part)), the digest made here and the HMAC by the signer
 * process (keys_session_mac, set with session_set_mac). Version 3 of the
 * payload marks that form; the version-2 credentials of earlier brokers
 * (HMAC over the signed part itself) no longer verify, and their holders
 * make a new session (they live minutes).
 */
#include <stdatomic.h>
#include <string.h>

#include "broker/auth/session.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "common/secret.h"
#include "pki/es256.h"

#define VERSION     3
#define FIXED_LEN   (1 + 8 + 8 + 8 + 16)
#define PAYLOAD_MAX (FIXED_LEN + STORE_NAME_MAX)

static _Atomic(session_mac_fn) g_mac_fn;

/*
 * Credentials already found authentic, per thread: an agent presents the
 * same session on every token request, and asking the signer for its MAC
 * each time would cost a second round trip per token. An entry is the
 * SHA-256 of the whole credential (MAC included), so the cache holds no
 * credential and no key: finding a hash here means the signer confirmed
 * this exact string before. Direct-mapped; a MAC function change (a new
 * signer, a new key) empties every thread's cache through the generation.
 * Expiry, generation and epoch are checked on every use as before.
 */
#define SEEN_SLOTS 1024 /* per thread: 36 KiB */

struct seen {
    uint64_t gen; /* 0: empty */
    uint8_t hash[32];
};

static _Atomic uint64_t g_mac_gen = 1;
static __thread struct seen t_seen[SEEN_SLOTS];

static int seen_authentic(const uint8_t hash[32])
{
    const struct seen *e = &t_seen[((size_t)hash[0] << 8 | hash[1]) % SEEN_SLOTS];
    return e->gen == atomic_load(&g_mac_gen) && ztb_ct_eq(e->hash, hash, 32);
}

static void remember_authentic(const uint8_t hash[32])
{
    struct seen *e = &t_seen[((size_t)hash[0] << 8 | hash[1]) % SEEN_SLOTS];
    e->gen = atomic_load(&g_mac_gen);
    memcpy(e->hash, hash, 32);
}

void session_set_mac(session_mac_fn fn)
{
    atomic_store(&g_mac_fn, fn);
    atomic_fetch_add(&g_mac_gen, 1);
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

/* MAC(key, SHA-256(msg)) into out; STATE without a MAC function,
 * UNAVAILABLE while the signer is down. */
static ztb_err mac(const void *msg, size_t n, uint8_t out[32])
{
    session_mac_fn fn = atomic_load(&g_mac_fn);
    ZTB_ENSURE(fn != NULL, ZTB_ERR_STATE);
    uint8_t d[32];
    ZTB_GUARD(ztb_es256_sha256(msg, n, d));
    return fn(d, out);
}

ztb_err session_mint(const char *agent, int64_t generation, int64_t epoch, int64_t expires,
                     char out[SESSION_CRED_MAX])
{
    ZTB_ENSURE(atomic_load(&g_mac_fn) != NULL, ZTB_ERR_STATE);
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
    ZTB_ENSURE(atomic_load(&g_mac_fn) != NULL, ZTB_ERR_STATE);
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
    uint8_t whole[32];
    ZTB_GUARD(ztb_es256_sha256(cred, len, whole));
    if (!seen_authentic(whole)) {
        ZTB_GUARD(mac(cred, signed_len, want));
        int ok = ztb_ct_eq(got, want, 32);
        ztb_wipe(want, sizeof(want));
        ZTB_ENSURE(ok, ZTB_ERR_INVALID_CLIENT);
        remember_authentic(whole);
    }
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
