/*
 * arena.c - bump allocator (see arena.h).
 *
 * Chunks are linked newest first. A request that does not fit the current
 * chunk starts a new one of max(64 KiB, request) bytes; the tail of the old
 * chunk is abandoned (at most one small request's worth per chunk). All size
 * arithmetic is checked against the arena's maximum before it is done.
 *
 * Must never: hand out memory beyond the arena's maximum, or memory that
 * overlaps another allocation.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define ARENA_ALIGN 16
#define ARENA_CHUNK 65536

struct ztb_arena_chunk {
    struct ztb_arena_chunk *next;
    size_t cap;  /* usable bytes after the header */
    size_t used; /* bytes handed out */
    /* keep data 16-aligned whatever the header's size */
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

void ztb_arena_init(ztb_arena *a, size_t max)
{
    memset(a, 0, sizeof(*a));
    a->max = max < SIZE_MAX / 4 ? max : SIZE_MAX / 4;
}

static void *fail(ztb_arena *a, ztb_err e)
{
    if (a->err == ZTB_OK)
        a->err = e;
    return NULL;
}

void *ztb_arena_alloc(ztb_arena *a, size_t n)
{
    if (a->err != ZTB_OK)
        return NULL;
    if (n == 0)
        n = 1;
    if (n > a->max)
        return fail(a, ZTB_ERR_TOO_LARGE);
    size_t rounded = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    struct ztb_arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < rounded) {
        size_t cap = rounded > ARENA_CHUNK ? rounded : ARENA_CHUNK;
        size_t bytes = sizeof(struct ztb_arena_chunk) + cap;
        if (bytes > a->max - a->total || a->total > a->max) {
            /* a last chunk of exactly what is asked may still fit */
            cap = rounded;
            bytes = sizeof(struct ztb_arena_chunk) + cap;
            if (a->total > a->max || bytes > a->max - a->total)
                return fail(a, ZTB_ERR_TOO_LARGE);
        }
        c = malloc(bytes);
        if (c == NULL)
            return fail(a, ZTB_ERR_NOMEM);
        c->next = a->head;
        c->cap = cap;
        c->used = 0;
        a->head = c;
        a->total += bytes;
    }
    void *p = c->data + c->used;
    c->used += rounded;
    memset(p, 0, n);
    return p;
}

void *ztb_arena_calloc(ztb_arena *a, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return fail(a, ZTB_ERR_TOO_LARGE);
    return ztb_arena_alloc(a, count * size);
}

char *ztb_arena_memdup(ztb_arena *a, const void *p, size_t n)
{
    if (n == SIZE_MAX)
        return fail(a, ZTB_ERR_TOO_LARGE);
    char *d = ztb_arena_alloc(a, n + 1);
    if (d != NULL && n > 0)
        memcpy(d, p, n);
    return d;
}

char *ztb_arena_strdup(ztb_arena *a, const char *s)
{
    if (s == NULL)
        return fail(a, ZTB_ERR_INVALID_ARG);
    return ztb_arena_memdup(a, s, strlen(s));
}

char *ztb_arena_printf(ztb_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = NULL;
    if (n < 0) {
        fail(a, ZTB_ERR_INTERNAL);
    } else {
        d = ztb_arena_alloc(a, (size_t)n + 1);
        if (d != NULL)
            vsnprintf(d, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    return d;
}

void ztb_arena_free(ztb_arena *a)
{
    struct ztb_arena_chunk *c = a->head;
    while (c != NULL) {
        struct ztb_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    size_t max = a->max;
    memset(a, 0, sizeof(*a));
    a->max = max;
}
