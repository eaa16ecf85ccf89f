/*
 * fuzz_authzen.c - authzen_parse (POST /access/v1/evaluation(s)) on
 * arbitrary bodies, both endpoints. Checks, beyond memory safety: an
 * accepted request holds 1..AUTHZEN_MAX_EVALUATIONS evaluations, each with
 * every part present and printable, and a refusal names its problem and
 * keeps nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authzen/authzen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int printable(const char *s, int empty_ok)
{
    size_t n = strlen(s);
    if (n == 0)
        return empty_ok;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return n <= AUTHZEN_FIELD_MAX;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int batch = 0; batch <= 1; batch++) {
        struct authzen_req r;
        char why[300];
        why[0] = '\0';
        if (authzen_parse(data, size, batch, &r, why, sizeof(why)) != ZTB_OK) {
            if (why[0] == '\0' || r.root != NULL || r.n != 0)
                abort();
            continue;
        }
        if (r.n < 1 || r.n > AUTHZEN_MAX_EVALUATIONS || (r.batch && !batch))
            abort();
        for (size_t i = 0; i < r.n; i++) {
            const struct authzen_eval *e = &r.ev[i];
            if (!printable(e->subject_type, 0) || !printable(e->subject_id, 0) ||
                !printable(e->action, 0) || !printable(e->audience, 0) ||
                !printable(e->resource, 1) || e->source.family > 6)
                abort();
        }
        authzen_req_free(&r);
    }
    return 0;
}
