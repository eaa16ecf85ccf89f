/*
 * store_baseline.h - what each agent does on the token path, in Redis: its
 * activity record (last seen, tokens per hour) and its behavioural baseline
 * (what it did while learning). Both are written only by the issue script
 * (store.c, store_issue_check), in the request's own round trip; this file
 * starts a learning window and reads them back.
 *
 * Keys (A = an agent name, all in A's hash slot):
 *
 *   ztb:{A}:agent   fields bl_since, bl_until: the learning window (Unix s);
 *                   absent: no baseline is kept
 *   ztb:{A}:bl      HASH a:<action> u:<audience> p:<resource prefix> -> when
 *                   learned ('-<time>': first seen after learning), h:<0..23>
 *                   tokens learned per UTC hour of day, ka ku kp (distinct
 *                   values learned), days (window in days, at least 1); at
 *                   most STORE_BL_CAP fields
 *   ztb:{A}:seen    HASH last (Unix s of the last token), <hour since epoch>
 *                   -> tokens issued in that UTC hour, the last 24 hours kept;
 *                   i:<slot> / d:<slot> tokens issued / denied per 5-minute
 *                   slot of the last hour; rl, rl:<action> the issue
 *                   script's rate buckets (store.h); expires 2 days after
 *                   the last new hour
 *
 * Every function returns UNAVAILABLE when Redis cannot answer.
 */
#ifndef ZTB_BROKER_STORE_BASELINE_H
#define ZTB_BROKER_STORE_BASELINE_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

struct json_t;

#define STORE_BASELINE_KEY_FMT "ztb:{%s}:bl"
#define STORE_SEEN_KEY_FMT     "ztb:{%s}:seen"
#define STORE_BL_PREFIX_MAX    128  /* bytes of a resource prefix that are kept */
#define STORE_BL_CAP           1024 /* fields of one baseline (the issue script's literal) */

/*
 * The resource prefix the baseline keeps for resource (NULL: none): up to
 * and including its last '/', cut to STORE_BL_PREFIX_MAX bytes on a UTF-8
 * boundary; "" when there is no '/'. out has STORE_BL_PREFIX_MAX + 1 bytes.
 */
void store_resource_prefix(const char *resource, char out[STORE_BL_PREFIX_MAX + 1]);

/*
 * Start (or restart) agent's learning window: learn_s seconds from Redis's
 * now; the old baseline is dropped. only_if_new: do nothing (ZTB_OK,
 * *until = 0) if the agent ever had a window (its enrollment after the
 * first). NOT_FOUND for an unknown agent. *until: the window's end.
 */
ztb_err store_baseline_start(const char *agent, unsigned learn_s, int only_if_new, int64_t *until);

/*
 * Agent's baseline as a new JSON object (caller decrefs): phase
 * ("none"|"learning"|"watching"), learning_since, learning_until,
 * tokens_learned, days, actions/audiences/resource_prefixes (arrays of
 * {"value", "learned_at"} or {"value", "first_seen"} for what came after),
 * hours (24 counts learned per UTC hour of day). NOT_FOUND: no such agent.
 */
ztb_err store_baseline_get(const char *agent, struct json_t **out);

/* What agent's baseline learned: tokens in all, and the distinct actions,
 * audiences and resource prefixes (the worker's confidence inputs). */
ztb_err store_baseline_counts(const char *agent, int64_t *learned, int64_t distinct[3]);

/* Agent's activity: the last token's time (0: none in two days) and the
 * tokens of the last 24 UTC hours (this one included). */
ztb_err store_activity_get(const char *agent, int64_t *last_seen, int64_t *tokens_day);

/*
 * The last hour of the activity record, in STORE_ACTIVITY_SLOTS slots of
 * STORE_ACTIVITY_SLOT_S seconds (fields i:<slot> for tokens issued, d:<slot>
 * for tokens refused; slot = Unix s / STORE_ACTIVITY_SLOT_S): the counts
 * cover the last 55 to 60 minutes. The issuance script and
 * store_activity_denied drop older slots.
 */
#define STORE_ACTIVITY_SLOT_S 300
#define STORE_ACTIVITY_SLOTS  12
struct store_activity {
    int64_t last_seen;   /* 0: no token in two days */
    int64_t tokens_day;  /* issued in the last 24 UTC hours */
    int64_t tokens_hour; /* issued in the last hour */
    int64_t denied_hour; /* refused in the last hour (to a live, authenticated agent) */
};
ztb_err store_activity_read(const char *agent, int64_t now, struct store_activity *out);

/* Count a token request refused to agent at now (the detectors' worker
 * calls it, never a request thread). */
ztb_err store_activity_denied(const char *agent, int64_t now);

/* ---- inventory: agent metadata and unknown clients -------------------------
 *
 *   ztb:{A}:agent         fields owner, description (set by the operator)
 *   ztb:{unknown}:clients HASH "<reason>|<source>" -> callers refused at a
 *                         gateway for carrying no ztb token ("no_token") or a
 *                         token that is not ours ("foreign_token"); at most
 *                         STORE_UNKNOWN_CAP fields (then "other|overflow")
 *   ztb:{unknown}:seen    HASH same fields -> last time (Unix s)
 *   ztb:unknown_reports   LIST of verifiers' reports of the callers they
 *                         refused so (wire/unknown_report.h), popped by the
 *                         detector worker and added to ztb:{unknown}:clients
 */
#define STORE_UNKNOWN_CAP     1000
#define STORE_OWNER_MAX       128
#define STORE_DESCRIPTION_MAX 512

/* Set agent's owner and description (either NULL or "": unchanged). NOT_FOUND
 * for an unknown agent. The caller checked them (printable UTF-8, sizes). */
ztb_err store_agent_set_meta(const char *agent, const char *owner, const char *description);

/* Agent's owner and description ("" when unset). */
ztb_err store_agent_meta(const char *agent, char owner[STORE_OWNER_MAX + 1],
                         char description[STORE_DESCRIPTION_MAX + 1]);

/* A source label as kept: 1..64 of A-Z a-z 0-9 . _ : - (an address or a
 * gateway's label); 0 for anything else. */
int store_source_label_ok(const char *s);

/* Count one refused unknown caller: *count after it (for its field). */
ztb_err store_unknown_client_count(const char *reason, const char *source, int64_t *count);

/* Count by (1..UNKNOWN_COUNT_MAX) refused unknown callers at once (a
 * verifier's report): *count after them. */
ztb_err store_unknown_client_add(const char *reason, const char *source, int64_t by,
                                 int64_t *count);

/*
 * Take up to max (1..1000) verifiers' reports from the list
 * ztb:unknown_reports (RPOP: each report goes to exactly one broker) and
 * call each(text, len, ud) on every one, on this thread; *popped: how many
 * were taken. The text is untrusted (wire/unknown_report.h parses it).
 */
typedef void (*store_report_fn)(const char *text, size_t len, void *ud);
ztb_err store_unknown_reports_pop(size_t max, store_report_fn each, void *ud, size_t *popped);

/* Every unknown caller: a new JSON array of {"reason", "source", "count",
 * "last_seen"} (caller decrefs). */
ztb_err store_unknown_clients(struct json_t **out);

#endif /* ZTB_BROKER_STORE_BASELINE_H */
