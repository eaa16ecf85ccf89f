/*
 * json_reader.c - strict pull reader for untrusted JSON (see json_reader.h).
 *
 * Every byte is reached through the cursor's functions: a scan looks ahead
 * with ztb_cursor_ahead, decides how far the token goes, and moves with a
 * checked ztb_cursor_skip. Containers are tracked on a small fixed stack; the
 * member names of each open object are unescaped into a fixed arena so
 * duplicates can be found after unescaping, and are dropped when the object
 * closes. UTF-8 is decoded and encoded by common/utf8.c. Numbers are
 * converted in the C locale whatever locale the host program set. Nothing
 * here allocates.
 *
 * Must never: read outside the input, write outside the arena or the
 * caller's buffer, or accept what RFC 8259 (with the rules above) refuses.
 */
#define _GNU_SOURCE /* strtod_l */
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/guard.h"
#include "common/json_reader.h"
#include "common/utf8.h"

/* Record the problem (a static string) and where, and return err. */
static ztb_err fail(struct jr *r, ztb_err err, const char *why)
{
    r->why = why;
    r->why_at = ztb_cursor_mark(&r->c);
    return err;
}

#define JR_ENSURE(r, cond, err, why)                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return fail((r), (err), (why));                                                        \
    } while (0)

/* A string being unescaped: into out (cap bytes), or only validated. */
struct strout {
    uint8_t *out;
    size_t cap;
    size_t len;
    int overrun;
};

static void skip_ws(struct jr *r)
{
    for (;;) {
        int ch = ztb_cursor_peek(&r->c);
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            return;
        (void)ztb_cursor_skip(&r->c, 1);
    }
}

void jr_init_limits(struct jr *r, const void *data, size_t len, int depth, size_t names,
                    size_t name_max)
{
    ztb_cursor_init(&r->c, data, len);
    r->depth = 0;
    r->max_depth = depth < 0 ? 0 : depth > JR_DEPTH ? JR_DEPTH : depth;
    r->max_names = names > JR_NAMES ? JR_NAMES : names;
    r->name_max = name_max > JR_ARENA - 1 ? JR_ARENA - 1 : name_max;
    r->why = NULL;
    r->why_at = 0;
    r->nnames = 0;
    r->arena_len = 0;
}

void jr_init(struct jr *r, const void *data, size_t len)
{
    jr_init_limits(r, data, len, JR_DEPTH, JR_NAMES, JR_NAME_MAX);
}

jr_type jr_peek(struct jr *r)
{
    skip_ws(r);
    switch (ztb_cursor_peek(&r->c)) {
    case '{': return JR_OBJECT;
    case '[': return JR_ARRAY;
    case '"': return JR_STRING;
    case 't': return JR_TRUE;
    case 'f': return JR_FALSE;
    case 'n': return JR_NULL;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9': return JR_NUMBER;
    default: return JR_NONE;
    }
}

static void put(struct strout *o, const uint8_t *p, size_t n)
{
    if (o->out != NULL && !o->overrun && n <= o->cap - o->len)
        memcpy(o->out + o->len, p, n);
    else
        o->overrun = 1;
    o->len += n;
}

static int hexval(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The four hex digits of a \u escape. */
static ztb_err read_hex4(struct jr *r, uint32_t *v)
{
    ztb_span a = ztb_cursor_ahead(&r->c);
    JR_ENSURE(r, a.len >= 4, ZTB_ERR_JSON, "truncated \\u escape");
    uint32_t x = 0;
    for (size_t i = 0; i < 4; i++) {
        int h = hexval(a.ptr[i]);
        JR_ENSURE(r, h >= 0, ZTB_ERR_JSON, "invalid \\u escape");
        x = x << 4 | (uint32_t)h;
    }
    (void)ztb_cursor_skip(&r->c, 4);
    *v = x;
    return ZTB_OK;
}

/* A \u escape (after the "\u"), surrogate pairs joined: the scalar value. */
static ztb_err read_u_escape(struct jr *r, uint32_t *out)
{
    uint32_t cp;
    ZTB_GUARD(read_hex4(r, &cp));
    if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        JR_ENSURE(r, ztb_cursor_expect(&r->c, "\\u", 2) == ZTB_OK, ZTB_ERR_JSON,
                  "lone UTF-16 surrogate in a \\u escape");
        ZTB_GUARD(read_hex4(r, &lo));
        JR_ENSURE(r, lo >= 0xdc00 && lo <= 0xdfff, ZTB_ERR_JSON,
                  "lone UTF-16 surrogate in a \\u escape");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    } else {
        JR_ENSURE(r, cp < 0xdc00 || cp > 0xdfff, ZTB_ERR_JSON,
                  "lone UTF-16 surrogate in a \\u escape");
    }
    JR_ENSURE(r, cp != 0, ZTB_ERR_JSON, "\\u0000 in a string");
    *out = cp;
    return ZTB_OK;
}

/* A string at the cursor (on its opening quote), unescaped into o. */
static ztb_err scan_string(struct jr *r, struct strout *o)
{
    ztb_cursor *c = &r->c;
    JR_ENSURE(r, ztb_cursor_peek(c) == '"', ZTB_ERR_JSON, "expected a string");
    (void)ztb_cursor_skip(c, 1);
    for (;;) {
        /* a run of plain bytes at once: the common case */
        ztb_span a = ztb_cursor_ahead(c);
        size_t run = 0;
        while (run < a.len) {
            uint8_t ch = a.ptr[run];
            if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x80)
                break;
            run++;
        }
        if (run > 0) {
            put(o, a.ptr, run);
            (void)ztb_cursor_skip(c, run);
        }
        JR_ENSURE(r, run < a.len, ZTB_ERR_JSON, "unterminated string");
        uint8_t ch = a.ptr[run];
        if (ch == '"') {
            (void)ztb_cursor_skip(c, 1);
            return ZTB_OK;
        }
        JR_ENSURE(r, ch >= 0x20, ZTB_ERR_JSON, "raw control character in a string");
        if (ch != '\\') {
            uint32_t cp;
            size_t n = ztb_utf8_decode(a.ptr + run, a.len - run, &cp);
            JR_ENSURE(r, n > 0, ZTB_ERR_JSON, "invalid UTF-8 in a string");
            put(o, a.ptr + run, n);
            (void)ztb_cursor_skip(c, n);
            continue;
        }
        (void)ztb_cursor_skip(c, 1);
        uint8_t e;
        JR_ENSURE(r, ztb_cursor_read_u8(c, &e) == ZTB_OK, ZTB_ERR_JSON, "unterminated string");
        uint8_t one;
        switch (e) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': {
            uint32_t cp;
            ZTB_GUARD(read_u_escape(r, &cp));
            uint8_t u[4];
            put(o, u, ztb_utf8_encode(cp, u));
            continue;
        }
        default: return fail(r, ZTB_ERR_JSON, "invalid escape in a string");
        }
        put(o, &one, 1);
    }
}

#define DIGIT(x) ((x) >= '0' && (x) <= '9')

/* A number at the cursor; sets the span of its bytes and whether it is an integer. */
static ztb_err scan_number(struct jr *r, ztb_span *sp, int *integer)
{
    ztb_span a = ztb_cursor_ahead(&r->c);
    size_t i = 0;
    int isint = 1;
#define AT(k) ((k) < a.len ? a.ptr[k] : -1)
    if (AT(i) == '-')
        i++;
    if (AT(i) == '0') {
        i++;
    } else {
        JR_ENSURE(r, DIGIT(AT(i)), ZTB_ERR_JSON, "invalid number");
        while (DIGIT(AT(i)))
            i++;
    }
    if (AT(i) == '.') {
        isint = 0;
        i++;
        JR_ENSURE(r, DIGIT(AT(i)), ZTB_ERR_JSON, "invalid number: no digit after the point");
        while (DIGIT(AT(i)))
            i++;
    }
    if (AT(i) == 'e' || AT(i) == 'E') {
        isint = 0;
        i++;
        if (AT(i) == '+' || AT(i) == '-')
            i++;
        JR_ENSURE(r, DIGIT(AT(i)), ZTB_ERR_JSON, "invalid number: no digit in the exponent");
        while (DIGIT(AT(i)))
            i++;
    }
#undef AT
    sp->ptr = a.ptr;
    sp->len = i;
    *integer = isint;
    (void)ztb_cursor_skip(&r->c, i);
    return ZTB_OK;
}
#undef DIGIT

static ztb_err push(struct jr *r, uint8_t kind)
{
    JR_ENSURE(r, r->depth < r->max_depth, ZTB_ERR_TOO_LARGE, "nested too deeply");
    int d = r->depth++;
    r->kind[d] = kind;
    r->first[d] = 1;
    r->names0[d] = (uint16_t)r->nnames;
    r->arena0[d] = (uint16_t)r->arena_len;
    (void)ztb_cursor_skip(&r->c, 1);
    return ZTB_OK;
}

static void pop(struct jr *r)
{
    int d = --r->depth;
    r->nnames = r->names0[d];
    r->arena_len = r->arena0[d];
    (void)ztb_cursor_skip(&r->c, 1);
}

ztb_err jr_enter_object(struct jr *r)
{
    JR_ENSURE(r, jr_peek(r) == JR_OBJECT, ZTB_ERR_JSON, "expected an object");
    return push(r, '{');
}

ztb_err jr_enter_array(struct jr *r)
{
    JR_ENSURE(r, jr_peek(r) == JR_ARRAY, ZTB_ERR_JSON, "expected an array");
    return push(r, '[');
}

/* Before the next element of the innermost container: its close or a comma. */
static ztb_err advance(struct jr *r, uint8_t kind, uint8_t close, int *more)
{
    JR_ENSURE(r, r->depth > 0 && r->kind[r->depth - 1] == kind, ZTB_ERR_JSON,
              "not inside the container being read");
    int d = r->depth - 1;
    skip_ws(r);
    int ch = ztb_cursor_peek(&r->c);
    if (ch == close) {
        pop(r);
        *more = 0;
        return ZTB_OK;
    }
    if (r->first[d]) {
        r->first[d] = 0;
    } else {
        JR_ENSURE(r, ch == ',', ZTB_ERR_JSON,
                  close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        (void)ztb_cursor_skip(&r->c, 1);
        skip_ws(r);
    }
    *more = 1;
    return ZTB_OK;
}

ztb_err jr_next_member(struct jr *r, ztb_span *name, int *more)
{
    ZTB_GUARD(advance(r, '{', '}', more));
    if (!*more)
        return ZTB_OK;
    int d = r->depth - 1;
    JR_ENSURE(r, ztb_cursor_peek(&r->c) == '"', ZTB_ERR_JSON, "expected a member name");
    JR_ENSURE(r, r->nnames < r->max_names, ZTB_ERR_TOO_LARGE, "too many member names");
    /* a full arena has no room even for the NUL (room would wrap) */
    JR_ENSURE(r, r->arena_len < JR_ARENA, ZTB_ERR_TOO_LARGE, "member names too long together");
    size_t off = r->arena_len;
    size_t room = JR_ARENA - off - 1; /* bytes before the NUL's */
    struct strout o = {r->arena + off, room < r->name_max ? room : r->name_max, 0, 0};
    ZTB_GUARD(scan_string(r, &o));
    JR_ENSURE(r, !o.overrun, ZTB_ERR_TOO_LARGE, "member name too long");
    const uint8_t *nm = r->arena + off;
    for (size_t i = r->names0[d]; i < r->nnames; i++)
        JR_ENSURE(r, r->name_len[i] != o.len || memcmp(r->arena + r->name_off[i], nm, o.len) != 0,
                  ZTB_ERR_JSON, "duplicate member name");
    r->arena[off + o.len] = '\0';
    r->name_off[r->nnames] = (uint16_t)off;
    r->name_len[r->nnames] = (uint16_t)o.len;
    r->nnames++;
    r->arena_len = off + o.len + 1;
    skip_ws(r);
    JR_ENSURE(r, ztb_cursor_peek(&r->c) == ':', ZTB_ERR_JSON, "expected ':' after a member name");
    (void)ztb_cursor_skip(&r->c, 1);
    name->ptr = nm;
    name->len = o.len;
    return ZTB_OK;
}

ztb_err jr_next_element(struct jr *r, int *more)
{
    return advance(r, '[', ']', more);
}

ztb_err jr_read_string(struct jr *r, char *out, size_t cap, size_t *len)
{
    JR_ENSURE(r, jr_peek(r) == JR_STRING, ZTB_ERR_JSON, "expected a string");
    struct strout o = {(uint8_t *)out, cap > 0 ? cap - 1 : 0, 0, out == NULL || cap == 0};
    ZTB_GUARD(scan_string(r, &o));
    if (out == NULL)
        return ZTB_OK;
    JR_ENSURE(r, !o.overrun, ZTB_ERR_TOO_LARGE, "string too long");
    out[o.len] = '\0';
    if (len != NULL)
        *len = o.len;
    return ZTB_OK;
}

ztb_err jr_read_int(struct jr *r, int64_t *v)
{
    JR_ENSURE(r, jr_peek(r) == JR_NUMBER, ZTB_ERR_JSON, "expected a number");
    ztb_span sp;
    int integer;
    ZTB_GUARD(scan_number(r, &sp, &integer));
    JR_ENSURE(r, integer, ZTB_ERR_MALFORMED, "expected an integer");
    size_t i = 0;
    int neg = sp.ptr[0] == '-';
    i += (size_t)neg;
    uint64_t x = 0;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < sp.len; i++) {
        uint64_t dgt = (uint64_t)(sp.ptr[i] - '0');
        JR_ENSURE(r, x <= (lim - dgt) / 10, ZTB_ERR_MALFORMED, "integer out of range");
        x = x * 10 + dgt;
    }
    if (neg)
        *v = x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x;
    else
        *v = (int64_t)x;
    return ZTB_OK;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

ztb_err jr_read_number(struct jr *r, double *v)
{
    JR_ENSURE(r, jr_peek(r) == JR_NUMBER, ZTB_ERR_JSON, "expected a number");
    ztb_span sp;
    int integer;
    ZTB_GUARD(scan_number(r, &sp, &integer));
    char tmp[64];
    JR_ENSURE(r, sp.len < sizeof(tmp), ZTB_ERR_TOO_LARGE, "number too long");
    memcpy(tmp, sp.ptr, sp.len);
    tmp[sp.len] = '\0';
    (void)pthread_once(&c_locale_once, make_c_locale);
    ZTB_ENSURE(c_locale != (locale_t)0, ZTB_ERR_NOMEM);
    char *end = NULL;
    *v = strtod_l(tmp, &end, c_locale);
    JR_ENSURE(r, end == tmp + sp.len, ZTB_ERR_JSON, "invalid number");
    return ZTB_OK;
}

static ztb_err literal(struct jr *r, const char *lit)
{
    JR_ENSURE(r, ztb_cursor_expect(&r->c, lit, strlen(lit)) == ZTB_OK, ZTB_ERR_JSON,
              "invalid literal (true, false or null)");
    return ZTB_OK;
}

ztb_err jr_read_bool(struct jr *r, int *v)
{
    switch (jr_peek(r)) {
    case JR_TRUE: *v = 1; return literal(r, "true");
    case JR_FALSE: *v = 0; return literal(r, "false");
    default: return fail(r, ZTB_ERR_JSON, "expected true or false");
    }
}

ztb_err jr_skip(struct jr *r)
{
    ztb_span name;
    int more = 1;
    switch (jr_peek(r)) {
    case JR_OBJECT:
        ZTB_GUARD(jr_enter_object(r));
        for (;;) {
            ZTB_GUARD(jr_next_member(r, &name, &more));
            if (!more)
                return ZTB_OK;
            ZTB_GUARD(jr_skip(r));
        }
    case JR_ARRAY:
        ZTB_GUARD(jr_enter_array(r));
        for (;;) {
            ZTB_GUARD(jr_next_element(r, &more));
            if (!more)
                return ZTB_OK;
            ZTB_GUARD(jr_skip(r));
        }
    case JR_STRING: return jr_read_string(r, NULL, 0, NULL);
    case JR_NUMBER: {
        ztb_span sp;
        int integer;
        return scan_number(r, &sp, &integer);
    }
    case JR_TRUE: return literal(r, "true");
    case JR_FALSE: return literal(r, "false");
    case JR_NULL: return literal(r, "null");
    default:
        return fail(r, ZTB_ERR_JSON,
                    ztb_cursor_eof(&r->c) ? "a value is missing" : "expected a value");
    }
}

size_t jr_mark(struct jr *r)
{
    skip_ws(r);
    return ztb_cursor_mark(&r->c);
}

ztb_span jr_since(const struct jr *r, size_t mark)
{
    return ztb_cursor_since(&r->c, mark);
}

ztb_err jr_raw(struct jr *r, ztb_span *raw)
{
    size_t start = jr_mark(r);
    ZTB_GUARD(jr_skip(r));
    *raw = jr_since(r, start);
    return ZTB_OK;
}

ztb_err jr_finish(struct jr *r)
{
    JR_ENSURE(r, r->depth == 0, ZTB_ERR_JSON, "a container is not closed");
    skip_ws(r);
    JR_ENSURE(r, ztb_cursor_eof(&r->c), ZTB_ERR_JSON, "trailing bytes after the value");
    return ZTB_OK;
}

const char *jr_why(const struct jr *r)
{
    return r->why != NULL ? r->why : "invalid JSON";
}

size_t jr_where(const struct jr *r)
{
    return r->why_at;
}
