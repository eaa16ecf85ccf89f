/*
 * json_gate.c - size, NUL, depth and duplicate checks before jansson
 * (see json_gate.h). The depth scan need not see valid JSON: it only bounds
 * what jansson would recurse into; jansson then judges the syntax.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/guard.h"
#include "common/json_gate.h"

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

ztb_err ztb_json_gate_load(const void *text, size_t n, size_t max_len, int max_depth, size_t flags,
                           json_t **out, char *why, size_t cap)
{
    ZTB_ENSURE(out != NULL && (text != NULL || n == 0), ZTB_ERR_INVALID_ARG);
    *out = NULL;
    char scratch[8];
    if (why == NULL || cap == 0) {
        why = scratch; /* the caller does not want the reason */
        cap = sizeof(scratch);
    }
    why[0] = '\0';
    if (n > max_len) {
        snprintf(why, cap, "JSON text too large (at most %zu bytes)", max_len);
        return ZTB_ERR_TOO_LARGE;
    }
    if (n > 0 && memchr(text, '\0', n) != NULL) {
        snprintf(why, cap, "JSON text contains a NUL byte");
        return ZTB_ERR_JSON;
    }
    if (!ztb_json_depth_ok(text, n, max_depth)) {
        snprintf(why, cap, "JSON nested too deeply (at most %d levels)", max_depth);
        return ZTB_ERR_TOO_LARGE;
    }
    json_error_t e;
    json_t *j = json_loadb(n > 0 ? text : "", n, flags | JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        snprintf(why, cap, "invalid JSON at %d:%d: %s", e.line, e.column, e.text);
        return ZTB_ERR_JSON;
    }
    *out = j;
    return ZTB_OK;
}
