/*
 * json_reader.h - the one strict, allocation-free pull reader for untrusted JSON.
 *
 * Every JSON text that reaches ztb from outside before it is authenticated
 * is read with this reader, never with jansson: the JOSE header of every JWS
 * (pki/jws_header.c is a thin layer on it), the claims of every access token
 * a gateway verifies and the revocation messages from Redis (libztb), the
 * unverified client assertion the broker reads to learn who claims to have
 * signed it (broker/auth/assertion.c), DPoP proof claims (pki/dpop.c) and
 * authorization_details (broker/tokens/authz_details.c). It walks the bytes once
 * through a bounded ztb_cursor (model: s2n's stuffer), hands back member
 * names and values as the caller asks for them, and never allocates, so a
 * token costs microseconds and garbage costs less. Strings are decoded and
 * re-encoded with common/utf8.c, the project's one UTF-8 codec.
 *
 * Strict means: one value and nothing after it but whitespace; strings of
 * valid UTF-8 with valid escapes (no lone surrogates, no \u0000, no raw
 * control characters); numbers that follow the JSON grammar; no duplicate
 * member names in any object, compared after unescaping ("alg" and
 * "\u0061lg" are one name); at most `depth` levels of nesting, `names`
 * member names in the open objects together, and member names of at most
 * `name_max` bytes (JR_DEPTH, JR_NAMES and JR_NAME_MAX unless
 * jr_init_limits set smaller ones).
 *
 * Usage (errors omitted):
 *
 *   struct jr r;
 *   jr_init(&r, text, len);
 *   jr_enter_object(&r);
 *   ztb_span name;
 *   int more;
 *   while (jr_next_member(&r, &name, &more) == ZTB_OK && more) {
 *       if (ztb_span_eq_str(name, "exp")) jr_read_int(&r, &exp);
 *       else jr_skip(&r);
 *   }
 *   jr_finish(&r);
 *
 * Errors: JSON for anything that is not strict JSON (including a duplicate
 * name and a value of another type than the read asked for), TOO_LARGE when a
 * limit above is exceeded or a string does not fit the caller's buffer,
 * MALFORMED from jr_read_int for a number that is not an integer in range.
 * After an error the reader's position is unspecified: stop reading (two
 * exceptions callers may rely on: a TOO_LARGE from jr_read_string and a
 * MALFORMED from jr_read_int leave the reader just after the value, which
 * was valid JSON). jr_why names the problem in a few words for a 400
 * message ("duplicate member name", "lone UTF-16 surrogate", ...), and
 * jr_where says at which byte.
 */
#ifndef ZTB_JSON_READER_H
#define ZTB_JSON_READER_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/cursor.h"

#define JR_DEPTH    16   /* default and most nesting levels */
#define JR_NAMES    128  /* default and most names in the open objects */
#define JR_NAME_MAX 128  /* default bytes in one member name */
#define JR_ARENA    4096 /* bytes for the open objects' names, NULs included */

typedef enum jr_type {
    JR_NONE = 0, /* end of input, or a byte no value starts with */
    JR_OBJECT,
    JR_ARRAY,
    JR_STRING,
    JR_NUMBER,
    JR_TRUE,
    JR_FALSE,
    JR_NULL,
} jr_type;

/* The reader's state: the caller owns it (usually on its stack) and reads it
 * only through the functions below. */
struct jr {
    ztb_cursor c;
    int depth;
    int max_depth; /* limits: see jr_init_limits */
    size_t max_names;
    size_t name_max;
    const char *why;           /* the last problem, a static string, or NULL */
    size_t why_at;             /* byte offset where it was found */
    uint8_t kind[JR_DEPTH];    /* '{' or '[' of each open container */
    uint8_t first[JR_DEPTH];   /* 1 until the container's first element was read */
    uint16_t names0[JR_DEPTH]; /* nnames when each open object started */
    uint16_t arena0[JR_DEPTH]; /* arena_len when each open object started */
    size_t nnames;
    size_t arena_len;
    uint16_t name_off[JR_NAMES];
    uint16_t name_len[JR_NAMES];
    uint8_t arena[JR_ARENA];
};

/* Start reading len bytes at data (borrowed: keep them alive while reading). */
void jr_init(struct jr *r, const void *data, size_t len);

/*
 * jr_init with other limits: depth at most JR_DEPTH, names at most
 * JR_NAMES, name_max at most JR_ARENA - 1 (larger values are clamped).
 */
void jr_init_limits(struct jr *r, const void *data, size_t len, int depth, size_t names,
                    size_t name_max);

/* The type of the next value (after whitespace), without consuming it. */
jr_type jr_peek(struct jr *r);

/* Consume '{'. JSON if the next value is not an object. */
ztb_err jr_enter_object(struct jr *r);

/*
 * Move to the next member of the innermost open object: *more = 1 and name
 * set (unescaped, NUL-terminated, valid until the object closes; the caller
 * then reads or skips the value), or *more = 0 when the object closed.
 */
ztb_err jr_next_member(struct jr *r, ztb_span *name, int *more);

/* Consume '['. JSON if the next value is not an array. */
ztb_err jr_enter_array(struct jr *r);

/* Move to the next element of the innermost open array (*more = 0: it closed). */
ztb_err jr_next_element(struct jr *r, int *more);

/*
 * Read a string value, unescaped, into out (cap bytes, NUL-terminated) and
 * set *len (without the NUL; len may be NULL). out NULL: validate and skip.
 * TOO_LARGE if it does not fit.
 */
ztb_err jr_read_string(struct jr *r, char *out, size_t cap, size_t *len);

/* Read an integer (no fraction or exponent) in int64 range. */
ztb_err jr_read_int(struct jr *r, int64_t *v);

/* Read any number as a double. */
ztb_err jr_read_number(struct jr *r, double *v);

/* Read true or false. */
ztb_err jr_read_bool(struct jr *r, int *v);

/* Skip one value of any type (validated like everything else). */
ztb_err jr_skip(struct jr *r);

/* Skip one value and set *raw to its exact bytes in the input. */
ztb_err jr_raw(struct jr *r, ztb_span *raw);

/* Succeed only if every container is closed and nothing but whitespace is left. */
ztb_err jr_finish(struct jr *r);

/* A mark at the next value (whitespace skipped), for jr_since. */
size_t jr_mark(struct jr *r);

/* The exact input bytes from mark to the reader's position (borrowed). */
ztb_span jr_since(const struct jr *r, size_t mark);

/*
 * The last problem in a few words (a static string: "duplicate member name",
 * "nested too deeply", ...), or "invalid JSON" if none was recorded.
 */
const char *jr_why(const struct jr *r);

/* The byte offset at which jr_why's problem was found. */
size_t jr_where(const struct jr *r);

#endif /* ZTB_JSON_READER_H */
