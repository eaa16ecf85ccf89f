/*
 * unknown_clients.h - a verifier's count of callers it refused for carrying
 * no ztb token or a token that is not this broker's, by source, and the
 * thread that reports the count to the broker through Redis
 * (wire/unknown_report.h: LPUSH onto ztb:unknown_reports, LTRIM).
 *
 * Memory is bounded whatever callers do: at most UC_TOP sources are kept
 * per report; when the table is full, a new source takes the place of the
 * one with the fewest callers, whose count moves to the "_other" source of
 * its reason (the space-saving rule: a busy source is never pushed out by a
 * flood of one-off sources, and no caller goes uncounted). Each report
 * empties the table.
 *
 * Must never: block a refusal on Redis (uc_note takes one mutex and does no
 * I/O), keep more than UC_TOP sources, or fail the verifier when Redis
 * refuses a report (it is dropped and counted).
 */
#ifndef ZTB_SDK_UNKNOWN_CLIENTS_H
#define ZTB_SDK_UNKNOWN_CLIENTS_H

#include <stdint.h>

#include <ztb/error.h>

#include "sdk/src/redis_conn.h"
#include "wire/unknown_report.h"

#define UC_TOP 64 /* sources kept per report */

struct unknown_clients;

struct uc_stats {
    uint64_t callers[UNKNOWN_REASONS_N]; /* callers noted, by reason */
    uint64_t folded;                     /* callers moved to "_other" */
    uint64_t reports_sent, reports_failed;
};

/*
 * A new counter for gateway (its audience, copied). pool: where to send the
 * reports (borrowed; NULL: count only, never report); interval_ms: how
 * often (0: never). The reporting thread blocks every signal. NOMEM, or an
 * error from starting the thread.
 */
ztb_err uc_new(const char *gateway, struct rconn_pool *pool, unsigned interval_ms,
               struct unknown_clients **out);

/* Send what is counted (if there is a pool), stop the thread, free u (NULL is fine). */
void uc_free(struct unknown_clients *u);

/* Count one caller of source (NULL: "unknown"; not a label: "invalid"). Never blocks on I/O. */
void uc_note(struct unknown_clients *u, enum unknown_reason reason, const char *source);

/* Move what is counted into *r (gateway, window and entries; n = 0 if
 * nothing) and empty the table. */
void uc_take(struct unknown_clients *u, struct unknown_report *r);

/* Send what is counted now, on the calling thread: OK (also when there was
 * nothing), UNAVAILABLE or the Redis refusal (the report is then dropped). */
ztb_err uc_flush(struct unknown_clients *u);

void uc_stats(struct unknown_clients *u, struct uc_stats *out);

#endif /* ZTB_SDK_UNKNOWN_CLIENTS_H */
