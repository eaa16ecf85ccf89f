/*
 * unknown_report.c - encode and decode the verifiers' reports of unknown
 * callers (see unknown_report.h).
 *
 * The decoder reads with the strict pull reader and trusts nothing beyond
 * the syntax and the bounds: reasons from a fixed list, sources from the
 * label alphabet, counts in range, a bounded number of entries. The encoder
 * refuses a report the decoder would refuse, so a verifier never sends one.
 */
#include <string.h>

#include "common/guard.h"
#include "common/json_reader.h"
#include "wire/unknown_report.h"

static const char *const reason_names[UNKNOWN_REASONS_N] = {"no_token", "foreign_token"};

const char *unknown_reason_name(enum unknown_reason r)
{
    return (unsigned)r < UNKNOWN_REASONS_N ? reason_names[r] : NULL;
}

int unknown_label_ok(const char *s)
{
    size_t n = s != NULL ? strnlen(s, UNKNOWN_LABEL_MAX + 1) : 0;
    if (n == 0 || n > UNKNOWN_LABEL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* 1 if s[0..n) is 1..UNKNOWN_GATEWAY_MAX bytes with no control character. */
static int gateway_ok(const char *s, size_t n)
{
    if (n == 0 || n > UNKNOWN_GATEWAY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int client_ok(const struct unknown_client *c)
{
    return unknown_reason_name(c->reason) != NULL && unknown_label_ok(c->source) && c->count >= 1 &&
           c->count <= UNKNOWN_COUNT_MAX;
}

/* ---- decoding -------------------------------------------------------------- */

/* One {"reason","source","count"} entry at r's position. */
static ztb_err parse_client(struct jr *r, struct unknown_client *c)
{
    char reason[24] = "";
    int has_count = 0, more;
    ztb_span name;
    memset(c, 0, sizeof(*c));
    c->reason = UNKNOWN_REASONS_N;
    ZTB_GUARD(jr_enter_object(r));
    for (;;) {
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            break;
        if (ztb_span_eq_str(name, "reason")) {
            ztb_err rv = jr_read_string(r, reason, sizeof(reason), NULL);
            ZTB_GUARD(rv == ZTB_ERR_TOO_LARGE ? ZTB_ERR_MALFORMED : rv);
        } else if (ztb_span_eq_str(name, "source")) {
            ztb_err rv = jr_read_string(r, c->source, sizeof(c->source), NULL);
            ZTB_GUARD(rv == ZTB_ERR_TOO_LARGE ? ZTB_ERR_MALFORMED : rv);
        } else if (ztb_span_eq_str(name, "count")) {
            ZTB_GUARD(jr_read_int(r, &c->count));
            has_count = 1;
        } else {
            ZTB_GUARD(jr_skip(r));
        }
    }
    for (size_t i = 0; i < UNKNOWN_REASONS_N; i++)
        if (strcmp(reason, reason_names[i]) == 0)
            c->reason = (enum unknown_reason)i;
    ZTB_ENSURE(has_count && client_ok(c), ZTB_ERR_MALFORMED);
    return ZTB_OK;
}

static ztb_err parse_clients(struct jr *r, struct unknown_report *out)
{
    int more;
    ZTB_GUARD(jr_enter_array(r));
    for (;;) {
        ZTB_GUARD(jr_next_element(r, &more));
        if (!more)
            return ZTB_OK;
        ZTB_ENSURE(out->n < UNKNOWN_REPORT_MAX_CLIENTS, ZTB_ERR_TOO_LARGE);
        ZTB_GUARD(parse_client(r, &out->c[out->n]));
        out->n++;
    }
}

static ztb_err parse_members(struct jr *r, struct unknown_report *out, int64_t *version,
                             int *has_clients)
{
    int more;
    ztb_span name;
    size_t glen = 0;
    for (;;) {
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            break;
        if (ztb_span_eq_str(name, "v")) {
            ZTB_GUARD(jr_read_int(r, version));
        } else if (*version != UNKNOWN_REPORT_VERSION) {
            return *version == 0 ? ZTB_ERR_MALFORMED : ZTB_ERR_UNSUPPORTED; /* "v" comes first */
        } else if (ztb_span_eq_str(name, "gateway")) {
            ztb_err rv = jr_read_string(r, out->gateway, sizeof(out->gateway), &glen);
            ZTB_GUARD(rv == ZTB_ERR_TOO_LARGE ? ZTB_ERR_MALFORMED : rv);
            ZTB_ENSURE(gateway_ok(out->gateway, glen), ZTB_ERR_MALFORMED);
        } else if (ztb_span_eq_str(name, "window")) {
            ZTB_GUARD(jr_read_int(r, &out->window_s));
            ZTB_ENSURE(out->window_s >= 0 && out->window_s <= 86400, ZTB_ERR_MALFORMED);
        } else if (ztb_span_eq_str(name, "clients")) {
            ZTB_GUARD(parse_clients(r, out));
            *has_clients = 1;
        } else {
            ZTB_GUARD(jr_skip(r)); /* members a later verifier may add */
        }
    }
    ZTB_ENSURE(glen > 0 && *has_clients, ZTB_ERR_MALFORMED);
    return ZTB_OK;
}

ztb_err unknown_report_parse(const void *json, size_t n, struct unknown_report *out)
{
    ZTB_ENSURE(json != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    memset(out, 0, sizeof(*out));
    ZTB_ENSURE(n <= UNKNOWN_REPORT_MAX, ZTB_ERR_TOO_LARGE);
    struct jr r;
    jr_init(&r, json, n);
    int64_t version = 0;
    int has_clients = 0;
    ztb_err rv = jr_enter_object(&r);
    if (rv == ZTB_OK)
        rv = parse_members(&r, out, &version, &has_clients);
    if (rv == ZTB_OK)
        rv = jr_finish(&r);
    if (rv != ZTB_OK) {
        memset(out, 0, sizeof(*out));
        return rv;
    }
    return ZTB_OK;
}

/* ---- encoding -------------------------------------------------------------- */

ztb_err unknown_report_write(const struct unknown_report *r, ztb_buf *b)
{
    ZTB_ENSURE(r != NULL && b != NULL, ZTB_ERR_INVALID_ARG);
    size_t glen = strnlen(r->gateway, sizeof(r->gateway));
    ZTB_ENSURE(gateway_ok(r->gateway, glen) && r->n > 0 && r->n <= UNKNOWN_REPORT_MAX_CLIENTS &&
                   r->window_s >= 0 && r->window_s <= 86400,
               ZTB_ERR_INVALID_ARG);
    for (size_t i = 0; i < r->n; i++)
        ZTB_ENSURE(client_ok(&r->c[i]), ZTB_ERR_INVALID_ARG);
    ztb_buf_append_str(b, "{\"v\":1,\"gateway\":\"");
    ztb_buf_append_json_escaped(b, r->gateway, glen);
    ztb_buf_append_str(b, "\",\"window\":");
    ztb_buf_append_i64(b, r->window_s);
    ztb_buf_append_str(b, ",\"clients\":[");
    for (size_t i = 0; i < r->n; i++) {
        ztb_buf_append_str(b, i ? ",{\"reason\":\"" : "{\"reason\":\"");
        ztb_buf_append_str(b, reason_names[r->c[i].reason]);
        ztb_buf_append_str(b, "\",\"source\":\"");
        ztb_buf_append_str(b, r->c[i].source); /* the label alphabet needs no escaping */
        ztb_buf_append_str(b, "\",\"count\":");
        ztb_buf_append_i64(b, r->c[i].count);
        ztb_buf_append_byte(b, '}');
    }
    ztb_buf_append_str(b, "]}");
    return ztb_buf_error(b);
}
