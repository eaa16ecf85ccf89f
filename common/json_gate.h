/*
 * json_gate.h - the one door through which outside bytes reach jansson.
 *
 * jansson builds a tree, recurses per nesting level and allocates per value:
 * fine for trusted or already-verified text, an attack surface for anything
 * else. Untrusted JSON before authentication is read with the strict pull
 * reader (common/json_reader.h), never with jansson. Whatever else comes from
 * outside the process and wants a jansson tree (an HTTP body of an
 * authenticated caller, a Security Event Token, a Redis record, a JWK or
 * JWKS, a broker's answer to the SDK) passes ztb_json_gate_load, which
 * checks, in this order and before json_loadb sees a byte: the size, that
 * there is no NUL byte, the nesting depth, and then loads with duplicate
 * member names refused.
 *
 * Must never: hand jansson text it has not checked, or report a problem
 * without naming it.
 */
#ifndef ZTB_JSON_GATE_H
#define ZTB_JSON_GATE_H

#include <stddef.h>

#include <jansson.h>
#include <ztb/error.h>

#define ZTB_JSON_GATE_DEPTH 16 /* the usual nesting bound, as the strict reader's */

/*
 * Parse n bytes at text into *out (a new reference the caller json_decrefs)
 * after the checks above: at most max_len bytes, no NUL, nesting at most
 * max_depth, no duplicate names; flags are more jansson decoding flags
 * (JSON_DECODE_ANY, ...; JSON_REJECT_DUPLICATES is always added). On failure
 * *out is NULL, and why (if not NULL, cap bytes) names the problem for a
 * 4xx message: "JSON text too large (at most N bytes)", "JSON text contains a
 * NUL byte", "JSON nested too deeply (at most N levels)", or "invalid JSON at
 * LINE:COL: TEXT" from jansson (duplicates included).
 * Returns OK, TOO_LARGE (size or depth), JSON, or INVALID_ARG.
 */
ztb_err ztb_json_gate_load(const void *text, size_t n, size_t max_len, int max_depth, size_t flags,
                           json_t **out, char *why, size_t cap);

/* 1 if the JSON text p[0..n) never nests deeper than max; 0 otherwise. The
 * text need not be valid JSON: the scan only bounds what a parser would
 * recurse into ('{' and '[' outside strings, escapes honoured). */
int ztb_json_depth_ok(const void *p, size_t n, int max);

#endif /* ZTB_JSON_GATE_H */
