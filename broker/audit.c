/*
 * audit.c - hash-chained audit log (see audit.h).
 *
 * Appends happen under one mutex: format the line with the next seq and the
 * previous hash, write it with one write(2) on an O_APPEND descriptor, then
 * hash it for the next line. A background thread fsyncs once a second and
 * drains the stream queue into Redis with pipelined XADDs on its own
 * connection.
 *
 * The request path must not wait on the background thread: the fsync runs
 * without the mutex (the descriptor stays open until audit_close has joined
 * the thread), and writers wake the thread only when it sleeps on an empty
 * queue or the queue reaches a batch; otherwise it lets lines gather for a
 * few milliseconds and sends them as one pipeline (one round trip per
 * batch, not per line).
 *
 * The mutex is the one point every token request passes in turn, so only
 * what the chain needs happens under it: the seq, the timestamp, the prev
 * hash, the write. The rest of the line (event, actor, fields: escaping and
 * the secret checks) and the stream copy's allocation are done before.
 */
#define _GNU_SOURCE /* memrchr */
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

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "broker/audit.h"
#include "broker/redis_client.h"
#include "common/buf.h"
#include "common/guard.h"
#include "pki/es256.h"

#define LINE_MAX_BYTES  8192
#define PREFIX_MAX      160 /* {"seq":<20 digits>,"ts":"<24>","prev":"<64 hex>" is 133 */
#define VERIFY_LINE_MAX 65536
#define STREAM_QUEUE    4096
#define STREAM_BATCH    256
#define STREAM_LINGER   5 /* ms the thread lets a batch gather while lines come in */
#define SYNC_PERIOD_MS  1000
#define STREAM_MAXLEN   "1000000"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_fd = -1;
static uint64_t g_seq;
static char g_prev[65];
static int g_dirty;
static int g_stop;
static int g_waiting;           /* the background thread sleeps on an empty queue */
static _Atomic int g_stream_on; /* g_stream, readable without the lock */
static int g_stream;
static pthread_t g_thread;
static int g_thread_running;
static _Atomic uint64_t g_written;
static _Atomic uint64_t g_dropped;

/* stream queue: lines waiting for XADD (owned strings) */
static char *g_q[STREAM_QUEUE];
static size_t g_qhead, g_qlen;

static const char zero_hash[65] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static void hex_sha256(const void *p, size_t n, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    /* pki's per-thread context over a digest fetched once: SHA256() fetched
     * the digest (and took the provider store's lock) for every line */
    if (ztb_es256_sha256(p, n, d) != ZTB_OK)
        SHA256(p, n, d);
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[64] = '\0';
}

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

/* Extract "seq" and "prev"-independent facts from a line: its seq. */
static int line_seq(const char *line, uint64_t *seq)
{
    static const char head[] = "{\"seq\":";
    if (strncmp(line, head, sizeof(head) - 1) != 0)
        return -1;
    const char *p = line + sizeof(head) - 1;
    if (*p < '0' || *p > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno != 0 || *end != ',')
        return -1;
    *seq = v;
    return 0;
}

static int line_prev(const char *line, char prev[65])
{
    const char *p = strstr(line, ",\"prev\":\"");
    if (p == NULL)
        return -1;
    p += 9;
    for (int i = 0; i < 64; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        prev[i] = c;
    }
    if (p[64] != '"')
        return -1;
    prev[64] = '\0';
    return 0;
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

/* Queue line[0..n) for the stream in copy (cap bytes allocated by the
 * caller, or NULL: then the copy is dropped); takes copy. */
static void enqueue_stream(const char *line, size_t n, char *copy, size_t cap)
{
    if (!g_stream) {
        free(copy);
        return;
    }
    if (g_qlen == STREAM_QUEUE || copy == NULL || n >= cap) {
        free(copy);
        atomic_fetch_add(&g_dropped, 1);
        return;
    }
    memcpy(copy, line, n);
    copy[n] = '\0';
    g_q[(g_qhead + g_qlen) % STREAM_QUEUE] = copy;
    g_qlen++;
    /* one wake-up per burst, not per line: a futex call per token costs more
     * than the line itself */
    if (g_waiting || g_qlen == STREAM_BATCH) {
        g_waiting = 0;
        pthread_cond_signal(&g_cond);
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
    char next[65];
    hex_sha256(store, n, next);
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
    enqueue_stream(store, n, stream_copy, copy_cap(tail));
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
    return append_locked(&tail, durable, g_stream ? malloc(copy_cap(&tail)) : NULL);
}

ztb_err audit_record(const char *event, const char *actor, int durable, const ztb_log_field *fields)
{
    /* everything that needs no lock first: the tail of the line, the copy */
    char tstore[LINE_MAX_BYTES - PREFIX_MAX];
    ztb_buf tail;
    ztb_buf_init_fixed(&tail, tstore, sizeof(tstore));
    render_tail(&tail, event, actor, fields);
    char *copy = atomic_load(&g_stream_on) ? malloc(copy_cap(&tail)) : NULL;
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

/* Send n lines as one pipeline of XADDs on this thread's own connection. */
static void stream_batch(char **lines, size_t n)
{
    if (n == 0)
        return;
    static const char *const fixed[] = {"XADD",        "ztb:audit", "MAXLEN", "~",
                                        STREAM_MAXLEN, "*",         "line"};
    enum { NARG = 8 };
    const char *args[STREAM_BATCH][NARG];
    const char *const *argv[STREAM_BATCH];
    const size_t *lens[STREAM_BATCH];
    int argc[STREAM_BATCH];
    redisReply *replies[STREAM_BATCH];
    for (size_t i = 0; i < n; i++) {
        memcpy(args[i], fixed, sizeof(fixed));
        args[i][NARG - 1] = lines[i];
        argv[i] = args[i];
        lens[i] = NULL;
        argc[i] = NARG;
    }
    if (redis_pipeline(n, argc, argv, lens, replies) != ZTB_OK) {
        atomic_fetch_add(&g_dropped, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR)
            atomic_fetch_add(&g_dropped, 1);
        freeReplyObject(replies[i]);
    }
}

/* Milliseconds on CLOCK_MONOTONIC: the fsync period and the batch linger
 * are durations, not wall-clock facts, so a wall clock step (NTP, an
 * operator) can neither stall the fsync for the step nor make the thread
 * spin through it. */
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

static void *background(void *arg)
{
    (void)arg;
    uint64_t next_sync = mono_ms() + SYNC_PERIOD_MS;
    pthread_mutex_lock(&g_lock);
    for (;;) {
        if (!g_stop && g_qlen == 0) {
            /* idle: sleep until a line comes or the next fsync is due */
            g_waiting = 1;
            while (!g_stop && g_qlen == 0 && mono_ms() < next_sync &&
                   wait_until(next_sync) != ETIMEDOUT)
                ;
            g_waiting = 0;
        } else if (!g_stop && g_qlen < STREAM_BATCH) {
            /* lines are coming in: let a batch gather (a full one wakes us) */
            uint64_t until = mono_ms() + STREAM_LINGER;
            wait_until(until < next_sync ? until : next_sync);
        }
        int sync = g_dirty && g_fd >= 0 && (g_stop || mono_ms() >= next_sync);
        if (sync)
            g_dirty = 0;
        int fd = g_fd;
        char *batch[STREAM_BATCH];
        size_t n = 0;
        while (g_qlen > 0 && n < STREAM_BATCH) {
            batch[n++] = g_q[g_qhead];
            g_qhead = (g_qhead + 1) % STREAM_QUEUE;
            g_qlen--;
        }
        int stop = g_stop && g_qlen == 0 && n == 0;
        pthread_mutex_unlock(&g_lock);
        /* without the mutex: writers go on appending while the disk syncs */
        if (sync) {
            fdatasync(fd);
            next_sync = mono_ms() + SYNC_PERIOD_MS;
        } else if (mono_ms() >= next_sync) {
            next_sync = mono_ms() + SYNC_PERIOD_MS; /* nothing was written */
        }
        stream_batch(batch, n);
        for (size_t i = 0; i < n; i++)
            free(batch[i]);
        if (stop)
            return NULL;
        pthread_mutex_lock(&g_lock);
    }
}

/*
 * Find the last complete line of fd (size bytes): its seq and hash. Cut a
 * partial last line off. Returns 1 if something was cut.
 */
static int recover_tail(int fd, off_t size, char *err, size_t errcap, ztb_err *rv)
{
    *rv = ZTB_OK;
    if (size == 0)
        return 0;
    size_t want = size < VERIFY_LINE_MAX * 2 ? (size_t)size : VERIFY_LINE_MAX * 2;
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
            snprintf(err, errcap, "audit log's last line is longer than %d bytes", VERIFY_LINE_MAX);
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
    if (line_seq(last, &g_seq) != 0) {
        snprintf(err, errcap, "audit log's last line is not an audit record");
        *rv = ZTB_ERR_MALFORMED;
    } else {
        hex_sha256(last, strlen(last), g_prev);
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
    memcpy(g_prev, zero_hash, sizeof(g_prev));
    ztb_err rv;
    int cut = recover_tail(fd, st.st_size, err, errcap, &rv);
    if (rv != ZTB_OK) {
        pthread_mutex_unlock(&g_lock);
        close(fd);
        return rv;
    }
    g_fd = fd;
    g_stop = 0;
    g_stream = stream;
    atomic_store(&g_written, 0);
    atomic_store(&g_stream_on, stream != 0);
    if (cut)
        append_event_locked("audit.partial_line_removed", "broker", 1, NULL);
    append_event_locked("audit.opened", "broker", 0,
                        (const ztb_log_field[]){ZTB_F_INT("pid", getpid()), ZTB_F_END_});
    pthread_mutex_unlock(&g_lock);
    if (pthread_create(&g_thread, NULL, background, NULL) != 0) {
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
    g_fd = -1;
    while (g_qlen > 0) {
        free(g_q[g_qhead]);
        g_qhead = (g_qhead + 1) % STREAM_QUEUE;
        g_qlen--;
    }
    pthread_mutex_unlock(&g_lock);
}

uint64_t audit_lines_written(void)
{
    return atomic_load(&g_written);
}

uint64_t audit_stream_dropped(void)
{
    return atomic_load(&g_dropped);
}

ztb_err audit_verify_file(const char *path, uint64_t *lines, uint64_t *bad_line, char *why,
                          size_t whycap)
{
    *lines = 0;
    *bad_line = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(why, whycap, "%s: %s", path, strerror(errno));
        return ZTB_ERR_IO;
    }
    char *line = malloc(VERIFY_LINE_MAX + 2);
    if (line == NULL) {
        fclose(f);
        return ZTB_ERR_NOMEM;
    }
    char prev[65];
    memcpy(prev, zero_hash, sizeof(prev));
    uint64_t n = 0, expect_seq = 0;
    ztb_err rv = ZTB_OK;
    while (fgets(line, VERIFY_LINE_MAX + 2, f) != NULL) {
        n++;
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            snprintf(why, whycap, feof(f) ? "last line is incomplete" : "line too long");
            rv = ZTB_ERR_MALFORMED;
            break;
        }
        len--; /* drop the newline */
        line[len] = '\0';
        if (strlen(line) != len) {
            snprintf(why, whycap, "line contains a NUL byte");
            rv = ZTB_ERR_MALFORMED;
            break;
        }
        uint64_t seq;
        char p[65];
        if (line_seq(line, &seq) != 0 || line_prev(line, p) != 0) {
            snprintf(why, whycap, "not an audit record (no seq or prev)");
            rv = ZTB_ERR_MALFORMED;
            break;
        }
        if (n == 1)
            expect_seq = seq; /* a rotated file starts where the last one ended */
        if (seq != expect_seq) {
            snprintf(why, whycap, "seq %llu where %llu was expected (a line removed or added)",
                     (unsigned long long)seq, (unsigned long long)expect_seq);
            rv = ZTB_ERR_SIGNATURE;
            break;
        }
        if (n > 1 && strcmp(p, prev) != 0) {
            snprintf(why, whycap, "prev hash does not match the line before (changed line %llu)",
                     (unsigned long long)(n - 1));
            rv = ZTB_ERR_SIGNATURE;
            break;
        }
        if (n == 1 && seq == 1 && strcmp(p, zero_hash) != 0) {
            snprintf(why, whycap, "first record's prev is not the genesis hash");
            rv = ZTB_ERR_SIGNATURE;
            break;
        }
        hex_sha256(line, len, prev);
        expect_seq = seq + 1;
    }
    if (rv != ZTB_OK)
        *bad_line = n;
    else
        *lines = n;
    free(line);
    fclose(f);
    return rv;
}
