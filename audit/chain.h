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
 * A writer with a replica id puts "replica":"<id>" right after prev; every
 * line of one chain carries the same one.
 *
 * A signed checkpoint is a line of the chain like any other, with event
 * AUDIT_CHECKPOINT_EVENT and the members
 *
 *   "from":F,"to":T,"hash":"<64 hex>","kid":"<kid>","jws":"<compact JWS>"
 *
 * hash is the link to (the SHA-256 of) the line whose seq is T, from is the
 * first seq the previous checkpoint did not cover (1 for the first), and
 * the JWS (typ AUDIT_CHECKPOINT_TYP, ES256, by the broker's token signing
 * key, kid in its header) signs exactly the bytes audit_checkpoint_payload
 * makes of replica, from, to and hash. Since every line links to the one
 * before, a valid checkpoint proves every line from seq 1 up to T.
 *
 * Nothing here trusts a line: the readers check every byte they take and
 * never read past the line's terminating NUL.
 */
#ifndef ZTB_AUDIT_CHAIN_H
#define ZTB_AUDIT_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/buf.h"

/* Length of a link (a SHA-256 in hex), without the NUL. */
#define AUDIT_HASH_HEX 64

/* Longest replica id on a line. */
#define AUDIT_REPLICA_ID_MAX 64

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

/* The event name and JWS typ of a signed checkpoint. The typ keeps a
 * checkpoint from passing as an access token (at+jwt) and the reverse. */
#define AUDIT_CHECKPOINT_EVENT "audit.checkpoint"
#define AUDIT_CHECKPOINT_TYP   "ztb-audit-checkpoint+jwt"

/*
 * The payload a checkpoint's JWS signs, appended to out:
 *   {"typ":"ztb-audit-checkpoint","replica":"R","from":F,"to":T,"hash":"H"}
 * replica NULL or "" for a writer without one (then "replica":""). Both
 * the writer and the verifier make it here, so they sign and compare the
 * same bytes. replica must be a valid id (chain.h's writer checks).
 */
void audit_checkpoint_payload(const char *replica, uint64_t from, uint64_t to,
                              const char hash[AUDIT_HASH_HEX + 1], ztb_buf *out);

/*
 * The replica of a record: the value of its first ,"replica":"..." member
 * right after prev, into out (NUL-terminated; "" if the line has none).
 * MALFORMED if it is longer than AUDIT_REPLICA_ID_MAX or not closed.
 */
ztb_err audit_chain_replica(const char *line, char out[AUDIT_REPLICA_ID_MAX + 1]);

#endif /* ZTB_AUDIT_CHAIN_H */
