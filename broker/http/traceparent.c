/*
 * traceparent.c - the W3C traceparent header, version 00 only (see
 * traceparent.h). Reads a fixed-length value by position; no allocation.
 * Must never: accept uppercase hex, another version, an all-zero id, or a
 * value of any other length (trailing data included).
 */
#include <string.h>

#include "broker/http/traceparent.h"

/* 1 if s[0..n) is lowercase hex and not all '0'. */
static int hex_id(const char *s, size_t n)
{
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
        nonzero |= c != '0';
    }
    return nonzero;
}

static int hex2(const char *s)
{
    for (int i = 0; i < 2; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int traceparent_read(const char *value, size_t len, char trace_id[TRACE_ID_HEX + 1])
{
    trace_id[0] = '\0';
    /* 00-<32>-<16>-<2> */
    if (value == NULL || len != TRACEPARENT_LEN || value[0] != '0' || value[1] != '0' ||
        value[2] != '-' || value[35] != '-' || value[52] != '-')
        return 0;
    if (!hex_id(value + 3, TRACE_ID_HEX) || !hex_id(value + 36, 16) || !hex2(value + 53))
        return 0;
    memcpy(trace_id, value + 3, TRACE_ID_HEX);
    trace_id[TRACE_ID_HEX] = '\0';
    return 1;
}
