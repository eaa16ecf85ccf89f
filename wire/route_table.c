/*
 * route_table.c - the gateway route table (see route_table.h): parse the
 * operator's JSON file, match a request's raw method and target.
 *
 * How it works: each route's path is split at '/' into at most 16 segments,
 * each a literal or a {name}; a request path is split the same way, without
 * decoding anything, and compared segment by segment. A captured value must
 * be 1..128 unreserved characters and not a dot segment, so the resource
 * built from it ("orders/{id}") can only ever name what the route meant.
 *
 * route_check_original picks the original request out of a check request
 * (the header or the prefix form, route_table.h) from the raw target;
 * route_override_ok says whether its method overrides may pass.
 *
 * Must never: decode, normalise or trim the path; accept a route file with
 * any problem.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/json_gate.h"
#include "common/uri.h"
#include "wire/route_table.h"

#define VARS_MAX 8

struct segment {
    char *literal; /* NULL: a variable */
    int var;       /* index into the route's vars */
};

struct route {
    char method[17];
    struct segment seg[ROUTE_SEGMENTS_MAX];
    int nseg;
    char vars[VARS_MAX][33];
    int nvars;
    char audience[ROUTE_NAME_MAX];
    char action[ROUTE_NAME_MAX];
    char resource[ROUTE_RESOURCE_MAX]; /* a template: {name} are the vars */
};

struct route_table {
    char origin[ROUTE_ORIGIN_MAX];
    struct route *routes;
    size_t n;
};

/* RFC 3986 unreserved. */
static int unreserved(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* A value for a header or a name: printable ASCII without space, braces
 * or quotes (it goes into X-Ztb-* headers and WWW-Authenticate). */
static int plain(const char *s, size_t max, int braces_ok)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' ||
            (!braces_ok && (c == '{' || c == '}')))
            return 0;
    }
    return 1;
}

static int var_index(const struct route *r, const char *name, size_t len)
{
    for (int i = 0; i < r->nvars; i++)
        if (strlen(r->vars[i]) == len && memcmp(r->vars[i], name, len) == 0)
            return i;
    return -1;
}

static int var_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 32 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* Split a route path into r->seg. Returns NULL or what is wrong. */
static const char *parse_path(struct route *r, const char *path)
{
    size_t n = strlen(path);
    if (n < 2 || n >= ROUTE_PATH_MAX || path[0] != '/')
        return "path must start with '/' and name at least one segment";
    const char *p = path + 1;
    while (*p != '\0') {
        const char *end = strchr(p, '/');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (r->nseg == ROUTE_SEGMENTS_MAX)
            return "path has too many segments (at most 16)";
        struct segment *s = &r->seg[r->nseg++];
        if (len == 0)
            return "path has an empty segment (double or trailing slash)";
        if (p[0] == '{') {
            if (len < 3 || p[len - 1] != '}' || !var_name_ok(p + 1, len - 2))
                return "a variable is a whole segment {name}, name of [a-z0-9_]";
            if (var_index(r, p + 1, len - 2) >= 0)
                return "a variable name is used twice";
            if (r->nvars == VARS_MAX)
                return "too many variables (at most 8)";
            memcpy(r->vars[r->nvars], p + 1, len - 2);
            r->vars[r->nvars][len - 2] = '\0';
            s->var = r->nvars++;
        } else {
            for (size_t i = 0; i < len; i++)
                if (!unreserved(p[i]) && p[i] != ':' && p[i] != '@')
                    return "a literal segment may hold only A-Z a-z 0-9 - . _ ~ : @";
            if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
                return "path has a dot segment";
            s->literal = strndup(p, len);
            if (s->literal == NULL)
                return "out of memory";
        }
        if (end == NULL)
            break;
        p = end + 1;
        if (*p == '\0')
            return "path has an empty segment (double or trailing slash)";
    }
    return NULL;
}

/* The resource template may use only the path's variables. */
static const char *check_template(const struct route *r)
{
    const char *p = r->resource;
    while ((p = strchr(p, '{')) != NULL) {
        const char *end = strchr(p, '}');
        if (end == NULL || var_index(r, p + 1, (size_t)(end - p - 1)) < 0)
            return "resource names a {variable} the path does not have";
        p = end + 1;
    }
    if (strchr(r->resource, '}') != NULL && strchr(r->resource, '{') == NULL)
        return "resource has an unmatched '}'";
    return NULL;
}

static const char *copy_str(json_t *o, const char *name, char *out, size_t cap, int required)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL && !required) {
        out[0] = '\0';
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v))
        return "a required string is missing, not a string or too long";
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return NULL;
}

static const char *parse_route(struct route *r, json_t *o)
{
    static const char *const known[] = {"method", "path", "audience", "action", "resource", NULL};
    if (!json_is_object(o))
        return "a route must be an object";
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        int ok = 0;
        for (const char *const *n = known; *n != NULL; n++)
            ok |= strcmp(*n, k) == 0;
        if (!ok)
            return "unknown member (known: method, path, audience, action, resource)";
    }
    char path[ROUTE_PATH_MAX];
    const char *why = copy_str(o, "method", r->method, sizeof(r->method), 1);
    if (why == NULL)
        why = copy_str(o, "path", path, sizeof(path), 1);
    if (why == NULL)
        why = copy_str(o, "audience", r->audience, sizeof(r->audience), 1);
    if (why == NULL)
        why = copy_str(o, "action", r->action, sizeof(r->action), 1);
    if (why == NULL)
        why = copy_str(o, "resource", r->resource, sizeof(r->resource), 0);
    if (why != NULL)
        return why;
    if (r->method[0] == '\0' ||
        strspn(r->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(r->method))
        return "method must be an upper-case HTTP method, e.g. POST";
    if (!plain(r->audience, sizeof(r->audience), 0) || !plain(r->action, sizeof(r->action), 0))
        return "audience and action must be printable ASCII without spaces, quotes or braces";
    if (r->resource[0] != '\0' && !plain(r->resource, sizeof(r->resource), 1))
        return "resource must be printable ASCII without spaces or quotes";
    why = parse_path(r, path);
    return why != NULL ? why : check_template(r);
}

static const char *parse_origin(struct route_table *t, json_t *root)
{
    if (copy_str(root, "origin", t->origin, sizeof(t->origin), 0) != NULL)
        return "origin must be a string";
    if (t->origin[0] == '\0')
        return NULL;
    const char *rest = strncmp(t->origin, "https://", 8) == 0  ? t->origin + 8
                       : strncmp(t->origin, "http://", 7) == 0 ? t->origin + 7
                                                               : NULL;
    if (rest == NULL || *rest == '\0' || !plain(t->origin, sizeof(t->origin), 0) ||
        strpbrk(rest, "/?#") != NULL)
        return "origin must be scheme://host[:port] as clients see the gateway, without a path";
    return NULL;
}

void route_table_free(struct route_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        for (int s = 0; s < t->routes[i].nseg; s++)
            free(t->routes[i].seg[s].literal);
    free(t->routes);
    free(t);
}

ztb_err route_table_parse(const char *text, size_t n, struct route_table **out, char *why,
                          size_t cap)
{
    *out = NULL;
    why[0] = '\0';
    json_t *root = NULL;
    char jwhy[200];
    ztb_err rv = ztb_json_gate_load(text, n, ROUTE_FILE_MAX, 8, 0, &root, jwhy, sizeof(jwhy));
    if (rv != ZTB_OK) {
        snprintf(why, cap, "%s", jwhy);
        return rv;
    }
    struct route_table *t = calloc(1, sizeof(*t));
    json_t *routes = json_object_get(root, "routes");
    const char *bad = NULL;
    size_t bad_i = (size_t)-1;
    if (t == NULL) {
        bad = "out of memory";
    } else if (!json_is_object(root)) {
        bad = "the route table must be an object {\"origin\": ..., \"routes\": [...]}";
    } else if (json_object_size(root) != (json_object_get(root, "origin") != NULL) + 1u ||
               !json_is_array(routes)) {
        bad = "the route table has exactly \"routes\" (an array) and optionally \"origin\"";
    } else if (json_array_size(routes) == 0 || json_array_size(routes) > ROUTE_MAX_ROUTES) {
        bad = "routes must hold 1 to 256 routes";
    } else {
        bad = parse_origin(t, root);
        t->routes = bad == NULL ? calloc(json_array_size(routes), sizeof(*t->routes)) : NULL;
        if (bad == NULL && t->routes == NULL)
            bad = "out of memory";
        for (size_t i = 0; bad == NULL && i < json_array_size(routes); i++) {
            t->n = i + 1;
            bad = parse_route(&t->routes[i], json_array_get(routes, i));
            if (bad != NULL)
                bad_i = i;
        }
    }
    json_decref(root);
    if (bad != NULL) {
        if (bad_i != (size_t)-1)
            snprintf(why, cap, "route %zu: %s", bad_i + 1, bad);
        else
            snprintf(why, cap, "%s", bad);
        route_table_free(t);
        return ZTB_ERR_INVALID_ARG;
    }
    *out = t;
    return ZTB_OK;
}

ztb_err route_table_load(const char *path, struct route_table **out, char *why, size_t cap)
{
    *out = NULL;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(why, cap, "%s: cannot be read", path);
        return ZTB_ERR_IO;
    }
    char *text = malloc(ROUTE_FILE_MAX + 1);
    size_t n = text != NULL ? fread(text, 1, ROUTE_FILE_MAX + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (text == NULL || err) {
        free(text);
        snprintf(why, cap, "%s: cannot be read", path);
        return ZTB_ERR_IO;
    }
    char inner[300];
    ztb_err rv = n > ROUTE_FILE_MAX ? ZTB_ERR_TOO_LARGE
                                    : route_table_parse(text, n, out, inner, sizeof(inner));
    free(text);
    if (rv == ZTB_ERR_TOO_LARGE && *out == NULL && n > ROUTE_FILE_MAX)
        snprintf(why, cap, "%s: larger than %d bytes", path, ROUTE_FILE_MAX);
    else if (rv != ZTB_OK)
        snprintf(why, cap, "%s: %s", path, inner);
    return rv;
}

size_t route_table_count(const struct route_table *t)
{
    return t != NULL ? t->n : 0;
}

const char *route_table_audience(const struct route_table *t, size_t i)
{
    return t != NULL && i < t->n ? t->routes[i].audience : NULL;
}

const char *route_table_action(const struct route_table *t, size_t i)
{
    return t != NULL && i < t->n ? t->routes[i].action : NULL;
}

const char *route_table_origin(const struct route_table *t)
{
    return t != NULL ? t->origin : "";
}

/* A captured value: 1..ROUTE_VALUE_MAX unreserved characters, not "." or "..". */
static int value_ok(const char *s, size_t len)
{
    if (len == 0 || len > ROUTE_VALUE_MAX)
        return 0;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!unreserved(s[i]))
            return 0;
    return 1;
}

/* Split the request path (before any '?') into segments; 0 if it cannot
 * match any route (empty segment, too many, a fragment). */
static int split(const char *path, size_t plen, const char **seg, size_t *len, int *nseg)
{
    *nseg = 0;
    if (plen < 2 || path[0] != '/' || memchr(path, '#', plen) != NULL)
        return 0;
    size_t i = 1;
    for (;;) {
        size_t start = i;
        while (i < plen && path[i] != '/')
            i++;
        if (i == start || *nseg == ROUTE_SEGMENTS_MAX)
            return 0; /* an empty segment, or too many */
        seg[*nseg] = path + start;
        len[*nseg] = i - start;
        (*nseg)++;
        if (i == plen)
            return 1;
        i++; /* the '/' */
    }
}

/* Fill need from r with the captured values. INVALID_ARG if the resource
 * would not fit. */
static ztb_err fill(const struct route_table *t, const struct route *r, int idx,
                    const char *const *val, const size_t *vlen, struct route_need *need)
{
    memset(need, 0, sizeof(*need));
    memcpy(need->audience, r->audience, strlen(r->audience) + 1);
    memcpy(need->action, r->action, strlen(r->action) + 1);
    memcpy(need->origin, t->origin, strlen(t->origin) + 1);
    need->route = idx;
    size_t o = 0;
    for (const char *p = r->resource; *p != '\0';) {
        const char *add = p;
        size_t n = 1;
        if (*p == '{') {
            const char *end = strchr(p, '}');
            int v = var_index(r, p + 1, (size_t)(end - p - 1));
            add = val[v];
            n = vlen[v];
            p = end + 1;
        } else {
            p++;
        }
        if (add == NULL || o + n >= sizeof(need->resource))
            return ZTB_ERR_INVALID_ARG;
        memcpy(need->resource + o, add, n);
        o += n;
    }
    need->resource[o] = '\0';
    return ZTB_OK;
}

ztb_err route_table_match(const struct route_table *t, const char *method, const char *uri,
                          struct route_need *need)
{
    if (t == NULL || method == NULL || uri == NULL || need == NULL)
        return ZTB_ERR_INVALID_ARG;
    size_t ulen = strnlen(uri, ROUTE_PATH_MAX * 8);
    if (ulen == ROUTE_PATH_MAX * 8)
        return ZTB_ERR_INVALID_ARG;
    const char *q = memchr(uri, '?', ulen);
    size_t plen = q != NULL ? (size_t)(q - uri) : ulen;
    if (plen >= ROUTE_PATH_MAX)
        return ZTB_ERR_NOT_FOUND;
    const char *seg[ROUTE_SEGMENTS_MAX];
    size_t len[ROUTE_SEGMENTS_MAX];
    int nseg;
    if (!split(uri, plen, seg, len, &nseg))
        return ZTB_ERR_NOT_FOUND;
    for (size_t i = 0; i < t->n; i++) {
        const struct route *r = &t->routes[i];
        if (strcmp(r->method, method) != 0 || r->nseg != nseg)
            continue;
        const char *val[VARS_MAX] = {0};
        size_t vlen[VARS_MAX] = {0};
        int ok = 1;
        for (int s = 0; ok && s < nseg; s++) {
            const struct segment *g = &r->seg[s];
            if (g->literal != NULL) {
                ok = strlen(g->literal) == len[s] && memcmp(g->literal, seg[s], len[s]) == 0;
            } else {
                ok = value_ok(seg[s], len[s]);
                val[g->var] = seg[s];
                vlen[g->var] = len[s];
            }
        }
        if (ok)
            return fill(t, r, (int)i, val, vlen, need) == ZTB_OK ? ZTB_OK : ZTB_ERR_NOT_FOUND;
    }
    return ZTB_ERR_NOT_FOUND;
}

ztb_err route_check_original(const char *method, const char *target, const char *hdr_method,
                             int n_method, const char *hdr_uri, int n_uri, struct route_check *out,
                             const char **why)
{
    static const char prefix[] = ROUTE_CHECK_PATH "/";
    const size_t plen = sizeof(prefix) - 1;
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (method == NULL || method[0] == '\0' || target == NULL) {
        *why = "the check request's method or target could not be read exactly as sent (a "
               "NUL byte in the request line?)";
        return ZTB_ERR_INVALID_REQUEST;
    }
    if (strncmp(target, prefix, plen) == 0) {
        if (n_method != 0 || n_uri != 0) {
            *why = "the original request is named twice: by the path (" ROUTE_CHECK_PATH
                   "/<path>, Envoy's path_prefix) and by the original method or URI header; "
                   "send one (do not forward X-Original-* headers in the prefix form, "
                   "docs/gateways.md)";
            return ZTB_ERR_INVALID_REQUEST;
        }
        out->method = method;
        out->uri = target + plen - 1; /* from the '/' on, as sent */
        out->prefix_form = 1;
        return ZTB_OK;
    }
    size_t n = strlen(ROUTE_CHECK_PATH);
    if (strncmp(target, ROUTE_CHECK_PATH, n) != 0 || (target[n] != '\0' && target[n] != '?')) {
        *why = "the check request's path must be " ROUTE_CHECK_PATH
               " (with the original method and URI headers) or start with exactly " ROUTE_CHECK_PATH
               "/ followed by the original path, not encoded";
        return ZTB_ERR_INVALID_REQUEST;
    }
    if (n_method != 1 || n_uri != 1 || hdr_method == NULL || hdr_uri == NULL) {
        *why = "the gateway must send the original method and URI once each (e.g. "
               "X-Original-Method and X-Original-URI), or use the path form " ROUTE_CHECK_PATH
               "/<path> (docs/gateways.md)";
        return ZTB_ERR_INVALID_REQUEST;
    }
    out->method = hdr_method;
    out->uri = hdr_uri;
    return ZTB_OK;
}

const char *const route_override_headers[] = {"X-HTTP-Method-Override", "X-HTTP-Method",
                                              "X-Method-Override", NULL};

/* 1 if the query parameter name p[0..n) reads as "_method" to a framework:
 * percent-decoded, any case, '.', ' ' and '+' as '_' (PHP's names), a '['
 * ending it ("_method[]"). */
static int name_is_method(const char *p, size_t n)
{
    static const char want[] = "_method";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%' && i + 2 < n && ztb_uri_hex_value(p[i + 1]) >= 0 &&
            ztb_uri_hex_value(p[i + 2]) >= 0) {
            c = (char)(ztb_uri_hex_value(p[i + 1]) * 16 + ztb_uri_hex_value(p[i + 2]));
            i += 2;
        }
        if (c == '[')
            break;
        if (c == '.' || c == ' ' || c == '+')
            c = '_';
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (k == sizeof(want) - 1 || c != want[k])
            return 0;
        k++;
    }
    return k == sizeof(want) - 1;
}

int route_override_ok(const struct route_check *orig, int n, const char *value)
{
    if (orig == NULL || orig->method == NULL || orig->uri == NULL)
        return 0;
    if (n != 0 && (n != 1 || value == NULL || strcmp(orig->method, value) != 0))
        return 0;
    const char *q = strchr(orig->uri, '?');
    while (q != NULL) {
        const char *name = q + 1;
        size_t len = strcspn(name, "&;=#");
        if (name_is_method(name, len))
            return 0;
        q = strpbrk(name, "&;");
    }
    return 1;
}

struct route_holder {
    pthread_rwlock_t lock;
    pthread_mutex_t reload; /* one reload at a time */
    struct route_table *t;
};

struct route_holder *route_holder_new(void)
{
    struct route_holder *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    pthread_rwlock_init(&h->lock, NULL);
    pthread_mutex_init(&h->reload, NULL);
    return h;
}

void route_holder_free(struct route_holder *h)
{
    if (h == NULL)
        return;
    route_table_free(h->t);
    pthread_rwlock_destroy(&h->lock);
    pthread_mutex_destroy(&h->reload);
    free(h);
}

ztb_err route_holder_reload(struct route_holder *h, const char *path, char *why, size_t cap)
{
    pthread_mutex_lock(&h->reload);
    struct route_table *t = NULL;
    ztb_err rv = route_table_load(path, &t, why, cap);
    if (rv == ZTB_OK) {
        pthread_rwlock_wrlock(&h->lock);
        struct route_table *old = h->t;
        h->t = t;
        pthread_rwlock_unlock(&h->lock);
        route_table_free(old);
    }
    pthread_mutex_unlock(&h->reload);
    return rv;
}

ztb_err route_holder_match(struct route_holder *h, const char *method, const char *uri,
                           struct route_need *need)
{
    pthread_rwlock_rdlock(&h->lock);
    ztb_err rv = h->t != NULL ? route_table_match(h->t, method, uri, need) : ZTB_ERR_NOT_FOUND;
    pthread_rwlock_unlock(&h->lock);
    return rv;
}

void route_holder_origin(struct route_holder *h, char *out, size_t cap)
{
    if (cap == 0)
        return;
    pthread_rwlock_rdlock(&h->lock);
    snprintf(out, cap, "%s", h->t != NULL ? h->t->origin : "");
    pthread_rwlock_unlock(&h->lock);
}
