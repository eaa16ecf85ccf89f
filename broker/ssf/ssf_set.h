/*
 * ssf_set.h - read a Security Event Token (RFC 8417) from an SSF transmitter:
 * the unverified iss that picks the transmitter (strict pull reader, before
 * any signature is checked), and, after the signature verified, its claims:
 * iss, aud, iat, jti, exactly one CAEP event, and the subject (RFC 9493
 * sub_id, top level as SSF 1.0 puts it, or the event's "subject" as CAEP
 * drafts did) resolved to an agent or a token of ours.
 *
 * Subjects: "uri" with the SPIFFE ID of an agent of our trust domain;
 * "jwt_id" (SSF 1.0) with iss = our issuer, naming one of our tokens;
 * "opaque", "email", "uri", "iss_sub" and any other simple format through the
 * transmitter's subjects table ("opaque:ID", "email:ADDR", "uri:URI",
 * "iss_sub:ISS|SUB", "phone_number:...", "account:..."); "complex" with its
 * user, session, application, device, tenant, org_unit, group members, the
 * first that resolves naming the agent (a jwt_id in any of them names the
 * token).
 *
 * Must never: hand jansson bytes whose signature was not verified, or map a
 * subject to an agent by anything but an exact match.
 */
#ifndef ZTB_BROKER_SSF_SET_H
#define ZTB_BROKER_SSF_SET_H

#include <stddef.h>
#include <stdint.h>

#include "broker/ssf/ssf.h"
#include "broker/store/store_rev.h"

struct ssf_set {
    char jti[STORE_ID_MAX + 1];
    int64_t iat;
    unsigned event;                    /* one SSF_EV_RECEIVED bit */
    int64_t event_time;                /* event_timestamp, 0: not given */
    char agent[STORE_NAME_MAX + 1];    /* the subject's agent, or "" */
    char token_jti[STORE_ID_MAX + 1];  /* a jwt_id subject's jti, or "" */
    char subject[SSF_SUBJECT_MAX + 1]; /* the subject as matched ("email:x"), for the evidence */
    char initiating_entity[16];        /* CAEP: admin, user, policy, system, or "" */
    char reason[256];                  /* reason_admin's "en" (or first) text, or "" */
};

struct ssf_set_opts {
    const struct ssf_transmitter *t; /* the transmitter whose key verified it */
    const char *trust_domain;
    const char *our_issuer; /* a jwt_id subject must name it */
    int64_t now;
    int64_t max_age; /* iat within this of now (both ways) */
};

/*
 * The iss of the compact JWS jws[0..n), read without checking the signature
 * (only to choose the transmitter whose keys must verify it): the strict
 * reader, no allocation. JWS_FORMAT, BASE64, TOO_LARGE, JSON or CLAIMS (no
 * string iss).
 */
ztb_err ssf_set_peek_iss(const char *jws, size_t n, char *iss, size_t cap);

/*
 * Read the verified claims json[0..n) into out. Returns ISSUER (iss is not
 * the transmitter's), AUDIENCE (aud does not name t->audience), IAT (stale,
 * from the future or missing), EXPIRED (an exp that has passed), CLAIMS (a
 * missing or mistyped claim, not exactly one event), UNSUPPORTED (an event
 * type ztb does not receive), NOT_FOUND (a subject that names no agent or
 * token of ours) or JSON, with a line for the transmitter in why.
 */
ztb_err ssf_set_read(const char *json, size_t n, const struct ssf_set_opts *o, struct ssf_set *out,
                     char *why, size_t cap);

#endif /* ZTB_BROKER_SSF_SET_H */
