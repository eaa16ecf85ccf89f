/*
 * test_es256.c - ES256 primitives: sign/verify, strict DER <-> raw r||s,
 * SHA-256 known answers, the per-thread context cache (eviction, flush when
 * keys are freed) and many threads sharing keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "pki/es256.h"

static const char msg[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0";

static void test_sign_verify(void **state)
{
    (void)state;
    ztb_key *k = NULL, *other = NULL, *pub = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    assert_int_equal(ztb_key_public_only(k, &pub), ZTB_OK);
    uint8_t sig[64], sig2[64];
    assert_int_equal(ztb_es256_sign(k, msg, strlen(msg), sig), ZTB_OK);
    assert_int_equal(ztb_es256_verify(pub, msg, strlen(msg), sig, 64), ZTB_OK);
    assert_int_equal(ztb_es256_verify(k, msg, strlen(msg), sig, 64), ZTB_OK);
    /* ECDSA is randomised: two signatures differ, both verify */
    assert_int_equal(ztb_es256_sign(k, msg, strlen(msg), sig2), ZTB_OK);
    assert_memory_not_equal(sig, sig2, 64);
    assert_int_equal(ztb_es256_verify(pub, msg, strlen(msg), sig2, 64), ZTB_OK);
    /* refusals */
    assert_int_equal(ztb_es256_verify(other, msg, strlen(msg), sig, 64), ZTB_ERR_SIGNATURE);
    assert_int_equal(ztb_es256_verify(pub, msg, strlen(msg) - 1, sig, 64), ZTB_ERR_SIGNATURE);
    assert_int_equal(ztb_es256_verify(pub, msg, strlen(msg), sig, 63), ZTB_ERR_SIG_FORMAT);
    assert_int_equal(ztb_es256_verify(pub, msg, strlen(msg), NULL, 64), ZTB_ERR_SIG_FORMAT);
    sig[0] ^= 0x80;
    assert_int_equal(ztb_es256_verify(pub, msg, strlen(msg), sig, 64), ZTB_ERR_SIGNATURE);
    assert_int_equal(ztb_es256_sign(pub, msg, strlen(msg), sig), ZTB_ERR_KEY);
    /* an empty message is a message */
    assert_int_equal(ztb_es256_sign(k, "", 0, sig), ZTB_OK);
    assert_int_equal(ztb_es256_verify(pub, "", 0, sig, 64), ZTB_OK);
    ztb_key_free(k);
    ztb_key_free(other);
    ztb_key_free(pub);
}

/* Our signature is what OpenSSL's own ECDSA verify accepts, via DER. */
static void test_matches_openssl_der(void **state)
{
    (void)state;
    ztb_key *k = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    uint8_t sig[64], der[ZTB_ES256_DER_MAX];
    assert_int_equal(ztb_es256_sign(k, msg, strlen(msg), sig), ZTB_OK);
    size_t dlen = ztb_es256_raw_to_der(sig, der);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, ztb_key_evp(k)), 1);
    assert_int_equal(EVP_DigestVerify(ctx, der, dlen, (const uint8_t *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(ctx);
    /* and the other way: OpenSSL's DER signature converts and verifies here */
    ctx = EVP_MD_CTX_new();
    size_t olen = sizeof(der);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, ztb_key_evp(k)), 1);
    assert_int_equal(EVP_DigestSign(ctx, der, &olen, (const uint8_t *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(ctx);
    assert_int_equal(ztb_es256_der_to_raw(der, olen, sig), ZTB_OK);
    assert_int_equal(ztb_es256_verify(k, msg, strlen(msg), sig, 64), ZTB_OK);
    ztb_key_free(k);
}

static void test_der_raw_edges(void **state)
{
    (void)state;
    uint8_t raw[64], back[64], der[ZTB_ES256_DER_MAX];
    /* small values, high bits, all ones */
    const uint8_t patterns[][2] = {
        {0x00, 0x01}, {0x80, 0x00}, {0x7f, 0xff}, {0xff, 0xff}, {0x00, 0x80}};
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        memset(raw, patterns[i][0], 32);
        raw[31] = patterns[i][1];
        memset(raw + 32, patterns[i][1], 32);
        raw[32] = patterns[i][0];
        size_t n = ztb_es256_raw_to_der(raw, der);
        assert_true(n >= 8 && n <= ZTB_ES256_DER_MAX);
        assert_int_equal(ztb_es256_der_to_raw(der, n, back), ZTB_OK);
        assert_memory_equal(raw, back, 64);
        /* OpenSSL parses it to the same numbers, and re-encodes it identically */
        const uint8_t *p = der;
        ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)n);
        assert_non_null(s);
        uint8_t *re = NULL;
        int rn = i2d_ECDSA_SIG(s, &re);
        assert_int_equal((size_t)rn, n);
        assert_memory_equal(re, der, n);
        OPENSSL_free(re);
        ECDSA_SIG_free(s);
    }
    /* all zero: r = s = 0 encode as one zero byte each */
    memset(raw, 0, 64);
    size_t n = ztb_es256_raw_to_der(raw, der);
    assert_int_equal(n, 8);
    assert_int_equal(ztb_es256_der_to_raw(der, n, back), ZTB_OK);
    assert_memory_equal(raw, back, 64);
}

static void test_der_strictness(void **state)
{
    (void)state;
    uint8_t raw[64];
    struct {
        const char *what;
        uint8_t der[80];
        size_t n;
    } bad[] = {
        {"wrong outer tag", {0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 8},
        {"length too long", {0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 8},
        {"length too short", {0x30, 0x05, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 8},
        {"long-form length", {0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 9},
        {"trailing byte", {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00}, 9},
        {"wrong int tag", {0x30, 0x06, 0x03, 0x01, 0x01, 0x02, 0x01, 0x01}, 8},
        {"empty int", {0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01}, 7},
        {"negative", {0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01}, 8},
        {"non-minimal", {0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}, 9},
        {"one int", {0x30, 0x03, 0x02, 0x01, 0x01}, 5},
        {"empty", {0}, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ztb_es256_der_to_raw(bad[i].der, bad[i].n, raw) != ZTB_ERR_SIG_FORMAT)
            fail_msg("accepted: %s", bad[i].what);
    }
    /* 33 significant bytes do not fit in 32 */
    uint8_t big[80] = {0x30, 0x26, 0x02, 0x22, 0x00, 0x80};
    memset(big + 6, 0x11, 32);
    big[38] = 0x02;
    big[39] = 0x01;
    big[40] = 0x01;
    assert_int_equal(ztb_es256_der_to_raw(big, 41, raw), ZTB_ERR_SIG_FORMAT);
    /* the minimal form of small numbers is accepted */
    const uint8_t ok[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02};
    assert_int_equal(ztb_es256_der_to_raw(ok, sizeof(ok), raw), ZTB_OK);
    assert_int_equal(raw[31], 1);
    assert_int_equal(raw[63], 2);
}

static void test_sha256_known_answer(void **state)
{
    (void)state;
    uint8_t d[32];
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                    0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                    0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    assert_int_equal(ztb_es256_sha256("abc", 3, d), ZTB_OK);
    assert_memory_equal(d, abc, 32);
    static const uint8_t empty[4] = {0xe3, 0xb0, 0xc4, 0x42};
    assert_int_equal(ztb_es256_sha256(NULL, 0, d), ZTB_OK);
    assert_memory_equal(d, empty, 4);
}

/* More keys than cache slots, used round-robin: every call still right. */
static void test_cache_eviction_and_cleanup(void **state)
{
    (void)state;
    enum { N = 7 };
    ztb_key *k[N];
    uint8_t sig[N][64];
    for (int i = 0; i < N; i++) {
        assert_int_equal(ztb_key_generate(&k[i]), ZTB_OK);
        assert_int_equal(ztb_es256_sign(k[i], msg, strlen(msg), sig[i]), ZTB_OK);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            assert_int_equal(ztb_es256_verify(k[i], msg, strlen(msg), sig[i], 64), ZTB_OK);
            assert_int_equal(ztb_es256_verify(k[(i + 1) % N], msg, strlen(msg), sig[i], 64),
                             ZTB_ERR_SIGNATURE);
        }
        ztb_es256_thread_cleanup();
    }
    /* keys freed and new ones made (memory may be reused): no stale context */
    for (int i = 0; i < N; i++) {
        ztb_key_free(k[i]);
        assert_int_equal(ztb_key_generate(&k[i]), ZTB_OK);
        assert_int_equal(ztb_es256_sign(k[i], msg, strlen(msg), sig[i]), ZTB_OK);
        assert_int_equal(ztb_es256_verify(k[i], msg, strlen(msg), sig[i], 64), ZTB_OK);
    }
    for (int i = 0; i < N; i++)
        ztb_key_free(k[i]);
}

struct worker {
    ztb_key *shared; /* signs in every thread */
    ztb_key *pub;
    int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 200; i++) {
        uint8_t sig[64];
        char m[64];
        snprintf(m, sizeof(m), "message %d from %p", i, (void *)w);
        if (ztb_es256_sign(w->shared, m, strlen(m), sig) != ZTB_OK ||
            ztb_es256_verify(w->pub, m, strlen(m), sig, 64) != ZTB_OK)
            w->failures++;
        /* now and then a private key of this thread's own comes and goes,
         * which makes every thread flush its cache */
        if (i % 50 == 0) {
            ztb_key *tmp = NULL;
            if (ztb_key_generate(&tmp) != ZTB_OK ||
                ztb_es256_sign(tmp, m, strlen(m), sig) != ZTB_OK ||
                ztb_es256_verify(tmp, m, strlen(m), sig, 64) != ZTB_OK)
                w->failures++;
            ztb_key_free(tmp);
        }
    }
    return NULL;
}

static void test_threads_share_keys(void **state)
{
    (void)state;
    enum { T = 4 };
    ztb_key *k = NULL, *pub = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    assert_int_equal(ztb_key_public_only(k, &pub), ZTB_OK);
    pthread_t th[T];
    struct worker w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (struct worker){k, pub, 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    ztb_key_free(k);
    ztb_key_free(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_matches_openssl_der),
        cmocka_unit_test(test_der_raw_edges),
        cmocka_unit_test(test_der_strictness),
        cmocka_unit_test(test_sha256_known_answer),
        cmocka_unit_test(test_cache_eviction_and_cleanup),
        cmocka_unit_test(test_threads_share_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
