/*
 * form.c - strict urlencoded form parsing (see form.h).
 *
 * One pass over the body with a cursor: split on '&', then on the first '=',
 * decode both halves into a buffer the size of the body (decoding never
 * grows the text), check both are UTF-8, the name against the allowed list
 * and for repeats.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/http/form.h"
#include "common/cursor.h"
#include "common/guard.h"
#include "common/secret.h"
#include "common/uri.h"
#include "common/utf8.h"

/* Decode s into out (room for s.len + 1), NUL-terminate, set *olen. */
static ztb_err decode(ztb_span s, char *out, size_t *olen)
{
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.ptr[i];
        if (c == '+') {
            out[o++] = ' ';
        } else if (c == '%') {
            if (s.len - i < 3)
                return ZTB_ERR_MALFORMED;
            int hi = ztb_uri_hex_value(s.ptr[i + 1]), lo = ztb_uri_hex_value(s.ptr[i + 2]);
            if (hi < 0 || lo < 0)
                return ZTB_ERR_MALFORMED;
            c = (uint8_t)(hi << 4 | lo);
            if (c == 0)
                return ZTB_ERR_MALFORMED;
            out[o++] = (char)c;
            i += 2;
        } else if (c == 0) {
            return ZTB_ERR_MALFORMED;
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    *olen = o;
    return ZTB_OK;
}

/* Record the parameter at fault (name, n bytes) and describe the fault:
 * "<before>'<name>'<after>", the name truncated. */
static void set_bad(struct form *f, const char *name, size_t n, const char *before,
                    const char *after)
{
    if (n >= sizeof(f->bad_name))
        n = sizeof(f->bad_name) - 1;
    memcpy(f->bad_name, name, n);
    f->bad_name[n] = '\0';
    snprintf(f->error, sizeof(f->error), "%s'%s'%s", before, f->bad_name, after);
}

ztb_err form_parse(struct form *f, const uint8_t *body, size_t len, const char *const *allowed)
{
    memset(f, 0, sizeof(*f));
    ZTB_ENSURE(body != NULL || len == 0, ZTB_ERR_INVALID_ARG);
    if (len == 0)
        return ZTB_OK;
    /* each name and value gets its decoded bytes + NUL: at most len + 2 per pair */
    ZTB_ENSURE(len < SIZE_MAX / 4, ZTB_ERR_TOO_LARGE);
    f->buf_cap = len + 2 * (FORM_MAX_PARAMS + 1);
    f->buf = malloc(f->buf_cap);
    ZTB_ENSURE(f->buf != NULL, ZTB_ERR_NOMEM);
    size_t used = 0;
    ztb_cursor c;
    ztb_cursor_init(&c, body, len);
    ztb_err rv = ZTB_OK;
    while (!ztb_cursor_eof(&c)) {
        ztb_span pair;
        if (ztb_cursor_take_until(&c, '&', &pair) != ZTB_OK)
            ztb_cursor_take_rest(&c, &pair);
        else if (ztb_cursor_eof(&c))
            ZTB_CHECK(rv, 0, ZTB_ERR_MALFORMED); /* a trailing '&' */
        if (pair.len == 0) {
            /* "a=1&&b=2" or a trailing '&': tolerated by browsers, not by us */
            ZTB_CHECK(rv, 0, ZTB_ERR_MALFORMED);
        }
        ztb_cursor pc;
        ztb_cursor_init(&pc, pair.ptr, pair.len);
        ztb_span name, value;
        if (ztb_cursor_take_until(&pc, '=', &name) != ZTB_OK) {
            name = pair; /* "flag" without '=' has an empty value */
            value.ptr = NULL;
            value.len = 0;
        } else {
            ztb_cursor_take_rest(&pc, &value);
        }
        ZTB_CHECK(rv, name.len > 0, ZTB_ERR_MALFORMED);
        ZTB_CHECK(rv, f->n < FORM_MAX_PARAMS, ZTB_ERR_TOO_LARGE);
        size_t nl, vl;
        char *nout = f->buf + used;
        ZTB_TRY(rv, decode(name, nout, &nl));
        used += nl + 1;
        char *vout = f->buf + used;
        ZTB_TRY(rv, decode(value, vout, &vl));
        used += vl + 1;
        if (!ztb_utf8_valid(nout, nl)) {
            /* not echoed: the description must be valid text */
            snprintf(f->error, sizeof(f->error), "a parameter name is not valid UTF-8");
            ZTB_CHECK(rv, 0, ZTB_ERR_MALFORMED);
        }
        int ok = allowed == NULL;
        for (const char *const *a = allowed; a != NULL && *a != NULL; a++)
            if (strcmp(*a, nout) == 0) {
                ok = 1;
                break;
            }
        if (!ok) {
            set_bad(f, nout, nl, "unknown parameter ", "");
            ZTB_CHECK(rv, 0, ZTB_ERR_MALFORMED);
        }
        if (form_get(f, nout) != NULL) {
            set_bad(f, nout, nl, "parameter ", " given more than once");
            ZTB_CHECK(rv, 0, ZTB_ERR_EXISTS);
        }
        if (!ztb_utf8_valid(vout, vl)) {
            set_bad(f, nout, nl, "parameter ", " is not valid UTF-8");
            ZTB_CHECK(rv, 0, ZTB_ERR_MALFORMED);
        }
        f->p[f->n].name = nout;
        f->p[f->n].value = vout;
        f->p[f->n].value_len = vl;
        f->n++;
    }
out:
    if (rv != ZTB_OK) {
        char keep[sizeof(f->bad_name)], error[sizeof(f->error)];
        memcpy(keep, f->bad_name, sizeof(keep));
        memcpy(error, f->error, sizeof(error));
        form_free(f);
        memcpy(f->bad_name, keep, sizeof(keep));
        if (error[0] != '\0')
            memcpy(f->error, error, sizeof(error));
        else if (rv == ZTB_ERR_TOO_LARGE)
            snprintf(f->error, sizeof(f->error), "more than %d parameters", FORM_MAX_PARAMS);
        else if (rv == ZTB_ERR_NOMEM)
            snprintf(f->error, sizeof(f->error), "out of memory");
        else
            snprintf(f->error, sizeof(f->error), "malformed form encoding");
    }
    return rv;
}

const char *form_error(const struct form *f)
{
    return f->error[0] != '\0' ? f->error : "malformed form encoding";
}

const char *form_get(const struct form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->p[i].name, name) == 0)
            return f->p[i].value;
    return NULL;
}

void form_free(struct form *f)
{
    if (f->buf != NULL)
        ztb_free_secret(f->buf, f->buf_cap);
    memset(f, 0, sizeof(*f));
}
