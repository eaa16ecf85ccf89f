/*
 * test_signer.c - the signer's operations (signer.c), over the real
 * channels and codec, with the signer served from threads of the test
 * process (keys_configure not called: the in-process mode). What is checked:
 * identity documents and session MACs made through the signer verify; a
 * SIGN for a kid that is not the active key and malformed records are
 * refused with no signature; one serving thread answers each of several
 * channels on its own channel, key store work included. keys.c's side:
 * test_keys.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "broker/signer/keys.h"
#include "broker/signer/signer.h"
#include "common/buf.h"
#include "pki/ca.h"
#include "pki/csr.h"
#include "pki/jws.h"
#include "pki/key.h"
#include "pki/keystore.h"

#include "keys_fixture.h"

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

/* The channel set served by one drain thread (signer_serve_channels). */
static void *serve_main(void *arg)
{
    const int *fds = arg;
    signer_serve_channels(fds, 3);
    return NULL;
}

static void send_req(int fd, struct signer_req *q, uint32_t op, uint32_t seq, const char *kid)
{
    memset(q, 0, sizeof(*q));
    q->version = SIGNER_PROTO_VERSION;
    q->op = op;
    q->seq = seq;
    if (op == SIGNER_OP_SIGN) {
        memcpy(q->kid, kid, strlen(kid));
        q->count = 2;
        memset(q->digest[0], 3, 32);
        memset(q->digest[1], 4, 32);
    } else {
        q->now = (int64_t)time(NULL);
    }
    assert_int_equal(send(fd, q, sizeof(*q), 0), sizeof(*q));
}

/*
 * One thread serves several channels: a key store operation (STATE, handed
 * to the slow thread) on one, a batch of two signatures on another and a
 * short record on a third are each answered on their own channel; the
 * channel that carried STATE serves again afterwards (it went back into the
 * set); a channel closed by the peer leaves the others served; the call
 * returns once every channel is closed.
 */
static void test_serve_channels(void **state)
{
    (void)state;
    struct keys_state *ks = keys_acquire();
    assert_non_null(ks);
    char kid[SIGNER_KID_FIELD] = "";
    snprintf(kid, sizeof(kid), "%s", ztb_key_kid(ks->active));
    keys_release(ks);
    int ours[3], theirs[3];
    for (int i = 0; i < 3; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
        ours[i] = sv[0];
        theirs[i] = sv[1];
    }
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve_main, theirs), 0);

    static struct signer_state st, raw;
    struct signer_resp r;
    struct signer_req q0, q1;
    send_req(ours[0], &q0, SIGNER_OP_STATE, 10, NULL);
    send_req(ours[1], &q1, SIGNER_OP_SIGN, 11, kid);
    assert_int_equal(send(ours[2], &q1, sizeof(q1) - 1, 0), sizeof(q1) - 1);

    ssize_t n = recv(ours[1], &raw, sizeof(raw), 0);
    assert_int_equal(signer_resp_decode(&q1, &raw, (size_t)n, &r, sizeof(r)), ZTB_OK);
    assert_int_equal(r.err, ZTB_OK);
    assert_int_equal(r.len, 2 * 64);
    n = recv(ours[0], &raw, sizeof(raw), 0);
    assert_int_equal(signer_resp_decode(&q0, &raw, (size_t)n, &st, sizeof(st)), ZTB_OK);
    assert_int_equal(st.err, ZTB_OK);
    assert_string_equal(st.active_kid, kid);
    n = recv(ours[2], &raw, sizeof(raw), 0);
    assert_int_equal(n, sizeof(struct signer_resp));
    assert_int_equal(((const struct signer_resp *)&raw)->err, ZTB_ERR_TRUNCATED);

    /* the STATE channel is served again; then one channel closes */
    send_req(ours[0], &q0, SIGNER_OP_SIGN, 12, kid);
    n = recv(ours[0], &raw, sizeof(raw), 0);
    assert_int_equal(signer_resp_decode(&q0, &raw, (size_t)n, &r, sizeof(r)), ZTB_OK);
    assert_int_equal(r.err, ZTB_OK);
    close(ours[1]);
    send_req(ours[2], &q1, SIGNER_OP_LIST, 13, NULL); /* LIST takes no `now`: refused */
    n = recv(ours[2], &raw, sizeof(raw), 0);
    assert_int_equal(n, sizeof(struct signer_resp));
    assert_int_equal(((const struct signer_resp *)&raw)->err, ZTB_ERR_MALFORMED);
    send_req(ours[2], &q1, SIGNER_OP_SIGN, 14, kid);
    n = recv(ours[2], &raw, sizeof(raw), 0);
    assert_int_equal(signer_resp_decode(&q1, &raw, (size_t)n, &r, sizeof(r)), ZTB_OK);
    assert_int_equal(r.err, ZTB_OK);

    close(ours[0]);
    close(ours[2]);
    assert_int_equal(pthread_join(th, NULL), 0); /* returned: every channel closed */
    for (int i = 0; i < 3; i++)
        close(theirs[i]);
}

/* After a rotation the signer's active key moved on: a request holding the
 * old state still gets a token (signed by the new key after a refresh). */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_mac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_issue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serve_channels, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
