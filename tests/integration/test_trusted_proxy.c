/*
 * test_trusted_proxy.c - `source_ip` conditions behind a load balancer: the
 * real broker believes X-Forwarded-For only from a --trusted-proxy peer,
 * takes the rightmost hop that is not a trusted proxy, and gives no address
 * (the condition fails closed) for a malformed header. Attack: a client
 * that reaches the broker directly names an allowed address in the header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"office\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"],\n"
    "   \"conditions\": {\"source_ip\": [\"203.0.113.0/24\"]}}\n"
    " ]}\n";

/* A token request from this process (127.0.0.1) with X-Forwarded-For xff
 * (NULL: none); returns the status. */
static long token_via(const struct zh_broker *b, const struct za_agent *a, const char *xff)
{
    char form[2048], url[128], hdr[256];
    snprintf(form, sizeof(form),
             "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
             "&client_assertion_type=%s&client_assertion=%s&audience=crm&scope=crm%%3Aread",
             ZA_SESSION_TYPE, a->session);
    snprintf(url, sizeof(url), "%s/v1/token", b->url);
    snprintf(hdr, sizeof(hdr), "X-Forwarded-For: %s", xff ? xff : "");
    const char *const headers[] = {hdr, NULL};
    struct zh_resp r;
    assert_int_equal(zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form,
                             strlen(form), xff ? headers : NULL, &r),
                     0);
    long st = r.status;
    zh_resp_free(&r);
    return st;
}

static void start(struct zh_broker *b, struct za_agent *bot, const char *trusted)
{
    const char *extra[] = {"--trusted-proxy", trusted, NULL};
    struct zh_broker_opts o = {.with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(b, &o);
    za_enroll(b, bot, "bot");
}

static void stop(struct zh_broker *b, struct za_agent *bot)
{
    za_free(bot);
    assert_int_equal(zh_broker_stop(b), 0);
    zh_rmtree(b->dir);
}

/* Attack: the peer (127.0.0.1) is no trusted proxy; its header is ignored. */
static void test_untrusted_peer_cannot_claim_an_address(void **state)
{
    (void)state;
    struct zh_broker b;
    struct za_agent bot = {0};
    start(&b, &bot, "10.0.0.0/8");
    assert_int_equal(token_via(&b, &bot, "203.0.113.9"), 403);
    assert_int_equal(token_via(&b, &bot, NULL), 403);
    stop(&b, &bot);
}

static void test_behind_a_trusted_proxy(void **state)
{
    (void)state;
    struct zh_broker b;
    struct za_agent bot = {0};
    start(&b, &bot, "127.0.0.1,10.0.0.0/8");
    /* the proxy names the client */
    assert_int_equal(token_via(&b, &bot, "203.0.113.9"), 200);
    /* through a second trusted hop */
    assert_int_equal(token_via(&b, &bot, "203.0.113.9, 10.1.2.3"), 200);
    /* the client forged an allowed first hop: the proxy appended the truth */
    assert_int_equal(token_via(&b, &bot, "203.0.113.9, 198.51.100.1"), 403);
    /* malformed: no address, the condition fails closed */
    assert_int_equal(token_via(&b, &bot, "203.0.113.9:4711"), 403);
    assert_int_equal(token_via(&b, &bot, "nope"), 403);
    /* no header: the proxy itself, outside the allowed network */
    assert_int_equal(token_via(&b, &bot, NULL), 403);
    stop(&b, &bot);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untrusted_peer_cannot_claim_an_address),
        cmocka_unit_test(test_behind_a_trusted_proxy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
