/*
 * secret.h - helpers for handling secret bytes.
 *
 * Keys, join tokens, client assertions and access tokens are secrets: they are
 * wiped before their memory is released, compared only in constant time, and
 * never logged (log.c redacts what looks like one). These helpers wrap
 * OpenSSL's primitives so the rest of the code has one spelling for each.
 */
#ifndef ZTB_SECRET_H
#define ZTB_SECRET_H

#include <stddef.h>

#include <ztb/error.h>

/* Overwrite n bytes at p with zeros in a way the compiler cannot elide. */
void ztb_wipe(void *p, size_t n);

/*
 * 1 if the n bytes at a and b are equal, else 0. The time taken depends only
 * on n, never on the contents.
 */
int ztb_ct_eq(const void *a, const void *b, size_t n);

/*
 * 1 if the two byte strings are equal. The lengths are treated as public (they
 * are compared first); the contents are compared in constant time.
 */
int ztb_ct_eq_len(const void *a, size_t alen, const void *b, size_t blen);

/* Fill out with n bytes from the system CSPRNG. CRYPTO if it cannot. */
ztb_err ztb_random(void *out, size_t n);

/*
 * Keep this process's memory out of core files and away from other processes
 * of its user: RLIMIT_CORE 0 (soft and hard) and not dumpable
 * (PR_SET_DUMPABLE 0, which also refuses ptrace and makes /proc/PID root's).
 * Call it first thing in every program that holds a key, a passphrase or a
 * token, and again after a change of uid (which resets dumpability to
 * fs.suid_dumpable). IO if the kernel refuses.
 */
ztb_err ztb_no_core_dumps(void);

/*
 * Make jansson wipe every block it frees (JSON values and the text
 * json_dumps returns, which programs here free with ztb_free_secret_str
 * when it may hold a secret): for programs whose JSON carries tokens. Call
 * once at start, before threads; never from the SDK (it would change the
 * host program's jansson).
 */
void ztb_json_wipe_on_free(void);

/* Wipe then free n bytes at p (p may be NULL). */
void ztb_free_secret(void *p, size_t n);

/* Wipe then free a NUL-terminated secret string (s may be NULL). */
void ztb_free_secret_str(char *s);

#endif /* ZTB_SECRET_H */
