/*
 * fuzz_route_check.c - route_check_original (/v1/authorize: which original
 * request a gateway's check request names) on arbitrary raw targets and
 * header counts. The first byte picks how many times each original-request
 * header was "sent" (0, 1 or 2); the rest is the target. Checks, beyond
 * memory safety: the prefix form is taken only for a target that starts
 * with exactly "/v1/authorize/" and no header, and its original URI is the
 * target's own bytes from that '/' on (nothing decoded or dropped); the
 * header form only for the path "/v1/authorize" (maybe with a query) and
 * each header once; anything else is refused with a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/route_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int n_method = data[0] % 3, n_uri = (data[0] / 3) % 3;
    char *target = malloc(size);
    if (target == NULL)
        return 0;
    memcpy(target, data + 1, size - 1);
    target[size - 1] = '\0'; /* a C string, as the HTTP server hands it over */
    struct route_check o;
    const char *why = NULL;
    ztb_err rv = route_check_original("POST", target, n_method ? "PUT" : NULL, n_method,
                                      n_uri ? "/x" : NULL, n_uri, &o, &why);
    static const char prefix[] = "/v1/authorize/";
    if (rv == ZTB_OK) {
        if (o.prefix_form) {
            if (strncmp(target, prefix, sizeof(prefix) - 1) != 0 || n_method != 0 || n_uri != 0 ||
                o.uri != target + sizeof(prefix) - 2 || strcmp(o.method, "POST") != 0)
                abort();
        } else {
            size_t n = strlen("/v1/authorize");
            if (strncmp(target, "/v1/authorize", n) != 0 ||
                (target[n] != '\0' && target[n] != '?') || n_method != 1 || n_uri != 1 ||
                strcmp(o.method, "PUT") != 0 || strcmp(o.uri, "/x") != 0)
                abort();
        }
    } else if (rv != ZTB_ERR_INVALID_REQUEST || why == NULL || o.uri != NULL) {
        abort();
    }
    free(target);
    return 0;
}
