/*
 * claims.h - the claims of a ztb access token (docs/protocol.md, "The access
 * token"): the one writer (the broker, claims_write.c) and the one strict
 * reader (verifiers, introspection and delegation, claims_read.c), so the
 * shape is defined in one place and a change to it changes both sides.
 *
 * Writing: claims_write() puts the claims straight into a bounded buffer (no
 * JSON library on the hot path); every string that came from a request is
 * JSON-escaped. The shape is fixed: one aud, one scope, one
 * authorization_details entry (the request's, with actions, locations and
 * identifier set; or a plain ztb_action one), optional act, may_act and cnf,
 * and a "ztb" object with the agent, its generation, single-use and the
 * deciding rule.
 *
 * Reading: claims_parse() runs on every token a gateway verifies, after its signature
 * checked out, so it is a single pass of the strict JSON reader
 * (json_reader.h) with no allocation. It checks shape, not policy: every
 * claim ztb relies on is present with the right type, strings are bounded
 * and printable, and the one `ztb_action` authorization detail agrees with
 * `scope` and `aud`. Whether the values are acceptable (issuer, audience,
 * times, action, resource, binding, revocation) is the verifier's decision.
 *
 * Refused with CLAIMS (JSON when the payload is not strict JSON): a missing
 * iss, sub, aud, exp, iat, jti, scope or ztb (with agent and gen); a claim of
 * the wrong type (aud must be one string; times integers); a string longer
 * than its limit or holding control characters; an authorization_details
 * that is not exactly one object with a string "type" whose actions are
 * [scope] and whose locations are [aud]; exp not after iat. Members ztb does
 * not know are skipped (after being checked as strict JSON), except inside
 * cnf, where an unknown member is remembered so the verifier can refuse a
 * binding it cannot check. may_act, when present, must be an object
 * with a string "sub". The authorization detail object is kept whole
 * (its raw JSON), since its other members (e.g. "amount") are what the
 * request asked for and the policy allowed.
 *
 * The parsed strings live inside the struct claims (copied, unescaped and
 * NUL-terminated), so it stays valid when the payload goes away.
 */
#ifndef ZTB_WIRE_CLAIMS_H
#define ZTB_WIRE_CLAIMS_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/buf.h"

/* ---- writing (the broker) ------------------------------------------------- */

/* What an issued token says; every string is copied into the claims, escaped. */
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

/* Append the claims object to out. INVALID_ARG without iss, agent,
 * spiffe_id, audience or action; else the buffer's error (TOO_LARGE). */
ztb_err claims_write(const struct token_claims *c, ztb_buf *out);

/* ---- reading (every verifier) ----------------------------------------------- */

/* Largest payload accepted (a token is at most 8 KiB, so its payload < 6 KiB). */
#define CLAIMS_PAYLOAD_MAX 6144

/* Longest value of each kind of string claim, in bytes. */
#define CLAIMS_URI_MAX      512 /* iss, sub, client_id, act.sub */
#define CLAIMS_NAME_MAX     256 /* aud, scope, agent, rule */
#define CLAIMS_ID_MAX       128 /* jti, cnf values */
#define CLAIMS_RESOURCE_MAX 1024

/* Which string claims were found. */
enum claims_str {
    CL_ISS = 0,
    CL_SUB,
    CL_AUD,
    CL_JTI,
    CL_CLIENT_ID,
    CL_SCOPE,
    CL_RESOURCE, /* authorization_details[0].identifier */
    CL_ACT_SUB,
    CL_MAY_ACT_SUB, /* may_act.sub */
    CL_JKT,         /* cnf.jkt */
    CL_X5T,         /* cnf["x5t#S256"] */
    CL_AGENT,       /* ztb.agent */
    CL_RULE,        /* ztb.rule */
    CL_DETAIL_TYPE, /* authorization_details[0].type */
    CL_NSTR
};

struct claims {
    uint16_t off[CL_NSTR]; /* offset of each string in text; len 0 and !has: absent */
    uint16_t len[CL_NSTR];
    uint32_t has; /* bit i: string i present */
    int64_t iat, nbf, exp;
    int has_nbf;
    int64_t gen;                       /* ztb.gen */
    int single_use;                    /* ztb.single_use is true */
    int cnf_present;                   /* a cnf object was there */
    int cnf_unknown;                   /* cnf holds a member ztb cannot check */
    uint16_t details_off, details_len; /* raw JSON of authorization_details[0] in text */
    size_t text_len;
    char text[CLAIMS_PAYLOAD_MAX + CL_NSTR + 1];
};

/* Parse payload[0..n) into c (fully overwritten). See the top of this file. */
ztb_err claims_parse(const void *payload, size_t n, struct claims *c);

/* The string claim s (NUL-terminated) or NULL if absent. */
static inline const char *claims_str(const struct claims *c, enum claims_str s)
{
    return (c->has >> s) & 1u ? c->text + c->off[s] : NULL;
}

/* Its length (0 if absent). */
static inline size_t claims_len(const struct claims *c, enum claims_str s)
{
    return (c->has >> s) & 1u ? c->len[s] : 0;
}

#endif /* ZTB_WIRE_CLAIMS_H */
