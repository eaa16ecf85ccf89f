/*
 * uri.c - the comparison form of an http(s) URI (see uri.h).
 *
 * How it works: one pass over scheme and authority, writing the form as it
 * goes; the path is first written with its percent-encodings normalized,
 * then its dot segments removed in place, segment by segment, the way RFC
 * 3986 §5.2.4 reads. Nothing is allocated.
 */
#include <string.h>
#include <strings.h>

#include "common/uri.h"

/* The form being written: out[0..len), cap bytes; ok 0 once it overflowed. */
struct form {
    char *out;
    size_t len, cap;
    int ok;
};

static void put(struct form *f, const char *s, size_t n)
{
    if (!f->ok || n >= f->cap - f->len) {
        f->ok = 0;
        return;
    }
    memcpy(f->out + f->len, s, n);
    f->len += n;
}

static void put_c(struct form *f, char c)
{
    put(f, &c, 1);
}

int ztb_uri_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* host[0..n) in lower case; a bracketed IPv6 literal as is but for case.
 * 0 if it is empty or holds a percent-encoding (a registered name that
 * needs one is not something a client puts in htu). */
static int put_host(struct form *f, const char *h, size_t n)
{
    if (n == 0 || memchr(h, '%', n) != NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        put_c(f, lower(h[i]));
    return 1;
}

/* ":port" unless it is the scheme's default; 0 if not a port. */
static int put_port(struct form *f, const char *p, size_t n, unsigned deflt)
{
    if (n == 0)
        return 1; /* "host:" is "host" (RFC 3986 §6.2.3) */
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(p[i] - '0');
        if (v > 65535)
            return 0;
    }
    if (v == deflt)
        return 1;
    char d[8];
    size_t k = sizeof(d);
    do {
        d[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    put_c(f, ':');
    put(f, d + k, sizeof(d) - k);
    return 1;
}

/* The path p[0..n) (starting with '/') with its percent-encodings
 * normalized; 0 for a bad one. */
static int put_path(struct form *f, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            put_c(f, p[i]);
            continue;
        }
        int hi = i + 2 < n ? ztb_uri_hex_value(p[i + 1]) : -1,
            lo = i + 2 < n ? ztb_uri_hex_value(p[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return 0;
        unsigned char c = (unsigned char)(hi * 16 + lo);
        if (unreserved(c)) {
            put_c(f, (char)c);
        } else {
            char e[3] = {'%', hex[hi], hex[lo]};
            put(f, e, 3);
        }
        i += 2;
    }
    return 1;
}

/* Remove the dot segments of the path at s[0..*n) (starting with '/') in
 * place: each segment is copied down unless it is "." (dropped) or ".."
 * (the one before it dropped too); either one last leaves a '/' at the end. */
static void remove_dots(char *s, size_t *n)
{
    size_t in = 0, out = 0;
    while (in < *n) {
        size_t start = in + 1, end = start; /* s[in] is '/' */
        while (end < *n && s[end] != '/')
            end++;
        size_t len = end - start;
        int last = end == *n;
        if (len == 1 && s[start] == '.') {
            if (last)
                s[out++] = '/';
        } else if (len == 2 && s[start] == '.' && s[start + 1] == '.') {
            while (out > 0 && s[out - 1] != '/')
                out--;
            if (out > 0)
                out--; /* the '/' before the dropped segment */
            if (last)
                s[out++] = '/';
        } else {
            memmove(s + out, s + in, end - in);
            out += end - in;
        }
        in = end;
    }
    if (out == 0)
        s[out++] = '/';
    *n = out;
}

size_t ztb_uri_htu_form(const char *u, size_t n, char *out, size_t cap)
{
    if (u == NULL || out == NULL || cap == 0)
        return 0;
    out[0] = '\0';
    size_t end = 0; /* query and fragment are not compared */
    while (end < n && u[end] != '?' && u[end] != '#')
        end++;
    for (size_t i = 0; i < end; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
            return 0;
    struct form f = {
        .out = out, .cap = cap < ZTB_URI_FORM_MAX + 1 ? cap : ZTB_URI_FORM_MAX + 1, .ok = 1};
    size_t i;
    unsigned deflt;
    if (end >= 8 && strncasecmp(u, "https://", 8) == 0) {
        i = 8;
        deflt = 443;
        put(&f, "https://", 8);
    } else if (end >= 7 && strncasecmp(u, "http://", 7) == 0) {
        i = 7;
        deflt = 80;
        put(&f, "http://", 7);
    } else {
        return 0;
    }
    size_t a = i;
    while (i < end && u[i] != '/')
        i++;
    const char *auth = u + a;
    size_t alen = i - a, hlen = alen;
    if (memchr(auth, '@', alen) != NULL)
        return 0;
    const char *port = NULL;
    if (alen > 0 && auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (close == NULL)
            return 0;
        hlen = (size_t)(close - auth) + 1;
        if (hlen < alen) {
            if (auth[hlen] != ':')
                return 0;
            port = auth + hlen + 1;
        }
    } else {
        const char *colon = memchr(auth, ':', alen);
        if (colon != NULL) {
            hlen = (size_t)(colon - auth);
            port = colon + 1;
        }
    }
    if (!put_host(&f, auth, hlen) ||
        (port != NULL && !put_port(&f, port, (size_t)(auth + alen - port), deflt)))
        return 0;
    size_t path_at = f.len;
    if (i == end)
        put_c(&f, '/');
    else if (!put_path(&f, u + i, end - i))
        return 0;
    if (!f.ok)
        return 0;
    size_t plen = f.len - path_at;
    remove_dots(out + path_at, &plen);
    f.len = path_at + plen;
    out[f.len] = '\0';
    return f.len;
}
