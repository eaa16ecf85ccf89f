/*
 * test_ssf_receive.c - POST /v1/ssf/events (broker/ssf/ssf_receive.c), served
 * by a real http_server in this process (broker_fixture.h bf_serve) with a
 * real Redis and policy: an accepted SET is 202 with no body and becomes the
 * signal documented for its event (type, severity, source, source jti,
 * confidence, subject, evidence) that the policy answers; every refusal is
 * the RFC 8935 answer {"err", "description"} with the documented code and
 * status, and changes nothing in Redis; 503 with Retry-After when the keys
 * or Redis cannot be had, after which the same SET is still accepted.
 * (test_ssf_set.c reads the claims, test_ssf_jwks.c fetches keys by URL.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/ssf/ssf.h"
#include "broker/ssf/ssf_receive.h"
#include "broker/store/store.h"
#include "broker/store/store_signals.h"
#include "broker_fixture.h"
#include "common/base64url.h"
#include "pki/jwk.h"

#define CAEP       "https://schemas.openid.net/secevent/caep/event-type/"
#define IDP        "https://idp.test"
#define IDP_AUD    "urn:ztb:test:ssf-receiver"
#define IDP_REMOTE "https://idp-remote.test"
#define SET_CTYPE  "application/secevent+jwt"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 10, \"burst\": 10, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 10, \"burst\": 10, \"period\": 60}}},\n"
    " \"rules\": [],\n"
    " \"anomaly_responses\": [\n"
    "  {\"id\": \"caep-agent\", \"signals\": [\"caep:session-revoked\"],\n"
    "   \"min_severity\": \"high\", \"response\": \"revoke_all\"},\n"
    "  {\"id\": \"caep-cred\", \"signals\": [\"caep:credential-change\"],\n"
    "   \"min_severity\": \"high\", \"response\": \"quarantine\"},\n"
    "  {\"id\": \"caep-claims\", \"signals\": [\"caep:token-claims-change\"],\n"
    "   \"min_severity\": \"high\", \"response\": \"require_approval\"}\n"
    " ]}\n";

static ztb_key *idp_key;
static int jti_n;

static int setup(void **state)
{
    (void)state;
    bf_setup(policy_doc);
    bf_serve(0);
    assert_int_equal(ztb_key_generate(&idp_key), ZTB_OK);
    ztb_buf jwks;
    ztb_buf_init(&jwks, 2048);
    const ztb_key *keys[] = {idp_key};
    assert_int_equal(ztb_jwks_render(keys, 1, &jwks), ZTB_OK);
    /* idp: keys inline; idp-remote: keys by a URL nothing answers */
    char text[8192], why[300];
    snprintf(text, sizeof(text),
             "{\"transmitters\": [{\"name\": \"idp\", \"issuer\": \"" IDP "\", \"jwks\": %s,\n"
             "   \"audience\": \"" IDP_AUD "\", \"confidence\": 0.75,\n"
             "   \"subjects\": {\"email:bot@idp.test\": \"caep-mail\"}},\n"
             "  {\"name\": \"idp-remote\", \"issuer\": \"" IDP_REMOTE "\",\n"
             "   \"audience\": \"" IDP_AUD "\",\n"
             "   \"jwks_uri\": \"http://127.0.0.1:%d/jwks.json\"}]}",
             ztb_buf_cstr(&jwks), zh_free_port());
    ztb_buf_free(&jwks);
    assert_int_equal(
        ssf_config_parse(text, strlen(text), g_broker.issuer, &g_broker.ssf, why, sizeof(why)),
        ZTB_OK);
    const char *agents[] = {"caep-uri", "caep-mail", "caep-claims", "caep-safe", "caep-retry"};
    for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++)
        assert_int_equal(store_agent_add(agents[i], 1), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_unserve();
    ssf_config_free(g_broker.ssf);
    g_broker.ssf = NULL;
    ztb_key_free(idp_key);
    bf_teardown();
    return 0;
}

/* ---- a transmitter ----------------------------------------------------------- */

/* A fresh jti (static). */
static const char *next_jti(void)
{
    static char jti[48];
    snprintf(jti, sizeof(jti), "set-%d-%d", (int)getpid(), jti_n++);
    return jti;
}

/* CAEP SET claims (caller frees): event after the CAEP prefix, sub_id JSON,
 * extra members (may be "") before the events. */
static char *caep(const char *iss, const char *aud, long long iat, const char *jti,
                  const char *event, const char *sub_id, const char *extra)
{
    char *s = calloc(1, 4096);
    snprintf(s, 4096,
             "{\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"jti\":\"%s\",\"sub_id\":%s,%s"
             "\"events\":{\"" CAEP "%s\":{\"initiating_entity\":\"admin\","
             "\"reason_admin\":{\"en\":\"laptop stolen\"},\"event_timestamp\":%lld}}}",
             iss, aud, iat, jti, sub_id, extra, event, iat - 5);
    return s;
}

/* The compact JWS of claims signed by k with typ (NULL: none) (caller frees). */
static char *sign(const ztb_key *k, const char *typ, const char *claims)
{
    ztb_jws_sign_opts o = {.typ = typ};
    ztb_buf b;
    ztb_buf_init(&b, 16384);
    assert_int_equal(ztb_jws_sign(k, &o, claims, strlen(claims), &b), ZTB_OK);
    char *s = strdup(ztb_buf_cstr(&b));
    ztb_buf_free(&b);
    return s;
}

/* POST body[0..len) to /v1/ssf/events as ctype; returns the status. */
static long post_raw(const char *ctype, const char *body, size_t len, struct zh_resp *r)
{
    char url[300];
    snprintf(url, sizeof(url), "%s/v1/ssf/events", bf_broker.url);
    assert_int_equal(zh_http("POST", url, NULL, ctype, body, len, NULL, r), 0);
    return r->status;
}

/* Sign claims with the transmitter's key and POST the SET. */
static long post_set(const char *claims, struct zh_resp *r)
{
    char *set = sign(idp_key, "secevent+jwt", claims);
    long st = post_raw(SET_CTYPE, set, strlen(set), r);
    free(set);
    return st;
}

/* ---- what the broker holds ------------------------------------------------------ */

static long long dbsize(void)
{
    return bf_redis_int("DBSIZE", NULL);
}

static long long signals_recorded(void)
{
    return bf_redis_int("XLEN %s", "ztb:signals");
}

/* The newest signal record (caller decrefs). */
static json_t *last_signal(void)
{
    json_t *arr = NULL;
    assert_int_equal(store_signal_list(1, &arr), ZTB_OK);
    assert_int_equal(json_array_size(arr), 1);
    json_t *rec = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return rec;
}

/* The status of response id in a signal record. */
static const char *response_status(json_t *rec, const char *id)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(rec, "responses"), i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "id")), id) == 0)
            return json_string_value(json_object_get(o, "status"));
    }
    return "(none)";
}

/* Fail unless r is the RFC 8935 refusal: status and {"err": code,
 * "description": non-empty text} and nothing else; frees r. */
static void expect_refusal(struct zh_resp *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg("expected HTTP %ld %s, got %ld %s", status, code, r->status, r->body);
    json_t *j = json_loads(r->body, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 2);
    const char *err = json_string_value(json_object_get(j, "err"));
    if (err == NULL || strcmp(err, code) != 0)
        fail_msg("expected err %s, got %s", code, r->body);
    const char *desc = json_string_value(json_object_get(j, "description"));
    assert_non_null(desc);
    assert_true(strlen(desc) > 0);
    json_decref(j);
    zh_resp_free(r);
}

/* ---- the tests ------------------------------------------------------------------- */

/* Each received CAEP event becomes its documented signal: source the
 * transmitter's name, source_jti the SET's jti, the transmitter's
 * confidence, the subject's agent (or token), the event time, and the
 * evidence naming issuer, event, subject, initiating entity and reason; the
 * policy then answers it. The answer is 202 with an empty body. */
static void test_accepted(void **state)
{
    (void)state;
    long long now = time(NULL);
    struct zh_resp r;
    struct {
        const char *event, *sub_id, *type, *severity, *agent, *entry, *status, *subject;
    } cases[] = {
        {"session-revoked", "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-uri\"}",
         "caep:session-revoked", "high", "caep-uri", "caep-agent", "applied",
         "uri:spiffe://ztb.local/agent/caep-uri"},
        {"credential-change", "{\"format\":\"email\",\"email\":\"bot@idp.test\"}",
         "caep:credential-change", "high", "caep-mail", "caep-cred", "applied",
         "email:bot@idp.test"},
        /* medium: under the entry's min_severity high, so nothing is applied */
        {"token-claims-change",
         "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-claims\"}",
         "caep:token-claims-change", "medium", "caep-claims", "caep-claims", "(none)",
         "uri:spiffe://ztb.local/agent/caep-claims"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char jti[48];
        snprintf(jti, sizeof(jti), "%s", next_jti());
        char *c = caep(IDP, IDP_AUD, now, jti, cases[i].event, cases[i].sub_id, "");
        long long before = signals_recorded();
        if (post_set(c, &r) != 202)
            fail_msg("%s: HTTP %ld %s", cases[i].event, r.status, r.body);
        assert_int_equal(r.len, 0);
        zh_resp_free(&r);
        free(c);
        assert_int_equal(signals_recorded(), before + 1);
        json_t *rec = last_signal();
        assert_string_equal(json_string_value(json_object_get(rec, "source")), "idp");
        assert_string_equal(json_string_value(json_object_get(rec, "source_jti")), jti);
        assert_string_equal(json_string_value(json_object_get(rec, "type")), cases[i].type);
        assert_string_equal(json_string_value(json_object_get(rec, "severity")), cases[i].severity);
        assert_true(json_real_value(json_object_get(rec, "confidence")) == 0.75);
        assert_int_equal(json_integer_value(json_object_get(rec, "event_timestamp")), now - 5);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(rec, "subject"), "agent")),
            cases[i].agent);
        json_t *ev = json_object_get(rec, "evidence");
        assert_string_equal(json_string_value(json_object_get(ev, "ssf_issuer")), IDP);
        char uri[200];
        snprintf(uri, sizeof(uri), CAEP "%s", cases[i].event);
        assert_string_equal(json_string_value(json_object_get(ev, "event")), uri);
        assert_string_equal(json_string_value(json_object_get(ev, "subject")), cases[i].subject);
        assert_string_equal(json_string_value(json_object_get(ev, "initiating_entity")), "admin");
        assert_string_equal(json_string_value(json_object_get(ev, "reason_admin")),
                            "laptop stolen");
        assert_string_equal(response_status(rec, cases[i].entry), cases[i].status);
        json_decref(rec);
    }
    assert_true(bf_audit_has("signal.received", "\"source\":\"idp\""));
    /* the policy's answers took effect, and only those */
    struct store_agent a;
    assert_int_equal(store_agent_get("caep-mail", &a), ZTB_OK);
    assert_true(a.quarantined);
    assert_int_equal(store_agent_get("caep-claims", &a), ZTB_OK);
    assert_false(a.approval_required);
    assert_false(a.quarantined);

    /* a jwt_id subject names one of our tokens: the signal carries its jti */
    char sub[300];
    snprintf(sub, sizeof(sub), "{\"format\":\"jwt_id\",\"iss\":\"%s\",\"jti\":\"tok-77\"}",
             g_broker.issuer);
    char *c = caep(IDP, IDP_AUD, now, next_jti(), "session-revoked", sub, "");
    assert_int_equal(post_set(c, &r), 202);
    zh_resp_free(&r);
    free(c);
    json_t *rec = last_signal();
    assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "subject"), "jti")),
                        "tok-77");
    json_decref(rec);

    /* a Content-Type with a parameter, and a line end after the SET (as a
     * transmitter writing a text body may send it) */
    c = caep(IDP, IDP_AUD, now, next_jti(), "session-revoked",
             "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-uri\"}", "");
    char *set = sign(idp_key, "secevent+jwt", c);
    char body[8300];
    snprintf(body, sizeof(body), "%s\r\n", set);
    assert_int_equal(post_raw(SET_CTYPE "; charset=utf-8", body, strlen(body), &r), 202);
    zh_resp_free(&r);
    free(set);
    free(c);
}

/* A jti the transmitter sent before is a replay: 400 invalid_request, and
 * neither a second signal nor a second response. */
static void test_replay(void **state)
{
    (void)state;
    long long now = time(NULL);
    struct zh_resp r;
    char *c = caep(IDP, IDP_AUD, now, next_jti(), "session-revoked",
                   "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-uri\"}", "");
    assert_int_equal(post_set(c, &r), 202);
    zh_resp_free(&r);
    long long recorded = signals_recorded(), keys = dbsize();
    post_set(c, &r);
    assert_non_null(strstr(r.body, "replay"));
    expect_refusal(&r, 400, "invalid_request");
    assert_int_equal(signals_recorded(), recorded);
    assert_int_equal(dbsize(), keys);
    free(c);
}

/* What is refused before any signature is checked: the wrong media type, a
 * body over 8192 bytes, a NUL inside, what is not a compact JWS naming an
 * iss, an iss no transmitter has. Nothing reaches Redis. */
static void test_refused_unverified(void **state)
{
    (void)state;
    long long now = time(NULL);
    struct zh_resp r;
    long long keys = dbsize(), recorded = signals_recorded();
    char *c = caep(IDP, IDP_AUD, now, next_jti(), "session-revoked",
                   "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-safe\"}", "");
    char *set = sign(idp_key, "secevent+jwt", c);
    size_t n = strlen(set);

    /* a valid SET under another media type, or none */
    post_raw("application/json", set, n, &r);
    assert_non_null(strstr(r.body, "Content-Type"));
    expect_refusal(&r, 400, "invalid_request");
    post_raw("application/jwt", set, n, &r);
    expect_refusal(&r, 400, "invalid_request");
    post_raw(NULL, set, n, &r);
    expect_refusal(&r, 400, "invalid_request");

    /* over 8192 bytes: refused whatever it holds */
    char *big = malloc(SSF_SET_MAX + 2);
    memset(big, 'A', SSF_SET_MAX + 1);
    big[SSF_SET_MAX + 1] = '\0';
    post_raw(SET_CTYPE, big, SSF_SET_MAX + 1, &r);
    assert_non_null(strstr(r.body, "8192"));
    expect_refusal(&r, 400, "invalid_request");
    free(big);

    /* a NUL: the valid SET, then NUL and more */
    char *nul = malloc(n + 8);
    memcpy(nul, set, n);
    memcpy(nul + n, "\0.x.y.z", 7);
    post_raw(SET_CTYPE, nul, n + 7, &r);
    assert_non_null(strstr(r.body, "NUL"));
    expect_refusal(&r, 400, "invalid_request");
    free(nul);

    /* not a compact JWS, or one whose claims name no iss */
    const char *not_sets[] = {"",
                              "garbage",
                              "a.b",
                              "a.b.c.d",
                              "..",
                              "e30.e30.",
                              "e30.e30.AAAA",
                              "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOjF9.AAAA", /* iss: 1 */
                              "eyJhbGciOiJFUzI1NiJ9.W10.AAAA"};         /* claims [] */
    for (size_t i = 0; i < sizeof(not_sets) / sizeof(not_sets[0]); i++) {
        post_raw(SET_CTYPE, not_sets[i], strlen(not_sets[i]), &r);
        expect_refusal(&r, 400, "invalid_request");
    }

    /* an iss no transmitter has */
    char *evil = caep("https://evil.test", IDP_AUD, now, next_jti(), "session-revoked",
                      "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-safe\"}", "");
    post_set(evil, &r);
    expect_refusal(&r, 400, "invalid_issuer");
    free(evil);

    assert_int_equal(dbsize(), keys);
    assert_int_equal(signals_recorded(), recorded);
    /* the SET itself was fine all along */
    assert_int_equal(post_raw(SET_CTYPE, set, n, &r), 202);
    zh_resp_free(&r);
    free(set);
    free(c);
}

/* The signature: a key not in the transmitter's JWKS is invalid_key, a
 * signature of other bytes authentication_failed, an unsigned SET ("alg":
 * "none") and a SET whose typ is not secevent+jwt invalid_request. Nothing
 * reaches Redis. */
static void test_refused_signature(void **state)
{
    (void)state;
    long long now = time(NULL);
    struct zh_resp r;
    long long keys = dbsize();
    const char *sub = "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-safe\"}";
    char *c = caep(IDP, IDP_AUD, now, next_jti(), "session-revoked", sub, "");

    ztb_key *other;
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    char *set = sign(other, "secevent+jwt", c);
    post_raw(SET_CTYPE, set, strlen(set), &r);
    expect_refusal(&r, 400, "invalid_key");
    free(set);
    ztb_key_free(other);

    /* the transmitter's header and claims, another SET's signature */
    char *c2 = caep(IDP, IDP_AUD, now, next_jti(), "credential-change", sub, "");
    char *s1 = sign(idp_key, "secevent+jwt", c);
    char *s2 = sign(idp_key, "secevent+jwt", c2);
    char forged[8300];
    snprintf(forged, sizeof(forged), "%.*s%s", (int)(strrchr(s1, '.') - s1), s1, strrchr(s2, '.'));
    post_raw(SET_CTYPE, forged, strlen(forged), &r);
    expect_refusal(&r, 400, "authentication_failed");
    /* ... or no signature at all */
    snprintf(forged, sizeof(forged), "%.*s.", (int)(strrchr(s1, '.') - s1), s1);
    post_raw(SET_CTYPE, forged, strlen(forged), &r);
    assert_int_equal(r.status, 400);
    zh_resp_free(&r);
    free(s1);
    free(s2);
    free(c2);

    /* alg none, with the transmitter's iss */
    ztb_buf h, p;
    ztb_buf_init(&h, 256);
    ztb_buf_init(&p, 8192);
    const char *hdr = "{\"alg\":\"none\",\"typ\":\"secevent+jwt\"}";
    assert_int_equal(ztb_b64url_encode_buf(&h, hdr, strlen(hdr)), ZTB_OK);
    assert_int_equal(ztb_b64url_encode_buf(&p, c, strlen(c)), ZTB_OK);
    snprintf(forged, sizeof(forged), "%s.%s.", ztb_buf_cstr(&h), ztb_buf_cstr(&p));
    post_raw(SET_CTYPE, forged, strlen(forged), &r);
    assert_int_equal(r.status, 400);
    zh_resp_free(&r);
    ztb_buf_free(&h);
    ztb_buf_free(&p);

    /* signed by the transmitter, but not typed as a SET */
    const char *typs[] = {"JWT", "at+jwt", NULL};
    for (size_t i = 0; i < 3; i++) {
        set = sign(idp_key, typs[i], c);
        post_raw(SET_CTYPE, set, strlen(set), &r);
        assert_non_null(strstr(r.body, "secevent+jwt"));
        expect_refusal(&r, 400, "invalid_request");
        free(set);
    }
    assert_int_equal(dbsize(), keys);
    free(c);
}

/* Verified SETs whose claims do not hold: another audience is
 * invalid_audience; a stale or future iat, a passed exp, an event ztb does
 * not receive, a subject that names nothing of ours, a repeated member
 * invalid_request. Nothing reaches Redis, and the agent stays as it was. */
static void test_refused_claims(void **state)
{
    (void)state;
    long long now = time(NULL);
    struct zh_resp r;
    long long keys = dbsize();
    struct store_agent a;
    assert_int_equal(store_agent_get("caep-safe", &a), ZTB_OK);
    int64_t gen = a.generation;
    const char *sub = "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-safe\"}";
    char extra[64];
    snprintf(extra, sizeof(extra), "\"exp\":%lld,", now - 10);
    struct {
        char *claims;
        const char *err;
    } cases[] = {
        {caep(IDP, "https://someone-else.test", now, next_jti(), "session-revoked", sub, ""),
         "invalid_audience"},
        {caep(IDP, IDP_AUD, now - 3600, next_jti(), "session-revoked", sub, ""), "invalid_request"},
        {caep(IDP, IDP_AUD, now + 3600, next_jti(), "session-revoked", sub, ""), "invalid_request"},
        {caep(IDP, IDP_AUD, now, next_jti(), "session-revoked", sub, extra), "invalid_request"},
        {caep(IDP, IDP_AUD, now, next_jti(), "assurance-level-change", sub, ""), "invalid_request"},
        {caep(IDP, IDP_AUD, now, next_jti(), "session-revoked",
              "{\"format\":\"email\",\"email\":\"nobody@idp.test\"}", ""),
         "invalid_request"},
        /* a second iss after the one that picked the transmitter */
        {caep(IDP, IDP_AUD, now, next_jti(), "session-revoked", sub,
              "\"iss\":\"https://evil.test\","),
         "invalid_request"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        post_set(cases[i].claims, &r);
        expect_refusal(&r, 400, cases[i].err);
        free(cases[i].claims);
    }
    assert_int_equal(dbsize(), keys);
    assert_int_equal(store_agent_get("caep-safe", &a), ZTB_OK);
    assert_int_equal(a.generation, gen);
    assert_false(a.quarantined);
}

/* Fail closed and tell the transmitter to retry: keys that cannot be
 * fetched, Redis not answering: 503 temporarily_unavailable with
 * Retry-After, nothing marked received, so the same SET is accepted once
 * Redis is back. Without transmitters the endpoint is 404. */
static void test_unavailable(void **state)
{
    (void)state;
    long long now = time(NULL);
    struct zh_resp r;
    char ra[32];
    const char *sub = "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-retry\"}";

    char *c = caep(IDP_REMOTE, IDP_AUD, now, next_jti(), "session-revoked", sub, "");
    post_set(c, &r);
    assert_non_null(zh_resp_header(&r, "Retry-After", ra, sizeof(ra)));
    assert_string_equal(ra, "1");
    expect_refusal(&r, 503, "temporarily_unavailable");
    free(c);

    c = caep(IDP, IDP_AUD, now, next_jti(), "session-revoked", sub, "");
    zh_redis_stop(&bf_redis, 0);
    post_set(c, &r);
    assert_non_null(zh_resp_header(&r, "Retry-After", ra, sizeof(ra)));
    expect_refusal(&r, 503, "temporarily_unavailable");
    zh_redis_restart(&bf_redis);
    /* the broker reconnects (with back-off): poll, up to 4 s, until it
     * answers other than 503; the first answer that is not must be 202 */
    long st = 503;
    for (int i = 0; i < 200 && st == 503; i++) {
        st = post_set(c, &r);
        if (st == 503) {
            zh_resp_free(&r);
            usleep(20 * 1000);
        }
    }
    if (st != 202)
        fail_msg("after Redis came back: HTTP %ld %s", r.status, r.body ? r.body : "");
    zh_resp_free(&r);
    free(c);

    struct ssf_config *cfg = g_broker.ssf;
    g_broker.ssf = NULL;
    c = caep(IDP, IDP_AUD, now, next_jti(), "session-revoked", sub, "");
    post_set(c, &r);
    g_broker.ssf = cfg;
    expect_refusal(&r, 404, "invalid_request");
    free(c);
}

/* A transmitter is a signal source like any other, and holds to the same
 * per-source rate (signals_source_rate, _burst): a transmitter whose key
 * leaked cannot flood the policy, the audit log or Redis with signed SETs.
 * Over the rate the answer is 429 with Retry-After, and the SET becomes no
 * signal (it is not marked received: sent again later, it is accepted). */
static void test_source_rate(void **state)
{
    (void)state;
    unsigned rate0 = g_broker.cfg.signals_source_rate, burst0 = g_broker.cfg.signals_source_burst;
    g_broker.cfg.signals_source_rate = 1;
    g_broker.cfg.signals_source_burst = 2;
    (void)bf_redis_int("DEL %s", "ztb:rl:src:idp");
    long long now = time(NULL), before = signals_recorded();
    time_t t0 = time(NULL);
    int accepted = 0, limited = 0;
    char *held = NULL;
    for (int i = 0; i < 8; i++) {
        struct zh_resp r;
        char *c = caep(IDP, IDP_AUD, now, next_jti(), "session-revoked",
                       "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-uri\"}", "");
        long st = post_set(c, &r);
        if (st == 202) {
            accepted++;
            zh_resp_free(&r);
            free(c);
            continue;
        }
        char ra[32];
        assert_non_null(zh_resp_header(&r, "Retry-After", ra, sizeof(ra)));
        assert_true(atoi(ra) >= 1);
        expect_refusal(&r, 429, "temporarily_unavailable");
        limited++;
        free(held);
        held = c;
    }
    /* the burst, and at most what the rate refilled meanwhile */
    if (accepted > 2 + (int)(time(NULL) - t0) + 1 || limited == 0)
        fail_msg("%d of 8 SETs accepted at 1/s with a burst of 2 (%d refused)", accepted, limited);
    assert_int_equal(signals_recorded(), before + accepted);
    g_broker.cfg.signals_source_rate = rate0;
    g_broker.cfg.signals_source_burst = burst0;
    (void)bf_redis_int("DEL %s", "ztb:rl:src:idp"); /* a full bucket again */
    /* the refused SET was not marked received */
    struct zh_resp r;
    assert_int_equal(post_set(held, &r), 202);
    zh_resp_free(&r);
    free(held);
}

/* The signal type of each received event bit, and none for the others. */
static void test_signal_type(void **state)
{
    (void)state;
    assert_string_equal(ssf_signal_type(SSF_EV_SESSION_REVOKED), "caep:session-revoked");
    assert_string_equal(ssf_signal_type(SSF_EV_CREDENTIAL_CHANGE), "caep:credential-change");
    assert_string_equal(ssf_signal_type(SSF_EV_TOKEN_CLAIMS), "caep:token-claims-change");
    assert_null(ssf_signal_type(SSF_EV_QUARANTINED));
    assert_null(ssf_signal_type(SSF_EV_SESSION_REVOKED | SSF_EV_TOKEN_CLAIMS));
    assert_null(ssf_signal_type(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),           cmocka_unit_test(test_replay),
        cmocka_unit_test(test_refused_unverified), cmocka_unit_test(test_refused_signature),
        cmocka_unit_test(test_refused_claims),     cmocka_unit_test(test_unavailable),
        cmocka_unit_test(test_source_rate),        cmocka_unit_test(test_signal_type),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
