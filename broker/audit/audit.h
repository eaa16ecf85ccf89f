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
 * at the next line, which `ztbctl audit verify` (audit/verify.h) finds;
 * signed checkpoints (below) and anchors make a cut at either end visible.
 *
 * With a replica id set (audit_set_replica), every line also carries
 * "replica":"<id>" right after prev, so the chains of several replicas can
 * be told apart in the Redis stream.
 *
 * The file (mode 0600, O_APPEND) is the authoritative record: a line is
 * written before the decision it records is answered. A line is written
 * whole or not at all: a short write (a full disk) is cut back with
 * ftruncate to the end of the last whole line, and the chain's head moves
 * only after a whole line. While lines cannot be written, audit_writable()
 * is 0 (/readyz), failures are counted (/metrics), and every second the
 * writer tries again; the first line that gets through after a failure is
 * "audit.resumed".
 *
 * Records that must not be lost although their decision already took
 * effect (a revocation: containment first) go through audit_record_queued:
 * if the line cannot be written it waits in a bounded queue in memory
 * (AUDIT_PENDING_MAX records) and is written, before any newer line, as
 * soon as the disk allows, with "queued_at" saying when it was decided. A
 * record that finds the queue full is lost: it is counted, and the loss
 * is recorded ("audit.records_lost", with the count) once writing resumes.
 *
 * Signed checkpoints (audit_checkpoints_start): every N records or T
 * seconds a background thread has the chain's head (seq and hash) signed
 * as a compact JWS by the broker's token key (through the signer process,
 * never on a request's path) and appends it as an "audit.checkpoint" line
 * (audit/chain.h describes it; audit/verify.h checks it). Lines are also added,
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

#include "audit/chain.h"
#include "common/buf.h"
#include "common/log.h"

/*
 * Open (or create) dir/audit.log and continue its chain. A partial last line
 * (a crash mid-write) is cut off and the cut is itself recorded. If
 * stream is nonzero, lines are also sent to the Redis stream ztb:audit.
 * The file is held locked (flock) until closed: EXISTS (err says why) if
 * another process holds it; nothing is written then. An audit.log with no
 * line yet continues the chain of the rotated audit.log.N beside it whose
 * last seq is highest (IO/MALFORMED if one cannot be read).
 */
ztb_err audit_open(const char *dir, int stream, char *err, size_t errcap);

/*
 * Reopen the log's path after it was moved away (logrotate's default
 * "create" mode; the broker calls this on SIGHUP): if the path now names a
 * new, empty file, the chain continues in it with an "audit.reopened" line
 * (seq and prev go on from the moved file; verify the files together,
 * oldest first). Nothing happens if the path is still the open file.
 * EXISTS (err says why) if the path names another file that is not empty:
 * the old descriptor is kept. IO if it cannot be opened; STATE if the log
 * is not open.
 */
ztb_err audit_reopen(char *err, size_t errcap);

/*
 * Rotate by size (0: never, the default): the line that takes the file to
 * n bytes or more is its last; the writer then keeps it as audit.log.N (N
 * one more than any such file in the directory; a hard link, then a new
 * file renamed over audit.log) and goes on in the new audit.log, whose
 * first line, "audit.rotated" (with previous, the old file's name), chains
 * to the old file's last line; the checkpoint thread (when on) is asked
 * for a checkpoint at once. Lines are never split. SIGHUP reopening still
 * works beside it. Call before or after audit_open.
 */
void audit_set_max_bytes(uint64_t n);

/* Size-based rotations done since start. */
uint64_t audit_rotations(void);

/* Flush, fsync and close (stops the background threads; with checkpoints
 * on, a last checkpoint covering every line is written first). */
void audit_close(void);

/* The 503 answer's description for a decision refused because its record
 * could not be written (with ztb_error AUDIT_UNAVAILABLE and Retry-After). */
#define AUDIT_UNAVAILABLE_WHY                                                                      \
    "the audit log cannot be written (disk full?): nothing was decided, try again later"

/* Longest replica id: letters, digits, '.', '_', '-'. */
#define AUDIT_REPLICA_MAX AUDIT_REPLICA_ID_MAX

/*
 * Set the replica id every line carries from the next audit_open on (NULL
 * or "": none). INVALID_ARG if it is too long or has other characters.
 * Not thread-safe: call before audit_open.
 */
ztb_err audit_set_replica(const char *id);

/* Records held in memory by audit_record_queued while the log cannot be
 * written. */
#define AUDIT_PENDING_MAX 1024

/*
 * Append one record. actor is "agent:<name>", "operator:<uid>", "broker" or
 * "source:<name>". durable: fsync before returning. Returns IO if the line
 * could not be written (callers treat that as a failed decision).
 */
ztb_err audit_record(const char *event, const char *actor, int durable,
                     const ztb_log_field *fields);

/*
 * The W3C trace id (32 lowercase hex, already checked) that the records this
 * thread appends from now on carry as "trace_id"; NULL or "": none. Set by
 * the HTTP server around each request's handler.
 */
void audit_set_trace_id(const char *trace_id);

#define audit(event, actor, durable, ...)                                                          \
    audit_record((event), (actor), (durable),                                                      \
                 (const ztb_log_field[]){ZTB_F_SKIP_, ##__VA_ARGS__, ZTB_F_END_})

/*
 * Append one record of a decision that has already taken effect. ZTB_OK
 * with *pending 0: written. ZTB_OK with *pending 1: the log cannot be
 * written now; the record is held in memory and written, in order, as soon
 * as it can be (tell the operator it is pending). IO: not written and the
 * queue is full: the record is lost (counted, and the loss recorded later).
 * STATE: the log is not open.
 */
ztb_err audit_record_queued(const char *event, const char *actor, int durable,
                            const ztb_log_field *fields, int *pending);

#define audit_queued(event, actor, durable, pending, ...)                                          \
    audit_record_queued((event), (actor), (durable),                                               \
                        (const ztb_log_field[]){ZTB_F_SKIP_, ##__VA_ARGS__, ZTB_F_END_},           \
                        (pending))

/* Lines written since open (for /metrics); the stream's drops are
 * audit_stream_dropped(). */
uint64_t audit_lines_written(void);

/* 1 while the log is open and its last write succeeded with nothing
 * pending (for /readyz). */
int audit_writable(void);

/* Failed attempts to write a line since the process started (/metrics). */
uint64_t audit_write_failures(void);

/* Records waiting in memory now, and records lost since the process
 * started because the queue was full (/metrics). */
uint64_t audit_pending_records(void);
uint64_t audit_records_lost(void);

/* ---- signed checkpoints -------------------------------------------------- */

/*
 * Sign payload[0..n) (the checkpoint's JSON) as a compact JWS with typ
 * AUDIT_CHECKPOINT_TYP (audit/chain.h), appended to jws. Called on the
 * checkpoint thread, never under the writer's lock. Any error: no
 * checkpoint this time (tried again later).
 */
typedef ztb_err (*audit_sign_fn)(void *arg, const void *payload, size_t n, ztb_buf *jws);

struct audit_checkpoint_opts {
    audit_sign_fn sign;
    void *arg;
    unsigned every_records; /* 0: AUDIT_CHECKPOINT_RECORDS */
    unsigned every_ms;      /* 0: AUDIT_CHECKPOINT_MS */
};
#define AUDIT_CHECKPOINT_RECORDS 1000
#define AUDIT_CHECKPOINT_MS      10000

/* Start the checkpoint thread (after audit_open). INTERNAL if it cannot be
 * made; STATE if the log is not open or checkpoints already run. */
ztb_err audit_checkpoints_start(const struct audit_checkpoint_opts *o);

/* Write a checkpoint now if any line is not yet covered (on the caller's
 * thread: for tests and the shutdown). Returns the signer's error, IO if
 * the line could not be written, ZTB_OK also when nothing was to cover. */
ztb_err audit_checkpoint_now(void);

/* Signed checkpoints written since open, and attempts that failed. */
uint64_t audit_checkpoints_written(void);
uint64_t audit_checkpoint_failures(void);

#endif /* ZTB_BROKER_AUDIT_H */
