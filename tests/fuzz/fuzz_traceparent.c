/*
 * fuzz_traceparent.c - the W3C traceparent reader (broker/http/traceparent.c)
 * on arbitrary bytes: every request's header goes through it. Beyond memory
 * safety: what it accepts is 55 bytes and its trace id is 32 lowercase hex
 * digits copied from the value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/http/traceparent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char id[TRACE_ID_HEX + 1];
    int ok = traceparent_read((const char *)data, size, id);
    if (!ok) {
        if (id[0] != '\0')
            abort();
        return 0;
    }
    if (size != TRACEPARENT_LEN || strlen(id) != TRACE_ID_HEX ||
        memcmp(id, data + 3, TRACE_ID_HEX) != 0 || strspn(id, "0123456789abcdef") != TRACE_ID_HEX)
        abort();
    return 0;
}
