/*
 * uri.h - the comparison form of an http(s) URI, for DPoP's htu.
 *
 * RFC 9449 §4.3 compares a proof's htu with the URI of the request it came
 * with, ignoring query and fragment, and says servers SHOULD apply the
 * syntax-based and scheme-based normalizations of RFC 3986 (§6.2.2, §6.2.3)
 * first, so that a client writing HTTPS://Broker.Example:443/v1/token is
 * not refused for what is the same URI. Two URIs are the same for htu when
 * their forms are equal.
 *
 * The form: scheme and host in lower case; the scheme's default port (80,
 * 443) dropped and any other port in decimal without leading zeros; an
 * empty path as "/"; percent-encodings of unreserved characters (ALPHA,
 * DIGIT, - . _ ~) decoded and the others in upper case; dot segments
 * removed (RFC 3986 §5.2.4); query and fragment dropped.
 *
 * Must never: accept what is not an absolute http or https URI with a host
 * (userinfo, a control or non-ASCII byte, a bad percent-encoding, a port
 * over 65535: no form), or write past out.
 */
#ifndef ZTB_URI_H
#define ZTB_URI_H

#include <stddef.h>

/* The value of the hex digit c (0-9 a-f A-F) of a percent-encoding, or -1.
 * The one such reader: form bodies, route names and URIs decode with it. */
int ztb_uri_hex_value(int c);

/* Longest form ztb_uri_htu_form writes (without its NUL). */
#define ZTB_URI_FORM_MAX 2048

/*
 * The form of u[0..n) into out (cap bytes, NUL-terminated). Returns its
 * length, or 0 if u has none (see above) or it does not fit.
 */
size_t ztb_uri_htu_form(const char *u, size_t n, char *out, size_t cap);

#endif /* ZTB_URI_H */
