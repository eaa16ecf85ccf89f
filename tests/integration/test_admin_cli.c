/*
 * test_admin_cli.c - operators manage agents through the real ztbctl talking
 * to the real broker's admin socket; every call lands in a verifiable audit
 * log, and join tokens are shown once and nowhere else; `agent show` says
 * what an enrolled agent did in the last hour.
 */
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

static struct zh_broker b;

static int ctl(char **out, char **err, const char *a1, const char *a2, const char *a3,
               const char *a4, const char *a5)
{
    const char *argv[] = {zh_bin("ztbctl"), "--socket", b.admin_sock, a1, a2, a3, a4, a5, NULL};
    return zh_run(argv, out, err);
}

static char *file_text(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *s = calloc(1, 1 << 20);
    size_t n = fread(s, 1, (1 << 20) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* Global options after the command, as kubectl and vault users type them. */
static void test_options_after_the_command(void **state)
{
    (void)state;
    char *out, *err;
    const char *argv[] = {zh_bin("ztbctl"), "agent",      "list", "--json",
                          "--socket",       b.admin_sock, NULL};
    if (zh_run(argv, &out, &err) != 0)
        fail_msg("ztbctl agent list --json --socket S: %s", err);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    assert_non_null(j); /* JSON, not a table */
    json_decref(j);
    free(out);
    free(err);
    /* the later one wins, as with any repeated option */
    const char *later[] = {
        zh_bin("ztbctl"), "--socket=/nonexistent", "agent", "list", "--socket", b.admin_sock, NULL};
    assert_int_equal(zh_run(later, &out, &err), 0);
    free(out);
    free(err);
    /* after `--` nothing is taken: the command sees it */
    const char *dashes[] = {zh_bin("ztbctl"), "--socket", b.admin_sock, "agent",
                            "show",           "--",       "--json",     NULL};
    assert_int_not_equal(zh_run(dashes, &out, &err), 0);
    free(out);
    free(err);
    /* an option no command knows is named as such, not the command */
    const char *bogus[] = {zh_bin("ztbctl"), "--socket", b.admin_sock, "agent",
                           "list",           "--bogus",  NULL};
    assert_int_equal(zh_run(bogus, &out, &err), 2);
    if (strstr(err, "unknown option '--bogus'") == NULL)
        fail_msg("ztbctl agent list --bogus: %s", err);
    free(out);
    free(err);
}

static void test_agent_lifecycle(void **state)
{
    (void)state;
    char *out, *err;
    assert_int_equal(ctl(&out, &err, "agent", "add", "billing-bot", NULL, NULL), 0);
    assert_non_null(strstr(out, "agent billing-bot added: spiffe://ztb.local/agent/billing-bot"));
    char *tok = strstr(out, "ztbj_");
    assert_non_null(tok);
    char token[64];
    assert_int_equal(sscanf(tok, "%63s", token), 1);
    assert_int_equal(strlen(token), 48);
    free(out);
    free(err);

    assert_int_equal(ctl(&out, &err, "agent", "add", "billing-bot", NULL, NULL), 1);
    assert_non_null(strstr(err, "agent exists"));
    free(out);
    free(err);
    /* refused before the broker is asked (the broker refuses it too) */
    assert_int_equal(ctl(&out, &err, "agent", "add", "Bad Name", NULL, NULL), 2);
    assert_non_null(strstr(err, "invalid agent name 'Bad Name'"));
    free(out);
    free(err);

    assert_int_equal(ctl(&out, &err, "agent", "add", "crm-sync", "--ttl", "60"), 0);
    assert_non_null(strstr(out, "valid 60s"));
    free(out);
    free(err);

    assert_int_equal(ctl(&out, &err, "agent", "list", NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "NAME"));
    char *l1 = strstr(out, "billing-bot"), *l2 = strstr(out, "crm-sync");
    assert_true(l1 != NULL && l2 != NULL && l1 < l2); /* sorted */
    free(out);
    free(err);

    assert_int_equal(ctl(&out, &err, "agent", "disable", "crm-sync", NULL, NULL), 0);
    assert_non_null(strstr(out, "disabled"));
    free(out);
    free(err);
    const char *jargv[] = {zh_bin("ztbctl"), "--socket", b.admin_sock, "--json",
                           "agent",          "show",     "crm-sync",   NULL};
    assert_int_equal(zh_run(jargv, &out, &err), 0);
    assert_non_null(strstr(out, "\"status\": \"disabled\""));
    assert_non_null(strstr(out, "\"generation\": 1"));
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "agent", "enable", "crm-sync", NULL, NULL), 0);
    free(out);
    free(err);

    assert_int_equal(ctl(&out, &err, "agent", "show", "ghost", NULL, NULL), 1);
    assert_non_null(strstr(err, "no such agent"));
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "agent", "join-token", "crm-sync", "--ttl", "0"), 2);
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "agent", "join-token", "crm-sync", NULL, NULL), 0);
    assert_non_null(strstr(out, "ztbj_"));
    free(out);
    free(err);

    /* the join token is in no log and in no audit line */
    char path[400];
    snprintf(path, sizeof(path), "%s/audit/audit.log", b.state);
    char *audit = file_text(path);
    assert_null(strstr(audit, token));
    assert_non_null(strstr(audit, "\"event\":\"admin.agent_added\""));
    char me[96]; /* audited by user name */
    snprintf(me, sizeof(me), "\"actor\":\"operator:%s\"", getpwuid(geteuid())->pw_name);
    assert_non_null(strstr(audit, me));
    free(audit);
    char *log = file_text(b.log);
    assert_null(strstr(log, token));
    free(log);
    const char *vargv[] = {zh_bin("ztbctl"), "audit", "verify", path, NULL};
    assert_int_equal(zh_run(vargv, &out, &err), 0);
    assert_non_null(strstr(out, "chain intact"));
    free(out);
    free(err);
}

/* `agent show` names the identity document's state; before enrollment
 * there is none, and its expiry is null in JSON, "none" for people; the
 * options after the command pick the format. */
static void test_agent_show_and_formats(void **state)
{
    (void)state;
    char *out, *err;
    assert_int_equal(ctl(&out, &err, "agent", "add", "show-bot", NULL, NULL), 0);
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "agent", "show", "show-bot", NULL, NULL), 0);
    assert_non_null(strstr(out, "\nstatus             active\n"));
    assert_non_null(strstr(out, "\ngeneration         1\n"));
    assert_non_null(strstr(out, "\nidentity_current   no\n"));
    assert_non_null(strstr(out, "\nidentity_expires   none\n"));
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "agent", "show", "show-bot", "-o", "json"), 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "identity_expires")));
    assert_true(json_is_null(json_object_get(j, "identity_x5t")));
    assert_true(json_is_false(json_object_get(j, "identity_current")));
    json_decref(j);
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "agent", "list", "-o", "name", NULL), 0);
    assert_non_null(strstr(out, "show-bot\n"));
    assert_null(strstr(out, "NAME"));
    assert_null(strstr(out, "spiffe://"));
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "agent", "list", "--no-headers", NULL, NULL), 0);
    assert_null(strstr(out, "NAME"));
    assert_non_null(strstr(out, "spiffe://ztb.local/agent/show-bot"));
    free(out);
    free(err);
}

/* Poll until `agent show NAME -o json` reports denied_last_hour >= want
 * (refusals are counted by the detectors' worker, a moment later). */
struct denied_wait {
    const char *name;
    json_int_t want;
    json_t *last;
};
static int denied_counted(void *arg)
{
    struct denied_wait *w = arg;
    char *out, *err;
    int rc = ctl(&out, &err, "agent", "show", w->name, "-o", "json");
    free(err);
    if (rc != 0) {
        free(out);
        return 0;
    }
    json_error_t e;
    json_decref(w->last);
    w->last = json_loads(out, 0, &e);
    free(out);
    return json_integer_value(json_object_get(w->last, "denied_last_hour")) >= w->want;
}

/* An enrolled agent that was issued two tokens and refused one: `agent
 * show` gives its identity's serial (the certificate's) and expiry, when it
 * was last seen, and the tokens issued and refused in the last hour. */
static void test_agent_show_activity(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "busy-bot");
    struct zh_resp r;
    char tok[4096];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(za_token(&b, &a, "crm", "crm:read", &r, tok, sizeof(tok)), 200);
        zh_resp_free(&r);
    }
    assert_int_equal(za_token(&b, &a, "crm", "crm:delete", &r, tok, sizeof(tok)), 403);
    zh_resp_free(&r);

    struct denied_wait w = {.name = "busy-bot", .want = 1};
    if (!za_wait(denied_counted, &w, 5000))
        fail_msg("agent show never counted the refusal: %s",
                 w.last ? json_dumps(w.last, 0) : "(no answer)");
    json_t *j = w.last;
    assert_int_equal(json_integer_value(json_object_get(j, "tokens_last_hour")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "denied_last_hour")), 1);
    assert_true(json_integer_value(json_object_get(j, "last_seen")) > 0);
    assert_true(json_is_true(json_object_get(j, "identity_current")));
    assert_true(json_integer_value(json_object_get(j, "identity_expires")) > 0);
    const char *sv = json_string_value(json_object_get(j, "identity_serial"));
    assert_non_null(sv);
    assert_true(strlen(sv) >= 16);
    char serial[64];
    snprintf(serial, sizeof(serial), "%s", sv);
    json_decref(j);

    /* for people: the same, times in RFC 3339 */
    char *out, *err;
    assert_int_equal(ctl(&out, &err, "agent", "show", "busy-bot", NULL, NULL), 0);
    char line[128];
    snprintf(line, sizeof(line), "\nidentity_serial    %s\n", serial);
    if (strstr(out, line) == NULL)
        fail_msg("agent show has no '%s' line:\n%s", serial, out);
    assert_non_null(strstr(out, "\ntokens_last_hour   2\n"));
    assert_non_null(strstr(out, "\ndenied_last_hour   1\n"));
    char *ls = strstr(out, "\nlast_seen          ");
    assert_non_null(ls);
    assert_int_equal(ls[19 + 11], 'T'); /* 2026-12-04T... */
    assert_int_equal(ls[19 + 20], 'Z');
    free(out);
    free(err);
    za_free(&a);
}

static void test_admin_api_rejects_bad_input(void **state)
{
    (void)state;
    struct zh_resp r;
    const char *url = "/v1/agents";
    assert_int_equal(zh_admin_send(&b, "POST", url, "text/plain", "name=x", 6, &r), 0);
    assert_int_equal(r.status, 415);
    zh_resp_free(&r);
    const char *dup = "{\"name\":\"a\",\"name\":\"b\"}";
    assert_int_equal(zh_admin_send(&b, "POST", url, "application/json", dup, strlen(dup), &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "invalid JSON"));
    zh_resp_free(&r);
    const char *unk = "{\"name\":\"a\",\"colour\":\"red\"}";
    assert_int_equal(zh_admin_send(&b, "POST", url, "application/json", unk, strlen(unk), &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "unknown field 'colour'"));
    zh_resp_free(&r);
    char deep[2100];
    for (int i = 0; i < 1000; i++)
        deep[i] = '[';
    for (int i = 0; i < 1000; i++)
        deep[1000 + i] = ']';
    assert_int_equal(zh_admin_send(&b, "POST", url, "application/json", deep, 2000, &r), 0);
    assert_int_equal(r.status, 400);
    zh_resp_free(&r);
    assert_int_equal(zh_admin(&b, "PUT", "/v1/agents/billing-bot", NULL, &r), 0);
    assert_int_equal(r.status, 405);
    zh_resp_free(&r);
    assert_int_equal(zh_admin(&b, "POST", "/v1/agents/billing-bot/explode", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    zh_resp_free(&r);
    assert_int_equal(zh_admin(&b, "GET", "/v1/agents/..%2f..%2fetc", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    zh_resp_free(&r);
    /* the admin endpoints are not on the public port */
    assert_int_equal(zh_get(&b, "/v1/agents", &r), 0);
    assert_int_equal(r.status, 404);
    zh_resp_free(&r);
}

static void test_ctl_without_broker(void **state)
{
    (void)state;
    char *out, *err;
    const char *argv[] = {zh_bin("ztbctl"), "--socket", "/nonexistent/admin.sock",
                          "agent",          "list",     NULL};
    assert_int_equal(zh_run(argv, &out, &err), 1);
    assert_non_null(strstr(err, "cannot reach the admin socket /nonexistent/admin.sock: no such "
                                "directory: /nonexistent: nothing is listening there"));
    free(out);
    free(err);
    const char *help[] = {zh_bin("ztbctl"), "agent", "--help", NULL};
    assert_int_equal(zh_run(help, &out, &err), 0);
    assert_non_null(strstr(out, "join-token"));
    free(out);
    free(err);
}

static const char *policy_v1 =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"rate_limits\": {\n"
    "   \"per_agent\": {\"rate\": 60, \"burst\": 10, \"period\": 60},\n"
    "   \"per_action\": {\"rate\": 60, \"burst\": 10, \"period\": 60}}},\n"
    " \"rules\": [{\"id\": \"read\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}]}\n";

static void test_keys_through_broker(void **state)
{
    (void)state;
    char *out, *err;
    assert_int_equal(ctl(&out, &err, "keys", "list", "--broker", NULL, NULL), 0);
    assert_non_null(strstr(out, "KID"));
    assert_non_null(strstr(out, "active"));
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "keys", "rotate", "--broker", NULL, NULL), 0);
    assert_non_null(strstr(out, "published "));
    free(out);
    free(err);
    /* promoting before the JWKS cache period is refused ... */
    assert_int_equal(ctl(&out, &err, "keys", "rotate", "--broker", NULL, NULL), 1);
    free(out);
    free(err);
    /* ... unless forced */
    assert_int_equal(ctl(&out, &err, "keys", "rotate", "--broker", "--force", NULL), 0);
    assert_non_null(strstr(out, "promoted "));
    free(out);
    free(err);
    /* the JWKS now publishes both keys */
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/.well-known/jwks.json", &r), 0);
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 2);
    json_decref(j);
    zh_resp_free(&r);
    assert_int_equal(ctl(&out, &err, "keys", "list", "--broker", NULL, NULL), 0);
    assert_non_null(strstr(out, "retiring"));
    free(out);
    free(err);
}

static void test_policy_reload(void **state)
{
    (void)state;
    char *out, *err;
    assert_int_equal(ctl(&out, &err, "policy", "reload", NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "policy reloaded (digest "));
    free(out);
    free(err);
    /* a broken file is refused with its problems; the old policy stays */
    char path[400];
    snprintf(path, sizeof(path), "%s/policy.json", b.dir);
    FILE *f = fopen(path, "w");
    fputs("{\"version\": 1, \"trust_domain\": \"ztb.local\", \"rules\": [ {\"id\": }]}", f);
    fclose(f);
    assert_int_equal(ctl(&out, &err, "policy", "reload", NULL, NULL, NULL), 1);
    assert_non_null(strstr(err, "old one stays in force"));
    assert_non_null(strstr(err, "1:"));
    free(out);
    free(err);
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/metrics", &r), 0);
    assert_non_null(strstr(r.body, "ztb_policy_reload_failures_total 1"));
    zh_resp_free(&r);
    /* a valid policy for another trust domain: refused as a start would
     * refuse it (it used to reload, and the next restart failed) */
    char other[4096];
    snprintf(other, sizeof(other), "%s", policy_v1);
    char *td = strstr(other, "ztb.local");
    assert_non_null(td);
    memcpy(td, "ztb.other", 9);
    f = fopen(path, "w");
    fputs(other, f);
    fclose(f);
    assert_int_equal(ctl(&out, &err, "policy", "reload", NULL, NULL, NULL), 1);
    assert_non_null(strstr(err, "ztb.other"));
    assert_non_null(strstr(err, "--trust-domain"));
    free(out);
    free(err);
    /* ... and so is SIGHUP (systemctl reload): refused, counted, the reason
     * in the log, the broker still up on the old policy */
    assert_int_equal(kill(b.pid, SIGHUP), 0);
    int seen = 0;
    for (int i = 0; i < 250 && !seen; i++) {
        assert_int_equal(zh_get(&b, "/metrics", &r), 0);
        seen = strstr(r.body, "ztb_policy_reload_failures_total 3") != NULL;
        zh_resp_free(&r);
        if (!seen)
            usleep(20000);
    }
    assert_true(seen);
    char *blog = file_text(b.log);
    assert_non_null(strstr(blog, "the policy is for trust domain ztb.other, this broker serves "
                                 "ztb.local"));
    free(blog);
    assert_int_equal(zh_get(&b, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    f = fopen(path, "w");
    fputs(policy_v1, f);
    fclose(f);
    assert_int_equal(ctl(&out, &err, "policy", "reload", NULL, NULL, NULL), 0);
    free(out);
    free(err);
}

static int setup(void **state)
{
    (void)state;
    struct zh_broker_opts o = {.with_keys = 1, .policy = policy_v1};
    zh_broker_start(&b, &o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_lifecycle),
        cmocka_unit_test(test_admin_api_rejects_bad_input),
        cmocka_unit_test(test_ctl_without_broker),
        cmocka_unit_test(test_keys_through_broker),
        cmocka_unit_test(test_policy_reload),
        cmocka_unit_test(test_options_after_the_command),
        cmocka_unit_test(test_agent_show_and_formats),
        cmocka_unit_test(test_agent_show_activity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
