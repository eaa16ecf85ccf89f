/*
 * cond.c - parse and evaluate rule conditions (see cond.h).
 *
 * Time is plain integer arithmetic on Unix seconds with a fixed UTC offset
 * per window: no time zone database, no localtime(), no locks, no surprises
 * from the host's TZ. Daylight saving is therefore not followed: a window
 * written for +01:00 stays at +01:00 (docs/policy.md says so).
 *
 * Must never: treat missing or non-numeric data as satisfying a condition,
 * allocate, or consult the host's time zone.
 */
#include <arpa/inet.h>
#include <string.h>

#include "common/guard.h"
#include "policy/cond.h"

static int digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 1;
}

ztb_err policy_parse_hhmm(const char *s, uint16_t *minutes)
{
    unsigned h, m;
    ZTB_ENSURE(s != NULL && strlen(s) == 5 && s[2] == ':', ZTB_ERR_MALFORMED);
    ZTB_ENSURE(digits(s, 2, &h) && digits(s + 3, 2, &m), ZTB_ERR_MALFORMED);
    ZTB_ENSURE(m < 60 && (h < 24 || (h == 24 && m == 0)), ZTB_ERR_MALFORMED);
    *minutes = (uint16_t)(h * 60 + m);
    return ZTB_OK;
}

ztb_err policy_parse_utc_offset(const char *s, int16_t *minutes)
{
    unsigned h, m;
    ZTB_ENSURE(s != NULL && strlen(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':',
               ZTB_ERR_MALFORMED);
    ZTB_ENSURE(digits(s + 1, 2, &h) && digits(s + 4, 2, &m), ZTB_ERR_MALFORMED);
    ZTB_ENSURE(m < 60 && h * 60 + m <= 14 * 60, ZTB_ERR_MALFORMED);
    int v = (int)(h * 60 + m);
    *minutes = (int16_t)(s[0] == '-' ? -v : v);
    return ZTB_OK;
}

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

ztb_err policy_parse_day(const char *s, unsigned *bit)
{
    ZTB_ENSURE(s != NULL, ZTB_ERR_MALFORMED);
    for (unsigned i = 0; i < 7; i++)
        if (strcmp(s, day_names[i]) == 0) {
            *bit = i;
            return ZTB_OK;
        }
    return ZTB_ERR_MALFORMED;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

ztb_err policy_parse_time(const char *s, int64_t *out)
{
    unsigned y, mo, d, h, mi, se;
    ZTB_ENSURE(s != NULL && strlen(s) == 20, ZTB_ERR_MALFORMED);
    ZTB_ENSURE(s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' &&
                   s[19] == 'Z',
               ZTB_ERR_MALFORMED);
    ZTB_ENSURE(digits(s, 4, &y) && digits(s + 5, 2, &mo) && digits(s + 8, 2, &d) &&
                   digits(s + 11, 2, &h) && digits(s + 14, 2, &mi) && digits(s + 17, 2, &se),
               ZTB_ERR_MALFORMED);
    ZTB_ENSURE(y >= 1970 && mo >= 1 && mo <= 12 && d >= 1 && d <= days_in_month(y, mo),
               ZTB_ERR_MALFORMED);
    ZTB_ENSURE(h < 24 && mi < 60 && se < 60, ZTB_ERR_MALFORMED);
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return ZTB_OK;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void policy_format_time(int64_t t, char *out, size_t cap)
{
    int64_t day = floor_div(t, 86400);
    int64_t sec = t - day * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(out, cap, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
             (unsigned)(sec / 3600), (unsigned)(sec / 60 % 60), (unsigned)(sec % 60));
}

/* Copy s into a bounded stack buffer, refusing anything long or odd. */
static int bounded_copy(const char *s, char *buf, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == 0 || n >= cap)
        return 0;
    memcpy(buf, s, n + 1);
    return 1;
}

static void normalise_mapped(policy_ip *ip)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (ip->family == 6 && memcmp(ip->addr, mapped, 12) == 0) {
        uint8_t v4[4];
        memcpy(v4, ip->addr + 12, 4);
        memset(ip->addr, 0, sizeof(ip->addr));
        memcpy(ip->addr, v4, 4);
        ip->family = 4;
    }
}

ztb_err policy_ip_parse(const char *s, policy_ip *out)
{
    char buf[64];
    memset(out, 0, sizeof(*out));
    ZTB_ENSURE(s != NULL && bounded_copy(s, buf, sizeof(buf)), ZTB_ERR_MALFORMED);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = 4;
        return ZTB_OK;
    }
    if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = 6;
        normalise_mapped(out);
        return ZTB_OK;
    }
    memset(out, 0, sizeof(*out));
    return ZTB_ERR_MALFORMED;
}

ztb_err policy_parse_cidr(const char *s, struct policy_cidr *out)
{
    char buf[64];
    memset(out, 0, sizeof(*out));
    ZTB_ENSURE(s != NULL && bounded_copy(s, buf, sizeof(buf)), ZTB_ERR_MALFORMED);
    char *slash = strchr(buf, '/');
    unsigned prefix = 0;
    int has_prefix = slash != NULL;
    if (has_prefix) {
        *slash = '\0';
        const char *p = slash + 1;
        size_t n = strlen(p);
        ZTB_ENSURE(n >= 1 && n <= 3 && (p[0] != '0' || n == 1), ZTB_ERR_MALFORMED);
        ZTB_ENSURE(digits(p, n, &prefix), ZTB_ERR_MALFORMED);
    }
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = 4;
        if (!has_prefix)
            prefix = 32;
        ZTB_ENSURE(prefix <= 32, ZTB_ERR_MALFORMED);
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = 6;
        if (!has_prefix)
            prefix = 128;
        ZTB_ENSURE(prefix <= 128, ZTB_ERR_MALFORMED);
    } else {
        return ZTB_ERR_MALFORMED;
    }
    out->prefix = (uint8_t)prefix;
    /* host bits must be zero: "10.0.0.1/8" is a typo for one of two things */
    unsigned bytes = out->family == 4 ? 4 : 16;
    for (unsigned i = 0; i < bytes; i++) {
        unsigned keep = prefix >= (i + 1) * 8 ? 8 : prefix > i * 8 ? prefix - i * 8 : 0;
        uint8_t mask = (uint8_t)(keep == 8 ? 0xff : (0xff00 >> keep) & 0xff);
        ZTB_ENSURE((out->addr[i] & (uint8_t)~mask) == 0, ZTB_ERR_MALFORMED);
    }
    /* within ::ffff:0:0/96 it names IPv4 addresses, as a mapped client
     * address does (normalise_mapped): compare it as IPv4 */
    if (out->family == 6 && prefix >= 96) {
        policy_ip ip = {.family = 6};
        memcpy(ip.addr, out->addr, sizeof(ip.addr));
        normalise_mapped(&ip);
        if (ip.family == 4) {
            memcpy(out->addr, ip.addr, sizeof(out->addr));
            out->family = 4;
            out->prefix = (uint8_t)(prefix - 96);
        }
    }
    return ZTB_OK;
}

int policy_cidr_contains(const struct policy_cidr *c, const policy_ip *ip)
{
    if (ip->family != c->family)
        return 0;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (full > 0 && memcmp(ip->addr, c->addr, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff00 >> rest);
    return (ip->addr[full] & mask) == c->addr[full];
}

int policy_window_contains(const struct policy_window *w, int64_t now)
{
    int64_t local = now + (int64_t)w->offset * 60;
    int64_t day = floor_div(local, 86400);
    unsigned minute = (unsigned)((local - day * 86400) / 60);
    unsigned wday = (unsigned)(((day + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    if (w->start < w->end)
        return minute >= w->start && minute < w->end && (w->days >> wday & 1);
    /* past midnight: the window belongs to the day it starts on */
    if (minute >= w->start)
        return w->days >> wday & 1;
    if (minute < w->end)
        return w->days >> ((wday + 6) % 7) & 1;
    return 0;
}

/* The number at the limit's path in one entry: 1 integer, 2 real, 0 missing. */
static int read_number(const struct policy_limit *l, const json_t *entry, json_int_t *iv,
                       double *dv)
{
    const json_t *v = entry;
    for (uint32_t i = 0; i < l->n_seg && v != NULL; i++)
        v = json_is_object(v) ? json_object_get(v, l->seg[i]) : NULL;
    if (json_is_integer(v)) {
        *iv = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        *dv = json_real_value(v);
        return 2;
    }
    return 0;
}

static int in_bounds(const struct policy_limit *l, int kind, json_int_t iv, double dv)
{
    if (kind == 1)
        return (!l->has_min || iv >= l->imin) && (!l->has_max || iv <= l->imax);
    return (!l->has_min || dv >= l->min) && (!l->has_max || dv <= l->max);
}

policy_tri policy_limit_eval(const struct policy_limit *l, const json_t *ad, int for_deny)
{
    if (ad == NULL)
        return POLICY_UNKNOWN;
    size_t n = json_is_array(ad) ? json_array_size(ad) : json_is_object(ad) ? 1 : 0;
    int selected = 0, unknown = 0, in = 0, out = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(ad) ? json_array_get(ad, i) : ad;
        if (!json_is_object(e)) {
            unknown = 1; /* not an RFC 9396 entry: cannot be read */
            continue;
        }
        if (l->type != NULL) {
            const json_t *t = json_object_get(e, "type");
            if (!json_is_string(t) || strcmp(json_string_value(t), l->type) != 0)
                continue;
        }
        selected = 1;
        json_int_t iv = 0;
        double dv = 0;
        int kind = read_number(l, e, &iv, &dv);
        if (kind == 0)
            unknown = 1;
        else if (in_bounds(l, kind, iv, dv))
            in = 1;
        else
            out = 1;
    }
    if (for_deny) {
        if (in)
            return POLICY_TRUE;
        return unknown || !selected ? POLICY_UNKNOWN : POLICY_FALSE;
    }
    if (out)
        return POLICY_FALSE;
    return unknown || !selected ? POLICY_UNKNOWN : POLICY_TRUE;
}

/* Fold one condition's result; returns 1 when evaluation can stop (FALSE). */
static int fold(policy_tri r, const char *desc, policy_tri *acc, const char **failed)
{
    if (r == POLICY_FALSE) {
        *acc = POLICY_FALSE;
        if (failed)
            *failed = desc;
        return 1;
    }
    if (r == POLICY_UNKNOWN && *acc == POLICY_TRUE) {
        *acc = POLICY_UNKNOWN;
        if (failed)
            *failed = desc;
    }
    return 0;
}

policy_tri policy_cond_eval(const struct policy_conditions *c, const policy_context *ctx,
                            policy_effect effect, const char **failed)
{
    policy_tri acc = POLICY_TRUE;
    if (failed)
        *failed = NULL;
    if (!c->any)
        return POLICY_TRUE;
    if (c->has_not_before && fold(ctx->now >= c->not_before ? POLICY_TRUE : POLICY_FALSE,
                                  c->desc_not_before, &acc, failed))
        return acc;
    if (c->has_not_after && fold(ctx->now <= c->not_after ? POLICY_TRUE : POLICY_FALSE,
                                 c->desc_not_after, &acc, failed))
        return acc;
    if (c->n_windows > 0) {
        policy_tri r = POLICY_FALSE;
        for (uint32_t i = 0; i < c->n_windows && r == POLICY_FALSE; i++)
            if (policy_window_contains(&c->windows[i], ctx->now))
                r = POLICY_TRUE;
        if (fold(r, c->desc_windows, &acc, failed))
            return acc;
    }
    if (c->delegation != POLICY_DELEGATION_ANY) {
        int delegated = ctx->act != NULL;
        int holds = c->delegation == POLICY_DELEGATION_FORBIDDEN ? !delegated
                    : c->delegation == POLICY_DELEGATION_RESTRICTED
                        ? delegated && ctx->act_restricted
                        : delegated;
        if (fold(holds ? POLICY_TRUE : POLICY_FALSE, c->desc_delegation, &acc, failed))
            return acc;
    }
    if (c->n_act > 0) {
        policy_tri r = POLICY_FALSE;
        if (ctx->act != NULL) {
            size_t n = strlen(ctx->act);
            for (uint32_t i = 0; i < c->n_act && r == POLICY_FALSE; i++)
                if (policy_glob_match(&c->act[i], ctx->act, n))
                    r = POLICY_TRUE;
        }
        if (fold(r, c->desc_act, &acc, failed))
            return acc;
    }
    if (c->n_cidrs > 0) {
        policy_tri r = POLICY_UNKNOWN;
        policy_ip ip = ctx->source;
        normalise_mapped(&ip);
        if (ip.family == 4 || ip.family == 6) {
            r = POLICY_FALSE;
            for (uint32_t i = 0; i < c->n_cidrs && r == POLICY_FALSE; i++)
                if (policy_cidr_contains(&c->cidrs[i], &ip))
                    r = POLICY_TRUE;
        }
        if (fold(r, c->desc_source_ip, &acc, failed))
            return acc;
    }
    for (uint32_t i = 0; i < c->n_limits; i++)
        if (fold(
                policy_limit_eval(&c->limits[i], ctx->authorization_details, effect == POLICY_DENY),
                c->desc_limits[i], &acc, failed))
            return acc;
    return acc;
}
