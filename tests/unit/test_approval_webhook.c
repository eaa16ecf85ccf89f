/*
 * test_approval_webhook.c - broker/tokens/approval_webhook.c: the body of a
 * notification, and its ZTB-Signature: a detached compact JWS that a
 * receiver verifies with the broker's JWKS after putting the body back
 * in; an edited body, a signature from another key, or a body signed
 * under another typ do not verify as a notification. The signer is played
 * by a key in this process (mocks only in unit tests).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/tokens/approval_webhook.h"
#include "common/base64url.h"
#include "pki/jwk.h"
#include "pki/jws.h"
#include "pki/key.h"

static ztb_key *key, *other;

static ztb_err sign_with(void *arg, const char *typ, const void *payload, size_t n, ztb_buf *jws)
{
    const ztb_jws_sign_opts o = {.typ = typ};
    return ztb_jws_sign(arg, &o, payload, n, jws);
}

static ztb_err sign_broken(void *arg, const char *typ, const void *payload, size_t n, ztb_buf *jws)
{
    (void)arg;
    (void)typ;
    (void)payload;
    (void)n;
    ztb_buf_append_str(jws, "not-a-jws");
    return ZTB_OK;
}

static ztb_err sign_down(void *arg, const char *typ, const void *payload, size_t n, ztb_buf *jws)
{
    (void)arg;
    (void)typ;
    (void)payload;
    (void)n;
    (void)jws;
    return ZTB_ERR_UNAVAILABLE;
}

static struct store_approval sample(void)
{
    struct store_approval a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "apr_AAAAAAAAAAAAAAAAAAAAAA");
    snprintf(a.agent, sizeof(a.agent), "billing-bot");
    snprintf(a.action, sizeof(a.action), "payments:refund");
    snprintf(a.audience, sizeof(a.audience), "payments");
    snprintf(a.resource, sizeof(a.resource), "orders/1");
    snprintf(a.details, sizeof(a.details), "[{\"type\":\"payment\",\"amount\":200}]");
    snprintf(a.rule, sizeof(a.rule), "refund-large");
    snprintf(a.group, sizeof(a.group), "finance");
    snprintf(a.status, sizeof(a.status), "pending");
    a.needed = 1;
    a.created = 1000;
    a.expires = 1120;
    return a;
}

/*
 * What a receiver does: body + the header value -> verified against the
 * JWKS (text) or not. Returns the verification's result; typ into typ.
 */
static ztb_err receive(const char *jwks, const char *body, const char *sig, char *typ, size_t cap)
{
    const char *dots = strstr(sig, "..");
    if (dots == NULL)
        return ZTB_ERR_JWS_FORMAT;
    ztb_buf tok;
    ztb_buf_init(&tok, 1 << 16);
    ztb_buf_append(&tok, sig, (size_t)(dots - sig) + 1);
    assert_int_equal(ztb_b64url_encode_buf(&tok, body, strlen(body)), ZTB_OK);
    ztb_buf_append_str(&tok, dots + 1);
    ztb_keyset *ks = NULL;
    assert_int_equal(ztb_jwks_parse(jwks, strlen(jwks), 0, &ks), ZTB_OK);
    ztb_jws_header hdr;
    ztb_err rv = ztb_jws_verify(ks, ztb_buf_cstr(&tok), tok.len, NULL, &hdr, NULL);
    if (rv == ZTB_OK)
        snprintf(typ, cap, "%.*s", (int)(cap - 1), hdr.typ);
    ztb_keyset_free(ks);
    ztb_buf_free(&tok);
    return rv;
}

static void test_body(void **state)
{
    (void)state;
    struct store_approval a = sample();
    ztb_buf b;
    ztb_buf_init(&b, 1 << 16);
    assert_int_equal(
        approval_webhook_body("https://broker.example", "approval.requested", &a, 1005, &b),
        ZTB_OK);
    json_error_t e;
    json_t *j = json_loadb((const char *)b.data, b.len, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "iss")), "https://broker.example");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "approval.requested");
    assert_int_equal(json_integer_value(json_object_get(j, "iat")), 1005);
    assert_int_equal(strncmp(json_string_value(json_object_get(j, "jti")), "whk_", 4), 0);
    assert_string_equal(json_string_value(json_object_get(j, "approve")),
                        "ztbctl approvals approve apr_AAAAAAAAAAAAAAAAAAAAAA");
    json_t *ap = json_object_get(j, "approval");
    assert_string_equal(json_string_value(json_object_get(ap, "id")), a.id);
    assert_string_equal(json_string_value(json_object_get(ap, "agent")), "billing-bot");
    assert_string_equal(json_string_value(json_object_get(ap, "rule")), "refund-large");
    assert_string_equal(json_string_value(json_object_get(ap, "group")), "finance");
    assert_string_equal(json_string_value(json_object_get(ap, "authorization_details")), a.details);
    /* two notifications of one approval are told apart by jti */
    ztb_buf b2;
    ztb_buf_init(&b2, 1 << 16);
    assert_int_equal(approval_webhook_body("x", "approval.requested", &a, 1005, &b2), ZTB_OK);
    json_t *j2 = json_loadb((const char *)b2.data, b2.len, 0, &e);
    assert_string_not_equal(json_string_value(json_object_get(j, "jti")),
                            json_string_value(json_object_get(j2, "jti")));
    json_decref(j);
    json_decref(j2);
    ztb_buf_free(&b);
    ztb_buf_free(&b2);
}

static void test_signature_verifies_with_the_jwks(void **state)
{
    (void)state;
    const ztb_key *pub[] = {key};
    ztb_buf jwks, other_jwks;
    ztb_buf_init(&jwks, 1 << 16);
    ztb_buf_init(&other_jwks, 1 << 16);
    assert_int_equal(ztb_jwks_render(pub, 1, &jwks), ZTB_OK);
    const ztb_key *opub[] = {other};
    assert_int_equal(ztb_jwks_render(opub, 1, &other_jwks), ZTB_OK);

    const char *body = "{\"event\":\"approval.requested\",\"approval\":{\"id\":\"apr_x\"}}";
    ztb_buf sig;
    ztb_buf_init(&sig, 8192);
    assert_int_equal(approval_webhook_signature(sign_with, key, body, strlen(body), &sig), ZTB_OK);
    const char *s = ztb_buf_cstr(&sig);
    assert_non_null(strstr(s, "..")); /* detached: no payload segment */
    char typ[ZTB_JWS_TYP_MAX + 1] = "";
    assert_int_equal(receive(ztb_buf_cstr(&jwks), body, s, typ, sizeof(typ)), ZTB_OK);
    assert_string_equal(typ, APPROVAL_WEBHOOK_TYP);

    /* the attacks: an edited body, the wrong broker's keys, a forged key */
    const char *edited = "{\"event\":\"approval.requested\",\"approval\":{\"id\":\"apr_y\"}}";
    assert_int_not_equal(receive(ztb_buf_cstr(&jwks), edited, s, typ, sizeof(typ)), ZTB_OK);
    assert_int_not_equal(receive(ztb_buf_cstr(&other_jwks), body, s, typ, sizeof(typ)), ZTB_OK);
    ztb_buf forged;
    ztb_buf_init(&forged, 8192);
    assert_int_equal(approval_webhook_signature(sign_with, other, body, strlen(body), &forged),
                     ZTB_OK);
    assert_int_not_equal(
        receive(ztb_buf_cstr(&jwks), body, ztb_buf_cstr(&forged), typ, sizeof(typ)), ZTB_OK);
    ztb_buf_free(&forged);
    ztb_buf_free(&sig);
    ztb_buf_free(&jwks);
    ztb_buf_free(&other_jwks);
}

static void test_signer_trouble(void **state)
{
    (void)state;
    ztb_buf sig;
    ztb_buf_init(&sig, 8192);
    assert_int_equal(approval_webhook_signature(sign_down, NULL, "x", 1, &sig),
                     ZTB_ERR_UNAVAILABLE);
    assert_int_equal(approval_webhook_signature(sign_broken, NULL, "x", 1, &sig),
                     ZTB_ERR_MALFORMED);
    assert_int_equal(sig.len, 0);
    ztb_buf_free(&sig);
}

static void test_start_refuses_clear_text(void **state)
{
    (void)state;
    char err[400];
    struct approval_webhook_opts o = {.url = "http://hooks.example.org/x", .sign = sign_with};
    assert_int_equal(approval_webhook_start(&o, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "https://"));
    assert_false(approval_webhook_on());
    /* with nothing started, notifying does nothing (and does not crash) */
    struct store_approval a = sample();
    approval_webhook_requested(&a);
    approval_webhook_resolved(&a);
    approval_webhook_stop();
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(ztb_key_generate(&key), ZTB_OK);
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_key_free(key);
    ztb_key_free(other);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_signature_verifies_with_the_jwks),
        cmocka_unit_test(test_signer_trouble),
        cmocka_unit_test(test_start_refuses_clear_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
