/*
 * test_ssf.c - the Shared Signals Framework end to end: the real broker, a
 * real Redis, and a real SSF receiver (tests/integration/ssf_receiver.py, a
 * python3 http.server that checks each SET with PyJWT, an independent JOSE
 * implementation, against the broker's published JWKS).
 *
 * Transmit: revoking or quarantining an agent pushes a verified SET within a
 * second; with the receiver down the delivery is retried and arrives once
 * it is back. Receive: a CAEP session-revoked SET signed by a configured
 * transmitter revokes the agent (its token is inactive at introspection),
 * through a SPIFFE ID, a mapped email or a jwt_id subject; a forged
 * signature, a foreign key, another audience or issuer, a replayed jti, an
 * unknown event type, a wrong typ or a stale iat are refused with the
 * RFC 8935 error.
 */
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"
#include "pki/jwk.h"
#include "pki/jws.h"

#define CAEP     "https://schemas.openid.net/secevent/caep/event-type/"
#define IDP      "https://idp.test"
#define IDP_AUD  "urn:ztb:test:ssf-receiver"
#define RX_AUD   "urn:ztb:test:gateway"
#define RX_AUTH  "Bearer rx-test-secret"
#define SRX_AUD  "spiffe://ztb.local/agent/ssf-rx-1"
#define IDP2     "https://idp2.test"
#define IDP3     "https://idp3.test"
#define SRX_AUTH "Bearer stream-secret"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"gateway-introspects\", \"effect\": \"allow\", \"agents\": [\"gateway-1\"],\n"
    "   \"actions\": [\"ztb:introspect\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"ssf-receivers\", \"effect\": \"allow\", \"agents\": [\"ssf-rx-*\"],\n"
    "   \"actions\": [\"ztb:ssf\", \"ssf:read\"], \"audiences\": [\"ztb-ssf\"], "
    "\"resources\": [\"**\"]},\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"], \"resources\": "
    "[\"**\"]}\n"
    " ],\n"
    " \"anomaly_responses\": [\n"
    "  {\"id\": \"caep-session-agent\", \"signals\": [\"caep:session-revoked\"],\n"
    "   \"min_severity\": \"high\", \"response\": \"revoke_all\"},\n"
    "  {\"id\": \"caep-session-token\", \"signals\": [\"caep:session-revoked\"],\n"
    "   \"min_severity\": \"high\", \"response\": \"revoke_token\"}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent gw;
static ztb_key *idp_key;
static char dir[256], brokerfile[300];

/* One python receiver: the audience and Authorization value it expects. */
struct rxproc {
    pid_t pid;
    char port[16], portfile[300], outfile[300];
    const char *aud, *auth;
};
static struct rxproc rx = {.aud = RX_AUD, .auth = RX_AUTH};
/* the receiver of the streams test: its agent's SPIFFE ID is its aud */
static struct rxproc srx = {.aud = SRX_AUD, .auth = SRX_AUTH};
/* a transmitter (ssf_receiver.py --transmitter) whose JWKS the broker fetches */
static struct rxproc ptx = {.aud = "--transmitter", .auth = "-"};

/* ---- the receiver ---------------------------------------------------------- */

static void receiver_start(struct rxproc *p, const char *port)
{
    const char *portfile = p->portfile;
    unlink(portfile);
    char script[512];
    snprintf(script, sizeof(script), "%s/tests/integration/ssf_receiver.py",
             getenv("ZTB_SOURCE_DIR"));
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        execl("/usr/bin/python3", "python3", script, port, portfile, brokerfile, p->aud, p->auth,
              p->outfile, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(portfile, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%15s", p->port) == 1;
            fclose(f);
            if (ok)
                return;
        }
        usleep(50 * 1000);
    }
    fail_msg("the SSF receiver (python3 %s) did not start", script);
}

static void receiver_stop(struct rxproc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
}

static void receivers_stop(void)
{
    receiver_stop(&rx);
    receiver_stop(&srx);
    receiver_stop(&ptx);
}

/* The receiver's line whose text contains needle (a new string), waiting up
 * to ms; NULL if none came. */
static char *receiver_line_of(const struct rxproc *p, const char *needle, unsigned ms)
{
    for (unsigned waited = 0;; waited += 20) {
        FILE *f = fopen(p->outfile, "r");
        char line[16384];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
            if (strstr(line, needle) != NULL) {
                fclose(f);
                return strdup(line);
            }
        if (f != NULL)
            fclose(f);
        if (waited >= ms)
            return NULL;
        usleep(20 * 1000);
    }
}

static char *receiver_line(const char *needle, unsigned ms)
{
    return receiver_line_of(&rx, needle, ms);
}

static long long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static long long metric(const char *name)
{
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "GET", "/metrics", NULL, &r), 0);
    char pat[128];
    snprintf(pat, sizeof(pat), "\n%s ", name);
    const char *p = strstr(r.body, pat);
    long long v = p ? atoll(p + strlen(pat)) : -1;
    zh_resp_free(&r);
    return v;
}

/* ---- setup ------------------------------------------------------------------ */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    atexit(receivers_stop);
    zh_tmpdir(dir, sizeof(dir));
    snprintf(rx.portfile, sizeof(rx.portfile), "%s/rx.port", dir);
    snprintf(brokerfile, sizeof(brokerfile), "%s/broker.url", dir);
    snprintf(rx.outfile, sizeof(rx.outfile), "%s/rx.out", dir);
    snprintf(srx.portfile, sizeof(srx.portfile), "%s/srx.port", dir);
    snprintf(srx.outfile, sizeof(srx.outfile), "%s/srx.out", dir);
    snprintf(ptx.portfile, sizeof(ptx.portfile), "%s/ptx.port", dir);
    snprintf(ptx.outfile, sizeof(ptx.outfile), "%s/ptx.out", dir);
    receiver_start(&rx, "0");
    receiver_start(&srx, "0");
    receiver_start(&ptx, "0");

    /* the test transmitter's key, published to the broker as a JWKS file */
    assert_int_equal(ztb_key_generate(&idp_key), ZTB_OK);
    ztb_buf jwks;
    ztb_buf_init(&jwks, 2048);
    const ztb_key *keys[] = {idp_key};
    assert_int_equal(ztb_jwks_render(keys, 1, &jwks), ZTB_OK);
    char path[320], conf[320], text[8192];
    snprintf(path, sizeof(path), "%s/idp.jwks", dir);
    write_file(path, ztb_buf_cstr(&jwks));
    ztb_buf_free(&jwks);
    snprintf(text, sizeof(text),
             "{\"transmitters\": [{\"name\": \"idp\", \"issuer\": \"" IDP "\",\n"
             "   \"jwks_file\": \"%s\", \"audience\": \"" IDP_AUD "\",\n"
             "   \"subjects\": {\"email:bot@idp.test\": \"caep-email\"}},\n"
             "  {\"name\": \"idp2\", \"issuer\": \"" IDP2 "\", \"audience\": \"" IDP_AUD "\",\n"
             "   \"jwks_uri\": \"http://127.0.0.1:%s/jwks.json\"},\n"
             "  {\"name\": \"idp3\", \"issuer\": \"" IDP3 "\", \"audience\": \"" IDP_AUD "\",\n"
             "   \"jwks_uri\": \"http://127.0.0.1:%d/jwks.json\"}],\n"
             " \"receivers\": [{\"name\": \"gw\", \"endpoint_url\": "
             "\"http://127.0.0.1:%s/events\",\n"
             "   \"authorization_header\": \"" RX_AUTH "\", \"audience\": \"" RX_AUD "\",\n"
             "   \"events_requested\": [\"" CAEP "session-revoked\",\n"
             "                          \"urn:ztb:ssf:event-type:agent-quarantined\"]}],\n"
             " \"streams\": {\"max_per_receiver\": 2, \"min_verification_interval\": 1,\n"
             "             \"push_hosts\": [\"127.0.0.1\", \"*.siem.example\"]}}\n",
             path, ptx.port, zh_free_port(), rx.port);
    snprintf(conf, sizeof(conf), "%s/ssf.json", dir);
    write_file(conf, text);
    /* it holds a receiver's authorization value: 0600, the broker's user's
     * (nobody when the tests run as root) */
    assert_int_equal(chmod(conf, 0600), 0);
    if (geteuid() == 0) {
        const struct passwd *pw = getpwnam("nobody");
        assert_non_null(pw);
        assert_int_equal(chown(conf, pw->pw_uid, pw->pw_gid), 0);
    }

    zh_redis_start(&rd);
    const char *extra[] = {"--ssf-config", conf, NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(&b, &o);
    write_file(brokerfile, b.url);
    za_enroll(&b, &gw, "gateway-1");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    receivers_stop();
    za_free(&gw);
    int rc = zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    ztb_key_free(idp_key);
    zh_rmtree(dir);
    return rc == 0 ? 0 : -1;
}

/* ---- transmit --------------------------------------------------------------- */

static void admin_ok(const char *path, const char *body)
{
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", path, body, &r), 0);
    if (r.status != 200)
        fail_msg("%s: HTTP %ld %s", path, r.status, r.body);
    zh_resp_free(&r);
}

static void expect_verified(const char *line, const char *event, const char *subject)
{
    if (line == NULL)
        fail_msg("no SET reached the receiver for %s", subject);
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    if (!json_is_true(json_object_get(j, "ok")))
        fail_msg("the receiver refused the SET: %s", line);
    json_t *c = json_object_get(j, "claims");
    assert_non_null(json_object_get(json_object_get(c, "events"), event));
    assert_string_equal(json_string_value(json_object_get(c, "iss")), b.url);
    assert_string_equal(json_string_value(json_object_get(c, "aud")), RX_AUD);
    json_decref(j);
}

static void test_push_on_revoke(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "pushed-1");
    long long t0 = now_ms();
    admin_ok("/v1/revocations", "{\"type\":\"agent\",\"id\":\"pushed-1\"}");
    char *line = receiver_line("spiffe://ztb.local/agent/pushed-1", 1000);
    long long took = now_ms() - t0;
    expect_verified(line, CAEP "session-revoked", "pushed-1");
    free(line);
    if (took > 1000)
        fail_msg("the SET took %lld ms", took);
    /* a quarantine is the ztb event type */
    za_free(&a);
    za_enroll(&b, &a, "pushed-q");
    admin_ok("/v1/quarantine", "{\"agent\":\"pushed-q\"}");
    line = receiver_line("spiffe://ztb.local/agent/pushed-q", 1000);
    expect_verified(line, "urn:ztb:ssf:event-type:agent-quarantined", "pushed-q");
    free(line);
    /* counted when the receiver's answer is back, just after it has the
     * SET: wait for it */
    for (int i = 0; i < 100 && metric("ztb_ssf_pushed_total") < 2; i++)
        usleep(10 * 1000);
    assert_true(metric("ztb_ssf_pushed_total") >= 2);
    za_free(&a);
}

static void test_push_retried_while_receiver_down(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "pushed-2");
    long long failures = metric("ztb_ssf_push_failures_total");
    char port[16];
    snprintf(port, sizeof(port), "%s", rx.port);
    receiver_stop(&rx);
    admin_ok("/v1/revocations", "{\"type\":\"agent\",\"id\":\"pushed-2\"}");
    for (int i = 0; i < 100 && metric("ztb_ssf_push_failures_total") == failures; i++)
        usleep(20 * 1000);
    assert_true(metric("ztb_ssf_push_failures_total") > failures); /* tried, refused */
    assert_null(receiver_line("agent/pushed-2", 0));
    receiver_start(&rx, port);
    char *line =
        receiver_line("spiffe://ztb.local/agent/pushed-2", 6000); /* retries at ~0.5, 1.5, 3.5 s */
    expect_verified(line, CAEP "session-revoked", "pushed-2");
    free(line);
    za_free(&a);
}

/* ---- receive ---------------------------------------------------------------- */

static long post_set(ztb_key *k, const char *typ, const char *claims, struct zh_resp *r)
{
    ztb_jws_sign_opts o = {.typ = typ};
    ztb_buf set;
    ztb_buf_init(&set, 8192);
    assert_int_equal(ztb_jws_sign(k, &o, claims, strlen(claims), &set), ZTB_OK);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/ssf/events", b.url);
    assert_int_equal(zh_http("POST", url, NULL, "application/secevent+jwt", ztb_buf_cstr(&set),
                             set.len, NULL, r),
                     0);
    ztb_buf_free(&set);
    return r->status;
}

/* A CAEP SET's claims: event (after the CAEP prefix, or a whole URI), sub_id JSON. */
static char *caep(const char *iss, const char *aud, long long iat, const char *jti,
                  const char *event, const char *sub_id)
{
    char *s = calloc(1, 2048);
    snprintf(s, 2048,
             "{\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"jti\":\"%s\",\"sub_id\":%s,"
             "\"events\":{\"%s%s\":{\"initiating_entity\":\"policy\","
             "\"reason_admin\":{\"en\":\"Landspeed Policy Violation\"},\"event_timestamp\":%lld}}}",
             iss, aud, iat, jti, sub_id, strchr(event, ':') ? "" : CAEP, event, iat);
    return s;
}

static void expect_rfc8935(struct zh_resp *r, const char *err)
{
    if (r->status != 400)
        fail_msg("expected 400 %s, got HTTP %ld %s", err, r->status, r->body);
    json_t *j = za_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "err")), err);
    assert_non_null(json_string_value(json_object_get(j, "description")));
    json_decref(j);
    zh_resp_free(r);
}

static void test_receive_session_revoked(void **state)
{
    (void)state;
    long long now = time(NULL);
    struct zh_resp r;
    char tok[4096];
    /* by SPIFFE ID, by a mapped email, by one token's jwt_id */
    const char *subjects[] = {
        "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-uri\"}",
        "{\"format\":\"complex\",\"user\":{\"format\":\"email\",\"email\":\"bot@idp.test\"}}",
        NULL};
    const char *agents[] = {"caep-uri", "caep-email", "caep-jwt"};
    for (int i = 0; i < 3; i++) {
        struct za_agent a;
        za_enroll(&b, &a, agents[i]);
        assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, tok, sizeof(tok)),
                         200);
        zh_resp_free(&r);
        char tok2[4096];
        assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, tok2, sizeof(tok2)),
                         200);
        zh_resp_free(&r);
        assert_true(za_active(&b, &gw, tok));
        char sub[512], jti[32];
        if (subjects[i] != NULL) {
            snprintf(sub, sizeof(sub), "%s", subjects[i]);
        } else {
            json_t *c = za_claims(tok);
            snprintf(sub, sizeof(sub), "{\"format\":\"jwt_id\",\"iss\":\"%s\",\"jti\":\"%s\"}",
                     b.url, json_string_value(json_object_get(c, "jti")));
            json_decref(c);
        }
        snprintf(jti, sizeof(jti), "caep-%d-%d", getpid(), i);
        char *claims = caep(IDP, IDP_AUD, now, jti, "session-revoked", sub);
        if (post_set(idp_key, "secevent+jwt", claims, &r) != 202)
            fail_msg("%s: HTTP %ld %s", agents[i], r.status, r.body);
        assert_int_equal(r.len, 0);
        zh_resp_free(&r);
        assert_false(za_active(&b, &gw, tok));
        /* the whole agent for an agent subject, the one token for a jwt_id */
        assert_int_equal(za_active(&b, &gw, tok2), subjects[i] == NULL);
        /* the same SET again: a replay */
        post_set(idp_key, "secevent+jwt", claims, &r);
        expect_rfc8935(&r, "invalid_request");
        free(claims);
        za_free(&a);
    }
}

static void test_receive_refusals(void **state)
{
    (void)state;
    long long now = time(NULL);
    struct za_agent a;
    za_enroll(&b, &a, "caep-safe");
    char tok[4096];
    struct zh_resp r;
    assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);
    const char *sub = "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-safe\"}";
    char jti[48];
    int n = 0;
#define NEXT_JTI() (snprintf(jti, sizeof(jti), "bad-%d-%d", getpid(), n++), jti)

    /* a foreign key: no such kid */
    ztb_key *other;
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    char *c = caep(IDP, IDP_AUD, now, NEXT_JTI(), "session-revoked", sub);
    post_set(other, "secevent+jwt", c, &r);
    expect_rfc8935(&r, "invalid_key");
    free(c);

    /* a forged signature: the transmitter's header and kid, another payload's signature */
    c = caep(IDP, IDP_AUD, now, NEXT_JTI(), "session-revoked", sub);
    char *c2 = caep(IDP, IDP_AUD, now, NEXT_JTI(), "credential-change", sub);
    ztb_jws_sign_opts o = {.typ = "secevent+jwt"};
    ztb_buf s1, s2;
    ztb_buf_init(&s1, 8192);
    ztb_buf_init(&s2, 8192);
    assert_int_equal(ztb_jws_sign(idp_key, &o, c, strlen(c), &s1), ZTB_OK);
    assert_int_equal(ztb_jws_sign(idp_key, &o, c2, strlen(c2), &s2), ZTB_OK);
    char forged[8192];
    const char *sig2 = strrchr(ztb_buf_cstr(&s2), '.');
    const char *sig1 = strrchr(ztb_buf_cstr(&s1), '.');
    snprintf(forged, sizeof(forged), "%.*s%s", (int)(sig1 - ztb_buf_cstr(&s1)), ztb_buf_cstr(&s1),
             sig2);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/ssf/events", b.url);
    assert_int_equal(
        zh_http("POST", url, NULL, "application/secevent+jwt", forged, strlen(forged), NULL, &r),
        0);
    expect_rfc8935(&r, "authentication_failed");
    ztb_buf_free(&s1);
    ztb_buf_free(&s2);
    free(c);
    free(c2);

    /* another audience, an unknown issuer */
    c = caep(IDP, "https://someone-else.test", now, NEXT_JTI(), "session-revoked", sub);
    post_set(idp_key, "secevent+jwt", c, &r);
    expect_rfc8935(&r, "invalid_audience");
    free(c);
    c = caep("https://evil.test", IDP_AUD, now, NEXT_JTI(), "session-revoked", sub);
    post_set(idp_key, "secevent+jwt", c, &r);
    expect_rfc8935(&r, "invalid_issuer");
    free(c);

    /* an event type ztb does not receive; a wrong typ; a stale iat; an unknown subject */
    c = caep(IDP, IDP_AUD, now, NEXT_JTI(), "assurance-level-change", sub);
    post_set(idp_key, "secevent+jwt", c, &r);
    expect_rfc8935(&r, "invalid_request");
    free(c);
    c = caep(IDP, IDP_AUD, now, NEXT_JTI(), "session-revoked", sub);
    post_set(idp_key, "JWT", c, &r);
    expect_rfc8935(&r, "invalid_request");
    free(c);
    c = caep(IDP, IDP_AUD, now - 3600, NEXT_JTI(), "session-revoked", sub);
    post_set(idp_key, "secevent+jwt", c, &r);
    expect_rfc8935(&r, "invalid_request");
    free(c);
    c = caep(IDP, IDP_AUD, now, NEXT_JTI(), "session-revoked",
             "{\"format\":\"email\",\"email\":\"nobody@idp.test\"}");
    post_set(idp_key, "secevent+jwt", c, &r);
    expect_rfc8935(&r, "invalid_request");
    free(c);
    /* not a SET at all */
    assert_int_equal(zh_http("POST", url, NULL, "application/secevent+jwt", "garbage", 7, NULL, &r),
                     0);
    expect_rfc8935(&r, "invalid_request");

    /* none of it touched the agent */
    assert_true(za_active(&b, &gw, tok));
    ztb_key_free(other);
    za_free(&a);
}

static void test_configuration(void **state)
{
    (void)state;
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/.well-known/ssf-configuration", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = za_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "issuer")), b.url);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "delivery_methods_supported"), 0)),
        "urn:ietf:rfc:8935");
    char jwks[128];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b.url);
    assert_string_equal(json_string_value(json_object_get(j, "jwks_uri")), jwks);
    json_decref(j);
    zh_resp_free(&r);
}

/* ---- a transmitter's keys by URL ------------------------------------------- */

/* A SET of the python transmitter over claims (kid: another kid in its
 * header, or NULL), posted to the broker. */
static long post_python_set(const char *claims, const char *kid, struct zh_resp *r)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%s/sign%s%s", ptx.port, kid ? "?kid=" : "",
             kid ? kid : "");
    struct zh_resp s;
    assert_int_equal(
        zh_http("POST", url, NULL, "application/json", claims, strlen(claims), NULL, &s), 0);
    assert_int_equal(s.status, 200);
    snprintf(url, sizeof(url), "%s/v1/ssf/events", b.url);
    assert_int_equal(zh_http("POST", url, NULL, "application/secevent+jwt", s.body, s.len, NULL, r),
                     0);
    zh_resp_free(&s);
    return r->status;
}

static int jwks_fetches(void)
{
    FILE *f = fopen(ptx.outfile, "r");
    char line[256];
    int n = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, "jwks_fetch") != NULL;
    if (f != NULL)
        fclose(f);
    return n;
}

static void test_receive_jwks_uri(void **state)
{
    (void)state;
    long long now = time(NULL);
    struct zh_resp r;
    char tok[4096], jti[48];
    /* fetched at start */
    assert_int_equal(jwks_fetches(), 1);
    struct za_agent a;
    za_enroll(&b, &a, "caep-uri-1");
    assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);
    const char *sub = "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/caep-uri-1\"}";
    char *c;

    /* the transmitter rotates: the first SET with the new kid is checked
     * against the keys fetched again */
    struct zh_resp rr;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%s/rotate", ptx.port);
    assert_int_equal(zh_http("POST", url, NULL, "text/plain", "", 0, NULL, &rr), 0);
    zh_resp_free(&rr);
    int before = jwks_fetches();
    snprintf(jti, sizeof(jti), "uri-%d-1", getpid());
    c = caep(IDP2, IDP_AUD, now, jti, "session-revoked", sub);
    if (post_python_set(c, NULL, &r) != 202) {
        zh_broker_dump_log(&b);
        fail_msg("a SET with the rotated key: HTTP %ld %s (JWKS fetches: %d before, %d now)",
                 r.status, r.body, before, jwks_fetches());
    }
    zh_resp_free(&r);
    free(c);
    assert_int_equal(jwks_fetches(), before + 1);
    assert_false(za_active(&b, &gw, tok));
    /* a kid nobody published, right after: refused, and no fetch (at most
     * one per 30 s, however many SETs name unknown kids) */
    snprintf(jti, sizeof(jti), "uri-%d-0", getpid());
    c = caep(IDP2, IDP_AUD, now, jti, "session-revoked", sub);
    for (int i = 0; i < 3; i++) {
        post_python_set(c, "made-up", &r);
        expect_rfc8935(&r, "invalid_key");
    }
    free(c);
    assert_int_equal(jwks_fetches(), before + 1);

    /* a transmitter whose JWKS cannot be fetched: every SET refused (503) */
    snprintf(jti, sizeof(jti), "uri-%d-3", getpid());
    c = caep(IDP3, IDP_AUD, now, jti, "session-revoked", sub);
    post_set(idp_key, "secevent+jwt", c, &r);
    if (r.status != 503)
        fail_msg("a SET of a transmitter without keys: HTTP %ld %s", r.status, r.body);
    assert_non_null(strstr(r.body, "temporarily_unavailable"));
    zh_resp_free(&r);
    free(c);
    za_free(&a);
}

/* ---- stream management ----------------------------------------------------- */

#define STREAM_EVENTS_PATH "/v1/ssf/streams"

/* A ztb token of a for audience ztb-ssf and action (form-encoded), into tok. */
static void ssf_token(const struct za_agent *a, const char *audience, const char *action, char *tok,
                      size_t cap)
{
    struct zh_resp r;
    long st = za_token(&b, a, audience, action, &r, tok, cap);
    if (st != 200)
        fail_msg("token for %s: HTTP %ld %s", action, st, r.body);
    zh_resp_free(&r);
}

/* One call to the management API with tok (NULL: no Authorization). */
static long ssf_call(const char *method, const char *path, const char *tok, const char *body,
                     struct zh_resp *r)
{
    char url[512], auth[4200];
    snprintf(url, sizeof(url), "%s%s", b.url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok ? tok : "");
    const char *h[] = {auth, NULL};
    assert_int_equal(zh_http(method, url, NULL, body ? "application/json" : NULL, body,
                             body ? strlen(body) : 0, tok ? h : NULL, r),
                     0);
    return r->status;
}

/* The same, failing unless the status is want; the body's JSON (or NULL). */
static json_t *ssf_expect(const char *method, const char *path, const char *tok, const char *body,
                          long want)
{
    struct zh_resp r;
    if (ssf_call(method, path, tok, body, &r) != want)
        fail_msg("%s %s: HTTP %ld %s (wanted %ld)", method, path, r.status, r.body, want);
    json_t *j = r.len > 0 ? json_loads(r.body, 0, NULL) : NULL;
    zh_resp_free(&r);
    return j;
}

/* Create a stream for the receiver srx with tok; its id into id. */
static void create_stream(const char *tok, const char *events, char id[40])
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"delivery\": {\"method\": \"urn:ietf:rfc:8935\",\n"
             "  \"endpoint_url\": \"http://127.0.0.1:%s/events\",\n"
             "  \"authorization_header\": \"" SRX_AUTH "\"},\n"
             " \"events_requested\": [%s], \"description\": \"test stream\"}",
             srx.port, events);
    json_t *j = ssf_expect("POST", STREAM_EVENTS_PATH, tok, body, 201);
    assert_non_null(j);
    snprintf(id, 40, "%s", json_string_value(json_object_get(j, "stream_id")));
    assert_int_equal(strncmp(id, "ssf_", 4), 0);
    json_decref(j);
}

/* The claims of the verified SET the stream receiver got with needle in it. */
static void expect_stream_set(const char *needle, const char *event)
{
    char *line = receiver_line_of(&srx, needle, 2500);
    if (line == NULL)
        fail_msg("no SET with %s reached the stream's receiver", needle);
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    if (!json_is_true(json_object_get(j, "ok")))
        fail_msg("the stream's receiver refused the SET: %s", line);
    json_t *c = json_object_get(j, "claims");
    assert_non_null(json_object_get(json_object_get(c, "events"), event));
    assert_string_equal(json_string_value(json_object_get(c, "aud")), SRX_AUD);
    json_decref(j);
    free(line);
}

static void revoke_agent(const char *name)
{
    struct za_agent a;
    za_enroll(&b, &a, name);
    char body[128];
    snprintf(body, sizeof(body), "{\"type\":\"agent\",\"id\":\"%s\"}", name);
    admin_ok("/v1/revocations", body);
    za_free(&a);
}

static void test_streams(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "ssf-rx-1");
    char tok[4096], id[40], path[256], body[512];
    ssf_token(&a, "ztb-ssf", "ztb%3Assf", tok, sizeof(tok));

    /* the transmitter advertises the endpoints */
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/.well-known/ssf-configuration", &r), 0);
    json_t *j = za_json(&r);
    char want[256];
    snprintf(want, sizeof(want), "%s/v1/ssf/streams", b.url);
    assert_string_equal(json_string_value(json_object_get(j, "configuration_endpoint")), want);
    snprintf(want, sizeof(want), "%s/v1/ssf/verify", b.url);
    assert_string_equal(json_string_value(json_object_get(j, "verification_endpoint")), want);
    json_decref(j);
    zh_resp_free(&r);

    /* create: events_delivered is what ztb sends of what was asked; the
     * authorization value is never shown back */
    create_stream(tok, "\"" CAEP "session-revoked\", \"urn:example:not-sent\"", id);
    snprintf(path, sizeof(path), STREAM_EVENTS_PATH "?stream_id=%s", id);
    assert_int_equal(ssf_call("GET", path, tok, NULL, &r), 200);
    assert_null(strstr(r.body, "stream-secret"));
    j = za_json(&r);
    zh_resp_free(&r);
    assert_string_equal(json_string_value(json_object_get(j, "aud")), SRX_AUD);
    json_t *del = json_object_get(j, "events_delivered");
    assert_int_equal(json_array_size(del), 1);
    assert_string_equal(json_string_value(json_array_get(del, 0)), CAEP "session-revoked");
    json_decref(j);

    /* verification: a SET with the state, checked by PyJWT; then throttled */
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"state\": \"st-%d\"}", id, getpid());
    json_decref(ssf_expect("POST", "/v1/ssf/verify", tok, body, 204));
    char st[32];
    snprintf(st, sizeof(st), "st-%d", getpid());
    expect_stream_set(st, "https://schemas.openid.net/secevent/ssf/event-type/verification");
    json_decref(ssf_expect("POST", "/v1/ssf/verify", tok, body, 429));

    /* a revocation reaches the stream beside the configured receiver */
    revoke_agent("stream-s1");
    expect_stream_set("agent/stream-s1", CAEP "session-revoked");

    /* paused: held, delivered once enabled */
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"status\": \"paused\"}", id);
    j = ssf_expect("POST", "/v1/ssf/status", tok, body, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "paused");
    json_decref(j);
    revoke_agent("stream-p1");
    assert_null(receiver_line_of(&srx, "agent/stream-p1", 700));
    snprintf(path, sizeof(path), "/v1/ssf/status?stream_id=%s", id);
    j = ssf_expect("GET", path, tok, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "paused");
    json_decref(j);
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"status\": \"enabled\"}", id);
    json_decref(ssf_expect("POST", "/v1/ssf/status", tok, body, 200));
    expect_stream_set("agent/stream-p1", CAEP "session-revoked");

    /* update: only quarantines now; a revocation no longer goes to it */
    snprintf(body, sizeof(body),
             "{\"stream_id\": \"%s\", \"events_requested\": "
             "[\"urn:ztb:ssf:event-type:agent-quarantined\"]}",
             id);
    j = ssf_expect("PATCH", STREAM_EVENTS_PATH, tok, body, 200);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "events_delivered"), 0)),
        "urn:ztb:ssf:event-type:agent-quarantined");
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "delivery"), "endpoint_url")),
               srx.port)); /* delivery left as it was */
    json_decref(j);
    revoke_agent("stream-u1");
    assert_null(receiver_line_of(&srx, "agent/stream-u1", 600));

    /* replace with a URL that would send SETs in clear over the network */
    snprintf(body, sizeof(body),
             "{\"stream_id\": \"%s\", \"delivery\": {\"method\": \"urn:ietf:rfc:8935\",\n"
             " \"endpoint_url\": \"http://198.51.100.7/events\"}}",
             id);
    assert_int_equal(ssf_call("PUT", STREAM_EVENTS_PATH, tok, body, &r), 400);
    assert_non_null(strstr(r.body, "https://"));
    zh_resp_free(&r);

    /* delete: gone, and nothing more is sent to it */
    snprintf(path, sizeof(path), STREAM_EVENTS_PATH "?stream_id=%s", id);
    json_decref(ssf_expect("DELETE", path, tok, NULL, 204));
    json_decref(ssf_expect("GET", path, tok, NULL, 404));

    /* every change is in the audit log, attributed to the receiver */
    char *audit = za_audit_text(&b);
    const char *events[] = {"ssf.stream_created", "ssf.stream_status", "ssf.stream_updated",
                            "ssf.stream_deleted"};
    for (size_t i = 0; i < 4; i++) {
        const char *p = strstr(audit, events[i]);
        if (p == NULL || strstr(p, "agent:ssf-rx-1") == NULL)
            fail_msg("no %s record by agent:ssf-rx-1 in the audit log", events[i]);
    }
    free(audit);
    za_free(&a);
}

/* Attacks on the management API: another receiver's streams, tokens that
 * are not a ztb:ssf token of the streams audience, URLs that are not push
 * endpoints, more streams than allowed. */
static void test_streams_refusals(void **state)
{
    (void)state;
    struct za_agent a, other;
    za_enroll(&b, &a, "ssf-rx-2");
    za_enroll(&b, &other, "ssf-rx-3");
    char tok[4096], otok[4096], id[40], path[256], body[4400];
    ssf_token(&a, "ztb-ssf", "ztb%3Assf", tok, sizeof(tok));
    ssf_token(&other, "ztb-ssf", "ztb%3Assf", otok, sizeof(otok));
    create_stream(tok, "\"" CAEP "session-revoked\"", id);

    /* another receiver can neither see nor change it */
    snprintf(path, sizeof(path), STREAM_EVENTS_PATH "?stream_id=%s", id);
    json_decref(ssf_expect("GET", path, otok, NULL, 404));
    json_decref(ssf_expect("DELETE", path, otok, NULL, 404));
    snprintf(body, sizeof(body),
             "{\"stream_id\": \"%s\", \"delivery\": {\"method\": \"urn:ietf:rfc:8935\",\n"
             " \"endpoint_url\": \"https://attacker.example/steal\"}}",
             id);
    json_decref(ssf_expect("PATCH", STREAM_EVENTS_PATH, otok, body, 404));
    json_decref(ssf_expect("PUT", STREAM_EVENTS_PATH, otok, body, 404));
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"status\": \"disabled\"}", id);
    json_decref(ssf_expect("POST", "/v1/ssf/status", otok, body, 404));
    snprintf(path, sizeof(path), "/v1/ssf/status?stream_id=%s", id);
    json_decref(ssf_expect("GET", path, otok, NULL, 404));
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\"}", id);
    json_decref(ssf_expect("POST", "/v1/ssf/verify", otok, body, 404));
    json_t *list = ssf_expect("GET", STREAM_EVENTS_PATH, otok, NULL, 200);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    /* ... and the owner's stream is as it was */
    snprintf(path, sizeof(path), STREAM_EVENTS_PATH "?stream_id=%s", id);
    json_t *j = ssf_expect("GET", path, tok, NULL, 200);
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, "attacker"));
    free(text);
    json_decref(j);
    snprintf(path, sizeof(path), "/v1/ssf/status?stream_id=%s", id);
    j = ssf_expect("GET", path, tok, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "enabled");
    json_decref(j);
    list = ssf_expect("GET", STREAM_EVENTS_PATH, tok, NULL, 200);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);

    /* no token; a token for another audience; another action; a tampered
     * token; a revoked one */
    struct zh_resp r;
    assert_int_equal(ssf_call("GET", STREAM_EVENTS_PATH, NULL, NULL, &r), 401);
    char hv[256];
    assert_non_null(zh_resp_header(&r, "WWW-Authenticate", hv, sizeof(hv)));
    assert_non_null(strstr(hv, "Bearer"));
    zh_resp_free(&r);
    char bad[4096];
    ssf_token(&a, "payments", "payments%3Aread", bad, sizeof(bad));
    json_decref(ssf_expect("GET", STREAM_EVENTS_PATH, bad, NULL, 401));
    ssf_token(&a, "ztb-ssf", "ssf%3Aread", bad, sizeof(bad));
    assert_int_equal(ssf_call("GET", STREAM_EVENTS_PATH, bad, NULL, &r), 403);
    assert_non_null(strstr(r.body, "insufficient_scope"));
    zh_resp_free(&r);
    snprintf(bad, sizeof(bad), "%s", otok);
    char *dot = strchr(bad, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A'; /* the payload, signature unchanged */
    json_decref(ssf_expect("GET", STREAM_EVENTS_PATH, bad, NULL, 401));
    snprintf(body, sizeof(body), "{\"type\":\"jti\",\"token\":\"%s\"}", otok);
    admin_ok("/v1/revocations", body);
    json_decref(ssf_expect("GET", STREAM_EVENTS_PATH, otok, NULL, 401));

    /* only a rule that names ztb:ssf grants it: gateway-1's rule with
     * audiences ** does not */
    assert_int_equal(za_token(&b, &gw, "ztb-ssf", "ztb%3Assf", &r, bad, sizeof(bad)), 403);
    zh_resp_free(&r);

    /* push URLs that are not https (or http to loopback) */
    const char *urls[] = {"http://10.1.2.3/events", "ftp://127.0.0.1/events",
                          "https://user@gw.example/events", "file:///etc/passwd"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(body, sizeof(body),
                 "{\"delivery\": {\"method\": \"urn:ietf:rfc:8935\", \"endpoint_url\": \"%s\"}}",
                 urls[i]);
        json_decref(ssf_expect("POST", STREAM_EVENTS_PATH, tok, body, 400));
    }
    /* https, but to a host the operator did not list in streams.push_hosts
     * (the broker would POST wherever a receiver says: an internal service,
     * a cloud metadata address); a name under *.siem.example is fine until it
     * is pushed to, but the domain itself is not under it */
    const char *off_list[] = {"https://169.254.169.254/latest", "https://intranet.example/hook",
                              "https://siem.example/events", "https://x.siem.example.evil/e"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(body, sizeof(body),
                 "{\"delivery\": {\"method\": \"urn:ietf:rfc:8935\", \"endpoint_url\": \"%s\"}}",
                 off_list[i]);
        assert_int_equal(ssf_call("POST", STREAM_EVENTS_PATH, tok, body, &r), 400);
        assert_non_null(strstr(r.body, "push_hosts"));
        zh_resp_free(&r);
    }
    snprintf(body, sizeof(body),
             "{\"stream_id\": \"%s\", \"delivery\": {\"method\": \"urn:ietf:rfc:8935\",\n"
             " \"endpoint_url\": \"https://169.254.169.254/latest\"}}",
             id);
    assert_int_equal(ssf_call("PATCH", STREAM_EVENTS_PATH, tok, body, &r), 400);
    assert_non_null(strstr(r.body, "push_hosts"));
    zh_resp_free(&r);
    /* poll is not served; unknown members are refused */
    json_decref(ssf_expect("POST", STREAM_EVENTS_PATH, tok,
                           "{\"delivery\": {\"method\": \"urn:ietf:rfc:8936\"}}", 400));
    json_decref(ssf_expect("POST", STREAM_EVENTS_PATH, tok, "{\"owner\": \"ssf-rx-3\"}", 400));

    /* max_per_receiver is 2 */
    char id2[40];
    create_stream(tok, "", id2);
    snprintf(body, sizeof(body),
             "{\"delivery\": {\"method\": \"urn:ietf:rfc:8935\", \"endpoint_url\": "
             "\"http://127.0.0.1:%s/events\"}}",
             srx.port);
    json_decref(ssf_expect("POST", STREAM_EVENTS_PATH, tok, body, 409));
    za_free(&a);
    za_free(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configuration),
        cmocka_unit_test(test_push_on_revoke),
        cmocka_unit_test(test_push_retried_while_receiver_down),
        cmocka_unit_test(test_receive_session_revoked),
        cmocka_unit_test(test_receive_refusals),
        cmocka_unit_test(test_receive_jwks_uri),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_streams_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
