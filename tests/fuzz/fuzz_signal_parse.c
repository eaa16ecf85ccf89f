/*
 * fuzz_signal_parse.c - the anomaly signal parser (plain JSON and signed SET
 * claims) and the SET iss peek on arbitrary input. Checks, beyond memory
 * safety: an accepted signal has a valid type, a severity and confidence in
 * range, a subject, NUL-terminated bounded fields, and evidence that is
 * JSON no longer than its limit; a refused one leaves nothing filled.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/signals/signal_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int signed_set = 0; signed_set < 2; signed_set++) {
        struct signal_parse_opts o = {.trust_domain = "ztb.local",
                                      .issuer = "https://broker.example",
                                      .source = "soc",
                                      .signed_set = signed_set,
                                      .now = 1767225600};
        struct signal s;
        memset(&s, 0, sizeof(s));
        char why[128];
        ztb_err rv = signal_parse((const char *)data, size, &o, &s, why, sizeof(why));
        if (memchr(why, '\0', sizeof(why)) == NULL)
            abort();
        if (rv != ZTB_OK) {
            if (s.type[0] != '\0' || s.agent[0] != '\0' || s.evidence[0] != '\0')
                abort();
            continue;
        }
        if (!signal_type_ok(s.type) || s.severity < POLICY_SEVERITY_LOW ||
            s.severity > POLICY_SEVERITY_CRITICAL || !(s.confidence >= 0.0 && s.confidence <= 1.0))
            abort();
        if (!s.agent[0] && !s.jti[0] && !s.audience[0] && !s.kid[0])
            abort();
        if (s.agent[0] && !store_agent_name_ok(s.agent))
            abort();
        if (strlen(s.evidence) > SIGNAL_EVIDENCE_MAX || !store_id_ok(s.source_jti))
            abort();
    }
    char iss[STORE_SOURCE_MAX + 1];
    if (signal_set_peek_iss((const char *)data, size, iss) == ZTB_OK && !store_source_name_ok(iss))
        abort();
    return 0;
}
