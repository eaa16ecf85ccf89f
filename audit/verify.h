/*
 * verify.h - prove an audit log's hash chain (audit/chain.h) from its file.
 *
 * The verifier needs no broker: it reads a file (the live log or a copy)
 * and checks that every line is a record, that seq numbers follow without a
 * gap, and that every line's prev is the hash of the line before it; a file
 * that starts at seq 1 must start from the genesis hash. A file rotated
 * away may start at any seq. `ztbctl audit verify` is its front end; the
 * broker's tests use it on what the writer made.
 *
 * audit_verify_file checks the chain only: removing lines at either end
 * leaves a valid, shorter chain. audit_verify_files (what `ztbctl audit
 * verify` runs) proves more: the log must start at seq 1 from the genesis
 * hash, every line must carry the same replica id, and the signed
 * checkpoints (chain.h) are checked - each one's hash against the line it
 * names, its signature against the given public keys - so it can say
 * exactly which range a signature proves; an anchor (a checkpoint's seq and
 * line hash kept elsewhere) shows truncation of the end.
 */
#ifndef ZTB_AUDIT_VERIFY_H
#define ZTB_AUDIT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "audit/chain.h"
#include "pki/jws_header.h"
#include "pki/keyset.h"

/* Longest line the verifier reads, in bytes (the writer's are at most 8 KiB). */
#define AUDIT_VERIFY_LINE_MAX 65536

/*
 * Verify the chain of the audit file at path. On success *lines is the
 * number of lines and *bad_line is 0. On failure *bad_line is the 1-based
 * line where the chain breaks (0 if the file could not be read) and why
 * (whycap bytes) a one-line reason: IO (cannot open), MALFORMED (a line
 * that is not a record, too long, incomplete or with a NUL byte), SIGNATURE
 * (a seq gap or a prev that does not match: a line changed, added or
 * removed). Reads bounded lines; never trusts the file's contents.
 */
ztb_err audit_verify_file(const char *path, uint64_t *lines, uint64_t *bad_line, char *why,
                          size_t whycap);

/* How far back (in records) a checkpoint's "to" may lie behind it. */
#define AUDIT_VERIFY_WINDOW 65536

struct audit_verify_opts {
    /* public keys (a JWKS) to check checkpoint signatures with; NULL: their
     * hashes and places are checked, their signatures are not (reported) */
    const ztb_keyset *keys;
    /* an anchor "SEQ:HASH" (`ztbctl audit anchor`): the line with that seq
     * must be there, hash to HASH and be a checkpoint; NULL: none */
    const char *anchor;
};

struct audit_verify_report {
    uint64_t records;   /* lines read (across the files) */
    uint64_t first_seq; /* of the first line, 0 if none */
    uint64_t last_seq;  /* of the last whole line checked */
    char replica[AUDIT_REPLICA_ID_MAX + 1];
    /* checkpoints: how many were found valid, and the last one */
    uint64_t checkpoints;
    uint64_t proven_to;                       /* every line 1..proven_to is proven (0: none) */
    uint64_t checkpoint_at;                   /* the seq of the checkpoint line that proves it */
    char checkpoint_hash[AUDIT_HASH_HEX + 1]; /* that line's own hash: an anchor */
    char checkpoint_kid[ZTB_JWS_KID_MAX + 1];
    int signatures_checked; /* 1 if opts->keys was given */
    int anchor_found;
    /* the first problem: file index (0-based), line (1-based), reason */
    size_t bad_file;
    uint64_t bad_line;
    char why[256];
};

/*
 * Verify paths[0..n) as one chain, in that order (the files of a rotated
 * log, oldest first; usually one). Returns OK and fills r if nothing is
 * wrong; otherwise the first problem, located in r->bad_file/bad_line/why:
 * IO (cannot read), MALFORMED (a line that is not a record, too long, cut
 * or with a NUL), TRUNCATED (the log does not start at seq 1 from the
 * genesis hash: its head is missing; or it ends before the anchor's seq),
 * SIGNATURE (a line changed, inserted, removed or moved; a checkpoint whose
 * hash, place or signature is wrong; a line of another replica; the anchor
 * does not match). On OK, the lines proven by a signature are
 * 1..r->proven_to; those after are only chained.
 */
ztb_err audit_verify_files(const char *const *paths, size_t n, const struct audit_verify_opts *o,
                           struct audit_verify_report *r);

#endif /* ZTB_AUDIT_VERIFY_H */
