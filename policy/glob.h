/*
 * glob.h - the one pattern language of policy documents.
 *
 * A pattern is text in which `*` matches any run of characters except `/`
 * (so it stays inside one path segment) and `**` matches any run at all,
 * `/` included. Every other byte matches itself; there are no escapes, no `?`
 * and no character classes, so a pattern means exactly what it looks like.
 * Three or more stars in a row are refused (they would read ambiguously).
 * Where `/` cannot occur (agent names, actions, signal types) the caller
 * refuses `**` so each set of strings has one spelling.
 *
 * Patterns are compiled once, at load, into one of a few shapes (exact,
 * prefix, suffix, any) that match with a memcmp, or a general form matched by
 * simulating its automaton with bitsets: time linear in the subject for a
 * given pattern, no backtracking, no allocation, whatever the subject holds.
 * Subjects are untrusted; patterns come from the operator's policy file.
 */
#ifndef ZTB_POLICY_GLOB_H
#define ZTB_POLICY_GLOB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ztb/error.h>

#include "common/arena.h"

/* Longest pattern, in bytes. */
#define POLICY_GLOB_MAX 256

enum policy_glob_kind {
    POLICY_GLOB_EXACT = 0,  /* no star: equal bytes */
    POLICY_GLOB_ALL,        /* "**": anything */
    POLICY_GLOB_SEGMENT,    /* "*": anything without '/' */
    POLICY_GLOB_PREFIX_ALL, /* "lit**" */
    POLICY_GLOB_PREFIX_SEG, /* "lit*" */
    POLICY_GLOB_SUFFIX_ALL, /* "**lit" */
    POLICY_GLOB_SUFFIX_SEG, /* "*lit" */
    POLICY_GLOB_INFIX_ALL,  /* "lit**lit" */
    POLICY_GLOB_INFIX_SEG,  /* "lit*lit", e.g. "api-*.internal" */
    POLICY_GLOB_GENERAL,    /* anything else: automaton */
};

/* Tokens of the general form: a byte value, or one of these. */
#define POLICY_GLOB_STAR  256u
#define POLICY_GLOB_DSTAR 257u

typedef struct policy_glob {
    const char *text;      /* the pattern as written, NUL-terminated */
    const uint8_t *lit;    /* the literal part of the fast shapes (the prefix for infix) */
    const uint8_t *suffix; /* infix shapes: the literal after the star */
    const uint16_t *tok;   /* every shape: the token sequence */
    uint32_t len;          /* bytes of text */
    uint32_t lit_len;
    uint32_t suffix_len;
    uint32_t ntok;
    uint8_t kind; /* enum policy_glob_kind */
} policy_glob;

/* Flags for policy_glob_compile. */
#define POLICY_GLOB_NO_DSTAR 0x1 /* refuse "**" (text where '/' cannot occur) */

/*
 * Compile the len bytes at pat into out, with its storage taken from a (the
 * glob lives as long as the arena). Refuses, with ZTB_ERR_POLICY and a static
 * English reason in *why: an empty pattern, one over POLICY_GLOB_MAX bytes,
 * invalid UTF-8 or control characters, three stars in a row, and "**" when
 * flags has POLICY_GLOB_NO_DSTAR. NOMEM/TOO_LARGE from the arena.
 */
ztb_err policy_glob_compile(ztb_arena *a, const char *pat, size_t len, unsigned flags,
                            policy_glob *out, const char **why);

/*
 * 1 if the n bytes at a and b are equal. Inline, eight bytes at a time: the
 * strings compared on the hot path are short, and a libc call costs more
 * than the comparison. Not constant time (nothing here is secret).
 */
static inline int policy_bytes_eq(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n >= 8; n -= 8, x += 8, y += 8) {
        uint64_t u, v;
        memcpy(&u, x, 8);
        memcpy(&v, y, 8);
        if (u != v)
            return 0;
    }
    for (; n > 0; n--)
        if (*x++ != *y++)
            return 0;
    return 1;
}

/* The out-of-line part of policy_glob_match (every shape); use policy_glob_match. */
int policy_glob_match_slow(const policy_glob *g, const char *s, size_t n);

/*
 * 1 if the n bytes at s match g, else 0. Never allocates; s is untrusted.
 * Inline for the shapes the hot path meets most (exact, prefixes): a length
 * and first-byte test settles most mismatches without a call.
 */
static inline int policy_glob_match(const policy_glob *g, const char *s, size_t n)
{
    if (g->kind == POLICY_GLOB_EXACT)
        return n == g->lit_len && s != NULL && (uint8_t)s[0] == g->lit[0] &&
               policy_bytes_eq(s, g->lit, n);
    if (g->kind == POLICY_GLOB_PREFIX_ALL)
        return n >= g->lit_len && s != NULL && (uint8_t)s[0] == g->lit[0] &&
               policy_bytes_eq(s, g->lit, g->lit_len);
    if (g->kind == POLICY_GLOB_PREFIX_SEG)
        return n >= g->lit_len && s != NULL && (uint8_t)s[0] == g->lit[0] &&
               policy_bytes_eq(s, g->lit, g->lit_len) &&
               (n == g->lit_len || memchr(s + g->lit_len, '/', n - g->lit_len) == NULL);
    return policy_glob_match_slow(g, s, n);
}

/*
 * 1 if every string inner matches is also matched by outer. Conservative: 0
 * when that cannot be shown by matching outer against inner's tokens (a star
 * in inner is only covered by a star in outer), so callers that refuse on 1
 * never refuse wrongly. Load-time only (not tuned for speed).
 */
int policy_glob_covers(const policy_glob *outer, const policy_glob *inner);

/* 1 if g has no star (matches exactly one string). */
static inline int policy_glob_is_literal(const policy_glob *g)
{
    return g->kind == POLICY_GLOB_EXACT;
}

/* 1 if g matches every string ("**", or "*" where '/' cannot occur). */
static inline int policy_glob_is_any(const policy_glob *g)
{
    return g->kind == POLICY_GLOB_ALL || g->kind == POLICY_GLOB_SEGMENT;
}

#endif /* ZTB_POLICY_GLOB_H */
