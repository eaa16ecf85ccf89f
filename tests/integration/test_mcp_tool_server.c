/*
 * test_mcp_tool_server.c - examples/mcp-tool-server with the real broker
 * and Redis: an MCP-style tool server as an OAuth resource server (MCP
 * authorization 2025-06-18, RFC 9728).
 *
 * The server's audience is mcp-refunds. An agent gets a per-action token
 * (mcp:connect) and initializes and lists the tools, then a token for
 * payments:refund on orders/1234 and calls the refund tool. Without a
 * token, with a token minted for another server (audience payments, valid
 * there), or for another action or order, it is refused: 401 (or 403 for a
 * valid token of this server for another action) with WWW-Authenticate
 * naming the metadata, which the server serves.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 120, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"connect\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"mcp:connect\"], \"audiences\": [\"mcp-refunds\"], \"resources\": "
    "[\"**\"]},\n"
    "  {\"id\": \"refund\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"mcp-refunds\", \"payments\"],\n"
    "   \"resources\": [\"orders/*\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent alice;
static char dir[256], mcp_url[128], base[128], log_path[300];
static pid_t pid;

static int setup(void **state)
{
    (void)state;
    zh_tmpdir(dir, sizeof(dir));
    zh_redis_start(&rd);
    struct zh_broker_opts o = {.redis_url = rd.url, .with_keys = 1, .policy = policy_doc};
    zh_broker_start(&b, &o);
    za_enroll(&b, &alice, "alice");
    char jwks[160];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b.url);
    snprintf(log_path, sizeof(log_path), "%s/mcp.log", dir);
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out[1], 1);
        dup2(log, 2);
        close(out[0]);
        execl(zh_bin("ztb-mcp-tool-server-example"), "ztb-mcp-tool-server-example", "--issuer",
              b.url, "--audience", "mcp-refunds", "--jwks-url", jwks, "--redis", rd.url, "--listen",
              "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    if (fgets(line, sizeof(line), f) == NULL) {
        char *text = NULL;
        const char *cat[] = {"/bin/cat", log_path, NULL};
        zh_run(cat, &text, NULL);
        fail_msg("the MCP server did not start: %s", text ? text : "");
    }
    fclose(f);
    assert_int_equal(sscanf(line, "mcp-tool-server: listening on %127s", mcp_url), 1);
    snprintf(base, sizeof(base), "%.*s", (int)(strlen(mcp_url) - 4), mcp_url); /* without /mcp */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (pid > 0) {
        kill(pid, SIGTERM);
        int st = 0;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    za_free(&alice);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    zh_rmtree(dir);
    return 0;
}

static void token(const char *aud, const char *scope, char *out, size_t cap)
{
    struct zh_resp r;
    long st = za_token(&b, &alice, aud, scope, &r, out, cap);
    if (st != 200)
        fail_msg("token %s %s: %ld %s", aud, scope, st, r.body);
    zh_resp_free(&r);
}

/* POST a JSON-RPC request to /mcp with tok (NULL: none). */
static long rpc(const char *tok, const char *json, struct zh_resp *r)
{
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok ? tok : "");
    const char *h[] = {tok ? auth : NULL, NULL};
    assert_int_equal(zh_http("POST", mcp_url, NULL, "application/json", json, strlen(json), h, r),
                     0);
    return r->status;
}

static const char *metadata_url(void)
{
    static char u[200];
    snprintf(u, sizeof(u), "resource_metadata=\"%s/.well-known/oauth-protected-resource/mcp\"",
             base);
    return u;
}

static void expect_challenge(struct zh_resp *r, long status, long want, const char *error)
{
    char wa[1024];
    if (status != want)
        fail_msg("status %ld, want %ld: %s", status, want, r->body);
    assert_non_null(zh_resp_header(r, "WWW-Authenticate", wa, sizeof(wa)));
    assert_non_null(strstr(wa, metadata_url()));
    if (error != NULL)
        assert_non_null(strstr(wa, error));
    zh_resp_free(r);
}

static void test_metadata(void **state)
{
    (void)state;
    char url[200];
    snprintf(url, sizeof(url), "%s/.well-known/oauth-protected-resource/mcp", base);
    struct zh_resp r;
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = za_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "resource")), mcp_url);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "authorization_servers"), 0)), b.url);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "bearer_methods_supported"), 0)),
        "header");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(j, "dpop_signing_alg_values_supported"), 0)),
                        "ES256");
    assert_int_equal(json_array_size(json_object_get(j, "scopes_supported")), 2);
    json_decref(j);
    zh_resp_free(&r);
}

static void test_no_token(void **state)
{
    (void)state;
    struct zh_resp r;
    long st =
        rpc(NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}", &r);
    expect_challenge(&r, st, 401, "Bearer realm=\"ztb\"");
}

static void test_agent_calls_the_tool(void **state)
{
    (void)state;
    char tok[4096];
    struct zh_resp r;
    token("mcp-refunds", "mcp:connect", tok, sizeof(tok));
    assert_int_equal(rpc(tok,
                         "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                         "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{"
                         "\"name\":\"t\","
                         "\"version\":\"1\"}}}",
                         &r),
                     200);
    json_t *j = za_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "result"), "protocolVersion")),
        "2025-06-18");
    json_decref(j);
    zh_resp_free(&r);
    assert_int_equal(rpc(tok, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}", &r), 200);
    j = za_json(&r);
    json_t *tools = json_object_get(json_object_get(j, "result"), "tools");
    assert_int_equal(json_array_size(tools), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tools, 0), "name")),
                        "refund");
    json_decref(j);
    zh_resp_free(&r);
    /* the connect token does not call the tool: 403 insufficient_scope */
    const char *call = "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":"
                       "{\"name\":\"refund\",\"arguments\":{\"order_id\":\"1234\"}}}";
    expect_challenge(&r, rpc(tok, call, &r), 403, "scope=\"payments:refund\"");
    /* the per-action token does */
    token("mcp-refunds", "payments:refund&resource=orders%2F1234", tok, sizeof(tok));
    assert_int_equal(rpc(tok, call, &r), 200);
    j = za_json(&r);
    json_t *content = json_object_get(json_object_get(j, "result"), "content");
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(content, 0), "text")),
                           "refunded order 1234 for spiffe://ztb.local/agent/alice"));
    json_decref(j);
    zh_resp_free(&r);
    /* for one order only */
    const char *other = "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":"
                        "{\"name\":\"refund\",\"arguments\":{\"order_id\":\"9\"}}}";
    expect_challenge(&r, rpc(tok, other, &r), 403, "insufficient_scope");
}

/* MCP: a token minted for one server is refused at another. */
static void test_token_for_another_server(void **state)
{
    (void)state;
    char tok[4096];
    struct zh_resp r;
    token("payments", "payments:refund&resource=orders%2F1234", tok, sizeof(tok));
    const char *call = "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":"
                       "{\"name\":\"refund\",\"arguments\":{\"order_id\":\"1234\"}}}";
    long st = rpc(tok, call, &r);
    assert_non_null(strstr(r.body, "\"ztb_error\":\"AUDIENCE\""));
    expect_challenge(&r, st, 401, "error=\"invalid_token\"");
    /* garbage is refused the same way, never parsed as a request */
    st = rpc("not-a-token", call, &r);
    expect_challenge(&r, st, 401, "error=\"invalid_token\"");
}

/* ATTACK: two Authorization headers, a valid token first: which one a proxy
 * in front read is anyone's guess, so the request is refused (400), as is
 * one with two DPoP headers (RFC 9449 §4.3). */
static void test_repeated_headers(void **state)
{
    (void)state;
    char tok[4096], auth[4200];
    struct zh_resp r;
    token("mcp-refunds", "mcp:connect", tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    const char *list = "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/list\"}";
    const char *two[] = {auth, "Authorization: Basic eA==", NULL};
    assert_int_equal(
        zh_http("POST", mcp_url, NULL, "application/json", list, strlen(list), two, &r), 0);
    assert_int_equal(r.status, 400);
    assert_null(strstr(r.body, "\"result\""));
    zh_resp_free(&r);
    const char *dpop[] = {auth, "DPoP: a.b.c", "DPoP: d.e.f", NULL};
    assert_int_equal(
        zh_http("POST", mcp_url, NULL, "application/json", list, strlen(list), dpop, &r), 0);
    assert_int_equal(r.status, 400);
    zh_resp_free(&r);
    /* the token alone goes through */
    assert_int_equal(rpc(tok, list, &r), 200);
    zh_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_no_token),
        cmocka_unit_test(test_agent_calls_the_tool),
        cmocka_unit_test(test_token_for_another_server),
        cmocka_unit_test(test_repeated_headers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
