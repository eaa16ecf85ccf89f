/*
 * audit.h - the hash-chained audit log: its writer.
 *
 * Every decision (token issued or denied, enrollment, revocation, signal,
 * key change, admin call) becomes one JSON line:
 *
 *   {"seq":42,"ts":"2026-11-22T01:02:03.456Z","prev":"<sha256 hex of line 41>",
 *    "event":"token.issued","actor":"agent:billing-bot", ...fields}
 *
 * "prev" is the SHA-256 of the previous line's bytes (without its newline);
 * the first line's prev is 64 zeros (the rule is audit/chain.h, shared with
 * the verifier). Changing, inserting or removing any line breaks the chain
 * at the next line, which `ztbctl audit verify` (audit/verify.h) finds.
 * (Removing lines at the end is only visible against a later copy or the
 * Redis stream ztb:audit.)
 *
 * The file (mode 0600, O_APPEND) is the authoritative record: a line is
 * written before the decision it records is answered. Lines are also added,
 * asynchronously and in batches, to the Redis stream ztb:audit for SIEM
 * consumers (audit_stream.h); if Redis is down those copies are dropped and
 * counted, never the file's. The file is fsync'ed once a second, and at once for events
 * marked durable (key changes, revocations).
 *
 * Fields use the logger's typed fields (common/log.h) and the same rules:
 * secrets are redacted by name and shape, everything is JSON-escaped.
 */
#ifndef ZTB_BROKER_AUDIT_H
#define ZTB_BROKER_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/log.h"

/*
 * Open (or create) dir/audit.log and continue its chain. A partial last line
 * (a crash mid-write) is cut off and the cut is itself recorded. If
 * stream is nonzero, lines are also sent to the Redis stream ztb:audit.
 */
ztb_err audit_open(const char *dir, int stream, char *err, size_t errcap);

/* Flush, fsync and close (stops the background threads). */
void audit_close(void);

/*
 * Append one record. actor is "agent:<name>", "operator:<uid>", "broker" or
 * "source:<name>". durable: fsync before returning. Returns IO if the line
 * could not be written (callers treat that as a failed decision).
 */
ztb_err audit_record(const char *event, const char *actor, int durable,
                     const ztb_log_field *fields);

#define audit(event, actor, durable, ...)                                                          \
    audit_record((event), (actor), (durable),                                                      \
                 (const ztb_log_field[]){ZTB_F_SKIP_, ##__VA_ARGS__, ZTB_F_END_})

/* Lines written since open (for /metrics); the stream's drops are
 * audit_stream_dropped(). */
uint64_t audit_lines_written(void);

#endif /* ZTB_BROKER_AUDIT_H */
