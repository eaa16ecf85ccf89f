/*
 * redis_target.c - Redis URLs and opening a connection (see
 * redis_target.h).
 */
#include <stdio.h>
#include <string.h>

#include "common/guard.h"
#include "common/redis_target.h"
#include "common/secret.h"

/* A decimal integer in [lo, hi] from exactly n bytes; -1 if not one. */
static int parse_int(const char *s, size_t n, int lo, int hi, int *out)
{
    if (n == 0 || n > 9)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decode s[0..n) into out (NUL-terminated, cap bytes); -1 if it
 * does not fit, has a bad escape, or decodes to a NUL. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h << 4 | l;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static ztb_err bad(struct redis_target *t, char *err, size_t cap, const char *msg)
{
    redis_target_wipe(t);
    if (err != NULL && cap > 0)
        snprintf(err, cap, "redis: %s", msg);
    return ZTB_ERR_INVALID_ARG;
}

static ztb_err parse_unix(const char *p, struct redis_target *t, char *err, size_t errcap)
{
    const char *q = strchr(p, '?');
    size_t pl = q ? (size_t)(q - p) : strlen(p);
    if (pl == 0 || p[0] != '/' || pl >= sizeof(t->path))
        return bad(t, err, errcap, "unix:// needs an absolute socket path under 108 bytes");
    memcpy(t->path, p, pl);
    t->path[pl] = '\0';
    if (q != NULL &&
        (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, strlen(q + 4), 0, 15, &t->db) != 0))
        return bad(t, err, errcap, "unix:// accepts only ?db=N (0-15)");
    return ZTB_OK;
}

/* USER:PASSWORD, :PASSWORD or PASSWORD (the older form) before the '@'. */
static ztb_err parse_userinfo(const char *p, size_t n, struct redis_target *t, char *err,
                              size_t errcap)
{
    const char *colon = memchr(p, ':', n);
    const char *pw = p;
    size_t pwl = n;
    if (colon != NULL) {
        size_t ul = (size_t)(colon - p);
        if (ul > 0 && pct_decode(p, ul, t->user, sizeof(t->user)) != 0)
            return bad(t, err, errcap, "the user name is too long or badly percent-encoded");
        pw = colon + 1;
        pwl = n - ul - 1;
    }
    if (pwl == 0)
        return bad(t, err, errcap, "a user needs a password (redis://USER:PASSWORD@HOST)");
    if (pct_decode(pw, pwl, t->password, sizeof(t->password)) != 0)
        return bad(t, err, errcap, "the password is too long or badly percent-encoded");
    return ZTB_OK;
}

ztb_err redis_target_parse(const char *url, unsigned timeout_ms, struct redis_target *t, char *err,
                           size_t errcap)
{
    ZTB_ENSURE(t != NULL, ZTB_ERR_INVALID_ARG);
    memset(t, 0, sizeof(*t));
    t->port = REDIS_TARGET_DEFAULT_PORT;
    t->timeout_ms = timeout_ms ? timeout_ms : 1000;
    if (url == NULL)
        return bad(t, err, errcap, "no URL");
    if (strncmp(url, "unix://", 7) == 0)
        return parse_unix(url + 7, t, err, errcap);
    if (strncmp(url, "rediss://", 9) == 0)
        return bad(t, err, errcap,
                   "rediss:// (TLS) is not supported by this build: use redis:// on a "
                   "private network, unix:///PATH, or a local TLS tunnel");
    if (strncmp(url, "redis://", 8) != 0)
        return bad(t, err, errcap,
                   "expected redis://[USER:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH[?db=N]");
    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *s = p; s < end; s++)
        if (*s == '@')
            at = s; /* the last '@' before the path: a password may hold one */
    if (at != NULL) {
        ZTB_GUARD(parse_userinfo(p, (size_t)(at - p), t, err, errcap));
        p = at + 1;
    }
    /* HOST, or [IPV6] */
    const char *hs = p, *he;
    if (*p == '[') {
        he = memchr(p, ']', (size_t)(end - p));
        if (he == NULL)
            return bad(t, err, errcap, "an IPv6 address needs its closing ']'");
        hs = p + 1;
        p = he + 1;
    } else {
        he = memchr(p, ':', (size_t)(end - p));
        if (he == NULL)
            he = end;
        p = he;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(t->host))
        return bad(t, err, errcap, "missing or overlong host");
    memcpy(t->host, hs, hl);
    t->host[hl] = '\0';
    if (p < end && *p == ':') {
        if (parse_int(p + 1, (size_t)(end - p - 1), 1, 65535, &t->port) != 0)
            return bad(t, err, errcap, "bad port (1-65535)");
    } else if (p != end) {
        return bad(t, err, errcap, "unexpected text after the host");
    }
    if (*end == '/' && end[1] != '\0' && parse_int(end + 1, strlen(end + 1), 0, 15, &t->db) != 0)
        return bad(t, err, errcap, "bad database number (0-15)");
    if (*end == '?' || *end == '#')
        return bad(t, err, errcap, "redis:// takes no query or fragment");
    return ZTB_OK;
}

void redis_target_wipe(struct redis_target *t)
{
    ztb_wipe(t->password, sizeof(t->password));
}

void redis_target_describe(const struct redis_target *t, char *out, size_t cap)
{
    const char *at = t->user[0] ? "@" : "";
    if (t->path[0] != '\0')
        snprintf(out, cap, "unix:%s", t->path);
    else if (strchr(t->host, ':') != NULL)
        snprintf(out, cap, "%s%s[%s]:%d", t->user, at, t->host, t->port);
    else
        snprintf(out, cap, "%s%s%s:%d", t->user, at, t->host, t->port);
}

/* A status reply (+OK): AUTH and SELECT said yes. */
static int reply_ok(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STATUS;
}

ztb_err redis_target_connect(const struct redis_target *t, redisContext **out, char *err,
                             size_t errcap)
{
    struct timeval tv = {.tv_sec = t->timeout_ms / 1000,
                         .tv_usec = (long)(t->timeout_ms % 1000) * 1000};
    redisContext *c = t->path[0] != '\0' ? redisConnectUnixWithTimeout(t->path, tv)
                                         : redisConnectWithTimeout(t->host, t->port, tv);
    ztb_err rv = ZTB_OK;
    redisReply *r = NULL;
    const char *why = "out of memory";
    ZTB_CHECK(rv, c != NULL, ZTB_ERR_NOMEM);
    why = c->errstr;
    ZTB_CHECK(rv, c->err == 0, ZTB_ERR_UNAVAILABLE);
    why = "cannot set the timeout";
    ZTB_CHECK(rv, redisSetTimeout(c, tv) == REDIS_OK, ZTB_ERR_UNAVAILABLE);
    if (t->password[0] != '\0') {
        /* AUTH [USER] PASSWORD: the ACL user when one is named */
        const char *argv[3] = {"AUTH", t->user, t->password};
        size_t lens[3] = {4, strlen(t->user), strlen(t->password)};
        if (t->user[0] == '\0') {
            argv[1] = argv[2];
            lens[1] = lens[2];
        }
        r = redisCommandArgv(c, t->user[0] != '\0' ? 3 : 2, argv, lens);
        why = r == NULL ? c->errstr : "AUTH refused (check the user name and password)";
        ZTB_CHECK(rv, reply_ok(r), ZTB_ERR_UNAVAILABLE);
        freeReplyObject(r);
        r = NULL;
    }
    if (t->db != 0) {
        r = redisCommand(c, "SELECT %d", t->db);
        why = r == NULL ? c->errstr
                        : "SELECT refused (is the database number within the server's databases?)";
        ZTB_CHECK(rv, reply_ok(r), ZTB_ERR_UNAVAILABLE);
    }
out:
    if (rv != ZTB_OK && err != NULL && errcap > 0)
        snprintf(err, errcap, "%s", why);
    if (r != NULL)
        freeReplyObject(r);
    if (rv != ZTB_OK && c != NULL) {
        redisFree(c);
        c = NULL;
    }
    *out = c;
    return rv;
}
