/*
 * ztb/verifier.h - check ztb access tokens at an API gateway or tool server.
 *
 * A verifier checks each token offline, at the speed of one ECDSA
 * verification: the signature with the broker's key named by the token's
 * kid (the algorithm is the key's, never the token's), the token type, the
 * issuer and audience, the times, the action and resource against what the
 * request is about to do, the proof-of-possession binding (DPoP), and the
 * revocation state, which it keeps in step with the broker through Redis.
 * A single-use token is consumed atomically in Redis, so it is accepted
 * once across every replica of the gateway.
 *
 *   ztb_verifier_config *cfg = ztb_verifier_config_new();
 *   ztb_verifier_config_set_issuer(cfg, "https://broker.example");
 *   ztb_verifier_config_set_audience(cfg, "payments");
 *   ztb_verifier_config_set_jwks_url(cfg, "https://broker.example/.well-known/jwks.json");
 *   ztb_verifier_config_set_redis(cfg, "redis://redis.internal:6379");
 *   ztb_verifier *v;
 *   ztb_err rv = ztb_verifier_new(cfg, &v);
 *   ztb_verifier_config_free(cfg);
 *   ...
 *   ztb_expect want = {.action = "payments:refund", .resource = "orders/1234"};
 *   rv = ztb_verify(v, token, &want, NULL);
 *   if (rv != ZTB_OK) refuse(403, ztb_strerror(rv));
 *
 * Threads: one verifier serves every thread of the process; ztb_verify is
 * thread-safe and takes no lock shared with other verifying threads on its
 * common path (keys are cached per thread). A verifier runs up to three
 * threads of its own (key refresh, revocation feed, unknown-client reports)
 * with every signal blocked. Nothing in libztb raises SIGPIPE in the host or exits it.
 *
 * Revocation: choose exactly one source before ztb_verifier_new:
 *   - ztb_verifier_config_set_redis: the revocation feed (Redis pub/sub and
 *     the revocation sorted set), checked locally per token; required for
 *     single-use tokens;
 *   - ztb_verifier_config_set_introspection: ask the broker's
 *     /v1/introspect per token instead (a round trip per request, and the
 *     broker's load; for gateways that cannot reach Redis);
 *   - ztb_verifier_config_set_no_revocation: accept revoked tokens until
 *     they expire (an explicit choice, for tests and demos).
 */
#ifndef ZTB_VERIFIER_H
#define ZTB_VERIFIER_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>
#include <ztb/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ztb_verifier ztb_verifier;
typedef struct ztb_verifier_config ztb_verifier_config;
typedef struct ztb_claims ztb_claims;
typedef struct ztb_agent ztb_agent;

/* ---- configuration -------------------------------------------------------
 *
 * A configuration is a plain value: setters copy what they are given and
 * check it at once (INVALID_ARG for a bad value, STATE for a second
 * revocation source), so a mistake surfaces where it is made. A config is
 * not thread-safe; it may be freed as soon as ztb_verifier_new returns.
 */

/* A new configuration with the defaults below, or NULL if out of memory. */
ZTB_API ztb_verifier_config *ztb_verifier_config_new(void);

/* Free a configuration (NULL is fine). */
ZTB_API void ztb_verifier_config_free(ztb_verifier_config *cfg);

/* Required: the broker's issuer URL, compared exactly with the token's iss. */
ZTB_API ztb_err ztb_verifier_config_set_issuer(ztb_verifier_config *cfg, const char *issuer);

/* Required: this gateway's audience, compared exactly with the token's aud. */
ZTB_API ztb_err ztb_verifier_config_set_audience(ztb_verifier_config *cfg, const char *audience);

/*
 * The broker's JWKS URL (https, or http to a loopback host unless
 * ztb_verifier_config_set_allow_insecure_http). Fetched by ztb_verifier_new,
 * refetched when its Cache-Control max-age runs out, and on a token with an
 * unknown kid at most once per refetch interval. Keys no fetch has confirmed
 * for their max-age plus 60 s are stale: every token is then refused with
 * ZTB_ERR_UNAVAILABLE until a fetch succeeds. One of this and
 * ztb_verifier_config_set_jwks_file is required.
 */
ZTB_API ztb_err ztb_verifier_config_set_jwks_url(ztb_verifier_config *cfg, const char *url);

/*
 * A JWKS file instead (e.g. from `ztbctl keys jwks`): a regular file owned
 * by root or this user and writable by no one else; re-read when it changes.
 */
ZTB_API ztb_err ztb_verifier_config_set_jwks_file(ztb_verifier_config *cfg, const char *path);

/* PEM CA bundle for https JWKS and introspection URLs (default: the system's). */
ZTB_API ztb_err ztb_verifier_config_set_ca_file(ztb_verifier_config *cfg, const char *path);

/* Allow plain http to hosts other than loopback (default: refused). */
ZTB_API ztb_err ztb_verifier_config_set_allow_insecure_http(ztb_verifier_config *cfg, int allow);

/* Least seconds between JWKS fetches caused by unknown kids (default 30, 1..3600). */
ZTB_API ztb_err ztb_verifier_config_set_jwks_refetch_interval(ztb_verifier_config *cfg,
                                                              unsigned seconds);

/*
 * Clock skew tolerated on exp, nbf, iat and DPoP iat, in seconds (default 30,
 * max 60: the bound replay markers and revocation entries are kept for, so a
 * larger value is refused with INVALID_ARG).
 */
ZTB_API ztb_err ztb_verifier_config_set_skew(ztb_verifier_config *cfg, unsigned seconds);

/*
 * Revocation source: Redis, where the broker keeps and announces revocations
 * (redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], unix:///PATH[?db=N],
 * redis+sentinel://..., or rediss:// and rediss+sentinel:// for TLS with
 * ?ca=PATH[&cert=PATH&key=PATH][&tls_name=NAME]: the same URLs as the
 * broker's, docs/redis.md). Also where
 * single-use tokens and DPoP proof ids are recorded, so a replay at any
 * replica fails. ztb_verifier_new waits for the first full load.
 */
ZTB_API ztb_err ztb_verifier_config_set_redis(ztb_verifier_config *cfg, const char *url);

/*
 * With Redis: how long after losing the revocation feed tokens are still
 * checked against the last known state, in milliseconds (default 0: refuse
 * with REVOCATION_STALE at once until the feed is back and reloaded).
 */
ZTB_API ztb_err ztb_verifier_config_set_revocation_grace(ztb_verifier_config *cfg, unsigned ms);

/*
 * With Redis: the most revocations the verifier holds, of all kinds
 * together (default 1000000: 20 to 53 MB of revoked token ids; 1..100000000).
 * When an event needs room and the state is full, revocations that no longer
 * matter (every token they could refuse has expired) are evicted first. If it is still full of
 * live ones, the verifier fails closed: every token is refused with
 * REVOCATION_STALE until a full reload of the state fits (docs/gateways.md,
 * "Revocation set cap"). ztb_verifier_stats counts both.
 */
ZTB_API ztb_err ztb_verifier_config_set_revocation_max(ztb_verifier_config *cfg, size_t entries);

/*
 * Revocation source: the broker's /v1/introspect, asked once per token after
 * the local checks passed, authenticated as `agent` (an enrolled agent
 * handle, borrowed: it must outlive the verifier). Costs a round trip per
 * token; single-use tokens are refused (SINGLE_USE) as they cannot be
 * consumed atomically across replicas this way.
 */
ZTB_API ztb_err ztb_verifier_config_set_introspection(ztb_verifier_config *cfg, ztb_agent *agent);

/* Revocation source: none. Revoked tokens are accepted until they expire. */
ZTB_API ztb_err ztb_verifier_config_set_no_revocation(ztb_verifier_config *cfg);

/* Refuse tokens without a proof-of-possession binding (default: accept bearer tokens). */
ZTB_API ztb_err ztb_verifier_config_set_require_dpop(ztb_verifier_config *cfg, int require);

/* Oldest DPoP proof accepted, in seconds (default 60, 1..300), skew aside. */
ZTB_API ztb_err ztb_verifier_config_set_dpop_max_age(ztb_verifier_config *cfg, unsigned seconds);

/* How long ztb_verifier_new may wait for the JWKS and Redis, in ms (default 5000). */
ZTB_API ztb_err ztb_verifier_config_set_startup_timeout(ztb_verifier_config *cfg, unsigned ms);

/*
 * With Redis: how often the callers this verifier refused for carrying no
 * ztb token or a token that is not this broker's (ztb_verify_from,
 * ztb_verifier_report_no_token) are reported to the broker, in ms (default
 * 10000; 0: never; else 100..3600000). Each report is one LPUSH and one
 * LTRIM on the list ztb:unknown_reports, which the verifier's Redis user
 * must be allowed (docs/redis.md, "ACL users per role"); a refused report
 * is dropped and counted (ztb_verifier_unknown_stats_get). The brokers add
 * the counts to `ztbctl agent inventory`'s unknown clients and may raise a
 * shadow_ai signal (docs/soc.md). Also sent once by ztb_verifier_free.
 */
ZTB_API ztb_err ztb_verifier_config_set_unknown_report_interval(ztb_verifier_config *cfg,
                                                                unsigned ms);

/* ---- the verifier -------------------------------------------------------- */

/*
 * Make a verifier from cfg (not kept: free it when you like). Blocks while it
 * fetches the JWKS and, with Redis, loads the revocation state (up to the
 * startup timeout). INVALID_ARG if cfg lacks the issuer, audience, JWKS
 * source or a revocation source; UNAVAILABLE if the JWKS or Redis cannot be
 * reached in time; JWKS for an invalid key set. On success *out is the
 * caller's, freed with ztb_verifier_free. ztb_verifier_errdetail(NULL) says
 * why it failed.
 */
ZTB_API ZTB_WUR ztb_err ztb_verifier_new(const ztb_verifier_config *cfg, ztb_verifier **out);

/*
 * Stop the verifier's threads and free it (NULL is fine). No other thread may
 * be inside a call on v. Blocks until its threads have stopped.
 */
ZTB_API void ztb_verifier_free(ztb_verifier *v);

/* What the request being authorised is about to do. Zero-initialise it. */
typedef struct ztb_expect {
    /* Required: the action, e.g. "payments:refund"; must equal the token's scope. */
    const char *action;
    /*
     * The resource acted on, e.g. "orders/1234", compared exactly with the
     * token's resource. NULL: the action has no resource, and a token
     * naming one is refused (unless flags has ZTB_EXPECT_ANY_RESOURCE).
     */
    const char *resource;
    unsigned flags;
    /*
     * Proof of possession, for tokens bound with cnf.jkt: the request's DPoP
     * header value (NULL if it had none), its method ("POST") and its URL
     * (scheme, host and path; query and fragment are ignored).
     */
    const char *dpop_proof;
    const char *htm;
    const char *htu;
    /*
     * For tokens bound to a TLS client certificate (cnf["x5t#S256"]): the
     * base64url SHA-256 of the certificate the client presented, or NULL.
     */
    const char *x5t_s256;
} ztb_expect;

/* ztb_expect.flags: accept a token for any resource (or none) of the action. */
#define ZTB_EXPECT_ANY_RESOURCE 0x1u
/*
 * ztb_expect.flags: the request used the DPoP authorization scheme (RFC 9449
 * §7.1; ztb_authorization_parse says which). Required for a DPoP-bound token,
 * with its dpop_proof: without the flag such a token is refused (BINDING),
 * since a bound token presented with the Bearer scheme must be, whatever
 * proof came with it. With the flag, a token that is not DPoP-bound is
 * refused (BINDING), as the broker's GET /v1/authorize does.
 */
#define ZTB_EXPECT_DPOP_SCHEME 0x2u

/*
 * Verify token (a NUL-terminated compact JWS, at most 8 KiB) for the request
 * described by expect. ZTB_OK only if every check passes; each failed check
 * has its own code:
 *
 *   TOO_LARGE, JWS_FORMAT, BASE64, JSON, JWS_HEADER, FORBIDDEN_HEADER, ALG,
 *   UNKNOWN_KID, SIG_FORMAT, SIGNATURE   the token itself (see error.h)
 *   TYP             typ is not at+jwt
 *   CLAIMS          a required claim is missing or mistyped
 *   ISSUER, AUDIENCE   iss or aud is not the configured one
 *   EXPIRED, NOT_YET_VALID, IAT   outside its validity (skew allowed)
 *   ACTION, RESOURCE   the token is for another action or resource
 *   BINDING         a bound token without its proof, with another key's
 *                   proof, or an unbound token where DPoP is required
 *   DPOP, DPOP_REPLAY  the DPoP proof is invalid, or was used before
 *   KEY_TAINTED, AUDIENCE_KILLED, AGENT_REVOKED, REVOKED   revoked
 *   REVOCATION_STALE   the revocation state cannot be trusted right now
 *   REPLAY          a single-use token that was already used
 *   SINGLE_USE      a single-use token and no Redis to consume it in
 *   UNAVAILABLE     Redis or the introspection endpoint cannot answer
 *
 * A single-use token that passes everything else is consumed here: a second
 * ztb_verify of it, at any replica sharing the Redis, gives REPLAY.
 *
 * claims: NULL, or an object from ztb_claims_new that receives the token's
 * claims on success (reuse one per thread: no allocation then). Thread-safe.
 * Does not block, except to consume a single-use token or a DPoP proof id
 * in Redis, to ask introspection, or once per refetch interval to fetch the
 * JWKS for an unknown kid. The reject path of a malformed or unknown-kid
 * token allocates nothing.
 */
ZTB_API ZTB_WUR ztb_err ztb_verify(ztb_verifier *v, const char *token, const ztb_expect *expect,
                                   ztb_claims *claims);

/*
 * ztb_verify, naming the caller: source is its address as the gateway saw
 * it ("192.0.2.7", "2001:db8::7") or a label the gateway chooses, 1..64 of
 * A-Z a-z 0-9 . _ : - (NULL: "unknown"; anything else is counted as
 * "invalid"). A refusal that shows the token is not one of this broker's
 * (not a compact JWS, not at+jwt, a header or algorithm the broker never
 * writes, a kid no key of the broker has, a signature that does not
 * verify, another issuer) counts the caller as an unknown client of
 * source, reported as above; ztb_verify counts such callers as "unknown".
 * Tokens of this broker that are refused (expired, revoked, another
 * audience or action...) are not unknown clients. Same result as ztb_verify.
 */
ZTB_API ZTB_WUR ztb_err ztb_verify_from(ztb_verifier *v, const char *token,
                                        const ztb_expect *expect, ztb_claims *claims,
                                        const char *source);

/*
 * Count a caller the gateway refused because it carried no ztb token at
 * all (no Authorization header, or a scheme other than Bearer and DPoP):
 * an unknown client of source (as in ztb_verify_from). Does not block;
 * INVALID_ARG only for a NULL verifier. Thread-safe.
 */
ZTB_API ztb_err ztb_verifier_report_no_token(ztb_verifier *v, const char *source);

/*
 * A short English reason for the calling thread's last failed call on v
 * (ztb_verifier_new: pass NULL), e.g. "aud is not this gateway's audience:
 * expected \"payments\", received \"crm\"" (issuer and audience mismatches
 * name both values: they are configuration mistakes).
 * Never NULL, never contains a token or secret; "" if there is none. Valid
 * until the thread's next libztb call.
 */
ZTB_API const char *ztb_verifier_errdetail(const ztb_verifier *v);

/* ---- claims of a verified token -----------------------------------------
 *
 * A claims object (about 14 KiB) receives the claims of the last token
 * ztb_verify accepted into it; after a refusal it holds none. It is used by
 * one thread at a time (keep one per thread); the accessors do not block and
 * do not allocate.
 */

/* A new, empty claims object the caller owns, or NULL if out of memory. */
ZTB_API ztb_claims *ztb_claims_new(void);

/* Wipe and free a claims object (NULL is fine). */
ZTB_API void ztb_claims_free(ztb_claims *c);

/*
 * Accessors. Strings are owned by c and valid until it is reused or freed;
 * each returns NULL when the claim is absent (or c holds no token).
 */
ZTB_API const char *ztb_claims_subject(const ztb_claims *c);  /* sub: the agent's SPIFFE ID */
ZTB_API const char *ztb_claims_agent(const ztb_claims *c);    /* ztb.agent: the agent's name */
ZTB_API const char *ztb_claims_action(const ztb_claims *c);   /* scope */
ZTB_API const char *ztb_claims_resource(const ztb_claims *c); /* the resource, if any */
ZTB_API const char *ztb_claims_jti(const ztb_claims *c);      /* the token's id */
ZTB_API const char *ztb_claims_actor(const ztb_claims *c);    /* act.sub: on whose behalf */
ZTB_API const char *ztb_claims_rule(const ztb_claims *c);     /* ztb.rule: the policy rule */
ZTB_API const char *ztb_claims_json(const ztb_claims *c);     /* the whole payload, JSON */

/* The one authorization detail (RFC 9396) the token carries: its type, e.g. "payment"... */
ZTB_API const char *ztb_claims_details_type(const ztb_claims *c);
/* ... and the whole object as JSON, e.g. {"type":"payment","amount":40,...}. */
ZTB_API const char *ztb_claims_details_json(const ztb_claims *c);

/* exp of the token (Unix seconds), 0 if c holds no token. */
ZTB_API int64_t ztb_claims_expires_at(const ztb_claims *c);

/* 1 if the token was single-use (and has now been consumed). */
ZTB_API int ztb_claims_single_use(const ztb_claims *c);

/*
 * The number at path in the token's authorization detail: a member name
 * ("amount") or names of nested objects joined by dots ("limits.amount"),
 * the paths policy conditions use. These are the limits the broker allowed;
 * a gateway compares what the request does with them. NOT_FOUND if there is
 * no such member, INVALID_ARG if it is not a number (or c holds no token).
 */
ZTB_API ztb_err ztb_claims_detail_number(const ztb_claims *c, const char *path, double *value);

/* ---- operations ---------------------------------------------------------- */

/*
 * The verifier's counters. struct_size comes first and the caller sets it to
 * sizeof(ztb_verifier_stats) before the call (ZTB_VERIFIER_STATS_INIT does):
 * later versions add counters at the end only, so a program built against
 * an older header gets the counters it knows, and one built against a newer
 * header running with an older libztb learns from struct_size, on return,
 * how many bytes were filled (the fields past it are left as they were).
 */
typedef struct ztb_verifier_stats {
    size_t struct_size;             /* in: sizeof(ztb_verifier_stats); out: bytes filled */
    uint64_t jwks_keys;             /* keys in the current set */
    uint64_t jwks_fetches;          /* JWKS fetches or file reads so far */
    int revocation_live;            /* the revocation feed is subscribed and loaded */
    uint64_t revocation_entries;    /* revocations held */
    uint64_t revocation_bytes;      /* memory of the revocation tables */
    uint64_t revocation_events;     /* events applied */
    uint64_t revocation_bad_events; /* events that could not be parsed (ignored) */
    uint64_t revocation_syncs;      /* full loads of the revocation state */
    uint64_t revocation_evicted;    /* expired revocations dropped to make room under the cap */
    uint64_t revocation_refused;    /* revocations that did not fit: the state was full */
    int revocation_full;            /* refusing every token until a full reload fits */
} ztb_verifier_stats;

/* ztb_verifier_stats st = ZTB_VERIFIER_STATS_INIT; then ztb_verifier_stats_get(v, &st). */
#ifdef __cplusplus
#define ZTB_VERIFIER_STATS_INIT                                                                    \
    {                                                                                              \
        sizeof(ztb_verifier_stats)                                                                 \
    }
#else
#define ZTB_VERIFIER_STATS_INIT                                                                    \
    {                                                                                              \
        .struct_size = sizeof(ztb_verifier_stats)                                                  \
    }
#endif

/*
 * Fill *out with v's counters (zeros for what does not apply), up to
 * out->struct_size bytes, and set out->struct_size to the bytes filled.
 * INVALID_ARG if out->struct_size is not set (it leaves no room for a
 * counter). Thread-safe; does not block.
 */
ZTB_API ztb_err ztb_verifier_stats_get(ztb_verifier *v, ztb_verifier_stats *out);

/*
 * How many times ztb_verify and ztb_verify_from refused with code since v
 * was made (ZTB_OK: every refusal together; 0 for a code they never
 * return). Thread-safe; does not block.
 */
ZTB_API uint64_t ztb_verifier_refusals(const ztb_verifier *v, ztb_err code);

/*
 * Unknown clients (ztb_verify_from, ztb_verifier_report_no_token). New
 * members are only ever added at the end: pass sizeof(ztb_unknown_client_stats)
 * as size, and the library fills what both it and the caller know (a
 * program built against an older header gets the members it knows).
 */
typedef struct ztb_unknown_client_stats {
    uint64_t no_token;       /* callers counted with no ztb token */
    uint64_t foreign_token;  /* callers counted with a token not from this broker */
    uint64_t folded;         /* callers counted under "_other" (more sources than the table) */
    uint64_t reports_sent;   /* reports written to Redis */
    uint64_t reports_failed; /* reports Redis refused or could not take (dropped) */
} ztb_unknown_client_stats;

/* Fill the first size bytes of *out. INVALID_ARG for NULLs or size 0. Thread-safe. */
ZTB_API ztb_err ztb_verifier_unknown_stats_get(ztb_verifier *v, ztb_unknown_client_stats *out,
                                               size_t size);

#ifdef __cplusplus
}
#endif

#endif /* ZTB_VERIFIER_H */
