/*
 * introspect.c - verifying one of our access tokens for introspection and
 * revocation, and reading its revocation state (see introspect.h). The
 * HTTP handlers are in introspect_http.c, the caller check in
 * introspect_caller.c.
 *
 * How it works: the token is verified with the broker's own key set (the
 * cheap checks first, never a key the token picks) and its claims read
 * (introspect_verify: exp on the broker's own clock, no skew); then
 * store_token_state reads the four revocation entries (and consumes a
 * single-use token when asked) in one script. No local cache: every
 * replica answers from Redis, so a revocation is seen by all of them at
 * once.
 *
 * Must never: answer "active" after exp, answer "active" without the
 * revocation state, or log a token.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/audit.h"
#include "broker/broker.h"
#include "broker/client_auth.h"
#include "broker/form.h"
#include "broker/introspect.h"
#include "broker/keys.h"
#include "broker/revocation.h"
#include "broker/store_rev.h"
#include "common/guard.h"
#include "common/secret.h"
#include "common/wire.h"
#include "pki/jws.h"
#include "policy/policy.h"

#define TOKEN_MAX 8192

/* Verify our signature and read the claims. kid (ZTB_JWS_KID_MAX + 1 bytes)
 * gets the key's kid, *skew the key store's skew. */
static ztb_err verified_claims(const char *tok, size_t len, json_t **claims, char *kid,
                               unsigned *skew)
{
    *claims = NULL;
    ZTB_ENSURE(len <= TOKEN_MAX, ZTB_ERR_TOO_LARGE);
    struct keys_state *ks = keys_acquire();
    ZTB_ENSURE(ks != NULL, ZTB_ERR_UNKNOWN_KID);
    *skew = ks->skew;
    char store[TOKEN_MAX];
    ztb_buf payload;
    ztb_buf_init_fixed(&payload, store, sizeof(store));
    ztb_jws_header hdr;
    ztb_err rv = ztb_jws_verify(ks->keyset, tok, len, NULL, &hdr, &payload);
    keys_release(ks);
    ZTB_GUARD(rv);
    ZTB_ENSURE(ztb_jws_header_typ_is(&hdr, "at+jwt"), ZTB_ERR_TYP);
    ZTB_ENSURE(memchr(store, '\0', payload.len) == NULL, ZTB_ERR_JSON);
    memcpy(kid, hdr.kid, sizeof(hdr.kid));
    json_error_t e;
    json_t *c = json_loadb(store, payload.len, JSON_REJECT_DUPLICATES, &e);
    ztb_wipe(store, sizeof(store));
    if (!json_is_object(c)) {
        json_decref(c);
        return ZTB_ERR_JSON;
    }
    *claims = c;
    return ZTB_OK;
}

ztb_err introspect_verify_signature(const char *tok, size_t len, json_t **claims)
{
    char kid[ZTB_JWS_KID_MAX + 1];
    unsigned skew;
    return verified_claims(tok, len, claims, kid, &skew);
}

static int64_t int_claim(json_t *o, const char *k, int *ok)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v)) {
        *ok = 0;
        return 0;
    }
    return (int64_t)json_integer_value(v);
}

ztb_err introspect_verify(const char *tok, size_t len, int64_t now, struct introspected *t)
{
    memset(t, 0, sizeof(*t));
    json_t *c = NULL;
    unsigned skew = 0;
    ztb_err rv;
    ZTB_TRY(rv, verified_claims(tok, len, &c, t->kid, &skew));
    int ok = 1;
    const char *iss = json_string_value(json_object_get(c, "iss"));
    t->aud = json_string_value(json_object_get(c, "aud"));
    t->sub = json_string_value(json_object_get(c, "sub"));
    t->jti = json_string_value(json_object_get(c, "jti"));
    json_t *z = json_object_get(c, "ztb");
    t->agent = json_string_value(json_object_get(z, "agent"));
    t->exp = int_claim(c, "exp", &ok);
    int64_t nbf = int_claim(c, "nbf", &ok);
    t->gen = int_claim(z, "gen", &ok);
    t->single_use = json_is_true(json_object_get(z, "single_use"));
    ZTB_CHECK(rv, iss != NULL && strcmp(iss, g_broker.issuer) == 0, ZTB_ERR_ISSUER);
    ZTB_CHECK(rv,
              ok && t->aud && t->sub && t->jti && t->agent && store_id_ok(t->aud) &&
                  store_id_ok(t->jti) && store_agent_name_ok(t->agent),
              ZTB_ERR_CLAIMS);
    /* RFC 7662: active means not expired, on our own clock: no skew on exp.
     * nbf keeps the key store's skew, so a token another replica minted a
     * moment ago (its clock a little ahead) is not "not yet valid" here. */
    ZTB_CHECK(rv, now < t->exp, ZTB_ERR_EXPIRED);
    ZTB_CHECK(rv, nbf - (int64_t)skew <= now, ZTB_ERR_NOT_YET_VALID);
    t->claims = c;
    c = NULL;
out:
    json_decref(c);
    if (rv != ZTB_OK)
        memset(t, 0, sizeof(*t));
    return rv;
}

ztb_err introspect_state(const struct introspected *t, int64_t now, int consume)
{
    ZTB_ENSURE(t->claims != NULL, ZTB_ERR_INVALID_ARG);
    struct store_token_state st;
    uint64_t consume_ms = consume && t->single_use ? ztb_wire_used_keep_ms(t->exp, now) : 0;
    ZTB_GUARD(store_token_state(t->jti, t->agent, t->aud, t->kid, t->gen, consume_ms, &st));
    ZTB_ENSURE(!st.revoked, ZTB_ERR_REVOKED);
    ZTB_ENSURE(st.gen >= 0 && t->gen >= st.gen, ZTB_ERR_AGENT_REVOKED);
    ZTB_ENSURE(!st.killed, ZTB_ERR_AUDIENCE_KILLED);
    ZTB_ENSURE(!st.tainted, ZTB_ERR_KEY_TAINTED);
    ZTB_ENSURE(!t->single_use || !st.used, ZTB_ERR_REPLAY);
    return ZTB_OK;
}

void introspected_free(struct introspected *t)
{
    json_decref(t->claims);
    memset(t, 0, sizeof(*t));
}

ztb_err introspect_token(const char *tok, size_t len, int64_t now, int consume, json_t **out)
{
    if (out != NULL)
        *out = NULL;
    struct introspected t;
    ztb_err rv = introspect_verify(tok, len, now, &t);
    if (rv == ZTB_OK)
        rv = introspect_state(&t, now, consume);
    if (rv == ZTB_OK && out != NULL) {
        *out = t.claims;
        t.claims = NULL;
    }
    introspected_free(&t);
    return rv;
}

ztb_err introspect_signed_claims(const char *tok, size_t len, json_t **claims, char *kid,
                                 unsigned *skew)
{
    return verified_claims(tok, len, claims, kid, skew);
}
