/*
 * test_keys.c - the HTTP process's side of the keys (keys.c), with the
 * signer served from threads of the test process: the state holds public
 * keys only and what the signer signs verifies; signing in two halves
 * (keys_sign_begin/end) gives the same token, and a cancelled signature is
 * read and dropped, leaving the channel in step; after a rotation a stale state still
 * signs (refresh and retry), also through the two halves; concurrent
 * signers each get their own signature.
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

#include "broker/signer/keys.h"
#include "broker/signer/signer.h"
#include "common/buf.h"
#include "pki/ca.h"
#include "pki/jws.h"
#include "pki/key.h"
#include "pki/keystore.h"

#include "keys_fixture.h"

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

/* The payload of tok if it verifies with ks's keys, else "" (in out). */
static void verified_payload(const struct keys_state *ks, const ztb_buf *tok, char *out, size_t cap)
{
    ztb_buf payload;
    ztb_buf_init(&payload, 1024);
    out[0] = '\0';
    if (ztb_jws_verify(ks->keyset, (const char *)tok->data, tok->len, NULL, NULL, &payload) ==
        ZTB_OK)
        snprintf(out, cap, "%.*s", (int)payload.len, (const char *)payload.data);
    ztb_buf_free(&payload);
}

/* begin + end make a token over exactly the payload given, after what the
 * buffer held before; a cancelled one leaves the channels usable. */
static void test_sign_in_two_halves(void **state)
{
    (void)state;
    struct keys_state *ks = keys_acquire();
    ztb_jws_sign_opts so = {.typ = "at+jwt"};
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    struct keys_sign_pending p;
    assert_int_equal(keys_sign_begin(ks, &so, "{\"n\":1}", 7, &tok, &p), ZTB_OK);
    /* the signing input is there, without its signature yet */
    assert_non_null(memchr(tok.data, '.', tok.len));
    assert_int_equal(keys_sign_end(&p, ks, &so, "{\"n\":1}", 7, &tok), ZTB_OK);
    char got[128];
    verified_payload(ks, &tok, got, sizeof(got));
    assert_string_equal(got, "{\"n\":1}");

    /* refusals in a row (a rate-limited agent hammering): every cancelled
     * signature is answered by the signer; were the answers left unread,
     * a channel would fill until the signer blocked on it and every call
     * on it timed out. 3000 are far beyond a socket buffer. Then every
     * later call still gets its own answer */
    for (int i = 0; i < 3000; i++) {
        ztb_buf_reset(&tok);
        assert_int_equal(keys_sign_begin(ks, &so, "{\"n\":2}", 7, &tok, &p), ZTB_OK);
        keys_sign_cancel(&p);
    }
    for (int i = 0; i < 40; i++) {
        char payload[32];
        int n = snprintf(payload, sizeof(payload), "{\"i\":%d}", i);
        ztb_buf_reset(&tok);
        if (i % 2) {
            assert_int_equal(keys_sign_jws(ks, &so, payload, (size_t)n, &tok), ZTB_OK);
        } else {
            assert_int_equal(keys_sign_begin(ks, &so, payload, (size_t)n, &tok, &p), ZTB_OK);
            assert_int_equal(keys_sign_end(&p, ks, &so, payload, (size_t)n, &tok), ZTB_OK);
        }
        verified_payload(ks, &tok, got, sizeof(got));
        assert_string_equal(got, payload);
    }
    /* a MAC after cancelled signatures is a MAC, not a stale signature */
    uint8_t d[32] = {1}, mac1[32], mac2[32];
    assert_int_equal(keys_sign_begin(ks, &so, "{}", 2, &tok, &p), ZTB_OK);
    keys_sign_cancel(&p);
    assert_int_equal(keys_session_mac(d, mac1), ZTB_OK);
    assert_int_equal(keys_session_mac(d, mac2), ZTB_OK);
    assert_memory_equal(mac1, mac2, 32);
    ztb_buf_free(&tok);
    keys_release(ks);
}

/* A state made before a rotation: begin asks the old kid, the signer
 * refuses it, and end signs again with the new key. */
static void test_two_halves_across_rotation(void **state)
{
    (void)state;
    struct keys_state *old = keys_acquire();
    int64_t now = (int64_t)time(NULL);
    ztb_rotate_result rr;
    assert_int_equal(keys_rotate(now, 1, &rr), ZTB_OK);
    assert_int_equal(keys_rotate(now, 1, &rr), ZTB_OK);
    assert_int_equal(rr.action, ZTB_ROTATE_PROMOTED);
    struct keys_state *cur = keys_acquire();
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    ztb_buf_append_str(&tok, "kept:");
    struct keys_sign_pending p;
    assert_int_equal(keys_sign_begin(old, NULL, "{\"r\":1}", 7, &tok, &p), ZTB_OK);
    assert_int_equal(keys_sign_end(&p, old, NULL, "{\"r\":1}", 7, &tok), ZTB_OK);
    assert_memory_equal(tok.data, "kept:", 5); /* what was there stays */
    ztb_buf t2;
    ztb_buf_init(&t2, 4096);
    ztb_buf_append(&t2, tok.data + 5, tok.len - 5);
    ztb_jws_header h;
    assert_int_equal(ztb_jws_verify(cur->keyset, ztb_buf_cstr(&t2), t2.len, NULL, &h, NULL),
                     ZTB_OK);
    assert_string_equal(h.kid, rr.kid);
    ztb_buf_free(&t2);
    ztb_buf_free(&tok);
    keys_release(cur);
    keys_release(old);
}

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
        cmocka_unit_test_setup_teardown(test_sign_in_two_halves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_halves_across_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_stale_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_batched_signatures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
