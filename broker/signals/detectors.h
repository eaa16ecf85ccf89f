/*
 * detectors.h - the broker's own anomaly detectors.
 *
 * Request handlers report events (a policy denial, a 429, a replayed client
 * assertion or DPoP proof, a used join token presented again, a token issued
 * for an audience) with detect_event(), which never blocks and never touches
 * Redis: the event goes into a bounded queue (full: dropped and counted).
 * One background thread counts events per agent in Redis with short TTLs
 * and, when a threshold is crossed, raises a signal and hands it to the
 * publish callback given to detectors_start(). The broker passes
 * signals_publish_detected() (signals.h): the signal comes from the source
 * "ztb-broker" and gets the same evaluation external signals get, so the
 * policy decides what happens. Through the callback, the detectors do not
 * depend on the signals module (which authenticates callers through
 * client_auth, which reports events here).
 *
 *   event              signal type        fires                         severity, confidence
 *   policy denial      out_of_scope       the first in a window         medium, 0.5
 *                      policy_violation   the Nth in a window           medium, 0.7
 *   429                rate_limit_burst   the Nth in a window           low, 0.6
 *   assertion replay   assertion_replay   the first in a window         high, 0.9
 *   DPoP proof replay  dpop_replay        the first in a window         high, 0.8
 *   join token reuse   join_token_reuse   the first in a window         high, 0.9
 *   audience used      new_audience       an audience the agent never   medium, 0.5
 *                                         used, after its learning period
 *   unknown caller     shadow_ai          the Nth refusal of one source  medium, 0.5
 *   refused at a gateway (no ztb token, or one not ours): at the broker's
 *   /v1/authorize, or counted by a verifier and reported through Redis
 *   baseline deviation baseline_new_action    an action, audience or    medium, graded
 *                      baseline_new_audience  resource prefix not seen  (medium, medium,
 *                      baseline_new_resource  while learning            low)
 *                      baseline_rate      this hour's tokens reach      medium, graded
 *                                         factor x the learned rate
 *
 * Baseline confidences (docs/signals.md, "Behavioural baselines"): a new
 * value of a kind after n tokens learned with k distinct values of it is
 * 1 - (k + 1) / (n + 2) (the rule of succession: how unlikely a new value
 * was, given what was learned); a rate of c tokens this hour against an
 * expected e (learned in this hour of day / days learned) is 1 - max(e, 1)
 * / c. Both are clamped to [0.05, 0.99].
 *
 * Single-use token replays are seen by verifiers, not the broker: they send
 * token_replay signals to POST /v1/signals.
 *
 * Once a second the worker also takes up to 100 verifiers' reports of
 * unknown callers from Redis (store_unknown_reports_pop, wire/
 * unknown_report.h; not while shadow_ai is off), adds their counts and
 * raises shadow_ai for a source whose count crosses the threshold with a
 * report; then it calls the tick hook (detectors_on_tick).
 */
#ifndef ZTB_BROKER_DETECTORS_H
#define ZTB_BROKER_DETECTORS_H

#include <stdint.h>

#include <ztb/error.h>

#include "broker/signals/signal_parse.h"
#include "broker/store/store.h"

enum detect_kind {
    DETECT_POLICY_DENIAL = 0,
    DETECT_RATE_LIMITED,
    DETECT_ASSERTION_REPLAY,
    DETECT_DPOP_REPLAY,
    DETECT_JOIN_REUSE,
    DETECT_AUDIENCE_USED,
    DETECT_BASELINE,       /* through detect_baseline() only */
    DETECT_UNKNOWN_CLIENT, /* through detect_unknown_client() only */
    DETECT_TOKEN_DENIED,   /* any refused token request: counted for `agent show`, raises nothing */
    DETECT_KINDS_N
};

struct detect_config {
    unsigned window_s;             /* counting window (default 60) */
    unsigned denials;              /* policy denials per window that raise a signal; 0 off */
    unsigned rate_limited;         /* 429s per window that raise a signal; 0 off */
    unsigned new_audience_after;   /* learning period in seconds; 0 off */
    unsigned baseline_rate_factor; /* this hour > factor x learned rate raises; 0 off */
    unsigned baseline_rate_min;    /* ... and at least this many tokens this hour */
    unsigned shadow_ai_threshold;  /* refusals of one unknown caller that raise shadow_ai; 0 off */
};

/* Defaults: 60 s window, 10 denials, 20 rate-limited requests, 1 day;
 * baseline rate 4 x learned, at least 20 tokens in the hour; shadow_ai at 10. */
void detectors_defaults(struct detect_config *c);

/*
 * What happens to a signal a detector raised: s (type, severity,
 * confidence, agent, evidence set; id and source empty) belongs to the
 * caller and may be changed. Called on the worker thread only, one signal
 * at a time; its error is logged, never retried.
 */
typedef ztb_err (*detect_publish_fn)(struct signal *s, void *ud);

/* Start the worker with c (copied), handing raised signals to publish(s,
 * ud). STATE if already running, INVALID_ARG without publish. */
ztb_err detectors_start(const struct detect_config *c, detect_publish_fn publish, void *ud);

/* Stop the worker after it handled what is queued. */
void detectors_stop(void);

/*
 * Report one event about agent (a valid agent name; others are ignored).
 * action, audience and detail may be NULL. Never blocks, never fails.
 */
void detect_event(enum detect_kind k, const char *agent, const char *action, const char *audience,
                  const char *detail);

/*
 * Report what an issued token showed about agent's baseline (seen, from
 * store_issue_check; prefix its resource prefix, may be ""). Queues an
 * event only for a deviation: a new value, or this hour's count exactly at
 * the rate threshold (so one signal per agent and hour). Never blocks.
 */
void detect_baseline(const char *agent, const char *action, const char *audience,
                     const char *prefix, const struct store_baseline_seen *seen);

/*
 * Report a caller a gateway refused for carrying no ztb token (reason
 * "no_token") or one that is not ours ("foreign_token"), by source (its
 * address or the gateway's label; store_source_label_ok, else "invalid").
 * Counted in Redis by the worker (ztb:{unknown}:clients); never blocks.
 */
void detect_unknown_client(const char *reason, const char *source);

/* The baseline confidences above, for the worker and the tests. */
double detect_novelty_confidence(int64_t learned, int64_t distinct);
double detect_rate_confidence(double expected, int64_t count);

/* The hour's token count at which baseline_rate fires for expected tokens
 * an hour (0: the rate check is off). */
int64_t detect_rate_threshold(const struct detect_config *c, double expected);

/*
 * A function the worker calls about once a second (and not while it handles
 * an event), e.g. the out-of-scope summary. Set before detectors_start;
 * ignored while the worker runs.
 */
typedef void (*detect_tick_fn)(void *ud);
void detectors_on_tick(detect_tick_fn fn, void *ud);

/* Verifiers' reports handled (bad = 0) or refused as malformed (bad = 1). */
uint64_t detectors_reports(int bad);

/* Events dropped because the queue was full (or the worker not running). */
uint64_t detectors_dropped(void);

/* Events taken from the queue and handled (for tests). */
uint64_t detectors_handled(void);

#endif /* ZTB_BROKER_DETECTORS_H */
