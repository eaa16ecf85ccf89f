/*
 * spiffe.c - SPIFFE ID syntax and the agent ID shape (see spiffe.h). Every
 * check walks the bytes with a cursor; nothing allocates, and nothing
 * normalises (no case folding, no decoding).
 */
#include <string.h>

#include "common/cursor.h"
#include "common/guard.h"
#include "pki/spiffe.h"

#define SCHEME     "spiffe://"
#define SCHEME_LEN 9
#define AGENT_PATH "/agent/"

static int td_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int seg_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static ztb_err check_td(const char *td, size_t n)
{
    ZTB_ENSURE(n >= 1 && n <= ZTB_TRUST_DOMAIN_MAX, ZTB_ERR_SPIFFE_ID);
    for (size_t i = 0; i < n; i++)
        ZTB_ENSURE(td_char((unsigned char)td[i]), ZTB_ERR_SPIFFE_ID);
    return ZTB_OK;
}

static ztb_err check_segment(const char *s, size_t n)
{
    ZTB_ENSURE(n >= 1, ZTB_ERR_SPIFFE_ID);
    ZTB_ENSURE(!(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.'),
               ZTB_ERR_SPIFFE_ID);
    for (size_t i = 0; i < n; i++)
        ZTB_ENSURE(seg_char((unsigned char)s[i]), ZTB_ERR_SPIFFE_ID);
    return ZTB_OK;
}

ztb_err ztb_spiffe_check_trust_domain(const char *td)
{
    ZTB_ENSURE(td != NULL, ZTB_ERR_INVALID_ARG);
    return check_td(td, strnlen(td, ZTB_TRUST_DOMAIN_MAX + 1));
}

ztb_err ztb_spiffe_check_agent_name(const char *name)
{
    ZTB_ENSURE(name != NULL, ZTB_ERR_INVALID_ARG);
    size_t n = strnlen(name, ZTB_AGENT_NAME_MAX + 1);
    ZTB_ENSURE(n <= ZTB_AGENT_NAME_MAX, ZTB_ERR_SPIFFE_ID);
    return check_segment(name, n);
}

int ztb_agent_name_ok(const char *name)
{
    size_t n = name ? strnlen(name, ZTB_AGENT_NAME_REGISTERED_MAX + 1) : 0;
    if (n == 0 || n > ZTB_AGENT_NAME_REGISTERED_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.')))
            return 0;
    }
    return 1;
}

/* Split id into trust domain and path (path may be empty). */
static ztb_err split_id(const char *id, size_t n, ztb_span *td, ztb_span *path)
{
    ZTB_ENSURE(id != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= ZTB_SPIFFE_ID_MAX, ZTB_ERR_SPIFFE_ID);
    ztb_cursor c;
    ztb_cursor_init(&c, id, n);
    ZTB_ENSURE(ztb_cursor_expect(&c, SCHEME, SCHEME_LEN) == ZTB_OK, ZTB_ERR_SPIFFE_ID);
    if (ztb_cursor_take_until(&c, '/', td) == ZTB_OK) {
        (void)ztb_cursor_unread(&c, 1); /* keep the '/' as the start of the path */
        ztb_cursor_take_rest(&c, path);
    } else {
        ztb_cursor_take_rest(&c, td);
        path->ptr = NULL;
        path->len = 0;
    }
    ZTB_GUARD(check_td((const char *)td->ptr, td->len));
    /* the path: ("/" segment)*, no trailing slash */
    size_t i = 0;
    const char *p = (const char *)path->ptr;
    while (i < path->len) {
        ZTB_ENSURE(p[i] == '/', ZTB_ERR_SPIFFE_ID);
        size_t j = i + 1;
        while (j < path->len && p[j] != '/')
            j++;
        ZTB_GUARD(check_segment(p + i + 1, j - i - 1));
        i = j;
    }
    return ZTB_OK;
}

ztb_err ztb_spiffe_check_id(const char *id, size_t n)
{
    ztb_span td, path;
    return split_id(id, n, &td, &path);
}

ztb_err ztb_spiffe_agent_id(const char *td, const char *name, ztb_buf *out)
{
    ZTB_ENSURE(out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_GUARD(ztb_spiffe_check_trust_domain(td));
    ZTB_GUARD(ztb_spiffe_check_agent_name(name));
    ztb_buf_append_str(out, SCHEME);
    ztb_buf_append_str(out, td);
    ztb_buf_append_str(out, AGENT_PATH);
    return ztb_buf_append_str(out, name);
}

ztb_err ztb_spiffe_parse_agent(const char *id, size_t n, const char *td, char *name, size_t cap)
{
    ZTB_ENSURE(td != NULL && name != NULL && cap > ZTB_AGENT_NAME_MAX, ZTB_ERR_INVALID_ARG);
    ztb_span got_td, path;
    ZTB_GUARD(split_id(id, n, &got_td, &path));
    ZTB_ENSURE(ztb_span_eq_str(got_td, td), ZTB_ERR_SPIFFE_ID);
    ztb_cursor c;
    ztb_cursor_init(&c, path.ptr, path.len);
    ZTB_ENSURE(ztb_cursor_expect(&c, AGENT_PATH, strlen(AGENT_PATH)) == ZTB_OK, ZTB_ERR_SPIFFE_ID);
    ztb_span rest;
    ztb_cursor_take_rest(&c, &rest);
    /* exactly one more segment (split_id checked its characters) */
    ZTB_ENSURE(rest.len >= 1 && rest.len <= ZTB_AGENT_NAME_MAX, ZTB_ERR_SPIFFE_ID);
    ZTB_ENSURE(memchr(rest.ptr, '/', rest.len) == NULL, ZTB_ERR_SPIFFE_ID);
    memcpy(name, rest.ptr, rest.len);
    name[rest.len] = '\0';
    return ZTB_OK;
}
