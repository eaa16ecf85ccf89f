/*
 * ssf_transmit.h - ztb as an SSF transmitter: SETs pushed (RFC 8935) to the
 * configured receivers whenever ztb revokes a token or an agent,
 * quarantines an agent, requires approval, kills an audience or taints a
 * key; and the transmitter's metadata, GET /.well-known/ssf-configuration.
 *
 * revocation_apply calls ssf_transmit_revocation after a change took effect:
 * it only copies the event into a bounded in-memory queue (SSF_QUEUE_MAX
 * deliveries) and wakes the delivery thread, so a revocation never waits for
 * a receiver. The thread builds each SET once (its jti stays the same across
 * retries), has it signed by the signer with the broker's active token key
 * (typ secevent+jwt), and POSTs it; a transport error, a 5xx, 408 or 429 is
 * retried with exponential back-off (0.5 s doubling to 60 s, for at most
 * SSF_MAX_ATTEMPTS attempts), any other 4xx is final. Failures and drops are
 * counted (ztb_ssf_push_failures_total, ztb_ssf_push_dropped_total) and
 * logged. The queue survives nothing: events not yet delivered when the
 * broker stops are lost (the audit log still has every revocation).
 *
 * Streams that receivers manage (ssf_streams_http.c) are read from Redis by
 * the thread when it fans an event out, and again before each attempt, so a
 * stream deleted, disabled or paused since is respected (paused: the event
 * is held, up to SSF_HOLD_MS). Their SETs' aud is the receiver's SPIFFE ID.
 *
 * Events and subjects (sub_id, RFC 9493 / SSF 1.0):
 *   revoke_token     CAEP session-revoked  {"format":"jwt_id","iss":ISSUER,"jti":JTI}
 *   revoke_all       CAEP session-revoked  {"format":"uri","uri":SPIFFE ID}
 *   quarantine       urn:ztb:ssf:event-type:agent-quarantined  (uri, SPIFFE ID)
 *   require_approval urn:ztb:ssf:event-type:approval-required  (uri, SPIFFE ID)
 *   kill_audience    urn:ztb:ssf:event-type:audience-killed    {"format":"opaque","id":AUD}
 *   taint_key        urn:ztb:ssf:event-type:key-tainted        {"format":"opaque","id":KID}
 */
#ifndef ZTB_BROKER_SSF_TRANSMIT_H
#define ZTB_BROKER_SSF_TRANSMIT_H

#include <stdint.h>

#include <ztb/error.h>

#include "broker/http/http.h"
#include "broker/ssf/ssf.h"
#include "policy/types.h"

#define SSF_QUEUE_MAX 1024
/* Verification SETs queued at once: receivers ask for them at will (one per
 * stream per interval, and a new stream is a new interval), so they get a
 * quarter of the queue and never the room revocations need. */
#define SSF_VERIFY_QUEUE_MAX (SSF_QUEUE_MAX / 4)
#define SSF_MAX_ATTEMPTS     12
#define SSF_BACKOFF_MS       500
#define SSF_BACKOFF_CAP      60000
#define SSF_HOLD_MS          3600000 /* a paused stream holds an event this long at most */
#define SSF_HOLD_POLL_MS     1000    /* how often a held event looks whether it may go */

/*
 * Start the delivery thread for c's receivers (c must outlive
 * ssf_transmit_stop; nothing starts when it has none). issuer is our iss,
 * trust_domain makes agents' SPIFFE IDs.
 */
ztb_err ssf_transmit_start(const struct ssf_config *c, const char *issuer,
                           const char *trust_domain);

/*
 * Queue a verification event (SSF 1.0 §8.1.4) for stream_id, echoing state
 * (at most SSF_STATE_MAX bytes, NULL: none). UNAVAILABLE when no transmitter
 * runs, the queue is full or holds SSF_VERIFY_QUEUE_MAX verifications already.
 */
ztb_err ssf_transmit_verification(const char *stream_id, const char *state);

/* The claims of a verification SET (caller frees): sub_id {"format":
 * "opaque", "id": stream_id}, events {verification: {state}}. */
char *ssf_verification_claims(const char *issuer, const char *audience, const char *stream_id,
                              const char *state, int64_t now, const char *jti);

/* Stop the thread (pending deliveries are dropped and counted). */
void ssf_transmit_stop(void);

/*
 * Queue the event for response on target (a jti, agent, audience or kid) for
 * every receiver that asked for it; cause and initiating entity go into the
 * event. Never blocks on the network; a full queue drops (counted). No-op when
 * no transmitter runs.
 */
void ssf_transmit_revocation(policy_response_kind response, const char *target, const char *cause);

/* The event bit a response is sent as (0: none). */
unsigned ssf_event_for_response(policy_response_kind response);

/*
 * Build the claims of one SET into a new string (caller frees): iss, aud,
 * iat, jti, sub_id, events {uri: {event_timestamp, initiating_entity,
 * reason_admin}}. NULL on a bad argument or out of memory.
 */
char *ssf_set_claims(const char *issuer, const char *trust_domain, const char *audience,
                     policy_response_kind response, const char *target, const char *cause,
                     int64_t now, const char *jti);

/* GET /.well-known/ssf-configuration (SSF 1.0 §7.1). */
void handle_ssf_configuration(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_SSF_TRANSMIT_H */
