/*
 * test_revocation_durability.c - revocations and quarantines survive a
 * Redis crash (kill -9, appendonly with appendfsync always, as the harness
 * configures it) and a broker restart, each entry with the life it had:
 * the broker keeps nothing it needs in memory, and the audit log holds a
 * second, verifiable record of every revocation.
 */
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

#define ISSUER "https://broker.durability.test"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 120,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"gateway-introspects\", \"effect\": \"allow\", \"agents\": [\"gate\"],\n"
    "   \"actions\": [\"ztb:introspect\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:read\", \"crm:read\"], \"audiences\": [\"payments\", \"crm\"],\n"
    "   \"resources\": [\"**\"]}\n"
    " ],\n"
    " \"anomaly_responses\": [\n"
    "  {\"id\": \"compromise-quarantine\", \"signals\": [\"credential_compromise\"],\n"
    "   \"min_severity\": \"high\", \"response\": \"quarantine\"}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static char state_root[256], state[300];

static int ctl(char **out, char **err, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl"), "--socket", b.admin_sock};
    int n = 3;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return zh_run(argv, out, err);
}

static void ok(const char *const *args)
{
    char *out, *err;
    if (ctl(&out, &err, args) != 0)
        fail_msg("ztbctl %s %s: %s", args[0], args[1], err);
    free(out);
    free(err);
}

static void start_broker(void)
{
    const char *extra[] = {"--issuer", ISSUER, NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .policy = policy_doc, .state_dir = state, .extra_args = extra};
    zh_broker_start(&b, &o);
}

static int setup(void **state_)
{
    (void)state_;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_redis_start(&rd);
    zh_tmpdir(state_root, sizeof(state_root));
    snprintf(state, sizeof(state), "%s/state", state_root);
    mkdir(state, 0700);
    char keys[400];
    snprintf(keys, sizeof(keys), "%s/keys", state);
    const char *init[] = {zh_bin("ztbctl"), "keys", "--dir", keys, "init", NULL};
    const char *ca[] = {zh_bin("ztbctl"), "ca",        "--dir", keys, "init",
                        "--trust-domain", "ztb.local", NULL};
    char *out, *err;
    assert_int_equal(zh_run(init, &out, &err), 0);
    free(out);
    free(err);
    assert_int_equal(zh_run(ca, &out, &err), 0);
    free(out);
    free(err);
    za_set_issuer(ISSUER);
    start_broker();
    return 0;
}

static int teardown(void **state_)
{
    (void)state_;
    zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    zh_rmtree(state_root);
    return 0;
}

static long long redis_ttl(const char *key)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "TTL %s", key);
    assert_non_null(r);
    long long v = r->integer;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

static int zset_has(const char *needle)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "ZRANGE ztb:{rev}:events 0 -1");
    assert_non_null(r);
    int found = 0;
    for (size_t i = 0; i < r->elements; i++)
        found |= strstr(r->element[i]->str, needle) != NULL;
    freeReplyObject(r);
    redisFree(c);
    return found;
}

static int broker_ready(void *arg)
{
    (void)arg;
    struct zh_resp r;
    int up = zh_admin(&b, "GET", "/v1/revocations", NULL, &r) == 0 && r.status == 200;
    zh_resp_free(&r);
    return up;
}

static void test_survives_redis_crash_and_broker_restart(void **state_)
{
    (void)state_;
    struct za_agent alice, bob, carol, gate;
    za_enroll(&b, &alice, "alice");
    za_enroll(&b, &bob, "bob");
    za_enroll(&b, &carol, "carol");
    za_enroll(&b, &gate, "gate");
    struct zh_resp r;
    char revoked[4096], alive[4096], carols[4096], crm[4096];
    assert_int_equal(za_token(&b, &alice, "payments", "payments%3Aread", &r, revoked, 4096), 200);
    zh_resp_free(&r);
    assert_int_equal(za_token(&b, &alice, "payments", "payments%3Aread", &r, alive, 4096), 200);
    zh_resp_free(&r);
    assert_int_equal(za_token(&b, &carol, "payments", "payments%3Aread", &r, carols, 4096), 200);
    zh_resp_free(&r);
    assert_int_equal(za_token(&b, &alice, "crm", "crm%3Aread", &r, crm, 4096), 200);
    zh_resp_free(&r);

    json_t *c = za_claims(revoked);
    char jti[64], exp[32], key[128];
    snprintf(jti, sizeof(jti), "%s", json_string_value(json_object_get(c, "jti")));
    long long token_exp = json_integer_value(json_object_get(c, "exp"));
    snprintf(exp, sizeof(exp), "%lld", token_exp);
    json_decref(c);
    snprintf(key, sizeof(key), "ztb:{rev}:jti:%s", jti);

    const char *rev_tok[] = {"revoke", "token", jti, "--exp", exp, NULL};
    const char *rev_agent[] = {"revoke", "agent", "carol", NULL};
    const char *kill[] = {"revoke", "audience", "crm", NULL};
    const char *quar[] = {"quarantine", "bob", NULL};
    ok(rev_tok);
    long long revoked_at = (long long)time(NULL);
    ok(rev_agent);
    ok(kill);
    ok(quar);
    long long ttl_before = redis_ttl(key);
    assert_true(ttl_before > 100);

    /* a crash: no shutdown, no rewrite; the AOF is all that is left */
    zh_redis_kill(&rd);
    assert_int_equal(zh_broker_stop(&b), 0);
    sleep(1);
    zh_redis_restart(&rd);
    zh_rmtree(b.dir);
    start_broker();
    assert_true(za_wait(broker_ready, NULL, 5000));

    /* each entry kept the life it had (it counts down from the same instant) */
    long long ttl_after = redis_ttl(key);
    /* --exp is the operator's word, not verified: the longest token life + skew */
    long long want = 3600 + 60 - ((long long)time(NULL) - revoked_at);
    assert_true(ttl_after <= ttl_before && ttl_after >= want - 3 && ttl_after <= want + 1);
    assert_int_equal(redis_ttl("ztb:{rev}:auds"), -1); /* until lifted */
    assert_true(zset_has(jti));
    assert_true(zset_has("\"id\":\"carol\",\"gen\":2"));
    assert_true(zset_has("\"type\":\"audience\",\"id\":\"crm\""));

    /* the new broker process sees all of it, from Redis alone */
    assert_false(za_active(&b, &gate, revoked));
    assert_true(za_active(&b, &gate, alive));
    assert_false(za_active(&b, &gate, carols));
    assert_false(za_active(&b, &gate, crm));
    za_token(&b, &bob, "payments", "payments%3Aread", &r, NULL, 0);
    za_expect_error(&r, 403, "access_denied");
    assert_non_null(strstr(r.body, "quarantined"));
    zh_resp_free(&r);
    za_token(&b, &alice, "crm", "crm%3Aread", &r, NULL, 0);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    /* carol's old session ended with her generation; a new one works */
    za_token(&b, &carol, "payments", "payments%3Aread", &r, NULL, 0);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);

    /* a quarantine from a signal survives too */
    char secret[64] = "";
    const char *add[] = {"signals", "source", "add", "soc", NULL};
    char *out, *err;
    assert_int_equal(ctl(&out, &err, add), 0);
    sscanf(strstr(out, "ztbsrc_"), "%63s", secret);
    free(out);
    free(err);
    const char *body = "{\"jti\":\"d-1\",\"events\":{\"credential_compromise\":{\"subject\":"
                       "{\"agent\":\"alice\"},\"severity\":\"critical\",\"confidence\":1}}}";
    char url[128], hdr[128];
    snprintf(url, sizeof(url), "%s/v1/signals", b.url);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", secret);
    const char *headers[] = {hdr, NULL};
    assert_int_equal(
        zh_http("POST", url, NULL, "application/json", body, strlen(body), headers, &r), 0);
    assert_int_equal(r.status, 202);
    zh_resp_free(&r);
    zh_redis_kill(&rd);
    zh_redis_restart(&rd);
    za_settle(&b, &gate, alive);
    /* each API thread finds its old connection gone once: 503, then answers */
    for (int i = 0; i < 50; i++) {
        za_token(&b, &alice, "payments", "payments%3Aread", &r, NULL, 0);
        if (r.status != 503)
            break;
        zh_resp_free(&r);
        usleep(50000);
    }
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);

    /* the second record: the audit log has every revocation, chain intact */
    char path[400];
    snprintf(path, sizeof(path), "%s/audit/audit.log", state);
    char *audit = za_audit_text(&b);
    assert_non_null(strstr(audit, jti));
    assert_non_null(strstr(audit, "\"response\":\"revoke_all\",\"agent\":\"carol\""));
    assert_non_null(strstr(audit, "\"response\":\"kill_audience\",\"audience\":\"crm\""));
    assert_non_null(strstr(audit, "\"response\":\"quarantine\",\"agent\":\"bob\""));
    assert_non_null(strstr(audit, "\"cause\":\"signal\",\"entry\":\"compromise-quarantine\""));
    free(audit);
    const char *verify[] = {zh_bin("ztbctl"), "audit", "verify", path, NULL};
    assert_int_equal(zh_run(verify, &out, &err), 0);
    free(out);
    free(err);
    za_free(&alice);
    za_free(&bob);
    za_free(&carol);
    za_free(&gate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_survives_redis_crash_and_broker_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
