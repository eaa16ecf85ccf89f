/*
 * test_anomaly_signals.c - anomaly signals end to end: the real broker, a real
 * Redis, real ztbctl. Sources authenticate (secret, signed SET, enrolled
 * gateway); bad signals are refused and audited; each policy response is
 * applied and visible (issuance refused, introspection inactive, Redis
 * state, channel message); dual verification and operator confirmation;
 * the broker's own detectors.
 */
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"
#include "pki/jwk.h"
#include "pki/jws.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"gateway-introspects\", \"effect\": \"allow\", \"agents\": [\"gateway-1\"],\n"
    "   \"actions\": [\"ztb:introspect\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:read\", \"crm:read\"], \"audiences\": [\"payments\", \"crm\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"burst\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:burst\"], \"audiences\": [\"payments\"], \"resources\": "
    "[\"**\"],\n"
    "   \"obligations\": {\"rate_limits\": {\"per_action\": {\"rate\": 1, \"burst\": 1,\n"
    "                     \"period\": 60}}}}\n"
    " ],\n"
    " \"anomaly_responses\": [\n"
    "  {\"id\": \"replay-revoke\", \"signals\": [\"token_replay\"], \"min_severity\": \"medium\",\n"
    "   \"response\": \"revoke_token\"},\n"
    "  {\"id\": \"compromise-quarantine\", \"signals\": [\"credential_compromise\"],\n"
    "   \"min_severity\": \"high\", \"min_confidence\": 0.8, \"response\": \"quarantine\",\n"
    "   \"independent_signals\": 2, \"window\": 600},\n"
    "  {\"id\": \"compromise-revoke-all\", \"signals\": [\"credential_compromise\"],\n"
    "   \"min_severity\": \"critical\", \"response\": \"revoke_all\",\n"
    "   \"operator_confirmation\": true},\n"
    "  {\"id\": \"injection-approval\", \"signals\": [\"prompt_injection\"],\n"
    "   \"min_severity\": \"medium\", \"response\": \"require_approval\"},\n"
    "  {\"id\": \"abuse-kill\", \"signals\": [\"soc:integration_abuse\"], \"min_severity\": "
    "\"high\",\n"
    "   \"response\": \"kill_audience\"},\n"
    "  {\"id\": \"leak-taint\", \"signals\": [\"soc:key_leak\"], \"min_severity\": \"critical\",\n"
    "   \"response\": \"taint_key\"},\n"
    "  {\"id\": \"probe-quarantine\", \"signals\": [\"policy_violation\"], \"agents\": "
    "[\"prober\"],\n"
    "   \"min_severity\": \"medium\", \"response\": \"quarantine\"},\n"
    "  {\"id\": \"burst-approval\", \"signals\": [\"rate_limit_burst\"], \"agents\": "
    "[\"bursty\"],\n"
    "   \"min_severity\": \"low\", \"response\": \"require_approval\"},\n"
    "  {\"id\": \"replayer-revoke\", \"signals\": [\"assertion_replay\"], \"agents\": "
    "[\"replayer\"],\n"
    "   \"min_severity\": \"high\", \"response\": \"revoke_all\"},\n"
    "  {\"id\": \"joiner-quarantine\", \"signals\": [\"join_token_reuse\"], \"agents\": "
    "[\"joiner\"],\n"
    "   \"min_severity\": \"high\", \"response\": \"quarantine\"},\n"
    "  {\"id\": \"wanderer-approval\", \"signals\": [\"new_audience\"], \"agents\": "
    "[\"wanderer\"],\n"
    "   \"min_severity\": \"medium\", \"response\": \"require_approval\"},\n"
    "  {\"id\": \"watched-quarantine\", \"signals\": [\"policy_violation\"], \"agents\": "
    "[\"watched\"],\n"
    "   \"min_severity\": \"medium\", \"response\": \"quarantine\"},\n"
    "  {\"id\": \"strict-scope\", \"signals\": [\"out_of_scope\"], \"agents\": [\"strict\"],\n"
    "   \"min_severity\": \"medium\", \"response\": \"quarantine\"}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static redisContext *subc; /* subscribed to ztb:revocations */
static struct za_agent gw; /* gateway-1: a signal source by its enrolled identity */
static char soc_secret[64], siem_secret[64];
static ztb_key *tx_key; /* the "tx" transmitter's SET signing key */

/* ---- helpers ----------------------------------------------------------------- */

static int ctl(char **out, char **err, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl"), "--socket", b.admin_sock};
    int n = 3;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return zh_run(argv, out, err);
}

static char *source_add(const char *const *args)
{
    char *out, *err;
    if (ctl(&out, &err, args) != 0)
        fail_msg("ztbctl %s %s %s: %s", args[0], args[1], args[2], err);
    char *s = strstr(out, "ztbsrc_");
    char *secret = NULL;
    if (s != NULL) {
        secret = calloc(1, 64);
        assert_int_equal(sscanf(s, "%63s", secret), 1);
    }
    free(out);
    free(err);
    return secret;
}

/* POST /v1/signals with optional Authorization bearer and content type. */
static long post_signal(const char *bearer, const char *ctype, const char *body, size_t len,
                        struct zh_resp *r)
{
    char url[128], hdr[1024];
    snprintf(url, sizeof(url), "%s/v1/signals", b.url);
    const char *headers[] = {hdr, NULL};
    if (bearer != NULL)
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", bearer);
    assert_int_equal(zh_http("POST", url, NULL, ctype, body, len, bearer ? headers : NULL, r), 0);
    return r->status;
}

/* A signal's JSON: one event of type with subject (JSON object text). */
static char *signal_json(const char *type, const char *severity, double conf, const char *subject)
{
    static unsigned n;
    char *s = calloc(1, 4096);
    snprintf(s, 4096,
             "{\"jti\":\"it-%d-%u-%ld\",\"iat\":%lld,\"events\":{\"urn:ztb:signal:%s\":"
             "{\"subject\":%s,\"severity\":\"%s\",\"confidence\":%.2f,"
             "\"evidence\":{\"note\":\"integration test\"}}}}",
             getpid(), n++, (long)rand(), (long long)time(NULL), type, subject, severity, conf);
    return s;
}

/* Send a signal as bearer; expect 202; return the answer (caller decrefs). */
static json_t *signal_ok(const char *bearer, const char *type, const char *severity, double conf,
                         const char *subject)
{
    char *body = signal_json(type, severity, conf, subject);
    struct zh_resp r;
    if (post_signal(bearer, "application/json", body, strlen(body), &r) != 202)
        fail_msg("signal %s: HTTP %ld %s", type, r.status, r.body);
    free(body);
    json_t *j = za_json(&r);
    zh_resp_free(&r);
    return j;
}

/* The status of the response entry id in a signal's answer ("" if absent). */
static const char *status_of(json_t *answer, const char *entry)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(answer, "responses"), i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "id")), entry) == 0)
            return json_string_value(json_object_get(o, "status"));
    }
    return "";
}

/* Wait for a message on ztb:revocations containing needle; 1 if seen. */
static int wait_message(const char *needle, char *out, size_t cap)
{
    struct timeval tv = {0, 200000};
    redisSetTimeout(subc, tv);
    for (int i = 0; i < 25; i++) {
        void *vr = NULL;
        if (redisGetReply(subc, &vr) != REDIS_OK) {
            /* a timeout breaks the context: reconnect would lose messages,
             * so the subscription is made once and errors are fatal */
            fail_msg("subscriber connection failed: %s", subc->errstr);
        }
        redisReply *r = vr;
        int hit = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                  r->element[2]->type == REDIS_REPLY_STRING && strstr(r->element[2]->str, needle);
        if (hit && out != NULL)
            snprintf(out, cap, "%s", r->element[2]->str);
        freeReplyObject(r);
        if (hit)
            return 1;
    }
    return 0;
}

static long long redis_int(const char *fmt, const char *arg)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, fmt, arg);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
    if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    freeReplyObject(r);
    redisFree(c);
    return v;
}

static int agent_flag(const char *name, const char *field)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/agents/%s", name);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "GET", path, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = za_json(&r);
    int v = json_is_true(json_object_get(j, field));
    if (strcmp(field, "generation") == 0)
        v = (int)json_integer_value(json_object_get(j, field));
    json_decref(j);
    zh_resp_free(&r);
    return v;
}

/* ---- fixture ----------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_redis_start(&rd);
    const char *extra[] = {
        "--detect-denials", "3", "--detect-rate-limited", "3", "--detect-new-audience", "1", NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(&b, &o);
    subc = zh_redis_connect(&rd);
    redisReply *r = redisCommand(subc, "SUBSCRIBE ztb:revocations");
    assert_non_null(r);
    freeReplyObject(r);

    za_enroll(&b, &gw, "gateway-1");
    const char *soc[] = {"signals", "source", "add", "soc", NULL};
    const char *siem[] = {"signals", "source", "add", "siem", NULL};
    const char *gwa[] = {"signals", "source", "add", "gw", "--agent", "gateway-1", NULL};
    char *s = source_add(soc);
    snprintf(soc_secret, sizeof(soc_secret), "%s", s);
    free(s);
    s = source_add(siem);
    snprintf(siem_secret, sizeof(siem_secret), "%s", s);
    free(s);
    assert_null(source_add(gwa)); /* no secret for an enrolled identity */

    /* a transmitter that signs its SETs */
    assert_int_equal(ztb_key_generate(&tx_key), ZTB_OK);
    ztb_buf jwk;
    ztb_buf_init(&jwk, 1024);
    assert_int_equal(ztb_jwk_render(tx_key, &jwk), ZTB_OK);
    char path[320];
    snprintf(path, sizeof(path), "%s/tx.jwk", b.dir);
    FILE *f = fopen(path, "w");
    fputs(ztb_buf_cstr(&jwk), f);
    fclose(f);
    ztb_buf_free(&jwk);
    const char *tx[] = {"signals", "source", "add", "tx", "--jwk", path, NULL};
    s = source_add(tx);
    free(s);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redisFree(subc);
    za_free(&gw);
    ztb_key_free(tx_key);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

/* ---- refusals ------------------------------------------------------------------ */

static void test_refused_and_audited(void **state)
{
    (void)state;
    char *good = signal_json("prompt_injection", "high", 0.9, "{\"agent\":\"nobody\"}");
    struct zh_resp r;
    /* no credential, a wrong one, a join-token-shaped one */
    post_signal(NULL, "application/json", good, strlen(good), &r);
    za_expect_error(&r, 401, "invalid_client");
    char h[128];
    assert_non_null(zh_resp_header(&r, "WWW-Authenticate", h, sizeof(h)));
    zh_resp_free(&r);
    char wrong[64];
    snprintf(wrong, sizeof(wrong), "%s", soc_secret);
    wrong[20] = wrong[20] == 'x' ? 'y' : 'x';
    post_signal(wrong, "application/json", good, strlen(good), &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    post_signal("ztbs_forged.session", "application/json", good, strlen(good), &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    /* an enrolled agent that is not a registered source */
    struct za_agent other;
    za_enroll(&b, &other, "not-a-source");
    post_signal(other.session, "application/json", good, strlen(good), &r);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    za_free(&other);

    /* malformed: wrong type, not JSON, unknown member, bad severity,
     * confidence out of range, no subject, two events, foreign SPIFFE ID */
    post_signal(soc_secret, "text/plain", good, strlen(good), &r);
    za_expect_error(&r, 415, "invalid_request");
    zh_resp_free(&r);
    const char *bad[] = {
        "{\"jti\":\"x1\",\"events\":",
        "{\"jti\":\"x2\",\"events\":{\"token_replay\":{\"subject\":{\"agent\":\"a\"},"
        "\"severity\":\"high\",\"confidence\":1,\"severty\":\"high\"}}}",
        "{\"jti\":\"x3\",\"events\":{\"token_replay\":{\"subject\":{\"agent\":\"a\"},"
        "\"severity\":\"urgent\",\"confidence\":1}}}",
        "{\"jti\":\"x4\",\"events\":{\"token_replay\":{\"subject\":{\"agent\":\"a\"},"
        "\"severity\":\"high\",\"confidence\":1.5}}}",
        "{\"jti\":\"x5\",\"events\":{\"token_replay\":{\"subject\":{},"
        "\"severity\":\"high\",\"confidence\":1}}}",
        "{\"jti\":\"x6\",\"events\":{\"a\":{},\"b\":{}}}",
        "{\"jti\":\"x7\",\"events\":{\"token_replay\":{\"subject\":{\"agent\":"
        "\"spiffe://evil.example/agent/a\"},\"severity\":\"high\",\"confidence\":1}}}",
        "{\"events\":{\"token_replay\":{\"subject\":{\"agent\":\"a\"},"
        "\"severity\":\"high\",\"confidence\":1}}}",
        "[1,2,3]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        post_signal(soc_secret, "application/json", bad[i], strlen(bad[i]), &r);
        za_expect_error(&r, 400, "invalid_request");
        zh_resp_free(&r);
    }
    /* iss must be the source */
    const char *iss = "{\"iss\":\"siem\",\"jti\":\"x8\",\"events\":{\"token_replay\":{\"subject\":"
                      "{\"agent\":\"a\"},\"severity\":\"high\",\"confidence\":1}}}";
    post_signal(soc_secret, "application/json", iss, strlen(iss), &r);
    za_expect_error(&r, 400, "invalid_issuer");
    zh_resp_free(&r);
    /* oversized: over the signal limit, and over the server's body limit */
    size_t sizes[] = {9000, 20000};
    for (size_t i = 0; i < 2; i++) {
        char *big = malloc(sizes[i]);
        memset(big, ' ', sizes[i]);
        memcpy(big, "{\"jti\":\"big\"", 12);
        big[sizes[i] - 1] = '}';
        post_signal(soc_secret, "application/json", big, sizes[i], &r);
        za_expect_error(&r, 413, "invalid_request");
        zh_resp_free(&r);
        free(big);
    }
    free(good);

    /* every refusal of an authenticated caller is in the audit log, with the
     * source (or the identity) it came from; refusals of requests nobody
     * authenticated (401, and 415/413 before authentication) are counted on
     * /metrics instead, so a flood cannot fill the disk */
    char *audit = za_audit_text(&b);
    const char *want[] = {"\"status\":403", "\"status\":400", "\"actor\":\"source:soc\"",
                          "\"actor\":\"agent:not-a-source\""};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char *p = strstr(audit, "\"event\":\"signal.refused\"");
        int found = 0;
        for (; p != NULL && !found; p = strstr(p + 1, "\"event\":\"signal.refused\"")) {
            char *eol = strchr(p, '\n');
            char line[2048];
            size_t n = eol ? (size_t)(eol - p) : strlen(p);
            snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1),
                     p);
            found = strstr(line, want[i]) != NULL;
        }
        if (!found)
            fail_msg("no signal.refused audit line with %s", want[i]);
    }
    assert_null(strstr(audit, "\"actor\":\"source:unauthenticated\""));
    /* and no secret anywhere in it */
    assert_null(strstr(audit, soc_secret + 7));
    free(audit);
    assert_int_equal(zh_get(&b, "/metrics", &r), 0);
    const char *counted[] = {
        "ztb_requests_refused_total{endpoint=\"/v1/signals\",reason=\"invalid_client\"} 3\n",
        "ztb_requests_refused_total{endpoint=\"/v1/signals\",reason=\"invalid_request\"} 3\n"};
    for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++)
        if (strstr(r.body, counted[i]) == NULL)
            fail_msg("/metrics lacks %s", counted[i]);
    zh_resp_free(&r);
}

/* ---- responses --------------------------------------------------------------- */

static void test_revoke_token_by_gateway(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "billing-bot");
    struct zh_resp r;
    char tok[4096], tok2[4096];
    assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);
    assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, tok2, sizeof(tok2)), 200);
    zh_resp_free(&r);
    assert_true(za_active(&b, &gw, tok));
    json_t *c = za_claims(tok);
    const char *jti = json_string_value(json_object_get(c, "jti"));
    long long exp = json_integer_value(json_object_get(c, "exp"));
    char subject[256];
    snprintf(subject, sizeof(subject), "{\"agent\":\"billing-bot\",\"jti\":\"%s\",\"exp\":%lld}",
             jti, exp);
    /* the gateway reports a single-use replay, authenticated by its session */
    json_t *ans = signal_ok(gw.session, "token_replay", "high", 0.95, subject);
    assert_string_equal(status_of(ans, "replay-revoke"), "applied");
    assert_false(json_is_true(json_object_get(ans, "duplicate")));
    json_decref(ans);

    /* announced, and in Redis for the longest token life (+ skew): the exp
     * in the signal is the source's word, not a fact the broker verified,
     * so it never shortens the revocation */
    char msg[512];
    assert_true(wait_message(jti, msg, sizeof(msg)));
    json_error_t je;
    json_t *ev = json_loads(msg, 0, &je);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "jti");
    assert_string_equal(json_string_value(json_object_get(ev, "id")), jti);
    long long now = (long long)time(NULL);
    long long ev_exp = (long long)json_integer_value(json_object_get(ev, "exp"));
    assert_true(ev_exp >= now + 3600 - 5 && ev_exp <= now + 3600 + 1 && ev_exp > exp);
    json_decref(ev);
    long long ttl = redis_int("TTL ztb:{rev}:jti:%s", jti);
    assert_true(ttl >= 3600 + 60 - 5 && ttl <= 3600 + 60);
    /* introspection: the revoked one is inactive, its sibling is not */
    assert_false(za_active(&b, &gw, tok));
    assert_true(za_active(&b, &gw, tok2));
    json_decref(c);
    za_free(&a);
}

static int quarantined_cb(void *name)
{
    return agent_flag(name, "quarantined");
}

static void test_dual_verification_and_operator(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "crm-sync");
    const char *subject = "{\"agent\":\"spiffe://ztb.local/agent/crm-sync\"}";
    /* below min_confidence: nothing applies */
    json_t *ans = signal_ok(soc_secret, "credential_compromise", "high", 0.5, subject);
    assert_int_equal(json_array_size(json_object_get(ans, "responses")), 0);
    json_decref(ans);
    /* one source: pending; the same source again: still one */
    for (int i = 0; i < 2; i++) {
        ans = signal_ok(soc_secret, "credential_compromise", "high", 0.9, subject);
        assert_string_equal(status_of(ans, "compromise-quarantine"), "pending_signals");
        json_t *o = json_array_get(json_object_get(ans, "responses"), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "have")), 1);
        assert_int_equal(json_integer_value(json_object_get(o, "need")), 2);
        json_decref(ans);
    }
    assert_false(agent_flag("crm-sync", "quarantined"));
    struct zh_resp r;
    assert_int_equal(za_token(&b, &a, "crm", "crm%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    /* a second, independent source: applied */
    ans = signal_ok(siem_secret, "credential_compromise", "high", 0.85, subject);
    assert_string_equal(status_of(ans, "compromise-quarantine"), "applied");
    json_decref(ans);
    assert_true(agent_flag("crm-sync", "quarantined"));
    za_token(&b, &a, "crm", "crm%3Aread", &r, NULL, 0);
    za_expect_error(&r, 403, "access_denied");
    assert_non_null(strstr(r.body, "quarantined"));
    zh_resp_free(&r);
    /* the audit line names the signals that caused it */
    char *audit = za_audit_text(&b);
    char *p = strstr(audit, "\"entry\":\"compromise-quarantine\",\"signals\":\"sig_");
    assert_non_null(p);
    char *eol = strchr(p, '\n');
    *eol = '\0';
    assert_non_null(strstr(p, ",sig_")); /* two of them */
    free(audit);

    /* operator confirmation: a critical signal files revoke_all for an operator */
    struct za_agent v;
    za_enroll(&b, &v, "victim");
    char tok[4096];
    assert_int_equal(za_token(&b, &v, "payments", "payments%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);
    ans = signal_ok(soc_secret, "credential_compromise", "critical", 1.0, "{\"agent\":\"victim\"}");
    assert_string_equal(status_of(ans, "compromise-revoke-all"), "pending_operator");
    const char *action = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(ans, "responses"), i, o) if (json_object_get(o, "action"))
        action = json_string_value(json_object_get(o, "action"));
    assert_non_null(action);
    char act[64];
    snprintf(act, sizeof(act), "%s", action);
    json_decref(ans);
    assert_int_equal(agent_flag("victim", "generation"), 1);
    assert_true(za_active(&b, &gw, tok));

    char *out, *err;
    const char *pend[] = {"signals", "pending", NULL};
    assert_int_equal(ctl(&out, &err, pend), 0);
    assert_non_null(strstr(out, "ID"));
    assert_non_null(strstr(out, act));
    assert_non_null(strstr(out, "agent=victim"));
    assert_non_null(strstr(out, "pending"));
    free(out);
    free(err);
    const char *confirm[] = {"signals", "confirm", act, NULL};
    assert_int_equal(ctl(&out, &err, confirm), 0);
    assert_non_null(strstr(out, "applied"));
    free(out);
    free(err);
    assert_int_equal(agent_flag("victim", "generation"), 2);
    char msg[512];
    assert_true(wait_message("\"id\":\"victim\",\"gen\":2", msg, sizeof(msg)));
    assert_false(za_active(&b, &gw, tok));
    /* confirmed once only */
    assert_int_equal(ctl(&out, &err, confirm), 1);
    assert_non_null(strstr(err, "already"));
    free(out);
    free(err);
    /* the signals that asked for it say what became of it, not pending_operator */
    const char *slist[] = {"--json", "signals", "list", NULL};
    assert_int_equal(ctl(&out, &err, slist), 0);
    json_error_t je;
    json_t *sl = json_loads(out, 0, &je);
    assert_non_null(sl);
    size_t si, ri;
    json_t *sg, *rs;
    int refs = 0;
    json_array_foreach(sl, si, sg)
    {
        json_t *rl = json_object_get(sg, "responses");
        json_array_foreach(rl, ri, rs)
        {
            const char *ra = json_string_value(json_object_get(rs, "action"));
            if (ra != NULL && strcmp(ra, act) == 0) {
                assert_string_equal(json_string_value(json_object_get(rs, "status")), "applied");
                refs++;
            }
        }
    }
    assert_true(refs >= 1);
    json_decref(sl);
    free(out);
    free(err);
    const char *stable[] = {"signals", "list", NULL};
    assert_int_equal(ctl(&out, &err, stable), 0);
    char applied[96];
    snprintf(applied, sizeof(applied), ":applied(%s)", act);
    assert_non_null(strstr(out, applied));
    snprintf(applied, sizeof(applied), ":pending_operator(%s)", act);
    assert_null(strstr(out, applied));
    free(out);
    free(err);
    audit = za_audit_text(&b);
    assert_non_null(strstr(audit, "\"event\":\"admin.signal_action_confirmed\""));
    assert_non_null(strstr(audit, "\"cause\":\"action\",\"entry\":\"compromise-revoke-all\""));
    free(audit);

    /* a rejected action changes nothing */
    ans =
        signal_ok(siem_secret, "credential_compromise", "critical", 1.0, "{\"agent\":\"victim\"}");
    o = NULL;
    action = NULL;
    json_array_foreach(json_object_get(ans, "responses"), i, o) if (json_object_get(o, "action"))
        action = json_string_value(json_object_get(o, "action"));
    assert_non_null(action);
    snprintf(act, sizeof(act), "%s", action);
    json_decref(ans);
    const char *reject[] = {"--json", "signals", "reject", act, NULL};
    assert_int_equal(ctl(&out, &err, reject), 0);
    assert_non_null(strstr(out, "\"status\": \"rejected\""));
    free(out);
    free(err);
    assert_int_equal(agent_flag("victim", "generation"), 2);
    (void)quarantined_cb;
    za_free(&a);
    za_free(&v);
}

static void test_require_approval_and_release(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "chatty");
    json_t *ans = signal_ok(siem_secret, "prompt_injection", "high", 0.9, "{\"agent\":\"chatty\"}");
    assert_string_equal(status_of(ans, "injection-approval"), "applied");
    json_decref(ans);
    struct zh_resp r;
    /* the request waits for an operator's approval (docs/protocol.md) */
    za_token(&b, &a, "payments", "payments%3Aread", &r, NULL, 0);
    za_expect_error(&r, 400, "authorization_pending");
    zh_resp_free(&r);
    char *out, *err;
    const char *rel[] = {"release", "chatty", NULL};
    assert_int_equal(ctl(&out, &err, rel), 0);
    assert_non_null(strstr(out, "agent chatty released"));
    free(out);
    free(err);
    assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    za_free(&a);
}

static void test_kill_audience_and_lift(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "crm-reader");
    struct zh_resp r;
    char tok[4096];
    assert_int_equal(za_token(&b, &a, "crm", "crm%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);
    /* a signal about an audience only (entries without agents apply) */
    json_t *ans =
        signal_ok(soc_secret, "soc:integration_abuse", "critical", 0.99, "{\"audience\":\"crm\"}");
    assert_string_equal(status_of(ans, "abuse-kill"), "applied");
    json_decref(ans);
    char msg[512];
    /* the published event: the stored one with its sequence number added */
    assert_true(
        wait_message("{\"type\":\"audience\",\"id\":\"crm\",\"exp\":0,\"seq\":", msg, sizeof(msg)));
    assert_int_equal(redis_int("HEXISTS ztb:{rev}:auds %s", "crm"), 1);
    za_token(&b, &a, "crm", "crm%3Aread", &r, NULL, 0);
    za_expect_error(&r, 403, "access_denied");
    assert_non_null(strstr(r.body, "audience is disabled"));
    zh_resp_free(&r);
    assert_false(za_active(&b, &gw, tok));
    /* other audiences are untouched */
    assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    char *out, *err;
    const char *lift[] = {"revoke", "audience", "crm", "--lift", NULL};
    assert_int_equal(ctl(&out, &err, lift), 0);
    assert_non_null(strstr(out, "enabled again"));
    free(out);
    free(err);
    assert_true(wait_message("\"lifted\":true", msg, sizeof(msg)));
    assert_true(za_active(&b, &gw, tok));
    assert_int_equal(za_token(&b, &a, "crm", "crm%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    za_free(&a);
}

static void test_taint_key(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "signer-user");
    struct zh_resp r;
    char tok[4096], kid[64], kid2[64];
    assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);
    za_kid(tok, kid, sizeof(kid));
    char subject[128];
    snprintf(subject, sizeof(subject), "{\"kid\":\"%s\"}", kid);
    json_t *ans = signal_ok(soc_secret, "soc:key_leak", "critical", 1.0, subject);
    assert_string_equal(status_of(ans, "leak-taint"), "applied");
    json_decref(ans);
    char msg[512];
    assert_true(wait_message(kid, msg, sizeof(msg)));
    assert_non_null(strstr(msg, "\"type\":\"key\""));
    /* the entry outlives the key's publication: max token TTL + JWKS cache + skew */
    long long ttl = redis_int("TTL ztb:{rev}:key:%s:tainted", kid);
    assert_true(ttl > 3600 + 300 && ttl <= 3600 + 300 + 60);
    assert_false(za_active(&b, &gw, tok));
    /* the broker signs with another key now, and no longer publishes this one */
    assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);
    za_kid(tok, kid2, sizeof(kid2));
    assert_string_not_equal(kid, kid2);
    assert_true(za_active(&b, &gw, tok));
    assert_int_equal(zh_get(&b, "/.well-known/jwks.json", &r), 0);
    assert_null(strstr(r.body, kid));
    assert_non_null(strstr(r.body, kid2));
    zh_resp_free(&r);
    za_free(&a);
}

/* ---- signed SETs --------------------------------------------------------------- */

static long post_set(ztb_key *k, const char *typ, const char *claims, struct zh_resp *r)
{
    ztb_jws_sign_opts o = {.typ = typ};
    ztb_buf set;
    ztb_buf_init(&set, 8192);
    assert_int_equal(ztb_jws_sign(k, &o, claims, strlen(claims), &set), ZTB_OK);
    long st = post_signal(NULL, "application/secevent+jwt", ztb_buf_cstr(&set), set.len, r);
    ztb_buf_free(&set);
    return st;
}

static void test_signed_set(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "set-target");
    char claims[1024];
    long long now = time(NULL);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"tx\",\"aud\":\"%s\",\"iat\":%lld,\"jti\":\"set-1\",\"events\":"
             "{\"urn:ztb:signal:prompt_injection\":{\"subject\":{\"agent\":\"set-target\"},"
             "\"severity\":\"high\",\"confidence\":0.9}}}",
             b.url, now);
    struct zh_resp r;
    if (post_set(tx_key, "secevent+jwt", claims, &r) != 202)
        fail_msg("SET: HTTP %ld %s", r.status, r.body);
    json_t *ans = za_json(&r);
    assert_string_equal(status_of(ans, "injection-approval"), "applied");
    json_decref(ans);
    zh_resp_free(&r);
    assert_true(agent_flag("set-target", "approval_required"));
    /* the same SET again: a duplicate, nothing more */
    assert_int_equal(post_set(tx_key, "secevent+jwt", claims, &r), 202);
    assert_non_null(strstr(r.body, "\"duplicate\":true"));
    zh_resp_free(&r);

    /* signed by another key */
    ztb_key *other;
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"tx\",\"aud\":\"%s\",\"iat\":%lld,\"jti\":\"set-2\",\"events\":"
             "{\"prompt_injection\":{\"subject\":{\"agent\":\"set-target\"},"
             "\"severity\":\"high\",\"confidence\":0.9}}}",
             b.url, now);
    post_set(other, "secevent+jwt", claims, &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    ztb_key_free(other);
    /* wrong typ, stale iat, another audience, a source without a key */
    post_set(tx_key, "JWT", claims, &r);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
    /* an empty SET (no body buffer at all): 400, and the broker goes on */
    post_signal(NULL, "application/secevent+jwt", "", 0, &r);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"tx\",\"aud\":\"%s\",\"iat\":%lld,\"jti\":\"set-3\",\"events\":"
             "{\"prompt_injection\":{\"subject\":{\"agent\":\"set-target\"},"
             "\"severity\":\"high\",\"confidence\":0.9}}}",
             b.url, now - 3600);
    post_set(tx_key, "secevent+jwt", claims, &r);
    za_expect_error(&r, 400, "invalid_request");
    assert_non_null(strstr(r.body, "iat"));
    zh_resp_free(&r);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"tx\",\"aud\":\"https://other.example\",\"iat\":%lld,\"jti\":\"set-4\","
             "\"events\":{\"prompt_injection\":{\"subject\":{\"agent\":\"set-target\"},"
             "\"severity\":\"high\",\"confidence\":0.9}}}",
             now);
    post_set(tx_key, "secevent+jwt", claims, &r);
    za_expect_error(&r, 400, "invalid_audience");
    zh_resp_free(&r);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"soc\",\"aud\":\"%s\",\"iat\":%lld,\"jti\":\"set-5\",\"events\":"
             "{\"prompt_injection\":{\"subject\":{\"agent\":\"set-target\"},"
             "\"severity\":\"high\",\"confidence\":0.9}}}",
             b.url, now);
    post_set(tx_key, "secevent+jwt", claims, &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    za_free(&a);
}

/* ---- detectors ------------------------------------------------------------------ */

static int approval_cb(void *name)
{
    return agent_flag(name, "approval_required");
}

static int gen_moved_cb(void *name)
{
    return agent_flag(name, "generation") > 1;
}

static void test_detectors(void **state)
{
    (void)state;
    struct zh_resp r;
    /* policy denials: the third in a minute raises policy_violation -> quarantine */
    struct za_agent p;
    za_enroll(&b, &p, "prober");
    for (int i = 0; i < 3; i++) {
        za_token(&b, &p, "payments", "payments%3Adelete", &r, NULL, 0);
        za_expect_error(&r, 403, "access_denied");
        zh_resp_free(&r);
    }
    assert_true(za_wait(quarantined_cb, "prober", 5000));

    /* rate-limit bursts -> require approval */
    struct za_agent bu;
    za_enroll(&b, &bu, "bursty");
    int limited = 0;
    for (int i = 0; i < 4; i++) {
        if (za_token(&b, &bu, "payments", "payments%3Aburst", &r, NULL, 0) == 429)
            limited++;
        zh_resp_free(&r);
    }
    assert_int_equal(limited, 3);
    assert_true(za_wait(approval_cb, "bursty", 5000));

    /* a replayed client assertion -> revoke all */
    struct za_agent re;
    za_enroll(&b, &re, "replayer");
    ztb_buf as;
    ztb_buf_init(&as, 4096);
    za_assertion(&b, &re, "fixed-jti-for-the-replay-test", &as);
    char form[4096];
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_ASSERTION_TYPE,
             ztb_buf_cstr(&as));
    assert_int_equal(za_post_form(&b, "/v1/session", form, &r), 200);
    zh_resp_free(&r);
    za_post_form(&b, "/v1/session", form, &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    ztb_buf_free(&as);
    assert_true(za_wait(gen_moved_cb, "replayer", 5000));

    /* a used join token presented again -> quarantine */
    struct za_agent jo;
    memset(&jo, 0, sizeof(jo));
    snprintf(jo.name, sizeof(jo.name), "joiner");
    assert_int_equal(ztb_key_generate(&jo.key), ZTB_OK);
    char *join = za_join_token(&b, "joiner");
    assert_int_equal(za_enroll_with(&b, &jo, join, &r), 201);
    zh_resp_free(&r);
    za_enroll_with(&b, &jo, join, &r);
    za_expect_error(&r, 400, "invalid_grant");
    zh_resp_free(&r);
    free(join);
    assert_true(za_wait(quarantined_cb, "joiner", 5000));
    /* the reuse is counted; the audit log has the detector's signal, not a line per reuse */
    assert_int_equal(zh_get(&b, "/metrics", &r), 0);
    assert_non_null(strstr(r.body, "ztb_requests_refused_total{endpoint=\"/v1/enroll\","
                                   "reason=\"join_token_reused\"} 1\n"));
    zh_resp_free(&r);

    /* an audience the agent never used, after its (1 s) learning period */
    struct za_agent w;
    za_enroll(&b, &w, "wanderer");
    assert_int_equal(za_token(&b, &w, "payments", "payments%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    sleep(2);
    assert_int_equal(za_token(&b, &w, "payments", "payments%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    usleep(300000);
    assert_false(agent_flag("wanderer", "approval_required")); /* known audience */
    assert_int_equal(za_token(&b, &w, "crm", "crm%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    assert_true(za_wait(approval_cb, "wanderer", 5000));

    /* every detector signal is listed, from the broker itself, with evidence */
    char *out, *err;
    const char *list[] = {"--json", "signals", "list", "--limit", "100", NULL};
    assert_int_equal(ctl(&out, &err, list), 0);
    const char *types[] = {"policy_violation", "rate_limit_burst", "assertion_replay",
                           "join_token_reuse", "new_audience"};
    for (size_t i = 0; i < 5; i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "\"type\": \"%s\"", types[i]);
        if (strstr(out, needle) == NULL)
            fail_msg("no %s signal in %s", types[i], out);
    }
    assert_non_null(strstr(out, "\"source\": \"ztb-broker\""));
    assert_non_null(strstr(out, "\"detector\": \"denials\""));
    free(out);
    free(err);
    za_free(&p);
    za_free(&bu);
    za_free(&re);
    za_free(&jo);
    za_free(&w);
}

/* ---- ztbctl signals ---------------------------------------------------------------- */

/* Observe mode: a source's (or a detector's) signals are recorded and their
 * responses computed, none applied; switching is audited. */
static void test_observe_mode(void **state)
{
    (void)state;
    char *out, *err;
    struct zh_resp r;
    struct za_agent a;
    za_enroll(&b, &a, "observed1");
    const char *obs[] = {"signals", "mode", "siem", "observe", NULL};
    assert_int_equal(ctl(&out, &err, obs), 0);
    assert_non_null(strstr(out, "observe mode"));
    free(out);
    free(err);
    json_t *ans =
        signal_ok(siem_secret, "prompt_injection", "high", 0.9, "{\"agent\":\"observed1\"}");
    assert_string_equal(json_string_value(json_object_get(ans, "mode")), "observe");
    assert_string_equal(status_of(ans, "injection-approval"), "observed");
    json_decref(ans);
    /* nothing applied: the agent still gets tokens */
    assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    const char *list[] = {"signals", "list", "--agent", "observed1", NULL};
    assert_int_equal(ctl(&out, &err, list), 0);
    assert_non_null(
        strstr(out, "require_approval:observed(would require_approval agent observed1)"));
    free(out);
    free(err);
    const char *modes[] = {"signals", "modes", NULL};
    assert_int_equal(ctl(&out, &err, modes), 0);
    assert_non_null(strstr(out, "source:siem"));
    free(out);
    free(err);

    /* back to enforce: the same signal applies */
    const char *enf[] = {"signals", "mode", "siem", "enforce", NULL};
    assert_int_equal(ctl(&out, &err, enf), 0);
    free(out);
    free(err);
    ans = signal_ok(siem_secret, "prompt_injection", "high", 0.9, "{\"agent\":\"observed1\"}");
    assert_string_equal(json_string_value(json_object_get(ans, "mode")), "enforce");
    assert_string_equal(status_of(ans, "injection-approval"), "applied");
    json_decref(ans);
    za_token(&b, &a, "payments", "payments%3Aread", &r, NULL, 0);
    za_expect_error(&r, 400, "authorization_pending");
    zh_resp_free(&r);

    /* a detector in observe mode: its signal is raised, nothing is applied */
    const char *det[] = {"signals", "mode", "--detector", "policy_violation", "observe", NULL};
    assert_int_equal(ctl(&out, &err, det), 0);
    free(out);
    free(err);
    struct za_agent w;
    za_enroll(&b, &w, "watched");
    for (int i = 0; i < 3; i++) {
        za_token(&b, &w, "payments", "payments%3Adelete", &r, NULL, 0);
        zh_resp_free(&r);
    }
    int seen = 0;
    for (int i = 0; i < 250 && !seen; i++) {
        char *audit = za_audit_text(&b);
        seen = strstr(audit, "\"event\":\"signal.response_observed\"") != NULL &&
               strstr(audit, "\"entry\":\"watched-quarantine\"") != NULL &&
               strstr(audit, "\"would\":\"quarantine agent watched\"") != NULL;
        free(audit);
        if (!seen)
            usleep(20000);
    }
    assert_true(seen);
    assert_false(quarantined_cb("watched"));
    assert_int_equal(za_token(&b, &w, "payments", "payments%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    const char *back[] = {"signals", "mode", "--detector", "policy_violation", "enforce", NULL};
    assert_int_equal(ctl(&out, &err, back), 0);
    free(out);
    free(err);
    /* every switch audited, with the operator */
    char *audit = za_audit_text(&b);
    const char *m = strstr(audit, "\"signal.mode_changed\"");
    assert_non_null(m);
    assert_non_null(strstr(audit, "\"who\":\"detector:policy_violation\""));
    char me[96]; /* the operator by user name */
    snprintf(me, sizeof(me), "operator:%s", getpwuid(geteuid())->pw_name);
    assert_non_null(strstr(m, me));
    free(audit);
    /* a bad mode or name is refused */
    const char *bad[] = {"signals", "mode", "siem", "sometimes", NULL};
    assert_int_equal(ctl(&out, &err, bad), 2); /* refused before the broker is asked */
    free(out);
    free(err);
    za_free(&a);
    za_free(&w);
}

/* ztbctl --json ARGS, parsed (fails the test otherwise). */
static json_t *ctl_json(const char *const *args)
{
    const char *argv[16] = {"--json"};
    int n = 1;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    char *out, *err;
    if (ctl(&out, &err, argv) != 0)
        fail_msg("ztbctl --json %s %s: %s", args[0], args[1], err);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    if (j == NULL)
        fail_msg("not JSON: %s", out);
    free(out);
    free(err);
    return j;
}

static long long stat_of(json_t *st, const char *key, const char *field)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(st, "by"), key), field));
}

/* Analysts' verdicts feed precision, false positives and calibration. */
static void test_outcomes_and_stats(void **state)
{
    (void)state;
    const char *stats[] = {"signals", "stats", NULL};
    json_t *before = ctl_json(stats);
    long long judged = stat_of(before, "source:soc", "judged");
    long long fps = stat_of(before, "source:soc", "false_positives");
    /* the operator-confirmed action of the dual-verification test: its
     * signals were confirmed and contained on the operator's word */
    assert_true(stat_of(before, "source:soc", "confirmed") >= 1);
    assert_true(json_integer_value(json_object_get(
                    json_object_get(json_object_get(json_object_get(before, "by"), "source:soc"),
                                    "containment_s"),
                    "n")) >= 1);
    json_decref(before);

    json_t *ans =
        signal_ok(soc_secret, "prompt_injection", "low", 0.35, "{\"agent\":\"nobody-x\"}");
    char id1[64];
    snprintf(id1, sizeof(id1), "%s", json_string_value(json_object_get(ans, "signal")));
    json_decref(ans);
    ans = signal_ok(soc_secret, "prompt_injection", "low", 0.95, "{\"agent\":\"nobody-y\"}");
    char id2[64];
    snprintf(id2, sizeof(id2), "%s", json_string_value(json_object_get(ans, "signal")));
    json_decref(ans);
    char *out, *err;
    const char *dis[] = {"signals", "dismiss", id1, "--reason", "benign batch job", NULL};
    assert_int_equal(ctl(&out, &err, dis), 0);
    assert_non_null(strstr(out, "false positive"));
    free(out);
    free(err);
    const char *conf[] = {"signals", "confirm", id2, NULL};
    assert_int_equal(ctl(&out, &err, conf), 0);
    free(out);
    free(err);
    const char *unknown[] = {"signals", "confirm", "sig_doesnotexist00000", NULL};
    assert_int_equal(ctl(&out, &err, unknown), 1);
    assert_non_null(strstr(err, "no such signal"));
    free(out);
    free(err);

    json_t *after = ctl_json(stats);
    assert_int_equal(stat_of(after, "source:soc", "judged"), judged + 2);
    assert_int_equal(stat_of(after, "source:soc", "false_positives"), fps + 1);
    const json_t *soc = json_object_get(json_object_get(after, "by"), "source:soc");
    assert_true(json_is_number(json_object_get(soc, "precision")));
    assert_true(json_is_number(json_object_get(soc, "brier")));
    assert_true(json_array_size(json_object_get(soc, "calibration")) >= 2);
    json_decref(after);
    /* the table too */
    assert_int_equal(ctl(&out, &err, stats), 0);
    assert_non_null(strstr(out, "PRECISN"));
    assert_non_null(strstr(out, "source:soc"));
    free(out);
    free(err);
    char *audit = za_audit_text(&b);
    const char *d = strstr(audit, "\"signal.dismissed\"");
    assert_non_null(d);
    assert_non_null(strstr(d, "\"reason\":\"benign batch job\""));
    assert_non_null(strstr(audit, "\"signal.confirmed\""));
    free(audit);
    /* /metrics: the verdicts by source, for precision in PromQL */
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "GET", "/metrics", NULL, &r), 0);
    assert_non_null(strstr(
        r.body, "\nztb_signal_verdicts_total{verdict=\"false_positive\",from=\"source:soc\"} "));
    assert_non_null(
        strstr(r.body, "\nztb_signal_verdicts_total{verdict=\"confirmed\",from=\"source:soc\"} "));
    zh_resp_free(&r);
}

/* Scope adherence, zero tolerance: policy quarantines on the first
 * out-of-policy request, and the metric counts it. */
static void test_first_out_of_scope(void **state)
{
    (void)state;
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "GET", "/metrics", NULL, &r), 0);
    const char *m = strstr(r.body, "\nztb_out_of_scope_requests_total ");
    assert_non_null(m);
    long before = strtol(m + strlen("\nztb_out_of_scope_requests_total "), NULL, 10);
    zh_resp_free(&r);
    struct za_agent a;
    za_enroll(&b, &a, "strict");
    assert_int_equal(za_token(&b, &a, "payments", "payments%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    za_token(&b, &a, "payments", "payments%3Adelete", &r, NULL, 0);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    assert_true(za_wait(quarantined_cb, "strict", 5000));
    za_token(&b, &a, "payments", "payments%3Aread", &r, NULL, 0);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    assert_int_equal(zh_admin(&b, "GET", "/metrics", NULL, &r), 0);
    m = strstr(r.body, "\nztb_out_of_scope_requests_total ");
    assert_non_null(m);
    assert_int_equal(strtol(m + strlen("\nztb_out_of_scope_requests_total "), NULL, 10),
                     before + 1);
    /* and by agent, a bounded label set */
    assert_non_null(
        strstr(r.body, "\nztb_out_of_scope_requests_by_agent_total{agent=\"strict\"} 1\n"));
    zh_resp_free(&r);
    za_free(&a);
}

static void test_signals_cli(void **state)
{
    (void)state;
    char *out, *err;
    const char *list[] = {"signals", "list", "--limit", "500", NULL};
    assert_int_equal(ctl(&out, &err, list), 0);
    assert_non_null(strstr(out, "RECEIVED"));
    assert_non_null(strstr(out, "RESPONSES"));
    assert_non_null(strstr(out, "credential_compromise"));
    assert_non_null(strstr(out, "quarantine:pending_signals(1/2)"));
    assert_non_null(strstr(out, "quarantine:applied"));
    /* the actions the dual-verification test decided: not pending any more */
    assert_non_null(strstr(out, "revoke_all:applied(act_"));
    assert_non_null(strstr(out, "revoke_all:rejected(act_"));
    free(out);
    free(err);
    const char *by_agent[] = {"--json", "signals", "list", "--agent", "chatty", NULL};
    assert_int_equal(ctl(&out, &err, by_agent), 0);
    json_error_t e;
    json_t *arr = json_loads(out, 0, &e);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "type")),
                        "prompt_injection");
    char sid[64];
    snprintf(sid, sizeof(sid), "%s",
             json_string_value(json_object_get(json_array_get(arr, 0), "id")));
    json_decref(arr);
    free(out);
    free(err);
    /* `signals show ID` from the real broker: 0.9 as typed, the time in RFC 3339 */
    const char *show_json[] = {"signals", "show", sid, "-o", "json", NULL};
    assert_int_equal(ctl(&out, &err, show_json), 0);
    assert_non_null(strstr(out, "\"confidence\": 0.9,"));
    assert_null(strstr(out, "0.9000"));
    free(out);
    free(err);
    const char *show[] = {"signals", "show", sid, NULL};
    assert_int_equal(ctl(&out, &err, show), 0);
    char *rec = strstr(out, "\nreceived ");
    assert_non_null(rec);
    rec += strspn(rec + 1, "received ") + 1;
    assert_int_equal(strspn(rec, "0123456789-T:Z"), 20);
    assert_int_equal(rec[10], 'T');
    assert_non_null(strstr(out, "\nconfidence  0.9\n"));
    free(out);
    free(err);
    const char *sources[] = {"signals", "source", "list", NULL};
    assert_int_equal(ctl(&out, &err, sources), 0);
    assert_non_null(strstr(out, "NAME"));
    assert_non_null(strstr(out, "gateway-1"));
    assert_null(strstr(out, "ztbsrc_"));
    free(out);
    free(err);
    const char *dup[] = {"signals", "source", "add", "soc", NULL};
    assert_int_equal(ctl(&out, &err, dup), 1);
    free(out);
    free(err);
    const char *reserved[] = {"signals", "source", "add", "ztb-broker", NULL};
    assert_int_equal(ctl(&out, &err, reserved), 1);
    free(out);
    free(err);
    /* removing a source ends its secret at once */
    const char *rm[] = {"signals", "source", "remove", "siem", NULL};
    assert_int_equal(ctl(&out, &err, rm), 0);
    free(out);
    free(err);
    char *body = signal_json("prompt_injection", "low", 0.1, "{\"agent\":\"x\"}");
    struct zh_resp r;
    post_signal(siem_secret, "application/json", body, strlen(body), &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    free(body);
    const char *usage[] = {"signals", "frobnicate", NULL};
    assert_int_equal(ctl(&out, &err, usage), 2);
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_and_audited),
        cmocka_unit_test(test_revoke_token_by_gateway),
        cmocka_unit_test(test_dual_verification_and_operator),
        cmocka_unit_test(test_require_approval_and_release),
        cmocka_unit_test(test_kill_audience_and_lift),
        cmocka_unit_test(test_taint_key),
        cmocka_unit_test(test_signed_set),
        cmocka_unit_test(test_detectors),
        cmocka_unit_test(test_observe_mode),
        cmocka_unit_test(test_outcomes_and_stats),
        cmocka_unit_test(test_first_out_of_scope),
        cmocka_unit_test(test_signals_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
