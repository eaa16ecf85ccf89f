/*
 * introspect.c - verifying one of our tokens and reading its revocation
 * state, for introspection, revocation and delegation (see introspect.h;
 * the HTTP side is introspect_http.c, the caller check introspect_caller.c).
 *
 * How it works: the token is verified with the broker's own key set on the
 * one path every verifier takes (wire/access_token.h: the cheap checks
 * first, never a key the token picks; the strict claims reader;
 * introspect_verify: exp on the broker's own clock, no skew); then policy
 * says whether the caller may know about tokens for that audience (and use
 * them up); then store_token_state reads the four revocation entries (and
 * consumes a single-use token when asked) in one script. No local cache:
 * every replica answers from Redis, so a revocation is seen by all of them at
 * once.
 *
 * Must never: call a token live after exp or without the revocation state,
 * or log a token.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/auth/client_auth.h"
#include "broker/http/form.h"
#include "broker/tokens/introspect.h"
#include "broker/signer/keys.h"
#include "broker/signals/revocation.h"
#include "broker/store/store_rev.h"
#include "common/guard.h"
#include "common/secret.h"
#include "policy/policy.h"
#include "wire/access_token.h"
#include "wire/wire.h"

#define TOKEN_MAX 8192

/* The fields the revocation state is read by, pointing into t->tok. */
static void point_fields(struct introspected *t)
{
    const struct claims *c = &t->tok.c;
    t->kid = t->tok.hdr.kid;
    t->aud = claims_str(c, CL_AUD);
    t->sub = claims_str(c, CL_SUB);
    t->jti = claims_str(c, CL_JTI);
    t->agent = claims_str(c, CL_AGENT);
    t->exp = c->exp;
    t->gen = c->gen;
    t->single_use = c->single_use;
}

/* Our signature and the claims' shape (the key set's own, never one the
 * token picks); *skew is the key store's skew. */
static ztb_err verify_signed(const char *tok, size_t len, struct introspected *t, unsigned *skew)
{
    memset(t, 0, sizeof(*t));
    ZTB_ENSURE(tok != NULL && len <= TOKEN_MAX, ZTB_ERR_TOO_LARGE);
    struct keys_state *ks = keys_acquire();
    ZTB_ENSURE(ks != NULL, ZTB_ERR_UNKNOWN_KID);
    *skew = ks->skew;
    ztb_err rv = access_token_verify_signature(ks->keyset, tok, len, &t->tok);
    keys_release(ks);
    ZTB_GUARD(rv);
    ZTB_GUARD(access_token_read_claims(&t->tok));
    point_fields(t);
    /* the ids become Redis key names */
    ZTB_ENSURE(store_id_ok(t->aud) && store_id_ok(t->jti) && store_agent_name_ok(t->agent),
               ZTB_ERR_CLAIMS);
    return ZTB_OK;
}

ztb_err introspect_verify_signature(const char *tok, size_t len, struct introspected *t,
                                    unsigned *skew)
{
    unsigned s = 0;
    ztb_err rv = verify_signed(tok, len, t, &s);
    if (skew != NULL)
        *skew = s;
    if (rv != ZTB_OK) {
        introspected_free(t);
        return rv;
    }
    t->valid = 1;
    return ZTB_OK;
}

ztb_err introspect_verify(const char *tok, size_t len, const char *issuer, int64_t now,
                          struct introspected *t)
{
    unsigned skew = 0;
    ztb_err rv = verify_signed(tok, len, t, &skew);
    /* RFC 7662: active means not expired, on our own clock: no skew on exp.
     * nbf keeps the key store's skew, so a token another replica minted a
     * moment ago (its clock a little ahead) is not "not yet valid" here. */
    struct access_token_expect e = {.issuer = issuer, .now = now, .skew_s = skew, .exp_skew_s = 0};
    if (rv == ZTB_OK)
        rv = access_token_check(&t->tok, &e);
    if (rv != ZTB_OK) {
        introspected_free(t);
        return rv;
    }
    t->valid = 1;
    return ZTB_OK;
}

/* The verified claims as a jansson object for an answer (the payload is
 * trusted now: its signature and shape were checked). NULL: out of memory. */
json_t *introspect_claims_object(const struct introspected *t)
{
    json_error_t e;
    return json_loadb(t->tok.payload, t->tok.payload_len, JSON_REJECT_DUPLICATES, &e);
}

ztb_err introspect_state(const struct introspected *t, int64_t now, int consume)
{
    ZTB_ENSURE(t->valid, ZTB_ERR_INVALID_ARG);
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
    ztb_wipe(t, sizeof(*t)); /* the claims name an agent's actions */
}

ztb_err introspect_token(const char *tok, size_t len, const char *issuer, int64_t now, int consume,
                         json_t **out)
{
    if (out != NULL)
        *out = NULL;
    struct introspected t;
    ztb_err rv = introspect_verify(tok, len, issuer, now, &t);
    if (rv == ZTB_OK)
        rv = introspect_state(&t, now, consume);
    if (rv == ZTB_OK && out != NULL) {
        *out = introspect_claims_object(&t);
        if (*out == NULL)
            rv = ZTB_ERR_NOMEM;
    }
    introspected_free(&t);
    return rv;
}
