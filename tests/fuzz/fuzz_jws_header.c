/*
 * fuzz_jws_header.c - the strict JOSE header parser on arbitrary bytes,
 * differentially against jansson.
 *
 * Checks, beyond memory safety: an accepted header's fields are consistent;
 * whatever this parser accepts, jansson (with JSON_REJECT_DUPLICATES) also
 * accepts, except numbers too large for jansson; and whatever jansson accepts
 * as an object this parser does not call invalid JSON (it may still refuse it
 * as a header, for its limits or types). The one known difference: jansson
 * accepts a NUL byte right after a number, which is not JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pki/jws_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ztb_jws_header h;
    if (size > ZTB_JWS_HEADER_MAX)
        return 0;
    ztb_err rv = ztb_jws_header_parse(data, size, &h);
    json_error_t err;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    if (rv == ZTB_OK) {
        if (!h.has_alg || (h.has_kid && strlen(h.kid) != h.kid_len) ||
            (h.has_typ && strlen(h.typ) != h.typ_len) ||
            ((h.present & ZTB_JWS_HDR_JWK) && h.jwk_off + h.jwk_len > h.raw_len))
            abort();
        if (j == NULL && strstr(err.text, "overflow") == NULL &&
            strstr(err.text, "too big") == NULL)
            abort(); /* we accepted what is not JSON */
        if (j != NULL && !json_is_string(json_object_get(j, "alg")))
            abort();
    }
    /* jansson 2.14 lets a NUL byte straight after a number through ("[1\0]"): a
     * byte no JSON text may contain, which this parser rightly refuses */
    if (j != NULL && json_is_object(j) && rv == ZTB_ERR_JSON && memchr(data, 0, size) == NULL)
        abort(); /* we called valid JSON invalid */
    json_decref(j);
    return 0;
}
