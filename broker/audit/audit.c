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
 * What it must never do: answer a decision whose line was not written, or
 * continue a chain from a tail it could not read.
 */
#define _GNU_SOURCE /* memrchr, pthread_cond_clockwait */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/verify.h"
#include "broker/audit/audit.h"
#include "broker/audit/audit_stream.h"
#include "common/buf.h"
#include "common/guard.h"

#define LINE_MAX_BYTES 8192
#define PREFIX_MAX     160 /* {"seq":<20 digits>,"ts":"<24>","prev":"<64 hex>" is 133 */
#define SYNC_PERIOD_MS 1000

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_fd = -1;
static uint64_t g_seq;
static char g_prev[AUDIT_HASH_HEX + 1];
static int g_dirty;
static int g_stop;
static pthread_t g_thread;
static int g_thread_running;
static _Atomic uint64_t g_written;

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
static void render_tail(ztb_buf *b, const char *event, const char *actor,
                        const ztb_log_field *fields)
{
    ztb_buf_append_str(b, ",\"event\":\"");
    ztb_buf_append_json_escaped(b, event, strlen(event));
    ztb_buf_append_str(b, "\",\"actor\":\"");
    ztb_buf_append_json_escaped(b, actor ? actor : "broker", strlen(actor ? actor : "broker"));
    ztb_buf_append_byte(b, '"');
    size_t mark = b->len;
    put_fields(b, fields);
    ztb_buf_append_byte(b, '}');
    if (ztb_buf_error(b) != ZTB_OK) {
        /* fields too large for one line: keep the record, say so */
        ztb_buf_truncate(b, mark);
        ztb_buf_append_str(b, ",\"fields_truncated\":true}");
    }
}

/* Size of the stream copy of a line whose tail is tail: the prefix at most. */
static size_t copy_cap(const ztb_buf *tail)
{
    return PREFIX_MAX + tail->len + 1;
}

/* A buffer for the stream's copy of a line with this tail, or NULL when the
 * stream is off (or memory is out: the stream counts that). */
static char *stream_copy_for(const ztb_buf *tail)
{
    return audit_stream_running() ? malloc(copy_cap(tail)) : NULL;
}

/*
 * Write the line for the next seq: the prefix (seq, ts, prev) then tail
 * (render_tail's output). stream_copy: copy_cap(tail) bytes for the Redis
 * stream's copy of the line, or NULL; taken. Caller holds g_lock.
 */
static ztb_err append_locked(const ztb_buf *tail, int durable, char *stream_copy)
{
    char store[LINE_MAX_BYTES];
    ztb_buf b;
    ztb_buf_init_fixed(&b, store, sizeof(store) - 1); /* room for '\n' */
    char ts[40];
    now_iso(ts, sizeof(ts));
    ztb_buf_printf(&b, "{\"seq\":%llu,\"ts\":\"%s\",\"prev\":\"%s\"", (unsigned long long)g_seq + 1,
                   ts, g_prev);
    ztb_buf_append(&b, tail->data, tail->len);
    if (ztb_buf_error(tail) != ZTB_OK || ztb_buf_error(&b) != ZTB_OK) {
        free(stream_copy);
        return ZTB_ERR_INTERNAL;
    }
    size_t n = b.len;
    char next[AUDIT_HASH_HEX + 1];
    audit_chain_hash(store, n, next);
    store[n] = '\n';
    const char *p = store;
    size_t left = n + 1;
    while (left > 0) {
        ssize_t w = write(g_fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            free(stream_copy);
            return ZTB_ERR_IO;
        }
        p += w;
        left -= (size_t)w;
    }
    memcpy(g_prev, next, sizeof(g_prev));
    g_seq++;
    g_dirty = 1;
    atomic_fetch_add(&g_written, 1);
    if (durable && fdatasync(g_fd) != 0) {
        free(stream_copy);
        return ZTB_ERR_IO;
    }
    audit_stream_push(stream_copy, copy_cap(tail), store, n);
    return ZTB_OK;
}

/* Render and append in one go; caller holds g_lock (start-up records). */
static ztb_err append_event_locked(const char *event, const char *actor, int durable,
                                   const ztb_log_field *fields)
{
    char tstore[LINE_MAX_BYTES - PREFIX_MAX];
    ztb_buf tail;
    ztb_buf_init_fixed(&tail, tstore, sizeof(tstore));
    render_tail(&tail, event, actor, fields);
    return append_locked(&tail, durable, stream_copy_for(&tail));
}

ztb_err audit_record(const char *event, const char *actor, int durable, const ztb_log_field *fields)
{
    /* everything that needs no lock first: the tail of the line, the copy */
    char tstore[LINE_MAX_BYTES - PREFIX_MAX];
    ztb_buf tail;
    ztb_buf_init_fixed(&tail, tstore, sizeof(tstore));
    render_tail(&tail, event, actor, fields);
    char *copy = stream_copy_for(&tail);
    pthread_mutex_lock(&g_lock);
    ztb_err rv = ZTB_ERR_STATE;
    if (g_fd >= 0)
        rv = append_locked(&tail, durable, copy);
    else
        free(copy);
    pthread_mutex_unlock(&g_lock);
    if (rv != ZTB_OK)
        ztb_log(ZTB_LOG_ERROR, "audit.write_failed", ZTB_F_STR("event", event), ZTB_F_ERR(rv));
    return rv;
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

/*
 * Find the last complete line of fd (size bytes): its seq and link, into
 * g_seq and g_prev. Cut a partial last line off. Returns 1 if something
 * was cut; *rv is the error (err says why) if the tail cannot be read or is
 * not a record.
 */
static int recover_tail(int fd, off_t size, char *err, size_t errcap, ztb_err *rv)
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
    fchmod(fd, 0600);
    pthread_mutex_lock(&g_lock);
    g_seq = 0;
    memcpy(g_prev, audit_genesis, sizeof(g_prev));
    ztb_err rv;
    int cut = recover_tail(fd, st.st_size, err, errcap, &rv);
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
    g_stop = 0;
    atomic_store(&g_written, 0);
    if (cut)
        append_event_locked("audit.partial_line_removed", "broker", 1, NULL);
    append_event_locked("audit.opened", "broker", 0,
                        (const ztb_log_field[]){ZTB_F_INT("pid", getpid()), ZTB_F_END_});
    pthread_mutex_unlock(&g_lock);
    if (pthread_create(&g_thread, NULL, syncer, NULL) != 0) {
        snprintf(err, errcap, "cannot start the audit thread");
        audit_close();
        return ZTB_ERR_INTERNAL;
    }
    g_thread_running = 1;
    return ZTB_OK;
}

void audit_close(void)
{
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
    g_fd = -1; /* records from here on fail with STATE */
    pthread_mutex_unlock(&g_lock);
    audit_stream_stop(); /* sends what the last records queued */
}

uint64_t audit_lines_written(void)
{
    return atomic_load(&g_written);
}
