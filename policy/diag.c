/*
 * diag.c - collect and print policy problems (see diag.h).
 *
 * Must never: let a control character or raw document byte reach a message,
 * or fail a load silently (a message that cannot be stored is still counted).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "policy/diag.h"

void policy_diag_init(policy_diag *d)
{
    memset(d, 0, sizeof(*d));
    ztb_arena_init(&d->arena, 1u << 20);
}

void policy_diag_add(policy_diag *d, uint32_t line, uint32_t column, const char *where,
                     const char *field, const char *fmt, ...)
{
    if (d->n >= POLICY_DIAG_MAX) {
        d->dropped++;
        return;
    }
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 16;
        policy_diag_msg *nm = realloc(d->msgs, ncap * sizeof(*nm));
        if (nm == NULL) {
            d->err = ZTB_ERR_NOMEM;
            d->dropped++;
            return;
        }
        d->msgs = nm;
        d->cap = ncap;
    }
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* messages quote library text (jansson's) that may hold raw bytes */
    if (!ztb_utf8_printable(text, strlen(text)))
        for (char *c = text; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                *c = '?';
    policy_diag_msg *m = &d->msgs[d->n];
    m->line = line;
    m->column = column;
    m->where = where ? ztb_arena_strdup(&d->arena, where) : NULL;
    m->field = field ? ztb_arena_strdup(&d->arena, field) : NULL;
    m->text = ztb_arena_strdup(&d->arena, text);
    if (ztb_arena_error(&d->arena) != ZTB_OK) {
        d->err = ztb_arena_error(&d->arena);
        d->dropped++;
        return;
    }
    d->n++;
}

ztb_err policy_diag_format(const policy_diag_msg *m, ztb_buf *out)
{
    if (m->line > 0)
        ztb_buf_printf(out, "%u:%u: ", m->line, m->column);
    if (m->where != NULL)
        ztb_buf_printf(out, "%s: ", m->where);
    if (m->field != NULL)
        ztb_buf_printf(out, "%s: ", m->field);
    return ztb_buf_append_str(out, m->text);
}

void policy_diag_free(policy_diag *d)
{
    free(d->msgs);
    ztb_arena_free(&d->arena);
    policy_diag_init(d);
}

const char *policy_diag_quote(char *out, size_t cap, const char *s, size_t n)
{
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, cap);
    size_t shown = n > 64 ? 64 : n;
    /* do not cut a UTF-8 sequence in half */
    while (s != NULL && shown > 0 && shown < n && ((unsigned char)s[shown] & 0xc0) == 0x80)
        shown--;
    ztb_buf_append_byte(&b, '"');
    ztb_buf_append_json_escaped(&b, s ? s : "", s ? shown : 0);
    ztb_buf_append_str(&b, shown < n ? "...\"" : "\"");
    if (ztb_buf_error(&b) != ZTB_OK && cap >= 6) {
        /* never leave a half-escaped quote: fall back to a marker */
        snprintf(out, cap, "\"...\"");
    }
    return out;
}
