/*
 * test_ssf_transmit.c - the SETs ztb sends: one event per response, with the
 * event type URI and the RFC 9493 / SSF subject documented for it, and a
 * transmitter that was never started does nothing when told of a
 * revocation, and receivers' verification requests cannot take the room
 * in the delivery queue that revocations need.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/http/metrics.h"
#include "broker/ssf/ssf.h"
#include "broker/ssf/ssf_transmit.h"

static json_t *set_of(policy_response_kind r, const char *target, const char *cause)
{
    char *text = ssf_set_claims("https://broker.example", "ztb.local", "https://gw.test", r, target,
                                cause, 1767225600, "jti-1");
    assert_non_null(text);
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "iss")), "https://broker.example");
    assert_string_equal(json_string_value(json_object_get(j, "aud")), "https://gw.test");
    assert_string_equal(json_string_value(json_object_get(j, "jti")), "jti-1");
    assert_int_equal(json_integer_value(json_object_get(j, "iat")), 1767225600);
    assert_int_equal(json_object_size(json_object_get(j, "events")), 1);
    return j;
}

static json_t *event_of(json_t *set, const char *uri)
{
    json_t *e = json_object_get(json_object_get(set, "events"), uri);
    if (e == NULL)
        fail_msg("no event %s", uri);
    return e;
}

static void test_events(void **state)
{
    (void)state;
    json_t *j = set_of(POLICY_RESPONSE_REVOKE_ALL, "billing-bot", "operator");
    json_t *e = event_of(j, SSF_EVENT_SESSION_REVOKED);
    assert_string_equal(json_string_value(json_object_get(e, "initiating_entity")), "admin");
    assert_int_equal(json_integer_value(json_object_get(e, "event_timestamp")), 1767225600);
    assert_non_null(json_object_get(json_object_get(e, "reason_admin"), "en"));
    json_t *sub = json_object_get(j, "sub_id");
    assert_string_equal(json_string_value(json_object_get(sub, "format")), "uri");
    assert_string_equal(json_string_value(json_object_get(sub, "uri")),
                        "spiffe://ztb.local/agent/billing-bot");
    json_decref(j);

    j = set_of(POLICY_RESPONSE_REVOKE_TOKEN, "kq3x9Jd0xV2aR8yQ1sLm7g", "signal");
    e = event_of(j, SSF_EVENT_SESSION_REVOKED);
    assert_string_equal(json_string_value(json_object_get(e, "initiating_entity")), "policy");
    sub = json_object_get(j, "sub_id");
    assert_string_equal(json_string_value(json_object_get(sub, "format")), "jwt_id");
    assert_string_equal(json_string_value(json_object_get(sub, "iss")), "https://broker.example");
    assert_string_equal(json_string_value(json_object_get(sub, "jti")), "kq3x9Jd0xV2aR8yQ1sLm7g");
    json_decref(j);

    j = set_of(POLICY_RESPONSE_QUARANTINE, "billing-bot", NULL);
    event_of(j, SSF_EVENT_QUARANTINED);
    json_decref(j);
    j = set_of(POLICY_RESPONSE_REQUIRE_APPROVAL, "billing-bot", "signal");
    event_of(j, SSF_EVENT_APPROVAL_REQUIRED);
    json_decref(j);
    j = set_of(POLICY_RESPONSE_KILL_AUDIENCE, "payments", "operator");
    event_of(j, SSF_EVENT_AUDIENCE_KILLED);
    sub = json_object_get(j, "sub_id");
    assert_string_equal(json_string_value(json_object_get(sub, "format")), "opaque");
    assert_string_equal(json_string_value(json_object_get(sub, "id")), "payments");
    json_decref(j);
    j = set_of(POLICY_RESPONSE_TAINT_KEY, "kid-1", "operator");
    event_of(j, SSF_EVENT_KEY_TAINTED);
    json_decref(j);
}

static void test_refusals(void **state)
{
    (void)state;
    /* an agent name that cannot be a SPIFFE ID path segment */
    assert_null(ssf_set_claims("https://b", "ztb.local", "a", POLICY_RESPONSE_REVOKE_ALL,
                               "bad/name", NULL, 1, "j"));
    assert_null(
        ssf_set_claims(NULL, "ztb.local", "a", POLICY_RESPONSE_REVOKE_ALL, "x", NULL, 1, "j"));
    assert_null(
        ssf_set_claims("https://b", "ztb.local", "a", (policy_response_kind)99, "x", NULL, 1, "j"));
    assert_int_equal(ssf_event_for_response((policy_response_kind)99), 0);
    assert_int_equal(ssf_event_for_response(POLICY_RESPONSE_REVOKE_TOKEN), SSF_EV_SESSION_REVOKED);
}

static void test_verification(void **state)
{
    (void)state;
    char *c = ssf_verification_claims("https://b", "spiffe://ztb.local/agent/rx", "ssf_X", "s-1",
                                      1700000000, "j1");
    json_t *j = json_loads(c, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "aud")),
                        "spiffe://ztb.local/agent/rx");
    json_t *sub = json_object_get(j, "sub_id");
    assert_string_equal(json_string_value(json_object_get(sub, "format")), "opaque");
    assert_string_equal(json_string_value(json_object_get(sub, "id")), "ssf_X");
    json_t *ev = json_object_get(json_object_get(j, "events"), SSF_EVENT_VERIFICATION);
    assert_string_equal(json_string_value(json_object_get(ev, "state")), "s-1");
    json_decref(j);
    free(c);
    /* no state: an empty event */
    c = ssf_verification_claims("https://b", "a", "ssf_X", NULL, 1, "j2");
    assert_non_null(strstr(c, "/verification\":{}"));
    free(c);
    assert_null(ssf_verification_claims("https://b", NULL, "ssf_X", NULL, 1, "j2"));
    /* nothing runs: a verification cannot be queued */
    assert_int_equal(ssf_transmit_verification("ssf_AAAAAAAAAAAAAAAAAAAAAA", "s"),
                     ZTB_ERR_UNAVAILABLE);
    assert_int_equal(ssf_transmit_verification("bad id", "s"), ZTB_ERR_INVALID_ARG);
}

/* A receiver chooses when verification SETs are sent (one per stream per
 * interval, and a stream deleted and made again is a new stream), so the
 * verifications it asks for must not fill the delivery queue: a revocation
 * that comes after them is still queued for the operator's receiver and for
 * the streams, not dropped as "queue full". (No Redis and no signer here:
 * every delivery fails and waits for its retry, so the queue only fills.) */
static void test_verifications_leave_room(void **state)
{
    (void)state;
    const char *text = "{\"receivers\": [{\"name\": \"gw\", "
                       "\"endpoint_url\": \"http://127.0.0.1:1/ssf\"}],"
                       " \"streams\": {\"push_hosts\": [\"127.0.0.1\"]}}";
    struct ssf_config *c = NULL;
    char why[300];
    assert_int_equal(ssf_config_parse(text, strlen(text), "https://b", &c, why, sizeof(why)),
                     ZTB_OK);
    assert_int_equal(ssf_transmit_start(c, "https://b", "ztb.local"), ZTB_OK);
    unsigned queued = 0;
    for (unsigned i = 0; i < SSF_QUEUE_MAX + 8; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ssf_%022u", i);
        if (ssf_transmit_verification(id, "s") == ZTB_OK)
            queued++;
    }
    uint64_t dropped = metrics_get(METRIC_SSF_PUSH_DROPPED);
    ssf_transmit_revocation(POLICY_RESPONSE_REVOKE_ALL, "billing-bot", "signal");
    uint64_t lost = metrics_get(METRIC_SSF_PUSH_DROPPED) - dropped;
    ssf_transmit_stop(); /* before any assertion: the thread reads c */
    ssf_config_free(c);
    assert_true(queued > 0);
    if (lost != 0)
        fail_msg("after %u verifications, %u deliveries of the revocation were dropped", queued,
                 (unsigned)lost);
}

static void test_not_started(void **state)
{
    (void)state;
    /* no configuration, no thread: nothing queued, nothing blocks */
    assert_int_equal(ssf_transmit_start(NULL, "https://b", "ztb.local"), ZTB_OK);
    ssf_transmit_revocation(POLICY_RESPONSE_REVOKE_ALL, "billing-bot", "operator");
    ssf_transmit_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_verification),
        cmocka_unit_test(test_not_started),
        cmocka_unit_test(test_verifications_leave_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
