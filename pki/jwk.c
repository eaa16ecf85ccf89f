/*
 * jwk.c - RFC 7638 thumbprints, JWK/JWKS rendering and strict parsing (see
 * jwk.h). JSON is read with jansson (JSON_REJECT_DUPLICATES): this is not a
 * per-request path. Rendering writes the few fixed members by hand and must
 * never write a private member ("d").
 */
#include <string.h>

#include "common/json_gate.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "pki/es256.h"
#include "pki/jwk.h"

/* Canonical JSON of a thumbprint input is small except for big RSA keys. */
#define THUMB_INPUT_MAX 16384

static ztb_err thumb_of(const ztb_buf *canon, char out[ZTB_KID_LEN + 1])
{
    uint8_t digest[32];
    ZTB_GUARD(ztb_buf_error(canon));
    ZTB_GUARD(ztb_es256_sha256(canon->data, canon->len, digest));
    return ztb_b64url_encode(digest, sizeof(digest), out, ZTB_KID_LEN + 1, NULL);
}

ztb_err ztb_jwk_thumbprint_p256(const uint8_t x[ZTB_P256_COORD_LEN],
                                const uint8_t y[ZTB_P256_COORD_LEN], char out[ZTB_KID_LEN + 1])
{
    ZTB_ENSURE(x != NULL && y != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    char store[160];
    ztb_buf b;
    ztb_buf_init_fixed(&b, store, sizeof(store));
    ztb_buf_append_str(&b, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"");
    ztb_b64url_encode_buf(&b, x, ZTB_P256_COORD_LEN);
    ztb_buf_append_str(&b, "\",\"y\":\"");
    ztb_b64url_encode_buf(&b, y, ZTB_P256_COORD_LEN);
    ztb_buf_append_str(&b, "\"}");
    return thumb_of(&b, out);
}

/* Append ,"name":"value" (or without the comma first) from jwk's member. */
static ztb_err canon_member(ztb_buf *b, const json_t *jwk, const char *name, int first)
{
    const json_t *v = json_object_get(jwk, name);
    ZTB_ENSURE(json_is_string(v), ZTB_ERR_KEY);
    if (!first)
        ztb_buf_append_byte(b, ',');
    ztb_buf_append_byte(b, '"');
    ztb_buf_append_str(b, name);
    ztb_buf_append_str(b, "\":\"");
    ztb_buf_append_json_escaped(b, json_string_value(v), json_string_length(v));
    return ztb_buf_append_byte(b, '"');
}

ztb_err ztb_jwk_thumbprint(const json_t *jwk, char out[ZTB_KID_LEN + 1])
{
    ZTB_ENSURE(out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(json_is_object(jwk), ZTB_ERR_JWKS);
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    ZTB_ENSURE(kty != NULL, ZTB_ERR_KEY);

    /* the required members of each key type, in lexicographic order */
    static const struct {
        const char *kty;
        const char *members[4];
    } req[] = {
        {"EC", {"crv", "kty", "x", "y"}},
        {"RSA", {"e", "kty", "n", NULL}},
        {"OKP", {"crv", "kty", "x", NULL}},
        {"oct", {"k", "kty", NULL, NULL}},
    };
    size_t t = 0;
    while (t < ZTB_ARRAY_LEN(req) && strcmp(req[t].kty, kty) != 0)
        t++;
    ZTB_ENSURE(t < ZTB_ARRAY_LEN(req), ZTB_ERR_UNSUPPORTED);

    ztb_err rv = ZTB_OK;
    ztb_buf b;
    ztb_buf_init(&b, THUMB_INPUT_MAX);
    ztb_buf_append_byte(&b, '{');
    for (size_t i = 0; i < 4 && req[t].members[i] != NULL; i++)
        ZTB_TRY(rv, canon_member(&b, jwk, req[t].members[i], i == 0));
    ztb_buf_append_byte(&b, '}');
    rv = thumb_of(&b, out);
out:
    ztb_buf_free(&b);
    return rv;
}

ztb_err ztb_jwk_render(const ztb_key *k, ztb_buf *out)
{
    ZTB_ENSURE(k != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    uint8_t x[ZTB_P256_COORD_LEN], y[ZTB_P256_COORD_LEN];
    ztb_key_public_xy(k, x, y);
    ztb_buf_append_str(out, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"");
    ztb_buf_append_str(out, ztb_key_kid(k)); /* base64url: nothing to escape */
    ztb_buf_append_str(out, "\",\"use\":\"sig\",\"alg\":\"");
    ztb_buf_append_str(out, ztb_alg_name(ztb_key_alg(k)));
    ztb_buf_append_str(out, "\",\"x\":\"");
    ztb_b64url_encode_buf(out, x, sizeof(x));
    ztb_buf_append_str(out, "\",\"y\":\"");
    ztb_b64url_encode_buf(out, y, sizeof(y));
    return ztb_buf_append_str(out, "\"}");
}

ztb_err ztb_jwks_render(const ztb_key *const *keys, size_t n, ztb_buf *out)
{
    ZTB_ENSURE(out != NULL && (keys != NULL || n == 0), ZTB_ERR_INVALID_ARG);
    ztb_buf_append_str(out, "{\"keys\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            ztb_buf_append_byte(out, ',');
        ZTB_GUARD(ztb_jwk_render(keys[i], out));
    }
    return ztb_buf_append_str(out, "]}");
}

/* 1 if jwk[name] is absent, or the string want. */
static int absent_or_is(const json_t *jwk, const char *name, const char *want)
{
    const json_t *v = json_object_get(jwk, name);
    return v == NULL || (json_is_string(v) && strcmp(json_string_value(v), want) == 0);
}

/* Decode a coordinate: a canonical base64url string of exactly 32 bytes. */
static ztb_err coord(const json_t *jwk, const char *name, uint8_t out[ZTB_P256_COORD_LEN])
{
    const json_t *v = json_object_get(jwk, name);
    ZTB_ENSURE(json_is_string(v), ZTB_ERR_KEY);
    size_t len = json_string_length(v);
    ZTB_ENSURE(len == ztb_b64url_encoded_len(ZTB_P256_COORD_LEN), ZTB_ERR_KEY);
    uint8_t tmp[ZTB_P256_COORD_LEN + 2];
    size_t n = 0;
    ZTB_ENSURE(ztb_b64url_decode(json_string_value(v), len, tmp, sizeof(tmp), &n) == ZTB_OK,
               ZTB_ERR_KEY);
    ZTB_ENSURE(n == ZTB_P256_COORD_LEN, ZTB_ERR_KEY);
    memcpy(out, tmp, ZTB_P256_COORD_LEN);
    return ZTB_OK;
}

ztb_err ztb_jwk_to_key(const json_t *jwk, unsigned flags, ztb_key **out)
{
    ZTB_ENSURE(out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(json_is_object(jwk), ZTB_ERR_KEY);
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    ZTB_ENSURE(kty != NULL && strcmp(kty, "EC") == 0, ZTB_ERR_KEY);
    ZTB_ENSURE(crv != NULL && strcmp(crv, "P-256") == 0, ZTB_ERR_KEY);
    ZTB_ENSURE(json_object_get(jwk, "d") == NULL, ZTB_ERR_KEY); /* never a private key */
    ZTB_ENSURE(absent_or_is(jwk, "alg", "ES256"), ZTB_ERR_KEY);
    ZTB_ENSURE(absent_or_is(jwk, "use", "sig"), ZTB_ERR_KEY);
    const json_t *ops = json_object_get(jwk, "key_ops");
    if (ops != NULL) {
        ZTB_ENSURE(json_is_array(ops) && json_array_size(ops) > 0, ZTB_ERR_KEY);
        for (size_t i = 0; i < json_array_size(ops); i++) {
            const char *op = json_string_value(json_array_get(ops, i));
            ZTB_ENSURE(op != NULL && strcmp(op, "verify") == 0, ZTB_ERR_KEY);
        }
    }
    const json_t *kid = json_object_get(jwk, "kid");
    ZTB_ENSURE(kid == NULL || json_is_string(kid), ZTB_ERR_KEY);

    uint8_t x[ZTB_P256_COORD_LEN], y[ZTB_P256_COORD_LEN];
    ZTB_GUARD(coord(jwk, "x", x));
    ZTB_GUARD(coord(jwk, "y", y));
    ztb_key *k = NULL;
    ZTB_GUARD(ztb_key_from_public_xy(x, y, &k));
    if (kid != NULL && !(flags & ZTB_JWK_KID_ANY) &&
        strcmp(json_string_value(kid), ztb_key_kid(k)) != 0) {
        ztb_key_free(k);
        return ZTB_ERR_KEY;
    }
    *out = k;
    return ZTB_OK;
}

ztb_err ztb_jwk_parse(const char *json, size_t n, unsigned flags, ztb_key **out)
{
    ZTB_ENSURE(json != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= ZTB_JWK_MAX, ZTB_ERR_TOO_LARGE);
    /* the gate: no NUL (jansson lets one after a number through), no deep
     * nesting, no duplicate names */
    json_t *j = NULL;
    ZTB_ENSURE(ztb_json_gate_load(json, n, ZTB_JWK_MAX, ZTB_JSON_GATE_DEPTH, 0, &j, NULL, 0) ==
                   ZTB_OK,
               ZTB_ERR_JSON);
    ztb_err rv = ztb_jwk_to_key(j, flags, out);
    json_decref(j);
    return rv;
}

/* 1 if ztb would verify with this JWKS entry (see jwk.h); 0 to skip it. */
static int usable_entry(const json_t *e)
{
    const char *kty = json_string_value(json_object_get(e, "kty"));
    const char *crv = json_string_value(json_object_get(e, "crv"));
    return kty != NULL && strcmp(kty, "EC") == 0 && crv != NULL && strcmp(crv, "P-256") == 0 &&
           absent_or_is(e, "use", "sig") && absent_or_is(e, "alg", "ES256");
}

ztb_err ztb_jwks_parse(const char *json, size_t n, unsigned flags, ztb_keyset **out)
{
    ZTB_ENSURE(json != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= ZTB_JWKS_MAX, ZTB_ERR_TOO_LARGE);
    ztb_err rv = ZTB_OK;
    ztb_key *keys[ZTB_KEYSET_MAX];
    const char *kids[ZTB_KEYSET_MAX];
    size_t nkeys = 0;
    json_t *doc = NULL;
    ZTB_CHECK(rv,
              ztb_json_gate_load(json, n, ZTB_JWKS_MAX, ZTB_JSON_GATE_DEPTH, 0, &doc, NULL, 0) ==
                  ZTB_OK,
              ZTB_ERR_JSON);
    ZTB_CHECK(rv, json_is_object(doc), ZTB_ERR_JWKS);
    const json_t *arr = json_object_get(doc, "keys");
    ZTB_CHECK(rv, json_is_array(arr), ZTB_ERR_JWKS);
    ZTB_CHECK(rv, json_array_size(arr) <= ZTB_KEYSET_MAX, ZTB_ERR_TOO_LARGE);

    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        ZTB_CHECK(rv, json_is_object(e), ZTB_ERR_JWKS);
        ZTB_CHECK(rv, json_is_string(json_object_get(e, "kty")), ZTB_ERR_JWKS);
        /* a JWKS is public: private or symmetric material means a broken publisher */
        ZTB_CHECK(rv, json_object_get(e, "d") == NULL && json_object_get(e, "k") == NULL,
                  ZTB_ERR_JWKS);
        if (!usable_entry(e))
            continue;
        const json_t *kid = json_object_get(e, "kid");
        ZTB_CHECK(rv, json_is_string(kid), ZTB_ERR_JWKS);
        size_t kid_len = json_string_length(kid);
        ZTB_CHECK(rv, kid_len > 0 && kid_len <= ZTB_KEYSET_KID_MAX, ZTB_ERR_JWKS);
        ZTB_CHECK(rv, strlen(json_string_value(kid)) == kid_len, ZTB_ERR_JWKS);
        ZTB_CHECK(rv, ztb_jwk_to_key(e, flags, &keys[nkeys]) == ZTB_OK, ZTB_ERR_JWKS);
        kids[nkeys] = json_string_value(kid);
        nkeys++;
    }
    ZTB_CHECK(rv, nkeys > 0, ZTB_ERR_JWKS);
    rv = ztb_keyset_new(keys, kids, nkeys, out);
    if (rv == ZTB_ERR_EXISTS)
        rv = ZTB_ERR_JWKS; /* two entries with one kid */
out:
    for (size_t i = 0; i < nkeys; i++)
        ztb_key_free(keys[i]);
    json_decref(doc);
    return rv;
}
