/*
 * authz_details.c - authorization_details checked strictly (see authz_details.h).
 *
 * One pass with the strict reader: the array, its one object, and in it the
 * four members ztb judges; everything else is skipped and still validated.
 * The verdicts come after the pass, in a fixed order, so a request with
 * several problems always hears about the same one first.
 */
#include <stdio.h>
#include <string.h>

#include "broker/tokens/authz_details.h"
#include "common/guard.h"

#define VALUE_MAX 512 /* as token.c's FIELD_MAX: longer is refused */

/* What the pass found in the one object. */
struct found {
    int objects;         /* elements of the array */
    int first_is_object; /* the first element is an object */
    int has_type;        /* "type" a string that fit */
    char type[AUTHZ_DETAILS_TYPE_MAX + 1];
    int has_actions, actions_ok; /* "actions" present; it is [one string] */
    char action[VALUE_MAX + 1];
    int has_locations, locations_ok; /* "locations" present; it is [one string] */
    char location[VALUE_MAX + 1];
    int has_identifier, identifier_ok; /* "identifier" present; a string that fit */
    char identifier[VALUE_MAX + 1];
};

/* printable ASCII-or-UTF-8 without spaces or controls, 1..VALUE_MAX bytes
 * (the rule token.c's field_ok applies to the request's other fields) */
static int value_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VALUE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* A string into out[cap]: *ok = 1 if it was a string that fit; other types skipped. */
static ztb_err opt_string(struct jr *r, char *out, size_t cap, int *ok)
{
    *ok = 0;
    if (jr_peek(r) != JR_STRING)
        return jr_skip(r);
    ztb_err rv = jr_read_string(r, out, cap, NULL);
    if (rv == ZTB_ERR_TOO_LARGE) /* read whole: too long to be acceptable */
        return ZTB_OK;
    ZTB_GUARD(rv);
    *ok = 1;
    return ZTB_OK;
}

/* An array of exactly one string, into out[cap]: *ok = 1 if so. */
static ztb_err one_string_array(struct jr *r, char *out, size_t cap, int *ok)
{
    *ok = 0;
    if (jr_peek(r) != JR_ARRAY)
        return jr_skip(r);
    ZTB_GUARD(jr_enter_array(r));
    int more, n = 0, first = 0;
    for (;;) {
        ZTB_GUARD(jr_next_element(r, &more));
        if (!more)
            break;
        if (n++ == 0)
            ZTB_GUARD(opt_string(r, out, cap, &first));
        else
            ZTB_GUARD(jr_skip(r));
    }
    *ok = n == 1 && first;
    return ZTB_OK;
}

static ztb_err read_object(struct jr *r, struct found *f)
{
    ZTB_GUARD(jr_enter_object(r));
    for (;;) {
        ztb_span name;
        int more;
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            return ZTB_OK;
        if (ztb_span_eq_str(name, "type")) {
            ZTB_GUARD(opt_string(r, f->type, sizeof(f->type), &f->has_type));
        } else if (ztb_span_eq_str(name, "actions")) {
            f->has_actions = 1;
            ZTB_GUARD(one_string_array(r, f->action, sizeof(f->action), &f->actions_ok));
        } else if (ztb_span_eq_str(name, "locations")) {
            f->has_locations = 1;
            ZTB_GUARD(one_string_array(r, f->location, sizeof(f->location), &f->locations_ok));
        } else if (ztb_span_eq_str(name, "identifier")) {
            f->has_identifier = 1;
            ZTB_GUARD(opt_string(r, f->identifier, sizeof(f->identifier), &f->identifier_ok));
        } else {
            ZTB_GUARD(jr_skip(r));
        }
    }
}

/* The whole text: an array whose first element, if an object, is read. */
static ztb_err read_all(struct jr *r, struct found *f)
{
    if (jr_peek(r) != JR_ARRAY) {
        ZTB_GUARD(jr_skip(r));
        return jr_finish(r);
    }
    ZTB_GUARD(jr_enter_array(r));
    for (;;) {
        int more;
        ZTB_GUARD(jr_next_element(r, &more));
        if (!more)
            break;
        if (f->objects++ == 0 && jr_peek(r) == JR_OBJECT) {
            f->first_is_object = 1;
            ZTB_GUARD(read_object(r, f));
        } else {
            ZTB_GUARD(jr_skip(r));
        }
    }
    return jr_finish(r);
}

int authz_details_check(const char *text, size_t n, const char *action, const char *audience,
                        const char *resource, char *why, size_t cap)
{
    const char *msg = NULL;
    if (text == NULL || n > AUTHZ_DETAILS_MAX) {
        snprintf(why, cap, "authorization_details too large");
        return 0;
    }
    static const struct found zero;
    struct found f = zero;
    struct jr r;
    jr_init_limits(&r, text, n, AUTHZ_DETAILS_DEPTH, JR_NAMES, JR_NAME_MAX);
    if (read_all(&r, &f) != ZTB_OK) {
        snprintf(why, cap, "authorization_details is not strict JSON: %s (at byte %zu)", jr_why(&r),
                 jr_where(&r));
        return 0;
    }
    if (f.objects != 1 || !f.first_is_object || !f.has_type || !value_ok(f.type))
        msg = "authorization_details must be [{\"type\": NAME, ...}] with one object";
    else if (f.has_actions && !(f.actions_ok && strcmp(f.action, action) == 0))
        msg = "authorization_details actions, if given, must be [scope]";
    else if (f.has_locations && !(f.locations_ok && strcmp(f.location, audience) == 0))
        msg = "authorization_details locations, if given, must be [audience]";
    else if (f.has_identifier && (!f.identifier_ok || !value_ok(f.identifier) ||
                                  (resource != NULL && strcmp(resource, f.identifier) != 0)))
        msg = "authorization_details identifier must be a string equal to resource";
    if (msg != NULL) {
        snprintf(why, cap, "%s", msg);
        return 0;
    }
    return 1;
}
