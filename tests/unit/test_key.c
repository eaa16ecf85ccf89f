/*
 * test_key.c - P-256 keys: generation, PEM in and out (plain and encrypted
 * PKCS#8, SPKI), interop with keys OpenSSL made, every refused form (other
 * curves and types, legacy PEM, junk around the block), files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "pki_test.h"

#include "pki/jwk.h"
#include "pki/key.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* PEM of pkey written by OpenSSL itself: how = 0 PKCS#8, 1 legacy, 2 public. */
static void ossl_pem(EVP_PKEY *pkey, int how, ztb_buf *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    int ok = how == 0   ? PEM_write_bio_PKCS8PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL)
             : how == 1 ? PEM_write_bio_PrivateKey_traditional(b, pkey, NULL, NULL, 0, NULL, NULL)
                        : PEM_write_bio_PUBKEY(b, pkey);
    assert_int_equal(ok, 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    ztb_buf_append(out, p, (size_t)n);
    BIO_free(b);
}

static void test_generate(void **state)
{
    (void)state;
    ztb_key *a = NULL, *b = NULL;
    assert_int_equal(ztb_key_generate(&a), ZTB_OK);
    assert_int_equal(ztb_key_generate(&b), ZTB_OK);
    assert_true(ztb_key_has_private(a));
    assert_int_equal(ztb_key_alg(a), ZTB_ALG_ES256);
    assert_int_equal(strlen(ztb_key_kid(a)), ZTB_KID_LEN);
    assert_string_not_equal(ztb_key_kid(a), ztb_key_kid(b));
    assert_int_not_equal(ztb_key_serial(a), ztb_key_serial(b));
    assert_false(ztb_key_same_public(a, b));
    /* the kid is the thumbprint of the coordinates */
    uint8_t x[32], y[32];
    char t[ZTB_KID_LEN + 1];
    ztb_key_public_xy(a, x, y);
    assert_int_equal(ztb_jwk_thumbprint_p256(x, y, t), ZTB_OK);
    assert_string_equal(t, ztb_key_kid(a));
    /* references */
    assert_ptr_equal(ztb_key_ref(a), a);
    ztb_key_free(a);
    assert_string_equal(ztb_key_kid(a), t); /* still alive: one reference left */
    ztb_key_free(a);
    ztb_key_free(b);
    ztb_key_free(NULL);
}

static void test_alg_names(void **state)
{
    (void)state;
    assert_string_equal(ztb_alg_name(ZTB_ALG_ES256), "ES256");
    assert_string_equal(ztb_alg_name(ZTB_ALG_NONE), "none");
    assert_int_equal(ztb_alg_from_name("ES256", 5), ZTB_ALG_ES256);
    assert_int_equal(ztb_alg_from_name("ES256", 4), ZTB_ALG_NONE);
    assert_int_equal(ztb_alg_from_name("es256", 5), ZTB_ALG_NONE);
    assert_int_equal(ztb_alg_from_name("none", 4), ZTB_ALG_NONE);
    assert_int_equal(ztb_alg_from_name(NULL, 0), ZTB_ALG_NONE);
}

static void test_pem_round_trips(void **state)
{
    (void)state;
    ztb_key *k = NULL, *back = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    ztb_buf pem;
    ztb_buf_init_secret(&pem, 8192);
    int enc = -1;

    assert_int_equal(ztb_key_private_pem(k, NULL, 0, &pem), ZTB_OK);
    assert_non_null(strstr(ztb_buf_cstr(&pem), "-----BEGIN PRIVATE KEY-----"));
    assert_int_equal(ztb_key_from_pem_ex(pem.data, pem.len, NULL, 0, &back, &enc), ZTB_OK);
    assert_int_equal(enc, 0);
    assert_true(ztb_key_has_private(back));
    assert_string_equal(ztb_key_kid(back), ztb_key_kid(k));
    ztb_key_free(back);
    ztb_buf_reset(&pem);

    assert_int_equal(ztb_key_private_pem(k, "pw", 2, &pem), ZTB_OK);
    assert_non_null(strstr(ztb_buf_cstr(&pem), "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_int_equal(ztb_key_from_pem_ex(pem.data, pem.len, "pw", 2, &back, &enc), ZTB_OK);
    assert_int_equal(enc, 1);
    assert_string_equal(ztb_key_kid(back), ztb_key_kid(k));
    ztb_key_free(back);
    assert_int_equal(ztb_key_from_pem(pem.data, pem.len, "pW", 2, &back), ZTB_ERR_PASSPHRASE);
    assert_int_equal(ztb_key_from_pem(pem.data, pem.len, NULL, 0, &back), ZTB_ERR_PASSPHRASE);
    ztb_buf_reset(&pem);

    assert_int_equal(ztb_key_public_pem(k, &pem), ZTB_OK);
    assert_non_null(strstr(ztb_buf_cstr(&pem), "-----BEGIN PUBLIC KEY-----"));
    assert_int_equal(ztb_key_from_pem(pem.data, pem.len, NULL, 0, &back), ZTB_OK);
    assert_false(ztb_key_has_private(back));
    assert_true(ztb_key_same_public(k, back));
    /* a public key has no private PEM */
    ztb_buf_reset(&pem);
    assert_int_equal(ztb_key_private_pem(back, NULL, 0, &pem), ZTB_ERR_KEY);
    ztb_key_free(back);

    ztb_key *pub = NULL;
    assert_int_equal(ztb_key_public_only(k, &pub), ZTB_OK);
    assert_false(ztb_key_has_private(pub));
    assert_string_equal(ztb_key_kid(pub), ztb_key_kid(k));
    ztb_key_free(pub);
    ztb_buf_free(&pem);
    ztb_key_free(k);
}

/* Keys OpenSSL made are read; forms ztb refuses are refused. */
static void test_openssl_keys(void **state)
{
    (void)state;
    EVP_PKEY *p256 = EVP_EC_gen("P-256");
    ztb_buf pem;
    ztb_buf_init_secret(&pem, 16384);
    ztb_key *k = NULL;
    ossl_pem(p256, 0, &pem);
    assert_int_equal(ztb_key_from_pem(pem.data, pem.len, NULL, 0, &k), ZTB_OK);
    assert_int_equal(EVP_PKEY_eq(ztb_key_evp(k), p256), 1);
    ztb_key_free(k);
    ztb_buf_reset(&pem);
    /* the legacy "EC PRIVATE KEY" form */
    ossl_pem(p256, 1, &pem);
    assert_non_null(strstr(ztb_buf_cstr(&pem), "EC PRIVATE KEY"));
    assert_int_equal(ztb_key_from_pem(pem.data, pem.len, NULL, 0, &k), ZTB_ERR_KEY);
    ztb_buf_reset(&pem);
    /* legacy per-block encryption (Proc-Type header) */
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, p256, EVP_aes_128_cbc(),
                                                          (unsigned char *)"pw", 2, NULL, NULL),
                     1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    assert_non_null(strstr(p, "Proc-Type"));
    assert_int_equal(ztb_key_from_pem(p, (size_t)n, "pw", 2, &k), ZTB_ERR_KEY);
    BIO_free(b);

    /* other curves and key types */
    EVP_PKEY *others[] = {EVP_EC_gen("P-384"), EVP_EC_gen("secp256k1"), EVP_RSA_gen(2048),
                          EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        assert_non_null(others[i]);
        for (int how = 0; how <= 2; how += 2) {
            ossl_pem(others[i], how, &pem);
            assert_int_equal(ztb_key_from_pem(pem.data, pem.len, NULL, 0, &k), ZTB_ERR_KEY);
            ztb_buf_reset(&pem);
        }
        EVP_PKEY_free(others[i]);
    }
    EVP_PKEY_free(p256);
    ztb_buf_free(&pem);
}

static void test_pem_refusals(void **state)
{
    (void)state;
    ztb_key *k = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    ztb_buf pem;
    ztb_buf_init_secret(&pem, 8192);
    assert_int_equal(ztb_key_private_pem(k, NULL, 0, &pem), ZTB_OK);
    ztb_key_free(k);
    char buf[16384];
    const char *s = ztb_buf_cstr(&pem);
    ztb_key *out = NULL;

    snprintf(buf, sizeof(buf), "junk\n%s", s); /* OpenSSL alone would skip this */
    assert_int_equal(ztb_key_from_pem(buf, strlen(buf), NULL, 0, &out), ZTB_ERR_KEY);
    snprintf(buf, sizeof(buf), "%sjunk\n", s);
    assert_int_equal(ztb_key_from_pem(buf, strlen(buf), NULL, 0, &out), ZTB_ERR_KEY);
    snprintf(buf, sizeof(buf), "%s%s", s, s); /* two keys */
    assert_int_equal(ztb_key_from_pem(buf, strlen(buf), NULL, 0, &out), ZTB_ERR_KEY);
    snprintf(buf, sizeof(buf), "%.*s", (int)pem.len - 30, s); /* truncated */
    assert_int_equal(ztb_key_from_pem(buf, strlen(buf), NULL, 0, &out), ZTB_ERR_KEY);
    snprintf(buf, sizeof(buf), "%s", s);
    char *lbl = strstr(buf, "PRIVATE KEY-----");
    memcpy(lbl, "PRIVATE KEZ", 11); /* BEGIN label no longer matches END */
    assert_int_equal(ztb_key_from_pem(buf, strlen(buf), NULL, 0, &out), ZTB_ERR_KEY);
    snprintf(buf, sizeof(buf), "%s", s);
    buf[40] = buf[40] == 'A' ? 'B' : 'A'; /* corrupt DER inside the base64 */
    assert_int_equal(ztb_key_from_pem(buf, strlen(buf), NULL, 0, &out), ZTB_ERR_KEY);
    assert_int_equal(ztb_key_from_pem("", 0, NULL, 0, &out), ZTB_ERR_KEY);
    assert_int_equal(ztb_key_from_pem("-----BEGIN ", 11, NULL, 0, &out), ZTB_ERR_KEY);
    /* whitespace around is fine */
    snprintf(buf, sizeof(buf), "\n  %s\n\n", s);
    assert_int_equal(ztb_key_from_pem(buf, strlen(buf), NULL, 0, &out), ZTB_OK);
    ztb_key_free(out);
    static char huge[ZTB_KEY_PEM_MAX + 1];
    assert_int_equal(ztb_key_from_pem(huge, sizeof(huge), NULL, 0, &out), ZTB_ERR_TOO_LARGE);
    ztb_buf_free(&pem);
}

static void test_public_xy(void **state)
{
    (void)state;
    ztb_key *k = NULL, *p = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    uint8_t x[32], y[32];
    ztb_key_public_xy(k, x, y);
    assert_int_equal(ztb_key_from_public_xy(x, y, &p), ZTB_OK);
    assert_true(ztb_key_same_public(k, p));
    ztb_key_free(p);
    y[31] ^= 1; /* off the curve */
    assert_int_equal(ztb_key_from_public_xy(x, y, &p), ZTB_ERR_KEY);
    uint8_t zero[32] = {0};
    assert_int_equal(ztb_key_from_public_xy(zero, zero, &p), ZTB_ERR_KEY);
    ztb_key_free(k);
}

static void test_files(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    char path[1024], link[1024];
    snprintf(path, sizeof(path), "%s/agent.pem", dir);
    snprintf(link, sizeof(link), "%s/link.pem", dir);
    ztb_key *k = NULL, *back = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    mode_t old = umask(0); /* the mode must not depend on the caller's umask */
    assert_int_equal(ztb_key_save_file(k, path, "pw", 2, 0), ZTB_OK);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ztb_key_load_file(path, "pw", 2, &back), ZTB_OK);
    assert_string_equal(ztb_key_kid(back), ztb_key_kid(k));
    ztb_key_free(back);
    /* not replaced unless asked */
    assert_int_equal(ztb_key_save_file(k, path, NULL, 0, 0), ZTB_ERR_EXISTS);
    assert_int_equal(ztb_key_save_file(k, path, NULL, 0, 1), ZTB_OK);
    assert_int_equal(ztb_key_load_file(path, NULL, 0, &back), ZTB_OK);
    ztb_key_free(back);
    /* a symlink, a loose mode, a missing file */
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(ztb_key_load_file(link, NULL, 0, &back), ZTB_ERR_PERMISSION);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(ztb_key_load_file(path, NULL, 0, &back), ZTB_ERR_PERMISSION);
    snprintf(path, sizeof(path), "%s/none.pem", dir);
    assert_int_equal(ztb_key_load_file(path, NULL, 0, &back), ZTB_ERR_NOT_FOUND);
    ztb_key_free(k);
    pkt_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),        cmocka_unit_test(test_alg_names),
        cmocka_unit_test(test_pem_round_trips), cmocka_unit_test(test_openssl_keys),
        cmocka_unit_test(test_pem_refusals),    cmocka_unit_test(test_public_xy),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
