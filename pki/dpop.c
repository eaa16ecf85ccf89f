/*
 * dpop.c - make and check DPoP proofs (see dpop.h).
 *
 * The proof's own key is taken from its header only after the strict header
 * parser (jws_header.c) accepted it, and becomes a key only through
 * ztb_jwk_to_key (public P-256 point, no private member). The proof's key is
 * its own: a valid signature authenticates nobody, so its claims are read
 * with the strict reader (common/json_reader.h), never with jansson.
 */
#include <string.h>

#include "common/base64url.h"
#include "common/guard.h"
#include "common/json_reader.h"
#include "common/secret.h"
#include "common/uri.h"
#include "pki/dpop.h"
#include "pki/es256.h"
#include "pki/jws.h"

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

/*
 * The proof's htu names the request's URI (RFC 9449 §4.3): their
 * comparison forms are equal (common/uri.h: scheme and host case, default
 * port, percent-encodings, dot segments; query and fragment left out).
 * Without a form (not an http(s) URI), byte for byte without query and
 * fragment.
 */
static int htu_matches(const char *claim, const char *request)
{
    char a[ZTB_URI_FORM_MAX + 1], b[ZTB_URI_FORM_MAX + 1];
    size_t na = ztb_uri_htu_form(claim, strlen(claim), a, sizeof(a));
    size_t nb = ztb_uri_htu_form(request, strlen(request), b, sizeof(b));
    if (na > 0 && nb > 0)
        return na == nb && memcmp(a, b, na) == 0;
    size_t x = htu_base_len(claim), y = htu_base_len(request);
    return x == y && strncmp(claim, request, x) == 0;
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

    char claims_store[ZTB_DPOP_CLAIMS_MAX];
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

/* A string member into out[cap]: *has = 1 if it was a string that fit. */
static ztb_err opt_string(struct jr *r, char *out, size_t cap, int *has)
{
    *has = 0;
    if (jr_peek(r) != JR_STRING)
        return jr_skip(r);
    ztb_err rv = jr_read_string(r, out, cap, NULL);
    if (rv == ZTB_ERR_TOO_LARGE) /* read whole: too long to match */
        return ZTB_OK;
    ZTB_GUARD(rv);
    *has = 1;
    return ZTB_OK;
}

static ztb_err read_claims(struct jr *r, ztb_dpop_claims *c)
{
    ZTB_GUARD(jr_enter_object(r));
    for (;;) {
        ztb_span name;
        int more;
        ZTB_GUARD(jr_next_member(r, &name, &more));
        if (!more)
            break;
        if (ztb_span_eq_str(name, "jti")) {
            ZTB_GUARD(opt_string(r, c->jti, sizeof(c->jti), &c->has_jti));
        } else if (ztb_span_eq_str(name, "htm")) {
            ZTB_GUARD(opt_string(r, c->htm, sizeof(c->htm), &c->has_htm));
        } else if (ztb_span_eq_str(name, "htu")) {
            ZTB_GUARD(opt_string(r, c->htu, sizeof(c->htu), &c->has_htu));
        } else if (ztb_span_eq_str(name, "ath")) {
            c->has_ath_member = 1;
            ZTB_GUARD(opt_string(r, c->ath, sizeof(c->ath), &c->has_ath));
        } else if (ztb_span_eq_str(name, "iat") && jr_peek(r) == JR_NUMBER) {
            ztb_err rv = jr_read_int(r, &c->iat);
            if (rv != ZTB_ERR_MALFORMED) { /* a fraction or out of range: not an integer */
                ZTB_GUARD(rv);
                c->has_iat = 1;
            }
        } else {
            ZTB_GUARD(jr_skip(r));
        }
    }
    return jr_finish(r);
}

ztb_err ztb_dpop_claims_read(const void *json, size_t n, ztb_dpop_claims *c)
{
    ZTB_ENSURE(c != NULL && (json != NULL || n == 0), ZTB_ERR_INVALID_ARG);
    memset(c, 0, sizeof(*c));
    struct jr r;
    jr_init(&r, json, n);
    ZTB_ENSURE(read_claims(&r, c) == ZTB_OK, ZTB_ERR_DPOP);
    return ZTB_OK;
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
    ztb_dpop_claims claims;
    ztb_dpop_claims *c = &claims;
    ztb_err rv = ZTB_OK;
    char store[ZTB_DPOP_CLAIMS_MAX];
    ztb_buf payload;
    ztb_buf_init_fixed(&payload, store, sizeof(store));
    /* any kid (RFC 9449 gives it no meaning; the binding is the key's
     * thumbprint, computed here) */
    ZTB_CHECK(rv,
              ztb_jwk_parse((const char *)hdr.raw + hdr.jwk_off, hdr.jwk_len, ZTB_JWK_KID_ANY,
                            &k) == ZTB_OK,
              ZTB_ERR_DPOP);
    ZTB_TRY(rv, ztb_jws_verify_with_key(k, proof, len, &vo, &hdr, &payload));
    ZTB_TRY(rv, ztb_dpop_claims_read(store, payload.len, c));
    ZTB_CHECK(rv, c->has_jti && c->jti[0] != '\0', ZTB_ERR_DPOP);
    ZTB_CHECK(rv, c->has_htm && strcmp(c->htm, htm) == 0, ZTB_ERR_DPOP);
    ZTB_CHECK(rv, c->has_htu && htu_matches(c->htu, htu), ZTB_ERR_DPOP);
    ZTB_CHECK(rv, c->has_iat, ZTB_ERR_DPOP);
    int64_t t = c->iat;
    ZTB_CHECK(rv, t <= now + (int64_t)skew_s && t >= now - (int64_t)max_age_s - (int64_t)skew_s,
              ZTB_ERR_DPOP);
    if (access_token != NULL) {
        char want[44];
        ZTB_TRY(rv, ztb_dpop_ath(access_token, strlen(access_token), want));
        ZTB_CHECK(rv, c->has_ath && ztb_ct_eq_len(c->ath, strlen(c->ath), want, strlen(want)),
                  ZTB_ERR_DPOP);
    } else {
        ZTB_CHECK(rv, !c->has_ath_member, ZTB_ERR_DPOP);
    }
    memcpy(out->jkt, ztb_key_kid(k), strlen(ztb_key_kid(k)) + 1);
    memcpy(out->jti, c->jti, strlen(c->jti) + 1);
    out->iat = t;
out:
    ztb_key_free(k);
    return rv;
}
