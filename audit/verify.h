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
 * Removing lines at the end leaves a valid, shorter chain: only a later copy
 * or the Redis stream ztb:audit shows that.
 */
#ifndef ZTB_AUDIT_VERIFY_H
#define ZTB_AUDIT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

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

#endif /* ZTB_AUDIT_VERIFY_H */
