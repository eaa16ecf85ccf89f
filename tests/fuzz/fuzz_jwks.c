/*
 * fuzz_jwks.c - the strict JWKS parser on arbitrary bytes.
 *
 * Checks, beyond memory safety: an accepted set is non-empty, within its
 * limits, finds each of its keys by its kid, and holds only public P-256
 * keys; with thumbprint kids required, every kid is its key's thumbprint.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pki/jwk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const ztb_keyset *ks, int thumb)
{
    size_t n = ztb_keyset_count(ks);
    if (n == 0 || n > ZTB_KEYSET_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        const char *kid = ztb_keyset_kid_at(ks, i);
        const ztb_key *k = ztb_keyset_at(ks, i);
        if (ztb_keyset_find(ks, kid, strlen(kid)) != k || ztb_key_has_private(k) ||
            ztb_key_alg(k) != ZTB_ALG_ES256)
            abort();
        if (thumb && strcmp(kid, ztb_key_kid(k)) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int thumb = 0; thumb < 2; thumb++) {
        ztb_keyset *ks = NULL;
        if (ztb_jwks_parse((const char *)data, size, thumb ? 0 : ZTB_JWK_KID_ANY, &ks) == ZTB_OK)
            check(ks, thumb);
        ztb_keyset_free(ks);
    }
    return 0;
}
