/*
 * test_reload.c - broker_policy_reload (reload.c): the configured policy
 * file re-read into a broker's policy holder, on a broker built by the test
 * (no server, no Redis), the audit log in a scratch directory. A good file
 * replaces the policy in force and its digest is the SHA-256 of the file; a
 * bad one (syntax, meaning, missing, empty, too large, hundreds of problems,
 * control characters) is refused with its reasons, the old policy stays,
 * and both are audited and counted; no policy file configured is STATE and
 * touches nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "broker/admin/reload.h"
#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/http/metrics.h"
#include "harness.h"
#include "policy/holder.h"
#include "policy/load.h"
#include "policy/policy.h"

#define RATES                                                                                      \
    "{\"per_agent\": {\"rate\": 10, \"burst\": 10, \"period\": 60},"                               \
    " \"per_action\": {\"rate\": 10, \"burst\": 10, \"period\": 60}}"

#define DOC_A                                                                                      \
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"                                          \
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"rate_limits\": " RATES "},\n"        \
    " \"rules\": [{\"id\": \"a\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"                 \
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}]}\n"

#define DOC_B                                                                                      \
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"                                          \
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"rate_limits\": " RATES "},\n"        \
    " \"rules\": [{\"id\": \"b1\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"                \
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]},\n"        \
    "  {\"id\": \"b2\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"                           \
    "   \"actions\": [\"pay:read\"], \"audiences\": [\"pay\"], \"resources\": [\"**\"]}]}\n"

static char dir[256];
static struct broker b;

static int setup(void **state)
{
    (void)state;
    char path[400], err[512];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit", dir);
    if (audit_open(path, 0, err, sizeof(err)) != ZTB_OK)
        fail_msg("audit_open: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    audit_close();
    zh_rmtree(dir);
    return 0;
}

/* Each test: a fresh broker with an empty holder and the policy file
 * <dir>/policy.json configured (not written yet). */
static int before_each(void **state)
{
    (void)state;
    memset(&b, 0, sizeof(b));
    assert_int_equal(policy_holder_new(&b.policy), ZTB_OK);
    int n = snprintf(b.cfg.policy_file, sizeof(b.cfg.policy_file), "%s/policy.json", dir);
    assert_true(n > 0 && (size_t)n < sizeof(b.cfg.policy_file));
    return 0;
}

static int after_each(void **state)
{
    (void)state;
    policy_holder_free(b.policy);
    b.policy = NULL;
    return 0;
}

/* Write n bytes of text as the configured policy file. */
static void write_policy(const char *text, size_t n)
{
    FILE *f = fopen(b.cfg.policy_file, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* The SHA-256 of text in lowercase hex (65 bytes with the NUL). */
static void sha256_hex(const char *text, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), md);
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The digest of the policy in force, "" if none. */
static void in_force(char out[65])
{
    policy *p = policy_holder_acquire(b.policy);
    snprintf(out, 65, "%s", p != NULL ? policy_digest(p) : "");
    policy_holder_release(p);
}

/* The number of audit lines with event that contain needle (NULL: any). */
static int audit_count(const char *event, const char *needle)
{
    char path[400], ev[96], line[8192];
    snprintf(path, sizeof(path), "%s/audit/audit.log", dir);
    snprintf(ev, sizeof(ev), "\"event\":\"%s\"", event);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, ev) != NULL && (needle == NULL || strstr(line, needle) != NULL);
    fclose(f);
    return n;
}

/* Reload and expect refusal with want; the policy in force, the holder's
 * generation and digest_out must not change. Returns the problems (caller
 * decrefs), checked to be a non-empty array of strings. */
static json_t *refused(ztb_err want)
{
    char before[65], after[65], digest[65] = "untouched";
    in_force(before);
    uint64_t gen = policy_holder_generation(b.policy);
    uint64_t fails = metrics_get(METRIC_POLICY_RELOAD_FAILURES);
    uint64_t loads = metrics_get(METRIC_POLICY_RELOADS);
    char why[96];
    snprintf(why, sizeof(why), "\"error\":\"%s\"", ztb_err_name(want));
    int audited = audit_count("policy.reload_refused", why);
    json_t *problems = NULL;
    assert_int_equal(broker_policy_reload(&b, "operator:test", digest, &problems), want);
    assert_string_equal(digest, "untouched");
    in_force(after);
    assert_string_equal(after, before);
    assert_int_equal(policy_holder_generation(b.policy), gen);
    assert_int_equal(metrics_get(METRIC_POLICY_RELOAD_FAILURES), fails + 1);
    assert_int_equal(metrics_get(METRIC_POLICY_RELOADS), loads);
    assert_int_equal(audit_count("policy.reload_refused", why), audited + 1);
    assert_true(audit_count("policy.reload_refused", "\"actor\":\"operator:test\"") >= 1);
    assert_non_null(problems);
    assert_true(json_is_array(problems));
    assert_true(json_array_size(problems) >= 1);
    for (size_t i = 0; i < json_array_size(problems); i++)
        assert_true(json_is_string(json_array_get(problems, i)));
    return problems;
}

/* 1 if one of the problems contains needle. */
static int problems_have(const json_t *problems, const char *needle)
{
    for (size_t i = 0; i < json_array_size(problems); i++)
        if (strstr(json_string_value(json_array_get(problems, i)), needle) != NULL)
            return 1;
    return 0;
}

/* No policy file configured: STATE, *problems NULL, nothing changed,
 * audited or counted. */
static void test_no_policy_file(void **state)
{
    (void)state;
    b.cfg.policy_file[0] = '\0';
    json_t *problems = json_array(); /* must be overwritten with NULL */
    json_t *keep = problems;
    char digest[65] = "untouched";
    uint64_t fails = metrics_get(METRIC_POLICY_RELOAD_FAILURES);
    int audited = audit_count("policy.reload_refused", NULL);
    assert_int_equal(broker_policy_reload(&b, "operator:test", digest, &problems), ZTB_ERR_STATE);
    assert_null(problems);
    assert_string_equal(digest, "untouched");
    assert_null(policy_holder_acquire(b.policy));
    assert_int_equal(policy_holder_generation(b.policy), 0);
    assert_int_equal(metrics_get(METRIC_POLICY_RELOAD_FAILURES), fails);
    assert_int_equal(audit_count("policy.reload_refused", NULL), audited);
    json_decref(keep);
}

/* A good file goes in: OK, the digest is the file's SHA-256 and is what is
 * in force, audited with the actor and counted; a second good file
 * replaces it. */
static void test_good_reload_replaces(void **state)
{
    (void)state;
    char want[65], digest[65], now[65], needle[128];
    uint64_t loads = metrics_get(METRIC_POLICY_RELOADS);
    write_policy(DOC_A, strlen(DOC_A));
    sha256_hex(DOC_A, want);
    json_t *problems = json_array();
    json_t *keep = problems;
    assert_int_equal(broker_policy_reload(&b, "operator:alice", digest, &problems), ZTB_OK);
    assert_null(problems); /* set to NULL on success */
    json_decref(keep);
    assert_string_equal(digest, want);
    in_force(now);
    assert_string_equal(now, want);
    policy *p = policy_holder_acquire(b.policy);
    assert_int_equal(policy_rule_count(p), 1);
    policy_holder_release(p);
    assert_int_equal(metrics_get(METRIC_POLICY_RELOADS), loads + 1);
    snprintf(needle, sizeof(needle), "\"digest\":\"%s\"", want);
    assert_int_equal(audit_count("policy.loaded", needle), 1);
    assert_int_equal(audit_count("policy.loaded", "\"actor\":\"operator:alice\""), 1);

    /* the next good file replaces it (NULL digest_out and problems are fine) */
    write_policy(DOC_B, strlen(DOC_B));
    sha256_hex(DOC_B, want);
    assert_int_equal(broker_policy_reload(&b, "operator:SIGHUP", NULL, NULL), ZTB_OK);
    in_force(now);
    assert_string_equal(now, want);
    p = policy_holder_acquire(b.policy);
    assert_int_equal(policy_rule_count(p), 2);
    policy_holder_release(p);
    assert_int_equal(policy_holder_generation(b.policy), 2);
    assert_int_equal(metrics_get(METRIC_POLICY_RELOADS), loads + 2);
    snprintf(needle, sizeof(needle), "\"digest\":\"%s\"", want);
    assert_int_equal(audit_count("policy.loaded", needle), 1);
}

/* Bad files after a good one: each refused with its error and reasons in
 * the documented forms, the good policy stays in force. */
static void test_bad_reload_keeps_old(void **state)
{
    (void)state;
    char good[65];
    write_policy(DOC_A, strlen(DOC_A));
    assert_int_equal(broker_policy_reload(&b, "operator:test", NULL, NULL), ZTB_OK);
    in_force(good);
    assert_int_equal(strlen(good), 64);

    /* a syntax error: "line:col: ..." */
    const char *syntax = "{\"version\": 1,\n \"rules\": [\n";
    write_policy(syntax, strlen(syntax));
    json_t *problems = refused(ZTB_ERR_JSON);
    const char *m = json_string_value(json_array_get(problems, 0));
    unsigned line = 0, col = 0;
    assert_int_equal(sscanf(m, "%u:%u: ", &line, &col), 2);
    assert_true(line >= 1 && col >= 1);
    json_decref(problems);

    /* a problem of meaning names the rule */
    const char *meaning = "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
                          " \"rules\": [{\"id\": \"r\", \"effect\": \"maybe\"}]}\n";
    write_policy(meaning, strlen(meaning));
    problems = refused(ZTB_ERR_POLICY);
    assert_true(problems_have(problems, "rule \"r\""));
    json_decref(problems);

    /* an empty file */
    write_policy("", 0);
    problems = refused(ZTB_ERR_JSON);
    json_decref(problems);

    /* NULL digest_out and problems on a refusal: still refused, nothing kept */
    write_policy(meaning, strlen(meaning));
    assert_int_equal(broker_policy_reload(&b, "operator:test", NULL, NULL), ZTB_ERR_POLICY);

    /* the file is gone */
    assert_int_equal(remove(b.cfg.policy_file), 0);
    problems = refused(ZTB_ERR_IO);
    json_decref(problems);

    char now[65];
    in_force(now);
    assert_string_equal(now, good);
}

/* A bad file as the first policy: refused, and there is still none in
 * force (deny everything), not half of it. */
static void test_first_reload_refused(void **state)
{
    (void)state;
    const char *bad = "{\"version\": 1, \"trust_domain\": \"ztb.local\", \"rules\": 7}";
    write_policy(bad, strlen(bad));
    json_t *problems = refused(ZTB_ERR_POLICY);
    json_decref(problems);
    assert_null(policy_holder_acquire(b.policy));
}

/* Hostile files: over 16 MiB is TOO_LARGE; hundreds of problems are cut at
 * the diag's maximum with a last "... and N more"; control characters of
 * the document never reach a message. */
static void test_hostile_files(void **state)
{
    (void)state;
    write_policy(DOC_A, strlen(DOC_A));
    assert_int_equal(broker_policy_reload(&b, "operator:test", NULL, NULL), ZTB_OK);

    /* 16 MiB + 1 of whitespace before a valid document */
    size_t big = POLICY_MAX_DOCUMENT + 1;
    char *doc = malloc(big + sizeof(DOC_A));
    assert_non_null(doc);
    memset(doc, ' ', big);
    memcpy(doc + big, DOC_A, sizeof(DOC_A));
    write_policy(doc, big + strlen(DOC_A));
    free(doc);
    json_t *problems = refused(ZTB_ERR_TOO_LARGE);
    json_decref(problems);

    /* 300 bad rules: 200 messages and a count of the rest */
    size_t cap = 300 * 64 + 256, o = 0;
    doc = malloc(cap);
    assert_non_null(doc);
    o += (size_t)snprintf(doc + o, cap - o,
                          "{\"version\": 1, \"trust_domain\": \"ztb.local\", \"rules\": [");
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(doc + o, cap - o, "%s{\"id\": \"r%d\", \"effect\": \"maybe\"}",
                              i ? "," : "", i);
    o += (size_t)snprintf(doc + o, cap - o, "]}");
    write_policy(doc, o);
    free(doc);
    problems = refused(ZTB_ERR_POLICY);
    size_t n = json_array_size(problems);
    assert_int_equal(n, 201);
    const char *last = json_string_value(json_array_get(problems, n - 1));
    size_t more = 0;
    assert_int_equal(sscanf(last, "... and %zu more", &more), 1);
    assert_true(more > 0);
    json_decref(problems);

    /* a rule id with control characters (JSON escapes) and a very long one */
    char longid[2000];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    char ctl[4096];
    int len = snprintf(ctl, sizeof(ctl),
                       "{\"version\": 1, \"trust_domain\": \"ztb.local\", \"rules\": ["
                       "{\"id\": \"a\\u001b[31m\\n\\r\", \"effect\": \"maybe\"},"
                       "{\"id\": \"%s\", \"effect\": \"maybe\"}]}",
                       longid);
    assert_true(len > 0 && (size_t)len < sizeof(ctl));
    write_policy(ctl, (size_t)len);
    problems = refused(ZTB_ERR_POLICY);
    for (size_t i = 0; i < json_array_size(problems); i++) {
        const char *s = json_string_value(json_array_get(problems, i));
        for (const char *p = s; *p; p++)
            assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
        assert_true(strlen(s) < 512); /* one bounded line each */
    }
    json_decref(problems);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_policy_file, before_each, after_each),
        cmocka_unit_test_setup_teardown(test_good_reload_replaces, before_each, after_each),
        cmocka_unit_test_setup_teardown(test_bad_reload_keeps_old, before_each, after_each),
        cmocka_unit_test_setup_teardown(test_first_reload_refused, before_each, after_each),
        cmocka_unit_test_setup_teardown(test_hostile_files, before_each, after_each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
