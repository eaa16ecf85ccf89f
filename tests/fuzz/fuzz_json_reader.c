/*
 * fuzz_json_reader.c - the strict pull reader on arbitrary bytes,
 * differentially against jansson (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES).
 *
 * What the reader accepts, jansson accepts (numbers too large for jansson
 * aside); what jansson accepts, the reader accepts unless one of its own
 * limits (depth, names, name length) refused it with TOO_LARGE. Known
 * difference: jansson accepts a NUL byte right after a number, so inputs with
 * NUL bytes are only checked for memory safety.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/json_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jr r;
    if (size > 65536)
        return 0;
    jr_init(&r, data, size);
    ztb_err rv = jr_skip(&r);
    if (rv == ZTB_OK)
        rv = jr_finish(&r);
    if (memchr(data, '\0', size) != NULL)
        return 0;
    json_error_t err;
    json_t *j =
        json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (rv == ZTB_OK && j == NULL && strstr(err.text, "overflow") == NULL &&
        strstr(err.text, "too big") == NULL)
        abort(); /* accepted what is not JSON */
    if (rv != ZTB_OK && rv != ZTB_ERR_TOO_LARGE && j != NULL)
        abort(); /* refused JSON for a reason other than its limits */
    json_decref(j);
    return 0;
}
