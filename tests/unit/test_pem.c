/* test_pem.c - strict PEM blocks and PKCS#8 private keys by label. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/pem.h>

#include "pki/pem.h"

/* "hello" and "world!" as PEM bodies */
#define B1 "-----BEGIN THING-----\naGVsbG8=\n-----END THING-----\n"
#define B2 "-----BEGIN OTHER-----\nd29ybGQh\n-----END OTHER-----\n"

static void test_blocks(void **state)
{
    (void)state;
    ztb_pem_block b[4];
    size_t n = 0;
    const char *two = "\n " B1 "\n\n" B2 "  \n";
    assert_int_equal(ztb_pem_read_blocks(two, strlen(two), b, 4, &n), ZTB_OK);
    assert_int_equal(n, 2);
    assert_string_equal(b[0].label, "THING");
    assert_int_equal(b[0].len, 5);
    assert_memory_equal(b[0].der, "hello", 5);
    assert_string_equal(b[1].label, "OTHER");
    assert_memory_equal(b[1].der, "world!", 6);
    ztb_pem_blocks_free(b, n);
    assert_true(ztb_pem_looks_like(two, strlen(two)));
    assert_false(ztb_pem_looks_like("\x30\x82", 2));

    const char *bad[] = {
        "",
        "   \n",
        "junk" B1,
        B1 "junk",
        B1 "x" B2,
        "-----BEGIN THING-----\naGVsbG8=\n-----END OTHER-----\n",
        "-----BEGIN THING-----\naGVsbG8=\n",
        "-----BEGIN THING-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,"
        "00000000000000000000000000000000\n\naGVsbG8=\n-----END THING-----\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ztb_pem_read_blocks(bad[i], strlen(bad[i]), b, 4, &n) != ZTB_ERR_MALFORMED)
            fail_msg("accepted case %zu", i);
        assert_int_equal(n, 0);
    }
    assert_int_equal(ztb_pem_read_blocks(two, strlen(two), b, 1, &n), ZTB_ERR_TOO_LARGE);
    assert_int_equal(n, 0);
}

static void test_read_key_labels(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PKCS8PrivateKey(bio, rsa, NULL, NULL, 0, NULL, NULL);
    char *p;
    long len = BIO_get_mem_data(bio, &p);
    EVP_PKEY *k = NULL;
    int enc = -1;
    /* any key type is read here (callers check types) */
    assert_int_equal(ztb_pem_read_key(p, (size_t)len, NULL, 0, 0, &k, &enc), ZTB_OK);
    assert_int_equal(enc, 0);
    assert_int_equal(EVP_PKEY_eq(k, rsa), 1);
    EVP_PKEY_free(k);
    BIO_free(bio);
    /* public keys only when allowed */
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, rsa);
    len = BIO_get_mem_data(bio, &p);
    assert_int_equal(ztb_pem_read_key(p, (size_t)len, NULL, 0, 0, &k, NULL), ZTB_ERR_KEY);
    assert_int_equal(ztb_pem_read_key(p, (size_t)len, NULL, 0, 1, &k, NULL), ZTB_OK);
    EVP_PKEY_free(k);
    BIO_free(bio);
    /* other labels */
    assert_int_equal(ztb_pem_read_key(B1, strlen(B1), NULL, 0, 1, &k, NULL), ZTB_ERR_KEY);
    /* a PRIVATE KEY block whose body is not PKCS#8 */
    const char *fake = "-----BEGIN PRIVATE KEY-----\naGVsbG8=\n-----END PRIVATE KEY-----\n";
    assert_int_equal(ztb_pem_read_key(fake, strlen(fake), NULL, 0, 0, &k, NULL), ZTB_ERR_KEY);
    EVP_PKEY_free(rsa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_read_key_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
