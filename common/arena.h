/*
 * arena.h - a bump allocator for data built once and freed all at once.
 *
 * A compiled policy is thousands of small immutable pieces (strings, pattern
 * tables, index arrays) that live exactly as long as the policy. An arena hands
 * them out from a few large chunks, so building needs no per-piece cleanup,
 * freeing is one walk over the chunks, and the pieces sit close together in
 * memory (which the evaluator's hot loop likes).
 *
 * Every allocation is zeroed and aligned to 16 bytes. The arena has a hard
 * maximum total size chosen by its creator, so input-driven construction can
 * never grow without bound. Errors are sticky, like ztb_buf: after the first
 * failure (TOO_LARGE or NOMEM) every allocation returns NULL and
 * ztb_arena_error() reports it, so a builder can check once at the end.
 * An arena is not thread-safe while it is being filled; what it holds may be
 * read from any number of threads afterwards.
 */
#ifndef ZTB_ARENA_H
#define ZTB_ARENA_H

#include <stdarg.h>
#include <stddef.h>

#include <ztb/error.h>

struct ztb_arena_chunk;

typedef struct ztb_arena {
    struct ztb_arena_chunk *head; /* current chunk (newest) */
    size_t total;                 /* bytes of all chunks, headers included */
    size_t max;                   /* most bytes total may reach */
    ztb_err err;                  /* sticky first error */
} ztb_arena;

/* An empty arena whose chunks may total at most max bytes. Allocates lazily. */
void ztb_arena_init(ztb_arena *a, size_t max);

/*
 * n zeroed bytes aligned to 16, valid until ztb_arena_free(). NULL when n is
 * 0 is never returned (a zero-size request gets a distinct minimal block).
 * NULL on failure, which sticks.
 */
void *ztb_arena_alloc(ztb_arena *a, size_t n);

/* count * size zeroed bytes, with the multiplication checked (TOO_LARGE). */
void *ztb_arena_calloc(ztb_arena *a, size_t count, size_t size);

/* A NUL-terminated copy of the n bytes at p (p may hold NULs; NULL if n is 0 and p is NULL is
 * fine). */
char *ztb_arena_memdup(ztb_arena *a, const void *p, size_t n);

/* A copy of the NUL-terminated string s. */
char *ztb_arena_strdup(ztb_arena *a, const char *s);

/* A formatted string. NULL on failure (sticky). */
char *ztb_arena_printf(ztb_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The sticky error, ZTB_OK if none. */
static inline ztb_err ztb_arena_error(const ztb_arena *a)
{
    return a->err;
}

/* Release every chunk; everything the arena handed out is invalid. */
void ztb_arena_free(ztb_arena *a);

#endif /* ZTB_ARENA_H */
