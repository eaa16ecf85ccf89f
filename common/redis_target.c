/*
 * redis_target.c - Redis URLs and opening a connection (see
 * redis_target.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
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

/* HOST[:PORT] or [IPV6][:PORT] in s[0..n) into host (cap bytes) and *port
 * (left as is when absent); the message for a refusal in *why. */
static int parse_hostport(const char *s, size_t n, char *host, size_t cap, int *port,
                          const char **why)
{
    const char *end = s + n, *p = s, *hs = s, *he;
    if (*p == '[') {
        he = memchr(p, ']', n);
        if (he == NULL) {
            *why = "an IPv6 address needs its closing ']'";
            return -1;
        }
        hs = p + 1;
        p = he + 1;
    } else {
        he = memchr(p, ':', n);
        if (he == NULL)
            he = end;
        p = he;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= cap || memchr(hs, ',', hl) != NULL || memchr(hs, '@', hl) != NULL) {
        *why = "missing or overlong host";
        return -1;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (p < end && *p == ':') {
        if (parse_int(p + 1, (size_t)(end - p - 1), 1, 65535, port) != 0) {
            *why = "bad port (1-65535)";
            return -1;
        }
    } else if (p != end) {
        *why = "unexpected text after the host";
        return -1;
    }
    return 0;
}

/* The user-info before the last '@' in [p, end), if any: parsed into t;
 * *p moved past the '@'. */
static ztb_err take_userinfo(const char **p, const char *end, struct redis_target *t, char *err,
                             size_t errcap)
{
    const char *at = NULL;
    for (const char *s = *p; s < end; s++)
        if (*s == '@')
            at = s; /* the last '@' before the path: a password may hold one */
    if (at != NULL) {
        ZTB_GUARD(parse_userinfo(*p, (size_t)(at - *p), t, err, errcap));
        *p = at + 1;
    }
    return ZTB_OK;
}

/* A master name as sentinels accept it: 1-127 of [A-Za-z0-9._-]. */
static int master_name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= REDIS_TARGET_MASTER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* One query option: its name, where its value goes, and which URLs take it. */
struct query_opt {
    const char *name;
    size_t off; /* offset of the char array in struct redis_target */
    size_t cap;
    int sentinel; /* 1: Sentinel URLs only */
    int tls;      /* 1: rediss URLs only */
};

#define QOPT(n, field, s, tl)                                                                      \
    {                                                                                              \
        n, offsetof(struct redis_target, field), sizeof(((struct redis_target *)0)->field), s, tl  \
    }

static const struct query_opt query_opts[] = {
    QOPT("sentinel_username", sentinel_user, 1, 0),
    QOPT("sentinel_password", sentinel_password, 1, 0),
    QOPT("ca", tls.ca, 0, 1),
    QOPT("cert", tls.cert, 0, 1),
    QOPT("key", tls.key, 0, 1),
    QOPT("tls_name", tls.server_name, 0, 1),
};

/* NAME=VALUE&... (each option at most once, in any order, percent-encoded):
 * sentinel_username/sentinel_password for Sentinel URLs, ca/cert/key/
 * tls_name for rediss URLs. */
static ztb_err parse_query(const char *q, struct redis_target *t, int sentinel, char *err,
                           size_t errcap)
{
    enum { NOPTS = sizeof(query_opts) / sizeof(query_opts[0]) };
    int seen[NOPTS] = {0};
    char msg[160];
    while (*q != '\0') {
        size_t n = strcspn(q, "&#");
        const char *eq = memchr(q, '=', n);
        if (eq == NULL)
            return bad(t, err, errcap, "a URL option needs NAME=VALUE");
        size_t kl = (size_t)(eq - q), vl = n - kl - 1;
        size_t i = 0;
        while (i < NOPTS &&
               !(strlen(query_opts[i].name) == kl && strncmp(q, query_opts[i].name, kl) == 0))
            i++;
        if (i == NOPTS || seen[i] || (query_opts[i].sentinel && !sentinel) ||
            (query_opts[i].tls && !t->tls.on)) {
            if (i < NOPTS && query_opts[i].tls && !t->tls.on)
                return bad(t, err, errcap, "TLS options (ca, cert, key, tls_name) need rediss://");
            return bad(t, err, errcap,
                       sentinel
                           ? "a Sentinel URL takes sentinel_username, sentinel_password "
                             "(and with rediss+sentinel:// ca, cert, key, tls_name), once each"
                           : "a rediss:// URL takes only ca, cert, key and tls_name, once each");
        }
        seen[i] = 1;
        char *dst = (char *)t + query_opts[i].off;
        if (vl == 0 || pct_decode(eq + 1, vl, dst, query_opts[i].cap) != 0) {
            snprintf(msg, sizeof(msg), "%s is empty, too long or badly encoded",
                     query_opts[i].name);
            return bad(t, err, errcap, msg);
        }
        q += n;
        if (*q == '#')
            return bad(t, err, errcap, "a Redis URL takes no fragment");
        if (*q == '&')
            q++;
    }
    if (t->sentinel_user[0] != '\0' && t->sentinel_password[0] == '\0')
        return bad(t, err, errcap, "sentinel_username needs sentinel_password");
    if ((t->tls.cert[0] != '\0') != (t->tls.key[0] != '\0'))
        return bad(t, err, errcap,
                   "cert= and key= go together (the client certificate and its key)");
    return ZTB_OK;
}

/* HOST[:PORT][,HOST[:PORT]...] in [p, end) into list (*n of them, at most
 * max; port defaults to def_port). kind names an address in messages
 * ("sentinel", "node"); too_many is the message past max. */
static ztb_err parse_addr_list(const char *p, const char *end, struct redis_sentinel_addr *list,
                               size_t *n, size_t max, int def_port, const char *kind,
                               const char *too_many, struct redis_target *t, char *err,
                               size_t errcap)
{
    char msg[64];
    while (p < end) {
        /* a comma inside brackets cannot occur: IPv6 has none */
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *ie = c ? c : end;
        if (*n == max)
            return bad(t, err, errcap, too_many);
        struct redis_sentinel_addr *a = &list[*n];
        a->port = def_port;
        const char *why = NULL;
        if (ie == p ||
            parse_hostport(p, (size_t)(ie - p), a->host, sizeof(a->host), &a->port, &why) != 0) {
            snprintf(msg, sizeof(msg), "an empty %s address between commas", kind);
            return bad(t, err, errcap, why ? why : msg);
        }
        (*n)++;
        p = c ? c + 1 : end;
        if (c != NULL && p == end) {
            snprintf(msg, sizeof(msg), "an empty %s address after a comma", kind);
            return bad(t, err, errcap, msg);
        }
    }
    return ZTB_OK;
}

/* redis+sentinel://[USERINFO@]S1[:P1][,S2[:P2]...]/MASTER[/DB][?OPTIONS] */
static ztb_err parse_sentinel(const char *p, struct redis_target *t, char *err, size_t errcap)
{
    const char *end = p + strcspn(p, "/?#");
    ZTB_GUARD(take_userinfo(&p, end, t, err, errcap));
    if (p == end)
        return bad(t, err, errcap, "a Sentinel URL names at least one sentinel HOST[:PORT]");
    ZTB_GUARD(parse_addr_list(p, end, t->sentinels, &t->nsentinels, REDIS_TARGET_MAX_SENTINELS,
                              REDIS_TARGET_SENTINEL_PORT, "sentinel",
                              "at most 8 sentinels in a Sentinel URL", t, err, errcap));
    if (*end != '/')
        return bad(t, err, errcap,
                   "a Sentinel URL needs /MASTER, the master's name at the sentinels");
    const char *m = end + 1;
    size_t ml = strcspn(m, "/?#");
    if (!master_name_ok(m, ml))
        return bad(t, err, errcap, "the master name must be 1-127 of A-Z a-z 0-9 . _ -");
    memcpy(t->master_name, m, ml);
    t->master_name[ml] = '\0';
    const char *r = m + ml;
    if (*r == '/') {
        size_t dl = strcspn(r + 1, "?#");
        if (dl > 0 && parse_int(r + 1, dl, 0, 15, &t->db) != 0)
            return bad(t, err, errcap, "bad database number (0-15)");
        r += 1 + dl;
    }
    if (*r == '#')
        return bad(t, err, errcap, "a Sentinel URL takes no fragment");
    if (*r == '?')
        return parse_query(r + 1, t, 1, err, errcap);
    return ZTB_OK;
}

/* redis+cluster://[USERINFO@]N1[:P1][,N2[:P2]...][/0][?OPTIONS] */
static ztb_err parse_cluster(const char *p, struct redis_target *t, char *err, size_t errcap)
{
    const char *end = p + strcspn(p, "/?#");
    ZTB_GUARD(take_userinfo(&p, end, t, err, errcap));
    if (p == end)
        return bad(t, err, errcap, "a Cluster URL names at least one node HOST[:PORT]");
    ZTB_GUARD(parse_addr_list(p, end, t->seeds, &t->nseeds, REDIS_TARGET_MAX_SEEDS,
                              REDIS_TARGET_DEFAULT_PORT, "node",
                              "at most 8 seed nodes in a Cluster URL", t, err, errcap));
    const char *r = end;
    if (*r == '/') {
        size_t dl = strcspn(r + 1, "?#");
        if (dl > 0 && (parse_int(r + 1, dl, 0, 0, &t->db) != 0))
            return bad(t, err, errcap, "a Redis Cluster has only database 0");
        r += 1 + dl;
    }
    if (*r == '#')
        return bad(t, err, errcap, "a Cluster URL takes no fragment");
    if (*r == '?' && !t->tls.on)
        return bad(t, err, errcap,
                   "redis+cluster:// takes no query (TLS options go with rediss+cluster://)");
    if (*r == '?')
        return parse_query(r + 1, t, 0, err, errcap);
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
    if (strncmp(url, "redis+sentinel://", 17) == 0)
        return parse_sentinel(url + 17, t, err, errcap);
    if (strncmp(url, "rediss+sentinel://", 18) == 0) {
        t->tls.on = 1;
        return parse_sentinel(url + 18, t, err, errcap);
    }
    if (strncmp(url, "redis+cluster://", 16) == 0)
        return parse_cluster(url + 16, t, err, errcap);
    if (strncmp(url, "rediss+cluster://", 17) == 0) {
        t->tls.on = 1;
        return parse_cluster(url + 17, t, err, errcap);
    }
    const char *p;
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        t->tls.on = 1;
        p = url + 9;
    } else {
        return bad(t, err, errcap,
                   "expected redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB], "
                   "redis[s]+sentinel://[USER:PASSWORD@]HOST[:PORT][,...]/MASTER[/DB], "
                   "redis[s]+cluster://[USER:PASSWORD@]HOST[:PORT][,...] or "
                   "unix:///PATH[?db=N]");
    }
    const char *end = p + strcspn(p, "/?#");
    ZTB_GUARD(take_userinfo(&p, end, t, err, errcap));
    const char *why = NULL;
    if (parse_hostport(p, (size_t)(end - p), t->host, sizeof(t->host), &t->port, &why) != 0)
        return bad(t, err, errcap, why);
    const char *r = end;
    if (*r == '/') {
        size_t dl = strcspn(r + 1, "?#");
        if (dl > 0 && parse_int(r + 1, dl, 0, 15, &t->db) != 0)
            return bad(t, err, errcap, "bad database number (0-15)");
        r += 1 + dl;
    }
    if (*r == '#')
        return bad(t, err, errcap, "a Redis URL takes no fragment");
    if (*r == '?' && !t->tls.on)
        return bad(t, err, errcap,
                   "redis:// takes no query (TLS options such as ca= go with rediss://)");
    if (*r == '?')
        return parse_query(r + 1, t, 0, err, errcap);
    return ZTB_OK;
}

void redis_target_wipe(struct redis_target *t)
{
    ztb_wipe(t->password, sizeof(t->password));
    ztb_wipe(t->sentinel_password, sizeof(t->sentinel_password));
}

/* "host:port" or "[v6]:port" into out. */
static void hostport(const char *host, int port, char *out, size_t cap)
{
    if (strchr(host, ':') != NULL)
        snprintf(out, cap, "[%s]:%d", host, port);
    else
        snprintf(out, cap, "%s:%d", host, port);
}

void redis_target_describe(const struct redis_target *t, char *out, size_t cap)
{
    const char *at = t->user[0] ? "@" : "";
    char hp[300];
    if (cap == 0)
        return;
    if (t->tls.on && t->path[0] == '\0') {
        size_t n = (size_t)snprintf(out, cap, "tls:");
        if (n >= cap)
            return;
        out += n;
        cap -= n;
    }
    if (t->path[0] != '\0') {
        snprintf(out, cap, "unix:%s", t->path);
    } else if (t->nseeds > 0) {
        int n = snprintf(out, cap, "cluster:%s%s", t->user, at);
        for (size_t i = 0; i < t->nseeds && n >= 0 && (size_t)n < cap; i++) {
            hostport(t->seeds[i].host, t->seeds[i].port, hp, sizeof(hp));
            n += snprintf(out + n, cap - (size_t)n, "%s%s", i ? "," : "", hp);
        }
    } else if (t->nsentinels > 0) {
        int n = snprintf(out, cap, "sentinel:%s%s%s@", t->user, at, t->master_name);
        for (size_t i = 0; i < t->nsentinels && n >= 0 && (size_t)n < cap; i++) {
            hostport(t->sentinels[i].host, t->sentinels[i].port, hp, sizeof(hp));
            n += snprintf(out + n, cap - (size_t)n, "%s%s", i ? "," : "", hp);
        }
    } else {
        hostport(t->host, t->port, hp, sizeof(hp));
        snprintf(out, cap, "%s%s%s", t->user, at, hp);
    }
}

/* A status reply (+OK): AUTH and SELECT said yes. */
static int reply_ok(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STATUS;
}

/* The transport error of a command that got no reply at connect, with a
 * hint when the server hung up at once (a TLS port spoken to in plain). */
static const char *first_reply_error(const struct redis_link *c, int tls)
{
    if (!tls && (c->err == REDIS_ERR_EOF ||
                 (c->err == REDIS_ERR_IO && strcmp(c->errstr, strerror(ECONNRESET)) == 0)))
        return "the server closed the connection at once (a TLS port? use rediss://)";
    return c->errstr;
}

/*
 * Open one connection (unix path if path is not empty, else host:port, over
 * TLS if tls->on) with timeout_ms, AUTH [user] password if a password is
 * given, SELECT db if not 0, else PING. *out is the caller's; on failure
 * NULL, and why in why (cap bytes; never the password).
 */
static ztb_err open_node(const char *path, const char *host, int port, const struct redis_tls *tls,
                         const char *user, const char *password, int db, unsigned timeout_ms,
                         struct redis_link **out, char *why, size_t cap)
{
    struct redis_link *c = NULL;
    redisReply *r = NULL;
    int on_tls = tls->on && path[0] == '\0';
    ztb_err rv = redis_link_open(path, host, port, tls, timeout_ms, &c, why, cap);
    if (rv != ZTB_OK)
        goto out;
    if (password[0] != '\0') {
        /* AUTH [USER] PASSWORD: the ACL user when one is named */
        const char *argv[3] = {"AUTH", user, password};
        size_t lens[3] = {4, strlen(user), strlen(password)};
        if (user[0] == '\0') {
            argv[1] = argv[2];
            lens[1] = lens[2];
        }
        r = redis_link_command_argv(c, user[0] != '\0' ? 3 : 2, argv, lens);
        snprintf(why, cap, "%s",
                 r == NULL ? first_reply_error(c, on_tls)
                           : "AUTH refused (check the user name and password)");
        ZTB_CHECK(rv, reply_ok(r), ZTB_ERR_UNAVAILABLE);
        freeReplyObject(r);
        r = NULL;
    }
    if (db != 0) {
        r = redis_link_commandf(c, "SELECT %d", db);
        snprintf(why, cap, "%s",
                 r == NULL ? first_reply_error(c, on_tls)
                           : "SELECT refused (is the database number within the server's "
                             "databases?)");
        ZTB_CHECK(rv, reply_ok(r), ZTB_ERR_UNAVAILABLE);
    } else if (password[0] == '\0') {
        /* nothing asked yet: prove the server speaks RESP to us */
        r = redis_link_commandf(c, "PING");
        snprintf(why, cap, "%s", r == NULL ? first_reply_error(c, on_tls) : "PING refused");
        ZTB_CHECK(rv, r != NULL && r->type != REDIS_REPLY_ERROR, ZTB_ERR_UNAVAILABLE);
    }
out:
    if (r != NULL)
        freeReplyObject(r);
    if (rv != ZTB_OK) {
        redis_link_free(c);
        c = NULL;
    }
    *out = c;
    return rv;
}

ztb_err redis_target_connect_sentinel(const struct redis_target *t, size_t i,
                                      struct redis_link **out, char *err, size_t errcap)
{
    *out = NULL;
    ZTB_ENSURE(i < t->nsentinels, ZTB_ERR_INVALID_ARG);
    char why[256] = "";
    ztb_err rv =
        open_node("", t->sentinels[i].host, t->sentinels[i].port, &t->tls, t->sentinel_user,
                  t->sentinel_password, 0, t->timeout_ms, out, why, sizeof(why));
    if (rv != ZTB_OK && err != NULL && errcap > 0) {
        char hp[300];
        hostport(t->sentinels[i].host, t->sentinels[i].port, hp, sizeof(hp));
        snprintf(err, errcap, "sentinel %s: %s", hp, why);
    }
    return rv;
}

/* printf into err (cap bytes) if there is room for a message. */
static void say(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* 1 if c's server says ROLE master. */
static int is_master(struct redis_link *c)
{
    redisReply *r = redis_link_commandf(c, "ROLE");
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
             r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

/*
 * Ask sentinel i where the master is and connect to it: ZTB_OK with *out
 * connected, authenticated, and ROLE master; else why in err.
 */
static ztb_err via_sentinel(const struct redis_target *t, size_t i, struct redis_link **out,
                            char *where, size_t wherecap, char *err, size_t errcap)
{
    struct redis_link *s = NULL;
    redisReply *r = NULL;
    char hp[300], mhp[300];
    hostport(t->sentinels[i].host, t->sentinels[i].port, hp, sizeof(hp));
    ztb_err rv = redis_target_connect_sentinel(t, i, &s, err, errcap);
    if (rv != ZTB_OK)
        return rv;
    r = redis_link_commandf(s, "SENTINEL get-master-addr-by-name %s", t->master_name);
    rv = ZTB_ERR_UNAVAILABLE;
    if (r == NULL) {
        say(err, errcap, "sentinel %s: %s", hp, s->errstr);
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING) {
        say(err, errcap, "sentinel %s does not know a master named %s", hp, t->master_name);
        goto out;
    }
    int port = 0;
    const redisReply *h = r->element[0], *p = r->element[1];
    char host[256];
    if (h->len == 0 || h->len >= sizeof(host) || memchr(h->str, 0, h->len) != NULL ||
        parse_int(p->str, p->len, 1, 65535, &port) != 0) {
        say(err, errcap, "sentinel %s gave an address that is not one", hp);
        goto out;
    }
    memcpy(host, h->str, h->len + 1);
    hostport(host, port, mhp, sizeof(mhp));
    char why[256] = "";
    if (open_node("", host, port, &t->tls, t->user, t->password, t->db, t->timeout_ms, out, why,
                  sizeof(why)) != ZTB_OK) {
        say(err, errcap, "master %s (from sentinel %s): %s", mhp, hp, why);
        goto out;
    }
    if (!is_master(*out)) {
        /* a stale answer, or a failover under way: never write to a replica */
        say(err, errcap, "%s (from sentinel %s) is not a master now", mhp, hp);
        redis_link_free(*out);
        *out = NULL;
        goto out;
    }
    say(where, wherecap, "%s", mhp);
    rv = ZTB_OK;
out:
    if (r != NULL)
        freeReplyObject(r);
    redis_link_free(s);
    return rv;
}

ztb_err redis_target_connect_at(const struct redis_target *t, struct redis_link **out, char *where,
                                size_t wherecap, char *err, size_t errcap)
{
    *out = NULL;
    char why[300] = "";
    if (t->nseeds > 0) {
        /* a Cluster: the first seed that answers (commands are routed by
         * common/redis_cluster.c; this is for checks and keyless commands) */
        for (size_t i = 0; i < t->nseeds; i++) {
            if (open_node("", t->seeds[i].host, t->seeds[i].port, &t->tls, t->user, t->password, 0,
                          t->timeout_ms, out, why, sizeof(why)) == ZTB_OK) {
                if (where != NULL && wherecap > 0)
                    hostport(t->seeds[i].host, t->seeds[i].port, where, wherecap);
                return ZTB_OK;
            }
        }
        say(err, errcap, "no Cluster node answered of %zu; last: %s", t->nseeds, why);
        return ZTB_ERR_UNAVAILABLE;
    }
    if (t->nsentinels == 0) {
        ztb_err rv = open_node(t->path, t->host, t->port, &t->tls, t->user, t->password, t->db,
                               t->timeout_ms, out, why, sizeof(why));
        if (rv != ZTB_OK)
            say(err, errcap, "%s", why);
        if (rv == ZTB_OK && where != NULL && wherecap > 0)
            redis_target_describe(t, where, wherecap);
        return rv;
    }
    for (size_t i = 0; i < t->nsentinels; i++)
        if (via_sentinel(t, i, out, where, wherecap, why, sizeof(why)) == ZTB_OK)
            return ZTB_OK;
    /* the last sentinel's reason: each logs the same kind of thing */
    say(err, errcap, "no writable master %s through %zu sentinel(s); last: %s", t->master_name,
        t->nsentinels, why);
    return ZTB_ERR_UNAVAILABLE;
}

ztb_err redis_target_connect_node(const struct redis_target *t, const char *host, int port,
                                  struct redis_link **out, char *err, size_t errcap)
{
    char why[300] = "";
    char hp[300];
    ztb_err rv = open_node("", host, port, &t->tls, t->user, t->password, 0, t->timeout_ms, out,
                           why, sizeof(why));
    if (rv != ZTB_OK) {
        hostport(host, port, hp, sizeof(hp));
        say(err, errcap, "%s: %s", hp, why);
    }
    return rv;
}

ztb_err redis_target_connect(const struct redis_target *t, struct redis_link **out, char *err,
                             size_t errcap)
{
    return redis_target_connect_at(t, out, NULL, 0, err, errcap);
}

/* Error kinds ---------------------------------------------------------------*/

static const struct {
    const char *prefix; /* the error reply's first word */
    enum redis_error_kind kind;
} error_prefixes[] = {
    {"READONLY", REDIS_EK_READONLY},
    {"MASTERDOWN", REDIS_EK_MASTERDOWN},
    {"LOADING", REDIS_EK_LOADING},
    {"NOAUTH", REDIS_EK_NOAUTH},
    {"WRONGPASS", REDIS_EK_NOAUTH},
    {"NOPERM", REDIS_EK_NOPERM},
    {"NOREPLICAS", REDIS_EK_NOREPLICAS},
    {"OOM", REDIS_EK_OOM},
    {"CROSSSLOT", REDIS_EK_CROSSSLOT},
    {"MOVED", REDIS_EK_MOVED},
    {"ASK", REDIS_EK_ASK},
    {"TRYAGAIN", REDIS_EK_TRYAGAIN},
    {"CLUSTERDOWN", REDIS_EK_CLUSTERDOWN},
    {"BUSY", REDIS_EK_BUSY},
    {"NOSCRIPT", REDIS_EK_NOSCRIPT},
};

static const char *const error_kind_names[REDIS_EK_N] = {
    [REDIS_EK_NONE] = "none",
    [REDIS_EK_CONNECTION] = "connection",
    [REDIS_EK_TIMEOUT] = "timeout",
    [REDIS_EK_READONLY] = "readonly",
    [REDIS_EK_MASTERDOWN] = "masterdown",
    [REDIS_EK_LOADING] = "loading",
    [REDIS_EK_NOAUTH] = "noauth",
    [REDIS_EK_NOPERM] = "noperm",
    [REDIS_EK_NOREPLICAS] = "noreplicas",
    [REDIS_EK_OOM] = "oom",
    [REDIS_EK_CROSSSLOT] = "crossslot",
    [REDIS_EK_MOVED] = "moved",
    [REDIS_EK_ASK] = "ask",
    [REDIS_EK_TRYAGAIN] = "tryagain",
    [REDIS_EK_CLUSTERDOWN] = "clusterdown",
    [REDIS_EK_BUSY] = "busy",
    [REDIS_EK_NOSCRIPT] = "noscript",
    [REDIS_EK_OTHER] = "other",
};

enum redis_error_kind redis_error_kind_of(const struct redis_link *c, const redisReply *r)
{
    if (r == NULL) {
        if (c != NULL && c->err == REDIS_ERR_IO && c->timed_out)
            return REDIS_EK_TIMEOUT;
        return REDIS_EK_CONNECTION;
    }
    if (r->type != REDIS_REPLY_ERROR)
        return REDIS_EK_NONE;
    /* a script's error may carry the inner command's code after "ERR " or
     * "-": Redis 7 passes it through, older versions prefix it */
    const char *s = r->str;
    size_t n = r->len;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(error_prefixes) / sizeof(error_prefixes[0]); i++) {
            size_t pl = strlen(error_prefixes[i].prefix);
            if (n >= pl && memcmp(s, error_prefixes[i].prefix, pl) == 0 &&
                (n == pl || s[pl] == ' '))
                return error_prefixes[i].kind;
        }
        /* "ERR Error running script ...: @user_script:1: -READONLY ..." */
        const char *dash = memchr(s, '-', n);
        if (dash == NULL || pass == 1)
            break;
        while (dash != NULL && (size_t)(dash - s) + 1 < n && !(dash[1] >= 'A' && dash[1] <= 'Z'))
            dash = memchr(dash + 1, '-', n - (size_t)(dash + 1 - s));
        if (dash == NULL || (size_t)(dash - s) + 1 >= n)
            break;
        n -= (size_t)(dash + 1 - s);
        s = dash + 1;
    }
    return REDIS_EK_OTHER;
}

const char *redis_error_kind_name(enum redis_error_kind k)
{
    return (unsigned)k < REDIS_EK_N ? error_kind_names[k] : "other";
}

int redis_error_kind_reresolve(enum redis_error_kind k)
{
    return k == REDIS_EK_CONNECTION || k == REDIS_EK_TIMEOUT || k == REDIS_EK_READONLY ||
           k == REDIS_EK_MASTERDOWN || k == REDIS_EK_LOADING || k == REDIS_EK_NOAUTH;
}
