/*
 * log.c - structured, secret-redacting log records (see log.h).
 *
 * A record is rendered into a fixed 4 KiB stack buffer (fields that do not fit
 * are dropped and "truncated":true is added) and written with one write(2).
 * Settings are plain globals written at start-up before threads exist.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

#define LOG_LINE_MAX  4096
#define LOG_VALUE_MAX 256

static ztb_log_level g_level = ZTB_LOG_INFO;
static ztb_log_format g_format = ZTB_LOG_JSON;
static int g_fd = 2;
static ztb_log_sink g_sink; /* NULL: write to g_fd */
static const char *g_service = NULL;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void ztb_log_set_level(ztb_log_level level)
{
    if (level <= ZTB_LOG_OFF)
        g_level = level;
}

ztb_log_level ztb_log_get_level(void)
{
    return g_level;
}

void ztb_log_set_format(ztb_log_format fmt)
{
    g_format = fmt;
}

ztb_log_format ztb_log_get_format(void)
{
    return g_format;
}

void ztb_log_set_fd(int fd)
{
    g_fd = fd;
}

void ztb_log_set_service(const char *name)
{
    g_service = name;
}

ztb_err ztb_log_level_parse(const char *s, ztb_log_level *out)
{
    if (s == NULL)
        return ZTB_ERR_INVALID_ARG;
    for (int i = 0; i <= ZTB_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (ztb_log_level)i;
            return ZTB_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = ZTB_LOG_WARN;
        return ZTB_OK;
    }
    return ZTB_ERR_INVALID_ARG;
}

/* Substrings of field names that always mean "this holds a secret". */
static const char *const secret_key_parts[] = {
    "token",         "secret",    "password", "passwd", "passphrase", "assertion",
    "authorization", "cookie",    "private",  "proof",  "csr",        "credential",
    "pem",           "signature", "jwt",      "bearer", "apikey",     "api_key",
};

int ztb_log_key_is_secret(const char *key)
{
    if (key == NULL)
        return 1;
    char low[64];
    size_t n = strlen(key);
    if (n >= sizeof(low))
        return 1; /* a name this long is not one of ours: be safe */
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)key[i]);
    for (size_t i = 0; i < sizeof(secret_key_parts) / sizeof(secret_key_parts[0]); i++)
        if (strstr(low, secret_key_parts[i]) != NULL)
            return 1;
    return 0;
}

static int is_b64url(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_';
}

int ztb_log_value_is_secret(const char *v)
{
    if (v == NULL)
        return 0;
    if (strstr(v, "-----BEGIN") != NULL || strstr(v, "PRIVATE KEY") != NULL)
        return 1;
    if (strstr(v, "ztbj_") != NULL || strstr(v, "ztbs_") != NULL || strstr(v, "ztbsrc_") != NULL)
        return 1; /* join tokens, session credentials, signal source secrets */
    /* a JWS anywhere in the value: two dots separating base64url runs of 8+ */
    for (const char *p = v; *p != '\0'; p++) {
        if (*p != '.')
            continue;
        size_t before = 0;
        for (const char *q = p; q > v && is_b64url((unsigned char)q[-1]); q--)
            before++;
        size_t mid = 0;
        const char *q = p + 1;
        while (is_b64url((unsigned char)*q)) {
            mid++;
            q++;
        }
        if (before >= 8 && mid >= 8 && *q == '.')
            return 1;
    }
    return 0;
}

static void now_iso(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* Append a string value, quoted and escaped, cut at LOG_VALUE_MAX bytes. */
static void put_str(ztb_buf *b, const char *s)
{
    size_t n = strlen(s);
    int cut = n > LOG_VALUE_MAX;
    ztb_buf_append_byte(b, '"');
    ztb_buf_append_json_escaped(b, s, cut ? LOG_VALUE_MAX : n);
    if (cut)
        ztb_buf_append_str(b, "...");
    ztb_buf_append_byte(b, '"');
}

static void put_key(ztb_buf *b, ztb_log_format fmt, const char *key)
{
    if (fmt == ZTB_LOG_JSON) {
        ztb_buf_append_str(b, ",");
        put_str(b, key);
        ztb_buf_append_byte(b, ':');
    } else {
        ztb_buf_append_byte(b, ' ');
        /* keys are ours, but keep text mode unambiguous anyway */
        for (const char *p = key; *p; p++)
            ztb_buf_append_byte(
                b, isalnum((unsigned char)*p) || *p == '_' || *p == '.' ? (uint8_t)*p : '_');
        ztb_buf_append_byte(b, '=');
    }
}

size_t ztb_log_render(char *out, size_t cap, ztb_log_format fmt, ztb_log_level level,
                      const char *event, const ztb_log_field *fields)
{
    if (out == NULL || cap < 64)
        return 0;
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, cap - 2); /* keep room for '}' and '\n' */
    char ts[40];
    now_iso(ts, sizeof(ts));
    const char *lvl = level_names[level <= ZTB_LOG_ERROR ? level : ZTB_LOG_ERROR];
    if (event == NULL)
        event = "log";

    if (fmt == ZTB_LOG_JSON) {
        ztb_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, lvl);
        if (g_service != NULL) {
            put_key(&b, fmt, "svc");
            put_str(&b, g_service);
        }
        put_key(&b, fmt, "event");
        put_str(&b, event);
    } else {
        ztb_buf_printf(&b, "%s %-5s ", ts, lvl);
        ztb_buf_append_json_escaped(&b, event, strlen(event));
    }

    int truncated = 0;
    for (const ztb_log_field *f = fields; f != NULL && f->type != ZTB_LF_END; f++) {
        if (f->type == ZTB_LF_SKIP)
            continue;
        size_t mark = b.len;
        const char *key = f->key ? f->key : "?";
        put_key(&b, fmt, key);
        switch (f->type) {
        case ZTB_LF_STR:
            if (f->v.s == NULL)
                ztb_buf_append_str(&b, "null");
            else if (ztb_log_key_is_secret(key) || ztb_log_value_is_secret(f->v.s))
                ztb_buf_append_str(&b, "\"[redacted]\"");
            else
                put_str(&b, f->v.s);
            break;
        case ZTB_LF_INT: ztb_buf_append_i64(&b, f->v.i); break;
        case ZTB_LF_DBL: ztb_buf_printf(&b, "%.6g", f->v.d); break;
        case ZTB_LF_BOOL: ztb_buf_append_str(&b, f->v.b ? "true" : "false"); break;
        default: ztb_buf_append_str(&b, "null");
        }
        if (ztb_buf_error(&b) != ZTB_OK) {
            /* drop the field that did not fit, note it, stop */
            ztb_buf_truncate(&b, mark);
            truncated = 1;
            break;
        }
    }
    if (truncated) {
        size_t mark = b.len;
        if (ztb_buf_append_str(&b, fmt == ZTB_LOG_JSON ? ",\"truncated\":true"
                                                       : " truncated=true") != ZTB_OK)
            ztb_buf_truncate(&b, mark);
    }
    if (ztb_buf_error(&b) != ZTB_OK) /* even the header did not fit */
        b.len = 0;
    if (fmt == ZTB_LOG_JSON)
        out[b.len++] = '}';
    out[b.len++] = '\n';
    out[b.len] = '\0';
    return b.len;
}

void ztb_log_set_sink(ztb_log_sink sink)
{
    g_sink = sink;
}

void ztb_log_fields(ztb_log_level level, const char *event, const ztb_log_field *fields)
{
    if (level < g_level || level >= ZTB_LOG_OFF)
        return;
    char line[LOG_LINE_MAX];
    size_t n = ztb_log_render(line, sizeof(line), g_format, level, event, fields);
    if (g_sink != NULL) {
        g_sink(level, line, n);
        return;
    }
    const char *p = line;
    while (n > 0) {
        ssize_t w = write(g_fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report a failed log write */
        p += w;
        n -= (size_t)w;
    }
}
