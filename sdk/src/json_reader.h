/*
 * json_reader.h - a strict, allocation-free pull reader for untrusted JSON.
 *
 * libztb reads two kinds of JSON on its hot or exposed paths: the claims of
 * every access token a gateway verifies, and the revocation messages that
 * arrive from Redis. Both are read with this reader instead of building a
 * jansson tree: it walks the bytes once through a bounded ztb_cursor, hands
 * back member names and values as the caller asks for them, and never
 * allocates, so a token costs microseconds and garbage costs less.
 *
 * Strict means the same as for JOSE headers (pki/jws_header.h): one value and
 * nothing after it but whitespace; strings of valid UTF-8 with valid escapes
 * (no lone surrogates, no \u0000, no raw control characters); numbers that
 * follow the JSON grammar; no duplicate member names in any object, compared
 * after unescaping; at most JR_DEPTH levels of nesting, JR_NAMES member names
 * in the open objects together, and member names of at most JR_NAME_MAX bytes.
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
 * After an error the reader's position is unspecified: stop reading.
 */
#ifndef ZTB_SDK_JSON_READER_H
#define ZTB_SDK_JSON_READER_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/cursor.h"

#define JR_DEPTH    16
#define JR_NAMES    128
#define JR_NAME_MAX 128
#define JR_ARENA    4096

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

struct jr {
    ztb_cursor c;
    int depth;
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

#endif /* ZTB_SDK_JSON_READER_H */
