/*
 * fuzz_signer_msg.c - the signer's record checks (signer_req_decode, and
 * signer_handle with no keys loaded) and the HTTP process's answer checks
 * (signer_resp_decode) on arbitrary records. Checks, beyond memory safety:
 * an accepted request is exactly the record; an answer to a refused record
 * carries no data; an accepted answer's len is within its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/signer/signer.h"
#include "broker/signer/signer_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct signer_state out;
    struct signer_req q;
    if (signer_req_decode(data, size, &q, NULL) == ZTB_OK &&
        (size != sizeof(q) || memcmp(&q, data, size) != 0))
        abort();
    size_t n = signer_handle(data, size, &out, sizeof(out));
    if (n != sizeof(struct signer_resp) && n != sizeof(struct signer_state))
        abort();
    const struct signer_resp *r = (const struct signer_resp *)&out;
    if (n == sizeof(struct signer_resp) && r->err != ZTB_OK && r->len != 0)
        abort();
    /* the same bytes as an answer to each kind of request */
    for (uint32_t op = SIGNER_OP_SIGN; op <= SIGNER_OP_RETIRE; op++) {
        struct signer_req req;
        memset(&req, 0, sizeof(req));
        req.op = op;
        req.seq = 1;
        memset(req.kid, 'A', 43);
        size_t want = signer_resp_size(op);
        void *ans = malloc(want);
        if (ans == NULL)
            abort();
        if (signer_resp_decode(&req, data, size, ans, want) == ZTB_OK) {
            if (want == sizeof(struct signer_resp) &&
                ((struct signer_resp *)ans)->len > SIGNER_DATA_MAX)
                abort();
            if (want == sizeof(struct signer_state) &&
                ((struct signer_state *)ans)->len >= SIGNER_TEXT_MAX)
                abort();
        }
        free(ans);
    }
    return 0;
}
