/*
 * fuzz_redis_info.c - the INFO field reader and the version comparison on
 * arbitrary replies. Checks, beyond memory safety: a value found is
 * NUL-terminated within its buffer, has no line break, and occurs in the
 * input right after "NAME:"; a version accepted parses as two numbers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/store/redis_preflight.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"redis_version", "maxmemory_policy", "loading", "a"};
    const char *info = (const char *)data;
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        char v[32];
        if (!redis_info_field(info, size, names[k], v, sizeof(v))) {
            if (v[0] != '\0')
                abort();
            continue;
        }
        size_t vlen = strnlen(v, sizeof(v));
        if (vlen == sizeof(v) || strchr(v, '\n') != NULL)
            abort();
        size_t nlen = strlen(names[k]);
        int seen = 0;
        for (size_t i = 0; i + nlen + 1 + vlen <= size && !seen; i++)
            seen = (i == 0 || data[i - 1] == '\n') && memcmp(data + i, names[k], nlen) == 0 &&
                   data[i + nlen] == ':' && memcmp(data + i + nlen + 1, v, vlen) == 0;
        if (!seen)
            abort();
        if (redis_version_at_least(v, 6, 2) && strchr(v, '.') == NULL)
            abort();
    }
    return 0;
}
