/*
 * fuzz_dpop.c - DPoP proof checking on arbitrary bytes. Beyond memory
 * safety: anything accepted must name the request it was checked against.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pki/dpop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    ztb_dpop_result r;
    ztb_err rv =
        ztb_dpop_proof_check((const char *)data, size, "POST", "https://broker.example/v1/token",
                             NULL, 1767225600, 60, 5, &r);
    if (rv == ZTB_OK && (strlen(r.jkt) != ZTB_KID_LEN || r.jti[0] == '\0'))
        abort();
    return 0;
}
