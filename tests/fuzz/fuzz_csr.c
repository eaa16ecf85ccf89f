/*
 * fuzz_csr.c - the CSR path on arbitrary bytes: the checks the broker runs
 * on an enrolling agent's request, then issuing and verifying.
 *
 * Checks, beyond memory safety: a CSR that passes for agent a1 yields a
 * public P-256 key, the CA issues an identity document for it, and that
 * document verifies as a1's. Also feeds the bytes to identity verification,
 * which must never accept them (no document the fuzzer makes chains to a CA
 * created at start).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pki/ca.h"
#include "pki/csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 1700000000LL
static ztb_ca *ca;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ca == NULL) {
        ztb_ca_opts o = {.trust_domain = "example.org"};
        if (ztb_ca_create(&o, T0, &ca) != ZTB_OK)
            abort();
    }
    ztb_key *pub = NULL;
    char name[ZTB_AGENT_NAME_MAX + 1];
    if (ztb_csr_check(data, size, "spiffe://example.org/agent/a1", &pub) == ZTB_OK) {
        if (pub == NULL || ztb_key_has_private(pub))
            abort();
        char store[8192];
        ztb_buf doc;
        ztb_buf_init_fixed(&doc, store, sizeof(store));
        if (ztb_ca_issue(ca, data, size, "a1", T0 + 1, 0, &doc) != ZTB_OK)
            abort();
        if (ztb_ca_verify_identity(ca, doc.data, doc.len, T0 + 2, name, sizeof(name)) != ZTB_OK ||
            strcmp(name, "a1") != 0)
            abort();
    }
    ztb_key_free(pub);
    if (ztb_ca_verify_identity(ca, data, size, T0 + 2, name, sizeof(name)) == ZTB_OK)
        abort();
    return 0;
}
