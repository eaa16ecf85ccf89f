/*
 * chain.h - the audit log's hash chain: what a record line is and how one
 * line links to the one before.
 *
 * A record is one JSON line that begins
 *
 *   {"seq":42,"ts":"2026-11-22T01:02:03.456Z","prev":"<64 hex>",...
 *
 * "seq" counts records from 1; "prev" is the SHA-256, in lowercase hex, of
 * the previous line's bytes without its newline; the first record's prev is
 * audit_genesis (64 zeros). The writer (broker/audit/audit.c) makes lines by this
 * rule and the verifier (audit/verify.c, `ztbctl audit verify`) checks
 * them: both read a line's seq and prev, and hash a line, only through here.
 *
 * Nothing here trusts a line: the readers check every byte they take and
 * never read past the line's terminating NUL.
 */
#ifndef ZTB_AUDIT_CHAIN_H
#define ZTB_AUDIT_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

/* Length of a link (a SHA-256 in hex), without the NUL. */
#define AUDIT_HASH_HEX 64

/* The prev of the first record: 64 zeros. */
extern const char audit_genesis[AUDIT_HASH_HEX + 1];

/* The link to line[0..n) (its bytes without the newline): its SHA-256 as
 * lowercase hex into out, NUL-terminated. */
void audit_chain_hash(const void *line, size_t n, char out[AUDIT_HASH_HEX + 1]);

/*
 * The seq of a record: line (NUL-terminated) must begin {"seq":N, with N
 * decimal digits that fit 64 bits. MALFORMED otherwise (*seq untouched).
 */
ztb_err audit_chain_seq(const char *line, uint64_t *seq);

/*
 * The prev of a record: the 64 lowercase hex digits of its first
 * ,"prev":"...", into prev (NUL-terminated). MALFORMED if there is none or
 * it is not exactly 64 hex digits.
 */
ztb_err audit_chain_prev(const char *line, char prev[AUDIT_HASH_HEX + 1]);

#endif /* ZTB_AUDIT_CHAIN_H */
