/* test_health.c - healthz / readyz / metrics handlers against a real Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/signer/keys.h"
#include "broker/http/metrics.h"
#include "pki/keystore.h"
#include "harness.h"

/* The handlers get this broker as their server context (no global). */
static struct broker tb;

static void call(http_handler fn, struct http_resp *resp)
{
    struct http_req req = {.method = "GET", .path = "/", .server_ctx = &tb};
    memset(resp, 0, sizeof(*resp));
    ztb_buf_init(&resp->body, 1 << 20);
    resp->status = 200;
    fn(&req, resp);
}

static void test_ready_follows_redis_and_draining(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    char err[256];
    assert_int_equal(redis_target_parse(rd.url, 0, &tb.redis, err, sizeof(err)), ZTB_OK);
    tb.redis.timeout_ms = ZH_REDIS_TIMEOUT_MS;
    redis_client_init(&tb.redis);

    struct http_resp resp;
    call(handle_healthz, &resp);
    assert_int_equal(resp.status, 200);
    ztb_buf_free(&resp.body);

    /* no key store yet: alive, but not ready to issue */
    call(handle_readyz, &resp);
    assert_int_equal(resp.status, 503);
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "\"signing_key\":\"missing\""));
    ztb_buf_free(&resp.body);

    char dir[256], keys[300];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    ztb_keystore *ks;
    assert_int_equal(ztb_keystore_init(keys, NULL, (int64_t)time(NULL), &ks), ZTB_OK);
    ztb_keystore_close(ks);
    assert_int_equal(keys_open(keys, NULL, (int64_t)time(NULL), err, sizeof(err)), ZTB_OK);
    /* the audit log must take lines too */
    call(handle_readyz, &resp);
    assert_int_equal(resp.status, 503);
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "\"audit\":\"unwritable\""));
    ztb_buf_free(&resp.body);
    char audit_dir[300];
    snprintf(audit_dir, sizeof(audit_dir), "%s/audit", dir);
    assert_int_equal(audit_open(audit_dir, 0, err, sizeof(err)), ZTB_OK);
    call(handle_readyz, &resp);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "\"audit\":\"ok\""));
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "\"status\":\"ready\""));
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "\"signing_key\":\"ok\""));
    ztb_buf_free(&resp.body);

    atomic_store(&tb.draining, 1);
    call(handle_readyz, &resp);
    assert_int_equal(resp.status, 503);
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "\"draining\":true"));
    assert_int_equal(resp.nhdr, 1);
    assert_string_equal(resp.hdr_name[0], "Retry-After");
    ztb_buf_free(&resp.body);
    atomic_store(&tb.draining, 0);

    zh_redis_kill(&rd);
    call(handle_readyz, &resp);
    assert_int_equal(resp.status, 503);
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "\"redis\":\"unavailable\""));
    ztb_buf_free(&resp.body);
    call(handle_healthz, &resp); /* alive all the same */
    assert_int_equal(resp.status, 200);
    ztb_buf_free(&resp.body);

    call(handle_metrics, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "text/plain; version=0.0.4");
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "ztb_redis_up 0\n"));
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "ztb_audit_writable 1\n"));
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "ztb_audit_pending_records 0\n"));
    ztb_buf_free(&resp.body);
    audit_close();
    call(handle_metrics, &resp);
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "ztb_audit_writable 0\n"));
    ztb_buf_free(&resp.body);
    keys_close();
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
    zh_rmtree(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the broker blocks it; so does this test */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_follows_redis_and_draining),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
