/*
 * test_signer.c - the signer's operations, through keys.c and the real
 * channels and codec, with the signer served from threads of the test
 * process (keys_configure not called: the in-process mode). What is checked:
 * the HTTP side holds public keys only; tokens, identity documents and
 * session MACs made through the signer verify; a SIGN for a kid that is
 * not the active key and malformed records are refused with no signature;
 * after a rotation a stale state still signs (refresh and retry).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "broker/keys.h"
#include "broker/signer.h"
#include "common/buf.h"
#include "pki/ca.h"
#include "pki/csr.h"
#include "pki/jws.h"
#include "pki/key.h"
#include "pki/keystore.h"

#define TD "example.org"

struct fix {
    char dir[64];
    char keys[128];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ztb-signer-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->keys, sizeof(f->keys), "%s/keys", f->dir);
    int64_t now = (int64_t)time(NULL);
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(f->keys, NULL, now, &ks), ZTB_OK);
    ztb_keystore_close(ks);
    ztb_ca_opts o = {.trust_domain = TD};
    ztb_ca *ca = NULL;
    assert_int_equal(ztb_ca_create(&o, now - 60, &ca), ZTB_OK);
    assert_int_equal(ztb_ca_save(ca, f->keys, NULL, 0), ZTB_OK);
    ztb_ca_free(ca);
    char err[512] = "";
    assert_int_equal(keys_open(f->keys, NULL, now, err, sizeof(err)), ZTB_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    keys_close();
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_public_only_and_token_verifies(void **state)
{
    (void)state;
    struct keys_state *ks = keys_acquire();
    assert_non_null(ks);
    assert_non_null(ks->active);
    assert_false(ztb_key_has_private(ks->active)); /* this side has no private key */
    assert_true(keys_can_sign());
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    ztb_jws_sign_opts so = {.typ = "at+jwt"};
    assert_int_equal(keys_sign_jws(ks, &so, "{\"a\":1}", 7, &tok), ZTB_OK);
    ztb_jws_header h;
    ztb_buf payload;
    ztb_buf_init(&payload, 1024);
    assert_int_equal(ztb_jws_verify(ks->keyset, ztb_buf_cstr(&tok), tok.len, NULL, &h, &payload),
                     ZTB_OK);
    assert_int_equal(payload.len, 7);
    ztb_buf_free(&payload);
    ztb_buf_free(&tok);
    keys_release(ks);
}

/* The signer refuses a kid that is not its active key, and bad records. */
static void test_refusals(void **state)
{
    (void)state;
    static struct signer_state out;
    struct signer_req q;
    memset(&q, 0, sizeof(q));
    q.version = SIGNER_PROTO_VERSION;
    q.op = SIGNER_OP_SIGN;
    q.seq = 42;
    memset(q.kid, 'Q', 43); /* well-formed, not ours */
    q.count = 1;
    memset(q.digest[0], 1, 32);
    size_t n = signer_handle(&q, sizeof(q), &out, sizeof(out));
    assert_int_equal(n, sizeof(struct signer_resp));
    const struct signer_resp *r = (const struct signer_resp *)&out;
    assert_int_equal(r->err, ZTB_ERR_UNKNOWN_KID);
    assert_int_equal(r->seq, 42);
    assert_int_equal(r->len, 0);
    static const uint8_t zero[SIGNER_DATA_MAX];
    assert_memory_equal(r->data, zero, sizeof(zero));
    /* one byte short, one byte long, an unknown op: refused, no signature */
    uint8_t big[sizeof(q) + 1];
    memcpy(big, &q, sizeof(q));
    big[sizeof(q)] = 0;
    assert_int_equal(signer_handle(&q, sizeof(q) - 1, &out, sizeof(out)),
                     sizeof(struct signer_resp));
    assert_int_equal(r->err, ZTB_ERR_TRUNCATED);
    assert_memory_equal(r->data, zero, sizeof(zero));
    signer_handle(big, sizeof(big), &out, sizeof(out));
    assert_int_equal(r->err, ZTB_ERR_TOO_LARGE);
    q.op = 77;
    signer_handle(&q, sizeof(q), &out, sizeof(out));
    assert_int_equal(r->err, ZTB_ERR_UNSUPPORTED);
    assert_int_equal(r->seq, 42); /* right size: the caller's seq is answered */
}

/* The session MAC is HMAC-SHA256 with the key file's 32 bytes. */
static void test_session_mac(void **state)
{
    struct fix *f = *state;
    char path[200];
    snprintf(path, sizeof(path), "%s/session.key", f->keys);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t key[32];
    assert_int_equal(fread(key, 1, 32, fp), 32);
    fclose(fp);
    uint8_t d[32], got[32], want[32];
    memset(d, 7, sizeof(d));
    unsigned int len = 0;
    assert_non_null(HMAC(EVP_sha256(), key, 32, d, 32, want, &len));
    assert_int_equal(keys_session_mac(d, got), ZTB_OK);
    assert_memory_equal(got, want, 32);
}

/* An identity document built here and signed by the signer's CA key. */
static void test_ca_issue(void **state)
{
    (void)state;
    ztb_key *agent = NULL;
    assert_int_equal(ztb_key_generate(&agent), ZTB_OK);
    ztb_buf csr, doc;
    ztb_buf_init(&csr, ZTB_CSR_MAX);
    ztb_buf_init(&doc, 16384);
    assert_int_equal(ztb_csr_make(agent, "spiffe://" TD "/agent/a1", &csr), ZTB_OK);
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(keys_ca_issue(csr.data, csr.len, "a1", now, 600, &doc), ZTB_OK);
    char name[ZTB_AGENT_NAME_MAX + 1];
    assert_non_null(keys_ca());
    assert_int_equal(
        ztb_ca_verify_identity(keys_ca(), ztb_buf_cstr(&doc), doc.len, now, name, sizeof(name)),
        ZTB_OK);
    assert_string_equal(name, "a1");
    ztb_buf_free(&csr);
    ztb_buf_free(&doc);
    ztb_key_free(agent);
}

/* After a rotation the signer's active key moved on: a request holding the
 * old state still gets a token (signed by the new key after a refresh). */
static void test_rotation_and_stale_state(void **state)
{
    (void)state;
    struct keys_state *old = keys_acquire();
    char oldkid[ZTB_KID_LEN + 1];
    snprintf(oldkid, sizeof(oldkid), "%s", ztb_key_kid(old->active));
    int64_t now = (int64_t)time(NULL);
    ztb_rotate_result rr;
    assert_int_equal(keys_rotate(now, 1, &rr), ZTB_OK);
    assert_int_equal(keys_rotate(now, 1, &rr), ZTB_OK);
    assert_int_equal(rr.action, ZTB_ROTATE_PROMOTED);
    struct keys_state *cur = keys_acquire();
    assert_string_equal(ztb_key_kid(cur->active), rr.kid);
    assert_string_not_equal(rr.kid, oldkid);
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    assert_int_equal(keys_sign_jws(old, NULL, "{}", 2, &tok), ZTB_OK);
    ztb_jws_header h;
    assert_int_equal(ztb_jws_verify(cur->keyset, ztb_buf_cstr(&tok), tok.len, NULL, &h, NULL),
                     ZTB_OK);
    char *list = NULL;
    assert_int_equal(keys_list_json(&list), ZTB_OK);
    assert_non_null(strstr(list, rr.kid));
    free(list);
    assert_int_equal(keys_retire("not-a-kid", now, 1), ZTB_ERR_NOT_FOUND);
    ztb_buf_free(&tok);
    keys_release(cur);
    keys_release(old);
}

struct signer_job {
    int ok;
};

static void *sign_many(void *arg)
{
    struct signer_job *j = arg;
    struct keys_state *ks = keys_acquire();
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    j->ok = 1;
    for (int i = 0; i < 50 && j->ok; i++) {
        char payload[64];
        int n = snprintf(payload, sizeof(payload), "{\"i\":%d,\"t\":%p}", i, (void *)j);
        ztb_buf_reset(&tok);
        j->ok = keys_sign_jws(ks, NULL, payload, (size_t)n, &tok) == ZTB_OK &&
                ztb_jws_verify(ks->keyset, ztb_buf_cstr(&tok), tok.len, NULL, NULL, NULL) == ZTB_OK;
    }
    ztb_buf_free(&tok);
    keys_release(ks);
    return NULL;
}

/* Concurrent signers share round trips (batches): every token still gets
 * its own signature, over its own input. */
static void test_concurrent_batched_signatures(void **state)
{
    (void)state;
    pthread_t th[8];
    struct signer_job jobs[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sign_many, &jobs[i]), 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_true(jobs[i].ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_public_only_and_token_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_batched_signatures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_mac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_issue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_stale_state, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
