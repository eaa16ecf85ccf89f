/*
 * audit_stream.h - the audit log's copy in the Redis stream ztb:audit, for
 * SIEM consumers.
 *
 * The writer (audit.c) hands every line it has written to the stream; one
 * background thread sends the queued lines in batches, each one pipeline
 * of XADD ztb:audit MAXLEN ~ 1000000 * line <line> replica <id> on the
 * broker's Redis client: several replicas share the stream, and a consumer
 * follows each replica's chain by its id. The copy is best effort: when the queue (4096 lines) is
 * full, memory runs out or Redis refuses or is down, the copy is dropped and counted, never waited
 * for. The file is the record (audit.h).
 */
#ifndef ZTB_BROKER_AUDIT_STREAM_H
#define ZTB_BROKER_AUDIT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

/* Start the sending thread (the queue starts empty). INTERNAL if the
 * thread cannot be made. Start and stop are not thread-safe; push is. */
ztb_err audit_stream_start(void);

/* Send what is queued (one last pipeline, or drop it), stop the thread. */
void audit_stream_stop(void);

/* The replica id each entry carries (at most AUDIT_STREAM_REPLICA_MAX
 * bytes; "" none). Call before start. */
#define AUDIT_STREAM_REPLICA_MAX 64
void audit_stream_set_replica(const char *id);

/* 1 between start and stop: the writer then makes copies for push. */
int audit_stream_running(void);

/*
 * Queue line[0..n) for the stream in copy, a buffer of cap bytes the caller
 * allocated (outside its own locks) for it; NULL (out of memory) or too
 * small counts as a dropped copy. Takes copy in every case; when the stream
 * is not running it is only freed. Lines are sent in the order pushed.
 */
void audit_stream_push(char *copy, size_t cap, const char *line, size_t n);

/* Copies dropped since the process started (for /metrics and tests). */
uint64_t audit_stream_dropped(void);

#endif /* ZTB_BROKER_AUDIT_STREAM_H */
