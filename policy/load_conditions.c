/*
 * load_conditions.c - the "conditions" of a rule: time windows, source
 * address ranges, limits on request values; each written back in a
 * canonical text form for explain and overlap.
 *
 * Part of the policy loader (see load.c); like all of it, it must never
 * accept a document with any problem.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/guard.h"
#include "common/utf8.h"
#include "policy/compile.h"
#include "policy/load_internal.h"
#include "policy/model.h"
#include "policy/policy.h"

/* Print a limit bound: integers as integers, others with full precision. */
static void fmt_num(char *buf, size_t cap, double v)
{
    if (v == (double)(long long)v) {
        snprintf(buf, cap, "%lld", (long long)v);
        return;
    }
    /* the shortest form that reads back as the same double */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static int cmp_window(const void *a, const void *b)
{
    const struct policy_window *x = a, *y = b;
    if (x->days != y->days)
        return x->days < y->days ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static void fmt_window(ztb_buf *b, const struct policy_window *w)
{
    static const char *const dn[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    if (w->days == 0x7f) {
        ztb_buf_append_str(b, "every day");
    } else {
        int first = 1;
        for (int d = 1; d <= 7; d++) { /* monday first, as people write weeks */
            if (w->days >> (d % 7) & 1) {
                ztb_buf_printf(b, "%s%s", first ? "" : ",", dn[d % 7]);
                first = 0;
            }
        }
    }
    int off = w->offset < 0 ? -w->offset : w->offset;
    ztb_buf_printf(b, " %02u:%02u-%02u:%02u %c%02d:%02d", w->start / 60, w->start % 60, w->end / 60,
                   w->end % 60, w->offset < 0 ? '-' : '+', off / 60, off % 60);
}

static void parse_windows(struct ld *L, json_t *v, const char *where, struct policy_conditions *c)
{
    static const char *const keys[] = {"days", "start", "end", "utc_offset", NULL};
    const char *field = "conditions.time_windows";
    if (load_want_list(L, v, where, field, 16) == NULL)
        return;
    size_t n = json_array_size(v);
    struct policy_window *w = ztb_arena_calloc(L->a, n, sizeof(*w));
    if (w == NULL)
        return;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(v, i);
        char f[WCAP];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        if (!json_is_object(o)) {
            load_fail(L, where, f,
                      "must be an object {\"days\", \"start\", \"end\", \"utc_offset\"}");
            continue;
        }
        load_check_keys(L, o, where, f, keys);
        int ok = 1;
        w[k].days = 0x7f;
        json_t *days = json_object_get(o, "days");
        if (days != NULL) {
            char fd[WCAP];
            load_path(fd, sizeof(fd), f, "days");
            w[k].days = 0;
            if (load_want_list(L, days, where, fd, 7) == NULL) {
                ok = 0;
            } else {
                for (size_t j = 0; j < json_array_size(days); j++) {
                    unsigned bit;
                    json_t *d = json_array_get(days, j);
                    if (policy_parse_day(json_string_value(d), &bit) != ZTB_OK) {
                        load_fail(L, where, fd, "days are \"mon\", \"tue\", ... \"sun\"");
                        ok = 0;
                    } else if (w[k].days >> bit & 1) {
                        load_fail(L, where, fd, "\"%s\" is listed twice", json_string_value(d));
                        ok = 0;
                    } else {
                        w[k].days |= (uint8_t)(1u << bit);
                    }
                }
            }
        }
        const char *start = load_get_str(L, o, "start", where, f, 5, 1);
        const char *end = load_get_str(L, o, "end", where, f, 5, 1);
        const char *off = load_get_str(L, o, "utc_offset", where, f, 6, 0);
        char fs[WCAP];
        if (start == NULL || policy_parse_hhmm(start, &w[k].start) != ZTB_OK ||
            w[k].start >= 1440) {
            if (start != NULL)
                load_fail(L, where, load_path(fs, sizeof(fs), f, "start"),
                          "must be \"HH:MM\", 00:00 to 23:59");
            ok = 0;
        }
        if (end == NULL || policy_parse_hhmm(end, &w[k].end) != ZTB_OK || w[k].end == 0) {
            if (end != NULL)
                load_fail(L, where, load_path(fs, sizeof(fs), f, "end"),
                          "must be \"HH:MM\", 00:01 to 24:00");
            ok = 0;
        }
        if (off != NULL && policy_parse_utc_offset(off, &w[k].offset) != ZTB_OK) {
            load_fail(L, where, load_path(fs, sizeof(fs), f, "utc_offset"),
                      "must be \"+HH:MM\" or \"-HH:MM\" (at most 14:00)");
            ok = 0;
        }
        if (ok && w[k].start == w[k].end) {
            load_fail(L, where, f, "start equals end: the window is empty");
            ok = 0;
        }
        if (ok)
            k++;
    }
    qsort(w, k, sizeof(*w), cmp_window);
    for (uint32_t i = 1; i < k; i++)
        if (cmp_window(&w[i - 1], &w[i]) == 0)
            load_fail(L, where, field, "the same window is listed twice");
    c->windows = w;
    c->n_windows = k;
}

static void parse_cidrs(struct ld *L, json_t *v, const char *where, struct policy_conditions *c,
                        const char ***texts)
{
    const char *field = "conditions.source_ip";
    if (load_want_list(L, v, where, field, POLICY_MAX_LIST) == NULL)
        return;
    size_t n = json_array_size(v);
    struct policy_cidr *cidrs = ztb_arena_calloc(L->a, n, sizeof(*cidrs));
    const char **t = ztb_arena_calloc(L->a, n, sizeof(char *));
    if (cidrs == NULL || t == NULL)
        return;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        char q[QCAP];
        if (!json_is_string(e) || policy_parse_cidr(json_string_value(e), &cidrs[k]) != ZTB_OK) {
            load_fail(L, where, field,
                      "%s: must be an address or CIDR such as \"10.0.0.0/8\" or \"fd00::/8\" "
                      "(host bits zero)",
                      json_is_string(e) ? load_quote(q, json_string_value(e)) : "entry");
            continue;
        }
        t[k] = load_copy(L, json_string_value(e));
        if (load_seen_before(t, k, t[k])) {
            load_fail(L, where, field, "%s is listed twice", load_quote(q, t[k]));
            continue;
        }
        k++;
    }
    c->cidrs = cidrs;
    c->n_cidrs = k;
    *texts = t;
}

/* "a.b.c" -> segments; 0 if malformed. */
static int split_path(struct ld *L, const char *s, struct policy_limit *l)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    const char **seg = ztb_arena_calloc(L->a, POLICY_PATH_MAX_SEGMENTS, sizeof(char *));
    if (seg == NULL)
        return 0;
    uint32_t k = 0;
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0 || k == POLICY_PATH_MAX_SEGMENTS)
            return 0;
        for (size_t i = 0; i < len; i++) {
            char c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-'))
                return 0;
        }
        seg[k++] = ztb_arena_memdup(L->a, p, len);
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    l->seg = seg;
    l->n_seg = k;
    return 1;
}

/* ceil / floor of |v| <= 2^53 as integers, without libm. */
static int64_t ceil_i64(double v)
{
    int64_t t = (int64_t)v;
    return (double)t < v ? t + 1 : t;
}

static int64_t floor_i64(double v)
{
    int64_t t = (int64_t)v;
    return (double)t > v ? t - 1 : t;
}

static int get_bound(struct ld *L, json_t *o, const char *key, const char *where, const char *f,
                     double *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL)
        return 0;
    char fk[WCAP];
    load_path(fk, sizeof(fk), f, key);
    if (!json_is_number(v)) {
        load_fail(L, where, fk, "must be a number");
        return -1;
    }
    double d = json_number_value(v);
    if (!(d >= -POLICY_LIMIT_MAX && d <= POLICY_LIMIT_MAX)) {
        load_fail(L, where, fk, "must lie within +/-2^53");
        return -1;
    }
    *out = d;
    return 1;
}

static void parse_limits(struct ld *L, json_t *v, const char *where, struct policy_conditions *c,
                         const char ***canon_parts)
{
    static const char *const keys[] = {"path", "type", "min", "max", NULL};
    const char *field = "conditions.limits";
    if (load_want_list(L, v, where, field, 16) == NULL)
        return;
    size_t n = json_array_size(v);
    struct policy_limit *lim = ztb_arena_calloc(L->a, n, sizeof(*lim));
    const char **desc = ztb_arena_calloc(L->a, n, sizeof(char *));
    const char **canon = ztb_arena_calloc(L->a, n, sizeof(char *));
    if (lim == NULL || desc == NULL || canon == NULL)
        return;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(v, i);
        char f[WCAP];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        if (!json_is_object(o)) {
            load_fail(L, where, f, "must be an object {\"path\", \"min\", \"max\", \"type\"}");
            continue;
        }
        load_check_keys(L, o, where, f, keys);
        struct policy_limit *l = &lim[k];
        const char *ps = load_get_str(L, o, "path", where, f, 128, 1);
        const char *type = load_get_str(L, o, "type", where, f, 64, 0);
        char fp[WCAP];
        if (ps != NULL && !split_path(L, ps, l)) {
            load_fail(L, where, load_path(fp, sizeof(fp), f, "path"),
                      "must be object keys joined by '.', e.g. \"amount\" or \"limits.amount\" "
                      "(A-Z a-z 0-9 _ -, at most %d keys)",
                      POLICY_PATH_MAX_SEGMENTS);
            ps = NULL;
        }
        int hmin = get_bound(L, o, "min", where, f, &l->min);
        int hmax = get_bound(L, o, "max", where, f, &l->max);
        if (ps == NULL || hmin < 0 || hmax < 0 || (type == NULL && json_object_get(o, "type")))
            continue;
        if (hmin == 0 && hmax == 0) {
            load_fail(L, where, f, "needs \"min\", \"max\" or both");
            continue;
        }
        if (hmin == 1 && hmax == 1 && l->min > l->max) {
            load_fail(L, where, f, "min is above max: no value can satisfy it");
            continue;
        }
        l->has_min = hmin == 1;
        l->has_max = hmax == 1;
        l->imin = l->has_min ? ceil_i64(l->min) : 0;
        l->imax = l->has_max ? floor_i64(l->max) : 0;
        l->type = load_copy(L, type);
        char a[40], b[40];
        fmt_num(a, sizeof(a), l->min);
        fmt_num(b, sizeof(b), l->max);
        char tsuffix[96] = "";
        if (type != NULL)
            snprintf(tsuffix, sizeof(tsuffix), " (type %s)", type);
        const char *expr;
        if (l->has_min && l->has_max)
            expr = ztb_arena_printf(L->a, "%s <= %s <= %s%s", a, ps, b, tsuffix);
        else if (l->has_max)
            expr = ztb_arena_printf(L->a, "%s <= %s%s", ps, b, tsuffix);
        else
            expr = ztb_arena_printf(L->a, "%s >= %s%s", ps, a, tsuffix);
        if (expr == NULL)
            return;
        if (load_seen_before(canon, k, expr)) {
            load_fail(L, where, f, "the same limit is listed twice");
            continue;
        }
        canon[k] = expr;
        desc[k] = ztb_arena_printf(L->a, "limits[%zu]: %s", i, expr);
        k++;
    }
    c->limits = lim;
    c->n_limits = k;
    c->desc_limits = desc;
    *canon_parts = canon;
}

/* Join n strings (sorted copy) with sep between, inside [ ], into b. */
static void join_sorted(struct ld *L, ztb_buf *b, const char *const *v, size_t n, const char *sep)
{
    const char **c = ztb_arena_calloc(L->a, n ? n : 1, sizeof(char *));
    if (c == NULL)
        return;
    if (n > 0) /* v may be NULL when the list failed to parse */
        memcpy(c, v, n * sizeof(char *));
    qsort(c, n, sizeof(char *), load_cmp_str);
    ztb_buf_append_byte(b, '[');
    for (size_t i = 0; i < n; i++)
        ztb_buf_printf(b, "%s%s", i ? sep : "", c[i]);
    ztb_buf_append_byte(b, ']');
}

static const char *buf_to_arena(struct ld *L, ztb_buf *b)
{
    const char *s = ztb_buf_error(b) == ZTB_OK ? ztb_arena_strdup(L->a, ztb_buf_cstr(b)) : NULL;
    ztb_buf_reset(b);
    return s;
}

void load_parse_conditions(struct ld *L, json_t *v, const char *where, struct policy_conditions *c)
{
    static const char *const keys[] = {"not_before", "not_after", "time_windows", "delegation",
                                       "act",        "source_ip", "limits",       NULL};
    const char *field = "conditions";
    memset(c, 0, sizeof(*c));
    c->canon = "";
    if (v == NULL)
        return;
    if (!json_is_object(v)) {
        load_fail(L, where, field, "must be an object");
        return;
    }
    if (json_object_size(v) == 0) {
        load_fail(L, where, field, "is empty (leave it out instead)");
        return;
    }
    load_check_keys(L, v, where, field, keys);
    c->any = 1;
    ztb_buf b;
    ztb_buf_init(&b, 1 << 20);
    char fk[WCAP];
    const char *nb = load_get_str(L, v, "not_before", where, field, 20, 0);
    if (nb != NULL) {
        if (policy_parse_time(nb, &c->not_before) != ZTB_OK)
            load_fail(L, where, load_path(fk, sizeof(fk), field, "not_before"),
                      "must be a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
        else {
            c->has_not_before = 1;
            c->desc_not_before = ztb_arena_printf(L->a, "not_before %s", nb);
        }
    }
    const char *na = load_get_str(L, v, "not_after", where, field, 20, 0);
    if (na != NULL) {
        if (policy_parse_time(na, &c->not_after) != ZTB_OK)
            load_fail(L, where, load_path(fk, sizeof(fk), field, "not_after"),
                      "must be a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
        else {
            c->has_not_after = 1;
            c->desc_not_after = ztb_arena_printf(L->a, "not_after %s", na);
        }
    }
    if (c->has_not_before && c->has_not_after && c->not_after < c->not_before)
        load_fail(L, where, field, "not_after is before not_before: the rule can never apply");
    json_t *w = json_object_get(v, "time_windows");
    if (w != NULL) {
        parse_windows(L, w, where, c);
        ztb_buf_append_str(&b, "time_windows [");
        for (uint32_t i = 0; i < c->n_windows; i++) {
            if (i)
                ztb_buf_append_str(&b, "; ");
            fmt_window(&b, &c->windows[i]);
        }
        ztb_buf_append_byte(&b, ']');
        c->desc_windows = buf_to_arena(L, &b);
    }
    const char *dl = load_get_str(L, v, "delegation", where, field, 16, 0);
    if (dl != NULL) {
        if (strcmp(dl, "required") == 0)
            c->delegation = POLICY_DELEGATION_REQUIRED;
        else if (strcmp(dl, "forbidden") == 0)
            c->delegation = POLICY_DELEGATION_FORBIDDEN;
        else if (strcmp(dl, "restricted") == 0)
            c->delegation = POLICY_DELEGATION_RESTRICTED;
        else
            load_fail(L, where, load_path(fk, sizeof(fk), field, "delegation"),
                      "must be \"required\", \"restricted\" (required, with a may_act naming the "
                      "agent) or \"forbidden\" (leave it out to allow both)");
        if (c->delegation != POLICY_DELEGATION_ANY)
            c->desc_delegation = ztb_arena_printf(L->a, "delegation %s", dl);
    }
    json_t *act = json_object_get(v, "act");
    if (act != NULL) {
        load_parse_patterns(L, act, where, "conditions.act", &c->act, &c->n_act);
        if (c->delegation == POLICY_DELEGATION_FORBIDDEN)
            load_fail(L, where, field,
                      "\"act\" needs a delegation but \"delegation\" is \"forbidden\": "
                      "the rule can never apply");
        const char **t = ztb_arena_calloc(L->a, c->n_act ? c->n_act : 1, sizeof(char *));
        if (t != NULL) {
            for (uint32_t i = 0; i < c->n_act; i++)
                t[i] = c->act[i].text;
            ztb_buf_append_str(&b, "act in ");
            join_sorted(L, &b, t, c->n_act, ", ");
            c->desc_act = buf_to_arena(L, &b);
        }
    }
    json_t *ips = json_object_get(v, "source_ip");
    if (ips != NULL) {
        const char **t = NULL;
        parse_cidrs(L, ips, where, c, &t);
        ztb_buf_append_str(&b, "source_ip in ");
        join_sorted(L, &b, t, t ? c->n_cidrs : 0, ", ");
        c->desc_source_ip = buf_to_arena(L, &b);
    }
    const char **lparts = NULL;
    json_t *lim = json_object_get(v, "limits");
    if (lim != NULL)
        parse_limits(L, lim, where, c, &lparts);
    /* one canonical text for "same conditions" checks */
    const char *parts[6] = {c->desc_not_before, c->desc_not_after, c->desc_windows,
                            c->desc_delegation, c->desc_act,       c->desc_source_ip};
    for (size_t i = 0; i < 6; i++)
        if (parts[i] != NULL)
            ztb_buf_printf(&b, "%s; ", parts[i]);
    if (lparts != NULL) {
        ztb_buf_append_str(&b, "limits ");
        join_sorted(L, &b, lparts, c->n_limits, "; ");
    }
    c->canon = buf_to_arena(L, &b);
    if (c->canon == NULL)
        c->canon = "";
    ztb_buf_free(&b);
}
