/*
 * claims_read.c - the strict reader of access token claims (see claims.h):
 * used by the SDK's verifier and by the broker's introspection and
 * delegation, through access_token.h.
 *
 * One pass over the payload with the pull reader: each member ztb knows is
 * read into struct claims as it comes (strings unescaped into c->text), the
 * rest is skipped. Checks that relate members to each other (actions against
 * scope, locations against aud, exp against iat) run once at the end, since
 * JSON fixes no member order. Nothing here allocates.
 */
#include <string.h>

#include "common/guard.h"
#include "common/json_reader.h"
#include "wire/claims.h"

/* Latest time accepted in a claim: 9999-12-31T23:59:59Z. */
#define CLAIMS_TIME_MAX 253402300799LL

/* A member name compared with a literal (length known at compile time: this is hot). */
#define NAME_IS(span, lit)                                                                         \
    ((span).len == sizeof(lit) - 1 && memcmp((span).ptr, lit, sizeof(lit) - 1) == 0)

/* What only the end-of-payload checks need. */
struct pending {
    int has_iat, has_exp, has_gen, has_ztb, ndetails;
    int has_actions, has_locations;
    char action[CLAIMS_NAME_MAX + 1];   /* authorization_details[0].actions[0] */
    char location[CLAIMS_NAME_MAX + 1]; /* authorization_details[0].locations[0] */
};

/* 1 if every byte of s[0..n) is a printable character (no C0 controls, no DEL). */
static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return 0;
    }
    return 1;
}

/* Read a string value into c->text as claim s, at most max bytes. */
static ztb_err take_str(struct jr *r, struct claims *c, enum claims_str s, size_t max)
{
    ZTB_ENSURE(jr_peek(r) == JR_STRING, ZTB_ERR_CLAIMS);
    size_t off = c->text_len;
    size_t room = sizeof(c->text) - off;
    size_t len = 0;
    ztb_err rv = jr_read_string(r, c->text + off, room < max + 1 ? room : max + 1, &len);
    ZTB_ENSURE(rv != ZTB_ERR_TOO_LARGE, ZTB_ERR_CLAIMS);
    ZTB_GUARD(rv);
    ZTB_ENSURE(printable(c->text + off, len), ZTB_ERR_CLAIMS);
    c->off[s] = (uint16_t)off;
    c->len[s] = (uint16_t)len;
    c->has = c->has | 1u << s;
    c->text_len = off + len + 1;
    return ZTB_OK;
}

/* Read an integer time (seconds since the epoch, 0..year 9999). */
static ztb_err take_time(struct jr *r, int64_t *t)
{
    ZTB_ENSURE(jr_peek(r) == JR_NUMBER, ZTB_ERR_CLAIMS);
    ztb_err rv = jr_read_int(r, t);
    ZTB_ENSURE(rv != ZTB_ERR_MALFORMED, ZTB_ERR_CLAIMS);
    ZTB_GUARD(rv);
    ZTB_ENSURE(*t >= 0 && *t <= CLAIMS_TIME_MAX, ZTB_ERR_CLAIMS);
    return ZTB_OK;
}

/* An array of exactly one string, copied to out (cap bytes). */
static ztb_err one_string_array(struct jr *r, char *out, size_t cap)
{
    ZTB_ENSURE(jr_peek(r) == JR_ARRAY, ZTB_ERR_CLAIMS);
    ZTB_GUARD(jr_enter_array(r));
    int more, n = 0;
    for (;;) {
        ZTB_GUARD(jr_next_element(r, &more));
        if (!more)
            break;
        ZTB_ENSURE(++n == 1 && jr_peek(r) == JR_STRING, ZTB_ERR_CLAIMS);
        ztb_err rv = jr_read_string(r, out, cap, NULL);
        ZTB_ENSURE(rv != ZTB_ERR_TOO_LARGE, ZTB_ERR_CLAIMS);
        ZTB_GUARD(rv);
    }
    ZTB_ENSURE(n == 1, ZTB_ERR_CLAIMS);
    return ZTB_OK;
}

/* One element of authorization_details: an object of some type (RFC 9396). */
static ztb_err detail(struct jr *r, struct claims *c, struct pending *p)
{
    ZTB_ENSURE(jr_peek(r) == JR_OBJECT, ZTB_ERR_CLAIMS);
    size_t start = jr_mark(r);
    ZTB_GUARD(jr_enter_object(r));
    int more;
    ztb_span name;
    for (;;) {
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            break;
        if (NAME_IS(name, "type")) {
            ZTB_GUARD(take_str(r, c, CL_DETAIL_TYPE, CLAIMS_NAME_MAX));
        } else if (NAME_IS(name, "actions")) {
            ZTB_GUARD(one_string_array(r, p->action, sizeof(p->action)));
            p->has_actions = 1;
        } else if (NAME_IS(name, "locations")) {
            ZTB_GUARD(one_string_array(r, p->location, sizeof(p->location)));
            p->has_locations = 1;
        } else if (NAME_IS(name, "identifier")) {
            ZTB_GUARD(take_str(r, c, CL_RESOURCE, CLAIMS_RESOURCE_MAX));
        } else {
            ZTB_GUARD(jr_skip(r)); /* what the request asked for, e.g. "amount" */
        }
    }
    ZTB_ENSURE((c->has >> CL_DETAIL_TYPE) & 1u && c->len[CL_DETAIL_TYPE] > 0, ZTB_ERR_CLAIMS);
    ztb_span raw = jr_since(r, start);
    size_t len = raw.len, off = c->text_len;
    ZTB_ENSURE(len + 1 <= sizeof(c->text) - off, ZTB_ERR_CLAIMS);
    memcpy(c->text + off, raw.ptr, len);
    c->text[off + len] = '\0';
    c->details_off = (uint16_t)off;
    c->details_len = (uint16_t)len;
    c->text_len = off + len + 1;
    return ZTB_OK;
}

static ztb_err details(struct jr *r, struct claims *c, struct pending *p)
{
    ZTB_ENSURE(jr_peek(r) == JR_ARRAY, ZTB_ERR_CLAIMS);
    ZTB_GUARD(jr_enter_array(r));
    int more;
    for (;;) {
        ZTB_GUARD(jr_next_element(r, &more));
        if (!more)
            return ZTB_OK;
        ZTB_ENSURE(++p->ndetails == 1, ZTB_ERR_CLAIMS);
        ZTB_GUARD(detail(r, c, p));
    }
}

/* act or may_act: an object whose "sub" (required) becomes claim s. */
static ztb_err actor(struct jr *r, struct claims *c, enum claims_str s)
{
    ZTB_ENSURE(jr_peek(r) == JR_OBJECT, ZTB_ERR_CLAIMS);
    ZTB_GUARD(jr_enter_object(r));
    int more;
    ztb_span name;
    for (;;) {
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            break;
        if (NAME_IS(name, "sub"))
            ZTB_GUARD(take_str(r, c, s, CLAIMS_URI_MAX));
        else
            ZTB_GUARD(jr_skip(r)); /* e.g. a nested act: the chain before the caller */
    }
    ZTB_ENSURE((c->has >> s) & 1u, ZTB_ERR_CLAIMS);
    return ZTB_OK;
}

static ztb_err cnf(struct jr *r, struct claims *c)
{
    ZTB_ENSURE(jr_peek(r) == JR_OBJECT, ZTB_ERR_CLAIMS);
    ZTB_GUARD(jr_enter_object(r));
    c->cnf_present = 1;
    int more;
    ztb_span name;
    for (;;) {
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            return ZTB_OK;
        if (NAME_IS(name, "jkt")) {
            ZTB_GUARD(take_str(r, c, CL_JKT, CLAIMS_ID_MAX));
        } else if (NAME_IS(name, "x5t#S256")) {
            ZTB_GUARD(take_str(r, c, CL_X5T, CLAIMS_ID_MAX));
        } else {
            c->cnf_unknown = 1; /* a binding we cannot check: the verifier refuses it */
            ZTB_GUARD(jr_skip(r));
        }
    }
}

static ztb_err ztb_member(struct jr *r, struct claims *c, struct pending *p)
{
    ZTB_ENSURE(jr_peek(r) == JR_OBJECT, ZTB_ERR_CLAIMS);
    ZTB_GUARD(jr_enter_object(r));
    p->has_ztb = 1;
    int more;
    ztb_span name;
    for (;;) {
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            return ZTB_OK;
        if (NAME_IS(name, "agent")) {
            ZTB_GUARD(take_str(r, c, CL_AGENT, CLAIMS_NAME_MAX));
        } else if (NAME_IS(name, "gen")) {
            ZTB_ENSURE(jr_peek(r) == JR_NUMBER, ZTB_ERR_CLAIMS);
            ztb_err rv = jr_read_int(r, &c->gen);
            ZTB_ENSURE(rv != ZTB_ERR_MALFORMED, ZTB_ERR_CLAIMS);
            ZTB_GUARD(rv);
            ZTB_ENSURE(c->gen >= 0, ZTB_ERR_CLAIMS);
            p->has_gen = 1;
        } else if (NAME_IS(name, "single_use")) {
            jr_type t = jr_peek(r);
            ZTB_ENSURE(t == JR_TRUE || t == JR_FALSE, ZTB_ERR_CLAIMS);
            ZTB_GUARD(jr_read_bool(r, &c->single_use));
        } else if (NAME_IS(name, "rule")) {
            ZTB_GUARD(take_str(r, c, CL_RULE, CLAIMS_NAME_MAX));
        } else {
            ZTB_GUARD(jr_skip(r));
        }
    }
}

/* One top-level member. */
static ztb_err member(struct jr *r, ztb_span name, struct claims *c, struct pending *p)
{
    static const struct {
        const char *name;
        enum claims_str s;
        size_t max;
    } strs[] = {
        {"iss", CL_ISS, CLAIMS_URI_MAX},
        {"sub", CL_SUB, CLAIMS_URI_MAX},
        {"aud", CL_AUD, CLAIMS_NAME_MAX},
        {"jti", CL_JTI, CLAIMS_ID_MAX},
        {"client_id", CL_CLIENT_ID, CLAIMS_URI_MAX},
        {"scope", CL_SCOPE, CLAIMS_NAME_MAX},
    };
    for (size_t i = 0; i < ZTB_ARRAY_LEN(strs); i++)
        if (name.len == strlen(strs[i].name) && memcmp(name.ptr, strs[i].name, name.len) == 0)
            return take_str(r, c, strs[i].s, strs[i].max);
    if (NAME_IS(name, "exp")) {
        p->has_exp = 1;
        return take_time(r, &c->exp);
    }
    if (NAME_IS(name, "iat")) {
        p->has_iat = 1;
        return take_time(r, &c->iat);
    }
    if (NAME_IS(name, "nbf")) {
        c->has_nbf = 1;
        return take_time(r, &c->nbf);
    }
    if (NAME_IS(name, "authorization_details"))
        return details(r, c, p);
    if (NAME_IS(name, "act"))
        return actor(r, c, CL_ACT_SUB);
    if (NAME_IS(name, "may_act"))
        return actor(r, c, CL_MAY_ACT_SUB);
    if (NAME_IS(name, "cnf"))
        return cnf(r, c);
    if (NAME_IS(name, "ztb"))
        return ztb_member(r, c, p);
    return jr_skip(r);
}

/* The checks that relate members to each other, once all are read. */
static ztb_err final_checks(const struct claims *c, const struct pending *p)
{
    static const enum claims_str required[] = {CL_ISS, CL_SUB, CL_AUD, CL_JTI, CL_SCOPE, CL_AGENT};
    for (size_t i = 0; i < ZTB_ARRAY_LEN(required); i++)
        ZTB_ENSURE((c->has >> required[i]) & 1u, ZTB_ERR_CLAIMS);
    ZTB_ENSURE(p->has_iat && p->has_exp && p->has_ztb && p->has_gen, ZTB_ERR_CLAIMS);
    ZTB_ENSURE(c->exp > c->iat, ZTB_ERR_CLAIMS);
    ZTB_ENSURE(c->len[CL_JTI] > 0 && c->len[CL_SCOPE] > 0 && c->len[CL_AGENT] > 0, ZTB_ERR_CLAIMS);
    ZTB_ENSURE(p->ndetails == 1 && p->has_actions && p->has_locations, ZTB_ERR_CLAIMS);
    ZTB_ENSURE(strcmp(p->action, claims_str(c, CL_SCOPE)) == 0, ZTB_ERR_CLAIMS);
    ZTB_ENSURE(strcmp(p->location, claims_str(c, CL_AUD)) == 0, ZTB_ERR_CLAIMS);
    return ZTB_OK;
}

static ztb_err parse_object(const void *payload, size_t n, struct claims *c, struct pending *p)
{
    struct jr r;
    jr_init(&r, payload, n);
    jr_type t = jr_peek(&r);
    ZTB_ENSURE(t == JR_OBJECT, t == JR_NONE ? ZTB_ERR_JSON : ZTB_ERR_CLAIMS);
    ZTB_GUARD(jr_enter_object(&r));
    int more;
    ztb_span name;
    for (;;) {
        ZTB_GUARD(jr_next_member(&r, &name, &more));
        if (!more)
            break;
        ZTB_GUARD(member(&r, name, c, p));
    }
    return jr_finish(&r);
}

ztb_err claims_parse(const void *payload, size_t n, struct claims *c)
{
    ZTB_ENSURE(c != NULL && (payload != NULL || n == 0), ZTB_ERR_INVALID_ARG);
    c->has = 0;
    c->iat = c->nbf = c->exp = c->gen = 0;
    c->has_nbf = c->single_use = c->cnf_present = c->cnf_unknown = 0;
    c->details_off = c->details_len = 0;
    c->text_len = 0;
    c->text[0] = '\0';
    ZTB_ENSURE(n <= CLAIMS_PAYLOAD_MAX, ZTB_ERR_CLAIMS);

    struct pending p;
    p.has_iat = p.has_exp = p.has_gen = p.has_ztb = p.ndetails = 0;
    p.has_actions = p.has_locations = 0;
    p.action[0] = p.location[0] = '\0';
    ztb_err rv = parse_object(payload, n, c, &p);
    if (rv == ZTB_ERR_TOO_LARGE || rv == ZTB_ERR_MALFORMED)
        rv = ZTB_ERR_CLAIMS; /* over the reader's limits: not a token ztb issued */
    if (rv != ZTB_OK) {
        c->has = 0;
        return rv;
    }
    return final_checks(c, &p);
}
