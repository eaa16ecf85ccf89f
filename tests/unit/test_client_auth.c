/*
 * test_client_auth.c - who is calling (client_auth.c), against a real Redis:
 * RFC 7523 client assertions (the claims, the header typ, the key of the
 * agent's current identity, the jti replay cache, the size limit), session
 * credentials (MAC, expiry, generation and epoch), agents that may not
 * authenticate (unknown, disabled, revoked, identity expired), what
 * CLIENT_AUTH_STATE_LATER leaves to the caller, and 503 when Redis is gone.
 * (The certificate path is in test_mtls.c: it needs a TLS connection.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/auth/client_auth.h"
#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "broker_fixture.h"
#include "pki/jwk.h"

#define ISSUER "https://broker.unit.test"
#define TD     "ztb.local"

static ztb_key *g_key;   /* the enrolled agents' key */
static ztb_key *g_other; /* a key nobody enrolled */

/* Register name and give it a live identity with key k (exp: identity_exp). */
static void enroll(const char *name, const ztb_key *k, int64_t identity_exp)
{
    assert_int_equal(store_agent_add(name, 1), ZTB_OK);
    ztb_buf jwk;
    ztb_buf_init(&jwk, 1024);
    assert_int_equal(ztb_jwk_render(k, &jwk), ZTB_OK);
    assert_int_equal(store_agent_set_identity(name, STORE_IDENTITY_ENROLL, ztb_buf_cstr(&jwk),
                                              ztb_key_kid(k), "x5t-of-" TD, identity_exp, 0, NULL),
                     ZTB_OK);
    ztb_buf_free(&jwk);
}

static int setup(void **state)
{
    (void)state;
    bf_setup(NULL);
    client_auth_set_issuer(ISSUER);
    client_auth_set_trust_domain(TD);
    assert_int_equal(ztb_key_generate(&g_key), ZTB_OK);
    assert_int_equal(ztb_key_generate(&g_other), ZTB_OK);
    int64_t now = time(NULL);
    enroll("alice", g_key, now + 3600);
    enroll("old-doc", g_key, now - 1);
    enroll("dis", g_key, now + 3600);
    assert_int_equal(store_agent_set_status("dis", "disabled"), ZTB_OK);
    assert_int_equal(store_agent_add("never-enrolled", 1), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_key_free(g_key);
    ztb_key_free(g_other);
    bf_teardown();
    return 0;
}

static unsigned g_jti;

/* An assertion signed by k with header typ and these claims (printf). */
__attribute__((format(printf, 5, 6))) static void sign(const ztb_key *k, const char *typ, char *out,
                                                       size_t cap, const char *fmt, ...)
{
    char claims[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(claims, sizeof(claims), fmt, ap);
    va_end(ap);
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, cap);
    ztb_jws_sign_opts o = {.typ = typ};
    assert_int_equal(ztb_jws_sign(k, &o, claims, strlen(claims), &b), ZTB_OK);
    assert_non_null(ztb_buf_cstr(&b));
}

/* A well-formed assertion of agent, signed by k, iat now, exp now + life. */
static void assertion(const char *agent, const ztb_key *k, int64_t now, int life, char *out,
                      size_t cap)
{
    sign(k, "JWT", out, cap,
         "{\"iss\":\"spiffe://" TD "/agent/%s\",\"sub\":\"spiffe://" TD "/agent/%s\","
         "\"aud\":\"" ISSUER "/v1/token\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"jti-%08u-abcdefgh\"}",
         agent, agent, (long long)now, (long long)(now + life), ++g_jti);
}

struct outcome {
    ztb_err rv;
    long status;
    char body[1024];
    struct client_identity id;
};

/* client_auth as the token endpoint would call it without a connection. */
static void auth(const char *type, const char *cred, unsigned flags, struct outcome *o)
{
    struct http_resp resp;
    memset(&resp, 0, sizeof(resp));
    ztb_buf_init(&resp.body, 1 << 16);
    resp.status = 200;
    o->rv = client_auth(NULL, type, cred, time(NULL), flags, &o->id, &resp);
    o->status = resp.status;
    snprintf(o->body, sizeof(o->body), "%s", resp.body.len ? ztb_buf_cstr(&resp.body) : "");
    ztb_buf_free(&resp.body);
}

/* Fail unless cred is refused with 401 invalid_client and a description
 * containing why. */
static void refused(const char *type, const char *cred, unsigned flags, const char *why)
{
    struct outcome o;
    auth(type, cred, flags, &o);
    if (o.rv != ZTB_ERR_INVALID_CLIENT || o.status != 401 ||
        strstr(o.body, "\"invalid_client\"") == NULL || strstr(o.body, why) == NULL)
        fail_msg("want 401 invalid_client \"%s\", got rv %d, %ld %s", why, o.rv, o.status, o.body);
    assert_string_equal(o.id.agent, ""); /* nothing left behind */
}

static void test_assertion_accepted_once(void **state)
{
    (void)state;
    char tok[4096];
    assertion("alice", g_key, time(NULL), 30, tok, sizeof(tok));
    struct outcome o;
    auth(CLIENT_ASSERTION_TYPE_JWT, tok, 0, &o);
    assert_int_equal(o.rv, ZTB_OK);
    assert_string_equal(o.id.agent, "alice");
    assert_int_equal(o.id.method, CLIENT_AUTH_ASSERTION);
    assert_int_equal(o.id.state_checked, 1);
    assert_int_equal(o.id.generation, 1);
    assert_int_equal(o.id.quarantined, 0);
    /* the same assertion again: a replay */
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "jti replay");
    /* STATE_LATER does not skip the state for an assertion (its key is there) */
    assertion("alice", g_key, time(NULL), 30, tok, sizeof(tok));
    auth(CLIENT_ASSERTION_TYPE_JWT, tok, CLIENT_AUTH_STATE_LATER, &o);
    assert_int_equal(o.rv, ZTB_OK);
    assert_int_equal(o.id.state_checked, 1);
    /* aud may be an array of exactly the token endpoint */
    int64_t now = time(NULL);
    sign(g_key, "JWT", tok, sizeof(tok),
         "{\"iss\":\"spiffe://" TD "/agent/alice\",\"sub\":\"spiffe://" TD "/agent/alice\","
         "\"aud\":[\"" ISSUER
         "/v1/token\"],\"iat\":%lld,\"exp\":%lld,\"jti\":\"array-aud-jti-0001\"}",
         (long long)now, (long long)(now + 30));
    auth(CLIENT_ASSERTION_TYPE_JWT, tok, 0, &o);
    assert_int_equal(o.rv, ZTB_OK);
}

/* An assertion of alice's with this aud (JSON text), header typ typ. */
static void aud_assertion(const char *typ, const char *aud, char *tok, size_t cap)
{
    long long now = time(NULL);
    sign(g_key, typ, tok, cap,
         "{\"iss\":\"spiffe://" TD "/agent/alice\",\"sub\":\"spiffe://" TD "/agent/alice\","
         "\"aud\":%s,\"iat\":%lld,\"exp\":%lld,\"jti\":\"aud-jti-%08u-abcdefgh\"}",
         aud, now, now + 30, ++g_jti);
}

/*
 * ATTACK (audience injection, draft-ietf-oauth-rfc7523bis): an assertion
 * whose aud names another server, alone or beside ours, is refused; and an
 * explicitly typed client-authentication+jwt assertion is good only for the
 * issuer identifier as its one value. What standard clients send is
 * accepted (RFC 7523 3): the issuer identifier or the token endpoint, as a
 * string or an array.
 */
static void test_assertion_audiences(void **state)
{
    (void)state;
    char tok[4096];
    static const char *const good[] = {
        "\"" ISSUER "\"",
        "\"" ISSUER "/v1/token\"",
        "[\"" ISSUER "\"]",
        "[\"" ISSUER "\",\"" ISSUER "/v1/token\"]",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        aud_assertion("JWT", good[i], tok, sizeof(tok));
        struct outcome o;
        auth(CLIENT_ASSERTION_TYPE_JWT, tok, 0, &o);
        if (o.rv != ZTB_OK)
            fail_msg("aud %s refused: %s", good[i], o.body);
    }
    static const char *const bad[] = {
        "\"https://other.example/v1/token\"",
        "\"https://other.example\"",
        "[\"" ISSUER "\",\"https://other.example/v1/token\"]",
        "[\"https://other.example\",\"" ISSUER "/v1/token\"]",
        "\"" ISSUER "/\"",
        "\"" ISSUER ".evil.example\"",
        "\"" ISSUER "/v1/token/\"",
        "\"" ISSUER "/v1/introspect\"", /* another endpoint than the one called */
        "[]",
        "[\"" ISSUER "\",\"" ISSUER "\",\"" ISSUER "\",\"" ISSUER "\",\"" ISSUER "\"]",
        "1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aud_assertion("JWT", bad[i], tok, sizeof(tok));
        refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "aud must name this broker");
    }
    /* typed: the issuer identifier, one value */
    aud_assertion("client-authentication+jwt", "\"" ISSUER "\"", tok, sizeof(tok));
    struct outcome o;
    auth(CLIENT_ASSERTION_TYPE_JWT, tok, 0, &o);
    assert_int_equal(o.rv, ZTB_OK);
    aud_assertion("client-authentication+jwt", "[\"" ISSUER "\"]", tok, sizeof(tok));
    auth(CLIENT_ASSERTION_TYPE_JWT, tok, 0, &o);
    assert_int_equal(o.rv, ZTB_OK);
    aud_assertion("client-authentication+jwt", "\"" ISSUER "/v1/token\"", tok, sizeof(tok));
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "issuer identifier (one value)");
    aud_assertion("client-authentication+jwt", "[\"" ISSUER "\",\"" ISSUER "\"]", tok, sizeof(tok));
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "issuer identifier (one value)");
}

/* RFC 7521 4.2: client_id, when sent, names the authenticated client. */
static void test_client_id(void **state)
{
    (void)state;
    char tok[4096];
    assertion("alice", g_key, time(NULL), 30, tok, sizeof(tok));
    struct outcome o;
    auth(CLIENT_ASSERTION_TYPE_JWT, tok, 0, &o);
    assert_int_equal(o.rv, ZTB_OK);
    struct http_resp resp;
    memset(&resp, 0, sizeof(resp));
    ztb_buf_init(&resp.body, 1 << 12);
    assert_int_equal(client_auth_client_id(&o.id, NULL, &resp), ZTB_OK);
    assert_int_equal(client_auth_client_id(&o.id, "spiffe://" TD "/agent/alice", &resp), ZTB_OK);
    assert_int_equal(resp.status, 0);
    static const char *const bad[] = {"spiffe://" TD "/agent/bob", "alice",
                                      "spiffe://" TD "/agent/alice/", "spiffe://other/agent/alice",
                                      ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(client_auth_client_id(&o.id, bad[i], &resp), ZTB_ERR_INVALID_CLIENT);
        assert_int_equal(resp.status, 401);
        assert_non_null(strstr(ztb_buf_cstr(&resp.body), "client_id must be"));
        ztb_buf_reset(&resp.body);
        resp.status = 0;
    }
    ztb_buf_free(&resp.body);
}

static void test_assertion_claims_refused(void **state)
{
    (void)state;
    char tok[4096];
    long long now = time(NULL);
    const char *sp = "spiffe://" TD "/agent/alice";
    /* each: claims, and the refusal's description */
    enum { CLAIMS_CAP = 512 };
    struct {
        const char *why;
        char claims[CLAIMS_CAP];
    } c[8];
    memset(c, 0, sizeof(c));
    int n = 0;
    snprintf(c[n].claims, CLAIMS_CAP,
             "{\"iss\":\"%s\",\"sub\":\"spiffe://" TD "/agent/bob\",\"aud\":\"" ISSUER
             "/v1/token\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"c-0000000000000001\"}",
             sp, now, now + 30);
    c[n++].why = "iss and sub";
    snprintf(c[n].claims, CLAIMS_CAP,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"" ISSUER
             "/v1/introspect\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"c-0000000000000002\"}",
             sp, sp, now, now + 30);
    c[n++].why = "aud must name this broker";
    snprintf(c[n].claims, CLAIMS_CAP,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":[\"" ISSUER "/v1/token\",\"x\"],"
             "\"iat\":%lld,\"exp\":%lld,\"jti\":\"c-0000000000000003\"}",
             sp, sp, now, now + 30);
    c[n++].why = "aud must name this broker";
    snprintf(c[n].claims, CLAIMS_CAP,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"" ISSUER
             "/v1/token\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"c-0000000000000004\"}",
             sp, sp, now, now + 61);
    c[n++].why = "at most 60 s";
    snprintf(c[n].claims, CLAIMS_CAP,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"" ISSUER
             "/v1/token\",\"iat\":\"%lld\",\"exp\":%lld,\"jti\":\"c-0000000000000005\"}",
             sp, sp, now, now + 30);
    c[n++].why = "integer iat and exp";
    snprintf(c[n].claims, CLAIMS_CAP,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"" ISSUER
             "/v1/token\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"c-0000000000000006\"}",
             sp, sp, now - 100, now - 40);
    c[n++].why = "assertion expired";
    snprintf(c[n].claims, CLAIMS_CAP,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"" ISSUER
             "/v1/token\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"c-0000000000000007\"}",
             sp, sp, now + 40, now + 60);
    c[n++].why = "in the future";
    snprintf(c[n].claims, CLAIMS_CAP,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"" ISSUER
             "/v1/token\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"short\"}",
             sp, sp, now, now + 30);
    c[n++].why = "16 to 128 characters";
    for (int i = 0; i < n; i++) {
        sign(g_key, "JWT", tok, sizeof(tok), "%s", c[i].claims);
        refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, c[i].why);
    }
    /* claims that are not an object, or with duplicate keys */
    sign(g_key, "JWT", tok, sizeof(tok), "[\"%s\"]", sp);
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "not a strict JSON object: expected an object");
    sign(g_key, "JWT", tok, sizeof(tok), "{\"iss\":\"%s\",\"iss\":\"%s\"}", sp, sp);
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "not a strict JSON object: duplicate member name");
}

/*
 * ATTACK (a post-dated assertion used early): RFC 7519 4.1.5 and RFC 7523
 * 3 item 5: a JWT with nbf MUST NOT be accepted before that time. An
 * assertion the agent signed for later (nbf beyond the clock skew) is
 * refused now, as is an nbf that is not an integer; an nbf that has come
 * (within the skew) is accepted.
 */
static void test_assertion_not_before(void **state)
{
    (void)state;
    char tok[4096];
    long long now = time(NULL);
    const char *sp = "spiffe://" TD "/agent/alice";
    static const char *const claims =
        "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"" ISSUER "/v1/token\",\"iat\":%lld,"
        "\"nbf\":%s,\"exp\":%lld,\"jti\":\"nbf-%08u-abcdefgh\"}";
    char nbf[32];
    /* iat now, exp within 60 s of it: only nbf says "not yet" */
    snprintf(nbf, sizeof(nbf), "%lld", now + 45);
    sign(g_key, "JWT", tok, sizeof(tok), claims, sp, sp, now, nbf, now + 60, ++g_jti);
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "nbf");
    snprintf(nbf, sizeof(nbf), "\"%lld\"", now);
    sign(g_key, "JWT", tok, sizeof(tok), claims, sp, sp, now, nbf, now + 60, ++g_jti);
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "nbf");
    snprintf(nbf, sizeof(nbf), "%lld.5", now);
    sign(g_key, "JWT", tok, sizeof(tok), claims, sp, sp, now, nbf, now + 60, ++g_jti);
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "nbf");
    /* nbf reached, or within the skew: accepted */
    static const long long ok[] = {0, -10, 20};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(nbf, sizeof(nbf), "%lld", now + ok[i]);
        sign(g_key, "JWT", tok, sizeof(tok), claims, sp, sp, now, nbf, now + 60, ++g_jti);
        struct outcome o;
        auth(CLIENT_ASSERTION_TYPE_JWT, tok, 0, &o);
        if (o.rv != ZTB_OK)
            fail_msg("nbf now%+lld refused: %s", ok[i], o.body);
    }
}

static void test_assertion_key_typ_and_shape(void **state)
{
    (void)state;
    char tok[8192];
    int64_t now = time(NULL);
    /* signed by a key that is not the agent's */
    assertion("alice", g_other, now, 30, tok, sizeof(tok));
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "client assertion refused");
    /* another kind of JWS the agent's key signs does not pass for one */
    const char *typs[] = {"at+jwt", "dpop+jwt", "secevent+jwt", "jwt "};
    for (size_t i = 0; i < sizeof(typs) / sizeof(typs[0]); i++) {
        sign(g_key, typs[i], tok, sizeof(tok),
             "{\"iss\":\"spiffe://" TD "/agent/alice\",\"sub\":\"spiffe://" TD "/agent/alice\","
             "\"aud\":\"" ISSUER "/v1/token\",\"iat\":%lld,\"exp\":%lld,"
             "\"jti\":\"typ-jti-000000000%zu\"}",
             (long long)now, (long long)(now + 30), i);
        refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "typ must be \\\"JWT\\\" or");
    }
    /* an agent of another trust domain, or no agent at all */
    sign(g_key, "JWT", tok, sizeof(tok), "{\"iss\":\"spiffe://evil.example/agent/alice\"}");
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "not an agent of this trust domain");
    refused(CLIENT_ASSERTION_TYPE_JWT, "not-a-jws", 0, "not an agent of this trust domain");
    refused(CLIENT_ASSERTION_TYPE_JWT, "", 0, "not an agent of this trust domain");
    /* over 4096 bytes: refused before it is parsed */
    char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    refused(CLIENT_ASSERTION_TYPE_JWT, big, 0, "too large");
}

static void test_agents_that_may_not(void **state)
{
    (void)state;
    char tok[4096];
    int64_t now = time(NULL);
    assertion("ghost", g_key, now, 30, tok, sizeof(tok));
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "unknown agent");
    assertion("dis", g_key, now, 30, tok, sizeof(tok));
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "disabled");
    assertion("never-enrolled", g_key, now, 30, tok, sizeof(tok));
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "no live identity");
    assertion("old-doc", g_key, now, 30, tok, sizeof(tok));
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "identity document has expired");

    /* revoked: the identity dies with the generation */
    enroll("rev", g_key, now + 3600);
    int64_t gen, exp;
    assert_int_equal(store_rev_agent("rev", 3600, 60, &gen, &exp), ZTB_OK);
    assertion("rev", g_key, now, 30, tok, sizeof(tok));
    refused(CLIENT_ASSERTION_TYPE_JWT, tok, 0, "no live identity");

    /* quarantined: authenticated, and the caller is told */
    enroll("quar", g_key, now + 3600);
    int changed;
    assert_int_equal(store_agent_flag("quar", "quarantined", 1, &changed), ZTB_OK);
    assertion("quar", g_key, now, 30, tok, sizeof(tok));
    struct outcome o;
    auth(CLIENT_ASSERTION_TYPE_JWT, tok, 0, &o);
    assert_int_equal(o.rv, ZTB_OK);
    assert_int_equal(o.id.quarantined, 1);
}

static void test_missing_or_unknown_method(void **state)
{
    (void)state;
    refused(NULL, NULL, 0, "client authentication required");
    refused(CLIENT_ASSERTION_TYPE_JWT, NULL, 0, "client authentication required");
    refused(NULL, "x", 0, "client authentication required");
    refused("urn:ietf:params:oauth:client-assertion-type:saml2-bearer", "x", 0,
            "unsupported client_assertion_type");
}

static void test_sessions(void **state)
{
    (void)state;
    int64_t now = time(NULL);
    struct store_agent_auth sa;
    assert_int_equal(store_agent_auth_get("alice", &sa), ZTB_OK);
    char cred[SESSION_CRED_MAX];
    assert_int_equal(session_mint("alice", sa.generation, sa.epoch, now + 600, cred), ZTB_OK);

    /* only where the caller allows sessions */
    refused(CLIENT_ASSERTION_TYPE_SESSION, cred, 0, "cannot authenticate this request");
    struct outcome o;
    auth(CLIENT_ASSERTION_TYPE_SESSION, cred, CLIENT_AUTH_SESSION_OK, &o);
    assert_int_equal(o.rv, ZTB_OK);
    assert_string_equal(o.id.agent, "alice");
    assert_int_equal(o.id.method, CLIENT_AUTH_SESSION);
    assert_int_equal(o.id.state_checked, 1);

    /* STATE_LATER: Redis is not read; what the session binds is handed on */
    auth(CLIENT_ASSERTION_TYPE_SESSION, cred, CLIENT_AUTH_SESSION_OK | CLIENT_AUTH_STATE_LATER, &o);
    assert_int_equal(o.rv, ZTB_OK);
    assert_int_equal(o.id.state_checked, 0);
    assert_int_equal(o.id.generation, sa.generation);
    assert_int_equal(o.id.epoch, sa.epoch);
    struct store_expect e;
    client_auth_expect(&o.id, &e);
    assert_int_equal(e.generation, sa.generation);
    assert_int_equal(e.epoch, sa.epoch);
    assert_null(e.x5t);

    /* tampered with, expired, or of a stale epoch */
    char bad[SESSION_CRED_MAX];
    snprintf(bad, sizeof(bad), "%s", cred);
    size_t n = strlen(bad);
    bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
    refused(CLIENT_ASSERTION_TYPE_SESSION, bad, CLIENT_AUTH_SESSION_OK, "invalid session");
    assert_int_equal(session_mint("alice", sa.generation, sa.epoch, now - 1, bad), ZTB_OK);
    refused(CLIENT_ASSERTION_TYPE_SESSION, bad, CLIENT_AUTH_SESSION_OK, "session expired");
    assert_int_equal(session_mint("alice", sa.generation, sa.epoch - 1, now + 600, bad), ZTB_OK);
    refused(CLIENT_ASSERTION_TYPE_SESSION, bad, CLIENT_AUTH_SESSION_OK, "session revoked");
    assert_int_equal(session_mint("ghost", 1, 1, now + 600, bad), ZTB_OK);
    refused(CLIENT_ASSERTION_TYPE_SESSION, bad, CLIENT_AUTH_SESSION_OK, "unknown agent");
}

static void test_endpoints(void **state)
{
    (void)state;
    assert_string_equal(client_auth_token_endpoint(), ISSUER "/v1/token");
}

/* Last: Redis gone is 503 with Retry-After, never a guess. */
static void test_redis_down(void **state)
{
    (void)state;
    char tok[4096];
    assertion("alice", g_key, time(NULL), 30, tok, sizeof(tok));
    zh_redis_kill(&bf_redis);
    struct outcome o;
    auth(CLIENT_ASSERTION_TYPE_JWT, tok, 0, &o);
    assert_int_equal(o.rv, ZTB_ERR_UNAVAILABLE);
    assert_int_equal(o.status, 503);
    assert_non_null(strstr(o.body, "temporarily_unavailable"));
    assert_string_equal(o.id.agent, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assertion_accepted_once),
        cmocka_unit_test(test_assertion_claims_refused),
        cmocka_unit_test(test_assertion_not_before),
        cmocka_unit_test(test_assertion_audiences),
        cmocka_unit_test(test_client_id),
        cmocka_unit_test(test_assertion_key_typ_and_shape),
        cmocka_unit_test(test_agents_that_may_not),
        cmocka_unit_test(test_missing_or_unknown_method),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
