/*
 * revocation.c - apply one anomaly response (see revocation.h).
 *
 * How it works: one store_rev call per response (an atomic script that
 * writes the state, adds the event to ztb:revocations and publishes it),
 * then one durable audit line. A key taint also moves signing off the key:
 * if it is the active key, a next key is made (if there is none) and
 * promoted at once (forced: a compromised key must stop signing now, even
 * if some verifier has not fetched the new key yet; the SDK refetches the
 * JWKS on an unknown kid), and the tainted key is retired and unpublished.
 *
 * Must never: report a revocation as applied before Redis confirmed it,
 * skip the audit line of one that was, or let a tainted key's entry expire
 * while the key may still be published.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker/audit/audit.h"
#include "broker/signer/keys.h"
#include "broker/signals/revocation.h"
#include "broker/ssf/ssf_transmit.h"
#include "broker/store/store_rev.h"
#include "common/log.h"
#include "wire/wire.h"
#include "pki/rotation.h"
#include "policy/policy.h"

#define TAINT_FALLBACK ((int64_t)30 * 86400) /* the key could not be unpublished */

void revocation_limits(struct rev_limits *l)
{
    l->max_token_ttl = ZTB_ROTATION_DEFAULT_MAX_TOKEN_TTL_S;
    l->skew = ZTB_ROTATION_DEFAULT_SKEW_S;
    l->jwks_max_age = ZTB_ROTATION_DEFAULT_JWKS_CACHE_S;
    struct keys_state *ks = keys_acquire();
    if (ks != NULL) {
        if (ks->max_token_ttl > 0)
            l->max_token_ttl = ks->max_token_ttl;
        l->skew = ks->skew;
        if (ks->jwks_max_age > 0)
            l->jwks_max_age = ks->jwks_max_age;
        keys_release(ks);
    }
    /* a revocation must outlive every verifier's acceptance of what it
     * revokes: verifiers may be configured with up to the wire's skew bound */
    if (l->skew < ZTB_WIRE_MAX_SKEW_S)
        l->skew = ZTB_WIRE_MAX_SKEW_S;
}

const char *revocation_target_kind(policy_response_kind r)
{
    switch (r) {
    case POLICY_RESPONSE_REVOKE_TOKEN: return "jti";
    case POLICY_RESPONSE_REQUIRE_APPROVAL:
    case POLICY_RESPONSE_QUARANTINE:
    case POLICY_RESPONSE_REVOKE_ALL: return "agent";
    case POLICY_RESPONSE_KILL_AUDIENCE: return "audience";
    case POLICY_RESPONSE_TAINT_KEY: return "key";
    }
    return "unknown";
}

/*
 * Move signing off kid: rotate (forced) until another key is active, then
 * retire kid by force so it leaves the JWKS. Returns 1 if kid is no longer
 * published by us (or never was), 0 if it may still be.
 */
static int rotate_away(const char *kid, int64_t now, struct rev_result *out)
{
    struct keys_state *ks = keys_acquire();
    if (ks == NULL) {
        snprintf(out->detail, sizeof(out->detail), "no key store loaded: state only");
        return 1;
    }
    int active = ks->active != NULL && strcmp(ztb_key_kid(ks->active), kid) == 0;
    keys_release(ks);
    ztb_err rv = ZTB_OK;
    for (int i = 0; active && i < 2 && rv == ZTB_OK; i++) {
        ztb_rotate_result res;
        rv = keys_rotate(now, 1, &res);
        if (rv == ZTB_OK && res.action == ZTB_ROTATE_PROMOTED) {
            snprintf(out->new_kid, sizeof(out->new_kid), "%s", res.kid);
            active = 0;
        }
    }
    if (rv == ZTB_OK && !active)
        rv = keys_retire(kid, now, 1);
    if (rv == ZTB_ERR_NOT_FOUND) {
        snprintf(out->detail, sizeof(out->detail), "not a key of this broker's key store");
        return 1;
    }
    if (rv != ZTB_OK || active) {
        snprintf(out->detail, sizeof(out->detail), "rotating away from the key failed: %s",
                 ztb_err_name(rv));
        ztb_log(ZTB_LOG_ERROR, "revocation.rotate_failed", ZTB_F_STR("kid", kid), ZTB_F_ERR(rv));
        return 0;
    }
    snprintf(out->detail, sizeof(out->detail), "rotated: the key is retired and unpublished");
    return 1;
}

static ztb_err taint(const char *kid, const struct rev_limits *l, struct rev_result *out)
{
    int64_t now = (int64_t)time(NULL);
    /* Verifiers first (the state is what they check), then our own keys. A
     * forged token may carry any exp, so the entry must outlive the key's
     * publication: the longest a verifier caches the JWKS, plus the longest
     * a genuine token it signed lives. */
    out->exp = now + (int64_t)l->max_token_ttl + (int64_t)l->jwks_max_age;
    ztb_err rv = store_rev_key(kid, out->exp, l->skew);
    if (rv != ZTB_OK)
        return rv;
    out->changed = 1;
    if (!rotate_away(kid, now, out)) {
        out->exp = now + TAINT_FALLBACK;
        rv = store_rev_key(kid, out->exp, l->skew);
    }
    return rv;
}

/*
 * Revoke one jti. Its life is decided from what the broker knows itself:
 * the exp of a token whose signature it verified, or else the longest a
 * token of ours can live from now (no token issued before now outlives
 * it). An exp a source or an operator merely states is never believed: a
 * short one would let the token outlive its revocation. In Redis the entry
 * lives at least the longest life whatever exp says (margin against a
 * Redis clock that jumps forward). "Nothing to do" (changed 0) only when
 * the verified exp + skew has passed by the broker's clock.
 */
static ztb_err revoke_jti(const struct rev_request *r, const struct rev_limits *l, int64_t now,
                          struct rev_result *out)
{
    int verified = r->jti_exp_verified && r->jti_exp > 0;
    out->exp = verified ? r->jti_exp : now + (int64_t)l->max_token_ttl;
    ztb_err rv =
        store_rev_jti(r->target, out->exp, l->skew, l->max_token_ttl + l->skew, &out->changed);
    if (rv == ZTB_OK && !out->changed)
        snprintf(out->detail, sizeof(out->detail),
                 "the token's verified exp has passed: no verifier accepts it, nothing stored");
    return rv;
}

static ztb_err apply(const struct rev_request *r, const struct rev_limits *l,
                     struct rev_result *out)
{
    int64_t now = (int64_t)time(NULL);
    switch (r->response) {
    case POLICY_RESPONSE_REVOKE_TOKEN: return revoke_jti(r, l, now, out);
    case POLICY_RESPONSE_REQUIRE_APPROVAL:
        return store_agent_flag(r->target, "approval", !r->lift, &out->changed);
    case POLICY_RESPONSE_QUARANTINE:
        return store_agent_flag(r->target, "quarantined", !r->lift, &out->changed);
    case POLICY_RESPONSE_REVOKE_ALL:
        out->changed = 1;
        return store_rev_agent(r->target, l->max_token_ttl, l->skew, &out->gen, &out->exp);
    case POLICY_RESPONSE_KILL_AUDIENCE:
        out->exp = 0;
        return store_rev_audience(r->target, r->lift, l->skew, &out->changed);
    case POLICY_RESPONSE_TAINT_KEY: return taint(r->target, l, out);
    }
    return ZTB_ERR_INVALID_ARG;
}

/* A jti exp that was only stated (not verified), for the audit line; 0 if none. */
static int64_t claimed_exp(const struct rev_request *r)
{
    return r->response == POLICY_RESPONSE_REVOKE_TOKEN && !r->jti_exp_verified ? r->jti_exp : 0;
}

ztb_err revocation_apply(const struct rev_request *r, struct rev_result *res)
{
    struct rev_result local = {0};
    struct rev_result *out = res ? res : &local;
    memset(out, 0, sizeof(*out));
    if (r == NULL || r->target == NULL || !store_id_ok(r->target))
        return ZTB_ERR_INVALID_ARG;
    if (r->lift && r->response != POLICY_RESPONSE_QUARANTINE &&
        r->response != POLICY_RESPONSE_REQUIRE_APPROVAL &&
        r->response != POLICY_RESPONSE_KILL_AUDIENCE)
        return ZTB_ERR_INVALID_ARG;
    struct rev_limits l;
    revocation_limits(&l);
    const char *actor = r->actor ? r->actor : "broker";
    const char *name = policy_response_name(r->response);
    ztb_err rv = apply(r, &l, out);
    if (rv != ZTB_OK) {
        audit("revocation.failed", actor, 0, ZTB_F_STR("response", name),
              ZTB_F_STR(revocation_target_kind(r->response), r->target),
              ZTB_F_BOOL("lift", r->lift), ZTB_F_STR("cause", r->cause),
              ZTB_F_STR("entry", r->entry), ZTB_F_STR("signals", r->signals), ZTB_F_ERR(rv));
        return rv;
    }
    /* durable: the second record of a revocation, fsync'ed before we answer;
     * the revocation is in effect already (containment first), so a record
     * that cannot be written now waits in memory for the disk */
    int pending = 0;
    ztb_err arv = audit_queued(r->lift ? "revocation.lifted" : "revocation.applied", actor, 1,
                               &pending, ZTB_F_STR("response", name),
                               ZTB_F_STR(revocation_target_kind(r->response), r->target),
                               ZTB_F_STR("cause", r->cause), ZTB_F_STR("entry", r->entry),
                               ZTB_F_STR("signals", r->signals), ZTB_F_STR("reason", r->reason),
                               ZTB_F_BOOL("changed", out->changed), ZTB_F_INT("gen", out->gen),
                               ZTB_F_INT("exp", out->exp), ZTB_F_INT("claimed_exp", claimed_exp(r)),
                               ZTB_F_STR("new_kid", out->new_kid[0] ? out->new_kid : NULL),
                               ZTB_F_STR("detail", out->detail[0] ? out->detail : NULL));
    ztb_log(ZTB_LOG_WARN, r->lift ? "revocation.lifted" : "revocation.applied",
            ZTB_F_STR("response", name), ZTB_F_STR("target", r->target),
            ZTB_F_STR("cause", r->cause), ZTB_F_STR("actor", actor));
    if (!r->lift && out->changed) /* tell SSF receivers; queued, never waits */
        ssf_transmit_revocation(r->response, r->target, r->cause);
    out->audit_pending = arv == ZTB_OK && pending;
    out->audit_lost = arv != ZTB_OK;
    return arv == ZTB_OK && !pending ? ZTB_OK : ZTB_ERR_IO;
}

const char *revocation_audit_state(const struct rev_result *res)
{
    return res->audit_lost ? "lost" : res->audit_pending ? "pending" : "written";
}
