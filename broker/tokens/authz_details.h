/*
 * authz_details.h - check a token request's authorization_details (RFC 9396)
 * with the strict reader.
 *
 * What ztb accepts: a JSON array with exactly one object whose "type" names
 * its kind (1..64 printable bytes, e.g. "payment"); "actions", if given,
 * must be [scope]; "locations", if given, [audience]; "identifier", if given,
 * a printable string equal to resource (when the request names one). Other
 * members (amounts, ...) are the request's, read later by policy. The text is
 * at most AUTHZ_DETAILS_MAX bytes of strict JSON (common/json_reader.h), and
 * nests at most AUTHZ_DETAILS_DEPTH levels, so that the token which carries
 * the object inside its claims stays within what every verifier reads.
 *
 * Only after this check passed does token.c hand the text to jansson (through
 * the gate, common/json_gate.h) to build what policy and the token need.
 */
#ifndef ZTB_BROKER_AUTHZ_DETAILS_H
#define ZTB_BROKER_AUTHZ_DETAILS_H

#include <stddef.h>

#include "common/json_reader.h"

#define AUTHZ_DETAILS_MAX      4096
#define AUTHZ_DETAILS_TYPE_MAX 64
/* claims object, then authorization_details' array, then the detail: the
 * token's claims nest one level more than this text does */
#define AUTHZ_DETAILS_DEPTH (JR_DEPTH - 1)

/*
 * 1 if text[0..n) is acceptable authorization_details for a request of
 * action (scope), audience and resource (NULL if the request names none);
 * else 0 with why (cap bytes) naming the problem for a 400 message.
 */
int authz_details_check(const char *text, size_t n, const char *action, const char *audience,
                        const char *resource, char *why, size_t cap);

#endif /* ZTB_BROKER_AUTHZ_DETAILS_H */
