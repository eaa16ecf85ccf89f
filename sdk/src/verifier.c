/*
 * verifier.c - ztb_verify and the verifier handle (see ztb/verifier.h).
 *
 * ztb_verify runs the checks cheapest first, so that garbage and forgeries
 * cost almost nothing and a valid token costs one ECDSA verification plus a
 * few microseconds: the JWS checks and signature, typ, the claims, issuer,
 * audience and times (wire/access_token.c, the one verification path the
 * broker's introspection and delegation take too: the key chosen by kid,
 * the algorithm pinned by the key, one pass of the claims reader, no
 * allocation), then action, resource, the
 * revocation state (a local lookup under a read lock), then the DPoP proof
 * (a second ECDSA verification, only for bound tokens), and last the steps
 * that need a round trip: recording the proof id and consuming a single-use
 * token in Redis, or asking introspection. Every rejection returns its own
 * code and records a fixed reason for ztb_verifier_errdetail().
 *
 * Per-thread state (thread_cache.h) keeps the key set reference and scratch
 * space, so the common path takes no lock shared between verifying threads.
 *
 * What it must never do: accept a token on the strength of any check that
 * did not run (every path ends in an explicit ZTB_OK after all of them),
 * consume a single-use token before everything else passed, or treat a
 * binding it does not understand as no binding.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include <ztb/agent.h>
#include <ztb/verifier.h>

#include "common/guard.h"
#include "common/secret.h"
#include "common/utf8.h"
#include "pki/dpop.h"
#include "pki/es256.h"
#include "pki/jws.h"
#include "sdk/src/agent_internal.h"
#include "sdk/src/clock.h"
#include "sdk/src/errdetail.h"
#include "sdk/src/http_client.h"
#include "sdk/src/idset.h"
#include "common/json_reader.h"
#include "sdk/src/jwks_cache.h"
#include "sdk/src/redis_conn.h"
#include "sdk/src/revfeed.h"
#include "sdk/src/revset.h"
#include "sdk/src/thread_cache.h"
#include "sdk/src/unknown_clients.h"
#include "wire/access_token.h"
#include "wire/wire.h"

#define STR_MAX          1024
#define DEFAULT_SKEW_S   30
#define DEFAULT_DPOP_AGE 60
#define DEFAULT_STARTUP  5000
#define DPOP_LOCAL_MAX   (1u << 20) /* proof ids remembered without Redis */
#define DEFAULT_REPORT   10000      /* ms between unknown-client reports */

enum rev_mode { REVM_UNSET = 0, REVM_REDIS, REVM_INTROSPECT, REVM_NONE };

struct ztb_verifier_config {
    char *issuer, *audience, *jwks_url, *jwks_file, *ca_file, *redis_url;
    int allow_http, require_dpop;
    unsigned refetch_s, skew_s, grace_ms, dpop_max_age_s, startup_ms, report_ms;
    size_t rev_max;
    enum rev_mode rev;
    ztb_agent *introspect;
};

struct ztb_claims {
    int valid;
    struct access_token t; /* the token being verified, then its claims */
};

struct ztb_verifier {
    char *issuer, *audience;
    unsigned skew_s, dpop_max_age_s;
    int require_dpop;
    enum rev_mode rev;
    struct http_client *http;
    struct jwks_cache *jwks;
    struct revfeed *feed;
    int pool_ok;
    struct rconn_pool pool;
    ztb_agent *introspect;
    pthread_mutex_t dpop_mu; /* the local proof-id cache, when there is no Redis */
    struct idset dpop_seen;
    struct unknown_clients *uc;    /* callers with no token or a foreign one */
    _Atomic uint64_t refusals[48]; /* by refusal_slot(); [0] every refusal */
};

/* The codes ztb_verify returns, each with its counter slot (1-based). */
static const ztb_err refusal_codes[] = {
    ZTB_ERR_INVALID_ARG,
    ZTB_ERR_NOMEM,
    ZTB_ERR_TOO_LARGE,
    ZTB_ERR_MALFORMED,
    ZTB_ERR_BASE64,
    ZTB_ERR_JSON,
    ZTB_ERR_JWS_FORMAT,
    ZTB_ERR_JWS_HEADER,
    ZTB_ERR_ALG,
    ZTB_ERR_UNKNOWN_KID,
    ZTB_ERR_FORBIDDEN_HEADER,
    ZTB_ERR_SIG_FORMAT,
    ZTB_ERR_SIGNATURE,
    ZTB_ERR_KEY,
    ZTB_ERR_TYP,
    ZTB_ERR_ISSUER,
    ZTB_ERR_AUDIENCE,
    ZTB_ERR_EXPIRED,
    ZTB_ERR_NOT_YET_VALID,
    ZTB_ERR_IAT,
    ZTB_ERR_CLAIMS,
    ZTB_ERR_ACTION,
    ZTB_ERR_RESOURCE,
    ZTB_ERR_BINDING,
    ZTB_ERR_DPOP,
    ZTB_ERR_DPOP_REPLAY,
    ZTB_ERR_REVOKED,
    ZTB_ERR_AGENT_REVOKED,
    ZTB_ERR_AUDIENCE_KILLED,
    ZTB_ERR_KEY_TAINTED,
    ZTB_ERR_REPLAY,
    ZTB_ERR_REVOCATION_STALE,
    ZTB_ERR_SINGLE_USE,
    ZTB_ERR_UNAVAILABLE,
    ZTB_ERR_CRYPTO,
    ZTB_ERR_INTERNAL,
};
#define REFUSAL_OTHER (ZTB_ARRAY_LEN(refusal_codes) + 1) /* any other code */
_Static_assert(ZTB_ARRAY_LEN(refusal_codes) + 2 <= 48, "ztb_verifier.refusals is too small");

/* The counter slot of refusal rv (1..REFUSAL_OTHER). */
static size_t refusal_slot(ztb_err rv)
{
    for (size_t i = 0; i < ZTB_ARRAY_LEN(refusal_codes); i++)
        if (refusal_codes[i] == rv)
            return i + 1;
    return REFUSAL_OTHER;
}

/*
 * 1 if refusal rv shows the token is not one of this broker's: it failed
 * before or at the signature (shape, header, key, signature, typ), or is
 * signed for another issuer. What the broker's /v1/authorize counts as
 * "foreign_token" (broker/tokens/authorize.c), less its errors of time.
 */
static int refusal_is_foreign(ztb_err rv)
{
    switch (rv) {
    case ZTB_ERR_TOO_LARGE:
    case ZTB_ERR_MALFORMED:
    case ZTB_ERR_BASE64:
    case ZTB_ERR_JSON:
    case ZTB_ERR_JWS_FORMAT:
    case ZTB_ERR_JWS_HEADER:
    case ZTB_ERR_ALG:
    case ZTB_ERR_UNKNOWN_KID:
    case ZTB_ERR_FORBIDDEN_HEADER:
    case ZTB_ERR_SIG_FORMAT:
    case ZTB_ERR_SIGNATURE:
    case ZTB_ERR_TYP:
    case ZTB_ERR_ISSUER: return 1;
    default: return 0;
    }
}

/* ---- configuration ------------------------------------------------------- */

ztb_verifier_config *ztb_verifier_config_new(void)
{
    ztb_verifier_config *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->skew_s = DEFAULT_SKEW_S;
    c->dpop_max_age_s = DEFAULT_DPOP_AGE;
    c->startup_ms = DEFAULT_STARTUP;
    c->refetch_s = JWKS_DEFAULT_REFETCH_S;
    c->rev_max = REVSET_DEFAULT_MAX;
    c->report_ms = DEFAULT_REPORT;
    return c;
}

void ztb_verifier_config_free(ztb_verifier_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->issuer);
    free(cfg->audience);
    free(cfg->jwks_url);
    free(cfg->jwks_file);
    free(cfg->ca_file);
    ztb_free_secret_str(cfg->redis_url); /* may hold a password */
    free(cfg);
}

/* Replace *slot with a copy of s (printable UTF-8, 1..STR_MAX bytes). */
static ztb_err set_str(const ztb_verifier_config *cfg, char **slot, const char *s, int secret)
{
    if (cfg == NULL || s == NULL)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "NULL argument");
    size_t n = strnlen(s, STR_MAX + 1);
    if (n == 0 || n > STR_MAX || !ztb_utf8_printable(s, n))
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "empty, too long or not printable");
    char *copy = strdup(s);
    if (copy == NULL)
        return ZTB_ERR_NOMEM;
    if (secret)
        ztb_free_secret_str(*slot);
    else
        free(*slot);
    *slot = copy;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_issuer(ztb_verifier_config *cfg, const char *issuer)
{
    return set_str(cfg, cfg ? &cfg->issuer : NULL, issuer, 0);
}

ztb_err ztb_verifier_config_set_audience(ztb_verifier_config *cfg, const char *audience)
{
    return set_str(cfg, cfg ? &cfg->audience : NULL, audience, 0);
}

ztb_err ztb_verifier_config_set_jwks_url(ztb_verifier_config *cfg, const char *url)
{
    if (url != NULL && http_url_check(url, 1) != ZTB_OK)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "not an absolute http(s) URL");
    ZTB_GUARD(set_str(cfg, cfg ? &cfg->jwks_url : NULL, url, 0));
    free(cfg->jwks_file);
    cfg->jwks_file = NULL;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_jwks_file(ztb_verifier_config *cfg, const char *path)
{
    ZTB_GUARD(set_str(cfg, cfg ? &cfg->jwks_file : NULL, path, 0));
    free(cfg->jwks_url);
    cfg->jwks_url = NULL;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_ca_file(ztb_verifier_config *cfg, const char *path)
{
    return set_str(cfg, cfg ? &cfg->ca_file : NULL, path, 0);
}

ztb_err ztb_verifier_config_set_allow_insecure_http(ztb_verifier_config *cfg, int allow)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    cfg->allow_http = allow != 0;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_jwks_refetch_interval(ztb_verifier_config *cfg, unsigned seconds)
{
    ZTB_ENSURE(cfg != NULL && seconds >= 1 && seconds <= 3600, ZTB_ERR_INVALID_ARG);
    cfg->refetch_s = seconds;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_skew(ztb_verifier_config *cfg, unsigned seconds)
{
    ZTB_ENSURE(cfg != NULL && seconds <= ZTB_WIRE_MAX_SKEW_S, ZTB_ERR_INVALID_ARG);
    cfg->skew_s = seconds;
    return ZTB_OK;
}

/* Choose the revocation source, once. */
static ztb_err set_rev(ztb_verifier_config *cfg, enum rev_mode m)
{
    if (cfg->rev != REVM_UNSET && cfg->rev != m)
        return errdetail_set(NULL, ZTB_ERR_STATE, "a revocation source was already chosen");
    cfg->rev = m;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_redis(ztb_verifier_config *cfg, const char *url)
{
    ZTB_ENSURE(cfg != NULL && url != NULL, ZTB_ERR_INVALID_ARG);
    struct redis_target t;
    char err[160];
    if (redis_target_parse(url, 0, &t, err, sizeof(err)) != ZTB_OK)
        return errdetail_setf(NULL, ZTB_ERR_INVALID_ARG, "%s", err);
    redis_target_wipe(&t);
    ZTB_GUARD(set_rev(cfg, REVM_REDIS));
    return set_str(cfg, &cfg->redis_url, url, 1);
}

ztb_err ztb_verifier_config_set_revocation_grace(ztb_verifier_config *cfg, unsigned ms)
{
    ZTB_ENSURE(cfg != NULL && ms <= 3600000u, ZTB_ERR_INVALID_ARG);
    cfg->grace_ms = ms;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_revocation_max(ztb_verifier_config *cfg, size_t entries)
{
    ZTB_ENSURE(cfg != NULL && entries >= 1 && entries <= 100000000u, ZTB_ERR_INVALID_ARG);
    cfg->rev_max = entries;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_introspection(ztb_verifier_config *cfg, ztb_agent *agent)
{
    ZTB_ENSURE(cfg != NULL && agent != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_GUARD(set_rev(cfg, REVM_INTROSPECT));
    cfg->introspect = agent;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_no_revocation(ztb_verifier_config *cfg)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    return set_rev(cfg, REVM_NONE);
}

ztb_err ztb_verifier_config_set_require_dpop(ztb_verifier_config *cfg, int require)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    cfg->require_dpop = require != 0;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_dpop_max_age(ztb_verifier_config *cfg, unsigned seconds)
{
    ZTB_ENSURE(cfg != NULL && seconds >= 1 && seconds <= ZTB_WIRE_DPOP_MAX_AGE_S,
               ZTB_ERR_INVALID_ARG);
    cfg->dpop_max_age_s = seconds;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_startup_timeout(ztb_verifier_config *cfg, unsigned ms)
{
    ZTB_ENSURE(cfg != NULL && ms >= 1 && ms <= 600000u, ZTB_ERR_INVALID_ARG);
    cfg->startup_ms = ms;
    return ZTB_OK;
}

ztb_err ztb_verifier_config_set_unknown_report_interval(ztb_verifier_config *cfg, unsigned ms)
{
    ZTB_ENSURE(cfg != NULL && (ms == 0 || (ms >= 100 && ms <= 3600000u)), ZTB_ERR_INVALID_ARG);
    cfg->report_ms = ms;
    return ZTB_OK;
}

/* ---- the handle ---------------------------------------------------------- */

void ztb_verifier_free(ztb_verifier *v)
{
    if (v == NULL)
        return;
    uc_free(v->uc); /* its last report needs the pool */
    revfeed_stop(v->feed);
    jwks_cache_free(v->jwks);
    if (v->pool_ok)
        rconn_pool_destroy(&v->pool);
    http_client_free(v->http);
    pthread_mutex_destroy(&v->dpop_mu);
    idset_free(&v->dpop_seen);
    free(v->issuer);
    free(v->audience);
    free(v);
}

static ztb_err new_fail(ztb_verifier *v, ztb_err rv, const char *msg)
{
    ztb_verifier_free(v);
    return errdetail_setf(NULL, rv, "%s", msg);
}

ztb_err ztb_verifier_new(const ztb_verifier_config *cfg, ztb_verifier **out)
{
    if (out != NULL)
        *out = NULL;
    if (cfg == NULL || out == NULL)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "NULL argument");
    if (cfg->issuer == NULL || cfg->audience == NULL)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "the issuer and audience are required");
    if (cfg->jwks_url == NULL && cfg->jwks_file == NULL)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "a JWKS URL or file is required");
    if (cfg->rev == REVM_UNSET)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG,
                             "choose a revocation source: Redis, introspection, or none");
    if (cfg->jwks_url != NULL && http_url_check(cfg->jwks_url, cfg->allow_http) != ZTB_OK)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG,
                             "the JWKS URL must be https (or http to a loopback host)");
    ztb_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return ZTB_ERR_NOMEM;
    if (pthread_mutex_init(&v->dpop_mu, NULL) != 0) {
        free(v);
        return ZTB_ERR_NOMEM;
    }
    idset_init(&v->dpop_seen, DPOP_LOCAL_MAX);
    v->issuer = strdup(cfg->issuer);
    v->audience = strdup(cfg->audience);
    v->skew_s = cfg->skew_s;
    v->dpop_max_age_s = cfg->dpop_max_age_s;
    v->require_dpop = cfg->require_dpop;
    v->rev = cfg->rev;
    v->introspect = cfg->introspect;
    if (v->issuer == NULL || v->audience == NULL)
        return new_fail(v, ZTB_ERR_NOMEM, "out of memory");

    struct http_client_opts ho = {.ca_file = cfg->ca_file,
                                  .timeout_ms = cfg->startup_ms < 10000 ? cfg->startup_ms : 10000};
    ztb_err rv = http_client_new(&ho, &v->http);
    if (rv != ZTB_OK)
        return new_fail(v, rv, "out of memory");
    char err[256] = "";
    struct jwks_cache_opts jo = {
        .url = cfg->jwks_url, .file = cfg->jwks_file, .http = v->http, .refetch_s = cfg->refetch_s};
    rv = jwks_cache_new(&jo, &v->jwks, err, sizeof(err));
    if (rv != ZTB_OK)
        return new_fail(v, rv, err[0] ? err : "cannot load the JWKS");

    if (cfg->rev == REVM_REDIS) {
        struct revfeed_opts fo = {.skew_s = cfg->skew_s,
                                  .max_entries = cfg->rev_max,
                                  .grace_ms = cfg->grace_ms,
                                  .startup_timeout_ms = cfg->startup_ms};
        rv = redis_target_parse(cfg->redis_url, 1000, &fo.target, err, sizeof(err));
        if (rv == ZTB_OK)
            rv = rconn_pool_init(&v->pool, &fo.target);
        v->pool_ok = rv == ZTB_OK;
        if (rv == ZTB_OK)
            rv = revfeed_start(&fo, &v->feed, err, sizeof(err));
        redis_target_wipe(&fo.target);
        if (rv != ZTB_OK)
            return new_fail(v, rv, err[0] ? err : "cannot start the revocation feed");
    }
    rv = uc_new(v->audience, v->pool_ok ? &v->pool : NULL, cfg->report_ms, &v->uc);
    if (rv != ZTB_OK)
        return new_fail(v, rv, "cannot start the unknown-client reports");
    *out = v;
    return ZTB_OK;
}

const char *ztb_verifier_errdetail(const ztb_verifier *v)
{
    return errdetail_get(v);
}

/* ---- verification ------------------------------------------------------- */

static ztb_err reject(const ztb_verifier *v, ztb_err rv)
{
    const char *why;
    switch (rv) {
    case ZTB_ERR_TOO_LARGE: why = "token longer than 8 KiB"; break;
    case ZTB_ERR_JWS_FORMAT: why = "not a compact JWS"; break;
    case ZTB_ERR_BASE64: why = "a token segment is not base64url"; break;
    case ZTB_ERR_JSON: why = "token header or claims are not strict JSON"; break;
    case ZTB_ERR_JWS_HEADER: why = "invalid JOSE header"; break;
    case ZTB_ERR_FORBIDDEN_HEADER: why = "header names a key or critical extension"; break;
    case ZTB_ERR_ALG: why = "alg is not the key's algorithm"; break;
    case ZTB_ERR_UNKNOWN_KID: why = "kid names no key of the broker"; break;
    case ZTB_ERR_SIG_FORMAT: why = "signature is not 64 bytes"; break;
    case ZTB_ERR_SIGNATURE: why = "signature does not verify"; break;
    case ZTB_ERR_TYP: why = "typ is not at+jwt"; break;
    case ZTB_ERR_CLAIMS: why = "a required claim is missing or invalid"; break;
    case ZTB_ERR_ISSUER: why = "iss is not the configured issuer"; break;
    case ZTB_ERR_AUDIENCE: why = "aud is not this gateway's audience"; break;
    case ZTB_ERR_EXPIRED: why = "token expired"; break;
    case ZTB_ERR_NOT_YET_VALID: why = "token not valid yet (nbf)"; break;
    case ZTB_ERR_IAT: why = "token issued in the future (iat)"; break;
    case ZTB_ERR_ACTION: why = "token is for another action"; break;
    case ZTB_ERR_RESOURCE: why = "token is for another resource"; break;
    case ZTB_ERR_BINDING: why = "proof of possession missing or for another key"; break;
    case ZTB_ERR_DPOP: why = "DPoP proof invalid"; break;
    case ZTB_ERR_DPOP_REPLAY: why = "DPoP proof used before"; break;
    case ZTB_ERR_REVOKED: why = "token revoked"; break;
    case ZTB_ERR_AGENT_REVOKED: why = "all tokens of this agent were revoked"; break;
    case ZTB_ERR_AUDIENCE_KILLED: why = "the audience is disabled"; break;
    case ZTB_ERR_KEY_TAINTED: why = "the signing key is tainted"; break;
    case ZTB_ERR_REVOCATION_STALE: why = "revocation state not current (feed lost)"; break;
    case ZTB_ERR_REPLAY: why = "single-use token already used"; break;
    case ZTB_ERR_SINGLE_USE: why = "single-use token, but no Redis to consume it in"; break;
    case ZTB_ERR_UNAVAILABLE: why = "Redis or introspection cannot answer"; break;
    default: why = ztb_strerror(rv); break;
    }
    return errdetail_set(v, rv, why);
}

/*
 * An issuer or audience mismatch is nearly always a configuration mistake
 * (the broker's --issuer, the gateway's audience): the detail names the
 * expected and the received value for the operator's log. The token's
 * signature verified, so the received value is the broker's own text;
 * errdetail_setf cuts it and replaces control characters all the same.
 */
static ztb_err reject_expected(const ztb_verifier *v, ztb_err rv, const struct claims *c)
{
    int iss = rv == ZTB_ERR_ISSUER;
    const char *got = claims_str(c, iss ? CL_ISS : CL_AUD);
    return errdetail_setf(v, rv, "%s: expected \"%.100s\", received \"%.100s\"",
                          iss ? "iss is not the configured issuer"
                              : "aud is not this gateway's audience",
                          iss ? v->issuer : v->audience, got ? got : "(none)");
}

static int str_eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* The resource check (see ztb_expect.resource). */
static ztb_err check_resource(const struct claims *c, const ztb_expect *ex)
{
    if (ex->flags & ZTB_EXPECT_ANY_RESOURCE)
        return ZTB_OK;
    const char *r = claims_str(c, CL_RESOURCE);
    if (ex->resource == NULL)
        return r == NULL ? ZTB_OK : ZTB_ERR_RESOURCE;
    return str_eq(r, ex->resource) ? ZTB_OK : ZTB_ERR_RESOURCE;
}

/*
 * Remember a DPoP proof id until no verifier could accept it any more (its
 * iat + the largest proof age and skew any verifier may be configured
 * with, wire/wire.h), so a replica with a larger proof age or skew cannot
 * take a replay: DPOP_REPLAY if seen.
 */
static ztb_err dpop_remember(ztb_verifier *v, const char *jkt, const ztb_dpop_result *d,
                             int64_t now)
{
    if (v->rev == REVM_REDIS) {
        uint64_t keep_ms = ztb_wire_dpop_keep_ms(d->iat, ZTB_WIRE_DPOP_MAX_AGE_S, now);
        char key[40 + ZTB_KID_LEN + ZTB_DPOP_JTI_MAX];
        int kl = snprintf(key, sizeof(key), ZTB_WIRE_DPOP_KEY_FMT, jkt, d->jti);
        char px[24];
        int pl = snprintf(px, sizeof(px), "%llu", (unsigned long long)keep_ms);
        const char *argv[] = {"SET", key, "1", "NX", "PX", px};
        size_t lens[] = {3, (size_t)kl, 1, 2, 2, (size_t)pl};
        redisReply *r = NULL;
        ZTB_GUARD(rconn_pool_command(&v->pool, &r, 6, argv, lens));
        ztb_err rv = r->type == REDIS_REPLY_STATUS ? ZTB_OK
                     : r->type == REDIS_REPLY_NIL  ? ZTB_ERR_DPOP_REPLAY
                                                   : ZTB_ERR_UNAVAILABLE;
        freeReplyObject(r);
        return rv;
    }
    uint8_t h[32], id[IDSET_ID_LEN];
    char buf[ZTB_KID_LEN + 2 + ZTB_DPOP_JTI_MAX];
    int n = snprintf(buf, sizeof(buf), "%s:%s", jkt, d->jti);
    ZTB_GUARD(ztb_es256_sha256(buf, (size_t)n, h));
    memcpy(id, h, sizeof(id));
    int added = 0;
    /* this process alone: until its own configuration stops accepting it */
    int64_t exp = d->iat + (int64_t)v->dpop_max_age_s + 2 * (int64_t)v->skew_s + 1;
    pthread_mutex_lock(&v->dpop_mu);
    ztb_err rv = idset_add(&v->dpop_seen, id, exp, now, &added);
    pthread_mutex_unlock(&v->dpop_mu);
    ZTB_GUARD(rv);
    return added ? ZTB_OK : ZTB_ERR_DPOP_REPLAY;
}

/* The cnf binding: what it requires of the request, checked. */
static ztb_err check_binding(ztb_verifier *v, const struct claims *c, const char *token,
                             const ztb_expect *ex, int64_t now)
{
    const char *jkt = claims_str(c, CL_JKT), *x5t = claims_str(c, CL_X5T);
    if (c->cnf_unknown || (c->cnf_present && jkt == NULL && x5t == NULL) ||
        (jkt != NULL && x5t != NULL))
        return ZTB_ERR_BINDING; /* a binding we cannot check is not no binding */
    if (x5t != NULL && (ex->flags & ZTB_EXPECT_DPOP_SCHEME))
        return ZTB_ERR_BINDING; /* bound to a certificate, presented as DPoP */
    if (x5t != NULL)
        return ex->x5t_s256 != NULL &&
                       ztb_ct_eq_len(x5t, strlen(x5t), ex->x5t_s256, strlen(ex->x5t_s256))
                   ? ZTB_OK
                   : ZTB_ERR_BINDING;
    if (jkt == NULL)
        return v->require_dpop || (ex->flags & ZTB_EXPECT_DPOP_SCHEME) ? ZTB_ERR_BINDING : ZTB_OK;
    /* RFC 9449 §7.1: a DPoP-bound token only with the DPoP scheme, which
     * the caller says (a proof beside "Authorization: Bearer" is not it) */
    if (ex->dpop_proof == NULL || !(ex->flags & ZTB_EXPECT_DPOP_SCHEME))
        return ZTB_ERR_BINDING;
    if (ex->htm == NULL || ex->htu == NULL)
        return ZTB_ERR_INVALID_ARG;
    ztb_dpop_result d;
    ztb_err rv =
        ztb_dpop_proof_check(ex->dpop_proof, strnlen(ex->dpop_proof, ZTB_JWS_DEFAULT_MAX + 1),
                             ex->htm, ex->htu, token, now, v->dpop_max_age_s, v->skew_s, &d);
    if (rv != ZTB_OK)
        return ZTB_ERR_DPOP;
    if (!ztb_ct_eq_len(d.jkt, strlen(d.jkt), jkt, strlen(jkt)))
        return ZTB_ERR_BINDING;
    return dpop_remember(v, jkt, &d, now);
}

/*
 * Consume a single-use token: SET NX in Redis until exp + the largest skew
 * any verifier (or the broker's introspection) may accept it with
 * (wire/wire.h), whatever this verifier's own skew.
 */
static ztb_err consume(ztb_verifier *v, const struct claims *c, int64_t now)
{
    if (v->rev != REVM_REDIS)
        return ZTB_ERR_SINGLE_USE;
    const char *jti = claims_str(c, CL_JTI);
    char key[16 + CLAIMS_ID_MAX];
    int kl = snprintf(key, sizeof(key), ZTB_WIRE_USED_KEY_FMT, jti);
    char px[24];
    int pl =
        snprintf(px, sizeof(px), "%llu", (unsigned long long)ztb_wire_used_keep_ms(c->exp, now));
    const char *argv[] = {"SET", key, "1", "NX", "PX", px};
    size_t lens[] = {3, (size_t)kl, 1, 2, 2, (size_t)pl};
    redisReply *r = NULL;
    ZTB_GUARD(rconn_pool_command(&v->pool, &r, 6, argv, lens));
    ztb_err rv = r->type == REDIS_REPLY_STATUS ? ZTB_OK
                 : r->type == REDIS_REPLY_NIL  ? ZTB_ERR_REPLAY
                                               : ZTB_ERR_UNAVAILABLE;
    freeReplyObject(r);
    return rv;
}

/* Everything after the signature: claims, request, revocation, binding, use. */
static ztb_err check_claims(ztb_verifier *v, const char *token, const ztb_expect *ex,
                            ztb_claims *cl)
{
    ZTB_GUARD(access_token_read_claims(&cl->t));
    int64_t now = clock_now_s();
    struct access_token_expect e = {.issuer = v->issuer,
                                    .audience = v->audience,
                                    .now = now,
                                    .skew_s = v->skew_s,
                                    .exp_skew_s = v->skew_s};
    ZTB_GUARD(access_token_check(&cl->t, &e));
    const struct claims *c = &cl->t.c;
    if (!str_eq(claims_str(c, CL_SCOPE), ex->action))
        return ZTB_ERR_ACTION;
    ZTB_GUARD(check_resource(c, ex));
    uint8_t jti_id[IDSET_ID_LEN];
    ZTB_GUARD(idset_key(claims_str(c, CL_JTI), claims_len(c, CL_JTI), jti_id));
    if (v->rev == REVM_REDIS)
        ZTB_GUARD(revfeed_check(v->feed, cl->t.hdr.kid, claims_str(c, CL_AUD),
                                claims_str(c, CL_AGENT), c->gen, jti_id, now));
    ZTB_GUARD(check_binding(v, c, token, ex, now));
    if (v->rev == REVM_INTROSPECT) {
        if (c->single_use)
            return ZTB_ERR_SINGLE_USE;
        int active = 0;
        ZTB_GUARD(agent_introspect(v->introspect, token, &active));
        if (!active)
            return ZTB_ERR_REVOKED;
    }
    if (c->single_use)
        ZTB_GUARD(consume(v, c, now));
    return ZTB_OK;
}

static ztb_err verify_token(ztb_verifier *v, const char *token, const ztb_expect *expect,
                            ztb_claims *claims)
{
    if (claims != NULL)
        claims->valid = 0;
    if (token == NULL || expect == NULL || expect->action == NULL)
        return errdetail_set(v, ZTB_ERR_INVALID_ARG, "NULL verifier, token, expect or action");
    ztb_claims *cl = claims;
    if (cl == NULL) {
        struct thread_cache *t = thread_cache_get();
        if (t != NULL && t->scratch == NULL && (t->scratch = ztb_claims_new()) != NULL)
            t->scratch_free = ztb_claims_free;
        if (t == NULL || t->scratch == NULL)
            return errdetail_set(v, ZTB_ERR_NOMEM, "out of memory");
        cl = t->scratch;
    }
    size_t len = strnlen(token, ZTB_JWS_DEFAULT_MAX + 1);
    uint64_t epoch;
    const ztb_keyset *ks = jwks_cache_keyset(v->jwks, &epoch);
    if (ks == NULL)
        return errdetail_set(v, ZTB_ERR_NOMEM, "out of memory");
    ztb_err rv = access_token_verify_signature(ks, token, len, &cl->t);
    if (rv == ZTB_ERR_UNKNOWN_KID && jwks_cache_unknown_kid(v->jwks, epoch)) {
        ks = jwks_cache_keyset(v->jwks, &epoch); /* a rotation: the new key was fetched */
        if (ks == NULL)
            return errdetail_set(v, ZTB_ERR_NOMEM, "out of memory");
        rv = access_token_verify_signature(ks, token, len, &cl->t);
    }
    char stale[256]; /* a signature by keys not confirmed within their max-age */
    if (rv == ZTB_OK && jwks_cache_fresh(v->jwks, stale, sizeof(stale)) != ZTB_OK)
        return errdetail_setf(v, ZTB_ERR_UNAVAILABLE, "%s", stale);
    if (rv == ZTB_OK)
        rv = check_claims(v, token, expect, cl);
    if (rv == ZTB_ERR_ISSUER || rv == ZTB_ERR_AUDIENCE)
        return reject_expected(v, rv, &cl->t.c);
    if (rv != ZTB_OK)
        return reject(v, rv);
    cl->valid = claims != NULL;
    return ZTB_OK;
}

ztb_err ztb_verify_from(ztb_verifier *v, const char *token, const ztb_expect *expect,
                        ztb_claims *claims, const char *source)
{
    if (v == NULL) {
        if (claims != NULL)
            claims->valid = 0;
        return errdetail_set(v, ZTB_ERR_INVALID_ARG, "NULL verifier, token, expect or action");
    }
    ztb_err rv = verify_token(v, token, expect, claims);
    if (rv == ZTB_OK)
        return ZTB_OK;
    atomic_fetch_add_explicit(&v->refusals[0], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&v->refusals[refusal_slot(rv)], 1, memory_order_relaxed);
    if (refusal_is_foreign(rv))
        uc_note(v->uc, UNKNOWN_FOREIGN_TOKEN, source);
    return rv;
}

ztb_err ztb_verify(ztb_verifier *v, const char *token, const ztb_expect *expect, ztb_claims *claims)
{
    return ztb_verify_from(v, token, expect, claims, NULL);
}

ztb_err ztb_verifier_report_no_token(ztb_verifier *v, const char *source)
{
    ZTB_ENSURE(v != NULL, ZTB_ERR_INVALID_ARG);
    uc_note(v->uc, UNKNOWN_NO_TOKEN, source);
    return ZTB_OK;
}

/* ---- claims ------------------------------------------------------------- */

ztb_claims *ztb_claims_new(void)
{
    return calloc(1, sizeof(ztb_claims));
}

void ztb_claims_free(ztb_claims *c)
{
    if (c != NULL)
        ztb_free_secret(c, sizeof(*c)); /* the payload names the agent's actions */
}

static const char *claim(const ztb_claims *c, enum claims_str s)
{
    return c != NULL && c->valid ? claims_str(&c->t.c, s) : NULL;
}

const char *ztb_claims_subject(const ztb_claims *c)
{
    return claim(c, CL_SUB);
}

const char *ztb_claims_agent(const ztb_claims *c)
{
    return claim(c, CL_AGENT);
}

const char *ztb_claims_action(const ztb_claims *c)
{
    return claim(c, CL_SCOPE);
}

const char *ztb_claims_resource(const ztb_claims *c)
{
    return claim(c, CL_RESOURCE);
}

const char *ztb_claims_jti(const ztb_claims *c)
{
    return claim(c, CL_JTI);
}

const char *ztb_claims_actor(const ztb_claims *c)
{
    return claim(c, CL_ACT_SUB);
}

const char *ztb_claims_rule(const ztb_claims *c)
{
    return claim(c, CL_RULE);
}

const char *ztb_claims_details_type(const ztb_claims *c)
{
    return claim(c, CL_DETAIL_TYPE);
}

const char *ztb_claims_details_json(const ztb_claims *c)
{
    if (c == NULL || !c->valid || c->t.c.details_len == 0)
        return NULL;
    return c->t.c.text + c->t.c.details_off;
}

const char *ztb_claims_json(const ztb_claims *c)
{
    return c != NULL && c->valid ? c->t.payload : NULL;
}

int64_t ztb_claims_expires_at(const ztb_claims *c)
{
    return c != NULL && c->valid ? c->t.c.exp : 0;
}

int ztb_claims_single_use(const ztb_claims *c)
{
    return c != NULL && c->valid && c->t.c.single_use;
}

/* Find member name[0..n) of the object at r's position; 1 if found (r is on its value). */
static ztb_err find_member(struct jr *r, const char *name, size_t n, int *found)
{
    *found = 0;
    ZTB_ENSURE(jr_peek(r) == JR_OBJECT, ZTB_OK);
    ZTB_GUARD(jr_enter_object(r));
    int more;
    ztb_span m;
    for (;;) {
        ZTB_GUARD(jr_next_member(r, &m, &more));
        if (!more)
            return ZTB_OK;
        if (m.len == n && memcmp(m.ptr, name, n) == 0) {
            *found = 1;
            return ZTB_OK;
        }
        ZTB_GUARD(jr_skip(r));
    }
}

ztb_err ztb_claims_detail_number(const ztb_claims *c, const char *path, double *value)
{
    ZTB_ENSURE(c != NULL && path != NULL && value != NULL && *path != '\0', ZTB_ERR_INVALID_ARG);
    const char *obj = ztb_claims_details_json(c);
    ZTB_ENSURE(obj != NULL, ZTB_ERR_INVALID_ARG);
    struct jr r;
    jr_init(&r, obj, c->t.c.details_len);
    for (const char *p = path;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        int found;
        ZTB_ENSURE(n > 0, ZTB_ERR_INVALID_ARG);
        ZTB_GUARD(find_member(&r, p, n, &found));
        ZTB_ENSURE(found, ZTB_ERR_NOT_FOUND);
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    ZTB_ENSURE(jr_peek(&r) == JR_NUMBER, ZTB_ERR_INVALID_ARG);
    return jr_read_number(&r, value);
}

/* ---- stats -------------------------------------------------------------- */

ztb_err ztb_verifier_stats_get(ztb_verifier *v, ztb_verifier_stats *out)
{
    ZTB_ENSURE(v != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    /* the caller's struct may be older (shorter) or newer (longer) than
     * ours: fill what both know, never a byte past either */
    size_t room = out->struct_size;
    ZTB_ENSURE(room >= offsetof(ztb_verifier_stats, jwks_keys) + sizeof(out->jwks_keys),
               ZTB_ERR_INVALID_ARG);
    ztb_verifier_stats st;
    memset(&st, 0, sizeof(st));
    st.jwks_keys = jwks_cache_key_count(v->jwks);
    st.jwks_fetches = jwks_cache_fetches(v->jwks);
    if (v->feed != NULL) {
        struct revfeed_stats s;
        revfeed_stats(v->feed, &s);
        st.revocation_live = s.live;
        st.revocation_entries = s.entries;
        st.revocation_bytes = s.bytes;
        st.revocation_events = s.events;
        st.revocation_bad_events = s.bad_events;
        st.revocation_syncs = s.syncs;
        st.revocation_evicted = s.evicted;
        st.revocation_refused = s.refused;
        st.revocation_full = s.full;
    }
    st.struct_size = room < sizeof(st) ? room : sizeof(st);
    memcpy(out, &st, st.struct_size);
    return ZTB_OK;
}

uint64_t ztb_verifier_refusals(const ztb_verifier *v, ztb_err code)
{
    if (v == NULL)
        return 0;
    size_t slot = code == ZTB_OK ? 0 : refusal_slot(code);
    if (slot == REFUSAL_OTHER && code != ZTB_OK) {
        /* "other" holds every code outside the table: 0 for one asked by name */
        return 0;
    }
    return atomic_load_explicit(&v->refusals[slot], memory_order_relaxed);
}

ztb_err ztb_verifier_unknown_stats_get(ztb_verifier *v, ztb_unknown_client_stats *out, size_t size)
{
    ZTB_ENSURE(v != NULL && out != NULL && size > 0, ZTB_ERR_INVALID_ARG);
    struct uc_stats s;
    uc_stats(v->uc, &s);
    ztb_unknown_client_stats all = {.no_token = s.callers[UNKNOWN_NO_TOKEN],
                                    .foreign_token = s.callers[UNKNOWN_FOREIGN_TOKEN],
                                    .folded = s.folded,
                                    .reports_sent = s.reports_sent,
                                    .reports_failed = s.reports_failed};
    memcpy(out, &all, size < sizeof(all) ? size : sizeof(all));
    return ZTB_OK;
}
