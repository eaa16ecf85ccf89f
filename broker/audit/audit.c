/*
 * audit.c - the audit log's writer (see audit.h).
 *
 * Appends happen under one mutex: format the line with the next seq and the
 * previous link (audit/chain.h), write it with one write(2) on an O_APPEND
 * descriptor, then hash it for the next line. A background thread fsyncs
 * once a second, without the mutex (the descriptor stays open until
 * audit_close has joined the thread). The copy for the Redis stream is
 * handed to audit_stream.c, in seq order, under the same mutex.
 *
 * The mutex is the one point every token request passes in turn, so only
 * what the chain needs happens under it: the seq, the timestamp, the prev
 * hash, the write. The rest of the line (event, actor, fields: escaping and
 * the secret checks) and the stream copy's allocation are done before.
 *
 * A failed write is cut back (ftruncate) to g_end, the end of the last
 * whole line, and only a whole line moves the chain's head. After a
 * failure, the next append first writes the records waiting in memory
 * (audit_record_queued), then "audit.resumed"; the fsync thread tries that
 * once a second, so a quiet broker recovers too. Checkpoints are signed on
 * their own thread with the lock released, and appended like any line.
 *
 * What it must never do: answer a decision whose line was not written,
 * leave half a line in the file, or continue a chain from a tail it could
 * not read.
 */
#define _GNU_SOURCE /* memrchr, pthread_cond_clockwait */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/verify.h"
#include "broker/audit/audit.h"
#include "broker/audit/audit_stream.h"
#include "common/buf.h"
#include "common/guard.h"
#include "pki/jws.h"

#define LINE_MAX_BYTES 8192
/* {"seq":<20 digits>,"ts":"<24>","prev":"<64 hex>" is 133; ,"replica":"<64>" 77 */
#define PREFIX_MAX     (160 + 16 + AUDIT_REPLICA_MAX)
#define SYNC_PERIOD_MS 1000

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_fd = -1;
static uint64_t g_seq;
static char g_prev[AUDIT_HASH_HEX + 1];
static char g_replica[AUDIT_REPLICA_MAX + 1];
static char g_path[512]; /* the log's path, for audit_reopen */
static int g_dirty;
static int g_stop;
static pthread_t g_thread;
static int g_thread_running;
static _Atomic uint64_t g_written;

/* Whole or nothing: g_end is the file's size after the last whole line; a
 * failed write is cut back to it, and if even the cut failed, g_cut says
 * that it must happen before anything else is written. */
static off_t g_end;
static int g_cut;
static _Atomic int g_failing; /* the last attempt failed, or records are pending */
static _Atomic uint64_t g_failures;

/* Records of decisions already in effect, waiting for the disk (owned
 * tails, rendered with queued_at), oldest first. */
struct pending {
    char *tail;
    size_t len;
    int durable;
};
static struct pending g_pend[AUDIT_PENDING_MAX];
static size_t g_phead, g_plen;
static _Atomic uint64_t g_npending;
static _Atomic uint64_t g_lost;
static uint64_t g_lost_unrecorded; /* lost records whose loss is not yet a line */

/* Checkpoints: the last seq covered, the seq at which the next is due, and
 * the thread that makes them. */
static struct audit_checkpoint_opts g_cp;
static int g_cp_on;
static uint64_t g_cp_to;
static uint64_t g_cp_due;
static int g_cp_stop;
static int g_cp_busy; /* a checkpoint is being signed (one at a time) */
static pthread_cond_t g_cp_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_cp_idle = PTHREAD_COND_INITIALIZER;
static pthread_t g_cp_thread;
static int g_cp_thread_running;
static _Atomic uint64_t g_cp_written, g_cp_failed;

/* Size-based rotation: past g_max_bytes the writer moves the file
 * to audit.log.<g_rot_n> (checkpointed first) and the chain goes on in a
 * new audit.log. 0: off. */
static uint64_t g_max_bytes;
static int g_rot_due;           /* a rotation is under way */
static uint64_t g_rot_retry_at; /* mono_ms: after a failed rotation, not before */
static unsigned long g_rot_n = 1;
static _Atomic uint64_t g_rotations;

/* UTC now with milliseconds; the date and time of day are formatted once a
 * second (gmtime_r takes glibc's time zone lock). Caller holds g_lock. */
static void now_iso(char *out, size_t cap)
{
    static time_t last_sec = -1;
    static char last_text[32];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != last_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        if (strftime(last_text, sizeof(last_text), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            last_text[0] = '\0';
        last_sec = ts.tv_sec;
    }
    snprintf(out, cap, "%s.%03dZ", last_text, (int)(ts.tv_nsec / 1000000) % 1000);
}

static void put_fields(ztb_buf *b, const ztb_log_field *fields)
{
    for (const ztb_log_field *f = fields; f != NULL && f->type != ZTB_LF_END; f++) {
        if (f->type == ZTB_LF_SKIP || f->key == NULL)
            continue;
        ztb_buf_append_str(b, ",\"");
        ztb_buf_append_json_escaped(b, f->key, strlen(f->key));
        ztb_buf_append_str(b, "\":");
        switch (f->type) {
        case ZTB_LF_STR:
            if (f->v.s == NULL) {
                ztb_buf_append_str(b, "null");
            } else if (ztb_log_key_is_secret(f->key) || ztb_log_value_is_secret(f->v.s)) {
                ztb_buf_append_str(b, "\"[redacted]\"");
            } else {
                ztb_buf_append_byte(b, '"');
                ztb_buf_append_json_escaped(b, f->v.s, strlen(f->v.s));
                ztb_buf_append_byte(b, '"');
            }
            break;
        case ZTB_LF_INT: ztb_buf_append_i64(b, f->v.i); break;
        case ZTB_LF_DBL: ztb_buf_printf(b, "%.6g", f->v.d); break;
        case ZTB_LF_BOOL: ztb_buf_append_str(b, f->v.b ? "true" : "false"); break;
        default: ztb_buf_append_str(b, "null");
        }
    }
}

/*
 * The part of a line after "prev": event, actor, fields and the closing
 * brace, into b (a fixed buffer of at most LINE_MAX_BYTES - PREFIX_MAX - 1
 * bytes). Needs no lock.
 */
static _Thread_local char trace_id_tls[33]; /* audit_set_trace_id */

void audit_set_trace_id(const char *trace_id)
{
    snprintf(trace_id_tls, sizeof(trace_id_tls), "%s", trace_id ? trace_id : "");
}

static void render_tail(ztb_buf *b, const char *event, const char *actor,
                        const ztb_log_field *fields)
{
    ztb_buf_append_str(b, ",\"event\":\"");
    ztb_buf_append_json_escaped(b, event, strlen(event));
    ztb_buf_append_str(b, "\",\"actor\":\"");
    ztb_buf_append_json_escaped(b, actor ? actor : "broker", strlen(actor ? actor : "broker"));
    ztb_buf_append_byte(b, '"');
    if (trace_id_tls[0] != '\0') {
        ztb_buf_append_str(b, ",\"trace_id\":\"");
        ztb_buf_append_json_escaped(b, trace_id_tls, strlen(trace_id_tls));
        ztb_buf_append_byte(b, '"');
    }
    size_t mark = b->len;
    put_fields(b, fields);
    ztb_buf_append_byte(b, '}');
    if (ztb_buf_error(b) != ZTB_OK) {
        /* fields too large for one line: keep the record, say so */
        ztb_buf_truncate(b, mark);
        ztb_buf_append_str(b, ",\"fields_truncated\":true}");
    }
}

/* Size of the stream copy of a line whose tail is tlen bytes: the prefix at most. */
static size_t copy_cap(size_t tlen)
{
    return PREFIX_MAX + tlen + 1;
}

/* A buffer for the stream's copy of a line with a tail of tlen bytes, or
 * NULL when the stream is off (or memory is out: the stream counts that). */
static char *stream_copy_for(size_t tlen)
{
    return audit_stream_running() ? malloc(copy_cap(tlen)) : NULL;
}

/*
 * Write line[0..len) (with its newline) whole, or leave the file as it
 * was: a short or failed write is cut back to g_end. IO on failure (errno
 * kept). Caller holds g_lock.
 */
static ztb_err write_whole_locked(const char *line, size_t len)
{
    if (g_cut) { /* an earlier failed line may still be there */
        if (ftruncate(g_fd, g_end) != 0)
            return ZTB_ERR_IO;
        g_cut = 0;
    }
    const char *p = line;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(g_fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w == 0 ? ENOSPC : errno;
            /* roll back what got through: half a line would break the chain */
            if (p != line && ftruncate(g_fd, g_end) != 0)
                g_cut = 1;
            errno = e;
            return ZTB_ERR_IO;
        }
        p += w;
        left -= (size_t)w;
    }
    g_end += (off_t)len;
    return ZTB_OK;
}

/*
 * One writer per file: take fd's lock (flock, held until the descriptor is
 * closed). A second writer (another broker on the same volume, a restart
 * while the old process still runs) would continue the chain from the same
 * tail and fork it. EXISTS (err says why) if another process holds it, IO
 * if the lock cannot be taken at all.
 */
static ztb_err lock_file(int fd, const char *path, char *err, size_t errcap)
{
    int rc;
    do {
        rc = flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0)
        return ZTB_OK;
    int e = errno;
    snprintf(err, errcap, "%s: %s", path,
             e == EWOULDBLOCK ? "another process is writing this audit log (one writer per log)"
                              : strerror(e));
    return e == EWOULDBLOCK ? ZTB_ERR_EXISTS : ZTB_ERR_IO;
}

static uint64_t mono_ms(void);
static ztb_err append_event_locked(const char *event, const char *actor, int durable,
                                   const ztb_log_field *fields);

/*
 * Size-based rotation (caller holds g_lock, and keeps it: the writer
 * whose line crossed the limit, once per file): fsync, a hard link audit.log.N to the full file,
 * then a new empty file renamed over audit.log (readers see the old file or the new one, never
 * none), and "audit.rotated" as the new file's first line: its prev is the hash of the old file's
 * last line, so the files verify as one chain (`ztbctl audit verify audit.log.1 audit.log.2 ...
 * audit.log`). Then the checkpoint thread is asked for a checkpoint at once: it covers every line
 * up to the rotation (signing is slow; it is not done here, so the file does not grow meanwhile).
 * On failure the old file stays in use and it is tried again after the next line.
 */
static void rotate_locked(void)
{
    if (g_fd < 0 || atomic_load(&g_failing))
        return;
    g_rot_due = 1; /* the rotated line below must not rotate again */
    fdatasync(g_fd);
    char rotated[sizeof(g_path) + 24], tmp[sizeof(g_path) + 8];
    int linked = 0;
    for (int tries = 0; tries < 1000 && !linked; tries++, g_rot_n++) {
        snprintf(rotated, sizeof(rotated), "%s.%lu", g_path, g_rot_n);
        if (link(g_path, rotated) == 0)
            linked = 1;
        else if (errno != EEXIST)
            break;
    }
    if (!linked) {
        ztb_log(ZTB_LOG_ERROR, "audit.rotate_failed", ZTB_F_STR("why", strerror(errno)));
        g_rot_retry_at = mono_ms() + 1000;
        g_rot_due = 0;
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s.new", g_path);
    (void)unlink(tmp);
    int fd = open(tmp, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    char lerr[128];
    if (fd >= 0 && lock_file(fd, tmp, lerr, sizeof(lerr)) != ZTB_OK) {
        close(fd);
        fd = -1;
    }
    if (fd < 0 || rename(tmp, g_path) != 0) {
        ztb_log(ZTB_LOG_ERROR, "audit.rotate_failed", ZTB_F_STR("why", strerror(errno)));
        if (fd >= 0)
            close(fd);
        (void)unlink(tmp);
        (void)unlink(rotated); /* the log is still audit.log */
        g_rot_retry_at = mono_ms() + 1000;
        g_rot_due = 0;
        return;
    }
    close(g_fd);
    g_fd = fd;
    g_end = 0;
    g_cut = 0;
    atomic_fetch_add(&g_rotations, 1);
    const char *base = strrchr(rotated, '/');
    (void)append_event_locked(
        "audit.rotated", "broker", 1,
        (const ztb_log_field[]){ZTB_F_STR("previous", base ? base + 1 : rotated),
                                ZTB_F_INT("max_bytes", (int64_t)g_max_bytes), ZTB_F_END_});
    if (g_cp_on) {
        g_cp_due = g_seq; /* the checkpoint at rotation */
        pthread_cond_signal(&g_cp_cond);
    }
    g_rot_due = 0;
}

/*
 * Write the line for the next seq: the prefix (seq, ts, prev, replica)
 * then tail[0..tlen) (render_tail's output). stream_copy: copy_cap(tlen)
 * bytes for the Redis stream's copy of the line, or NULL; taken. The
 * chain's head (seq, prev) moves only once the whole line is written.
 * Caller holds g_lock.
 */
static ztb_err append_one_locked(const char *tail, size_t tlen, int durable, char *stream_copy)
{
    char store[LINE_MAX_BYTES];
    ztb_buf b;
    ztb_buf_init_fixed(&b, store, sizeof(store) - 1); /* room for '\n' */
    char ts[40];
    now_iso(ts, sizeof(ts));
    ztb_buf_printf(&b, "{\"seq\":%llu,\"ts\":\"%s\",\"prev\":\"%s\"", (unsigned long long)g_seq + 1,
                   ts, g_prev);
    if (g_replica[0] != '\0')
        ztb_buf_printf(&b, ",\"replica\":\"%s\"", g_replica);
    ztb_buf_append(&b, tail, tlen);
    if (ztb_buf_error(&b) != ZTB_OK) {
        free(stream_copy);
        return ZTB_ERR_INTERNAL;
    }
    size_t n = b.len;
    char next[AUDIT_HASH_HEX + 1];
    audit_chain_hash(store, n, next);
    store[n] = '\n';
    if (write_whole_locked(store, n + 1) != ZTB_OK) {
        int e = errno;
        free(stream_copy);
        atomic_fetch_add(&g_failures, 1);
        atomic_store(&g_failing, 1);
        errno = e;
        return ZTB_ERR_IO;
    }
    memcpy(g_prev, next, sizeof(g_prev));
    g_seq++;
    g_dirty = 1;
    atomic_fetch_add(&g_written, 1);
    if (g_cp_on && g_seq == g_cp_due)
        pthread_cond_signal(&g_cp_cond); /* once per g_cp.every_records lines */
    if (durable && fdatasync(g_fd) != 0) {
        free(stream_copy);
        return ZTB_ERR_IO;
    }
    audit_stream_push(stream_copy, copy_cap(tlen), store, n);
    if (g_max_bytes > 0 && (uint64_t)g_end >= g_max_bytes && !g_rot_due &&
        mono_ms() >= g_rot_retry_at)
        rotate_locked(); /* the line that crossed the limit ends the file */
    return ZTB_OK;
}

/* Render a tail into b (a fixed buffer of LINE_MAX_BYTES - PREFIX_MAX). */
#define TAIL_CAP (LINE_MAX_BYTES - PREFIX_MAX)

/*
 * Write the records waiting in memory, oldest first, then the record of
 * any that were lost. IO at the first that cannot be written (it and the
 * rest stay). Caller holds g_lock.
 */
static ztb_err flush_pending_locked(void)
{
    while (g_plen > 0) {
        struct pending *p = &g_pend[g_phead];
        ztb_err rv = append_one_locked(p->tail, p->len, p->durable, stream_copy_for(p->len));
        if (rv != ZTB_OK)
            return rv;
        free(p->tail);
        p->tail = NULL;
        g_phead = (g_phead + 1) % AUDIT_PENDING_MAX;
        g_plen--;
        atomic_store(&g_npending, g_plen);
    }
    if (g_lost_unrecorded > 0) {
        char tstore[TAIL_CAP];
        ztb_buf tail;
        ztb_buf_init_fixed(&tail, tstore, sizeof(tstore));
        render_tail(&tail, "audit.records_lost", "broker",
                    (const ztb_log_field[]){ZTB_F_INT("count", (int64_t)g_lost_unrecorded),
                                            ZTB_F_STR("cause", "pending queue full"), ZTB_F_END_});
        ztb_err rv =
            append_one_locked((const char *)tail.data, tail.len, 1, stream_copy_for(tail.len));
        if (rv != ZTB_OK)
            return rv;
        g_lost_unrecorded = 0;
    }
    return ZTB_OK;
}

/*
 * After a failure: the records pending, oldest first, then "audit.resumed"
 * (the failed attempts and lost records so far), so the log itself shows
 * where writing stopped and started again. IO if the disk is still full.
 * Caller holds g_lock.
 */
static ztb_err resume_locked(void)
{
    if (g_plen > 0 || g_lost_unrecorded > 0) {
        ztb_err rv = flush_pending_locked();
        if (rv != ZTB_OK)
            return rv;
    }
    if (!atomic_load(&g_failing))
        return ZTB_OK;
    char tstore[TAIL_CAP];
    ztb_buf tail;
    ztb_buf_init_fixed(&tail, tstore, sizeof(tstore));
    render_tail(
        &tail, "audit.resumed", "broker",
        (const ztb_log_field[]){ZTB_F_INT("failed_writes", (int64_t)atomic_load(&g_failures)),
                                ZTB_F_INT("lost", (int64_t)atomic_load(&g_lost)), ZTB_F_END_});
    ztb_err rv = append_one_locked((const char *)tail.data, tail.len, 1, stream_copy_for(tail.len));
    if (rv == ZTB_OK) {
        atomic_store(&g_failing, 0);
        ztb_log(ZTB_LOG_WARN, "audit.resumed");
    }
    return rv;
}

/* Append a record: first what a failure left (the order of the chain is
 * the order of the decisions), then this one. Caller holds g_lock. */
static ztb_err append_locked(const char *tail, size_t tlen, int durable, char *stream_copy)
{
    ztb_err rv = resume_locked();
    if (rv != ZTB_OK) {
        free(stream_copy);
        return rv;
    }
    return append_one_locked(tail, tlen, durable, stream_copy);
}

/* Render and append in one go; caller holds g_lock (start-up records). */
static ztb_err append_event_locked(const char *event, const char *actor, int durable,
                                   const ztb_log_field *fields)
{
    char tstore[TAIL_CAP];
    ztb_buf tail;
    ztb_buf_init_fixed(&tail, tstore, sizeof(tstore));
    render_tail(&tail, event, actor, fields);
    if (ztb_buf_error(&tail) != ZTB_OK)
        return ZTB_ERR_INTERNAL;
    return append_locked((const char *)tail.data, tail.len, durable, stream_copy_for(tail.len));
}

ztb_err audit_record(const char *event, const char *actor, int durable, const ztb_log_field *fields)
{
    /* everything that needs no lock first: the tail of the line, the copy */
    char tstore[TAIL_CAP];
    ztb_buf tail;
    ztb_buf_init_fixed(&tail, tstore, sizeof(tstore));
    render_tail(&tail, event, actor, fields);
    if (ztb_buf_error(&tail) != ZTB_OK)
        return ZTB_ERR_INTERNAL;
    char *copy = stream_copy_for(tail.len);
    pthread_mutex_lock(&g_lock);
    ztb_err rv = ZTB_ERR_STATE;
    if (g_fd >= 0)
        rv = append_locked((const char *)tail.data, tail.len, durable, copy);
    else
        free(copy);
    pthread_mutex_unlock(&g_lock);
    if (rv != ZTB_OK)
        ztb_log(ZTB_LOG_ERROR, "audit.write_failed", ZTB_F_STR("audit_event", event),
                ZTB_F_ERR(rv));
    return rv;
}

/* Keep the record whose tail is tail[0..tlen) in memory, with queued_at
 * (now). IO if the queue is full (the record is lost and counted), NOMEM.
 * Caller holds g_lock. */
static ztb_err queue_locked(const char *tail, size_t tlen, int durable)
{
    if (g_plen == AUDIT_PENDING_MAX) {
        atomic_fetch_add(&g_lost, 1);
        g_lost_unrecorded++;
        return ZTB_ERR_IO;
    }
    char ts[40];
    now_iso(ts, sizeof(ts));
    /* tail ends with '}': put queued_at before it */
    size_t cap = tlen + 64;
    char *q = malloc(cap);
    if (q == NULL) {
        atomic_fetch_add(&g_lost, 1);
        g_lost_unrecorded++;
        return ZTB_ERR_NOMEM;
    }
    int k = snprintf(q, cap, "%.*s,\"queued_at\":\"%s\"}", (int)(tlen - 1), tail, ts);
    if (k < 0 || (size_t)k >= cap || (size_t)k + PREFIX_MAX >= LINE_MAX_BYTES) {
        free(q);
        atomic_fetch_add(&g_lost, 1);
        g_lost_unrecorded++;
        return ZTB_ERR_TOO_LARGE;
    }
    struct pending *p = &g_pend[(g_phead + g_plen) % AUDIT_PENDING_MAX];
    p->tail = q;
    p->len = (size_t)k;
    p->durable = durable;
    g_plen++;
    atomic_store(&g_npending, g_plen);
    atomic_store(&g_failing, 1);
    return ZTB_OK;
}

ztb_err audit_record_queued(const char *event, const char *actor, int durable,
                            const ztb_log_field *fields, int *pending)
{
    *pending = 0;
    char tstore[TAIL_CAP];
    ztb_buf tail;
    ztb_buf_init_fixed(&tail, tstore, sizeof(tstore));
    render_tail(&tail, event, actor, fields);
    if (ztb_buf_error(&tail) != ZTB_OK)
        return ZTB_ERR_INTERNAL;
    char *copy = stream_copy_for(tail.len);
    pthread_mutex_lock(&g_lock);
    ztb_err rv = ZTB_ERR_STATE;
    if (g_fd >= 0) {
        /* as append_locked, but knowing whether this line got in: what a
         * failure left may be written in part before the disk fills again */
        int written = 0;
        rv = resume_locked();
        if (rv == ZTB_OK) {
            uint64_t before = g_seq;
            rv = append_one_locked((const char *)tail.data, tail.len, durable, copy);
            written = g_seq != before; /* IO after the write: written, not synced */
        } else {
            free(copy);
        }
        if (rv == ZTB_ERR_IO && !written) {
            rv = queue_locked((const char *)tail.data, tail.len, durable);
            *pending = rv == ZTB_OK;
            if (rv != ZTB_OK)
                rv = ZTB_ERR_IO;
        }
    } else {
        free(copy);
    }
    pthread_mutex_unlock(&g_lock);
    if (*pending)
        ztb_log(ZTB_LOG_ERROR, "audit.record_pending", ZTB_F_STR("record", event),
                ZTB_F_INT("pending", (int64_t)atomic_load(&g_npending)));
    else if (rv != ZTB_OK)
        ztb_log(ZTB_LOG_ERROR, "audit.record_lost", ZTB_F_STR("record", event), ZTB_F_ERR(rv));
    return rv;
}

/* While writing fails: every SYNC_PERIOD_MS, try the pending records and
 * the "audit.resumed" line again (a quiet broker also becomes ready again
 * once the disk has room). Caller holds g_lock. */
static void retry_locked(void)
{
    if (g_fd >= 0 && atomic_load(&g_failing))
        (void)resume_locked();
}

/* Milliseconds on CLOCK_MONOTONIC: the fsync period is a duration, not a
 * wall-clock fact, so a wall clock step (NTP, an operator) can neither
 * stall the fsync for the step nor make the thread spin through it. */
static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait on g_cond (g_lock held) until the mono_ms deadline, or a signal.
 * Returns ETIMEDOUT once the deadline has passed. */
static int wait_until(uint64_t ms)
{
    struct timespec until = {.tv_sec = (time_t)(ms / 1000u),
                             .tv_nsec = (long)(ms % 1000u) * 1000000L};
    return pthread_cond_clockwait(&g_cond, &g_lock, CLOCK_MONOTONIC, &until);
}

/* The periodic fsync: once a second when something was written, and once
 * more at the stop. Writers never wake it. */
static void *syncer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    for (;;) {
        uint64_t next_sync = mono_ms() + SYNC_PERIOD_MS;
        while (!g_stop && mono_ms() < next_sync && wait_until(next_sync) != ETIMEDOUT)
            ;
        retry_locked();
        int sync = g_dirty && g_fd >= 0;
        g_dirty = 0;
        int fd = g_fd, stop = g_stop;
        pthread_mutex_unlock(&g_lock);
        /* without the mutex: writers go on appending while the disk syncs */
        if (sync)
            fdatasync(fd);
        if (stop)
            return NULL;
        pthread_mutex_lock(&g_lock);
    }
}

/* A partial last line recover_tail cut: its length and SHA-256 (hex). */
struct tail_cut {
    size_t bytes;
    char sha256[AUDIT_HASH_HEX + 1];
};

/*
 * Find the last complete line of fd (size bytes): its seq and link, into
 * g_seq and g_prev. Cut a partial last line off (its length and hash into
 * *what, unless NULL). Returns 1 if something
 * was cut; *rv is the error (err says why) if the tail cannot be read or is
 * not a record.
 */
static int recover_tail(int fd, off_t size, char *err, size_t errcap, ztb_err *rv,
                        struct tail_cut *what)
{
    *rv = ZTB_OK;
    if (size == 0)
        return 0;
    size_t want = size < AUDIT_VERIFY_LINE_MAX * 2 ? (size_t)size : AUDIT_VERIFY_LINE_MAX * 2;
    char *buf = malloc(want + 1);
    if (buf == NULL) {
        *rv = ZTB_ERR_NOMEM;
        return 0;
    }
    off_t start = size - (off_t)want;
    if (pread(fd, buf, want, start) != (ssize_t)want) {
        snprintf(err, errcap, "cannot read the audit log's tail: %s", strerror(errno));
        free(buf);
        *rv = ZTB_ERR_IO;
        return 0;
    }
    buf[want] = '\0';
    int cut = 0;
    size_t end = want;
    if (buf[end - 1] != '\n') {
        char *nl = memrchr(buf, '\n', end);
        end = nl ? (size_t)(nl - buf) + 1 : 0;
        if (nl == NULL && start != 0) {
            snprintf(err, errcap, "audit log's last line is longer than %d bytes",
                     AUDIT_VERIFY_LINE_MAX);
            free(buf);
            *rv = ZTB_ERR_MALFORMED;
            return 0;
        }
        if (ftruncate(fd, start + (off_t)end) != 0) {
            snprintf(err, errcap, "cannot cut the partial last line: %s", strerror(errno));
            free(buf);
            *rv = ZTB_ERR_IO;
            return 0;
        }
        cut = 1;
        if (what != NULL) { /* what was cut, for the record that says so */
            what->bytes = want - end;
            audit_chain_hash(buf + end, want - end, what->sha256);
        }
    }
    if (end == 0) { /* nothing complete left */
        free(buf);
        return cut;
    }
    buf[end - 1] = '\0';
    char *last = memrchr(buf, '\n', end - 1);
    last = last ? last + 1 : buf;
    if (audit_chain_seq(last, &g_seq) != ZTB_OK) {
        snprintf(err, errcap, "audit log's last line is not an audit record");
        *rv = ZTB_ERR_MALFORMED;
    } else {
        audit_chain_hash(last, strlen(last), g_prev);
    }
    free(buf);
    return cut;
}

/* ---- signed checkpoints ------------------------------------------------ */

/*
 * Cover every line written so far with a signed checkpoint. Caller holds
 * g_lock; it is released while the signer works (writers go on), and the
 * checkpoint line is appended after whatever they wrote meanwhile: it
 * names the seq and hash it signed, not its own position.
 */
static ztb_err checkpoint_locked(void)
{
    while (g_cp_busy)
        pthread_cond_wait(&g_cp_idle, &g_lock);
    if (g_fd < 0 || !g_cp_on || g_cp.sign == NULL)
        return ZTB_ERR_STATE;
    if (g_seq == g_cp_to) /* nothing new since the last one */
        return ZTB_OK;
    uint64_t from = g_cp_to + 1, to = g_seq;
    char hash[AUDIT_HASH_HEX + 1], replica[AUDIT_REPLICA_MAX + 1];
    memcpy(hash, g_prev, sizeof(hash));
    memcpy(replica, g_replica, sizeof(replica));
    g_cp_busy = 1;
    pthread_mutex_unlock(&g_lock);
    ztb_buf payload, jws;
    ztb_buf_init(&payload, 1024);
    ztb_buf_init(&jws, 4096);
    audit_checkpoint_payload(replica, from, to, hash, &payload);
    ztb_err rv = ztb_buf_error(&payload);
    if (rv == ZTB_OK)
        rv = g_cp.sign(g_cp.arg, payload.data, payload.len, &jws);
    /* the kid is in the JWS header; repeated on the line for people */
    ztb_jws_header hdr;
    if (rv == ZTB_OK)
        rv = ztb_jws_peek(ztb_buf_cstr(&jws), jws.len, NULL, &hdr);
    pthread_mutex_lock(&g_lock);
    g_cp_busy = 0;
    pthread_cond_broadcast(&g_cp_idle);
    if (rv == ZTB_OK && g_fd < 0)
        rv = ZTB_ERR_STATE;
    if (rv == ZTB_OK) {
        /* written by hand: the logger's fields would redact the JWS (it is
         * shaped like a token, and is none: it signs only the range) */
        char tstore[TAIL_CAP];
        ztb_buf tail;
        ztb_buf_init_fixed(&tail, tstore, sizeof(tstore));
        ztb_buf_printf(&tail,
                       ",\"event\":\"" AUDIT_CHECKPOINT_EVENT "\",\"actor\":\"broker\","
                       "\"from\":%llu,\"to\":%llu,\"hash\":\"%s\",\"kid\":\"",
                       (unsigned long long)from, (unsigned long long)to, hash);
        ztb_buf_append_json_escaped(&tail, hdr.kid, strlen(hdr.kid));
        ztb_buf_append_str(&tail, "\",\"jws\":\"");
        ztb_buf_append_json_escaped(&tail, ztb_buf_cstr(&jws), jws.len);
        ztb_buf_append_str(&tail, "\"}");
        rv = ztb_buf_error(&tail);
        if (rv == ZTB_OK)
            rv = append_locked((const char *)tail.data, tail.len, 0, stream_copy_for(tail.len));
    }
    ztb_buf_free(&payload);
    ztb_buf_free(&jws);
    if (rv == ZTB_OK) {
        g_cp_to = to > g_cp_to ? to : g_cp_to;
        atomic_fetch_add(&g_cp_written, 1);
    } else {
        atomic_fetch_add(&g_cp_failed, 1);
    }
    /* the next one after every_records more lines (or the period) */
    g_cp_due = g_seq + g_cp.every_records;
    return rv;
}

/* The checkpoint thread: a checkpoint once every_records lines were
 * written since the last, or every every_ms when any was. */
static void *checkpointer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    while (!g_cp_stop) {
        uint64_t deadline = mono_ms() + g_cp.every_ms;
        while (!g_cp_stop && g_seq < g_cp_due && mono_ms() < deadline) {
            struct timespec until = {.tv_sec = (time_t)(deadline / 1000u),
                                     .tv_nsec = (long)(deadline % 1000u) * 1000000L};
            pthread_cond_clockwait(&g_cp_cond, &g_lock, CLOCK_MONOTONIC, &until);
        }
        if (g_cp_stop)
            break;
        if (checkpoint_locked() != ZTB_OK)
            ztb_log(ZTB_LOG_WARN, "audit.checkpoint_failed");
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

ztb_err audit_checkpoints_start(const struct audit_checkpoint_opts *o)
{
    if (o == NULL || o->sign == NULL)
        return ZTB_ERR_INVALID_ARG;
    pthread_mutex_lock(&g_lock);
    if (g_fd < 0 || g_cp_on) {
        pthread_mutex_unlock(&g_lock);
        return ZTB_ERR_STATE;
    }
    g_cp = *o;
    if (g_cp.every_records == 0)
        g_cp.every_records = AUDIT_CHECKPOINT_RECORDS;
    if (g_cp.every_ms == 0)
        g_cp.every_ms = AUDIT_CHECKPOINT_MS;
    g_cp_due = g_seq + g_cp.every_records;
    g_cp_stop = 0;
    g_cp_on = 1;
    pthread_mutex_unlock(&g_lock);
    if (pthread_create(&g_cp_thread, NULL, checkpointer, NULL) != 0) {
        pthread_mutex_lock(&g_lock);
        g_cp_on = 0;
        pthread_mutex_unlock(&g_lock);
        return ZTB_ERR_INTERNAL;
    }
    g_cp_thread_running = 1;
    return ZTB_OK;
}

ztb_err audit_checkpoint_now(void)
{
    pthread_mutex_lock(&g_lock);
    ztb_err rv = checkpoint_locked();
    pthread_mutex_unlock(&g_lock);
    return rv;
}

/* Stop the checkpoint thread, after a last checkpoint over every line. */
static void checkpoints_stop(void)
{
    pthread_mutex_lock(&g_lock);
    int on = g_cp_on;
    g_cp_stop = 1;
    pthread_cond_broadcast(&g_cp_cond);
    pthread_mutex_unlock(&g_lock);
    if (g_cp_thread_running) {
        pthread_join(g_cp_thread, NULL);
        g_cp_thread_running = 0;
    }
    if (!on)
        return;
    pthread_mutex_lock(&g_lock);
    /* the last checkpoint is the file's last line: were it to cross the
     * size limit, the rotated line after it would be unproven (the next
     * open rotates instead) */
    g_rot_due = 1;
    if (checkpoint_locked() != ZTB_OK)
        ztb_log(ZTB_LOG_WARN, "audit.checkpoint_failed", ZTB_F_STR("when", "close"));
    g_cp_on = 0;
    pthread_mutex_unlock(&g_lock);
}

void audit_set_max_bytes(uint64_t n)
{
    pthread_mutex_lock(&g_lock);
    g_max_bytes = n;
    pthread_mutex_unlock(&g_lock);
}

uint64_t audit_rotations(void)
{
    return atomic_load(&g_rotations);
}

uint64_t audit_checkpoints_written(void)
{
    return atomic_load(&g_cp_written);
}

uint64_t audit_checkpoint_failures(void)
{
    return atomic_load(&g_cp_failed);
}

ztb_err audit_set_replica(const char *id)
{
    if (id == NULL)
        id = "";
    size_t n = strlen(id);
    if (n > AUDIT_REPLICA_MAX)
        return ZTB_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return ZTB_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&g_lock);
    memcpy(g_replica, id, n + 1);
    pthread_mutex_unlock(&g_lock);
    audit_stream_set_replica(id);
    return ZTB_OK;
}

/* N if name is audit.log.N (N from 1, at most 9 digits), else 0. */
static unsigned long rotated_number(const char *n)
{
    if (strncmp(n, "audit.log.", 10) != 0 || n[10] < '1' || n[10] > '9' ||
        strspn(n + 10, "0123456789") != strlen(n + 10) || strlen(n + 10) > 9)
        return 0;
    return strtoul(n + 10, NULL, 10);
}

/* 1 + the largest N of an audit.log.N in dir (1 if none): where
 * size-based rotation numbers the next file. */
static unsigned long next_rotation_number(const char *dir)
{
    unsigned long max = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 1;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        unsigned long v = rotated_number(e->d_name);
        max = v > max ? v : max;
    }
    closedir(d);
    return max + 1;
}

/*
 * audit.log has no line yet, but rotated files may be beside it (a crash
 * between a size rotation's rename and its first line; logrotate's move
 * and a restart before the SIGHUP): the chain goes on from the audit.log.N
 * whose last line has the highest seq (whatever the numbering: logrotate's
 * .1 is its newest), never from the genesis hash, which would start a
 * second chain at seq 1. g_seq and g_prev become that line's (left as
 * they are if there is none), its file's name goes into from (""
 * if none). IO or MALFORMED (err says why) if a rotated file's tail
 * cannot be read: no chain is continued from a guess. Caller holds g_lock.
 */
static ztb_err continue_from_rotated(const char *dir, char *from, size_t fromcap, char *err,
                                     size_t errcap)
{
    from[0] = '\0';
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errcap, "%s: %s", dir, strerror(errno));
        return ZTB_ERR_IO;
    }
    uint64_t best = g_seq;
    char best_prev[AUDIT_HASH_HEX + 1];
    memcpy(best_prev, g_prev, sizeof(best_prev));
    ztb_err rv = ZTB_OK;
    for (struct dirent *e = readdir(d); e != NULL && rv == ZTB_OK; e = readdir(d)) {
        if (rotated_number(e->d_name) == 0)
            continue;
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (fd >= 0)
                close(fd);
            continue; /* not a file of ours (a directory, a link) */
        }
        char why[256] = "";
        g_seq = 0;
        (void)recover_tail(fd, st.st_size, why, sizeof(why), &rv, NULL); /* read only: no cut */
        close(fd);
        if (rv != ZTB_OK) {
            snprintf(err, errcap, "%s: %s", path, why);
            break;
        }
        if (g_seq > best) {
            best = g_seq;
            memcpy(best_prev, g_prev, sizeof(best_prev));
            snprintf(from, fromcap, "%s", e->d_name);
        }
    }
    closedir(d);
    g_seq = best;
    memcpy(g_prev, best_prev, sizeof(g_prev));
    return rv;
}

/*
 * A rotation is a hard link audit.log.N to the full file, then a new file
 * renamed over audit.log. A crash between the two leaves audit.log.N as a
 * second name of audit.log (fd, *st), whose lines would then be in two
 * files when they are verified together: that link is undone. Its name
 * into undone (empty if none).
 */
static void undo_half_rotation(const char *dir, const struct stat *st, char *undone, size_t cap)
{
    undone[0] = '\0';
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (rotated_number(e->d_name) == 0)
            continue;
        struct stat o;
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &o) == 0 && S_ISREG(o.st_mode) && o.st_ino == st->st_ino &&
            o.st_dev == st->st_dev && unlink(path) == 0)
            snprintf(undone, cap, "%s", e->d_name);
    }
    closedir(d);
}

ztb_err audit_open(const char *dir, int stream, char *err, size_t errcap)
{
    char path[512];
    if ((size_t)snprintf(path, sizeof(path), "%s/audit.log", dir) >= sizeof(path)) {
        snprintf(err, errcap, "audit dir path too long");
        return ZTB_ERR_INVALID_ARG;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errcap, "%s: %s", dir, strerror(errno));
        return ZTB_ERR_IO;
    }
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return ZTB_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "%s is not a regular file", path);
        close(fd);
        return ZTB_ERR_IO;
    }
    ztb_err lrv = lock_file(fd, path, err, errcap);
    if (lrv != ZTB_OK) {
        close(fd);
        return lrv;
    }
    fchmod(fd, 0600);
    pthread_mutex_lock(&g_lock);
    g_seq = 0;
    memcpy(g_prev, audit_genesis, sizeof(g_prev));
    ztb_err rv;
    char undone[300];
    undo_half_rotation(dir, &st, undone, sizeof(undone));
    struct tail_cut what = {0};
    int cut = recover_tail(fd, st.st_size, err, errcap, &rv, &what);
    char from[300] = "";
    if (rv == ZTB_OK && g_seq == 0)
        rv = continue_from_rotated(dir, from, sizeof(from), err, errcap);
    if (rv == ZTB_OK && fstat(fd, &st) != 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        rv = ZTB_ERR_IO;
    }
    g_end = st.st_size; /* after the cut: the end of the last whole line */
    g_rot_n = next_rotation_number(dir);
    g_rot_due = 0;
    g_cut = 0;
    atomic_store(&g_failing, 0);
    pthread_mutex_unlock(&g_lock);
    if (rv != ZTB_OK) {
        close(fd);
        return rv;
    }
    /* the stream first, so that it has the start-up records too */
    if (stream && audit_stream_start() != ZTB_OK) {
        snprintf(err, errcap, "cannot start the audit stream thread");
        close(fd);
        return ZTB_ERR_INTERNAL;
    }
    pthread_mutex_lock(&g_lock);
    g_fd = fd;
    memcpy(g_path, path, sizeof(g_path));
    g_stop = 0;
    atomic_store(&g_written, 0);
    if (cut) /* its length and hash: evidence of what a crash left, not the bytes */
        append_event_locked("audit.partial_line_removed", "broker", 1,
                            (const ztb_log_field[]){ZTB_F_INT("bytes", (int64_t)what.bytes),
                                                    ZTB_F_STR("sha256", what.sha256), ZTB_F_END_});
    if (undone[0] != '\0')
        append_event_locked("audit.rotation_undone", "broker", 1,
                            (const ztb_log_field[]){ZTB_F_STR("link", undone), ZTB_F_END_});
    append_event_locked("audit.opened", "broker", 0,
                        (const ztb_log_field[]){ZTB_F_INT("pid", getpid()),
                                                from[0] ? ZTB_F_STR("previous", from) : ZTB_F_SKIP_,
                                                ZTB_F_END_});
    /* lines before this open were covered (or not) by the last writer */
    g_cp_to = g_seq;
    pthread_mutex_unlock(&g_lock);
    if (pthread_create(&g_thread, NULL, syncer, NULL) != 0) {
        snprintf(err, errcap, "cannot start the audit thread");
        audit_close();
        return ZTB_ERR_INTERNAL;
    }
    g_thread_running = 1;
    return ZTB_OK;
}

ztb_err audit_reopen(char *err, size_t errcap)
{
    pthread_mutex_lock(&g_lock);
    ztb_err rv = ZTB_OK;
    struct stat cur, st;
    int fd = -1;
    if (g_fd < 0) {
        snprintf(err, errcap, "the audit log is not open");
        rv = ZTB_ERR_STATE;
        goto out;
    }
    fd = open(g_path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fstat(g_fd, &cur) != 0) {
        snprintf(err, errcap, "%s: cannot open a regular file: %s", g_path, strerror(errno));
        rv = ZTB_ERR_IO;
        goto out;
    }
    if (st.st_dev == cur.st_dev && st.st_ino == cur.st_ino)
        goto out; /* not moved away: nothing to do */
    if (st.st_size != 0) {
        /* someone else's file: never continue our chain in it */
        snprintf(err, errcap, "%s is a new file that is not empty: keeping the old one", g_path);
        rv = ZTB_ERR_EXISTS;
        goto out;
    }
    rv = lock_file(fd, g_path, err, errcap);
    if (rv != ZTB_OK)
        goto out;
    fchmod(fd, 0600);
    /* the old file is complete (every line whole): sync it, then continue
     * the chain in the new one, where the rotated file's chain goes on */
    fdatasync(g_fd);
    close(g_fd);
    g_fd = fd;
    fd = -1;
    g_end = 0;
    g_cut = 0;
    (void)append_event_locked("audit.reopened", "broker", 1,
                              (const ztb_log_field[]){ZTB_F_STR("cause", "SIGHUP"), ZTB_F_END_});
out:
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&g_lock);
    return rv;
}

void audit_close(void)
{
    checkpoints_stop(); /* with a last checkpoint, while the file is open */
    pthread_mutex_lock(&g_lock);
    g_stop = 1;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
    if (g_thread_running) {
        pthread_join(g_thread, NULL);
        g_thread_running = 0;
    }
    pthread_mutex_lock(&g_lock);
    if (g_fd >= 0) {
        fdatasync(g_fd);
        close(g_fd);
    }
    g_fd = -1;           /* records from here on fail with STATE */
    while (g_plen > 0) { /* could not be written: lost, and said so in the log */
        ztb_log(ZTB_LOG_ERROR, "audit.record_lost", ZTB_F_STR("cause", "closed while pending"));
        free(g_pend[g_phead].tail);
        g_pend[g_phead].tail = NULL;
        g_phead = (g_phead + 1) % AUDIT_PENDING_MAX;
        g_plen--;
        atomic_fetch_add(&g_lost, 1);
    }
    atomic_store(&g_npending, 0);
    g_lost_unrecorded = 0;
    pthread_mutex_unlock(&g_lock);
    audit_stream_stop(); /* sends what the last records queued */
}

uint64_t audit_lines_written(void)
{
    return atomic_load(&g_written);
}

int audit_writable(void)
{
    pthread_mutex_lock(&g_lock);
    int ok = g_fd >= 0;
    pthread_mutex_unlock(&g_lock);
    return ok && !atomic_load(&g_failing);
}

uint64_t audit_write_failures(void)
{
    return atomic_load(&g_failures);
}

uint64_t audit_pending_records(void)
{
    return atomic_load(&g_npending);
}

uint64_t audit_records_lost(void)
{
    return atomic_load(&g_lost);
}
