/*
 * fuzz_assertion.c - the client-assertion claims reader (broker/auth/assertion.c)
 * on arbitrary bytes: the broker runs it on every assertion before its
 * signature is checked. Beyond memory safety: what it accepts is strict JSON
 * (the common reader agrees), and a claim it reports is NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/assertion.h"
#include "common/json_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct assertion_claims c;
    static struct jr r;
    if (size > 8192)
        return 0;
    const char *why = NULL;
    ztb_err rv = assertion_claims_read(data, size, &c, &why);
    if (rv != ZTB_OK && why == NULL)
        abort(); /* a refusal names its problem */
    if (rv != ZTB_OK)
        return 0;
    jr_init(&r, data, size);
    if (jr_skip(&r) != ZTB_OK || jr_finish(&r) != ZTB_OK)
        abort(); /* accepted what the reader refuses */
    if ((c.has_iss && memchr(c.iss, '\0', sizeof(c.iss)) == NULL) ||
        (c.has_jti && memchr(c.jti, '\0', sizeof(c.jti)) == NULL))
        abort();
    return 0;
}
