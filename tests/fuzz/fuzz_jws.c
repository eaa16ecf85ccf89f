/*
 * fuzz_jws.c - compact JWS verification on arbitrary bytes.
 *
 * The key set holds RFC 7515 A.3's public key (so seed tokens naming its kid
 * reach the ECDSA check) and a key made at start. Checks, beyond memory
 * safety: nothing the fuzzer makes verifies (that would be a forgery);
 * whatever the peek accepts has a consistent header; and, for inputs whose
 * first byte is '!', the rest signed as a payload verifies and decodes back
 * to exactly itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pki/jwk.h"
#include "pki/jws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ztb_keyset *ks;
static ztb_key *signer;

static void init(void)
{
    static const char a3[] = "{\"kty\":\"EC\",\"crv\":\"P-256\","
                             "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                             "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
    ztb_key *keys[2] = {NULL, NULL};
    if (ztb_jwk_parse(a3, sizeof(a3) - 1, 0, &keys[0]) != ZTB_OK ||
        ztb_key_generate(&signer) != ZTB_OK)
        abort();
    keys[1] = signer;
    if (ztb_keyset_new(keys, NULL, 2, &ks) != ZTB_OK)
        abort();
    ztb_key_free(keys[0]);
}

static void check_header(const ztb_jws_header *h)
{
    if (!h->has_alg || h->raw_len > ZTB_JWS_HEADER_MAX)
        abort();
    if (h->has_kid && (h->kid_len > ZTB_JWS_KID_MAX || strlen(h->kid) != h->kid_len))
        abort();
    if (h->has_typ && (h->typ_len > ZTB_JWS_TYP_MAX || strlen(h->typ) != h->typ_len))
        abort();
    if ((h->present & ZTB_JWS_HDR_JWK) && h->jwk_off + h->jwk_len > h->raw_len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ks == NULL)
        init();
    const char *tok = (const char *)data;
    ztb_jws_header h;
    char store[ZTB_JWS_DEFAULT_MAX];
    ztb_buf payload;
    ztb_buf_init_fixed(&payload, store, sizeof(store));

    if (ztb_jws_verify(ks, tok, size, NULL, &h, &payload) == ZTB_OK)
        abort(); /* a signature nobody made verified */
    ztb_jws_verify_opts dpop = {.flags = ZTB_JWS_ALLOW_JWK};
    if (ztb_jws_peek(tok, size, &dpop, &h) == ZTB_OK)
        check_header(&h);

    if (size > 0 && data[0] == '!' && size <= 4096) {
        ztb_buf t;
        char tstore[8192];
        ztb_buf_init_fixed(&t, tstore, sizeof(tstore));
        ztb_jws_sign_opts o = {.typ = "at+jwt"};
        if (ztb_jws_sign(signer, &o, data + 1, size - 1, &t) != ZTB_OK)
            abort();
        ztb_buf_reset(&payload);
        if (ztb_jws_verify(ks, tstore, t.len, NULL, &h, &payload) != ZTB_OK)
            abort();
        if (payload.len != size - 1 || (size > 1 && memcmp(store, data + 1, size - 1) != 0))
            abort();
        if (!ztb_jws_header_typ_is(&h, "at+jwt") || strcmp(h.kid, ztb_key_kid(signer)) != 0)
            abort();
    }
    return 0;
}
