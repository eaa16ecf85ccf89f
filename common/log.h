/*
 * log.h - structured logging that cannot print a secret.
 *
 * A log record is an event name plus typed fields; it is written as one JSON
 * object per line (or `key=value` text for people at a terminal) with a single
 * write(2), so lines from many threads never interleave.
 *
 *   ztb_log(ZTB_LOG_INFO, "token.issued", ZTB_F_STR("agent", name),
 *           ZTB_F_INT("ttl", ttl), ZTB_F_ERR(rv));
 *
 * How secrets are kept out, in three layers:
 *  1. there is no field type for bytes or keys: secrets in ztb live in byte
 *     arrays and ztb_buf, which no ZTB_F_* macro accepts;
 *  2. a field whose name says it holds a secret (token, secret, password,
 *     passphrase, assertion, authorization, cookie, private, proof, csr...) is
 *     written as "[redacted]" whatever its value;
 *  3. a string value that looks like a credential (a JWS, a PEM block, a
 *     join token "ztbj_...") is written as "[redacted]".
 * Every string is JSON-escaped (or quoted in text mode), so agent-supplied
 * names cannot forge log lines, and long values are cut at 256 bytes.
 */
#ifndef ZTB_LOG_H
#define ZTB_LOG_H

#include <stdint.h>

#include <ztb/error.h>

typedef enum ztb_log_level {
    ZTB_LOG_DEBUG = 0,
    ZTB_LOG_INFO = 1,
    ZTB_LOG_WARN = 2,
    ZTB_LOG_ERROR = 3,
    ZTB_LOG_OFF = 4,
} ztb_log_level;

typedef enum ztb_log_format {
    ZTB_LOG_JSON = 0,
    ZTB_LOG_TEXT = 1,
} ztb_log_format;

enum ztb_log_ftype { ZTB_LF_END = 0, ZTB_LF_STR, ZTB_LF_INT, ZTB_LF_DBL, ZTB_LF_BOOL, ZTB_LF_SKIP };

typedef struct ztb_log_field {
    const char *key;
    enum ztb_log_ftype type;
    union {
        const char *s;
        int64_t i;
        double d;
        int b;
    } v;
} ztb_log_field;

#define ZTB_F_STR(k, val)  ((ztb_log_field){.key = (k), .type = ZTB_LF_STR, .v.s = (val)})
#define ZTB_F_INT(k, val)  ((ztb_log_field){.key = (k), .type = ZTB_LF_INT, .v.i = (int64_t)(val)})
#define ZTB_F_DBL(k, val)  ((ztb_log_field){.key = (k), .type = ZTB_LF_DBL, .v.d = (double)(val)})
#define ZTB_F_BOOL(k, val) ((ztb_log_field){.key = (k), .type = ZTB_LF_BOOL, .v.b = !!(val)})
#define ZTB_F_ERR(e)       ZTB_F_STR("error", ztb_err_name(e))
#define ZTB_F_END_         ((ztb_log_field){.key = 0, .type = ZTB_LF_END})

/* Log event with the fields given (none is fine). Thread-safe. The leading
 * skip entry lets the field list be empty without __VA_OPT__. */
#define ZTB_F_SKIP_ ((ztb_log_field){.key = 0, .type = ZTB_LF_SKIP})
#define ztb_log(level, event, ...)                                                                 \
    ztb_log_fields((level), (event),                                                               \
                   (const ztb_log_field[]){ZTB_F_SKIP_, ##__VA_ARGS__, ZTB_F_END_})

/* Fields end with a ZTB_LF_END entry. Records below the level are dropped. */
void ztb_log_fields(ztb_log_level level, const char *event, const ztb_log_field *fields);

/* Process-wide settings; set them before starting threads. */
void ztb_log_set_level(ztb_log_level level);
ztb_log_level ztb_log_get_level(void);
void ztb_log_set_format(ztb_log_format fmt);
ztb_log_format ztb_log_get_format(void);
/* Write to fd (default 2). */
void ztb_log_set_fd(int fd);
/* Hand every rendered line (with its '\n', len bytes) to sink instead of
 * writing it to the fd, e.g. syslog or journald (broker/service.c); NULL:
 * the fd again. Called on the logging thread; must be thread-safe. */
typedef void (*ztb_log_sink)(ztb_log_level level, const char *line, size_t len);
void ztb_log_set_sink(ztb_log_sink sink);
/* Prefix every record with "svc":name (e.g. "ztb-broker"). name is not copied. */
void ztb_log_set_service(const char *name);

/* Parse "debug" / "info" / "warn" / "error" / "off". INVALID_ARG otherwise. */
ztb_err ztb_log_level_parse(const char *s, ztb_log_level *out);

/* 1 if a field with this name is always redacted. */
int ztb_log_key_is_secret(const char *key);

/* 1 if this value looks like a credential and would be redacted. */
int ztb_log_value_is_secret(const char *value);

/*
 * Render a record into out (cap bytes, always NUL-terminated, ends in '\n').
 * Returns the length. Used by ztb_log_fields and by the tests.
 */
size_t ztb_log_render(char *out, size_t cap, ztb_log_format fmt, ztb_log_level level,
                      const char *event, const ztb_log_field *fields);

#endif /* ZTB_LOG_H */
