/*
 * jws_header.c - strict JOSE header parser (see jws_header.h).
 *
 * Recursive descent over a ztb_cursor on h->raw. Member names are unescaped
 * into a stack arena; each object remembers where its names start, checks a
 * new name against its own names only, and pops them when it closes. Strings
 * are unescaped into an output only when the caller wants the value (alg,
 * kid, typ, member names); otherwise they are validated in place. No read
 * goes past the input: every byte is reached through the cursor's bounds.
 */
#include <string.h>

#include "common/base64url.h"
#include "common/cursor.h"
#include "common/guard.h"
#include "pki/jws_header.h"

struct parser {
    ztb_cursor c;
    ztb_err sem; /* first JWS_HEADER problem; reported only if the JSON is valid */
    int depth;
    size_t nnames;
    size_t arena_len;
    uint16_t name_off[ZTB_JWS_HEADER_NAMES];
    uint16_t name_len[ZTB_JWS_HEADER_NAMES];
    uint8_t arena[ZTB_JWS_HEADER_MAX];
};

/* A string value wanted by the caller: NULL out means validate only. */
struct strout {
    uint8_t *out;
    size_t cap;  /* bytes available in out */
    size_t len;  /* bytes produced (also counted when they did not fit) */
    int overrun; /* the value did not fit */
};

static void skip_ws(ztb_cursor *c)
{
    while (c->pos < c->len) {
        uint8_t ch = c->data[c->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            break;
        c->pos++;
    }
}

static int peek(const ztb_cursor *c)
{
    return c->pos < c->len ? c->data[c->pos] : -1;
}

static void put(struct strout *o, const uint8_t *p, size_t n)
{
    if (o == NULL)
        return;
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
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(c->data[c->pos + (size_t)i]);
        ZTB_ENSURE(h >= 0, ZTB_ERR_JSON);
        r = r << 4 | (uint32_t)h;
    }
    c->pos += 4;
    *v = r;
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

/* Length of the valid UTF-8 sequence starting at p (n bytes left), 0 if invalid. */
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

/* Parse a string (cursor on the opening quote), unescaping into o if given. */
static ztb_err parse_string(ztb_cursor *c, struct strout *o)
{
    ZTB_ENSURE(peek(c) == '"', ZTB_ERR_JSON);
    c->pos++;
    for (;;) {
        ZTB_ENSURE(c->pos < c->len, ZTB_ERR_JSON);
        uint8_t ch = c->data[c->pos];
        if (ch == '"') {
            c->pos++;
            return ZTB_OK;
        }
        if (ch < 0x20)
            return ZTB_ERR_JSON; /* raw control character */
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
            ZTB_ENSURE(cp != 0, ZTB_ERR_JSON); /* no NUL inside names or values */
            uint8_t u[4];
            put(o, u, utf8_encode(cp, u));
            continue;
        }
        default: return ZTB_ERR_JSON;
        }
        put(o, &one, 1);
    }
}

static ztb_err parse_number(ztb_cursor *c)
{
    size_t start = c->pos;
    if (peek(c) == '-')
        c->pos++;
    int ch = peek(c);
    if (ch == '0') {
        c->pos++;
    } else if (ch >= '1' && ch <= '9') {
        while ((ch = peek(c)) >= '0' && ch <= '9')
            c->pos++;
    } else {
        return ZTB_ERR_JSON;
    }
    if (peek(c) == '.') {
        c->pos++;
        ZTB_ENSURE((ch = peek(c)) >= '0' && ch <= '9', ZTB_ERR_JSON);
        while ((ch = peek(c)) >= '0' && ch <= '9')
            c->pos++;
    }
    if (peek(c) == 'e' || peek(c) == 'E') {
        c->pos++;
        if (peek(c) == '+' || peek(c) == '-')
            c->pos++;
        ZTB_ENSURE((ch = peek(c)) >= '0' && ch <= '9', ZTB_ERR_JSON);
        while ((ch = peek(c)) >= '0' && ch <= '9')
            c->pos++;
    }
    return c->pos > start ? ZTB_OK : ZTB_ERR_JSON;
}

static ztb_err parse_value(struct parser *p);

static ztb_err parse_array(struct parser *p)
{
    ztb_cursor *c = &p->c;
    c->pos++; /* '[' */
    ZTB_ENSURE(++p->depth <= ZTB_JWS_HEADER_DEPTH, ZTB_ERR_JWS_HEADER);
    skip_ws(c);
    if (peek(c) == ']') {
        c->pos++;
        p->depth--;
        return ZTB_OK;
    }
    for (;;) {
        skip_ws(c);
        ZTB_GUARD(parse_value(p));
        skip_ws(c);
        int ch = peek(c);
        ZTB_ENSURE(ch >= 0, ZTB_ERR_JSON);
        c->pos++;
        if (ch == ']')
            break;
        ZTB_ENSURE(ch == ',', ZTB_ERR_JSON);
    }
    p->depth--;
    return ZTB_OK;
}

/* Which top-level member a name is, for the header fields we report. */
enum member { M_OTHER, M_ALG, M_KID, M_TYP, M_JWK, M_JKU, M_X5U, M_X5C, M_CRIT };

static enum member classify(const uint8_t *name, size_t n)
{
    static const struct {
        const char *name;
        enum member m;
    } known[] = {
        {"alg", M_ALG}, {"kid", M_KID}, {"typ", M_TYP}, {"jwk", M_JWK},
        {"jku", M_JKU}, {"x5u", M_X5U}, {"x5c", M_X5C}, {"crit", M_CRIT},
    };
    for (size_t i = 0; i < ZTB_ARRAY_LEN(known); i++)
        if (strlen(known[i].name) == n && memcmp(known[i].name, name, n) == 0)
            return known[i].m;
    return M_OTHER;
}

/*
 * A string member value copied (unescaped) into out[cap] with a NUL. A value
 * of another type, or one too long, is noted as a JWS_HEADER problem and
 * parsed on, so that invalid JSON later on still reports JSON.
 */
static ztb_err string_field(struct parser *p, char *out, size_t cap, size_t *len, int *ok)
{
    *ok = 0;
    out[0] = '\0';
    *len = 0;
    if (peek(&p->c) != '"') {
        if (p->sem == ZTB_OK)
            p->sem = ZTB_ERR_JWS_HEADER;
        return parse_value(p);
    }
    struct strout o = {(uint8_t *)out, cap - 1, 0, 0};
    ZTB_GUARD(parse_string(&p->c, &o));
    *len = o.len;
    if (o.overrun) {
        out[0] = '\0';
        return ZTB_OK;
    }
    out[o.len] = '\0';
    *ok = 1;
    return ZTB_OK;
}

/* The member value after a top-level name: record what the header needs. */
static ztb_err top_member(struct parser *p, enum member m, ztb_jws_header *h)
{
    ztb_cursor *c = &p->c;
    int ok = 0;
    size_t len = 0, start = c->pos;
    switch (m) {
    case M_ALG:
        ZTB_GUARD(string_field(p, h->alg_name, sizeof(h->alg_name), &len, &ok));
        h->has_alg = 1;
        /* an over-long name is no algorithm we know: ALG later, not a parse error */
        h->alg = ok ? ztb_alg_from_name(h->alg_name, len) : ZTB_ALG_NONE;
        return ZTB_OK;
    case M_KID:
        ZTB_GUARD(string_field(p, h->kid, sizeof(h->kid), &h->kid_len, &ok));
        if (!ok && p->sem == ZTB_OK)
            p->sem = ZTB_ERR_JWS_HEADER;
        h->has_kid = ok;
        return ZTB_OK;
    case M_TYP:
        ZTB_GUARD(string_field(p, h->typ, sizeof(h->typ), &h->typ_len, &ok));
        if (!ok && p->sem == ZTB_OK)
            p->sem = ZTB_ERR_JWS_HEADER;
        h->has_typ = ok;
        return ZTB_OK;
    case M_JWK:
        ZTB_GUARD(parse_value(p));
        h->present |= ZTB_JWS_HDR_JWK;
        h->jwk_off = start;
        h->jwk_len = c->pos - start;
        return ZTB_OK;
    case M_JKU: h->present |= ZTB_JWS_HDR_JKU; break;
    case M_X5U: h->present |= ZTB_JWS_HDR_X5U; break;
    case M_X5C: h->present |= ZTB_JWS_HDR_X5C; break;
    case M_CRIT: h->present |= ZTB_JWS_HDR_CRIT; break;
    case M_OTHER: break;
    }
    return parse_value(p);
}

/* Parse an object; h is non-NULL for the top level only. */
static ztb_err parse_object(struct parser *p, ztb_jws_header *h)
{
    ztb_cursor *c = &p->c;
    c->pos++; /* '{' */
    ZTB_ENSURE(++p->depth <= ZTB_JWS_HEADER_DEPTH, ZTB_ERR_JWS_HEADER);
    size_t first = p->nnames;
    skip_ws(c);
    if (peek(c) == '}') {
        c->pos++;
    } else {
        for (;;) {
            skip_ws(c);
            ZTB_ENSURE(p->nnames < ZTB_JWS_HEADER_NAMES, ZTB_ERR_JWS_HEADER);
            struct strout o = {p->arena + p->arena_len, sizeof(p->arena) - p->arena_len, 0, 0};
            ZTB_GUARD(parse_string(c, &o));
            ZTB_ENSURE(!o.overrun, ZTB_ERR_JWS_HEADER);
            const uint8_t *name = p->arena + p->arena_len;
            for (size_t i = first; i < p->nnames; i++)
                ZTB_ENSURE(p->name_len[i] != o.len ||
                               memcmp(p->arena + p->name_off[i], name, o.len) != 0,
                           ZTB_ERR_JSON); /* duplicate name */
            p->name_off[p->nnames] = (uint16_t)p->arena_len;
            p->name_len[p->nnames] = (uint16_t)o.len;
            p->nnames++;
            p->arena_len += o.len;

            skip_ws(c);
            ZTB_ENSURE(peek(c) == ':', ZTB_ERR_JSON);
            c->pos++;
            skip_ws(c);
            if (h != NULL)
                ZTB_GUARD(top_member(p, classify(name, o.len), h));
            else
                ZTB_GUARD(parse_value(p));
            skip_ws(c);
            int ch = peek(c);
            ZTB_ENSURE(ch >= 0, ZTB_ERR_JSON);
            c->pos++;
            if (ch == '}')
                break;
            ZTB_ENSURE(ch == ',', ZTB_ERR_JSON);
        }
    }
    /* this object's names go out of scope */
    if (p->nnames > first) {
        p->arena_len = p->name_off[first];
        p->nnames = first;
    }
    p->depth--;
    return ZTB_OK;
}

static ztb_err parse_value(struct parser *p)
{
    ztb_cursor *c = &p->c;
    switch (peek(c)) {
    case '{': return parse_object(p, NULL);
    case '[': return parse_array(p);
    case '"': return parse_string(c, NULL);
    case 't': return ztb_cursor_expect(c, "true", 4) == ZTB_OK ? ZTB_OK : ZTB_ERR_JSON;
    case 'f': return ztb_cursor_expect(c, "false", 5) == ZTB_OK ? ZTB_OK : ZTB_ERR_JSON;
    case 'n': return ztb_cursor_expect(c, "null", 4) == ZTB_OK ? ZTB_OK : ZTB_ERR_JSON;
    default: return parse_number(c);
    }
}

static void header_reset(ztb_jws_header *h)
{
    h->alg = ZTB_ALG_NONE;
    h->has_alg = 0;
    h->alg_name[0] = '\0';
    h->has_kid = 0;
    h->kid_len = 0;
    h->kid[0] = '\0';
    h->has_typ = 0;
    h->typ_len = 0;
    h->typ[0] = '\0';
    h->present = 0;
    h->jwk_off = 0;
    h->jwk_len = 0;
}

/* Parse h->raw[0..raw_len). */
static ztb_err parse_raw(ztb_jws_header *h)
{
    struct parser p;
    p.sem = ZTB_OK;
    p.depth = 0;
    p.nnames = 0;
    p.arena_len = 0;
    ztb_cursor_init(&p.c, h->raw, h->raw_len);
    header_reset(h);

    skip_ws(&p.c);
    int ch = peek(&p.c);
    if (ch != '{') {
        /* valid JSON that is not an object is not a header; anything else is bad JSON */
        if (ch == '[' || ch == '"' || ch == 't' || ch == 'f' || ch == 'n' || ch == '-' ||
            (ch >= '0' && ch <= '9')) {
            ZTB_GUARD(parse_value(&p));
            skip_ws(&p.c);
            ZTB_ENSURE(ztb_cursor_eof(&p.c), ZTB_ERR_JSON);
            return ZTB_ERR_JWS_HEADER;
        }
        return ZTB_ERR_JSON;
    }
    ZTB_GUARD(parse_object(&p, h));
    skip_ws(&p.c);
    ZTB_ENSURE(ztb_cursor_eof(&p.c), ZTB_ERR_JSON); /* trailing bytes */
    ZTB_GUARD(p.sem);
    ZTB_ENSURE(h->has_alg, ZTB_ERR_JWS_HEADER); /* alg is required */
    return ZTB_OK;
}

ztb_err ztb_jws_header_parse(const void *json, size_t n, ztb_jws_header *h)
{
    ZTB_ENSURE(h != NULL && (json != NULL || n == 0), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= ZTB_JWS_HEADER_MAX, ZTB_ERR_JWS_HEADER);
    if (n > 0)
        memcpy(h->raw, json, n);
    h->raw[n] = '\0';
    h->raw_len = n;
    return parse_raw(h);
}

ztb_err ztb_jws_header_decode(const char *b64, size_t n, ztb_jws_header *h)
{
    ZTB_ENSURE(h != NULL && (b64 != NULL || n == 0), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(ztb_b64url_decoded_max(n) <= ZTB_JWS_HEADER_MAX, ZTB_ERR_JWS_HEADER);
    size_t len = 0;
    ZTB_GUARD(ztb_b64url_decode(b64, n, h->raw, ZTB_JWS_HEADER_MAX, &len));
    h->raw[len] = '\0';
    h->raw_len = len;
    return parse_raw(h);
}

int ztb_jws_header_typ_is(const ztb_jws_header *h, const char *typ)
{
    return h->has_typ && strlen(typ) == h->typ_len && memcmp(h->typ, typ, h->typ_len) == 0;
}
