/*
 * claims.h - the claims of an access token (RFC 9068 + RFC 9396 + ztb).
 *
 * Written straight into a bounded buffer (no JSON library on the hot path);
 * every string that came from a request is JSON-escaped. The shape is fixed
 * by docs/protocol.md: one aud, one scope, one authorization_details entry
 * (the request's, with actions, locations and identifier set; or a plain
 * ztb_action one), and a "ztb" object with the agent, its generation,
 * single-use and the deciding rule.
 */
#ifndef ZTB_BROKER_CLAIMS_H
#define ZTB_BROKER_CLAIMS_H

#include <stdint.h>

#include <ztb/error.h>

#include "common/buf.h"

struct token_claims {
    const char *iss;
    const char *agent;     /* name */
    const char *spiffe_id; /* sub and client_id */
    const char *audience;
    const char *action;
    const char *resource;     /* NULL or "": none */
    const char *details_json; /* authorization_details object (JSON text), or NULL */
    const char *act_sub;      /* delegation: on whose behalf, or NULL */
    const char *may_act_sub;  /* RFC 8693 may_act: who may present it, or NULL */
    const char *cnf_jkt;      /* DPoP binding, or NULL */
    const char *cnf_x5t;      /* mTLS binding, or NULL */
    const char *rule;         /* the allowing policy rule, or NULL */
    char jti[24];             /* 128 random bits, base64url */
    int64_t iat;
    int64_t exp;
    int64_t generation;
    int single_use;
};

/* Fill c->jti with 128 fresh random bits. */
ztb_err claims_new_jti(struct token_claims *c);

/* Append the claims object to out. */
ztb_err claims_write(const struct token_claims *c, ztb_buf *out);

#endif /* ZTB_BROKER_CLAIMS_H */
