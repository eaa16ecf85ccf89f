/*
 * json_depth.h - refuse deeply nested JSON before a parser sees it.
 *
 * jansson recurses per nesting level; text nested thousands deep is not a
 * request but an attack on the parser's stack. This scan counts '{' and '['
 * outside strings (escapes honoured) without allocating.
 */
#ifndef ZTB_JSON_DEPTH_H
#define ZTB_JSON_DEPTH_H

#include <stddef.h>

/* 1 if the JSON text p[0..n) never nests deeper than max; 0 otherwise. */
int ztb_json_depth_ok(const void *p, size_t n, int max);

#endif /* ZTB_JSON_DEPTH_H */
