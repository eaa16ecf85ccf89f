/*
 * fuzz_claims.c - the access token claims reader on arbitrary payloads,
 * differentially against jansson.
 *
 * Checks, beyond memory safety: what the reader accepts is JSON jansson
 * accepts too (JSON_REJECT_DUPLICATES), with the required claims present,
 * every string NUL-free and without control characters, exp after iat, and
 * the authorization detail kept as a JSON object jansson can read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wire/claims.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct claims c;
    if (size > CLAIMS_PAYLOAD_MAX + 16)
        return 0;
    if (claims_parse(data, size, &c) != ZTB_OK)
        return 0;
    static const enum claims_str required[] = {CL_ISS,   CL_SUB,   CL_AUD,        CL_JTI,
                                               CL_SCOPE, CL_AGENT, CL_DETAIL_TYPE};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (claims_str(&c, required[i]) == NULL)
            abort();
    for (int s = 0; s < CL_NSTR; s++) {
        const char *v = claims_str(&c, (enum claims_str)s);
        if (v == NULL)
            continue;
        if (strlen(v) != claims_len(&c, (enum claims_str)s))
            abort();
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
            if (*p < 0x20 || *p == 0x7f)
                abort();
    }
    if (c.exp <= c.iat || c.details_len == 0)
        abort();
    json_error_t err;
    if (memchr(data, '\0', size) == NULL) { /* jansson takes a NUL after a number */
        json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
        if (j == NULL && strstr(err.text, "overflow") == NULL &&
            strstr(err.text, "too big") == NULL)
            abort(); /* accepted what is not JSON */
        json_decref(j);
    }
    json_t *d = json_loadb(c.text + c.details_off, c.details_len, JSON_REJECT_DUPLICATES, &err);
    if (d == NULL && strstr(err.text, "overflow") == NULL && strstr(err.text, "too big") == NULL)
        abort();
    if (d != NULL && !json_is_object(d))
        abort();
    json_decref(d);
    return 0;
}
