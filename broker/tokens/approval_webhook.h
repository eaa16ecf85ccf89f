/*
 * approval_webhook.h - notifications of pending approvals (and, if asked,
 * of their resolution) to one configured webhook, so that they reach the
 * chat or paging tool operators already watch (docs/broker.md,
 * "Approval notifications").
 *
 * Each notification is one JSON document POSTed by the push client
 * (broker/http/push_client.h: background thread, bounded queue, retries
 * with back-off and jitter), signed by the broker's token signing key
 * through the signer: the header
 *
 *   ZTB-Signature: <JWS protected header>..<signature>
 *
 * is a compact JWS with a detached payload (RFC 7515 appendix F): the
 * payload is the request body, byte for byte. The protected header is
 * {"alg":"ES256","typ":"ztb-webhook+jwt","kid":...}; the receiver puts
 * base64url(body) between the two dots and verifies the result with the
 * key of that kid in the broker's JWKS (GET /.well-known/jwks.json), then
 * checks typ, iss, a recent iat and a jti it has not seen. No shared
 * secret exists: the JWKS is public.
 *
 * The body:
 *   {"iss":ISSUER,"jti":"whk_...","iat":SECONDS,"event":EVENT,
 *    "approval":{...as ztbctl approvals show...},
 *    "approve":"ztbctl approvals approve ID","deny":"ztbctl approvals deny ID --reason TEXT"}
 * EVENT is approval.requested, or (with resolutions on) approval.approved,
 * approval.denied or approval.expired.
 *
 * Must never: block the token path (the calls below only queue), or send
 * a notification of an approval whose audit record was not written.
 */
#ifndef ZTB_BROKER_APPROVAL_WEBHOOK_H
#define ZTB_BROKER_APPROVAL_WEBHOOK_H

#include <stdint.h>

#include <ztb/error.h>

#include "broker/store/store_approvals.h"
#include "common/buf.h"

#define APPROVAL_WEBHOOK_TYP    "ztb-webhook+jwt"
#define APPROVAL_WEBHOOK_HEADER "ZTB-Signature"

/* Sign payload as a compact JWS with the given typ (the broker's token
 * key, through the signer); appended to jws. */
typedef ztb_err (*approval_webhook_sign_fn)(void *arg, const char *typ, const void *payload,
                                            size_t n, ztb_buf *jws);

struct approval_webhook_opts {
    const char *url;       /* checked with push_url_check */
    int allow_http;        /* 1: http:// to a host that is not loopback is accepted */
    int resolutions;       /* 1: also approved, denied, expired */
    unsigned timeout_ms;   /* one attempt (0: 5000) */
    unsigned max_attempts; /* 0: 8 */
    unsigned backoff_ms;   /* first retry delay (0: 500) */
    const char *issuer;    /* the body's iss */
    approval_webhook_sign_fn sign;
    void *sign_arg;
};

/* Start the notifications (once, before the HTTP servers). INVALID_ARG
 * with the reason in err for a URL push_url_check refuses. */
ztb_err approval_webhook_start(const struct approval_webhook_opts *o, char *err, size_t errcap);

/* Stop them (after the HTTP servers stopped): an attempt in flight ends,
 * what still waits is dropped and logged. */
void approval_webhook_stop(void);

/* 1 while notifications are on. */
int approval_webhook_on(void);

/* Queue the notification of pending approval a (approval.requested). */
void approval_webhook_requested(const struct store_approval *a);

/* Queue the notification of a's resolution (approved, denied or expired;
 * nothing for another status, or when resolutions are off). */
void approval_webhook_resolved(const struct store_approval *a);

/*
 * The notification body of event for a into out (unit tests; jti from
 * ztb_random). Returns OK or NOMEM.
 */
ztb_err approval_webhook_body(const char *issuer, const char *event, const struct store_approval *a,
                              int64_t now, ztb_buf *out);

/*
 * The ZTB-Signature value of body into out, from a compact JWS of it that
 * sign made: the payload segment removed. Returns OK, or the signer's
 * error, or MALFORMED if sign did not return three segments.
 */
ztb_err approval_webhook_signature(approval_webhook_sign_fn sign, void *arg, const void *body,
                                   size_t n, ztb_buf *out);

#endif /* ZTB_BROKER_APPROVAL_WEBHOOK_H */
