/*
 * fuzz_json_body.c - the JSON bodies that arrive before authentication
 * (/v1/enroll, /v1/renew: http_req_json_strings, the strict reader) on
 * arbitrary bytes. Beyond memory safety: a refusal is a 400 that says why,
 * and an acceptance is strict JSON by the common reader too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/http/http.h"
#include "common/json_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"join_token", "csr", "client_assertion"};
    static struct jr r;
    if (size > 16384)
        return 0;
    struct http_req req = {.body = data, .body_len = size, .content_type = "application/json"};
    struct http_resp resp;
    memset(&resp, 0, sizeof(resp));
    ztb_buf_init(&resp.body, 4096);
    char *vals[3];
    size_t members;
    int ok = http_req_json_strings(&req, &resp, names, 3, vals, &members);
    if (!ok) {
        if (resp.status != 400 || strstr(ztb_buf_cstr(&resp.body), "strict JSON") == NULL)
            abort();
    } else {
        jr_init(&r, data, size);
        if (jr_skip(&r) != ZTB_OK || jr_finish(&r) != ZTB_OK)
            abort();
        for (size_t i = 0; i < 3; i++)
            if (vals[i] != NULL && strlen(vals[i]) > size)
                abort();
        http_json_strings_free(vals, 3);
    }
    ztb_buf_free(&resp.body);
    return 0;
}
