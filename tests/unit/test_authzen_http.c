/*
 * test_authzen_http.c - the AuthZEN handlers (broker/authzen/authzen_http.c)
 * served by a real http_server in this process (broker_fixture.h bf_serve),
 * for what the integration test (tests/integration/test_authzen_pdp.c) does
 * not reach: the request id and Authorization header held to once and a
 * bound, the scheme read in any case, a quarantined caller refused, and
 * the subject's state in Redis as the token endpoint reads it (a killed
 * audience, a revoked agent, an approval imposed by a signal) never a
 * permit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent.h"
#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "broker_fixture.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 120, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"docs:read\"], \"audiences\": [\"docs\", \"wiki\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"pep\", \"effect\": \"allow\", \"agents\": [\"gate\"],\n"
    "   \"actions\": [\"ztb:evaluate\"], \"audiences\": [\"docs\", \"wiki\"],\n"
    "   \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct za_agent alice, gate;

static int setup(void **state)
{
    (void)state;
    bf_setup_ca(policy_doc, 1);
    bf_serve(0);
    za_enroll(&bf_broker, &alice, "alice");
    za_enroll(&bf_broker, &gate, "gate");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    za_free(&alice);
    za_free(&gate);
    bf_unserve();
    bf_teardown();
    return 0;
}

#define ASK_ALICE(aud)                                                                             \
    "{\"subject\": {\"type\": \"agent\", \"id\": \"alice\"}, \"action\": {\"name\": "              \
    "\"docs:read\"}, \"resource\": {\"type\": \"" aud "\", \"id\": \"d/1\"}}"

/* POST body to /access/v1/evaluation with headers (NULL-terminated). */
static long post(const char *body, const char *const *headers, struct zh_resp *r)
{
    char url[300];
    snprintf(url, sizeof(url), "%s/access/v1/evaluation", bf_broker.url);
    assert_int_equal(zh_http("POST", url, NULL, "application/json", body, strlen(body), headers, r),
                     0);
    return r->status;
}

static const char *auth_of(const struct za_agent *a, const char *scheme)
{
    static char v[600];
    snprintf(v, sizeof(v), "Authorization: %s %s", scheme, a->session);
    return v;
}

/* gate asks ASK_ALICE(aud): the decision's reason (static copy). */
static const char *reason_for(const char *body, int *decision)
{
    static char reason[64];
    const char *h[] = {auth_of(&gate, "Bearer"), NULL};
    struct zh_resp r;
    if (post(body, h, &r) != 200)
        fail_msg("HTTP %ld %s", r.status, r.body);
    json_t *j = za_json(&r);
    *decision = json_is_true(json_object_get(j, "decision"));
    snprintf(reason, sizeof(reason), "%s",
             json_string_value(json_object_get(json_object_get(j, "context"), "reason")));
    json_decref(j);
    zh_resp_free(&r);
    return reason;
}

static void test_headers(void **state)
{
    (void)state;
    struct zh_resp r;
    char v[200];
    /* the scheme in any case; the request id echoed */
    const char *ok[] = {auth_of(&gate, "bEaReR"), "X-Request-ID: abc 123", NULL};
    assert_int_equal(post(ASK_ALICE("docs"), ok, &r), 200);
    assert_non_null(zh_resp_header(&r, "X-Request-ID", v, sizeof(v)));
    assert_string_equal(v, "abc 123");
    assert_non_null(strstr(r.body, "\"decision\":true"));
    zh_resp_free(&r);
    /* two request ids, or one too long: 400 */
    const char *two_ids[] = {auth_of(&gate, "Bearer"), "X-Request-ID: a", "X-Request-ID: b", NULL};
    assert_int_equal(post(ASK_ALICE("docs"), two_ids, &r), 400);
    assert_non_null(strstr(r.body, "X-Request-ID"));
    zh_resp_free(&r);
    char long_id[300];
    snprintf(long_id, sizeof(long_id), "X-Request-ID: %0200d", 7);
    const char *long_ids[] = {auth_of(&gate, "Bearer"), long_id, NULL};
    assert_int_equal(post(ASK_ALICE("docs"), long_ids, &r), 400);
    zh_resp_free(&r);
    /* two Authorization headers: a proxy and ztb could read different ones */
    char second[600];
    snprintf(second, sizeof(second), "%s", auth_of(&alice, "Bearer"));
    const char *two_auth[] = {auth_of(&gate, "Bearer"), second, NULL};
    assert_int_equal(post(ASK_ALICE("docs"), two_auth, &r), 400);
    zh_resp_free(&r);
    /* a credential with more after it, and no credential */
    char extra[700];
    snprintf(extra, sizeof(extra), "%s x", auth_of(&gate, "Bearer"));
    const char *bad[][2] = {{extra, NULL}, {"Authorization: Bearer ", NULL}, {NULL, NULL}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(post(ASK_ALICE("docs"), bad[i], &r), 401);
        assert_non_null(zh_resp_header(&r, "WWW-Authenticate", v, sizeof(v)));
        assert_string_equal(v, "Bearer realm=\"ztb\"");
        zh_resp_free(&r);
    }
}

static void test_quarantined_caller(void **state)
{
    (void)state;
    int changed = 0;
    assert_int_equal(store_agent_flag("gate", "quarantined", 1, &changed), ZTB_OK);
    const char *h[] = {auth_of(&gate, "Bearer"), NULL};
    struct zh_resp r;
    assert_int_equal(post(ASK_ALICE("docs"), h, &r), 403);
    assert_non_null(strstr(r.body, "quarantined"));
    zh_resp_free(&r);
    assert_int_equal(store_agent_flag("gate", "quarantined", 0, &changed), ZTB_OK);
    assert_int_equal(post(ASK_ALICE("docs"), h, &r), 200);
    zh_resp_free(&r);
}

static void test_subject_state(void **state)
{
    (void)state;
    int d = 0, changed = 0;
    assert_string_equal(reason_for(ASK_ALICE("wiki"), &d), "allowed");
    assert_true(d);
    /* the audience's kill switch */
    assert_int_equal(store_rev_audience("wiki", 0, 60, &changed), ZTB_OK);
    assert_string_equal(reason_for(ASK_ALICE("wiki"), &d), "audience_disabled");
    assert_false(d);
    assert_string_equal(reason_for(ASK_ALICE("docs"), &d), "allowed");
    assert_int_equal(store_rev_audience("wiki", 1, 60, &changed), ZTB_OK);
    assert_string_equal(reason_for(ASK_ALICE("wiki"), &d), "allowed");
    /* a signal's "require approval" */
    assert_int_equal(store_agent_flag("alice", "approval", 1, &changed), ZTB_OK);
    assert_string_equal(reason_for(ASK_ALICE("docs"), &d), "approval_required");
    assert_false(d);
    assert_int_equal(store_agent_flag("alice", "approval", 0, &changed), ZTB_OK);
    assert_string_equal(reason_for(ASK_ALICE("docs"), &d), "allowed");
    /* all of the agent's tokens revoked: it has no live identity until it
     * enrolls again */
    int64_t gen = 0, exp = 0;
    assert_int_equal(store_rev_agent("alice", 120, 60, &gen, &exp), ZTB_OK);
    assert_string_equal(reason_for(ASK_ALICE("docs"), &d), "subject_not_enrolled");
    assert_false(d);
    assert_true(bf_audit_has("authzen.decision", "\"subject_not_enrolled\""));
    assert_true(bf_audit_has("authzen.decision", "\"audience_disabled\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_quarantined_caller),
        cmocka_unit_test(test_subject_state),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
