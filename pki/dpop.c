/*
 * dpop.c - make and check DPoP proofs (see dpop.h).
 *
 * The proof's own key is taken from its header only after the strict header
 * parser (jws_header.c) accepted it, and becomes a key only through
 * ztb_jwk_to_key (public P-256 point, no private member). Claims are parsed
 * with jansson after refusing NUL bytes and duplicate members.
 */
#include <string.h>

#include <jansson.h>

#include "common/base64url.h"
#include "common/guard.h"
#include "common/secret.h"
#include "pki/dpop.h"
#include "pki/es256.h"
#include "pki/jws.h"

#define CLAIMS_MAX 4096

ztb_err ztb_dpop_ath(const char *token, size_t len, char out[44])
{
    uint8_t d[32];
    ZTB_GUARD(ztb_es256_sha256(token, len, d));
    return ztb_b64url_encode(d, sizeof(d), out, 44, NULL);
}

/* htu without query and fragment: the length of the part to compare. */
static size_t htu_base_len(const char *u)
{
    size_t n = strcspn(u, "?#");
    return n;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

ztb_err ztb_dpop_proof_make(const ztb_key *k, const char *htm, const char *htu, int64_t iat,
                            const char *access_token, ztb_buf *out)
{
    ZTB_ENSURE(k != NULL && htm != NULL && htu != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    size_t hl = strlen(htm), ul = strlen(htu);
    ZTB_ENSURE(hl > 0 && hl <= 16 && ul > 0 && ul <= ZTB_DPOP_HTU_MAX, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(printable(htm) && printable(htu), ZTB_ERR_INVALID_ARG);

    char hdr_store[512];
    ztb_buf hdr;
    ztb_buf_init_fixed(&hdr, hdr_store, sizeof(hdr_store));
    ztb_buf_append_str(&hdr, "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":");
    ZTB_GUARD(ztb_jwk_render(k, &hdr));
    ztb_buf_append_byte(&hdr, '}');
    ZTB_GUARD(ztb_buf_error(&hdr));

    uint8_t rnd[16];
    char jti[24];
    ZTB_GUARD(ztb_random(rnd, sizeof(rnd)));
    ZTB_GUARD(ztb_b64url_encode(rnd, sizeof(rnd), jti, sizeof(jti), NULL));

    char claims_store[CLAIMS_MAX];
    ztb_buf c;
    ztb_buf_init_fixed(&c, claims_store, sizeof(claims_store));
    ztb_buf_printf(&c, "{\"jti\":\"%s\",\"htm\":\"", jti);
    ztb_buf_append_json_escaped(&c, htm, hl);
    ztb_buf_append_str(&c, "\",\"htu\":\"");
    ztb_buf_append_json_escaped(&c, htu, ul);
    ztb_buf_append_str(&c, "\",\"iat\":");
    ztb_buf_append_i64(&c, iat);
    if (access_token != NULL) {
        char ath[44];
        ZTB_GUARD(ztb_dpop_ath(access_token, strlen(access_token), ath));
        ztb_buf_printf(&c, ",\"ath\":\"%s\"", ath);
    }
    ztb_buf_append_byte(&c, '}');
    ZTB_GUARD(ztb_buf_error(&c));

    ztb_jws_sign_opts opts = {.header = hdr_store, .header_len = hdr.len};
    return ztb_jws_sign(k, &opts, claims_store, c.len, out);
}

static const char *str_claim(json_t *claims, const char *name)
{
    json_t *v = json_object_get(claims, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

ztb_err ztb_dpop_proof_check(const char *proof, size_t len, const char *htm, const char *htu,
                             const char *access_token, int64_t now, unsigned max_age_s,
                             unsigned skew_s, ztb_dpop_result *out)
{
    ZTB_ENSURE(proof != NULL && htm != NULL && htu != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    memset(out, 0, sizeof(*out));
    ztb_jws_verify_opts vo = {.max_len = ZTB_JWS_DEFAULT_MAX, .flags = ZTB_JWS_ALLOW_JWK};
    ztb_jws_header hdr;
    ZTB_GUARD(ztb_jws_peek(proof, len, &vo, &hdr));
    ZTB_ENSURE(ztb_jws_header_typ_is(&hdr, "dpop+jwt"), ZTB_ERR_DPOP);
    ZTB_ENSURE(hdr.alg == ZTB_ALG_ES256, ZTB_ERR_ALG);
    ZTB_ENSURE(hdr.jwk_len > 0, ZTB_ERR_DPOP);

    ztb_key *k = NULL;
    json_t *claims = NULL;
    ztb_err rv = ZTB_OK;
    char store[CLAIMS_MAX];
    ztb_buf payload;
    ztb_buf_init_fixed(&payload, store, sizeof(store));
    ZTB_CHECK(rv, ztb_jwk_parse((const char *)hdr.raw + hdr.jwk_off, hdr.jwk_len, 0, &k) == ZTB_OK,
              ZTB_ERR_DPOP);
    ZTB_TRY(rv, ztb_jws_verify_with_key(k, proof, len, &vo, &hdr, &payload));
    ZTB_CHECK(rv, memchr(store, '\0', payload.len) == NULL, ZTB_ERR_DPOP);
    json_error_t e;
    claims = json_loadb(store, payload.len, JSON_REJECT_DUPLICATES, &e);
    ZTB_CHECK(rv, json_is_object(claims), ZTB_ERR_DPOP);

    const char *jti = str_claim(claims, "jti");
    const char *p_htm = str_claim(claims, "htm");
    const char *p_htu = str_claim(claims, "htu");
    json_t *iat = json_object_get(claims, "iat");
    const char *ath = str_claim(claims, "ath");
    ZTB_CHECK(rv, jti != NULL && jti[0] != '\0' && strlen(jti) <= ZTB_DPOP_JTI_MAX, ZTB_ERR_DPOP);
    ZTB_CHECK(rv, p_htm != NULL && strcmp(p_htm, htm) == 0, ZTB_ERR_DPOP);
    ZTB_CHECK(rv, p_htu != NULL, ZTB_ERR_DPOP);
    size_t a = htu_base_len(p_htu), b = htu_base_len(htu);
    ZTB_CHECK(rv, a == b && strncmp(p_htu, htu, a) == 0, ZTB_ERR_DPOP);
    ZTB_CHECK(rv, json_is_integer(iat), ZTB_ERR_DPOP);
    int64_t t = (int64_t)json_integer_value(iat);
    ZTB_CHECK(rv, t <= now + (int64_t)skew_s && t >= now - (int64_t)max_age_s - (int64_t)skew_s,
              ZTB_ERR_DPOP);
    if (access_token != NULL) {
        char want[44];
        ZTB_TRY(rv, ztb_dpop_ath(access_token, strlen(access_token), want));
        ZTB_CHECK(rv, ath != NULL && ztb_ct_eq_len(ath, strlen(ath), want, strlen(want)),
                  ZTB_ERR_DPOP);
    } else {
        ZTB_CHECK(rv, json_object_get(claims, "ath") == NULL, ZTB_ERR_DPOP);
    }
    memcpy(out->jkt, ztb_key_kid(k), strlen(ztb_key_kid(k)) + 1);
    memcpy(out->jti, jti, strlen(jti) + 1);
    out->iat = t;
out:
    json_decref(claims);
    ztb_key_free(k);
    return rv;
}
