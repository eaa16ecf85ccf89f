/*
 * jws.c - compact JWS sign and verify (see jws.h).
 *
 * Signing writes header and payload encodings into the output buffer, signs
 * those bytes in place (they are the JWS signing input), then appends the
 * signature. Verifying never copies the token: it works on spans of it, and
 * decodes the header into the caller's (or a stack) ztb_jws_header.
 */
#include <string.h>

#include "common/base64url.h"
#include "common/guard.h"
#include "pki/es256.h"
#include "pki/jws.h"

/* Encoded length of a raw ES256 signature: 86 characters. */
#define SIG_B64_LEN 86

/* Members a verifier never accepts, and jwk which only DPoP proofs may carry. */
#define ALWAYS_FORBIDDEN (ZTB_JWS_HDR_JKU | ZTB_JWS_HDR_X5U | ZTB_JWS_HDR_X5C | ZTB_JWS_HDR_CRIT)

/* Build the default header for k into out. */
static ztb_err default_header(const ztb_key *k, const ztb_jws_sign_opts *o, ztb_buf *out)
{
    ztb_buf_append_str(out, "{\"alg\":\"");
    ztb_buf_append_str(out, ztb_alg_name(ztb_key_alg(k)));
    ztb_buf_append_byte(out, '"');
    if (o != NULL && o->typ != NULL) {
        size_t tl = strlen(o->typ);
        ZTB_ENSURE(tl <= ZTB_JWS_TYP_MAX, ZTB_ERR_INVALID_ARG);
        ztb_buf_append_str(out, ",\"typ\":\"");
        ztb_buf_append_json_escaped(out, o->typ, tl);
        ztb_buf_append_byte(out, '"');
    }
    if (o == NULL || !o->omit_kid) {
        ztb_buf_append_str(out, ",\"kid\":\"");
        ztb_buf_append_str(out, ztb_key_kid(k));
        ztb_buf_append_byte(out, '"');
    }
    return ztb_buf_append_byte(out, '}');
}

/* Check a caller-supplied header: strict, the key's alg, nothing refused. */
static ztb_err check_caller_header(const ztb_key *k, const char *json, size_t n)
{
    ztb_jws_header h;
    ZTB_GUARD(ztb_jws_header_parse(json, n, &h));
    ZTB_ENSURE(h.alg == ztb_key_alg(k), ZTB_ERR_ALG);
    ZTB_ENSURE((h.present & ALWAYS_FORBIDDEN) == 0, ZTB_ERR_FORBIDDEN_HEADER);
    return ZTB_OK;
}

/* The local signer: k's own private key over the digest. */
static ztb_err sign_local(void *arg, const char *kid, const uint8_t digest[32],
                          uint8_t sig[ZTB_ES256_SIG_LEN])
{
    (void)kid;
    uint8_t der[ZTB_ES256_DER_MAX];
    size_t derlen = sizeof(der);
    ZTB_GUARD(ztb_es256_sign_digest(arg, digest, der, &derlen));
    /* our own OpenSSL's output: a parse failure here is a bug, not input */
    ZTB_ENSURE(ztb_es256_der_to_raw(der, derlen, sig) == ZTB_OK, ZTB_ERR_CRYPTO);
    return ZTB_OK;
}

ztb_err ztb_jws_signing_input(const ztb_key *k, const ztb_jws_sign_opts *opts, const void *payload,
                              size_t n, ztb_buf *out, uint8_t digest[32])
{
    ZTB_ENSURE(k != NULL && out != NULL && digest != NULL && (payload != NULL || n == 0),
               ZTB_ERR_INVALID_ARG);
    ZTB_GUARD(ztb_buf_error(out));
    ztb_err rv = ZTB_OK;
    size_t start = out->len;
    char hstore[ZTB_JWS_HEADER_MAX + 1];
    ztb_buf hdr;
    ztb_buf_init_fixed(&hdr, hstore, sizeof(hstore));

    const char *hjson;
    size_t hlen;
    if (opts != NULL && opts->header != NULL) {
        ZTB_TRY(rv, check_caller_header(k, opts->header, opts->header_len));
        hjson = opts->header;
        hlen = opts->header_len;
    } else {
        ZTB_TRY(rv, default_header(k, opts, &hdr));
        hjson = (const char *)hdr.data;
        hlen = hdr.len;
    }
    ztb_b64url_encode_buf(out, hjson, hlen);
    ztb_buf_append_byte(out, '.');
    ZTB_TRY(rv, ztb_b64url_encode_buf(out, payload, n));
    ZTB_TRY(rv, ztb_es256_sha256(out->data + start, out->len - start, digest));
out:
    if (rv != ZTB_OK)
        ztb_buf_truncate(out, start); /* also clears a sticky error we caused */
    return rv;
}

ztb_err ztb_jws_append_signature(ztb_buf *out, const uint8_t sig[ZTB_ES256_SIG_LEN])
{
    ZTB_ENSURE(out != NULL && sig != NULL, ZTB_ERR_INVALID_ARG);
    ztb_buf_append_byte(out, '.');
    return ztb_b64url_encode_buf(out, sig, ZTB_ES256_SIG_LEN);
}

ztb_err ztb_jws_sign_with(const ztb_key *k, const ztb_jws_sign_opts *opts, const void *payload,
                          size_t n, ztb_jws_sign_fn fn, void *arg, ztb_buf *out)
{
    ZTB_ENSURE(k != NULL && fn != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    size_t start = out->len;
    uint8_t sig[ZTB_ES256_SIG_LEN], digest[32];
    ztb_err rv = ZTB_OK;
    ZTB_TRY(rv, ztb_jws_signing_input(k, opts, payload, n, out, digest));
    ZTB_TRY(rv, fn(arg, ztb_key_kid(k), digest, sig));
    ZTB_TRY(rv, ztb_jws_append_signature(out, sig));
out:
    if (rv != ZTB_OK)
        ztb_buf_truncate(out, start);
    return rv;
}

ztb_err ztb_jws_sign(const ztb_key *k, const ztb_jws_sign_opts *opts, const void *payload, size_t n,
                     ztb_buf *out)
{
    ZTB_ENSURE(k != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(ztb_key_has_private(k), ZTB_ERR_KEY);
    /* the callback only reads the key; the cast drops const for void * */
    return ztb_jws_sign_with(k, opts, payload, n, sign_local, (void *)k, out);
}

/* The three segments of a compact JWS. */
struct parts {
    const char *h, *p, *s;
    size_t hlen, plen, slen;
};

/* Length cap and split into exactly three segments (no allocation). */
static ztb_err split(const char *tok, size_t len, size_t max, struct parts *pt)
{
    ZTB_ENSURE(tok != NULL || len == 0, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(len <= max, ZTB_ERR_TOO_LARGE);
    const char *end = tok + len;
    const char *d1 = len ? memchr(tok, '.', len) : NULL;
    ZTB_ENSURE(d1 != NULL, ZTB_ERR_JWS_FORMAT);
    const char *d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1));
    ZTB_ENSURE(d2 != NULL, ZTB_ERR_JWS_FORMAT);
    ZTB_ENSURE(memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) == NULL, ZTB_ERR_JWS_FORMAT);
    pt->h = tok;
    pt->hlen = (size_t)(d1 - tok);
    pt->p = d1 + 1;
    pt->plen = (size_t)(d2 - d1 - 1);
    pt->s = d2 + 1;
    pt->slen = (size_t)(end - d2 - 1);
    ZTB_ENSURE(pt->hlen > 0, ZTB_ERR_JWS_FORMAT);
    return ZTB_OK;
}

/* Everything that needs no key: split, header, refusals, alg name, sig length. */
static ztb_err precheck(const char *tok, size_t len, const ztb_jws_verify_opts *o,
                        ztb_jws_header *h, struct parts *pt)
{
    size_t max = o != NULL && o->max_len != 0 ? o->max_len : ZTB_JWS_DEFAULT_MAX;
    unsigned forbidden = ALWAYS_FORBIDDEN;
    if (o == NULL || !(o->flags & ZTB_JWS_ALLOW_JWK))
        forbidden |= ZTB_JWS_HDR_JWK;
    ZTB_GUARD(split(tok, len, max, pt));
    ZTB_GUARD(ztb_jws_header_decode(pt->h, pt->hlen, h));
    ZTB_ENSURE((h->present & forbidden) == 0, ZTB_ERR_FORBIDDEN_HEADER);
    ZTB_ENSURE(h->alg != ZTB_ALG_NONE, ZTB_ERR_ALG);
    ZTB_ENSURE(pt->slen == SIG_B64_LEN, ZTB_ERR_SIG_FORMAT);
    return ZTB_OK;
}

/* Check that n characters are canonical base64url without keeping the bytes. */
static ztb_err check_b64(const char *s, size_t n)
{
    uint8_t tmp[768];
    while (n > 0) {
        size_t chunk = n > 1024 ? 1024 : n; /* 1024 characters: whole quanta */
        size_t got;
        ZTB_GUARD(ztb_b64url_decode(s, chunk, tmp, sizeof(tmp), &got));
        s += chunk;
        n -= chunk;
    }
    return ZTB_OK;
}

/* The part after the key is chosen: alg match, signature, payload. */
static ztb_err finish(const ztb_key *k, const char *tok, const ztb_jws_header *h,
                      const struct parts *pt, ztb_buf *payload)
{
    ZTB_ENSURE(h->alg == ztb_key_alg(k), ZTB_ERR_ALG);
    uint8_t sig[ZTB_ES256_SIG_LEN + 2];
    size_t siglen = 0;
    ZTB_GUARD(ztb_b64url_decode(pt->s, pt->slen, sig, sizeof(sig), &siglen));
    ZTB_GUARD(ztb_es256_verify(k, tok, pt->hlen + 1 + pt->plen, sig, siglen));

    if (payload == NULL)
        return check_b64(pt->p, pt->plen);
    ZTB_GUARD(ztb_buf_error(payload));
    size_t start = payload->len, got = 0;
    uint8_t *at;
    ZTB_GUARD(ztb_buf_extend(payload, ztb_b64url_decoded_max(pt->plen), &at));
    ztb_err rv = ztb_b64url_decode(pt->p, pt->plen, at, ztb_b64url_decoded_max(pt->plen), &got);
    ztb_buf_truncate(payload, rv == ZTB_OK ? start + got : start);
    return rv;
}

/* Verify with the key chosen by kid (ks) or the one given (k); h is filled. */
static ztb_err verify(const ztb_keyset *ks, const ztb_key *k, const char *tok, size_t len,
                      const ztb_jws_verify_opts *opts, ztb_jws_header *h, ztb_buf *payload)
{
    struct parts pt;
    ZTB_GUARD(precheck(tok, len, opts, h, &pt));
    if (ks != NULL) {
        ZTB_ENSURE(h->has_kid, ZTB_ERR_UNKNOWN_KID);
        k = ztb_keyset_find(ks, h->kid, h->kid_len);
        ZTB_ENSURE(k != NULL, ZTB_ERR_UNKNOWN_KID);
    }
    return finish(k, tok, h, &pt, payload);
}

ztb_err ztb_jws_verify(const ztb_keyset *ks, const char *tok, size_t len,
                       const ztb_jws_verify_opts *opts, ztb_jws_header *hdr, ztb_buf *payload)
{
    ZTB_ENSURE(ks != NULL, ZTB_ERR_INVALID_ARG);
    if (hdr != NULL)
        return verify(ks, NULL, tok, len, opts, hdr, payload);
    ztb_jws_header local; /* filled by precheck; not zeroed: this is the hot reject path */
    return verify(ks, NULL, tok, len, opts, &local, payload);
}

ztb_err ztb_jws_verify_with_key(const ztb_key *k, const char *tok, size_t len,
                                const ztb_jws_verify_opts *opts, ztb_jws_header *hdr,
                                ztb_buf *payload)
{
    ZTB_ENSURE(k != NULL, ZTB_ERR_INVALID_ARG);
    if (hdr != NULL)
        return verify(NULL, k, tok, len, opts, hdr, payload);
    ztb_jws_header local;
    return verify(NULL, k, tok, len, opts, &local, payload);
}

ztb_err ztb_jws_peek(const char *tok, size_t len, const ztb_jws_verify_opts *opts,
                     ztb_jws_header *hdr)
{
    ZTB_ENSURE(hdr != NULL, ZTB_ERR_INVALID_ARG);
    struct parts pt;
    return precheck(tok, len, opts, hdr, &pt);
}
