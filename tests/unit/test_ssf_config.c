/*
 * test_ssf_config.c - the SSF configuration file: a good one loads (keys,
 * subjects, receivers with their events), every problem is refused with a
 * reason, and the event type names map both ways. A file refused as too
 * large is wiped before it is released (free is wrapped at link time, see
 * broker/CMakeLists.txt): it holds receivers' authorization values.
 */
#define _GNU_SOURCE /* memmem */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* the cases are printf templates kept in tables; each is filled with the same arguments */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

#include "broker/ssf/ssf.h"
#include "common/buf.h"
#include "pki/jwk.h"
#include "pki/key.h"

static char jwks[1024];

#define SECRET_MARK "Bearer notwipedyet"

void __real_free(void *p);
void __wrap_free(void *p);

static int watching; /* 1: count blocks released with SECRET_MARK inside */
static int unwiped;

void __wrap_free(void *p)
{
    if (p != NULL && watching &&
        memmem(p, malloc_usable_size(p), SECRET_MARK, strlen(SECRET_MARK)) != NULL)
        unwiped++;
    __real_free(p);
}

static int setup(void **state)
{
    (void)state;
    ztb_key *k = NULL;
    ztb_buf b;
    ztb_buf_init(&b, 2048);
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    assert_int_equal(ztb_jwks_render((const ztb_key *const *)&k, 1, &b), ZTB_OK);
    snprintf(jwks, sizeof(jwks), "%s", ztb_buf_cstr(&b));
    ztb_buf_free(&b);
    ztb_key_free(k);
    return 0;
}

/* A configuration without the test JWKS in it. */
static ztb_err parse_plain(const char *text, struct ssf_config **c, char *why)
{
    why[0] = '\0';
    return ssf_config_parse(text, strlen(text), "https://broker.example", c, why, 300);
}

static ztb_err parse(const char *fmt, struct ssf_config **c, char *why)
{
    char text[8192];
    snprintf(text, sizeof(text), fmt, jwks);
    why[0] = '\0';
    return ssf_config_parse(text, strlen(text), "https://broker.example", c, why, 300);
}

#define TX(extra)                                                                                  \
    "{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://idp.test\",\"jwks\":%s" extra "}]}"

static void test_good(void **state)
{
    (void)state;
    struct ssf_config *c = NULL;
    char why[300];
    assert_int_equal(
        parse("{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://idp.test\",\"jwks\":%s,"
              "\"confidence\":0.7,\"subjects\":{\"email:bot@idp.test\":\"billing-bot\"}}],"
              "\"receivers\":[{\"name\":\"gw\",\"endpoint_url\":\"https://gw.test/ssf\","
              "\"authorization_header\":\"Bearer s3cret\",\"events_requested\":["
              "\"" SSF_EVENT_SESSION_REVOKED "\",\"" SSF_EVENT_AUDIENCE_KILLED "\"]},"
              "{\"name\":\"all\",\"endpoint_url\":\"http://127.0.0.1:9/x\",\"audience\":\"a\"}]}",
              &c, why),
        ZTB_OK);
    assert_int_equal(c->ntx, 1);
    const struct ssf_transmitter *t = ssf_transmitter_by_issuer(c, "https://idp.test");
    assert_non_null(t);
    assert_null(ssf_transmitter_by_issuer(c, "https://idp.test/"));
    assert_string_equal(t->audience, "https://broker.example"); /* the default: our issuer */
    assert_true(t->confidence > 0.69 && t->confidence < 0.71);
    assert_int_equal(ztb_keyset_count(t->keys), 1);
    assert_string_equal(ssf_subject_lookup(t, "email:bot@idp.test"), "billing-bot");
    assert_null(ssf_subject_lookup(t, "email:Bot@idp.test")); /* exact only */
    assert_int_equal(c->nrx, 2);
    assert_string_equal(c->rx[0].authorization, "Bearer s3cret");
    assert_string_equal(c->rx[0].audience, "https://gw.test/ssf"); /* default: the endpoint */
    assert_int_equal(c->rx[0].events, SSF_EV_SESSION_REVOKED | SSF_EV_AUDIENCE_KILLED);
    assert_int_equal(c->rx[1].events, SSF_EV_SENT); /* none named: all ztb sends */
    assert_null(c->rx[1].authorization);
    ssf_config_free(c);
    ssf_config_free(NULL);
}

static void test_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[]",
        "{\"transmiters\":[]}",
        TX(",\"audiance\":\"x\""),
        "{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://idp.test\"}]}",
        TX(",\"jwks_file\":\"/nonexistent\""),
        "{\"transmitters\":[{\"name\":\"Bad Name\",\"issuer\":\"https://idp.test\",\"jwks\":%s}]}",
        "{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"\",\"jwks\":%s}]}",
        /* the detectors' own source name: an outside transmitter's signals
         * would pass for the broker's own (audit, observe mode, stats, quorum) */
        "{\"transmitters\":[{\"name\":\"ztb-broker\",\"issuer\":\"https://idp.test\","
        "\"jwks\":%s}]}",
        TX(",\"confidence\":1.5"),
        TX(",\"subjects\":{\"nocolon\":\"billing-bot\"}"),
        TX(",\"subjects\":{\"email:x\":\"Not An Agent\"}"),
        "{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://idp.test\",\"jwks\":%s},"
        "{\"name\":\"idp2\",\"issuer\":\"https://idp.test\",\"jwks\":%s}]}",
        "{\"receivers\":[{\"name\":\"gw\",\"endpoint_url\":\"ftp://gw.test/x\"}]}",
        "{\"receivers\":[{\"name\":\"gw\",\"endpoint_url\":\"https://gw test/x\"}]}",
        "{\"receivers\":[{\"name\":\"gw\"}]}",
        "{\"receivers\":[{\"name\":\"gw\",\"endpoint_url\":\"https://gw.test/x\","
        "\"events_requested\":[\"" SSF_EVENT_CREDENTIAL_CHANGE "\"]}]}",
        "{\"receivers\":[{\"name\":\"gw\",\"endpoint_url\":\"https://gw.test/x\","
        "\"events_requested\":[\"urn:other\"]}]}",
        "{\"receivers\":[{\"name\":\"gw\",\"endpoint_url\":\"https://gw.test/x\","
        "\"authorization_header\":\"a\\nb\"}]}",
        "{\"receivers\":{}}",
        "{\"a\":1,\"a\":2}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ssf_config *c = (struct ssf_config *)1;
        char why[300];
        char fmt[2048];
        snprintf(fmt, sizeof(fmt), "%s", bad[i]);
        /* two %s for the duplicate-issuer case */
        char text[8192];
        snprintf(text, sizeof(text), fmt, jwks, jwks);
        ztb_err rv = ssf_config_parse(text, strlen(text), "https://broker.example", &c, why, 300);
        if (rv == ZTB_OK)
            fail_msg("accepted: %s", bad[i]);
        assert_null(c);
        assert_true(why[0] != '\0');
    }
}

static void test_streams(void **state)
{
    (void)state;
    struct ssf_config *c = NULL;
    char why[300];
    /* off unless named; defaults; bounds */
    assert_int_equal(parse(TX(""), &c, why), ZTB_OK);
    assert_false(c->streams.enabled);
    ssf_config_free(c);
    assert_int_not_equal(parse_plain("{\"streams\":{}}", &c, why), ZTB_OK); /* no push_hosts */
    assert_non_null(strstr(why, "push_hosts is required"));
    assert_int_equal(
        parse_plain("{\"streams\":{\"push_hosts\":[\"siem.example\",\"*.soc.example\"]}}", &c, why),
        ZTB_OK);
    assert_true(ssf_streams_push_host_ok(&c->streams, "https://SIEM.example:8443/e"));
    assert_true(ssf_streams_push_host_ok(&c->streams, "https://a.soc.example/e"));
    assert_false(ssf_streams_push_host_ok(&c->streams, "https://soc.example/e"));
    assert_false(ssf_streams_push_host_ok(&c->streams, "https://a.soc.example.evil/e"));
    assert_false(ssf_streams_push_host_ok(&c->streams, "https://siem.example.evil/e"));
    assert_false(ssf_streams_push_host_ok(&c->streams, "https://evil/siem.example"));
    assert_false(ssf_streams_push_host_ok(&c->streams, "not a url"));
    assert_true(c->streams.enabled);
    assert_string_equal(c->streams.audience, "ztb-ssf");
    assert_int_equal(c->streams.max_per_receiver, 4);
    assert_int_equal(c->streams.min_verification_interval, 10);
    ssf_config_free(c);
    assert_int_equal(parse_plain("{\"streams\":{\"audience\":\"ssf\",\"max_per_receiver\":1,"
                                 "\"max_streams\":9,\"min_verification_interval\":1,"
                                 "\"push_hosts\":[]}}",
                                 &c, why),
                     ZTB_OK);
    assert_string_equal(c->streams.audience, "ssf");
    assert_int_equal(c->streams.max_streams, 9);
    ssf_config_free(c);
    const char *bad[] = {"{\"streams\":true}",
                         "{\"streams\":{\"max_per_receiver\":0}}",
                         "{\"streams\":{\"max_streams\":100000}}",
                         "{\"streams\":{\"min_verification_interval\":\"1\"}}",
                         "{\"streams\":{\"audiance\":\"x\"}}",
                         "{\"streams\":{\"push_hosts\":\"siem.example\"}}",
                         "{\"streams\":{\"push_hosts\":[\"https://siem.example\"]}}",
                         "{\"streams\":{\"push_hosts\":[\"a.*.example\"]}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(
            strstr(bad[i], "%s") ? parse(bad[i], &c, why) : parse_plain(bad[i], &c, why), ZTB_OK);
        assert_null(c);
        assert_non_null(strstr(why, "streams"));
    }
}

static void test_jwks_uri(void **state)
{
    (void)state;
    struct ssf_config *c = NULL;
    char why[300];
    /* no fetch at parse time; the URL must be https, or http to loopback */
    assert_int_equal(parse_plain("{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://i\","
                                 "\"jwks_uri\":\"https://idp.example/jwks.json\"}]}",
                                 &c, why),
                     ZTB_OK);
    assert_non_null(c->tx[0].remote);
    assert_null(c->tx[0].keys);
    ssf_config_free(c);
    const char *bad[] = {
        "{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://i\","
        "\"jwks_uri\":\"http://192.0.2.1/jwks.json\"}]}",
        "{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://i\","
        "\"jwks_uri\":\"file:///etc/jwks\"}]}",
        "{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://i\",\"jwks_uri\":7}]}",
        "{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://i\",\"jwks\":%s,"
        "\"jwks_uri\":\"https://idp.example/jwks.json\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(
            strstr(bad[i], "%s") ? parse(bad[i], &c, why) : parse_plain(bad[i], &c, why), ZTB_OK);
        assert_null(c);
        assert_non_null(strstr(why, "jwks"));
    }
}

static void test_event_names(void **state)
{
    (void)state;
    assert_string_equal(ssf_event_uri(SSF_EV_SESSION_REVOKED),
                        "https://schemas.openid.net/secevent/caep/event-type/session-revoked");
    assert_null(ssf_event_uri(0));
    assert_null(ssf_event_uri(SSF_EV_SESSION_REVOKED | SSF_EV_QUARANTINED));
    const char *u = SSF_EVENT_KEY_TAINTED;
    assert_int_equal(ssf_event_of(u, strlen(u)), SSF_EV_KEY_TAINTED);
    assert_int_equal(ssf_event_of(u, strlen(u) - 1), 0);
    assert_int_equal(ssf_event_of("", 0), 0);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/ssf-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char text[4096];
    snprintf(text, sizeof(text), TX(""), jwks);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct ssf_config *c = NULL;
    char why[300];
    assert_int_equal(ssf_config_load(path, "https://b", &c, why, sizeof(why)), ZTB_OK);
    assert_string_equal(c->tx[0].audience, "https://b");
    ssf_config_free(c);
    /* a receiver's authorization value in a file every local user may
     * read: refused, naming the mode and the fix, never the value */
    const char *rx = "{\"receivers\":[{\"name\":\"gw\",\"endpoint_url\":"
                     "\"https://gw.test/ssf\",\"authorization_header\":\"Bearer s3cret\"}]}";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(rx, f);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(ssf_config_load(path, "https://b", &c, why, sizeof(why)), ZTB_ERR_INVALID_ARG);
    assert_null(c);
    assert_non_null(strstr(why, "mode 644"));
    assert_non_null(strstr(why, "chmod o-r"));
    assert_null(strstr(why, "s3cret"));
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(ssf_config_load(path, "https://b", &c, why, sizeof(why)), ZTB_OK);
    ssf_config_free(c);
    /* no authorization value: the mode is the operator's business */
    assert_int_equal(chmod(path, 0644), 0);
    snprintf(text, sizeof(text), TX(""), jwks);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(ssf_config_load(path, "https://b", &c, why, sizeof(why)), ZTB_OK);
    ssf_config_free(c);
    unlink(path);
    assert_int_not_equal(ssf_config_load(path, "https://b", &c, why, sizeof(why)), ZTB_OK);
    assert_non_null(strstr(why, path));
}

/* A file over the size limit is refused, and the part read is wiped: it
 * may hold a receiver's authorization value. */
static void test_too_large_file_wiped(void **state)
{
    (void)state;
    char path[] = "/tmp/ssf-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *head = "{\"receivers\": [{\"name\": \"r\", \"authorization_header\": \"" SECRET_MARK
                       "0123456789\"}], \"pad\": \"";
    size_t n = 300 * 1024;
    char *text = malloc(n);
    assert_non_null(text);
    memset(text, 'x', n);
    memcpy(text, head, strlen(head));
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    free(text);
    struct ssf_config *c = NULL;
    char why[300];
    unwiped = 0;
    watching = 1;
    ztb_err rv = ssf_config_load(path, "https://b", &c, why, sizeof(why));
    watching = 0;
    unlink(path);
    assert_int_equal(rv, ZTB_ERR_TOO_LARGE);
    assert_null(c);
    assert_int_equal(unwiped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_jwks_uri),
        cmocka_unit_test(test_event_names),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_too_large_file_wiped),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
