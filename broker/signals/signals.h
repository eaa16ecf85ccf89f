/*
 * signals.h - anomaly signals: the POST /v1/signals endpoint and the one
 * path every signal takes, whether it came from the SOC, a gateway or the
 * broker's own detectors.
 *
 * Sources authenticate in one of three ways:
 *   - Authorization: Bearer ztbsrc_...   a registered source's secret
 *     (ztbctl signals source add NAME; only its SHA-256 is stored);
 *   - Content-Type: application/secevent+jwt   a SET signed (ES256) by a
 *     registered transmitter key (ztbctl signals source add NAME --jwk FILE);
 *     its iss names the source;
 *   - Authorization: Bearer <session credential or client assertion> of an
 *     enrolled identity registered as a source (--agent AGENT): gateways.
 *
 * Then (signals_process): the signal gets an id, is audited, and the policy
 * says which anomaly responses apply (policy_signal_responses). For each:
 * with independent_signals >= 2 the distinct sources reporting on the same
 * target within the window are counted in Redis (a source counts once);
 * with operator_confirmation the response waits as an action an operator
 * confirms or rejects; otherwise it is applied (revocation.h). The signal
 * and what became of each response are recorded (ztbctl signals list).
 *
 * Must never: act on a signal whose source was not authenticated, count one
 * source twice toward a quorum, or echo a secret into an answer or a log.
 */
#ifndef ZTB_BROKER_SIGNALS_H
#define ZTB_BROKER_SIGNALS_H

#include <ztb/error.h>

#include "broker/http/http.h"
#include "broker/signals/signal_parse.h"
#include "broker/store/store_actions.h"
#include "broker/store/store_rev.h"

#define SIGNALS_BROKER_SOURCE "ztb-broker" /* the detectors' source name (reserved) */
#define SIGNALS_SEEN_TTL      86400        /* a source's signal jti is remembered this long */

struct broker;
struct json_t;

/*
 * Process one authenticated signal (s->source set, s->id may be empty: then
 * one is made) under b's policy. If result is not NULL it gets a new JSON object:
 * {"signal": ID, "duplicate": bool, "responses": [{"id","response","status",
 * "have","need","action","reason"}...]}; status is applied, unchanged,
 * pending_signals, pending_operator, skipped or failed. UNAVAILABLE if Redis
 * cannot answer (the source should retry: nothing marks it received).
 */
ztb_err signals_process(const struct broker *b, struct signal *s, struct json_t **result);

/*
 * The detectors' publish callback (detectors_start): s comes from the
 * broker's own source SIGNALS_BROKER_SOURCE; then signals_process with ud
 * as the broker (main.c passes &g_broker).
 */
ztb_err signals_publish_detected(struct signal *s, void *ud);

/*
 * Apply an action an operator confirmed (store_action_decide): the
 * response it holds, audited with the operator as actor. Sets the action's
 * status to applied or failed.
 */
ztb_err signals_apply_action(const struct store_action *a, const char *actor,
                             struct json_t **result);

/* POST /v1/signals, and the server's hook for bodies over its size limit
 * (http_limits.on_too_large): refusals of oversized signals are audited. */
void handle_signals(struct http_req *req, struct http_resp *resp);
void handle_signals_too_large(struct http_req *req, struct http_resp *resp);

/* The peer's address as text ("unix" or "" when unknown), for audit lines. */
void signals_peer_text(const struct http_req *req, char *out, size_t cap);

#endif /* ZTB_BROKER_SIGNALS_H */
