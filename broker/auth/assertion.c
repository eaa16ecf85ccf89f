/*
 * assertion.c - a client assertion's claims, read strictly (see assertion.h).
 *
 * One pass over the top-level members; the seven claims client_auth.c checks
 * (aud: up to four values) are copied out, everything else is skipped (and still validated).
 */
#include <string.h>

#include "broker/auth/assertion.h"
#include "common/guard.h"
#include "common/json_reader.h"

/* A string member into out[cap]: *has = 1 if it was a string that fit;
 * another type is skipped. Errors only for invalid JSON. */
static ztb_err opt_string(struct jr *r, char *out, size_t cap, int *has)
{
    *has = 0;
    if (jr_peek(r) != JR_STRING)
        return jr_skip(r);
    ztb_err rv = jr_read_string(r, out, cap, NULL);
    if (rv == ZTB_ERR_TOO_LARGE) { /* read whole: too long to be acceptable */
        out[0] = '\0';
        return ZTB_OK;
    }
    ZTB_GUARD(rv);
    *has = 1;
    return ZTB_OK;
}

/* An integer member: *has = 1 if it was an integer in int64 range. */
static ztb_err opt_int(struct jr *r, int64_t *v, int *has)
{
    *has = 0;
    if (jr_peek(r) != JR_NUMBER)
        return jr_skip(r);
    ztb_err rv = jr_read_int(r, v);
    if (rv == ZTB_ERR_MALFORMED) /* a fraction, an exponent or out of range: read whole */
        return ZTB_OK;
    ZTB_GUARD(rv);
    *has = 1;
    return ZTB_OK;
}

/* aud: a string, or an array of 1..ASSERTION_AUD_N strings (RFC 7519
 * 4.1.3); anything else (more members, a non-string, one too long) is read
 * whole and left absent. */
static ztb_err read_aud(struct jr *r, struct assertion_claims *c)
{
    if (jr_peek(r) != JR_ARRAY) {
        ZTB_GUARD(opt_string(r, c->aud[0], sizeof(c->aud[0]), &c->has_aud));
        c->naud = c->has_aud;
        return ZTB_OK;
    }
    ZTB_GUARD(jr_enter_array(r));
    int more, n = 0, all_ok = 1;
    for (;;) {
        ZTB_GUARD(jr_next_element(r, &more));
        if (!more)
            break;
        int ok = 0;
        if (n < ASSERTION_AUD_N)
            ZTB_GUARD(opt_string(r, c->aud[n], sizeof(c->aud[n]), &ok));
        else
            ZTB_GUARD(jr_skip(r));
        all_ok &= ok;
        n++;
    }
    c->has_aud = n >= 1 && n <= ASSERTION_AUD_N && all_ok;
    c->naud = c->has_aud ? n : 0;
    return ZTB_OK;
}

static ztb_err read_all(struct jr *r, struct assertion_claims *c)
{
    ZTB_GUARD(jr_enter_object(r));
    for (;;) {
        ztb_span name;
        int more;
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            break;
        if (ztb_span_eq_str(name, "iss"))
            ZTB_GUARD(opt_string(r, c->iss, sizeof(c->iss), &c->has_iss));
        else if (ztb_span_eq_str(name, "sub"))
            ZTB_GUARD(opt_string(r, c->sub, sizeof(c->sub), &c->has_sub));
        else if (ztb_span_eq_str(name, "aud"))
            ZTB_GUARD(read_aud(r, c));
        else if (ztb_span_eq_str(name, "jti"))
            ZTB_GUARD(opt_string(r, c->jti, sizeof(c->jti), &c->has_jti));
        else if (ztb_span_eq_str(name, "exp"))
            ZTB_GUARD(opt_int(r, &c->exp, &c->has_exp));
        else if (ztb_span_eq_str(name, "iat"))
            ZTB_GUARD(opt_int(r, &c->iat, &c->has_iat));
        else if (ztb_span_eq_str(name, "nbf")) {
            c->nbf_member = 1;
            ZTB_GUARD(opt_int(r, &c->nbf, &c->has_nbf));
        } else
            ZTB_GUARD(jr_skip(r));
    }
    return jr_finish(r);
}

ztb_err assertion_claims_read(const void *json, size_t n, struct assertion_claims *c,
                              const char **why)
{
    ZTB_ENSURE(c != NULL && (json != NULL || n == 0), ZTB_ERR_INVALID_ARG);
    memset(c, 0, sizeof(*c));
    struct jr r;
    jr_init(&r, json, n);
    ztb_err rv = read_all(&r, c);
    if (rv != ZTB_OK) {
        if (why != NULL)
            *why = jr_why(&r);
        memset(c, 0, sizeof(*c));
    }
    return rv;
}
