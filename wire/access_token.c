/*
 * access_token.c - verify a ztb access token (see access_token.h).
 *
 * Nothing here allocates or takes a lock: the SDK's verifier runs it on
 * every request, at the cost of one ECDSA verification and one pass of the
 * claims reader.
 */
#include <string.h>

#include "common/guard.h"
#include "wire/access_token.h"
#include "wire/wire.h"

static int str_eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

ztb_err access_token_verify_signature(const ztb_keyset *ks, const char *tok, size_t len,
                                      struct access_token *t)
{
    ZTB_ENSURE(t != NULL, ZTB_ERR_INVALID_ARG);
    t->signed_ok = t->claims_ok = 0;
    t->payload_len = 0;
    ZTB_ENSURE(ks != NULL && tok != NULL, ZTB_ERR_INVALID_ARG);
    ztb_buf pb;
    ztb_buf_init_fixed(&pb, t->payload, sizeof(t->payload) - 1);
    ztb_err rv = ztb_jws_verify(ks, tok, len, NULL, &t->hdr, &pb);
    if (rv == ZTB_ERR_TOO_LARGE && len <= ZTB_JWS_DEFAULT_MAX)
        rv = ZTB_ERR_CLAIMS; /* the payload is over the claims limit */
    ZTB_GUARD(rv);
    t->payload_len = pb.len;
    t->payload[pb.len] = '\0';
    t->signed_ok = 1;
    return ZTB_OK;
}

ztb_err access_token_read_claims(struct access_token *t)
{
    ZTB_ENSURE(t != NULL && t->signed_ok, ZTB_ERR_INVALID_ARG);
    t->claims_ok = 0;
    ZTB_ENSURE(ztb_jws_header_typ_is(&t->hdr, ZTB_WIRE_TYP_ACCESS) ||
                   ztb_jws_header_typ_is(&t->hdr, ZTB_WIRE_TYP_ACCESS_LONG),
               ZTB_ERR_TYP);
    ZTB_GUARD(claims_parse(t->payload, t->payload_len, &t->c));
    t->claims_ok = 1;
    return ZTB_OK;
}

ztb_err access_token_check(const struct access_token *t, const struct access_token_expect *e)
{
    ZTB_ENSURE(t != NULL && e != NULL && t->claims_ok, ZTB_ERR_INVALID_ARG);
    const struct claims *c = &t->c;
    ZTB_ENSURE(str_eq(claims_str(c, CL_ISS), e->issuer), ZTB_ERR_ISSUER);
    ZTB_ENSURE(e->audience == NULL || str_eq(claims_str(c, CL_AUD), e->audience), ZTB_ERR_AUDIENCE);
    ZTB_ENSURE(e->now < c->exp + (int64_t)e->exp_skew_s, ZTB_ERR_EXPIRED);
    ZTB_ENSURE(!c->has_nbf || c->nbf <= e->now + (int64_t)e->skew_s, ZTB_ERR_NOT_YET_VALID);
    ZTB_ENSURE(c->iat <= e->now + (int64_t)e->skew_s, ZTB_ERR_IAT);
    return ZTB_OK;
}

ztb_err access_token_verify(const ztb_keyset *ks, const char *tok, size_t len,
                            const struct access_token_expect *e, struct access_token *t)
{
    ZTB_GUARD(access_token_verify_signature(ks, tok, len, t));
    ZTB_GUARD(access_token_read_claims(t));
    return access_token_check(t, e);
}
