/*
 * jws_header.h - a small, strict parser for JOSE protected headers.
 *
 * The header of every token a verifier sees is attacker-controlled, and the
 * verifier must reject malformed tokens at millions per second, so this is a
 * thin layer on ztb's one strict pull reader (common/json_reader.h), which
 * never allocates: the decoded header and everything taken from it live in
 * one caller-owned ztb_jws_header.
 *
 * Strict means: one JSON object and nothing else (whitespace aside); strings
 * are valid UTF-8 with valid escapes (no lone surrogates, no \u0000, no raw
 * control characters); numbers follow the JSON grammar; no duplicate member
 * names in any object, compared after unescaping ("alg" and "\u0061lg" are
 * the same name); at most ZTB_JWS_HEADER_MAX bytes, ZTB_JWS_HEADER_NAMES
 * member names and ZTB_JWS_HEADER_DEPTH levels of nesting.
 *
 * What it reports: alg (as a name and as a ztb_alg), kid, typ, which of the
 * members ztb refuses or treats specially are present (jwk, jku, x5u, x5c,
 * crit), and where the raw "jwk" value sits, for DPoP proofs. It judges
 * nothing beyond syntax and types: what is acceptable is jws.c's decision.
 *
 * Errors: JSON for anything that is not strict JSON or has duplicate names;
 * JWS_HEADER for valid JSON that is not a usable header (not an object, no
 * "alg", alg/kid/typ not strings, kid/typ too long, too many names, too
 * deep); BASE64 for a non-canonical encoding; TOO_LARGE is never returned
 * (an over-long header is JWS_HEADER).
 */
#ifndef ZTB_PKI_JWS_HEADER_H
#define ZTB_PKI_JWS_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "pki/key.h"

#define ZTB_JWS_HEADER_MAX   1024 /* decoded header bytes */
#define ZTB_JWS_HEADER_NAMES 64   /* member names across all open objects */
#define ZTB_JWS_HEADER_DEPTH 8    /* nesting of objects and arrays */
#define ZTB_JWS_KID_MAX      128
#define ZTB_JWS_TYP_MAX      64
#define ZTB_JWS_ALG_MAX      16

/* Bits of ztb_jws_header.present. */
#define ZTB_JWS_HDR_JWK  0x01u
#define ZTB_JWS_HDR_JKU  0x02u
#define ZTB_JWS_HDR_X5U  0x04u
#define ZTB_JWS_HDR_X5C  0x08u
#define ZTB_JWS_HDR_CRIT 0x10u

typedef struct ztb_jws_header {
    int has_alg;                         /* alg present (always 1 after a successful parse) */
    ztb_alg alg;                         /* ZTB_ALG_NONE unless alg names one ztb supports */
    char alg_name[ZTB_JWS_ALG_MAX + 1];  /* "" if longer than ZTB_JWS_ALG_MAX */
    int has_kid;                         /* kid present */
    size_t kid_len;                      /* bytes in kid (unescaped) */
    char kid[ZTB_JWS_KID_MAX + 1];       /* NUL-terminated */
    int has_typ;                         /* typ present */
    size_t typ_len;                      /* bytes in typ (unescaped) */
    char typ[ZTB_JWS_TYP_MAX + 1];       /* NUL-terminated */
    unsigned present;                    /* ZTB_JWS_HDR_* members found */
    size_t jwk_off, jwk_len;             /* raw "jwk" value within raw[], if present */
    size_t raw_len;                      /* bytes in raw */
    uint8_t raw[ZTB_JWS_HEADER_MAX + 1]; /* the header JSON (NUL-terminated) */
} ztb_jws_header;

/*
 * Decode the base64url header segment b64[0..n) into h->raw and parse it.
 * h is fully (re)initialised; on error its fields are unspecified.
 */
ztb_err ztb_jws_header_decode(const char *b64, size_t n, ztb_jws_header *h);

/* Parse header JSON json[0..n) (copied into h->raw). */
ztb_err ztb_jws_header_parse(const void *json, size_t n, ztb_jws_header *h);

/* 1 if h's typ equals the NUL-terminated typ exactly. */
int ztb_jws_header_typ_is(const ztb_jws_header *h, const char *typ);

#endif /* ZTB_PKI_JWS_HEADER_H */
