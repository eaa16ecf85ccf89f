/*
 * jws_header.c - strict JOSE header parser (see jws_header.h).
 *
 * A thin layer on the strict pull reader (common/json_reader.h), run with
 * this header's limits: it walks the top-level members of h->raw, copies
 * alg, kid and typ out, notes the members ztb refuses or treats specially,
 * and skips (validating) everything else. The reader's limit errors
 * (TOO_LARGE) are this header's JWS_HEADER; its syntax errors stay JSON.
 */
#include <string.h>

#include "common/base64url.h"
#include "common/json_reader.h"
#include "common/guard.h"
#include "pki/jws_header.h"

/* Which top-level member a name is, for the header fields we report. */
enum member { M_OTHER, M_ALG, M_KID, M_TYP, M_JWK, M_JKU, M_X5U, M_X5C, M_CRIT };

static enum member classify(ztb_span name)
{
    static const struct {
        const char *name;
        enum member m;
    } known[] = {
        {"alg", M_ALG}, {"kid", M_KID}, {"typ", M_TYP}, {"jwk", M_JWK},
        {"jku", M_JKU}, {"x5u", M_X5U}, {"x5c", M_X5C}, {"crit", M_CRIT},
    };
    for (size_t i = 0; i < ZTB_ARRAY_LEN(known); i++)
        if (ztb_span_eq_str(name, known[i].name))
            return known[i].m;
    return M_OTHER;
}

/* The reader's errors in this header's terms: its limits are JWS_HEADER. */
static ztb_err header_err(ztb_err rv)
{
    return rv == ZTB_ERR_TOO_LARGE ? ZTB_ERR_JWS_HEADER : rv;
}

/*
 * A string member value copied (unescaped) into out[cap] with a NUL; *ok
 * says whether it was a string that fit. A value of another type, or one too
 * long, is not an error here (the caller notes it as a JWS_HEADER problem and
 * reads on, so that invalid JSON later on still reports JSON).
 */
static ztb_err string_field(struct jr *r, char *out, size_t cap, size_t *len, int *ok)
{
    *ok = 0;
    out[0] = '\0';
    *len = 0;
    if (jr_peek(r) != JR_STRING)
        return header_err(jr_skip(r));
    ztb_err rv = jr_read_string(r, out, cap, len);
    if (rv == ZTB_ERR_TOO_LARGE) { /* read whole, did not fit */
        out[0] = '\0';
        return ZTB_OK;
    }
    ZTB_GUARD(rv);
    *ok = 1;
    return ZTB_OK;
}

/* The member value after a top-level name: record what the header needs.
 * *sem gets the first JWS_HEADER problem (reported only if the JSON is valid). */
static ztb_err top_member(struct jr *r, enum member m, ztb_jws_header *h, ztb_err *sem)
{
    int ok = 0;
    size_t len = 0;
    ztb_span raw;
    switch (m) {
    case M_ALG:
        if (jr_peek(r) != JR_STRING && *sem == ZTB_OK)
            *sem = ZTB_ERR_JWS_HEADER;
        ZTB_GUARD(string_field(r, h->alg_name, sizeof(h->alg_name), &len, &ok));
        h->has_alg = 1;
        /* an over-long name is no algorithm we know: ALG later, not a parse error */
        h->alg = ok ? ztb_alg_from_name(h->alg_name, len) : ZTB_ALG_NONE;
        return ZTB_OK;
    case M_KID:
        ZTB_GUARD(string_field(r, h->kid, sizeof(h->kid), &h->kid_len, &ok));
        if (!ok && *sem == ZTB_OK)
            *sem = ZTB_ERR_JWS_HEADER;
        h->has_kid = ok;
        return ZTB_OK;
    case M_TYP:
        ZTB_GUARD(string_field(r, h->typ, sizeof(h->typ), &h->typ_len, &ok));
        if (!ok && *sem == ZTB_OK)
            *sem = ZTB_ERR_JWS_HEADER;
        h->has_typ = ok;
        return ZTB_OK;
    case M_JWK:
        ZTB_GUARD(header_err(jr_raw(r, &raw)));
        h->present |= ZTB_JWS_HDR_JWK;
        h->jwk_off = (size_t)(raw.ptr - h->raw);
        h->jwk_len = raw.len;
        return ZTB_OK;
    case M_JKU: h->present |= ZTB_JWS_HDR_JKU; break;
    case M_X5U: h->present |= ZTB_JWS_HDR_X5U; break;
    case M_X5C: h->present |= ZTB_JWS_HDR_X5C; break;
    case M_CRIT: h->present |= ZTB_JWS_HDR_CRIT; break;
    case M_OTHER: break;
    }
    return header_err(jr_skip(r));
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
    struct jr r;
    jr_init_limits(&r, h->raw, h->raw_len, ZTB_JWS_HEADER_DEPTH, ZTB_JWS_HEADER_NAMES,
                   ZTB_JWS_HEADER_MAX);
    header_reset(h);
    jr_type t = jr_peek(&r);
    if (t != JR_OBJECT) {
        /* valid JSON that is not an object is not a header; anything else is bad JSON */
        ZTB_ENSURE(t != JR_NONE, ZTB_ERR_JSON);
        ZTB_GUARD(header_err(jr_skip(&r)));
        ZTB_GUARD(jr_finish(&r));
        return ZTB_ERR_JWS_HEADER;
    }
    ztb_err sem = ZTB_OK;
    ZTB_GUARD(header_err(jr_enter_object(&r)));
    for (;;) {
        ztb_span name;
        int more;
        ZTB_GUARD(header_err(jr_next_member(&r, &name, &more)));
        if (!more)
            break;
        ZTB_GUARD(top_member(&r, classify(name), h, &sem));
    }
    ZTB_GUARD(jr_finish(&r)); /* trailing bytes */
    ZTB_GUARD(sem);
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
