/*
 * authorization.h - the Authorization request header, read once for the
 * whole project: libztb's ztb_authorization_parse, the broker's
 * /v1/authorize, its signals, AuthZEN and SSF stream endpoints all read it
 * here, so a header one of them takes is taken by all of them.
 *
 * The grammar (RFC 9110 §11.4, RFC 6750 §2.1, RFC 9449 §7.1): the scheme
 * "Bearer" or "DPoP" in any case, one or more spaces, then one token68
 * (ALPHA DIGIT - . _ ~ + /, then '=' padding only at the end) and nothing
 * after it. Anything else (another scheme, a tab, auth-params, a quote, a
 * comma, a second token, a control byte) is not read.
 *
 * Must never: read a token out of a malformed header, or past its NUL.
 */
#ifndef ZTB_WIRE_AUTHORIZATION_H
#define ZTB_WIRE_AUTHORIZATION_H

#include <stddef.h>

#include <ztb/resource.h> /* ztb_auth_scheme */

/*
 * The scheme of header and its token: *token points into header, *len (if
 * not NULL) its length. ZTB_SCHEME_NONE, *token NULL and *len 0 for NULL
 * or anything the grammar above does not allow.
 */
ztb_auth_scheme ztb_wire_authorization_read(const char *header, const char **token, size_t *len);

#endif /* ZTB_WIRE_AUTHORIZATION_H */
