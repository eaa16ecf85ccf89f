/*
 * fuzz_dpop.c - DPoP proof checking on arbitrary bytes, and the proof's
 * claims reader (ztb_dpop_claims_read, the strict reader) on the same bytes:
 * random bytes seldom carry a valid signature, so the claims get their own
 * run. Beyond memory safety: anything accepted must name the request it was
 * checked against, and a claim read is NUL-terminated.
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
    static ztb_dpop_claims c;
    if (ztb_dpop_claims_read(data, size, &c) == ZTB_OK &&
        ((c.has_jti && memchr(c.jti, '\0', sizeof(c.jti)) == NULL) ||
         (c.has_htu && memchr(c.htu, '\0', sizeof(c.htu)) == NULL)))
        abort();
    return 0;
}
