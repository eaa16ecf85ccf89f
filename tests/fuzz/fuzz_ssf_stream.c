/*
 * fuzz_ssf_stream.c - a receiver's stream-management request body
 * (ssf_stream_apply_text) as create, replace and update, and the stored
 * record reader, on arbitrary input. Checks, beyond memory safety: an
 * accepted stream has a push URL push_url_check accepts, events within
 * what ztb sends, and its identity (id, owner, aud) untouched; a refusal
 * says why and leaves the stream as it was.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/http/push_client.h"
#include "broker/ssf/ssf_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int op = SSF_OP_CREATE; op <= SSF_OP_UPDATE; op++) {
        struct ssf_stream s;
        memset(&s, 0, sizeof(s));
        snprintf(s.id, sizeof(s.id), "ssf_AAAAAAAAAAAAAAAAAAAAAA");
        snprintf(s.owner, sizeof(s.owner), "rx-1");
        snprintf(s.aud, sizeof(s.aud), "spiffe://ztb.local/agent/rx-1");
        snprintf(s.url, sizeof(s.url), "https://rx.example/");
        char why[300] = "";
        ztb_err rv =
            ssf_stream_apply_text(&s, (const char *)data, size, (enum ssf_stream_op)op, why, 300);
        char err[256];
        if (strcmp(s.id, "ssf_AAAAAAAAAAAAAAAAAAAAAA") != 0 || strcmp(s.owner, "rx-1") != 0 ||
            strcmp(s.aud, "spiffe://ztb.local/agent/rx-1") != 0)
            abort();
        if (rv == ZTB_OK && (push_url_check(s.url, 0, err, sizeof(err)) != ZTB_OK ||
                             (s.events & ~(unsigned)SSF_EV_SENT) != 0))
            abort();
        if (rv != ZTB_OK && (why[0] == '\0' || strcmp(s.url, "https://rx.example/") != 0))
            abort();
        ssf_stream_clear(&s);
    }
    struct ssf_stream t;
    if (ssf_stream_from_record((const char *)data, size, &t) == ZTB_OK)
        ssf_stream_clear(&t);
    return 0;
}
