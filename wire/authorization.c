/*
 * authorization.c - the Authorization request header (see
 * authorization.h).
 */
#include <string.h>
#include <strings.h>

#include "wire/authorization.h"

/* token68's characters before its '=' padding (RFC 9110 §11.4) */
static const char token68_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";

ztb_auth_scheme ztb_wire_authorization_read(const char *header, const char **token, size_t *len)
{
    if (token != NULL)
        *token = NULL;
    if (len != NULL)
        *len = 0;
    if (header == NULL || token == NULL)
        return ZTB_SCHEME_NONE;
    ztb_auth_scheme s;
    const char *p;
    if (strncasecmp(header, "Bearer ", 7) == 0) {
        s = ZTB_SCHEME_BEARER;
        p = header + 7;
    } else if (strncasecmp(header, "DPoP ", 5) == 0) {
        s = ZTB_SCHEME_DPOP;
        p = header + 5;
    } else {
        return ZTB_SCHEME_NONE;
    }
    p += strspn(p, " "); /* 1*SP: the first one was matched above */
    size_t n = strspn(p, token68_chars);
    if (n == 0)
        return ZTB_SCHEME_NONE;
    n += strspn(p + n, "=");
    if (p[n] != '\0')
        return ZTB_SCHEME_NONE;
    *token = p;
    if (len != NULL)
        *len = n;
    return s;
}
