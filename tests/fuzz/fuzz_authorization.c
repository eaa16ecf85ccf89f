/*
 * fuzz_authorization.c - the Authorization header reader
 * (wire/authorization.c) on arbitrary bytes: every gateway request's header
 * goes through it. Beyond memory safety: a token read is the header's end,
 * non-empty, token68 only, after the scheme and its spaces.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wire/authorization.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *h = malloc(size + 1);
    if (h == NULL)
        return 0;
    memcpy(h, data, size);
    h[size] = '\0';
    const char *t = NULL;
    size_t n = 0;
    ztb_auth_scheme s = ztb_wire_authorization_read(h, &t, &n);
    if (s == ZTB_SCHEME_NONE) {
        if (t != NULL || n != 0)
            abort();
    } else {
        size_t skip = s == ZTB_SCHEME_BEARER ? 6 : 4;
        if (t == NULL || n == 0 || t + n != h + strlen(h) || t <= h + skip ||
            strspn(h + skip, " ") != (size_t)(t - h - skip) ||
            strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") !=
                n ||
            t[0] == '=' ||
            (strchr(t, '=') != NULL && strspn(strchr(t, '='), "=") != strlen(strchr(t, '='))))
            abort();
    }
    free(h);
    return 0;
}
