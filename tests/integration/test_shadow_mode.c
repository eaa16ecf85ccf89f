/*
 * test_shadow_mode.c - a candidate policy runs beside the enforced one on
 * live traffic through the real ztbctl and the real broker: only the
 * enforced decision counts, every difference is reported (by rule, with
 * examples), counted in /metrics and audited; a candidate for another trust
 * domain is refused; promote writes the policy file and enforces it,
 * auditing which rules changed, and refuses when the file does not hold the
 * candidate; clear stops it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

#define SETTINGS                                                                                   \
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"rate_limits\": {\n"                  \
    "   \"per_agent\": {\"rate\": 6000, \"burst\": 1000, \"period\": 60},\n"                       \
    "   \"per_action\": {\"rate\": 6000, \"burst\": 1000, \"period\": 60}}},\n"

static const char *enforced_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n" SETTINGS " \"rules\": [\n"
    "  {\"id\": \"crm-read\", \"effect\": \"allow\", \"agents\": [\"worker\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"crm-write\", \"effect\": \"allow\", \"agents\": [\"worker\"],\n"
    "   \"actions\": [\"crm:write\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"ttl\": 60}}]}\n";

/* crm-read removed, crm-write shorter-lived, billing-read added */
static const char *candidate_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n" SETTINGS " \"rules\": [\n"
    "  {\"id\": \"crm-write\", \"effect\": \"allow\", \"agents\": [\"worker\"],\n"
    "   \"actions\": [\"crm:write\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"ttl\": 30}},\n"
    "  {\"id\": \"billing-read\", \"effect\": \"allow\", \"agents\": [\"worker\"],\n"
    "   \"actions\": [\"billing:read\"], \"audiences\": [\"billing\"], \"resources\": "
    "[\"**\"]}]}\n";

static struct zh_broker b;
static struct zh_redis rd;
static char dir[256];

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, enforced_doc);
    zh_tmpdir(dir, sizeof(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
    zh_rmtree(dir);
    zh_redis_stop(&rd, 1);
    return 0;
}

/* ztbctl ARGS... against the broker; returns the exit status, output in *out. */
static int ctl(char **out, const char *a1, const char *a2, const char *a3, const char *a4)
{
    const char *argv[] = {zh_bin("ztbctl"), "--socket", b.admin_sock, a1, a2, a3, a4, NULL};
    char *err = NULL;
    int rc = zh_run(argv, out, &err);
    /* stderr after stdout: the tests look for messages in either */
    size_t n = strlen(*out) + strlen(err ? err : "") + 1;
    char *both = malloc(n);
    assert_non_null(both);
    snprintf(both, n, "%s%s", *out, err ? err : "");
    free(*out);
    free(err);
    *out = both;
    return rc;
}

static char *write_tmp(const char *name, const char *text)
{
    static char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static char *file_text(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *s = calloc(1, 1 << 16);
    assert_non_null(s);
    size_t n = fread(s, 1, (1 << 16) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

static long token(struct za_agent *w, const char *aud, const char *scope)
{
    struct zh_resp r;
    long st = za_token(&b, w, aud, scope, &r, NULL, 0);
    zh_resp_free(&r);
    return st;
}

/* The metric's value on the admin /metrics. */
static long metric(const char *name)
{
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "GET", "/metrics", NULL, &r), 0);
    char key[128];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(r.body, key);
    long v = p ? strtol(p + strlen(key), NULL, 10) : -1;
    zh_resp_free(&r);
    return v;
}

/* The group of the report whose enforced and candidate rules are these (NULL: none). */
static const json_t *group(const json_t *rep, const char *enf_rule, const char *cand_rule)
{
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(rep, "groups"), i, g)
    {
        const char *er = json_string_value(json_object_get(json_object_get(g, "enforced"), "rule"));
        const char *cr =
            json_string_value(json_object_get(json_object_get(g, "candidate"), "rule"));
        if (strcmp(er ? er : "", enf_rule) == 0 && strcmp(cr ? cr : "", cand_rule) == 0)
            return g;
    }
    return NULL;
}

static void test_shadow_report_promote(void **state)
{
    (void)state;
    char *out;
    struct za_agent w;
    za_enroll(&b, &w, "worker");

    /* nothing loaded yet */
    assert_int_equal(ctl(&out, "policy", "shadow", "report", NULL), 1);
    assert_non_null(strstr(out, "no candidate policy is loaded"));
    free(out);

    /* another trust domain is refused, as a start would refuse it */
    char *foreign = strdup(candidate_doc);
    memcpy(strstr(foreign, "ztb.local"), "ztb.other", 9);
    assert_int_equal(ctl(&out, "policy", "shadow", "load", write_tmp("foreign.json", foreign)), 1);
    assert_non_null(strstr(out, "ztb.other"));
    free(out);
    free(foreign);

    assert_int_equal(ctl(&out, "policy", "shadow", "load", write_tmp("cand.json", candidate_doc)),
                     0);
    assert_non_null(strstr(out, "shadowing"));
    free(out);

    /* the enforced policy still decides */
    assert_int_equal(token(&w, "crm", "crm%3Aread"), 200);         /* candidate: deny */
    assert_int_equal(token(&w, "crm", "crm%3Aread"), 200);         /* twice */
    assert_int_equal(token(&w, "crm", "crm%3Awrite"), 200);        /* candidate: shorter ttl */
    assert_int_equal(token(&w, "billing", "billing%3Aread"), 403); /* candidate: allow */

    assert_int_equal(ctl(&out, "--json", "policy", "shadow", "report"), 0);
    json_error_t e;
    json_t *rep = json_loads(out, 0, &e);
    if (rep == NULL)
        fail_msg("report is not JSON: %s", out);
    free(out);
    assert_true(json_integer_value(json_object_get(rep, "evaluated")) >= 4);
    assert_int_equal(json_integer_value(json_object_get(rep, "differing")), 4);
    const json_t *g = group(rep, "crm-read", "");
    assert_non_null(g);
    assert_int_equal(json_integer_value(json_object_get(g, "count")), 2);
    assert_string_equal(json_string_value(json_object_get(g, "kind")), "effect");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(g, "candidate"), "effect")), "deny");
    const json_t *ex = json_array_get(json_object_get(g, "examples"), 0);
    assert_string_equal(json_string_value(json_object_get(ex, "agent")), "worker");
    assert_string_equal(json_string_value(json_object_get(ex, "action")), "crm:read");
    g = group(rep, "crm-write", "crm-write");
    assert_non_null(g);
    assert_string_equal(json_string_value(json_object_get(g, "kind")), "obligations");
    g = group(rep, "", "billing-read");
    assert_non_null(g);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(g, "candidate"), "effect")), "allow");
    char digest[65];
    snprintf(digest, sizeof(digest), "%s", json_string_value(json_object_get(rep, "digest")));
    json_decref(rep);
    assert_int_equal(metric("ztb_policy_shadow_differences_total"), 4);
    assert_true(metric("ztb_policy_shadow_evaluations_total") >= 4);

    /* the human-readable report names the rules */
    assert_int_equal(ctl(&out, "policy", "shadow", "report", NULL), 0);
    assert_non_null(strstr(out, "allow (crm-read) -> deny (no rule)"));
    assert_non_null(strstr(out, "e.g. worker crm:read on crm"));
    free(out);

    char *audit = za_audit_text(&b);
    assert_non_null(strstr(audit, "\"policy.shadow_differs\""));
    assert_non_null(strstr(audit, "\"enforced_rule\":\"crm-read\""));
    assert_non_null(strstr(audit, "\"policy.shadow_loaded\""));
    free(audit);

    /* promote is refused while the policy file does not hold the candidate */
    char body[128];
    snprintf(body, sizeof(body), "{\"digest\": \"%s\"}", digest);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/policy/shadow/promote", body, &r), 0);
    assert_int_equal(r.status, 409);
    assert_non_null(strstr(r.body, "does not hold the candidate"));
    zh_resp_free(&r);
    assert_int_equal(token(&w, "crm", "crm%3Aread"), 200); /* nothing changed */

    /* ztbctl writes the file, the broker enforces it and audits the change */
    char policy_path[400];
    snprintf(policy_path, sizeof(policy_path), "%s/policy.json", b.dir);
    assert_int_equal(ctl(&out, "policy", "shadow", "promote", NULL), 0);
    assert_non_null(strstr(out, "rules_added       billing-read"));
    assert_non_null(strstr(out, "rules_removed     crm-read"));
    assert_non_null(strstr(out, "rules_changed     crm-write"));
    free(out);
    char *now = file_text(policy_path);
    assert_string_equal(now, candidate_doc);
    free(now);
    struct stat st;
    assert_int_equal(stat(policy_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644); /* the old file's mode */
    assert_int_equal(token(&w, "crm", "crm%3Aread"), 403);
    assert_int_equal(token(&w, "billing", "billing%3Aread"), 200);
    audit = za_audit_text(&b);
    const char *pr = strstr(audit, "\"policy.promoted\"");
    assert_non_null(pr);
    assert_non_null(strstr(pr, "\"rules_added\":\"billing-read\""));
    assert_non_null(strstr(pr, "\"rules_removed\":\"crm-read\""));
    assert_non_null(strstr(pr, "\"rules_changed\":\"crm-write\""));
    free(audit);
    /* and the shadow is gone */
    assert_int_equal(ctl(&out, "policy", "shadow", "report", NULL), 1);
    free(out);

    /* clear */
    assert_int_equal(ctl(&out, "policy", "shadow", "load", write_tmp("c2.json", enforced_doc)), 0);
    free(out);
    assert_int_equal(ctl(&out, "policy", "shadow", "clear", NULL), 0);
    free(out);
    assert_int_equal(ctl(&out, "policy", "shadow", "clear", NULL), 1);
    free(out);
    char *trail = za_audit_text(&b);
    assert_non_null(strstr(trail, "\"event\":\"policy.shadow_refused\"")); /* ztb.other */
    assert_non_null(strstr(trail, "\"event\":\"policy.shadow_cleared\""));
    free(trail);
    long before = metric("ztb_policy_shadow_evaluations_total");
    assert_int_equal(token(&w, "billing", "billing%3Aread"), 200);
    assert_int_equal(metric("ztb_policy_shadow_evaluations_total"), before);
    za_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shadow_report_promote, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
