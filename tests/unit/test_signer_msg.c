/*
 * test_signer_msg.c - the signer's message checks: exact lengths, known
 * ops, the fields each op takes, well-formed kids; and the answer checks
 * the HTTP process makes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "broker/signer/signer_msg.h"

#define KID "abcdefghijABCDEFGHIJ0123456789-_abcdefghij" /* 42: one short */

static struct signer_req good_sign(void)
{
    struct signer_req r;
    memset(&r, 0, sizeof(r));
    r.version = SIGNER_PROTO_VERSION;
    r.op = SIGNER_OP_SIGN;
    r.seq = 7;
    memcpy(r.kid, KID "k", 43);
    r.count = 1;
    memset(r.digest[0], 0xab, 32);
    return r;
}

static void test_good_requests(void **state)
{
    (void)state;
    struct signer_req r = good_sign(), out;
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_OK);
    assert_memory_equal(&r, &out, sizeof(r));
    struct signer_req st;
    memset(&st, 0, sizeof(st));
    st.version = SIGNER_PROTO_VERSION;
    st.op = SIGNER_OP_STATE;
    st.now = 1700000000;
    assert_int_equal(signer_req_decode(&st, sizeof(st), &out, NULL), ZTB_OK);
    st.op = SIGNER_OP_ROTATE;
    st.flags = SIGNER_F_FORCE;
    assert_int_equal(signer_req_decode(&st, sizeof(st), &out, NULL), ZTB_OK);
}

/* Any length but the exact one is refused, whatever the bytes. */
static void test_wrong_length(void **state)
{
    (void)state;
    struct signer_req r = good_sign(), out;
    uint8_t big[sizeof(r) + 16];
    memset(big, 0, sizeof(big));
    memcpy(big, &r, sizeof(r));
    const char *why = NULL;
    for (size_t n = 0; n < sizeof(r); n++)
        assert_int_equal(signer_req_decode(big, n, &out, &why), ZTB_ERR_TRUNCATED);
    assert_string_equal(why, "short record");
    for (size_t n = sizeof(r) + 1; n <= sizeof(big); n++)
        assert_int_equal(signer_req_decode(big, n, &out, &why), ZTB_ERR_TOO_LARGE);
}

static void test_unknown_op_and_version(void **state)
{
    (void)state;
    struct signer_req r = good_sign(), out;
    const uint32_t bad_ops[] = {0, 8, 99, 0xffffffffu};
    for (size_t i = 0; i < sizeof(bad_ops) / sizeof(bad_ops[0]); i++) {
        r.op = bad_ops[i];
        assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_UNSUPPORTED);
    }
    r = good_sign();
    r.version = 2;
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_UNSUPPORTED);
}

/* Kids: "" or exactly 43 base64url characters, then only NULs. */
static void test_malformed_kid(void **state)
{
    (void)state;
    struct signer_req r = good_sign(), out;
    const char *why = NULL;
    memset(r.kid, 0, sizeof(r.kid));
    memcpy(r.kid, KID, 42); /* one short */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, &why), ZTB_ERR_MALFORMED);
    assert_string_equal(why, "kid");
    r = good_sign();
    r.kid[3] = '.'; /* not base64url */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
    r = good_sign();
    r.kid[45] = 'x'; /* bytes after the NUL */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
    r = good_sign();
    memset(r.kid, 'A', sizeof(r.kid)); /* no NUL at all */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
    r = good_sign();
    memset(r.kid, 0, sizeof(r.kid)); /* SIGN without a kid */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, &why), ZTB_ERR_MALFORMED);
    assert_string_equal(why, "kid missing");
    r = good_sign();
    r.op = SIGNER_OP_MAC; /* MAC takes no kid */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, &why), ZTB_ERR_MALFORMED);
    assert_string_equal(why, "kid not taken");
}

/* Fields an op does not take must be zero; flags only where allowed. */
static void test_fields_per_op(void **state)
{
    (void)state;
    struct signer_req r = good_sign(), out;
    r.flags = SIGNER_F_FORCE; /* SIGN takes no flags */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
    r = good_sign();
    r.now = 5; /* SIGN takes no time */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
    memset(&r, 0, sizeof(r));
    r.version = SIGNER_PROTO_VERSION;
    r.op = SIGNER_OP_STATE;
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED); /* now 0 */
    r.now = 10;
    r.digest[0][31] = 1; /* STATE takes no digest */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
    r.digest[0][31] = 0;
    r.count = 1; /* nor a count */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
    r.count = 0;
    r.reserved = 1;
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
    r.reserved = 0;
    r.flags = 2; /* unknown flag */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
}

/* A batch: 1..SIGNER_BATCH_MAX digests, and nothing past the count. */
static void test_batch_count(void **state)
{
    (void)state;
    struct signer_req r = good_sign(), out;
    const char *why = NULL;
    r.count = 0;
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, &why), ZTB_ERR_MALFORMED);
    assert_string_equal(why, "count");
    r.count = SIGNER_BATCH_MAX + 1;
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
    r.count = SIGNER_BATCH_MAX;
    memset(r.digest, 0xcd, sizeof(r.digest));
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_OK);
    r.count = 2; /* digest 3 is set but not counted */
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, &why), ZTB_ERR_MALFORMED);
    assert_string_equal(why, "digest not taken");
    r = good_sign();
    r.op = SIGNER_OP_MAC;
    memset(r.kid, 0, sizeof(r.kid));
    r.count = 2; /* MAC takes one */
    memset(r.digest[1], 1, 32);
    assert_int_equal(signer_req_decode(&r, sizeof(r), &out, NULL), ZTB_ERR_MALFORMED);
    /* an answer to a batch of 3 carries 3 signatures */
    struct signer_req q = good_sign();
    q.count = 3;
    struct signer_resp a, ao;
    memset(&a, 0, sizeof(a));
    a.version = SIGNER_PROTO_VERSION;
    a.op = q.op;
    a.seq = q.seq;
    memcpy(a.kid, q.kid, sizeof(a.kid));
    a.len = 64;
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a), &ao, sizeof(ao)), ZTB_ERR_MALFORMED);
    a.len = 192;
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a), &ao, sizeof(ao)), ZTB_OK);
}

/* The HTTP process checks answers as strictly. */
static void test_answers(void **state)
{
    (void)state;
    struct signer_req q = good_sign();
    struct signer_resp a, out;
    memset(&a, 0, sizeof(a));
    a.version = SIGNER_PROTO_VERSION;
    a.op = q.op;
    a.seq = q.seq;
    a.len = 64;
    memcpy(a.kid, q.kid, sizeof(a.kid));
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a), &out, sizeof(out)), ZTB_OK);
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a) - 1, &out, sizeof(out)),
                     ZTB_ERR_TRUNCATED);
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a) + 1, &out, sizeof(out)),
                     ZTB_ERR_TOO_LARGE);
    a.seq = 6; /* an answer to an earlier call */
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a), &out, sizeof(out)), ZTB_ERR_STATE);
    /* ... whatever it answered (a cancelled call of another kind), and
     * whatever its size: it is skipped, not taken for a broken channel */
    a.op = SIGNER_OP_MAC;
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a), &out, sizeof(out)), ZTB_ERR_STATE);
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a) + 100, &out, sizeof(out)), ZTB_ERR_STATE);
    a.op = q.op;
    a.seq = q.seq;
    a.op = SIGNER_OP_MAC; /* our seq, another operation: out of step */
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a), &out, sizeof(out)), ZTB_ERR_MALFORMED);
    a.op = q.op;
    a.len = 63; /* a signature is 64 bytes */
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a), &out, sizeof(out)), ZTB_ERR_MALFORMED);
    a.len = 64;
    a.kid[0] = a.kid[0] == 'a' ? 'b' : 'a'; /* signed with another key */
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a), &out, sizeof(out)), ZTB_ERR_MALFORMED);
    memcpy(a.kid, q.kid, sizeof(a.kid));
    a.len = SIGNER_DATA_MAX + 1;
    assert_int_equal(signer_resp_decode(&q, &a, sizeof(a), &out, sizeof(out)), ZTB_ERR_MALFORMED);
    /* a state answer: text without NULs, then only NULs */
    struct signer_req sq;
    memset(&sq, 0, sizeof(sq));
    sq.op = SIGNER_OP_STATE;
    sq.seq = 9;
    static struct signer_state s, so;
    memset(&s, 0, sizeof(s));
    s.version = SIGNER_PROTO_VERSION;
    s.op = sq.op;
    s.seq = sq.seq;
    memcpy(s.text, "{\"keys\":[]}", 11);
    s.len = 11;
    assert_int_equal(signer_resp_decode(&sq, &s, sizeof(s), &so, sizeof(so)), ZTB_OK);
    s.len = 5; /* bytes after len */
    assert_int_equal(signer_resp_decode(&sq, &s, sizeof(s), &so, sizeof(so)), ZTB_ERR_MALFORMED);
    s.len = SIGNER_TEXT_MAX;
    assert_int_equal(signer_resp_decode(&sq, &s, sizeof(s), &so, sizeof(so)), ZTB_ERR_MALFORMED);
    /* the wrong answer kind for the op, under its seq */
    a.seq = sq.seq;
    assert_int_equal(signer_resp_decode(&sq, &a, sizeof(a), &so, sizeof(so)), ZTB_ERR_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_requests),
        cmocka_unit_test(test_wrong_length),
        cmocka_unit_test(test_unknown_op_and_version),
        cmocka_unit_test(test_malformed_kid),
        cmocka_unit_test(test_fields_per_op),
        cmocka_unit_test(test_batch_count),
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
