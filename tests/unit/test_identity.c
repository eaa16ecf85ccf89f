/* test_identity.c - identity documents checked against the agent's key and name; the credential
 * file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pki/ca.h"
#include "pki/csr.h"
#include "sdk/src/identity.h"
#include "sdk_test.h"

#define ID_BOT "spiffe://ztb.local/agent/bot"

static ztb_ca *ca;
static ztb_key *key, *other;
static ztb_buf cert;

static int setup(void **state)
{
    (void)state;
    ztb_ca_opts o = {.trust_domain = "ztb.local"};
    int64_t now = (int64_t)time(NULL);
    if (ztb_ca_create(&o, now - 10, &ca) != ZTB_OK || ztb_key_generate(&key) != ZTB_OK ||
        ztb_key_generate(&other) != ZTB_OK)
        return -1;
    ztb_buf csr;
    ztb_buf_init(&csr, 16384);
    ztb_buf_init(&cert, 65536);
    int ok = ztb_csr_make(key, ID_BOT, &csr) == ZTB_OK &&
             ztb_ca_issue(ca, csr.data, csr.len, "bot", now, 3600, &cert) == ZTB_OK &&
             ztb_ca_cert_pem(ca, &cert) == ZTB_OK;
    ztb_buf_free(&csr);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ztb_buf_free(&cert);
    ztb_key_free(key);
    ztb_key_free(other);
    ztb_ca_free(ca);
    return 0;
}

static void test_check(void **state)
{
    (void)state;
    int64_t nb, na;
    const char *pem = ztb_buf_cstr(&cert);
    assert_int_equal(identity_check(key, ID_BOT, pem, cert.len, &nb, &na), ZTB_OK);
    assert_true(na - nb >= 3590 && na - nb <= 3610);
    assert_int_equal(identity_check(other, ID_BOT, pem, cert.len, &nb, &na), ZTB_ERR_CERT);
    assert_int_equal(identity_check(key, "spiffe://ztb.local/agent/bob", pem, cert.len, &nb, &na),
                     ZTB_ERR_CERT);
    assert_int_equal(identity_check(key, "spiffe://other.td/agent/bot", pem, cert.len, &nb, &na),
                     ZTB_ERR_CERT);
    assert_int_equal(identity_check(key, ID_BOT, "garbage", 7, &nb, &na), ZTB_ERR_CERT);
    assert_int_equal(identity_check(key, ID_BOT, pem, 0, &nb, &na), ZTB_ERR_CERT);
    /* the CA certificate alone is not an identity */
    const char *ca_start = strstr(pem + 10, "-----BEGIN CERTIFICATE-----");
    assert_non_null(ca_start);
    assert_int_equal(identity_check(key, ID_BOT, ca_start, strlen(ca_start), &nb, &na),
                     ZTB_ERR_CERT);
}

/* The document is read as the agent CA reads it (pki/cert.h): strict PEM. */
static void test_check_reads_strict_pem(void **state)
{
    (void)state;
    int64_t nb, na;
    ztb_buf b;
    ztb_buf_init(&b, 65536);
    ztb_buf_append_str(&b, "Content-Type: text/html\n\n"); /* OpenSSL's reader skips this */
    ztb_buf_append(&b, cert.data, cert.len);
    assert_int_equal(identity_check(key, ID_BOT, ztb_buf_cstr(&b), b.len, &nb, &na), ZTB_ERR_CERT);
    ztb_buf_truncate(&b, 0);
    ztb_buf_append(&b, cert.data, cert.len);
    ztb_buf_append_str(&b, "<html>\n");
    assert_int_equal(identity_check(key, ID_BOT, ztb_buf_cstr(&b), b.len, &nb, &na), ZTB_ERR_CERT);
    /* the leaf and its chain, with blank lines between: fine */
    ztb_buf_truncate(&b, 0);
    ztb_buf_append_str(&b, "\n");
    ztb_buf_append(&b, cert.data, cert.len);
    ztb_buf_append_str(&b, "\n\n");
    assert_int_equal(identity_check(key, ID_BOT, ztb_buf_cstr(&b), b.len, &nb, &na), ZTB_OK);
    ztb_buf_free(&b);
}

static void test_file_round_trip(void **state)
{
    (void)state;
    char *dir = st_tmpdir();
    char path[600];
    snprintf(path, sizeof(path), "%s/agent.pem", dir);
    struct identity id = {
        .key = ztb_key_ref(key), .pem = strdup(ztb_buf_cstr(&cert)), .pem_len = cert.len};
    assert_int_equal(identity_save(path, &id), ZTB_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    struct identity back;
    assert_int_equal(identity_load(path, ID_BOT, &back), ZTB_OK);
    assert_true(ztb_key_same_public(back.key, key));
    assert_true(ztb_key_has_private(back.key));
    assert_int_equal(back.pem_len, cert.len);
    assert_true(back.not_after > back.not_before);
    identity_clear(&back);
    /* saving again replaces it */
    assert_int_equal(identity_save(path, &id), ZTB_OK);
    assert_int_equal(identity_load(path, "spiffe://ztb.local/agent/bob", &back), ZTB_ERR_CERT);
    assert_null(back.key);
    chmod(path, 0644);
    assert_int_equal(identity_load(path, ID_BOT, &back), ZTB_ERR_PERMISSION);
    chmod(path, 0600);
    FILE *f = fopen(path, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(identity_load(path, ID_BOT, &back), ZTB_ERR_KEY);
    f = fopen(path, "w");
    fputs("no key here\n", f);
    fclose(f);
    assert_int_equal(identity_load(path, ID_BOT, &back), ZTB_ERR_KEY);
    unlink(path);
    assert_int_equal(identity_load(path, ID_BOT, &back), ZTB_ERR_NOT_FOUND);
    /* a directory others can write to is refused for the key */
    chmod(dir, 0777);
    assert_int_not_equal(identity_save(path, &id), ZTB_OK);
    chmod(dir, 0700);
    identity_clear(&id);
    st_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_check_reads_strict_pem),
        cmocka_unit_test(test_file_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
