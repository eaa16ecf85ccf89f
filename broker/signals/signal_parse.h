/*
 * signal_parse.h - read an anomaly signal: the claims of a Security Event
 * Token (RFC 8417), sent as plain JSON by an authenticated source or as the
 * payload of a signed SET.
 *
 *   {"iss": "soc-siem", "aud": "<broker issuer>", "iat": 1767225600,
 *    "jti": "4d3559ec67504aab",
 *    "events": {"urn:ztb:signal:token_replay": {
 *        "subject": {"agent": "billing-bot", "jti": "kq3x9Jd0xV2aR8yQ1sLm7g",
 *                    "exp": 1767225660, "audience": "payments", "kid": "..."},
 *        "severity": "high", "confidence": 0.9,
 *        "evidence": {...}, "event_timestamp": 1767225599}}}
 *
 * Exactly one event; its name is the signal type, bare ("token_replay") or
 * as the URI urn:ztb:signal:<type>. The subject names at least one of
 * agent (a name or a SPIFFE ID of our trust domain), jti (a token id, with
 * its exp if known), audience, kid. Unknown members are refused, so a typo
 * never silently means "absent". Evidence is any JSON value up to
 * SIGNAL_EVIDENCE_MAX bytes compact; strings in it that look like
 * credentials (or sit under secret-sounding names) are replaced by
 * "[redacted]" before anything stores them.
 *
 * Must never: trust anything it read before the caller authenticated the
 * source (the unverified iss from signal_set_peek_iss only picks the key to
 * check the signature with), or accept a value it cannot bound.
 */
#ifndef ZTB_BROKER_SIGNAL_PARSE_H
#define ZTB_BROKER_SIGNAL_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "broker/store/store_sources.h"
#include "policy/types.h"
#include "wire/wire.h"

#define SIGNAL_BODY_MAX     8192 /* a request to POST /v1/signals */
#define SIGNAL_TYPE_MAX     64
#define SIGNAL_EVIDENCE_MAX 2048
#define SIGNAL_MAX_AGE      300 /* a signed SET's iat may be this old (or this far ahead) */
#define SIGNAL_URI_PREFIX   ZTB_WIRE_SIGNAL_URI_PREFIX

struct signal {
    char id[32];                       /* ours: "sig_..." (filled by signals.c) */
    char source[STORE_SOURCE_MAX + 1]; /* who sent it, authenticated */
    char source_jti[STORE_ID_MAX + 1]; /* the source's id for it ("" from detectors) */
    int64_t iat;                       /* 0: not given */
    char type[SIGNAL_TYPE_MAX + 1];    /* e.g. "token_replay" */
    policy_severity severity;
    double confidence;                      /* 0..1 */
    char agent[STORE_NAME_MAX + 1];         /* subject: agent name, or "" */
    char jti[STORE_ID_MAX + 1];             /* subject: token id, or "" */
    int64_t jti_exp;                        /* subject: that token's exp, 0 unknown */
    char audience[STORE_ID_MAX + 1];        /* subject: audience, or "" */
    char kid[STORE_ID_MAX + 1];             /* subject: signing key, or "" */
    char evidence[SIGNAL_EVIDENCE_MAX + 1]; /* compact JSON, or "" */
    int64_t event_time;                     /* event_timestamp, 0: not given */
};

struct signal_parse_opts {
    const char *trust_domain; /* agent SPIFFE IDs must be in it */
    const char *issuer;       /* our issuer: aud must name it when present */
    const char *source;       /* the authenticated source: iss must equal it when present */
    int signed_set;           /* 1: iss, aud and iat are required and iat must be fresh */
    int64_t now;
};

/*
 * Parse the claims json[0..n) into s (everything but id and source). On
 * error returns TOO_LARGE, JSON (not a strict JSON object), MALFORMED,
 * ISSUER (iss is not the source), AUDIENCE (aud does not name us) or IAT
 * (a signed SET too old or from the future), and writes a one-line reason
 * for the sender into why (whycap bytes).
 */
ztb_err signal_parse(const char *json, size_t n, const struct signal_parse_opts *o,
                     struct signal *s, char *why, size_t whycap);

/*
 * The iss claim of a compact JWS (a signed SET), read without checking the
 * signature: only to choose the source whose key must verify it. JWS_FORMAT,
 * BASE64, JSON or CLAIMS (no string iss that is a valid source name).
 */
ztb_err signal_set_peek_iss(const char *jws, size_t n, char iss[STORE_SOURCE_MAX + 1]);

/* 1 if t is a valid signal type: 1..64 of a-z 0-9 _ . : -, starting with a letter or digit. */
int signal_type_ok(const char *t);

#endif /* ZTB_BROKER_SIGNAL_PARSE_H */
