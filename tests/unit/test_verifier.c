/*
 * test_verifier.c - ztb_verify: a valid token passes and hands back its
 * claims; every rejection has its own crafted token and its own code;
 * revocations arrive through a real Redis; single-use tokens are consumed
 * once across verifier replicas; DPoP proofs bind and are not replayable;
 * configuration mistakes are refused where they are made.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <ztb/ztb.h>

#include "common/base64url.h"
#include "wire/wire.h"
#include "harness.h"
#include "pki/dpop.h"
#include "pki/jwk.h"
#include "sdk/src/clock.h"
#include "sdk_test.h"

#define ISS "https://broker.test"
#define AUD "payments"
#define HTU "https://gw.test/refunds/1234"

static struct zh_redis rd;
static char *dir;
static char jwks_path[600];
static ztb_key *broker_key, *other_key, *dpop_key, *dpop_other;
static ztb_verifier *v;  /* Redis revocation */
static ztb_verifier *v2; /* a second replica on the same Redis */
static ztb_verifier *vn; /* no revocation */
static ztb_claims *cl;
static int64_t now;

static void write_jwks(ztb_key *const *keys, size_t n)
{
    char text[8192], tmp[700];
    ztb_buf b;
    ztb_buf_init_fixed(&b, text, sizeof(text));
    assert_int_equal(ztb_jwks_render((const ztb_key *const *)keys, n, &b), ZTB_OK);
    snprintf(tmp, sizeof(tmp), "%s.tmp", jwks_path);
    FILE *f = fopen(tmp, "w");
    fputs(text, f);
    fclose(f);
    chmod(tmp, 0600);
    rename(tmp, jwks_path);
}

static ztb_verifier_config *base_config(void)
{
    ztb_verifier_config *c = ztb_verifier_config_new();
    assert_non_null(c);
    assert_int_equal(ztb_verifier_config_set_issuer(c, ISS), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_audience(c, AUD), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_jwks_file(c, jwks_path), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_jwks_refetch_interval(c, 1), ZTB_OK);
    return c;
}

static ztb_verifier *redis_verifier(void)
{
    ztb_verifier_config *c = base_config();
    assert_int_equal(ztb_verifier_config_set_redis(c, rd.url), ZTB_OK);
    ztb_verifier *x = NULL;
    ztb_err rv = ztb_verifier_new(c, &x);
    if (rv != ZTB_OK)
        fail_msg("ztb_verifier_new: %s: %s", ztb_err_name(rv), ztb_verifier_errdetail(NULL));
    ztb_verifier_config_free(c);
    return x;
}

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    dir = st_tmpdir();
    snprintf(jwks_path, sizeof(jwks_path), "%s/jwks.json", dir);
    if (ztb_key_generate(&broker_key) || ztb_key_generate(&other_key) ||
        ztb_key_generate(&dpop_key) || ztb_key_generate(&dpop_other))
        return -1;
    write_jwks(&broker_key, 1);
    v = redis_verifier();
    v2 = redis_verifier();
    ztb_verifier_config *c = base_config();
    assert_int_equal(ztb_verifier_config_set_no_revocation(c), ZTB_OK);
    assert_int_equal(ztb_verifier_new(c, &vn), ZTB_OK);
    ztb_verifier_config_free(c);
    cl = ztb_claims_new();
    now = clock_now_s();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_claims_free(cl);
    ztb_verifier_free(v);
    ztb_verifier_free(v2);
    ztb_verifier_free(vn);
    ztb_key_free(broker_key);
    ztb_key_free(other_key);
    ztb_key_free(dpop_key);
    ztb_key_free(dpop_other);
    zh_redis_stop(&rd, 1);
    st_rmdir(dir);
    return 0;
}

/* ---- crafting tokens ----------------------------------------------------- */

struct tk {
    const char *iss, *aud, *scope, *resource, *jti, *agent, *extra, *cnf, *ztb_extra;
    int64_t iat, nbf, exp, gen;
    int no_nbf;
};

static unsigned jti_counter;

/* Claims as the broker writes them, with the fields of t where given. */
static const char *claims_json(const struct tk *t)
{
    static char out[8192];
    static char jti[32];
    snprintf(jti, sizeof(jti), "jti-%u-%d", ++jti_counter, (int)getpid());
    const char *scope = t->scope ? t->scope : "payments:refund";
    char nbf[48] = "";
    if (!t->no_nbf)
        snprintf(nbf, sizeof(nbf), "\"nbf\":%lld,", (long long)(t->nbf ? t->nbf : now));
    char ident[300] = "";
    const char *res = t->resource ? t->resource : "orders/1234";
    if (strcmp(res, "-") != 0)
        snprintf(ident, sizeof(ident), ",\"identifier\":\"%s\"", res);
    snprintf(
        out, sizeof(out),
        "{\"iss\":\"%s\",\"sub\":\"spiffe://ztb.local/agent/%s\",\"aud\":\"%s\","
        "\"iat\":%lld,%s\"exp\":%lld,\"jti\":\"%s\",\"client_id\":"
        "\"spiffe://ztb.local/agent/%s\",\"scope\":\"%s\",\"authorization_details\":"
        "[{\"type\":\"payment\",\"actions\":[\"%s\"],\"locations\":[\"%s\"]%s,"
        "\"amount\":40,\"limits\":{\"daily\":500}}]%s%s,\"ztb\":{\"agent\":\"%s\",\"gen\":%lld,"
        "\"rule\":\"refunds-small\"%s}}",
        t->iss ? t->iss : ISS, t->agent ? t->agent : "bot", t->aud ? t->aud : AUD,
        (long long)(t->iat ? t->iat : now), nbf, (long long)(t->exp ? t->exp : now + 60),
        t->jti ? t->jti : jti, t->agent ? t->agent : "bot", scope, scope, t->aud ? t->aud : AUD,
        ident, t->cnf ? t->cnf : "", t->extra ? t->extra : "", t->agent ? t->agent : "bot",
        (long long)(t->gen ? t->gen : 3), t->ztb_extra ? t->ztb_extra : "");
    return out;
}

static const char *mint(const struct tk *t)
{
    return st_sign(broker_key, NULL, claims_json(t));
}

static const struct tk plain = {0};

/* A token with any header and payload and a signature of the right size that
 * verifies nothing: for rejections decided before the signature is checked. */
static const char *craft(const char *header, const char *payload)
{
    static char out[16384];
    uint8_t sig[64] = {1};
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, sizeof(out));
    ztb_b64url_encode_buf(&b, header, strlen(header));
    ztb_buf_append_byte(&b, '.');
    ztb_b64url_encode_buf(&b, payload, strlen(payload));
    ztb_buf_append_byte(&b, '.');
    ztb_b64url_encode_buf(&b, sig, sizeof(sig));
    return out;
}

static ztb_err verify(ztb_verifier *x, const char *tok, const char *action, const char *resource)
{
    ztb_expect e = {.action = action, .resource = resource};
    return ztb_verify(x, tok, &e, cl);
}

static ztb_err verify_std(const char *tok)
{
    return verify(v, tok, "payments:refund", "orders/1234");
}

/* ---- the valid token ----------------------------------------------------- */

static void test_valid_token_and_claims(void **state)
{
    (void)state;
    struct tk t = {.extra = ",\"act\":{\"sub\":\"spiffe://ztb.local/agent/orchestrator\"}"};
    const char *tok = mint(&t);
    assert_non_null(tok);
    assert_int_equal(verify_std(tok), ZTB_OK);
    assert_string_equal(ztb_claims_subject(cl), "spiffe://ztb.local/agent/bot");
    assert_string_equal(ztb_claims_agent(cl), "bot");
    assert_string_equal(ztb_claims_action(cl), "payments:refund");
    assert_string_equal(ztb_claims_resource(cl), "orders/1234");
    assert_string_equal(ztb_claims_actor(cl), "spiffe://ztb.local/agent/orchestrator");
    assert_string_equal(ztb_claims_rule(cl), "refunds-small");
    assert_non_null(ztb_claims_jti(cl));
    assert_int_equal(ztb_claims_expires_at(cl), now + 60);
    assert_false(ztb_claims_single_use(cl));
    double amount = 0;
    assert_int_equal(ztb_claims_detail_number(cl, "amount", &amount), ZTB_OK);
    assert_true(amount == 40);
    assert_int_equal(ztb_claims_detail_number(cl, "limits.daily", &amount), ZTB_OK);
    assert_true(amount == 500);
    assert_int_equal(ztb_claims_detail_number(cl, "other", &amount), ZTB_ERR_NOT_FOUND);
    assert_int_equal(ztb_claims_detail_number(cl, "limits.other", &amount), ZTB_ERR_NOT_FOUND);
    assert_int_equal(ztb_claims_detail_number(cl, "amount.x", &amount), ZTB_ERR_NOT_FOUND);
    assert_int_equal(ztb_claims_detail_number(cl, "type", &amount), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_claims_detail_number(cl, "limits", &amount), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_claims_detail_number(cl, "limits.", &amount), ZTB_ERR_INVALID_ARG);
    assert_string_equal(ztb_claims_details_type(cl), "payment");
    assert_non_null(strstr(ztb_claims_details_json(cl), "\"amount\":40"));
    assert_non_null(strstr(ztb_claims_json(cl), "\"scope\":\"payments:refund\""));
    /* a token verifies again (not single-use), and without a claims object */
    ztb_expect e = {.action = "payments:refund", .resource = "orders/1234"};
    assert_int_equal(ztb_verify(v, tok, &e, NULL), ZTB_OK);
    /* the typ RFC 9068 also allows */
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":\"application/at+jwt\",\"kid\":\"%s\"}",
             ztb_key_kid(broker_key));
    assert_int_equal(verify_std(st_sign(broker_key, hdr, claims_json(&plain))), ZTB_OK);
    /* a failed verification leaves no claims behind */
    assert_int_equal(verify(v, tok, "payments:other", "orders/1234"), ZTB_ERR_ACTION);
    assert_null(ztb_claims_subject(cl));
    assert_null(ztb_claims_json(cl));
}

/* ---- the token itself ---------------------------------------------------- */

static void expect_code(const char *tok, ztb_err want)
{
    ztb_err rv = verify_std(tok);
    if (rv != want)
        fail_msg("want %s, got %s (%s)", ztb_err_name(want), ztb_err_name(rv),
                 ztb_verifier_errdetail(v));
    assert_string_not_equal(ztb_verifier_errdetail(v), "");
}

static void test_rejects_malformed_tokens(void **state)
{
    (void)state;
    static char big[9000];
    memset(big, 'a', sizeof(big) - 1);
    expect_code(big, ZTB_ERR_TOO_LARGE);
    expect_code("not-a-token", ZTB_ERR_JWS_FORMAT);
    expect_code("a.b.c.d", ZTB_ERR_JWS_FORMAT);
    expect_code("e30!.e30.AAAA", ZTB_ERR_BASE64);
    char good[4096], buf[4096];
    snprintf(good, sizeof(good), "%s", mint(&plain));
    /* header not JSON */
    snprintf(buf, sizeof(buf), "bm90IGpzb24%s", strchr(good, '.'));
    expect_code(buf, ZTB_ERR_JSON);
    /* header without alg */
    snprintf(buf, sizeof(buf), "eyJ0eXAiOiJhdCtqd3QifQ%s", strchr(good, '.'));
    expect_code(buf, ZTB_ERR_JWS_HEADER);
    char hdr[512];
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\",\"jku\":\"https://evil\"}",
             ztb_key_kid(broker_key));
    expect_code(craft(hdr, claims_json(&plain)), ZTB_ERR_FORBIDDEN_HEADER);
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\",\"crit\":[\"x\"]}",
             ztb_key_kid(broker_key));
    expect_code(craft(hdr, claims_json(&plain)), ZTB_ERR_FORBIDDEN_HEADER);
    /* alg confusion: a token that names another algorithm */
    snprintf(buf, sizeof(buf), "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9%s", strchr(good, '.'));
    expect_code(buf, ZTB_ERR_ALG);
    snprintf(buf, sizeof(buf), "eyJhbGciOiJub25lIn0%s", strchr(good, '.'));
    expect_code(buf, ZTB_ERR_ALG);
    /* signed by a key the broker does not publish */
    expect_code(st_sign(other_key, NULL, claims_json(&plain)), ZTB_ERR_UNKNOWN_KID);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}");
    expect_code(st_sign(broker_key, hdr, claims_json(&plain)), ZTB_ERR_UNKNOWN_KID);
    /* a signature of the wrong length (e.g. DER) */
    snprintf(buf, sizeof(buf), "%s", good);
    strcpy(strrchr(buf, '.') + 1, "AAAA");
    expect_code(buf, ZTB_ERR_SIG_FORMAT);
    /* a valid signature over other claims */
    char other[4096];
    snprintf(other, sizeof(other), "%s", mint(&plain));
    snprintf(buf, sizeof(buf), "%.*s%s", (int)(strrchr(good, '.') - good), good,
             strrchr(other, '.'));
    expect_code(buf, ZTB_ERR_SIGNATURE);
}

static void test_rejects_wrong_type_and_claims(void **state)
{
    (void)state;
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             ztb_key_kid(broker_key));
    expect_code(st_sign(broker_key, hdr, claims_json(&plain)), ZTB_ERR_TYP);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", ztb_key_kid(broker_key));
    expect_code(st_sign(broker_key, hdr, claims_json(&plain)), ZTB_ERR_TYP);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":\"dpop+jwt\",\"kid\":\"%s\"}",
             ztb_key_kid(broker_key));
    expect_code(st_sign(broker_key, hdr, claims_json(&plain)), ZTB_ERR_TYP);
    expect_code(st_sign(broker_key, NULL, "{\"iss\":\"" ISS "\"}"), ZTB_ERR_CLAIMS);
    expect_code(st_sign(broker_key, NULL, "[1,2]"), ZTB_ERR_CLAIMS);
    expect_code(st_sign(broker_key, NULL, "{\"iss\" "), ZTB_ERR_JSON);
}

static void test_rejects_issuer_audience_times(void **state)
{
    (void)state;
    struct tk t = {.iss = "https://evil.test"};
    expect_code(mint(&t), ZTB_ERR_ISSUER);
    /* the operator's log names both values */
    assert_non_null(strstr(ztb_verifier_errdetail(v), "expected \"" ISS "\""));
    assert_non_null(strstr(ztb_verifier_errdetail(v), "received \"https://evil.test\""));
    t = (struct tk){.iss = ISS "/"};
    expect_code(mint(&t), ZTB_ERR_ISSUER);
    t = (struct tk){.aud = "crm"};
    expect_code(mint(&t), ZTB_ERR_AUDIENCE);
    assert_non_null(strstr(ztb_verifier_errdetail(v), "expected \"payments\""));
    assert_non_null(strstr(ztb_verifier_errdetail(v), "received \"crm\""));
    /* skew is 30 s by default */
    t = (struct tk){.iat = now - 200, .nbf = now - 200, .exp = now - 31};
    expect_code(mint(&t), ZTB_ERR_EXPIRED);
    t = (struct tk){.iat = now - 200, .nbf = now - 200, .exp = now - 29};
    assert_int_equal(verify_std(mint(&t)), ZTB_OK);
    t = (struct tk){.nbf = now + 31, .iat = now - 1};
    expect_code(mint(&t), ZTB_ERR_NOT_YET_VALID);
    t = (struct tk){.nbf = now + 29, .iat = now - 1};
    assert_int_equal(verify_std(mint(&t)), ZTB_OK);
    t = (struct tk){.iat = now + 40, .exp = now + 100, .no_nbf = 1};
    expect_code(mint(&t), ZTB_ERR_IAT);
}

static void test_rejects_action_and_resource(void **state)
{
    (void)state;
    const char *tok = mint(&plain);
    assert_int_equal(verify(v, tok, "payments:read", "orders/1234"), ZTB_ERR_ACTION);
    assert_int_equal(verify(v, tok, "payments:refund", "orders/9999"), ZTB_ERR_RESOURCE);
    assert_int_equal(verify(v, tok, "payments:refund", "orders/12345"), ZTB_ERR_RESOURCE);
    /* the gateway names no resource, the token does */
    assert_int_equal(verify(v, tok, "payments:refund", NULL), ZTB_ERR_RESOURCE);
    /* the token names none, the gateway does */
    struct tk t = {.resource = "-"};
    const char *none = mint(&t);
    assert_int_equal(verify(v, none, "payments:refund", "orders/1234"), ZTB_ERR_RESOURCE);
    assert_int_equal(verify(v, none, "payments:refund", NULL), ZTB_OK);
    /* any resource of the action, when the gateway says so */
    ztb_expect e = {.action = "payments:refund", .flags = ZTB_EXPECT_ANY_RESOURCE};
    assert_int_equal(ztb_verify(v, tok, &e, cl), ZTB_OK);
    /* arguments */
    ztb_expect bad = {.resource = "orders/1234"};
    assert_int_equal(ztb_verify(v, tok, &bad, cl), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verify(v, NULL, &e, cl), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verify(NULL, tok, &e, cl), ZTB_ERR_INVALID_ARG);
}

/* ---- bindings ------------------------------------------------------------ */

static const char *bound_token(const ztb_key *k)
{
    char cnf[128];
    snprintf(cnf, sizeof(cnf), ",\"cnf\":{\"jkt\":\"%s\"}", ztb_key_kid(k));
    struct tk t = {.cnf = cnf};
    return mint(&t);
}

static const char *proof(const ztb_key *k, const char *htm, const char *htu, const char *tok,
                         int64_t iat)
{
    static char out[4096];
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, sizeof(out));
    assert_int_equal(ztb_dpop_proof_make(k, htm, htu, iat, tok, &b), ZTB_OK);
    return out;
}

static ztb_err verify_dpop(ztb_verifier *x, const char *tok, const char *prf, const char *htm,
                           const char *htu)
{
    ztb_expect e = {.action = "payments:refund",
                    .resource = "orders/1234",
                    .dpop_proof = prf,
                    .htm = htm,
                    .htu = htu,
                    .flags = ZTB_EXPECT_DPOP_SCHEME};
    return ztb_verify(x, tok, &e, cl);
}

static void test_dpop_binding(void **state)
{
    (void)state;
    char tok[4096], prf[4096];
    snprintf(tok, sizeof(tok), "%s", bound_token(dpop_key));
    snprintf(prf, sizeof(prf), "%s", proof(dpop_key, "POST", HTU, tok, now));
    assert_int_equal(verify_dpop(v, tok, prf, "POST", HTU), ZTB_OK);
    /* the same proof again, here or at another replica */
    assert_int_equal(verify_dpop(v, tok, prf, "POST", HTU), ZTB_ERR_DPOP_REPLAY);
    assert_int_equal(verify_dpop(v2, tok, prf, "POST", HTU), ZTB_ERR_DPOP_REPLAY);
    /* a replica with no skew at all still keeps the proof id until no
     * verifier could accept the proof: its iat + the proof age (60) + the
     * largest skew any verifier may have (a replica with that skew would
     * otherwise accept the replay once the marker is gone) */
    ztb_verifier_config *tc = base_config();
    assert_int_equal(ztb_verifier_config_set_redis(tc, rd.url), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_skew(tc, 0), ZTB_OK);
    ztb_verifier *tight = NULL;
    assert_int_equal(ztb_verifier_new(tc, &tight), ZTB_OK);
    ztb_verifier_config_free(tc);
    int64_t t0 = clock_now_s();
    snprintf(prf, sizeof(prf), "%s", proof(dpop_key, "POST", HTU, tok, t0));
    assert_int_equal(verify_dpop(tight, tok, prf, "POST", HTU), ZTB_OK);
    assert_int_equal(verify_dpop(v, tok, prf, "POST", HTU), ZTB_ERR_DPOP_REPLAY);
    ztb_verifier_free(tight);
    ztb_dpop_result pd;
    assert_int_equal(ztb_dpop_proof_check(prf, strlen(prf), "POST", HTU, tok, t0, 60, 0, &pd),
                     ZTB_OK);
    redisContext *c = zh_redis_connect(&rd);
    redisReply *ttl = redisCommand(c, "PTTL " ZTB_WIRE_DPOP_KEY_FMT, pd.jkt, pd.jti);
    assert_true(ttl->type == REDIS_REPLY_INTEGER);
    if (ttl->integer < (60 + ZTB_WIRE_MAX_SKEW_S - 3) * 1000)
        fail_msg("the proof id is kept %lld ms, want about %d s", ttl->integer,
                 60 + ZTB_WIRE_MAX_SKEW_S + 1);
    freeReplyObject(ttl);
    redisFree(c);
    /* without Redis the replay cache is the verifier's own */
    snprintf(prf, sizeof(prf), "%s", proof(dpop_key, "POST", HTU, tok, now));
    assert_int_equal(verify_dpop(vn, tok, prf, "POST", HTU), ZTB_OK);
    assert_int_equal(verify_dpop(vn, tok, prf, "POST", HTU), ZTB_ERR_DPOP_REPLAY);
    /* no proof for a bound token */
    assert_int_equal(verify_dpop(v, tok, NULL, "POST", HTU), ZTB_ERR_BINDING);
    /* a proof from another key */
    snprintf(prf, sizeof(prf), "%s", proof(dpop_other, "POST", HTU, tok, now));
    assert_int_equal(verify_dpop(v, tok, prf, "POST", HTU), ZTB_ERR_BINDING);
    /* a proof for another request, too old, not for this token, or garbage */
    snprintf(prf, sizeof(prf), "%s", proof(dpop_key, "GET", HTU, tok, now));
    assert_int_equal(verify_dpop(v, tok, prf, "POST", HTU), ZTB_ERR_DPOP);
    snprintf(prf, sizeof(prf), "%s", proof(dpop_key, "POST", "https://gw.test/other", tok, now));
    assert_int_equal(verify_dpop(v, tok, prf, "POST", HTU), ZTB_ERR_DPOP);
    snprintf(prf, sizeof(prf), "%s", proof(dpop_key, "POST", HTU, tok, now - 600));
    assert_int_equal(verify_dpop(v, tok, prf, "POST", HTU), ZTB_ERR_DPOP);
    snprintf(prf, sizeof(prf), "%s", proof(dpop_key, "POST", HTU, NULL, now));
    assert_int_equal(verify_dpop(v, tok, prf, "POST", HTU), ZTB_ERR_DPOP);
    assert_int_equal(verify_dpop(v, tok, "garbage", "POST", HTU), ZTB_ERR_DPOP);
    /* the query is not part of htu */
    snprintf(prf, sizeof(prf), "%s", proof(dpop_key, "POST", HTU, tok, now));
    assert_int_equal(verify_dpop(v, tok, prf, "POST", HTU "?x=1"), ZTB_OK);
    /* method and URL must be given with a proof */
    snprintf(prf, sizeof(prf), "%s", proof(dpop_key, "POST", HTU, tok, now));
    assert_int_equal(verify_dpop(v, tok, prf, NULL, HTU), ZTB_ERR_INVALID_ARG);
}

/* ATTACK: a replica that accepts older proofs (ztb_verifier_config_set_dpop_max_age
 * up to ZTB_WIRE_DPOP_MAX_AGE_S) shares the Redis of one that accepts 60 s:
 * the proof id the strict one records must outlive the lenient one's window,
 * or a proof used once at the first is accepted again at the second. */
static void test_dpop_marker_outlives_every_proof_age(void **state)
{
    (void)state;
    ztb_verifier_config *lc = base_config();
    assert_int_equal(ztb_verifier_config_set_redis(lc, rd.url), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_dpop_max_age(lc, ZTB_WIRE_DPOP_MAX_AGE_S), ZTB_OK);
    ztb_verifier *lenient = NULL;
    assert_int_equal(ztb_verifier_new(lc, &lenient), ZTB_OK);
    ztb_verifier_config_free(lc);
    char tok[4096], prf[4096];
    snprintf(tok, sizeof(tok), "%s", bound_token(dpop_key));
    int64_t t0 = clock_now_s();
    snprintf(prf, sizeof(prf), "%s", proof(dpop_key, "POST", HTU, tok, t0));
    assert_int_equal(verify_dpop(v, tok, prf, "POST", HTU), ZTB_OK); /* 60 s, the default */
    assert_int_equal(verify_dpop(lenient, tok, prf, "POST", HTU), ZTB_ERR_DPOP_REPLAY);
    /* the lenient replica would take the proof until iat + its age + its skew */
    ztb_dpop_result pd;
    int64_t last = t0 + ZTB_WIRE_DPOP_MAX_AGE_S + 30;
    assert_int_equal(ztb_dpop_proof_check(prf, strlen(prf), "POST", HTU, tok, last,
                                          ZTB_WIRE_DPOP_MAX_AGE_S, 30, &pd),
                     ZTB_OK);
    /* so the marker must still be there then */
    redisContext *c = zh_redis_connect(&rd);
    redisReply *ttl = redisCommand(c, "PTTL " ZTB_WIRE_DPOP_KEY_FMT, pd.jkt, pd.jti);
    assert_true(ttl->type == REDIS_REPLY_INTEGER);
    long long need_ms = (long long)(last - clock_now_s()) * 1000;
    if (ttl->integer < need_ms)
        fail_msg("the proof id is kept %lld ms, a replica with a %d s proof age accepts the "
                 "proof for %lld ms more",
                 ttl->integer, ZTB_WIRE_DPOP_MAX_AGE_S, need_ms);
    freeReplyObject(ttl);
    redisFree(c);
    ztb_verifier_free(lenient);
}

static void test_other_bindings(void **state)
{
    (void)state;
    struct tk t = {.cnf =
                       ",\"cnf\":{\"x5t#S256\":\"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2\"}"};
    char tok[4096];
    snprintf(tok, sizeof(tok), "%s", mint(&t));
    ztb_expect e = {.action = "payments:refund", .resource = "orders/1234"};
    assert_int_equal(ztb_verify(v, tok, &e, cl), ZTB_ERR_BINDING);
    e.x5t_s256 = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
    assert_int_equal(ztb_verify(v, tok, &e, cl), ZTB_OK);
    e.x5t_s256 = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg3";
    assert_int_equal(ztb_verify(v, tok, &e, cl), ZTB_ERR_BINDING);
    /* a binding this verifier does not understand is not "no binding" */
    t = (struct tk){.cnf = ",\"cnf\":{\"kid\":\"x\"}"};
    expect_code(mint(&t), ZTB_ERR_BINDING);
    t = (struct tk){.cnf = ",\"cnf\":{}"};
    expect_code(mint(&t), ZTB_ERR_BINDING);
    /* a gateway that requires DPoP refuses bearer tokens */
    ztb_verifier_config *c = base_config();
    assert_int_equal(ztb_verifier_config_set_no_revocation(c), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_require_dpop(c, 1), ZTB_OK);
    ztb_verifier *strict;
    assert_int_equal(ztb_verifier_new(c, &strict), ZTB_OK);
    ztb_verifier_config_free(c);
    assert_int_equal(verify(strict, mint(&plain), "payments:refund", "orders/1234"),
                     ZTB_ERR_BINDING);
    snprintf(tok, sizeof(tok), "%s", bound_token(dpop_key));
    assert_int_equal(verify_dpop(strict, tok, proof(dpop_key, "POST", HTU, tok, now), "POST", HTU),
                     ZTB_OK);
    ztb_verifier_free(strict);
    /* the request used the DPoP scheme (ZTB_EXPECT_DPOP_SCHEME): a bearer
     * token, or one bound to a certificate, presented as DPoP is refused
     * (RFC 9449 §7.1), a bound one with its proof goes through */
    ztb_expect d = {
        .action = "payments:refund", .resource = "orders/1234", .flags = ZTB_EXPECT_DPOP_SCHEME};
    assert_int_equal(ztb_verify(vn, mint(&plain), &d, cl), ZTB_ERR_BINDING);
    t = (struct tk){.cnf =
                        ",\"cnf\":{\"x5t#S256\":\"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2\"}"};
    d.x5t_s256 = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
    assert_int_equal(ztb_verify(vn, mint(&t), &d, cl), ZTB_ERR_BINDING);
    d.x5t_s256 = NULL;
    snprintf(tok, sizeof(tok), "%s", bound_token(dpop_key));
    d.dpop_proof = proof(dpop_key, "POST", HTU, tok, now);
    d.htm = "POST";
    d.htu = HTU;
    assert_int_equal(ztb_verify(vn, tok, &d, cl), ZTB_OK);
    /* ... and the same bound token with a fresh proof but without the flag
     * (the client sent "Authorization: Bearer" and a DPoP header): refused */
    d.dpop_proof = proof(dpop_key, "POST", HTU, tok, now);
    d.flags = 0;
    assert_int_equal(ztb_verify(vn, tok, &d, cl), ZTB_ERR_BINDING);
}

/* ---- revocation ---------------------------------------------------------- */

static void redis_cmd(const char *fmt, const char *a, const char *b)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, fmt, a, b);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

/* Publish an event as the broker does, and wait until v refuses tok with want. */
static void revoke_and_wait(const char *event, const char *tok, ztb_err want)
{
    redis_cmd("ZADD ztb:{rev}:events +inf %s", event, "");
    redis_cmd("PUBLISH ztb:revocations %s", event, "");
    ztb_err rv = ZTB_OK;
    for (int i = 0; i < 500 && (rv = verify_std(tok)) != want; i++)
        clock_sleep_ms(10);
    if (rv != want)
        fail_msg("after %s: want %s, got %s", event, ztb_err_name(want), ztb_err_name(rv));
    /* the other replica sees it too */
    for (int i = 0; i < 500 && (rv = verify(v2, tok, "payments:refund", "orders/1234")) != want;
         i++)
        clock_sleep_ms(10);
    assert_int_equal(rv, want);
}

static void test_revocations(void **state)
{
    (void)state;
    char ev[256], tok[4096];
    struct tk t = {.jti = "revoked-one"};
    snprintf(tok, sizeof(tok), "%s", mint(&t));
    assert_int_equal(verify_std(tok), ZTB_OK);
    snprintf(ev, sizeof(ev), "{\"type\":\"jti\",\"id\":\"revoked-one\",\"exp\":%lld}",
             (long long)now + 60);
    revoke_and_wait(ev, tok, ZTB_ERR_REVOKED);
    /* another token of the same agent is still fine */
    assert_int_equal(verify_std(mint(&plain)), ZTB_OK);

    t = (struct tk){.agent = "bot2", .gen = 3};
    snprintf(tok, sizeof(tok), "%s", mint(&t));
    snprintf(ev, sizeof(ev), "{\"type\":\"agent\",\"id\":\"bot2\",\"gen\":4,\"exp\":%lld}",
             (long long)now + 3600);
    revoke_and_wait(ev, tok, ZTB_ERR_AGENT_REVOKED);
    t.gen = 4; /* its tokens of the new generation are fine */
    assert_int_equal(verify_std(mint(&t)), ZTB_OK);

    t = (struct tk){.agent = "bot3"};
    snprintf(tok, sizeof(tok), "%s", mint(&t));
    snprintf(ev, sizeof(ev), "{\"type\":\"key\",\"id\":\"%s\",\"exp\":%lld}",
             ztb_key_kid(broker_key), (long long)now + 3600);
    revoke_and_wait(ev, tok, ZTB_ERR_KEY_TAINTED);
    redis_cmd("DEL ztb:{rev}:events%s%s", "", "");
    ztb_verifier_free(v); /* untaint: fresh verifiers load the (now empty) state */
    ztb_verifier_free(v2);
    v = redis_verifier();
    v2 = redis_verifier();
    assert_int_equal(verify_std(tok), ZTB_OK);

    snprintf(ev, sizeof(ev), "{\"type\":\"audience\",\"id\":\"%s\",\"exp\":0}", AUD);
    revoke_and_wait(ev, tok, ZTB_ERR_AUDIENCE_KILLED);
    snprintf(ev, sizeof(ev), "{\"type\":\"audience\",\"id\":\"%s\",\"lifted\":true}", AUD);
    redis_cmd("DEL ztb:{rev}:events%s%s", "", "");
    redis_cmd("PUBLISH ztb:revocations %s", ev, "");
    ztb_err rv = ZTB_ERR_AUDIENCE_KILLED;
    for (int i = 0; i < 500 && (rv = verify_std(tok)) != ZTB_OK; i++)
        clock_sleep_ms(10);
    assert_int_equal(rv, ZTB_OK);

    /* the verifier without revocation accepts what was revoked (its explicit choice) */
    t = (struct tk){.jti = "revoked-one"};
    assert_int_equal(verify(vn, mint(&t), "payments:refund", "orders/1234"), ZTB_OK);
}

static void test_single_use(void **state)
{
    (void)state;
    struct tk t = {.ztb_extra = ",\"single_use\":true"};
    char tok[4096];
    snprintf(tok, sizeof(tok), "%s", mint(&t));
    /* a failed check does not consume it */
    assert_int_equal(verify(v, tok, "payments:other", "orders/1234"), ZTB_ERR_ACTION);
    assert_int_equal(verify_std(tok), ZTB_OK);
    assert_true(ztb_claims_single_use(cl));
    assert_int_equal(verify_std(tok), ZTB_ERR_REPLAY);
    /* at any replica */
    assert_int_equal(verify(v2, tok, "payments:refund", "orders/1234"), ZTB_ERR_REPLAY);
    /* the key lives as long as any verifier could accept the token: until
     * exp (now + 60) + the largest skew a verifier may have, not this one's 30 */
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "KEYS ztb:used:*");
    assert_true(r->elements >= 1);
    redisReply *ttl = redisCommand(c, "PTTL %s", r->element[0]->str);
    assert_true(ttl->integer > (60 + ZTB_WIRE_MAX_SKEW_S - 10) * 1000 &&
                ttl->integer <= (60 + ZTB_WIRE_MAX_SKEW_S + 1) * 1000);
    freeReplyObject(ttl);
    freeReplyObject(r);
    redisFree(c);
    /* without Redis a single-use token cannot be consumed safely: refused */
    snprintf(tok, sizeof(tok), "%s", mint(&t));
    assert_int_equal(verify(vn, tok, "payments:refund", "orders/1234"), ZTB_ERR_SINGLE_USE);
}

static void test_feed_lost(void **state)
{
    (void)state;
    const char *tok = mint(&plain);
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", tok);
    assert_int_equal(verify_std(copy), ZTB_OK);
    zh_redis_kill(&rd);
    ztb_err rv = ZTB_OK;
    for (int i = 0; i < 500 && (rv = verify_std(copy)) == ZTB_OK; i++)
        clock_sleep_ms(10);
    assert_int_equal(rv, ZTB_ERR_REVOCATION_STALE);
    /* nor a single-use token: it is refused before anything is consumed */
    struct tk t = {.ztb_extra = ",\"single_use\":true"};
    assert_int_equal(verify_std(mint(&t)), ZTB_ERR_REVOCATION_STALE);
    zh_redis_restart(&rd);
    for (int i = 0; i < 700 && (rv = verify_std(copy)) != ZTB_OK; i++)
        clock_sleep_ms(10);
    assert_int_equal(rv, ZTB_OK);
    ztb_verifier_stats st = ZTB_VERIFIER_STATS_INIT;
    assert_int_equal(ztb_verifier_stats_get(v, &st), ZTB_OK);
    assert_true(st.revocation_live);
    assert_true(st.revocation_syncs >= 2);
    assert_int_equal(st.jwks_keys, 1);
}

/* ztb_verifier_stats carries its size: an unset size is refused, an older
 * (shorter) struct is filled only as far as it goes, a newer (longer) one
 * learns how many bytes this library filled. */
static void test_stats_struct_size(void **state)
{
    (void)state;
    ztb_verifier_stats st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(ztb_verifier_stats_get(v, &st), ZTB_ERR_INVALID_ARG); /* size not set */
    assert_int_equal(ztb_verifier_stats_get(v, NULL), ZTB_ERR_INVALID_ARG);

    /* a caller built when the struct ended after jwks_fetches */
    size_t old = offsetof(ztb_verifier_stats, jwks_fetches) + sizeof(uint64_t);
    unsigned char buf[sizeof(ztb_verifier_stats) + 64];
    memset(buf, 0xa5, sizeof(buf));
    ztb_verifier_stats *p = (ztb_verifier_stats *)(void *)buf;
    p->struct_size = old;
    assert_int_equal(ztb_verifier_stats_get(v, p), ZTB_OK);
    assert_int_equal(p->struct_size, old);
    assert_int_equal(p->jwks_keys, 1);
    for (size_t i = old; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xa5); /* nothing past what it knows */

    /* a caller built with a longer struct than this library knows */
    memset(buf, 0xa5, sizeof(buf));
    p->struct_size = sizeof(buf);
    assert_int_equal(ztb_verifier_stats_get(v, p), ZTB_OK);
    assert_int_equal(p->struct_size, sizeof(ztb_verifier_stats));
    assert_int_equal(p->jwks_keys, 1);
    assert_true(p->revocation_syncs >= 1); /* a field past the old end, filled */
    for (size_t i = sizeof(ztb_verifier_stats); i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xa5);

    /* the initialiser sets the size; the struct can be passed again */
    ztb_verifier_stats cur = ZTB_VERIFIER_STATS_INIT;
    assert_int_equal(cur.struct_size, sizeof(cur));
    assert_int_equal(ztb_verifier_stats_get(v, &cur), ZTB_OK);
    assert_int_equal(ztb_verifier_stats_get(v, &cur), ZTB_OK);
    assert_int_equal(cur.struct_size, sizeof(cur));
}

/* The public cap: a verifier whose revocation set is full of live entries
 * refuses every token, says so in its stats, and recovers on a reload. */
static void test_revocation_cap(void **state)
{
    (void)state;
    ztb_verifier_config *c = base_config();
    assert_int_equal(ztb_verifier_config_set_revocation_max(c, 0), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verifier_config_set_revocation_max(NULL, 5), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verifier_config_set_revocation_max(c, 2), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_redis(c, rd.url), ZTB_OK);
    redis_cmd("DEL ztb:{rev}:events%s%s", "", "");
    ztb_verifier *x = NULL;
    assert_int_equal(ztb_verifier_new(c, &x), ZTB_OK);
    ztb_verifier_config_free(c);
    char tok[4096];
    snprintf(tok, sizeof(tok), "%s", mint(&plain));
    assert_int_equal(verify(x, tok, "payments:refund", "orders/1234"), ZTB_OK);
    char ev[256];
    ztb_err rv = ZTB_OK;
    for (int i = 0; i < 3; i++) {
        snprintf(ev, sizeof(ev), "{\"type\":\"jti\",\"id\":\"cap-%d\",\"exp\":%lld}", i,
                 (long long)now + 600);
        redis_cmd("ZADD ztb:{rev}:events +inf %s", ev, "");
        redis_cmd("PUBLISH ztb:revocations %s", ev, "");
    }
    for (int i = 0; i < 500 && (rv = verify(x, tok, "payments:refund", "orders/1234")) == ZTB_OK;
         i++)
        clock_sleep_ms(10);
    assert_int_equal(rv, ZTB_ERR_REVOCATION_STALE); /* a token nobody revoked */
    ztb_verifier_stats st = ZTB_VERIFIER_STATS_INIT;
    assert_int_equal(ztb_verifier_stats_get(x, &st), ZTB_OK);
    assert_true(st.revocation_full);
    assert_true(st.revocation_refused >= 1);
    redis_cmd("DEL ztb:{rev}:events%s%s", "", "");
    for (int i = 0; i < 700 && (rv = verify(x, tok, "payments:refund", "orders/1234")) != ZTB_OK;
         i++)
        clock_sleep_ms(10);
    assert_int_equal(rv, ZTB_OK);
    assert_int_equal(ztb_verifier_stats_get(x, &st), ZTB_OK);
    assert_false(st.revocation_full);
    ztb_verifier_free(x);
}

/* ---- keys ---------------------------------------------------------------- */

static void test_key_rotation(void **state)
{
    (void)state;
    ztb_key *next;
    assert_int_equal(ztb_key_generate(&next), ZTB_OK);
    ztb_key *both[2] = {broker_key, next};
    write_jwks(both, 2);
    /* a token from the new key: fetched on demand, old kid still fine */
    assert_int_equal(verify_std(st_sign(next, NULL, claims_json(&plain))), ZTB_OK);
    assert_int_equal(verify_std(mint(&plain)), ZTB_OK);
    /* retired: the refresher notices the file changed (it looks every 5 s) */
    write_jwks(&broker_key, 1);
    ztb_err rv = ZTB_OK;
    for (int i = 0; i < 80 && rv == ZTB_OK; i++) {
        clock_sleep_ms(100);
        rv = verify_std(st_sign(next, NULL, claims_json(&plain)));
    }
    assert_int_equal(rv, ZTB_ERR_UNKNOWN_KID);
    assert_int_equal(verify_std(mint(&plain)), ZTB_OK);
    ztb_key_free(next);
}

/* ---- configuration ------------------------------------------------------- */

/* ---- a verifier that cannot refresh its keys ------------------------------ */

struct jwks_host {
    char jwks[8192];
    _Atomic unsigned status;
};

static void jwks_handler(void *ud, const struct st_req *rq, struct st_resp *rs)
{
    struct jwks_host *h = ud;
    if (strcmp(rq->url, "/jwks") != 0)
        return;
    st_resp_json(rs, atomic_load(&h->status), h->jwks);
    st_resp_header(rs, "Cache-Control", "public, max-age=2");
}

/*
 * The broker's JWKS says max-age=2; then the broker cannot be reached. Keys
 * not confirmed for longer than max-age plus the margin are refused (a key
 * withdrawn or tainted meanwhile is not trusted forever), with a clear
 * reason, and trusted again once the keys are fetched. The refresh itself
 * follows the max-age (2 s), not the 30 s refetch interval.
 */
static void test_stale_jwks_refused(void **state)
{
    (void)state;
    static struct jwks_host h;
    ztb_buf b;
    ztb_buf_init_fixed(&b, h.jwks, sizeof(h.jwks));
    assert_int_equal(ztb_jwks_render((const ztb_key *const *)&broker_key, 1, &b), ZTB_OK);
    atomic_store(&h.status, 200);
    struct st_server srv;
    st_server_start(&srv, jwks_handler, &h);
    char url[128];
    snprintf(url, sizeof(url), "%s/jwks", srv.base);
    ztb_verifier_config *c = ztb_verifier_config_new();
    assert_int_equal(ztb_verifier_config_set_issuer(c, ISS), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_audience(c, AUD), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_jwks_url(c, url), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_allow_insecure_http(c, 1), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_no_revocation(c), ZTB_OK);
    ztb_verifier *x = NULL;
    assert_int_equal(ztb_verifier_new(c, &x), ZTB_OK);
    ztb_verifier_config_free(c);
    assert_int_equal(verify(x, mint(&plain), "payments:refund", "orders/1234"), ZTB_OK);

    /* the broker goes away; 63 s later (2 s max-age + 60 s margin, and one
     * more), tokens signed with the last known key are refused */
    atomic_store(&h.status, 503);
    clock_set_mono_offset_for_test(61000);
    assert_int_equal(verify(x, mint(&plain), "payments:refund", "orders/1234"), ZTB_OK);
    clock_set_mono_offset_for_test(63000);
    ztb_err rv = verify(x, mint(&plain), "payments:refund", "orders/1234");
    const char *why = ztb_verifier_errdetail(x);
    clock_set_mono_offset_for_test(0);
    if (rv != ZTB_ERR_UNAVAILABLE)
        fail_msg("keys unconfirmed for 63 s (max-age 2 s): %s, want UNAVAILABLE", ztb_err_name(rv));
    assert_non_null(strstr(why, "JWKS stale"));
    assert_non_null(strstr(why, "max-age"));

    /* the refresher follows max-age=2, not the 30 s refetch interval: it
     * has tried again (and failed) within a few seconds */
    ztb_verifier_stats st = ZTB_VERIFIER_STATS_INIT;
    int64_t t0 = clock_mono_ms();
    do {
        clock_sleep_ms(100);
        assert_int_equal(ztb_verifier_stats_get(x, &st), ZTB_OK);
    } while (st.jwks_fetches < 2 && clock_mono_ms() - t0 < 6000);
    if (st.jwks_fetches < 2)
        fail_msg("no JWKS refresh within 6 s of a max-age of 2 s (%llu fetches)",
                 (unsigned long long)st.jwks_fetches);

    /* back: once fetched again, the keys are trusted as long again */
    atomic_store(&h.status, 200);
    uint64_t before = st.jwks_fetches;
    t0 = clock_mono_ms();
    do {
        clock_sleep_ms(100);
        assert_int_equal(ztb_verifier_stats_get(x, &st), ZTB_OK);
    } while (st.jwks_fetches == before && clock_mono_ms() - t0 < 10000);
    clock_sleep_ms(100);
    assert_int_equal(verify(x, mint(&plain), "payments:refund", "orders/1234"), ZTB_OK);
    ztb_verifier_free(x);
    st_server_stop(&srv);
}

static void test_configuration_mistakes(void **state)
{
    (void)state;
    ztb_verifier *x = (ztb_verifier *)1;
    ztb_verifier_config *c = ztb_verifier_config_new();
    assert_int_equal(ztb_verifier_new(c, &x), ZTB_ERR_INVALID_ARG);
    assert_null(x);
    assert_non_null(strstr(ztb_verifier_errdetail(NULL), "issuer"));
    assert_int_equal(ztb_verifier_config_set_issuer(c, ""), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verifier_config_set_issuer(c, "a\nb"), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verifier_config_set_issuer(c, ISS), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_audience(c, AUD), ZTB_OK);
    assert_int_equal(ztb_verifier_new(c, &x), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(ztb_verifier_errdetail(NULL), "JWKS"));
    assert_int_equal(ztb_verifier_config_set_jwks_url(c, "not a url"), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verifier_config_set_jwks_url(c, "http://broker.example/jwks"), ZTB_OK);
    assert_int_equal(ztb_verifier_new(c, &x), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(ztb_verifier_errdetail(NULL), "revocation"));
    assert_int_equal(ztb_verifier_config_set_no_revocation(c), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_redis(c, rd.url), ZTB_ERR_STATE);
    assert_int_equal(ztb_verifier_new(c, &x), ZTB_ERR_INVALID_ARG); /* http to a remote host */
    assert_non_null(strstr(ztb_verifier_errdetail(NULL), "https"));
    assert_int_equal(ztb_verifier_config_set_skew(c, ZTB_WIRE_MAX_SKEW_S + 1), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verifier_config_set_skew(c, ZTB_WIRE_MAX_SKEW_S), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_dpop_max_age(c, 0), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verifier_config_set_jwks_refetch_interval(c, 0), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verifier_config_set_redis(NULL, rd.url), ZTB_ERR_INVALID_ARG);
    ztb_verifier_config_free(c);

    /* Redis that cannot be reached: fails within the startup timeout */
    c = base_config();
    assert_int_equal(ztb_verifier_config_set_redis(c, "redis://:pw@127.0.0.1:1"), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_startup_timeout(c, 300), ZTB_OK);
    assert_int_equal(ztb_verifier_new(c, &x), ZTB_ERR_UNAVAILABLE);
    assert_null(strstr(ztb_verifier_errdetail(NULL), "pw"));
    ztb_verifier_config_free(c);
    c = ztb_verifier_config_new();
    assert_int_equal(ztb_verifier_config_set_redis(c, "http://x"), ZTB_ERR_INVALID_ARG);
    ztb_verifier_config_free(c);
    ztb_verifier_config_free(NULL);
    ztb_verifier_free(NULL);
    ztb_claims_free(NULL);
    assert_null(ztb_claims_subject(NULL));
}

/* ---- threads ------------------------------------------------------------- */

struct worker {
    const char *tok;
    int ok;
};

static void *verify_many(void *arg)
{
    struct worker *w = arg;
    ztb_claims *mine = ztb_claims_new();
    ztb_expect e = {.action = "payments:refund", .resource = "orders/1234"};
    for (int i = 0; i < 200; i++)
        w->ok += ztb_verify(v, w->tok, &e, i % 2 ? mine : NULL) == ZTB_OK;
    ztb_claims_free(mine);
    return NULL;
}

static void test_threads_share_a_verifier(void **state)
{
    (void)state;
    char tok[4096];
    snprintf(tok, sizeof(tok), "%s", mint(&plain));
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.tok = tok};
        pthread_create(&t[i], NULL, verify_many, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 200);
    }
}

struct racer {
    const char *tok;
    ztb_verifier *x;
    ztb_err rv;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    ztb_expect e = {.action = "payments:refund", .resource = "orders/1234"};
    r->rv = ztb_verify(r->x, r->tok, &e, NULL);
    return NULL;
}

static void test_concurrent_single_use(void **state)
{
    (void)state;
    /* eight threads on two replicas present the same single-use token at once: one wins */
    struct tk t = {.ztb_extra = ",\"single_use\":true"};
    char tok[4096];
    snprintf(tok, sizeof(tok), "%s", mint(&t));
    pthread_t th[8];
    struct racer r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (struct racer){.tok = tok, .x = i % 2 ? v : v2};
        pthread_create(&th[i], NULL, race, &r[i]);
    }
    int ok = 0, replay = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].rv == ZTB_OK;
        replay += r[i].rv == ZTB_ERR_REPLAY;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(replay, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_token_and_claims),
        cmocka_unit_test(test_rejects_malformed_tokens),
        cmocka_unit_test(test_rejects_wrong_type_and_claims),
        cmocka_unit_test(test_rejects_issuer_audience_times),
        cmocka_unit_test(test_rejects_action_and_resource),
        cmocka_unit_test(test_dpop_binding),
        cmocka_unit_test(test_dpop_marker_outlives_every_proof_age),
        cmocka_unit_test(test_other_bindings),
        cmocka_unit_test(test_revocations),
        cmocka_unit_test(test_single_use),
        cmocka_unit_test(test_concurrent_single_use),
        cmocka_unit_test(test_key_rotation),
        cmocka_unit_test(test_threads_share_a_verifier),
        cmocka_unit_test(test_feed_lost),
        cmocka_unit_test(test_stats_struct_size),
        cmocka_unit_test(test_revocation_cap),
        cmocka_unit_test(test_stale_jwks_refused),
        cmocka_unit_test(test_configuration_mistakes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
