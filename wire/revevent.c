/*
 * revevent.c - encode and decode revocation events (see revevent.h).
 *
 * The decoder reads with the strict pull reader; nothing from an event is
 * trusted beyond its syntax: ids are bounded and printable, numbers are
 * integers in range. The encoder writes the members in the documented order
 * with nothing between them, so the same event is always the same bytes.
 */
#include <string.h>

#include "common/guard.h"
#include "common/json_reader.h"
#include "wire/revevent.h"

static const char *const kind_names[] = {NULL, "jti", "agent", "audience", "key"};

static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return 0;
    }
    return 1;
}

/* ---- decoding -------------------------------------------------------------- */

static ztb_err parse_members(struct jr *r, struct rev_event *ev, int *has_gen, int *has_exp,
                             char *type, size_t type_cap)
{
    int more;
    ztb_span name;
    for (;;) {
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            return ZTB_OK;
        if (ztb_span_eq_str(name, "type")) {
            ZTB_GUARD(jr_read_string(r, type, type_cap, NULL));
        } else if (ztb_span_eq_str(name, "id")) {
            ZTB_GUARD(jr_read_string(r, ev->id, sizeof(ev->id), &ev->id_len));
        } else if (ztb_span_eq_str(name, "gen")) {
            ZTB_GUARD(jr_read_int(r, &ev->gen));
            *has_gen = 1;
        } else if (ztb_span_eq_str(name, "exp")) {
            ZTB_GUARD(jr_read_int(r, &ev->exp));
            *has_exp = 1;
        } else if (ztb_span_eq_str(name, "lifted")) {
            ZTB_GUARD(jr_read_bool(r, &ev->lifted));
        } else if (ztb_span_eq_str(name, "seq")) {
            ZTB_GUARD(jr_read_int(r, &ev->seq));
            ZTB_ENSURE(ev->seq > 0, ZTB_ERR_MALFORMED);
        } else {
            ZTB_GUARD(jr_skip(r)); /* members a later broker may add */
        }
    }
}

ztb_err rev_event_parse(const void *json, size_t n, struct rev_event *ev)
{
    ZTB_ENSURE(json != NULL && ev != NULL, ZTB_ERR_INVALID_ARG);
    memset(ev, 0, sizeof(*ev));
    ZTB_ENSURE(n <= REV_EVENT_MAX, ZTB_ERR_TOO_LARGE);
    struct jr r;
    jr_init(&r, json, n);
    char type[16] = "";
    int has_gen = 0, has_exp = 0;
    ztb_err rv = jr_enter_object(&r);
    if (rv == ZTB_OK)
        rv = parse_members(&r, ev, &has_gen, &has_exp, type, sizeof(type));
    if (rv == ZTB_OK)
        rv = jr_finish(&r);
    if (rv == ZTB_ERR_TOO_LARGE)
        rv = ZTB_ERR_MALFORMED;
    ZTB_GUARD(rv);

    ZTB_ENSURE(ev->id_len > 0 && printable(ev->id, ev->id_len), ZTB_ERR_MALFORMED);
    ev->kind = 0;
    for (size_t k = REV_JTI; k < ZTB_ARRAY_LEN(kind_names); k++)
        if (strcmp(type, kind_names[k]) == 0)
            ev->kind = (enum rev_kind)k;
    if (ev->kind == 0)
        return type[0] != '\0' ? ZTB_ERR_UNSUPPORTED : ZTB_ERR_MALFORMED;

    if (ev->kind == REV_AUDIENCE && ev->lifted) {
        ev->exp = 0;
        return ZTB_OK; /* exp and gen mean nothing for a lift */
    }
    ZTB_ENSURE(!ev->lifted, ZTB_ERR_MALFORMED); /* only an audience kill is lifted */
    ZTB_ENSURE(has_exp && ev->exp >= 0, ZTB_ERR_MALFORMED);
    ZTB_ENSURE(ev->kind == REV_AUDIENCE || ev->exp > 0, ZTB_ERR_MALFORMED);
    if (ev->kind == REV_AGENT)
        ZTB_ENSURE(has_gen && ev->gen > 0, ZTB_ERR_MALFORMED);
    return ZTB_OK;
}

/* ---- encoding -------------------------------------------------------------- */

/* {"type":T,"id":ID */
static ztb_err write_head(enum rev_kind kind, const char *id, ztb_buf *b)
{
    ZTB_ENSURE(kind >= REV_JTI && kind <= REV_KEY && id != NULL && id[0] != '\0',
               ZTB_ERR_INVALID_ARG);
    ztb_buf_append_str(b, "{\"type\":\"");
    ztb_buf_append_str(b, kind_names[kind]);
    ztb_buf_append_str(b, "\",\"id\":\"");
    ztb_buf_append_json_escaped(b, id, strlen(id));
    ztb_buf_append_byte(b, '"');
    return ZTB_OK;
}

ztb_err rev_event_write(const struct rev_event *ev, ztb_buf *b)
{
    ZTB_ENSURE(ev != NULL && b != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_GUARD(write_head(ev->kind, ev->id, b));
    if (ev->kind == REV_AUDIENCE && ev->lifted) {
        ztb_buf_append_str(b, ",\"lifted\":true}");
        return ztb_buf_error(b);
    }
    if (ev->kind == REV_AGENT) {
        ztb_buf_append_str(b, ",\"gen\":");
        ztb_buf_append_i64(b, ev->gen);
    }
    ztb_buf_append_str(b, ",\"exp\":");
    ztb_buf_append_i64(b, ev->kind == REV_AUDIENCE ? 0 : ev->exp);
    ztb_buf_append_byte(b, '}');
    return ztb_buf_error(b);
}

ztb_err rev_event_agent_prefix(const char *agent, ztb_buf *b)
{
    ZTB_ENSURE(b != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_GUARD(write_head(REV_AGENT, agent, b));
    ztb_buf_append_str(b, ",\"gen\":");
    return ztb_buf_error(b);
}
