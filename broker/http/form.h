/*
 * form.h - strict application/x-www-form-urlencoded parsing (token, revoke,
 * introspect and enroll requests).
 *
 * Strict, because a credential request must have one meaning: every
 * parameter appears at most once (RFC 6749 §3.1: "Request and response
 * parameters MUST NOT be included more than once"), names are from the
 * caller's allowed list, percent escapes are complete hex pairs, '+' is a
 * space, a decoded NUL is refused, every decoded name and value is valid
 * UTF-8 (so a malformed value is a malformed request, answered 400, and
 * never a name that policy fails to match), and counts and sizes are
 * bounded.
 * Decoded values live in one buffer owned by the form (wiped on free: they
 * may hold assertions or tokens).
 */
#ifndef ZTB_BROKER_FORM_H
#define ZTB_BROKER_FORM_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#define FORM_MAX_PARAMS 24

struct form_param {
    const char *name;  /* into the form's buffer, NUL-terminated */
    const char *value; /* idem */
    size_t value_len;
};

struct form {
    struct form_param p[FORM_MAX_PARAMS];
    size_t n;
    char *buf; /* decoded names and values */
    size_t buf_cap;
    char bad_name[64]; /* on error: the parameter at fault (truncated) */
    char error[128];   /* on error: a description, see form_error() */
};

/*
 * Parse body (len bytes). allowed: NULL-terminated list of the parameter
 * names accepted (NULL: any). Errors: MALFORMED (bad escape, empty pair or
 * name, NUL, a name not allowed or a value not UTF-8: bad_name says which),
 * EXISTS (a parameter repeated: bad_name says which), TOO_LARGE (more than
 * FORM_MAX_PARAMS), NOMEM. On error nothing needs freeing, and form_error()
 * describes it.
 */
ztb_err form_parse(struct form *f, const uint8_t *body, size_t len, const char *const *allowed);

/*
 * After form_parse failed: one line for an error_description, naming the
 * parameter at fault and what is wrong with it; never a value. Owned by f.
 */
const char *form_error(const struct form *f);

/* The value of name, or NULL if absent. */
const char *form_get(const struct form *f, const char *name);

/* Wipe and free the decoded values. */
void form_free(struct form *f);

#endif /* ZTB_BROKER_FORM_H */
