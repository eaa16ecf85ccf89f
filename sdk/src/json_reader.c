/*
 * json_reader.c - strict pull reader for untrusted JSON (see json_reader.h).
 *
 * Every byte is reached through the cursor's bounds. Containers are tracked
 * on a small fixed stack; the member names of each open object are unescaped
 * into a fixed arena so duplicates can be found after unescaping, and are
 * dropped when the object closes. Numbers are converted in the C locale
 * whatever locale the host program set. Nothing here allocates.
 */
#define _GNU_SOURCE /* strtod_l */
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/guard.h"
#include "sdk/src/json_reader.h"

/* A string being unescaped: into out (cap bytes), or only validated. */
struct strout {
    uint8_t *out;
    size_t cap;
    size_t len;
    int overrun;
};

static void skip_ws(struct jr *r)
{
    ztb_cursor *c = &r->c;
    while (c->pos < c->len) {
        uint8_t ch = c->data[c->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            break;
        c->pos++;
    }
}

static int peekc(const struct jr *r)
{
    return r->c.pos < r->c.len ? r->c.data[r->c.pos] : -1;
}

void jr_init(struct jr *r, const void *data, size_t len)
{
    ztb_cursor_init(&r->c, data, len);
    r->depth = 0;
    r->nnames = 0;
    r->arena_len = 0;
}

jr_type jr_peek(struct jr *r)
{
    skip_ws(r);
    switch (peekc(r)) {
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

static ztb_err read_hex4(ztb_cursor *c, uint32_t *v)
{
    ZTB_ENSURE(ztb_cursor_remaining(c) >= 4, ZTB_ERR_JSON);
    uint32_t x = 0;
    for (size_t i = 0; i < 4; i++) {
        int h = hexval(c->data[c->pos + i]);
        ZTB_ENSURE(h >= 0, ZTB_ERR_JSON);
        x = x << 4 | (uint32_t)h;
    }
    c->pos += 4;
    *v = x;
    return ZTB_OK;
}

static size_t utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (n bytes left); 0 if invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t b = p[0];
    size_t len;
    uint32_t cp, min;
    if (b < 0x80)
        return 1;
    if ((b & 0xe0) == 0xc0) {
        len = 2, cp = b & 0x1f, min = 0x80;
    } else if ((b & 0xf0) == 0xe0) {
        len = 3, cp = b & 0x0f, min = 0x800;
    } else if ((b & 0xf8) == 0xf0) {
        len = 4, cp = b & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, out of range, or a surrogate */
    return len;
}

/* A string at the cursor (on its opening quote), unescaped into o. */
static ztb_err scan_string(ztb_cursor *c, struct strout *o)
{
    ZTB_ENSURE(c->pos < c->len && c->data[c->pos] == '"', ZTB_ERR_JSON);
    c->pos++;
    for (;;) {
        /* copy a run of plain bytes at once: the common case */
        size_t run = c->pos;
        while (run < c->len) {
            uint8_t ch = c->data[run];
            if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x80)
                break;
            run++;
        }
        if (run > c->pos) {
            put(o, c->data + c->pos, run - c->pos);
            c->pos = run;
        }
        ZTB_ENSURE(c->pos < c->len, ZTB_ERR_JSON);
        uint8_t ch = c->data[c->pos];
        if (ch == '"') {
            c->pos++;
            return ZTB_OK;
        }
        ZTB_ENSURE(ch >= 0x20, ZTB_ERR_JSON); /* raw control character */
        if (ch != '\\') {
            size_t n = utf8_seq(c->data + c->pos, c->len - c->pos);
            ZTB_ENSURE(n > 0, ZTB_ERR_JSON);
            put(o, c->data + c->pos, n);
            c->pos += n;
            continue;
        }
        c->pos++;
        ZTB_ENSURE(c->pos < c->len, ZTB_ERR_JSON);
        uint8_t e = c->data[c->pos++];
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
            ZTB_GUARD(read_hex4(c, &cp));
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                ZTB_ENSURE(ztb_cursor_expect(c, "\\u", 2) == ZTB_OK, ZTB_ERR_JSON);
                ZTB_GUARD(read_hex4(c, &lo));
                ZTB_ENSURE(lo >= 0xdc00 && lo <= 0xdfff, ZTB_ERR_JSON);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else {
                ZTB_ENSURE(cp < 0xdc00 || cp > 0xdfff, ZTB_ERR_JSON); /* lone low half */
            }
            ZTB_ENSURE(cp != 0, ZTB_ERR_JSON); /* no NUL in any string */
            uint8_t u[4];
            put(o, u, utf8_encode(cp, u));
            continue;
        }
        default: return ZTB_ERR_JSON;
        }
        put(o, &one, 1);
    }
}

/* A number at the cursor; sets the span of its bytes and whether it is an integer. */
static ztb_err scan_number(ztb_cursor *c, ztb_span *sp, int *integer)
{
    size_t start = c->pos;
    int isint = 1;
#define CH()     (c->pos < c->len ? c->data[c->pos] : -1)
#define DIGIT(x) ((x) >= '0' && (x) <= '9')
    if (CH() == '-')
        c->pos++;
    if (CH() == '0') {
        c->pos++;
    } else if (DIGIT(CH())) {
        while (DIGIT(CH()))
            c->pos++;
    } else {
        return ZTB_ERR_JSON;
    }
    if (CH() == '.') {
        isint = 0;
        c->pos++;
        ZTB_ENSURE(DIGIT(CH()), ZTB_ERR_JSON);
        while (DIGIT(CH()))
            c->pos++;
    }
    if (CH() == 'e' || CH() == 'E') {
        isint = 0;
        c->pos++;
        if (CH() == '+' || CH() == '-')
            c->pos++;
        ZTB_ENSURE(DIGIT(CH()), ZTB_ERR_JSON);
        while (DIGIT(CH()))
            c->pos++;
    }
#undef CH
#undef DIGIT
    sp->ptr = c->data + start;
    sp->len = c->pos - start;
    *integer = isint;
    return ZTB_OK;
}

static ztb_err push(struct jr *r, uint8_t kind)
{
    ZTB_ENSURE(r->depth < JR_DEPTH, ZTB_ERR_TOO_LARGE);
    int d = r->depth++;
    r->kind[d] = kind;
    r->first[d] = 1;
    r->names0[d] = (uint16_t)r->nnames;
    r->arena0[d] = (uint16_t)r->arena_len;
    r->c.pos++;
    return ZTB_OK;
}

static void pop(struct jr *r)
{
    int d = --r->depth;
    r->nnames = r->names0[d];
    r->arena_len = r->arena0[d];
    r->c.pos++;
}

ztb_err jr_enter_object(struct jr *r)
{
    ZTB_ENSURE(jr_peek(r) == JR_OBJECT, ZTB_ERR_JSON);
    return push(r, '{');
}

ztb_err jr_enter_array(struct jr *r)
{
    ZTB_ENSURE(jr_peek(r) == JR_ARRAY, ZTB_ERR_JSON);
    return push(r, '[');
}

/* Before the next element of the innermost container: its close or a comma. */
static ztb_err advance(struct jr *r, uint8_t kind, uint8_t close, int *more)
{
    ZTB_ENSURE(r->depth > 0 && r->kind[r->depth - 1] == kind, ZTB_ERR_JSON);
    int d = r->depth - 1;
    skip_ws(r);
    int ch = peekc(r);
    if (ch == close) {
        pop(r);
        *more = 0;
        return ZTB_OK;
    }
    if (r->first[d]) {
        r->first[d] = 0;
    } else {
        ZTB_ENSURE(ch == ',', ZTB_ERR_JSON);
        r->c.pos++;
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
    ZTB_ENSURE(peekc(r) == '"', ZTB_ERR_JSON);
    ZTB_ENSURE(r->nnames < JR_NAMES, ZTB_ERR_TOO_LARGE);
    /* a full arena has no room even for the NUL (room would wrap) */
    ZTB_ENSURE(r->arena_len < JR_ARENA, ZTB_ERR_TOO_LARGE);
    size_t off = r->arena_len;
    size_t room = JR_ARENA - off - 1; /* bytes before the NUL's */
    struct strout o = {r->arena + off, room < JR_NAME_MAX ? room : JR_NAME_MAX, 0, 0};
    ZTB_GUARD(scan_string(&r->c, &o));
    ZTB_ENSURE(!o.overrun, ZTB_ERR_TOO_LARGE);
    const uint8_t *nm = r->arena + off;
    for (size_t i = r->names0[d]; i < r->nnames; i++)
        if (r->name_len[i] == o.len && memcmp(r->arena + r->name_off[i], nm, o.len) == 0)
            return ZTB_ERR_JSON; /* duplicate member name */
    r->arena[off + o.len] = '\0';
    r->name_off[r->nnames] = (uint16_t)off;
    r->name_len[r->nnames] = (uint16_t)o.len;
    r->nnames++;
    r->arena_len = off + o.len + 1;
    skip_ws(r);
    ZTB_ENSURE(peekc(r) == ':', ZTB_ERR_JSON);
    r->c.pos++;
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
    ZTB_ENSURE(jr_peek(r) == JR_STRING, ZTB_ERR_JSON);
    struct strout o = {(uint8_t *)out, cap > 0 ? cap - 1 : 0, 0, out == NULL || cap == 0};
    ZTB_GUARD(scan_string(&r->c, &o));
    if (out == NULL)
        return ZTB_OK;
    ZTB_ENSURE(!o.overrun, ZTB_ERR_TOO_LARGE);
    out[o.len] = '\0';
    if (len != NULL)
        *len = o.len;
    return ZTB_OK;
}

ztb_err jr_read_int(struct jr *r, int64_t *v)
{
    ZTB_ENSURE(jr_peek(r) == JR_NUMBER, ZTB_ERR_JSON);
    ztb_span sp;
    int integer;
    ZTB_GUARD(scan_number(&r->c, &sp, &integer));
    ZTB_ENSURE(integer, ZTB_ERR_MALFORMED);
    size_t i = 0;
    int neg = sp.ptr[0] == '-';
    i += (size_t)neg;
    uint64_t x = 0;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < sp.len; i++) {
        uint64_t dgt = (uint64_t)(sp.ptr[i] - '0');
        ZTB_ENSURE(x <= (lim - dgt) / 10, ZTB_ERR_MALFORMED);
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
    ZTB_ENSURE(jr_peek(r) == JR_NUMBER, ZTB_ERR_JSON);
    ztb_span sp;
    int integer;
    ZTB_GUARD(scan_number(&r->c, &sp, &integer));
    char tmp[64];
    ZTB_ENSURE(sp.len < sizeof(tmp), ZTB_ERR_TOO_LARGE);
    memcpy(tmp, sp.ptr, sp.len);
    tmp[sp.len] = '\0';
    (void)pthread_once(&c_locale_once, make_c_locale);
    ZTB_ENSURE(c_locale != (locale_t)0, ZTB_ERR_NOMEM);
    char *end = NULL;
    *v = strtod_l(tmp, &end, c_locale);
    ZTB_ENSURE(end == tmp + sp.len, ZTB_ERR_JSON);
    return ZTB_OK;
}

static ztb_err literal(struct jr *r, const char *lit)
{
    return ztb_cursor_expect(&r->c, lit, strlen(lit)) == ZTB_OK ? ZTB_OK : ZTB_ERR_JSON;
}

ztb_err jr_read_bool(struct jr *r, int *v)
{
    switch (jr_peek(r)) {
    case JR_TRUE: *v = 1; return literal(r, "true");
    case JR_FALSE: *v = 0; return literal(r, "false");
    default: return ZTB_ERR_JSON;
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
        return scan_number(&r->c, &sp, &integer);
    }
    case JR_TRUE: return literal(r, "true");
    case JR_FALSE: return literal(r, "false");
    case JR_NULL: return literal(r, "null");
    default: return ZTB_ERR_JSON;
    }
}

ztb_err jr_raw(struct jr *r, ztb_span *raw)
{
    skip_ws(r);
    size_t start = r->c.pos;
    ZTB_GUARD(jr_skip(r));
    raw->ptr = r->c.data + start;
    raw->len = r->c.pos - start;
    return ZTB_OK;
}

ztb_err jr_finish(struct jr *r)
{
    ZTB_ENSURE(r->depth == 0, ZTB_ERR_JSON);
    skip_ws(r);
    return ztb_cursor_eof(&r->c) ? ZTB_OK : ZTB_ERR_JSON;
}
