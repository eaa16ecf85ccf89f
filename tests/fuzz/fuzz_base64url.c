/*
 * fuzz_base64url.c - strict base64url decode on arbitrary bytes.
 *
 * Checks, beyond memory safety: whatever decodes re-encodes to exactly the
 * input (one spelling per value), and encode-then-decode is the identity.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    size_t cap = ztb_b64url_decoded_max(size);
    uint8_t *dec = malloc(cap ? cap : 1);
    char *enc = malloc(ztb_b64url_encoded_len(size) + 1);
    if (dec == NULL || enc == NULL)
        abort();
    size_t n = 0, en = 0;
    if (ztb_b64url_decode((const char *)data, size, dec, cap, &n) == ZTB_OK) {
        if (ztb_b64url_encode(dec, n, enc, ztb_b64url_encoded_len(n) + 1, &en) != ZTB_OK)
            abort();
        if (en != size || memcmp(enc, data, size) != 0)
            abort(); /* two spellings decode to one value */
    }
    /* and the other direction on the raw bytes */
    char *enc2 = malloc(ztb_b64url_encoded_len(size) + 1);
    uint8_t *dec2 = malloc(size ? size : 1);
    if (enc2 == NULL || dec2 == NULL)
        abort();
    if (ztb_b64url_encode(data, size, enc2, ztb_b64url_encoded_len(size) + 1, &en) != ZTB_OK)
        abort();
    if (ztb_b64url_decode(enc2, en, dec2, size, &n) != ZTB_OK || n != size ||
        (size && memcmp(dec2, data, size) != 0))
        abort();
    free(dec);
    free(enc);
    free(enc2);
    free(dec2);
    return 0;
}
