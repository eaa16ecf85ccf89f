/*
 * test_ssf_stream.c - an SSF stream's requests, record and configuration
 * (ssf_stream.c): what a receiver may set and what it may not, push URL
 * checks, the authorization value kept out of what a receiver reads, and
 * the record read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/ssf/ssf_stream.h"
#include "common/secret.h"

#define CAEP_REVOKED "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
#define PUSH         "\"delivery\":{\"method\":\"urn:ietf:rfc:8935\",\"endpoint_url\":"

static void fresh(struct ssf_stream *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "ssf_AAAAAAAAAAAAAAAAAAAAAA");
    snprintf(s->owner, sizeof(s->owner), "rx-1");
    snprintf(s->aud, sizeof(s->aud), "spiffe://ztb.local/agent/rx-1");
    s->created = 1700000000;
}

static ztb_err apply(struct ssf_stream *s, const char *body, enum ssf_stream_op op, char *why)
{
    return ssf_stream_apply_text(s, body, strlen(body), op, why, 300);
}

static void test_create(void **state)
{
    (void)state;
    struct ssf_stream s;
    fresh(&s);
    char why[300];
    const char *body =
        "{" PUSH "\"https://rx.example/ssf\",\"authorization_header\":\"Bearer x1\"},"
        "\"events_requested\":[\"" CAEP_REVOKED "\",\"urn:example:other\"],"
        "\"description\":\"gw\"}";
    assert_int_equal(apply(&s, body, SSF_OP_CREATE, why), ZTB_OK);
    assert_string_equal(s.url, "https://rx.example/ssf");
    assert_string_equal(s.authorization, "Bearer x1");
    assert_int_equal(s.events, SSF_EV_SESSION_REVOKED); /* the unknown one is not delivered */
    assert_string_equal(s.description, "gw");

    /* the configuration shown never carries the authorization value */
    json_t *c = ssf_stream_config_json(&s, "https://broker.example", 10);
    char *text = json_dumps(c, 0);
    assert_null(strstr(text, "Bearer x1"));
    assert_non_null(strstr(text, "\"stream_id\": \"ssf_AAAAAAAAAAAAAAAAAAAAAA\""));
    assert_string_equal(json_string_value(json_object_get(c, "aud")), s.aud);
    assert_int_equal(json_array_size(json_object_get(c, "events_delivered")), 1);
    free(text);
    json_decref(c);

    /* the record keeps everything, and reads back */
    char *rec = ssf_stream_record(&s);
    assert_non_null(rec);
    struct ssf_stream t;
    assert_int_equal(ssf_stream_from_record(rec, strlen(rec), &t), ZTB_OK);
    assert_string_equal(t.authorization, "Bearer x1");
    assert_string_equal(t.owner, "rx-1");
    assert_string_equal(t.url, s.url);
    assert_int_equal(t.events, s.events);
    assert_int_equal(t.status, SSF_STREAM_ENABLED);
    assert_int_equal(t.created, 1700000000);
    ssf_stream_clear(&t);
    ztb_free_secret_str(rec);
    ssf_stream_clear(&s);
}

static void test_refusals(void **state)
{
    (void)state;
    struct ssf_stream s;
    fresh(&s);
    char why[300];
    const char *bad[] = {
        "[]",
        "{}",                                                   /* no delivery */
        "{\"owner\":\"rx-2\"," PUSH "\"https://a.example/\"}}", /* not a member */
        "{\"delivery\":{\"method\":\"urn:ietf:rfc:8936\",\"endpoint_url\":\"https://a.example/\"}}",
        "{" PUSH "\"http://10.0.0.1/x\"}}",
        "{" PUSH "\"ftp://127.0.0.1/x\"}}",
        "{" PUSH "\"https://user@a.example/x\"}}",
        "{" PUSH "\"https://a.example/x#f\"}}",
        "{" PUSH "\"https://a.example/\",\"extra\":1}}",
        "{" PUSH "\"https://a.example/\",\"authorization_header\":\"a\\nb\"}}",
        "{" PUSH "\"https://a.example/\"},\"events_requested\":\"all\"}",
        "{" PUSH "\"https://a.example/\"},\"events_requested\":[1]}",
        "{" PUSH "\"https://a.example/\"},\"description\":\"a\\u0000b\"}",
        "{\"a\":1,\"a\":2}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        if (apply(&s, bad[i], SSF_OP_CREATE, why) == ZTB_OK)
            fail_msg("accepted: %s", bad[i]);
        assert_true(why[0] != '\0');
        assert_string_equal(s.url, ""); /* unchanged */
        assert_null(s.authorization);
    }
    /* http to loopback is a push URL */
    assert_int_equal(apply(&s, "{" PUSH "\"http://127.0.0.1:9/x\"}}", SSF_OP_CREATE, why), ZTB_OK);
    /* transmitter-supplied members are ignored, never taken */
    assert_int_equal(apply(&s,
                           "{\"aud\":\"spiffe://ztb.local/agent/other\",\"iss\":\"x\","
                           "\"events_delivered\":[]," PUSH "\"https://a.example/\"}}",
                           SSF_OP_CREATE, why),
                     ZTB_OK);
    assert_string_equal(s.aud, "spiffe://ztb.local/agent/rx-1");
    assert_string_equal(s.owner, "rx-1");
    ssf_stream_clear(&s);
}

static void test_update_and_replace(void **state)
{
    (void)state;
    struct ssf_stream s;
    fresh(&s);
    char why[300];
    assert_int_equal(apply(&s,
                           "{" PUSH "\"https://a.example/\",\"authorization_header\":\"Bearer k\"},"
                           "\"events_requested\":[\"" CAEP_REVOKED "\"],\"description\":\"d\"}",
                           SSF_OP_CREATE, why),
                     ZTB_OK);
    /* PATCH needs the stream's id; changes only what it names */
    assert_int_equal(apply(&s, "{\"description\":\"e\"}", SSF_OP_UPDATE, why), ZTB_ERR_MALFORMED);
    assert_int_equal(apply(&s,
                           "{\"stream_id\":\"ssf_BBBBBBBBBBBBBBBBBBBBBB\",\"description\":\"e\"}",
                           SSF_OP_UPDATE, why),
                     ZTB_ERR_MALFORMED);
    assert_int_equal(apply(&s,
                           "{\"stream_id\":\"ssf_AAAAAAAAAAAAAAAAAAAAAA\",\"description\":\"e\"}",
                           SSF_OP_UPDATE, why),
                     ZTB_OK);
    assert_string_equal(s.description, "e");
    assert_string_equal(s.authorization, "Bearer k");
    assert_int_equal(s.events, SSF_EV_SESSION_REVOKED);
    /* a failed PATCH changes nothing */
    assert_int_equal(
        apply(&s,
              "{\"stream_id\":\"ssf_AAAAAAAAAAAAAAAAAAAAAA\",\"description\":\"f\"," PUSH
              "\"http://192.0.2.1/\"}}",
              SSF_OP_UPDATE, why),
        ZTB_ERR_MALFORMED);
    assert_string_equal(s.description, "e");
    assert_string_equal(s.url, "https://a.example/");
    /* PUT replaces all a receiver sets */
    assert_int_equal(
        apply(&s, "{\"stream_id\":\"ssf_AAAAAAAAAAAAAAAAAAAAAA\"," PUSH "\"https://b.example/\"}}",
              SSF_OP_REPLACE, why),
        ZTB_OK);
    assert_string_equal(s.url, "https://b.example/");
    assert_null(s.authorization);
    assert_int_equal(s.events, 0);
    assert_string_equal(s.description, "");
    ssf_stream_clear(&s);
}

static void test_records(void **state)
{
    (void)state;
    struct ssf_stream s;
    const char *bad[] = {"", "{}", "[]", "{\"id\":1}",
                         "{\"id\":\"a\",\"owner\":\"b\",\"aud\":\"c\",\"url\":\"d\","
                         "\"description\":\"\",\"reason\":\"\",\"status\":\"on\",\"events\":1,"
                         "\"created\":1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ssf_stream_from_record(bad[i], strlen(bad[i]), &s), ZTB_ERR_MALFORMED);
    assert_int_equal(ssf_stream_status_of("paused"), SSF_STREAM_PAUSED);
    assert_int_equal(ssf_stream_status_of("Paused"), -1);
    assert_string_equal(ssf_stream_status_name(SSF_STREAM_DISABLED), "disabled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_update_and_replace),
        cmocka_unit_test(test_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
