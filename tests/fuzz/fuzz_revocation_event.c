/*
 * fuzz_revocation_event.c - revocation messages from Redis on arbitrary
 * bytes: parse, apply to a small revocation set, and check against it.
 *
 * Checks, beyond memory safety: an accepted event has a printable id of the
 * stated length and the members its kind needs; applying it never fails
 * except for memory; once applied, a live jti event revokes exactly that
 * token id, and an agent event revokes a lower generation of that agent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sdk/src/revset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rev_event ev;
    if (rev_event_parse(data, size, &ev) != ZTB_OK)
        return 0;
    if (ev.id_len == 0 || ev.id_len != strlen(ev.id) || ev.id_len > REV_ID_MAX)
        abort();
    if ((ev.kind == REV_JTI || ev.kind == REV_KEY || ev.kind == REV_AGENT) && ev.exp <= 0)
        abort();
    if (ev.kind == REV_AGENT && ev.gen <= 0)
        abort();
    struct revset rs;
    revset_init(&rs, 30, 1000);
    int64_t now = 1000;
    if (revset_apply(&rs, &ev, now) != ZTB_OK)
        abort();
    uint8_t id[IDSET_ID_LEN] = {0};
    /* a verifier with this skew accepts a token while now < exp + skew: the
     * revocation must hold exactly that long (at exp + skew it is expired) */
    int live = ev.exp == 0 || ev.exp + 30 > now;
    if (ev.kind == REV_JTI && live) {
        if (idset_key(ev.id, ev.id_len, id) != ZTB_OK ||
            revset_check(&rs, NULL, NULL, NULL, 0, id, now) != ZTB_ERR_REVOKED)
            abort();
    }
    if (ev.kind == REV_AGENT && live &&
        revset_check(&rs, NULL, NULL, ev.id, ev.gen - 1, NULL, now) != ZTB_ERR_AGENT_REVOKED)
        abort();
    if (ev.kind == REV_AUDIENCE && !ev.lifted && live &&
        revset_check(&rs, NULL, ev.id, NULL, 0, NULL, now) != ZTB_ERR_AUDIENCE_KILLED)
        abort();
    revset_sweep_names(&rs, now + 1000000);
    revset_free(&rs);
    return 0;
}
