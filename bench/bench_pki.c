/*
 * bench_pki.c - ES256 JWS sign and verify rates for a typical access token,
 * one thread, against `openssl speed ecdsap256` and libjwt 1.10 measured in
 * the same run.
 *
 *   build/bin/ztb-bench-pki [--rounds N] [--seconds S]
 *
 * Each round measures, in turn: pki sign, pki verify, pki rejects (a
 * malformed token and an unknown kid), `openssl speed` (sign and verify),
 * libjwt sign and verify used the way its documentation shows (the PEM key
 * handed over on every call). Rounds interleave the contenders so that noise
 * from other work on the machine hits all of them alike; every figure is the
 * median over the rounds, and the ratios are medians of per-round ratios.
 * It prints figures, never pass/fail, and never reads a real key store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

#include "bench_util.h"
#include "common/secret.h"
#include "pki/jws.h"
#include "pki/key.h"
#include "pki/keyset.h"

#define MAX_ROUNDS 50

/* About 600 bytes of claims, shaped like a broker access token. */
static const char claims[] =
    "{\"iss\":\"https://broker.example.org\",\"sub\":\"spiffe://example.org/agent/"
    "invoice-bot\",\"aud\":\"https://tools.example.org/billing\",\"iat\":1767225600,\"nbf\":"
    "1767225600,\"exp\":1767225660,\"jti\":\"3q2-7wAAAAAzZKqXb0AAAA\",\"client_id\":\"invoice-"
    "bot\",\"scope\":\"invoice.read\",\"authorization_details\":[{\"type\":\"ztb_action\","
    "\"action\":\"invoice.read\",\"resource\":\"https://tools.example.org/billing/invoices/"
    "2024-0042\",\"limits\":{\"max_amount\":1000,\"currency\":\"EUR\",\"rate\":\"10/min\"}}],"
    "\"act\":{\"sub\":\"spiffe://example.org/agent/orchestrator\"},\"cnf\":{\"jkt\":"
    "\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I\"},\"ztb\":{\"gen\":7,\"single_use\":false,"
    "\"policy\":\"billing-readonly-v3\",\"decision\":\"allow\"}}";

struct ctx {
    ztb_key *key;
    ztb_keyset *ks;
    char tok[4096];
    size_t toklen;
    char bad_kid[4096];
    size_t bad_kid_len;
    char *priv_pem, *pub_pem;
    size_t priv_len, pub_len;
    char *jwt_tok; /* a token libjwt made, for its own verify */
};

static int op_sign(struct ctx *c)
{
    char out[4096];
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, sizeof(out));
    static const ztb_jws_sign_opts o = {.typ = "at+jwt"};
    return ztb_jws_sign(c->key, &o, claims, sizeof(claims) - 1, &b) != ZTB_OK;
}

static int op_verify(struct ctx *c)
{
    char out[4096];
    ztb_buf p;
    ztb_buf_init_fixed(&p, out, sizeof(out));
    ztb_jws_header h;
    return ztb_jws_verify(c->ks, c->tok, c->toklen, NULL, &h, &p) != ZTB_OK;
}

static int op_reject_malformed(struct ctx *c)
{
    static const char junk[] = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    return ztb_jws_verify(c->ks, junk, sizeof(junk) - 1, NULL, NULL, NULL) != ZTB_ERR_ALG;
}

static int op_reject_unknown_kid(struct ctx *c)
{
    return ztb_jws_verify(c->ks, c->bad_kid, c->bad_kid_len, NULL, NULL, NULL) !=
           ZTB_ERR_UNKNOWN_KID;
}

static int op_libjwt_sign(struct ctx *c)
{
    jwt_t *jwt = NULL;
    int fail = jwt_new(&jwt) != 0 || jwt_add_grants_json(jwt, claims) != 0 ||
               jwt_add_header(jwt, "kid", ztb_key_kid(c->key)) != 0 ||
               jwt_set_alg(jwt, JWT_ALG_ES256, (unsigned char *)c->priv_pem, (int)c->priv_len);
    char *t = fail ? NULL : jwt_encode_str(jwt);
    fail = fail || t == NULL;
    free(t);
    jwt_free(jwt);
    return fail;
}

static int op_libjwt_verify(struct ctx *c)
{
    jwt_t *jwt = NULL;
    int fail = jwt_decode(&jwt, c->jwt_tok, (unsigned char *)c->pub_pem, (int)c->pub_len) != 0;
    jwt_free(jwt);
    return fail;
}

/* Run op for at least secs seconds; operations per second. */
static double rate(int (*op)(struct ctx *), struct ctx *c, double secs, int batch)
{
    uint64_t n = 0;
    double t0 = bench_now_s(), t;
    do {
        for (int i = 0; i < batch; i++) {
            if (op(c) != 0) {
                fprintf(stderr, "bench: an operation failed\n");
                exit(1);
            }
        }
        n += (uint64_t)batch;
        t = bench_now_s();
    } while (t - t0 < secs);
    return (double)n / (t - t0);
}

static char *steal_str(ztb_buf *b, size_t *len)
{
    char *s = ztb_buf_steal(b, len);
    if (s == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    return s;
}

static void setup(struct ctx *c)
{
    memset(c, 0, sizeof(*c));
    ztb_key *other = NULL, *pub = NULL;
    if (ztb_key_generate(&c->key) != ZTB_OK || ztb_key_generate(&other) != ZTB_OK ||
        ztb_key_public_only(c->key, &pub) != ZTB_OK ||
        ztb_keyset_new(&pub, NULL, 1, &c->ks) != ZTB_OK) {
        fprintf(stderr, "bench: key setup failed\n");
        exit(1);
    }
    ztb_buf b;
    ztb_jws_sign_opts o = {.typ = "at+jwt"};
    ztb_buf_init_fixed(&b, c->tok, sizeof(c->tok));
    if (ztb_jws_sign(c->key, &o, claims, sizeof(claims) - 1, &b) != ZTB_OK)
        exit(1);
    c->toklen = b.len;
    ztb_buf_init_fixed(&b, c->bad_kid, sizeof(c->bad_kid));
    if (ztb_jws_sign(other, &o, claims, sizeof(claims) - 1, &b) != ZTB_OK)
        exit(1);
    c->bad_kid_len = b.len;

    ztb_buf_init_secret(&b, 8192);
    if (ztb_key_private_pem(c->key, NULL, 0, &b) != ZTB_OK)
        exit(1);
    c->priv_pem = steal_str(&b, &c->priv_len);
    ztb_buf_init(&b, 8192);
    if (ztb_key_public_pem(c->key, &b) != ZTB_OK)
        exit(1);
    c->pub_pem = steal_str(&b, &c->pub_len);

    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0 || jwt_add_grants_json(jwt, claims) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_ES256, (unsigned char *)c->priv_pem, (int)c->priv_len) != 0 ||
        (c->jwt_tok = jwt_encode_str(jwt)) == NULL) {
        fprintf(stderr, "bench: libjwt setup failed\n");
        exit(1);
    }
    jwt_free(jwt);
    ztb_key_free(other);
    ztb_key_free(pub);
}

int main(int argc, char **argv)
{
    int rounds = 5;
    double secs = 1.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            secs = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--rounds N] [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || secs <= 0 || secs > 60) {
        fprintf(stderr, "bench: rounds 1..%d, seconds (0, 60]\n", MAX_ROUNDS);
        return 2;
    }
    int ossl_secs = secs < 1 ? 1 : (int)(secs + 0.5);

    struct ctx c;
    setup(&c);
    bench_note("claims %zu bytes, token %zu bytes; %d rounds of %.1f s per figure",
               sizeof(claims) - 1, c.toklen, rounds, secs);

    double sign[MAX_ROUNDS], verify[MAX_ROUNDS], rej_bad[MAX_ROUNDS], rej_kid[MAX_ROUNDS];
    double os[MAX_ROUNDS], ov[MAX_ROUNDS], ljs[MAX_ROUNDS], ljv[MAX_ROUNDS];
    double sr[MAX_ROUNDS], vr[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        sign[r] = rate(op_sign, &c, secs, 64);
        verify[r] = rate(op_verify, &c, secs, 32);
        rej_bad[r] = rate(op_reject_malformed, &c, secs / 2, 4096);
        rej_kid[r] = rate(op_reject_unknown_kid, &c, secs / 2, 4096);
        if (bench_openssl_ecdsap256(ossl_secs, &os[r], &ov[r]) != 0) {
            fprintf(stderr, "bench: cannot run `openssl speed ecdsap256`\n");
            return 1;
        }
        ljs[r] = rate(op_libjwt_sign, &c, secs, 8);
        ljv[r] = rate(op_libjwt_verify, &c, secs, 8);
        sr[r] = sign[r] / os[r];
        vr[r] = verify[r] / ov[r];
        bench_note("round %d: sign %.0f/s (openssl %.0f), verify %.0f/s (openssl %.0f), "
                   "libjwt sign %.0f/s",
                   r + 1, sign[r], os[r], verify[r], ov[r], ljs[r]);
    }
    size_t n = (size_t)rounds;
    bench_metric("claims_bytes", (double)(sizeof(claims) - 1));
    bench_metric("token_bytes", (double)c.toklen);
    bench_metric("sign_per_s", bench_median(sign, n));
    bench_metric("verify_per_s", bench_median(verify, n));
    bench_metric("reject_malformed_per_s", bench_median(rej_bad, n));
    bench_metric("reject_unknown_kid_per_s", bench_median(rej_kid, n));
    bench_metric("openssl_sign_per_s", bench_median(os, n));
    bench_metric("openssl_verify_per_s", bench_median(ov, n));
    bench_metric("libjwt_sign_per_s", bench_median(ljs, n));
    bench_metric("libjwt_verify_per_s", bench_median(ljv, n));
    bench_metric("sign_ratio", bench_median(sr, n));
    bench_metric("verify_ratio", bench_median(vr, n));
    bench_metric("sign_vs_libjwt", bench_median(sign, n) / bench_median(ljs, n));

    free(c.jwt_tok);
    ztb_free_secret(c.priv_pem, c.priv_len + 1);
    free(c.pub_pem);
    ztb_keyset_free(c.ks);
    ztb_key_free(c.key);
    return 0;
}
