/*
 * json_depth.c - nesting-depth check for untrusted JSON (see json_depth.h).
 * The text need not be valid JSON: the scan only bounds what a parser would
 * recurse into.
 */
#include <stdint.h>

#include "json_depth.h"

int ztb_json_depth_ok(const void *text, size_t n, int max)
{
    const uint8_t *p = text;
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return 0;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 1;
}
