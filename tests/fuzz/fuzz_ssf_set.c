/*
 * fuzz_ssf_set.c - the SSF receiver's SET reading on arbitrary input: the
 * unverified iss peek (strict reader) on the input as a compact JWS, and
 * the verified claims reader (jansson gate) on the input as claims.
 * Checks, beyond memory safety: an accepted SET has a bounded jti, exactly
 * one known received event, and a subject that names an agent with a valid
 * name or a token; a refusal says why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/ssf/ssf.h"
#include "broker/ssf/ssf_set.h"
#include "pki/jwk.h"
#include "pki/key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ssf_config *config(void)
{
    static struct ssf_config *c;
    if (c != NULL)
        return c;
    ztb_key *k = NULL;
    ztb_buf jwks;
    ztb_buf_init(&jwks, 2048);
    if (ztb_key_generate(&k) != ZTB_OK ||
        ztb_jwks_render((const ztb_key *const *)&k, 1, &jwks) != ZTB_OK)
        abort();
    char text[4096], why[256];
    snprintf(text, sizeof(text),
             "{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://idp.test\",\"jwks\":%s,"
             "\"audience\":\"https://broker.example\",\"subjects\":{\"email:bot@idp.test\":"
             "\"billing-bot\",\"opaque:x1\":\"billing-bot\",\"iss_sub:https://idp.test|7\":"
             "\"billing-bot\"}}]}",
             ztb_buf_cstr(&jwks));
    if (ssf_config_parse(text, strlen(text), "https://broker.example", &c, why, sizeof(why)) !=
        ZTB_OK)
        abort();
    ztb_buf_free(&jwks);
    ztb_key_free(k);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ssf_config *c = config();
    struct ssf_set_opts o = {.t = &c->tx[0],
                             .trust_domain = "ztb.local",
                             .our_issuer = "https://broker.example",
                             .now = 1767225600,
                             .max_age = 300};
    struct ssf_set s;
    char why[200];
    why[0] = '\0';
    ztb_err rv = ssf_set_read((const char *)data, size, &o, &s, why, sizeof(why));
    if (memchr(why, '\0', sizeof(why)) == NULL)
        abort();
    if (rv == ZTB_OK) {
        if (!store_id_ok(s.jti) || (s.event & SSF_EV_RECEIVED) == 0 ||
            (s.event & (s.event - 1)) != 0)
            abort();
        if (!s.agent[0] && !s.token_jti[0])
            abort();
        if (s.agent[0] && !store_agent_name_ok(s.agent))
            abort();
        if (s.token_jti[0] && !store_id_ok(s.token_jti))
            abort();
    } else if (why[0] == '\0') {
        abort();
    }
    char iss[SSF_ISSUER_MAX];
    if (ssf_set_peek_iss((const char *)data, size, iss, sizeof(iss)) == ZTB_OK &&
        (iss[0] == '\0' || memchr(iss, '\0', sizeof(iss)) == NULL))
        abort();
    return 0;
}
