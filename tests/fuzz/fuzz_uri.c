/*
 * fuzz_uri.c - the comparison form of an http(s) URI (common/uri.c) on
 * arbitrary bytes: every DPoP proof's htu goes through it. Beyond memory
 * safety: a form is an http(s) URI without query or fragment that fits its
 * buffer, and it is its own form (normalizing twice changes nothing).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a[ZTB_URI_FORM_MAX + 1], b[ZTB_URI_FORM_MAX + 1];
    size_t n = ztb_uri_htu_form((const char *)data, size, a, sizeof(a));
    if (n == 0)
        return 0;
    if (strlen(a) != n || strpbrk(a, "?#") != NULL ||
        (strncmp(a, "https://", 8) != 0 && strncmp(a, "http://", 7) != 0))
        abort();
    size_t m = ztb_uri_htu_form(a, n, b, sizeof(b));
    if (m != n || memcmp(a, b, n) != 0)
        abort();
    return 0;
}
