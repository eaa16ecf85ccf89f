/*
 * glob.c - compile and match policy patterns (see glob.h).
 *
 * The general matcher is a Thompson-style simulation: state i means "the
 * first i tokens have matched". A star token keeps its state on a byte it may
 * absorb, a literal moves to i+1 on its byte, and the closure lets a star
 * match nothing (i -> i+1). Since "***" is refused, two star tokens are never
 * adjacent and the closure is one shift. The set of live states is a fixed
 * bitset on the stack (POLICY_GLOB_MAX + 1 bits), so matching costs at most
 * O(subject * tokens / 64) word operations and never allocates.
 *
 * Must never: backtrack (time must stay linear in the untrusted subject),
 * allocate while matching, or claim coverage it cannot prove.
 */
#include <string.h>

#include "common/utf8.h"
#include "policy/glob.h"

#define WORDS ((POLICY_GLOB_MAX + 1 + 63) / 64)

typedef struct {
    uint64_t w[WORDS];
} bits;

static inline void bit_set(bits *b, uint32_t i)
{
    b->w[i / 64] |= (uint64_t)1 << (i % 64);
}

static inline int bit_get(const bits *b, uint32_t i)
{
    return (int)((b->w[i / 64] >> (i % 64)) & 1);
}

static inline int bits_empty(const bits *b, uint32_t nw)
{
    uint64_t x = 0;
    for (uint32_t i = 0; i < nw; i++)
        x |= b->w[i];
    return x == 0;
}

static inline int is_star(uint16_t t)
{
    return t >= POLICY_GLOB_STAR;
}

/* d |= (d & stars) << 1: a star may match the empty string. */
static void closure(bits *d, const bits *stars, uint32_t nw)
{
    uint64_t carry = 0;
    for (uint32_t i = 0; i < nw; i++) {
        uint64_t s = d->w[i] & stars->w[i];
        uint64_t shifted = (s << 1) | carry;
        carry = s >> 63;
        d->w[i] |= shifted;
    }
}

/* The set of star positions of a token sequence. */
static void star_mask(const uint16_t *tok, uint32_t ntok, bits *stars)
{
    memset(stars, 0, sizeof(*stars));
    for (uint32_t i = 0; i < ntok; i++)
        if (is_star(tok[i]))
            bit_set(stars, i);
}

/*
 * Run the automaton of pattern tokens ptok over a sequence of subject symbols
 * (bytes, or for coverage the tokens of another pattern). can_step(t, x) says
 * whether pattern token t may consume symbol x and stay (stars) or advance
 * (literals).
 */
static int run_bytes(const uint16_t *ptok, uint32_t ntok, const uint8_t *s, size_t n)
{
    uint32_t nw = (ntok + 1 + 63) / 64;
    bits stars, d, next;
    star_mask(ptok, ntok, &stars);
    memset(&d, 0, sizeof(d));
    bit_set(&d, 0);
    closure(&d, &stars, nw);
    for (size_t k = 0; k < n; k++) {
        uint8_t c = s[k];
        memset(&next, 0, sizeof(next));
        for (uint32_t wi = 0; wi < nw; wi++) {
            uint64_t w = d.w[wi];
            while (w != 0) {
                uint32_t i = wi * 64 + (uint32_t)__builtin_ctzll(w);
                w &= w - 1;
                if (i >= ntok)
                    continue; /* the accepting state consumes nothing */
                uint16_t t = ptok[i];
                if (t == POLICY_GLOB_DSTAR || (t == POLICY_GLOB_STAR && c != '/'))
                    bit_set(&next, i);
                else if (t == c)
                    bit_set(&next, i + 1);
            }
        }
        closure(&next, &stars, nw);
        if (bits_empty(&next, nw))
            return 0;
        d = next;
    }
    return bit_get(&d, ntok);
}

/* 1 if byte string s[0..n) contains no '/'. */
static inline int no_slash(const char *s, size_t n)
{
    return n == 0 || memchr(s, '/', n) == NULL;
}

int policy_glob_match_slow(const policy_glob *g, const char *s, size_t n)
{
    if (s == NULL && n != 0)
        return 0;
    if (s == NULL)
        s = ""; /* n == 0: no byte is read, but memcmp must not see NULL */
    switch ((enum policy_glob_kind)g->kind) {
    case POLICY_GLOB_EXACT: return n == g->lit_len && (n == 0 || memcmp(s, g->lit, n) == 0);
    case POLICY_GLOB_ALL: return 1;
    case POLICY_GLOB_SEGMENT: return no_slash(s, n);
    case POLICY_GLOB_PREFIX_ALL: return n >= g->lit_len && memcmp(s, g->lit, g->lit_len) == 0;
    case POLICY_GLOB_PREFIX_SEG:
        return n >= g->lit_len && memcmp(s, g->lit, g->lit_len) == 0 &&
               no_slash(s + g->lit_len, n - g->lit_len);
    case POLICY_GLOB_SUFFIX_ALL:
        return n >= g->lit_len && memcmp(s + n - g->lit_len, g->lit, g->lit_len) == 0;
    case POLICY_GLOB_SUFFIX_SEG:
        return n >= g->lit_len && memcmp(s + n - g->lit_len, g->lit, g->lit_len) == 0 &&
               no_slash(s, n - g->lit_len);
    case POLICY_GLOB_INFIX_ALL:
    case POLICY_GLOB_INFIX_SEG:
        if (n < g->lit_len + g->suffix_len || memcmp(s, g->lit, g->lit_len) != 0 ||
            memcmp(s + n - g->suffix_len, g->suffix, g->suffix_len) != 0)
            return 0;
        return g->kind == POLICY_GLOB_INFIX_ALL ||
               no_slash(s + g->lit_len, n - g->lit_len - g->suffix_len);
    case POLICY_GLOB_GENERAL: return run_bytes(g->tok, g->ntok, (const uint8_t *)s, n);
    }
    return 0;
}

/* Can outer token t consume inner symbol x (a byte or a star token)? */
static inline int covers_symbol(uint16_t t, uint16_t x)
{
    if (t == POLICY_GLOB_DSTAR)
        return 1;
    if (t == POLICY_GLOB_STAR)
        return x == POLICY_GLOB_STAR || (x < 256 && x != '/');
    return t == x;
}

int policy_glob_covers(const policy_glob *outer, const policy_glob *inner)
{
    const uint16_t *ptok = outer->tok;
    uint32_t ntok = outer->ntok;
    uint32_t nw = (ntok + 1 + 63) / 64;
    bits stars, d, next;
    star_mask(ptok, ntok, &stars);
    memset(&d, 0, sizeof(d));
    bit_set(&d, 0);
    closure(&d, &stars, nw);
    for (uint32_t k = 0; k < inner->ntok; k++) {
        uint16_t x = inner->tok[k];
        memset(&next, 0, sizeof(next));
        for (uint32_t i = 0; i < ntok; i++) {
            if (!bit_get(&d, i) || !covers_symbol(ptok[i], x))
                continue;
            if (is_star(ptok[i]))
                bit_set(&next, i);
            else
                bit_set(&next, i + 1);
        }
        closure(&next, &stars, nw);
        if (bits_empty(&next, nw))
            return 0;
        d = next;
    }
    return bit_get(&d, ntok);
}

ztb_err policy_glob_compile(ztb_arena *a, const char *pat, size_t len, unsigned flags,
                            policy_glob *out, const char **why)
{
    static const char *ignored;
    if (why == NULL)
        why = &ignored;
    *why = NULL;
    memset(out, 0, sizeof(*out));
    if (pat == NULL || len == 0) {
        *why = "empty pattern";
        return ZTB_ERR_POLICY;
    }
    if (len > POLICY_GLOB_MAX) {
        *why = "pattern longer than 256 bytes";
        return ZTB_ERR_POLICY;
    }
    if (!ztb_utf8_printable(pat, len)) {
        *why = "pattern has control characters or invalid UTF-8";
        return ZTB_ERR_POLICY;
    }
    uint16_t *tok = ztb_arena_calloc(a, len, sizeof(uint16_t));
    char *text = ztb_arena_memdup(a, pat, len);
    if (tok == NULL || text == NULL)
        return ztb_arena_error(a);
    uint32_t ntok = 0, nstar = 0;
    for (size_t i = 0; i < len;) {
        if (pat[i] != '*') {
            tok[ntok++] = (uint8_t)pat[i++];
            continue;
        }
        size_t run = 0;
        while (i + run < len && pat[i + run] == '*')
            run++;
        if (run > 2) {
            *why = "three or more stars in a row (use * or **)";
            return ZTB_ERR_POLICY;
        }
        if (run == 2 && (flags & POLICY_GLOB_NO_DSTAR)) {
            *why = "** is not allowed here ('/' cannot occur; use *)";
            return ZTB_ERR_POLICY;
        }
        tok[ntok++] = run == 2 ? POLICY_GLOB_DSTAR : POLICY_GLOB_STAR;
        nstar++;
        i += run;
    }
    out->text = text;
    out->len = (uint32_t)len;
    out->tok = tok;
    out->ntok = ntok;
    /* pick the fastest shape that means the same thing */
    if (nstar == 0) {
        out->kind = POLICY_GLOB_EXACT;
        out->lit = (const uint8_t *)text;
        out->lit_len = (uint32_t)len;
    } else if (ntok == 1) {
        out->kind = tok[0] == POLICY_GLOB_DSTAR ? POLICY_GLOB_ALL : POLICY_GLOB_SEGMENT;
    } else if (nstar == 1 && is_star(tok[ntok - 1])) {
        out->kind =
            tok[ntok - 1] == POLICY_GLOB_DSTAR ? POLICY_GLOB_PREFIX_ALL : POLICY_GLOB_PREFIX_SEG;
        out->lit = (const uint8_t *)text;
        out->lit_len = (uint32_t)(len - (tok[ntok - 1] == POLICY_GLOB_DSTAR ? 2 : 1));
    } else if (nstar == 1 && is_star(tok[0])) {
        size_t skip = tok[0] == POLICY_GLOB_DSTAR ? 2 : 1;
        out->kind = tok[0] == POLICY_GLOB_DSTAR ? POLICY_GLOB_SUFFIX_ALL : POLICY_GLOB_SUFFIX_SEG;
        out->lit = (const uint8_t *)text + skip;
        out->lit_len = (uint32_t)(len - skip);
    } else if (nstar == 1) {
        /* one star inside: literal, star, literal */
        size_t at = (size_t)((const char *)memchr(text, '*', len) - text);
        size_t skip = tok[at] == POLICY_GLOB_DSTAR ? 2 : 1;
        out->kind = skip == 2 ? POLICY_GLOB_INFIX_ALL : POLICY_GLOB_INFIX_SEG;
        out->lit = (const uint8_t *)text;
        out->lit_len = (uint32_t)at;
        out->suffix = (const uint8_t *)text + at + skip;
        out->suffix_len = (uint32_t)(len - at - skip);
    } else {
        out->kind = POLICY_GLOB_GENERAL;
    }
    return ZTB_OK;
}
