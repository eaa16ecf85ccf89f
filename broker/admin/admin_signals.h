/*
 * admin_signals.h - the admin API for revocation and signals (unix socket
 * only; file permissions are its access control).
 *
 *   GET  /v1/revocations                 live revocation events
 *   POST /v1/revocations                 {"type": "jti"|"agent"|"audience"|"key",
 *                                         "id": ..., "token": JWS (instead of a jti),
 *                                         "exp": N (a jti's expiry, if known),
 *                                         "lift": true (audience), "reason": text}
 *   POST /v1/quarantine                  {"agent": NAME, "reason": text}
 *   POST /v1/release                     {"agent": NAME}: lifts quarantine and
 *                                         require-approval
 *   GET  /v1/signals?limit=N&agent=A     recent signals, newest first
 *   GET  /v1/signal-sources              registered sources
 *   POST /v1/signal-sources              {"name": N, "jwk": {...}, "agent": A}
 *                                         -> the source, with its secret (shown once)
 *   DELETE /v1/signal-sources/NAME       remove a source
 *   GET  /v1/signal-actions              responses waiting for (or decided by) an operator
 *   POST /v1/signal-actions/ID/confirm   apply it (its signals: confirmed)
 *   POST /v1/signal-actions/ID/reject    drop it (its signals: false positives);
 *                                         both take an optional {"reason": text}
 *   POST /v1/signals/ID/outcome          {"outcome": "confirmed"|"false_positive",
 *                                         "reason": text}: an operator's verdict
 *   GET  /v1/signal-stats                precision, calibration, escalations and
 *                                         containment per source and detector
 *   GET  /v1/signal-modes                what is in observe mode
 *   POST /v1/signal-modes                {"source": NAME | "detector": TYPE,
 *                                         "mode": "observe"|"enforce"}
 *
 * Every call is audited with the operator's uid; every state change durably.
 */
#ifndef ZTB_BROKER_ADMIN_SIGNALS_H
#define ZTB_BROKER_ADMIN_SIGNALS_H

#include "broker/http/http.h"

void handle_admin_revocations(struct http_req *req, struct http_resp *resp);
void handle_admin_quarantine(struct http_req *req, struct http_resp *resp);
void handle_admin_signals(struct http_req *req, struct http_resp *resp);
void handle_admin_sources(struct http_req *req, struct http_resp *resp);
void handle_admin_source(struct http_req *req, struct http_resp *resp);
void handle_admin_actions(struct http_req *req, struct http_resp *resp);
void handle_admin_action(struct http_req *req, struct http_resp *resp);
void handle_admin_signal_outcome(struct http_req *req, struct http_resp *resp);
void handle_admin_signal_stats(struct http_req *req, struct http_resp *resp);
void handle_admin_signal_modes(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_ADMIN_SIGNALS_H */
