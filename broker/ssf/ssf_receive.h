/*
 * ssf_receive.h - POST /v1/ssf/events: ztb as an SSF receiver (RFC 8935
 * push delivery of CAEP events in Security Event Tokens).
 *
 * A SET is accepted when its (unverified) iss names a configured
 * transmitter, its signature verifies with that transmitter's JWKS (key by
 * kid, algorithm the key's), its typ is secevent+jwt, and its claims pass
 * ssf_set_read. It then becomes a signal from source <transmitter name>:
 *
 *   session-revoked      -> "caep:session-revoked"      severity high
 *   credential-change    -> "caep:credential-change"    severity high
 *   token-claims-change  -> "caep:token-claims-change"  severity medium
 *
 * with the subject's agent (and token jti for a jwt_id subject), the
 * transmitter's confidence, the SET's jti as the signal's source jti (a jti
 * seen within 24 h is refused: replay) and signals_process lets the policy
 * decide what happens. Answers per RFC 8935 §2.2-2.4: 202 with no body, or
 * 400 {"err": CODE, "description": TEXT} (503 when Redis cannot answer:
 * the transmitter retries).
 *
 * Must never: act on a SET whose signature did not verify, or read its
 * claims with jansson before that.
 */
#ifndef ZTB_BROKER_SSF_RECEIVE_H
#define ZTB_BROKER_SSF_RECEIVE_H

#include "broker/http/http.h"

void handle_ssf_events(struct http_req *req, struct http_resp *resp);

/* The signal type a received event bit becomes ("caep:session-revoked"), or NULL. */
const char *ssf_signal_type(unsigned ev);

#endif /* ZTB_BROKER_SSF_RECEIVE_H */
