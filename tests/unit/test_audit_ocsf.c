/*
 * test_audit_ocsf.c - cli/audit_ocsf.c: each kind of ztb audit record as
 * its OCSF class (Authorize Session, Authentication, Detection Finding,
 * API Activity) with the base attributes every OCSF event needs
 * (category_uid, class_uid, activity_id, type_uid, severity_id, time,
 * metadata.product), the actor, and everything else under unmapped; what
 * is not an audit record maps to nothing; timestamps are exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli/audit_ocsf.h"

static json_t *map(const char *line)
{
    json_error_t e;
    json_t *rec = json_loads(line, 0, &e);
    assert_non_null(rec);
    json_t *o = audit_ocsf_map(rec);
    json_decref(rec);
    return o;
}

static json_int_t num(json_t *o, const char *path)
{
    char p[128];
    snprintf(p, sizeof(p), "%s", path);
    json_t *cur = o;
    for (char *save = NULL, *k = strtok_r(p, ".", &save); k; k = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, k);
    if (!json_is_integer(cur))
        fail_msg("%s is not an integer", path);
    return json_integer_value(cur);
}

static const char *text(json_t *o, const char *path)
{
    char p[128];
    snprintf(p, sizeof(p), "%s", path);
    json_t *cur = o;
    for (char *save = NULL, *k = strtok_r(p, ".", &save); k; k = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, k);
    const char *v = json_string_value(cur);
    if (v == NULL)
        fail_msg("%s is not a string", path);
    return v;
}

/* What every OCSF event must have. */
static void base(json_t *o, int class_uid, int activity_id)
{
    assert_int_equal(num(o, "class_uid"), class_uid);
    assert_int_equal(num(o, "category_uid"), class_uid / 1000);
    assert_int_equal(num(o, "activity_id"), activity_id);
    assert_int_equal(num(o, "type_uid"), class_uid * 100 + activity_id);
    assert_true(num(o, "severity_id") >= 1 && num(o, "severity_id") <= 5);
    assert_string_equal(text(o, "metadata.version"), AUDIT_OCSF_VERSION);
    assert_string_equal(text(o, "metadata.product.name"), "ztb");
    assert_string_equal(text(o, "metadata.product.vendor_name"), "ztb");
    assert_non_null(json_object_get(o, "actor"));
}

static void test_token_issued(void **state)
{
    (void)state;
    json_t *o = map("{\"seq\":7,\"ts\":\"2026-12-03T18:00:01.250Z\",\"prev\":\"ab\","
                    "\"replica\":\"r1\",\"event\":\"token.issued\",\"actor\":\"agent:alice\","
                    "\"agent\":\"alice\",\"action\":\"payments:refund\",\"audience\":\"payments\","
                    "\"resource\":\"orders/1\",\"rule\":\"refund-small\",\"jti\":\"j1\","
                    "\"ttl\":60,\"approval\":\"apr_x\"}");
    base(o, 3003, 1);
    assert_int_equal(num(o, "time"), 1796320801250LL);
    assert_int_equal(num(o, "status_id"), 1);
    assert_int_equal(num(o, "severity_id"), 1);
    assert_string_equal(text(o, "user.name"), "alice");
    assert_string_equal(text(o, "actor.user.name"), "alice");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "privileges"), 0)),
                        "payments:refund");
    assert_string_equal(text(o, "dst_endpoint.svc_name"), "payments");
    assert_string_equal(text(o, "session.uid"), "j1");
    assert_string_equal(text(o, "metadata.uid"), "r1/7");
    assert_int_equal(num(o, "metadata.sequence"), 7);
    assert_string_equal(text(o, "metadata.event_code"), "token.issued");
    /* the rest, unmapped, by its own name: the rule, the approval chain */
    assert_string_equal(text(o, "unmapped.rule"), "refund-small");
    assert_string_equal(text(o, "unmapped.resource"), "orders/1");
    assert_string_equal(text(o, "unmapped.approval"), "apr_x");
    assert_string_equal(text(o, "unmapped.prev"), "ab");
    assert_int_equal(num(o, "unmapped.ttl"), 60);
    assert_null(json_object_get(json_object_get(o, "unmapped"), "agent"));
    json_decref(o);
}

static void test_denied_is_a_failure(void **state)
{
    (void)state;
    json_t *o = map("{\"seq\":8,\"ts\":\"2026-12-03T18:00:02.000Z\",\"event\":\"token.denied\","
                    "\"actor\":\"agent:bob\",\"agent\":\"bob\",\"reason\":\"quarantined\"}");
    base(o, 3003, 1);
    assert_int_equal(num(o, "status_id"), 2);
    assert_string_equal(text(o, "status"), "Failure");
    assert_string_equal(text(o, "status_detail"), "quarantined");
    assert_int_equal(num(o, "severity_id"), 3);
    json_decref(o);
}

static void test_sessions_and_identities(void **state)
{
    (void)state;
    json_t *o = map("{\"seq\":1,\"ts\":\"2026-12-03T18:00:00.000Z\",\"event\":"
                    "\"auth.session_refused\",\"actor\":\"agent:bob\",\"agent\":\"bob\"}");
    base(o, 3002, 1);
    assert_int_equal(num(o, "status_id"), 2);
    assert_string_equal(text(o, "user.name"), "bob");
    json_decref(o);
    o = map("{\"seq\":2,\"ts\":\"2026-12-03T18:00:00.000Z\",\"event\":"
            "\"enroll.identity_issued\",\"actor\":\"agent:bob\"}");
    base(o, 3002, 3);
    assert_string_equal(text(o, "user.name"), "bob"); /* from the actor */
    json_decref(o);
}

static void test_signal_is_a_finding(void **state)
{
    (void)state;
    json_t *o = map("{\"seq\":3,\"ts\":\"2026-12-03T18:00:00.000Z\",\"event\":"
                    "\"signal.received\",\"actor\":\"source:siem\",\"signal\":\"sig_1\","
                    "\"source\":\"siem\",\"type\":\"credential_leak\",\"severity\":\"high\","
                    "\"confidence\":0.9,\"agent\":\"bob\",\"peer\":\"192.0.2.9\"}");
    base(o, 2004, 1);
    assert_int_equal(num(o, "severity_id"), 4);
    assert_int_equal(num(o, "confidence_score"), 90);
    assert_int_equal(num(o, "confidence_id"), 3);
    assert_string_equal(text(o, "finding_info.uid"), "sig_1");
    assert_string_equal(text(o, "finding_info.title"), "credential_leak");
    assert_string_equal(text(o, "actor.app_name"), "siem");
    assert_string_equal(text(o, "src_endpoint.ip"), "192.0.2.9");
    json_t *r = json_array_get(json_object_get(o, "resources"), 0);
    assert_string_equal(json_string_value(json_object_get(r, "name")), "bob");
    json_decref(o);
    o = map("{\"seq\":4,\"ts\":\"2026-12-03T18:00:00.000Z\",\"event\":"
            "\"signal.response_pending\",\"actor\":\"broker\",\"severity\":\"critical\"}");
    base(o, 2004, 2);
    assert_int_equal(num(o, "severity_id"), 5);
    json_decref(o);
}

static void test_everything_else_is_api_activity(void **state)
{
    (void)state;
    json_t *o = map("{\"seq\":5,\"ts\":\"2026-12-03T18:00:00.000Z\",\"event\":"
                    "\"approval.approved\",\"actor\":\"operator:alice\",\"approval\":\"apr_1\","
                    "\"agent\":\"bot\",\"by\":\"alice\",\"approvers\":\"alice,carol\"}");
    base(o, 6003, 3);
    assert_string_equal(text(o, "api.operation"), "approval.approved");
    assert_string_equal(text(o, "actor.user.name"), "alice");
    assert_int_equal(num(o, "actor.user.type_id"), 2);
    assert_string_equal(text(o, "unmapped.approvers"), "alice,carol");
    json_decref(o);
    o = map("{\"seq\":6,\"ts\":\"2026-12-03T18:00:00.000Z\",\"event\":\"revocation.applied\","
            "\"actor\":\"operator:uid=0\",\"agent\":\"bob\",\"response\":\"quarantine\"}");
    base(o, 6003, 1);
    assert_int_equal(num(o, "severity_id"), 4);
    json_decref(o);
    o = map("{\"seq\":7,\"ts\":\"2026-12-03T18:00:00.000Z\",\"event\":"
            "\"admin.signal_source_removed\",\"actor\":\"operator:uid=0\"}");
    base(o, 6003, 4);
    json_decref(o);
    o = map("{\"seq\":8,\"ts\":\"2026-12-03T18:00:00.000Z\",\"event\":\"admin.agent_added\","
            "\"actor\":\"operator:uid=0\"}");
    base(o, 6003, 1);
    json_decref(o);
    o = map("{\"seq\":9,\"ts\":\"2026-12-03T18:00:00.000Z\",\"event\":\"audit.checkpoint\","
            "\"actor\":\"broker\",\"from\":1,\"to\":8,\"jws\":\"x.y.z\"}");
    base(o, 6003, 99);
    assert_string_equal(text(o, "actor.app_name"), "ztb-broker");
    assert_string_equal(text(o, "unmapped.jws"), "x.y.z");
    json_decref(o);
}

static void test_not_a_record(void **state)
{
    (void)state;
    assert_null(map("{\"ts\":\"2026-12-03T18:00:00.000Z\",\"event\":\"token.issued\"}"));
    assert_null(map("{\"seq\":1}"));
    assert_null(map("[1]"));
    /* a bad ts: no time, the rest still mapped */
    json_t *o = map("{\"seq\":1,\"ts\":\"yesterday\",\"event\":\"x.y\"}");
    assert_non_null(o);
    assert_null(json_object_get(o, "time"));
    json_decref(o);
}

static void test_time(void **state)
{
    (void)state;
    assert_int_equal(audit_ocsf_time_ms("1970-01-01T00:00:00.000Z"), 0);
    assert_int_equal(audit_ocsf_time_ms("1970-01-01T00:00:01.001Z"), 1001);
    assert_int_equal(audit_ocsf_time_ms("2026-12-03T18:00:01.250Z"), 1796320801250LL);
    assert_int_equal(audit_ocsf_time_ms("2026-12-03T18:00:01Z"), -1);
    assert_int_equal(audit_ocsf_time_ms("2026-12-03T18:00:01.250Zjunk"), -1);
    assert_int_equal(audit_ocsf_time_ms(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_issued),
        cmocka_unit_test(test_denied_is_a_failure),
        cmocka_unit_test(test_sessions_and_identities),
        cmocka_unit_test(test_signal_is_a_finding),
        cmocka_unit_test(test_everything_else_is_api_activity),
        cmocka_unit_test(test_not_a_record),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
