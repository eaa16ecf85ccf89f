/*
 * test_ssf_jwks.c - a transmitter's keys from its jwks_uri: fetched at start,
 * fetched again for a new kid (at most once per interval), an unknown kid
 * refused only when the keys could be fetched, and no SET accepted while no
 * keys were ever fetched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/ssf/ssf_jwks.h"
#include "pki/jwk.h"
#include "sdk_test.h"

struct host {
    char jwks[8192];
    unsigned status;
    int fetches;
};

static void handler(void *ud, const struct st_req *rq, struct st_resp *rs)
{
    struct host *h = ud;
    if (strcmp(rq->url, "/jwks") != 0)
        return;
    h->fetches++;
    st_resp_json(rs, h->status, h->jwks);
}

/* Serve keys[0..n) (under s->mu: the server thread reads h). */
static void publish(struct st_server *s, struct host *h, ztb_key *const *keys, size_t n)
{
    pthread_mutex_lock(&s->mu);
    ztb_buf b;
    ztb_buf_init_fixed(&b, h->jwks, sizeof(h->jwks));
    assert_int_equal(ztb_jwks_render((const ztb_key *const *)keys, n, &b), ZTB_OK);
    pthread_mutex_unlock(&s->mu);
}

static void set_status(struct st_server *s, struct host *h, unsigned status)
{
    pthread_mutex_lock(&s->mu);
    h->status = status;
    pthread_mutex_unlock(&s->mu);
}

static int fetches(struct st_server *s, struct host *h)
{
    pthread_mutex_lock(&s->mu);
    int n = h->fetches;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ssf_jwks_verify of a SET-like JWS signed by k; why[cap] gets the reason. */
static ztb_err verify(struct ssf_jwks *j, const ztb_key *k, char *why, size_t cap)
{
    const char *tok = st_sign(k, NULL, "{\"iss\":\"https://idp.test\",\"jti\":\"1\"}");
    char text[1024];
    ztb_buf payload;
    ztb_buf_init_fixed(&payload, text, sizeof(text));
    ztb_jws_verify_opts vo = {.max_len = 4096};
    ztb_jws_header hdr;
    why[0] = '\0';
    return ssf_jwks_verify(j, tok, strlen(tok), &vo, &hdr, &payload, why, cap);
}

static void test_rotation_and_unknown_kids(void **state)
{
    (void)state;
    ztb_key *k1, *k2, *k3;
    assert_int_equal(ztb_key_generate(&k1), ZTB_OK);
    assert_int_equal(ztb_key_generate(&k2), ZTB_OK);
    assert_int_equal(ztb_key_generate(&k3), ZTB_OK);
    struct host h = {.status = 200};
    struct st_server s;
    st_server_start(&s, handler, &h);
    publish(&s, &h, &k1, 1);
    char url[128], why[300];
    snprintf(url, sizeof(url), "%s/jwks", s.base);
    struct ssf_jwks *j;
    assert_int_equal(ssf_jwks_new(url, &j), ZTB_OK);
    ssf_jwks_start(j, "idp");
    assert_int_equal(fetches(&s, &h), 1);
    assert_int_equal(verify(j, k1, why, sizeof(why)), ZTB_OK);
    assert_int_equal(fetches(&s, &h), 1);

    /* the transmitter rotates: its first SET with the new kid fetches again */
    publish(&s, &h, &k2, 1);
    assert_int_equal(verify(j, k2, why, sizeof(why)), ZTB_OK);
    assert_int_equal(fetches(&s, &h), 2);
    /* the old key is gone from its JWKS, so from ours */
    assert_int_equal(verify(j, k1, why, sizeof(why)), ZTB_ERR_UNKNOWN_KID);
    /* a kid nobody published, right after: refused without a fetch */
    for (int i = 0; i < 20; i++)
        assert_int_equal(verify(j, k3, why, sizeof(why)), ZTB_ERR_UNKNOWN_KID);
    assert_int_equal(fetches(&s, &h), 2);
    ssf_jwks_free(j);

    /* the keys were fetched, then the JWKS goes down: a new kid is not
     * refused as unknown (the transmitter may well have published it) but
     * unavailable, so the transmitter sends it again later; the kids in
     * force still verify */
    publish(&s, &h, &k1, 1);
    assert_int_equal(ssf_jwks_new(url, &j), ZTB_OK);
    ssf_jwks_start(j, "idp");
    set_status(&s, &h, 503);
    assert_int_equal(verify(j, k2, why, sizeof(why)), ZTB_ERR_UNAVAILABLE);
    assert_non_null(strstr(why, "cannot be fetched again"));
    assert_non_null(strstr(why, "unexpected HTTP status"));
    assert_int_equal(verify(j, k1, why, sizeof(why)), ZTB_OK);
    ssf_jwks_free(j);

    /* never fetched: nothing verifies, not even with a kid it would have */
    assert_int_equal(ssf_jwks_new(url, &j), ZTB_OK);
    ssf_jwks_start(j, "idp");
    assert_int_equal(verify(j, k1, why, sizeof(why)), ZTB_ERR_UNAVAILABLE);
    assert_non_null(strstr(why, "cannot be fetched"));
    ssf_jwks_free(j);

    st_server_stop(&s);
    ztb_key_free(k1);
    ztb_key_free(k2);
    ztb_key_free(k3);
}

static void test_bad_url(void **state)
{
    (void)state;
    struct ssf_jwks *j = (struct ssf_jwks *)1;
    assert_int_equal(ssf_jwks_new("ftp://idp.test/jwks", &j), ZTB_ERR_INVALID_ARG);
    assert_null(j);
    assert_int_equal(ssf_jwks_new(NULL, &j), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_and_unknown_kids),
        cmocka_unit_test(test_bad_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
