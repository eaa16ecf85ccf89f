/*
 * test_session.c - session credentials: round trip, forgery, expiry, and the
 * MAC's form. The signer process is mocked: session_set_mac gets a local
 * HMAC-SHA256 over the digest with a test key (in the broker it is
 * keys_session_mac, the signer's; tests/unit/test_signer.c covers that).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "broker/auth/session.h"
#include "common/base64url.h"

static const uint8_t key1[SESSION_KEY_LEN] = {1, 2, 3};
static const uint8_t key2[SESSION_KEY_LEN] = {9, 9, 9};
static const uint8_t *test_key;

static ztb_err test_mac(const uint8_t digest[32], uint8_t out[32])
{
    unsigned int len = 0;
    return HMAC(EVP_sha256(), test_key, SESSION_KEY_LEN, digest, 32, out, &len) ? ZTB_OK
                                                                                : ZTB_ERR_CRYPTO;
}

static ztb_err signer_down(const uint8_t digest[32], uint8_t out[32])
{
    (void)digest;
    (void)out;
    return ZTB_ERR_UNAVAILABLE;
}

static void session_set_key(const uint8_t *k)
{
    test_key = k;
    session_set_mac(test_mac);
}

static void session_clear_key(void)
{
    session_set_mac(NULL);
}

static void test_round_trip(void **state)
{
    (void)state;
    session_set_key(key1);
    char cred[SESSION_CRED_MAX];
    assert_int_equal(session_mint("billing-bot", 7, 4, 2000, cred), ZTB_OK);
    assert_int_equal(strncmp(cred, "ztbs_", 5), 0);
    struct session_claims c;
    assert_int_equal(session_verify(cred, strlen(cred), 1999, &c), ZTB_OK);
    assert_string_equal(c.agent, "billing-bot");
    assert_int_equal(c.generation, 7);
    assert_int_equal(c.epoch, 4);
    assert_int_equal(c.expires, 2000);
    assert_int_equal(session_verify(cred, strlen(cred), 2000, &c), ZTB_ERR_EXPIRED);
    /* two mints differ (random sid) */
    char cred2[SESSION_CRED_MAX];
    assert_int_equal(session_mint("billing-bot", 7, 4, 2000, cred2), ZTB_OK);
    assert_string_not_equal(cred, cred2);
    /* another broker with the same key accepts it; one with another key does not */
    session_set_key(key2);
    assert_int_equal(session_verify(cred, strlen(cred), 1, &c), ZTB_ERR_INVALID_CLIENT);
    session_set_key(key1);
    assert_int_equal(session_verify(cred, strlen(cred), 1, &c), ZTB_OK);
}

static void test_forgeries(void **state)
{
    (void)state;
    session_set_key(key1);
    char cred[SESSION_CRED_MAX];
    assert_int_equal(session_mint("worker", 1, 4, 5000, cred), ZTB_OK);
    struct session_claims c;
    size_t n = strlen(cred);
    /* flip every character in turn: nothing verifies */
    for (size_t i = 0; i < n; i++) {
        char f[SESSION_CRED_MAX];
        memcpy(f, cred, n + 1);
        f[i] = f[i] == 'A' ? 'B' : 'A';
        ztb_err rv = session_verify(f, n, 1, &c);
        assert_int_not_equal(rv, ZTB_OK);
    }
    /* truncations */
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(session_verify(cred, i, 1, &c), ZTB_OK);
    assert_int_equal(session_verify("ztbs_", 5, 1, &c), ZTB_ERR_INVALID_CLIENT);
    assert_int_equal(session_verify("ztbj_abc.def", 12, 1, &c), ZTB_ERR_INVALID_CLIENT);
    assert_int_equal(session_verify(NULL, 0, 1, &c), ZTB_ERR_INVALID_CLIENT);
    assert_int_equal(session_mint("Bad Name", 1, 4, 2, cred), ZTB_ERR_INVALID_ARG);
    session_clear_key();
    assert_int_equal(session_mint("worker", 1, 4, 2, cred), ZTB_ERR_STATE);
    assert_int_equal(session_verify(cred, strlen(cred), 1, &c), ZTB_ERR_STATE);
}

/* The MAC is HMAC-SHA256(key, SHA-256(signed part)) (version 3: the
 * signer MACs a digest), and the payload says version 3. */
static void test_mac_is_hmac_sha256(void **state)
{
    (void)state;
    session_set_key(key2);
    char cred[SESSION_CRED_MAX];
    assert_int_equal(session_mint("billing-bot", 3, 4, 9000, cred), ZTB_OK);
    const char *dot = strchr(cred, '.');
    assert_non_null(dot);
    uint8_t want[32], got[32], digest[32], payload[64];
    unsigned int len = 0;
    assert_non_null(SHA256((const uint8_t *)cred, (size_t)(dot - cred), digest));
    assert_non_null(HMAC(EVP_sha256(), key2, SESSION_KEY_LEN, digest, 32, want, &len));
    size_t pn = 0;
    assert_int_equal(
        ztb_b64url_decode(cred + 5, (size_t)(dot - cred) - 5, payload, sizeof(payload), &pn),
        ZTB_OK);
    assert_int_equal(payload[0], 3);
    size_t n = 0;
    assert_int_equal(ztb_b64url_decode(dot + 1, strlen(dot + 1), got, sizeof(got), &n), ZTB_OK);
    assert_int_equal(n, 32);
    assert_memory_equal(got, want, 32);
}

struct verify_job {
    const char *cred;
    ztb_err rv;
};

static void *verify_in_thread(void *arg)
{
    struct verify_job *j = arg;
    struct session_claims c;
    j->rv = session_verify(j->cred, strlen(j->cred), 1, &c);
    return NULL;
}

static ztb_err verify_elsewhere(const char *cred)
{
    struct verify_job j = {cred, ZTB_ERR_INTERNAL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, verify_in_thread, &j), 0);
    pthread_join(t, NULL);
    return j.rv;
}

/* Each thread keys its own context; a new key reaches every thread. */
static void test_threads_and_key_change(void **state)
{
    (void)state;
    session_set_key(key1);
    char cred[SESSION_CRED_MAX];
    assert_int_equal(session_mint("worker", 1, 4, 5000, cred), ZTB_OK);
    assert_int_equal(verify_elsewhere(cred), ZTB_OK);
    struct session_claims c;
    assert_int_equal(session_verify(cred, strlen(cred), 1, &c), ZTB_OK);
    session_set_key(key2);
    assert_int_equal(verify_elsewhere(cred), ZTB_ERR_INVALID_CLIENT);
    assert_int_equal(session_verify(cred, strlen(cred), 1, &c), ZTB_ERR_INVALID_CLIENT);
    session_clear_key();
}

/* The signer down: verify and mint fail closed with UNAVAILABLE (503 in
 * the broker), never INVALID_CLIENT (401) and never a credential. */
static void test_signer_down(void **state)
{
    (void)state;
    session_set_key(key1);
    char cred[SESSION_CRED_MAX];
    assert_int_equal(session_mint("worker", 1, 4, 5000, cred), ZTB_OK);
    session_set_mac(signer_down);
    struct session_claims c;
    assert_int_equal(session_verify(cred, strlen(cred), 1, &c), ZTB_ERR_UNAVAILABLE);
    char again[SESSION_CRED_MAX];
    assert_int_equal(session_mint("worker", 1, 4, 5000, again), ZTB_ERR_UNAVAILABLE);
    session_clear_key();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),         cmocka_unit_test(test_forgeries),
        cmocka_unit_test(test_mac_is_hmac_sha256), cmocka_unit_test(test_threads_and_key_change),
        cmocka_unit_test(test_signer_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
