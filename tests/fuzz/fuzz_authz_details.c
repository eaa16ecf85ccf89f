/*
 * fuzz_authz_details.c - authorization_details checking (broker/tokens/authz_details.c)
 * on arbitrary bytes, as /v1/token runs it on the form field. Beyond memory
 * safety: what it accepts is strict JSON within its depth, and jansson then
 * parses it (token.c hands it on through the gate), numbers beyond
 * jansson's range aside.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/tokens/authz_details.h"
#include "common/json_gate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AUTHZ_DETAILS_MAX + 16)
        return 0;
    char why[256];
    int ok = authz_details_check((const char *)data, size, "payments:refund", "payments", NULL, why,
                                 sizeof(why));
    if (!ok) {
        if (why[0] == '\0')
            abort(); /* a refusal names its problem */
        return 0;
    }
    json_t *j = NULL;
    char gwhy[200];
    if (ztb_json_gate_load(data, size, AUTHZ_DETAILS_MAX, AUTHZ_DETAILS_DEPTH, 0, &j, gwhy,
                           sizeof(gwhy)) != ZTB_OK) {
        if (strstr(gwhy, "overflow") == NULL && strstr(gwhy, "too big") == NULL)
            abort(); /* the strict check passed what the gate refuses */
        return 0;
    }
    if (!json_is_array(j) || json_array_size(j) != 1 || !json_is_object(json_array_get(j, 0)))
        abort();
    json_decref(j);
    return 0;
}
