/*
 * spiffe.h - SPIFFE IDs for ztb agents: spiffe://<trust-domain>/agent/<name>.
 *
 * Syntax follows the SPIFFE ID standard: scheme "spiffe" in lower case; a
 * trust domain of lower-case letters, digits, '.', '-' and '_' (no port, no
 * user info); a path of non-empty segments of letters, digits, '.', '-' and
 * '_', none of them "." or ".."; no trailing '/', query, fragment or
 * percent-encoding; at most 2048 bytes. ztb agents use exactly one shape of
 * path, /agent/<name>, and nothing else is accepted as an agent identity.
 *
 * Checks compare bytes exactly: there is no case folding or normalisation, so
 * one identity has one spelling. Nothing here may accept an ID outside the
 * given trust domain or a path other than /agent/<one segment>.
 */
#ifndef ZTB_PKI_SPIFFE_H
#define ZTB_PKI_SPIFFE_H

#include <stddef.h>

#include <ztb/error.h>

#include "common/buf.h"

#define ZTB_SPIFFE_ID_MAX    2048
#define ZTB_TRUST_DOMAIN_MAX 255
#define ZTB_AGENT_NAME_MAX   128

/* SPIFFE_ID unless td is a valid trust domain name (1..255 bytes). */
ztb_err ztb_spiffe_check_trust_domain(const char *td);

/* SPIFFE_ID unless name is a valid agent name: one path segment, 1..128 bytes. */
ztb_err ztb_spiffe_check_agent_name(const char *name);

/*
 * 1 if name is one the broker registers agents under, else 0: 1 to
 * ZTB_AGENT_NAME_REGISTERED_MAX of a-z 0-9 . _ -, starting with a letter or
 * digit (lower case only, so that one agent has one spelling; a subset of
 * the SPIFFE segments above). The broker (store_agent_name_ok) and ztbctl
 * (before it sends anything) both check with this.
 */
#define ZTB_AGENT_NAME_REGISTERED_MAX 63
int ztb_agent_name_ok(const char *name);

/* SPIFFE_ID unless id[0..n) is a syntactically valid SPIFFE ID. */
ztb_err ztb_spiffe_check_id(const char *id, size_t n);

/* Append spiffe://<td>/agent/<name> to out (both checked first). */
ztb_err ztb_spiffe_agent_id(const char *td, const char *name, ztb_buf *out);

/*
 * Parse id[0..n) as the SPIFFE ID of an agent of trust domain td and copy the
 * agent's name (NUL-terminated) into name (cap bytes, at least
 * ZTB_AGENT_NAME_MAX + 1). SPIFFE_ID for any other ID, domain or path shape.
 */
ztb_err ztb_spiffe_parse_agent(const char *id, size_t n, const char *td, char *name, size_t cap);

#endif /* ZTB_PKI_SPIFFE_H */
