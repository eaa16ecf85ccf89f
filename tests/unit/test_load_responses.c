/*
 * test_load_responses.c - strict loading of the "anomaly_responses": signals, severities,
 * responses, dual verification, ids unique in the document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "load_fixture.h"

static void test_anomaly_responses(void **state)
{
    (void)state;
#define RESP_HEAD                                                                                  \
    "{\"version\": 1, \"trust_domain\": \"example.org\", " FX_SETTINGS                             \
    ", \"rules\": [], \"anomaly_responses\": [%s]}"
    struct {
        const char *entry, *want;
    } v[] = {
        {"{\"id\": \"x\", \"signals\": [\"token_reply\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\"}",
         "\"token_reply\" looks like a typo of \"token_replay\""},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"nuke\"}",
         "response: must be one of"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"severe\", "
         "\"response\": \"quarantine\"}",
         "min_severity: must be"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\", \"window\": 60}",
         "window: only means something with independent_signals of 2"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"min_confidence\": 1.5, \"response\": \"quarantine\"}",
         "min_confidence: must be a number from 0 to 1"},
        {"{\"id\": \"x\", \"signals\": [\"Token Replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\"}",
         "a signal type is 1 to 64"},
        {"{\"id\": \"x\", \"signals\": [\"*\", \"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\"}",
         "\"*\" already means any signal"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\", \"independent_signals\": 11}",
         "independent_signals: must be an integer from 1 to 10"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\", \"agents\": [\"group:none\"]}",
         "no such group"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\", \"operator_confirmation\": \"yes\"}",
         "operator_confirmation: must be true or false"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\"}, {\"id\": \"x\", \"signals\": [\"*\"], "
         "\"min_severity\": \"low\", \"response\": \"revoke_token\"}",
         "used by anomaly_responses[0] and [1]"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char doc[4096];
        snprintf(doc, sizeof(doc), RESP_HEAD, v[i].entry);
        refuse(doc, ZTB_ERR_POLICY, v[i].want, NULL);
    }
    /* SOC-specific signal types are fine */
    char doc[4096];
    snprintf(doc, sizeof(doc), RESP_HEAD,
             "{\"id\": \"x\", \"signals\": [\"soc:impossible_travel\"], \"min_severity\": "
             "\"low\", \"response\": \"require_approval\"}");
    policy *p = fx_load(doc);
    assert_non_null(p);
    assert_int_equal(policy_response_count(p), 1);
    policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anomaly_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
