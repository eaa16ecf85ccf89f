/*
 * test_broker_lifecycle.c - the daemon itself: start with a private Redis or
 * an external one, health and readiness, limits on bad requests, Redis loss
 * and recovery without a restart, configuration errors, SIGTERM.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void test_private_redis_healthy(void **state)
{
    (void)state;
    struct zh_broker b;
    struct zh_broker_opts o = {.with_keys = 1};
    zh_broker_start(&b, &o);
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    zh_resp_free(&r);

    assert_int_equal(zh_get(&b, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"redis\":\"ok\""));
    zh_resp_free(&r);

    /* the private redis lives in the state dir, on a unix socket, with AOF */
    char path[400];
    struct stat st;
    snprintf(path, sizeof(path), "%s/redis/redis.sock", b.state);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    snprintf(path, sizeof(path), "%s/redis/appendonlydir", b.state);
    assert_int_equal(stat(path, &st), 0);

    /* admin socket exists, 0600, and answers */
    assert_int_equal(stat(b.admin_sock, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(zh_admin(&b, "GET", "/healthz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);

    /* metrics count what we did */
    assert_int_equal(zh_get(&b, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(
        r.body, "ztb_http_requests_total{server=\"api\",endpoint=\"healthz\",code=\"200\"}"));
    assert_non_null(strstr(r.body, "ztb_redis_up 1"));
    zh_resp_free(&r);

    /* an idle keep-alive connection (a gateway's pool) does not hold the
     * drain: SIGTERM stops the broker at once, not after its timeout */
    int ka = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(b.port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    assert_int_equal(connect(ka, (struct sockaddr *)&to, sizeof(to)), 0);
    static const char get[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_int_equal(send(ka, get, sizeof(get) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(get) - 1));
    char answer[512];
    assert_true(recv(ka, answer, sizeof(answer), 0) > 12);
    assert_int_equal(strncmp(answer, "HTTP/1.1 200", 12), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(zh_broker_stop(&b), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (took > 3.0)
        fail_msg("SIGTERM with an idle keep-alive connection open took %.1f s", took);
    close(ka);
    /* SIGTERM stopped the private redis too: its socket no longer answers */
    redisContext *c = redisConnectUnix(path);
    snprintf(path, sizeof(path), "%s/redis/redis.sock", b.state);
    redisFree(c);
    c = redisConnectUnix(path);
    assert_true(c == NULL || c->err != 0);
    if (c != NULL)
        redisFree(c);
    zh_rmtree(b.dir);
}

/*
 * A crash, then an immediate restart on the same state directory: the old
 * private Redis (told to stop by the kernel when its broker died) must not
 * outlive the start of the new one. It used to finish its shutdown save
 * after the new Redis had started and delete the new one's socket on its
 * way out, and the restarted broker then stayed down.
 */
static void test_crash_and_immediate_restart(void **state)
{
    (void)state;
    struct zh_broker b;
    struct zh_broker_opts o = {.with_keys = 1};
    zh_broker_start(&b, &o);
    /* enough data that the old Redis's shutdown save takes a while */
    char sock[400];
    snprintf(sock, sizeof(sock), "%s/redis/redis.sock", b.state);
    redisContext *c = redisConnectUnix(sock);
    assert_true(c != NULL && c->err == 0);
    static char big[100000];
    memset(big, 'x', sizeof(big) - 1);
    for (int i = 0; i < 800; i++)
        redisAppendCommand(c, "SET filler:%d %s", i, big);
    for (int i = 0; i < 800; i++) {
        void *r = NULL;
        assert_int_equal(redisGetReply(c, &r), REDIS_OK);
        freeReplyObject(r);
    }
    redisFree(c);

    kill(b.pid, SIGKILL);
    waitpid(b.pid, NULL, 0);
    struct zh_broker again;
    struct zh_broker_opts o2 = {.state_dir = b.state};
    zh_broker_start(&again, &o2);
    /* give a lingering old Redis time to finish and clean up */
    struct timespec pause = {.tv_sec = 3};
    nanosleep(&pause, NULL);
    struct stat st;
    if (stat(sock, &st) != 0 || !S_ISSOCK(st.st_mode))
        fail_msg("the restarted broker's Redis socket %s is gone", sock);
    c = redisConnectUnix(sock);
    assert_true(c != NULL && c->err == 0);
    redisReply *r = redisCommand(c, "EXISTS filler:799");
    assert_non_null(r);
    assert_int_equal(r->integer, 1); /* the data survived the crash (AOF) */
    freeReplyObject(r);
    redisFree(c);
    /* serving within seconds (the AOF is loaded; a busy machine may take a
     * readiness probe or two longer) */
    if (zh_wait_ready(&again, 10000) < 0) {
        zh_broker_dump_log(&again);
        fail_msg("the restarted broker is not ready");
    }
    assert_int_equal(zh_broker_stop(&again), 0);
    zh_rmtree(again.dir);
    zh_rmtree(b.dir);
}

static void test_bad_requests_get_clear_errors(void **state)
{
    (void)state;
    struct zh_broker b;
    zh_broker_start(&b, NULL);
    struct zh_resp r;

    assert_int_equal(zh_get(&b, "/no/such/thing", &r), 0);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "\"error\":\"not_found\""));
    zh_resp_free(&r);

    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", b.url);
    assert_int_equal(zh_http("DELETE", url, NULL, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 405);
    zh_resp_free(&r);

    /* a body over the 16 KiB default: 413, and the daemon keeps serving */
    size_t big = 64 * 1024;
    char *body = malloc(big);
    memset(body, 'a', big);
    assert_int_equal(zh_http("POST", url, NULL, "application/octet-stream", body, big, NULL, &r),
                     0);
    assert_int_equal(r.status, 413);
    zh_resp_free(&r);
    free(body);

    /* a 64 KiB header block: refused, and the daemon keeps serving */
    char *big_hdr = malloc(70000);
    strcpy(big_hdr, "X-Padding: ");
    memset(big_hdr + 11, 'h', 65536);
    big_hdr[11 + 65536] = '\0';
    const char *hdrs[] = {big_hdr, NULL};
    long status = zh_http("GET", url, NULL, NULL, NULL, 0, hdrs, &r) == 0 ? r.status : 0;
    assert_true(status == 0 || status == 413 || status == 431 || status == 400);
    zh_resp_free(&r);
    free(big_hdr);

    assert_int_equal(zh_get(&b, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
}

/* Redis goes away: readyz says so (503 + Retry-After); it comes back: ready
 * again with no broker restart. */
static void test_external_redis_loss_and_recovery(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    struct zh_broker_opts o = {.redis_url = rd.url, .with_keys = 1};
    struct zh_broker b;
    zh_broker_start(&b, &o);
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    /* nothing of the private kind was started */
    char path[400];
    struct stat st;
    snprintf(path, sizeof(path), "%s/redis", b.state);
    assert_int_not_equal(stat(path, &st), 0);

    zh_redis_kill(&rd);
    for (int i = 0; i < 3; i++) { /* every try fails closed, quickly */
        assert_int_equal(zh_get(&b, "/readyz", &r), 0);
        assert_int_equal(r.status, 503);
        char v[32];
        assert_non_null(zh_resp_header(&r, "Retry-After", v, sizeof(v)));
        assert_non_null(strstr(r.body, "\"redis\":\"unavailable\""));
        zh_resp_free(&r);
    }
    assert_int_equal(zh_get(&b, "/healthz", &r), 0);
    assert_int_equal(r.status, 200); /* alive, just not ready */
    zh_resp_free(&r);

    zh_redis_restart(&rd);
    int ready = 0;
    for (int i = 0; i < 100 && !ready; i++) { /* backoff is at most 1 s */
        assert_int_equal(zh_get(&b, "/readyz", &r), 0);
        ready = r.status == 200;
        zh_resp_free(&r);
        if (!ready)
            usleep(50000);
    }
    assert_true(ready);
    assert_int_equal(zh_get(&b, "/metrics", &r), 0);
    assert_null(strstr(r.body, "ztb_redis_errors_total{kind=\"connection\"} 0\n"));
    zh_resp_free(&r);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
}

/* Without a key store the broker serves health but is not ready to issue. */
static void test_not_ready_without_keys(void **state)
{
    (void)state;
    struct zh_broker b;
    zh_broker_start(&b, NULL);
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"signing_key\":\"missing\""));
    zh_resp_free(&r);
    assert_int_equal(zh_get(&b, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
}

static void test_config_errors_and_help(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    const char *help[] = {zh_bin("ztb-broker"), "--help", NULL};
    assert_int_equal(zh_run(help, &out, &err), 0);
    assert_non_null(strstr(out, "--redis URL"));
    assert_non_null(strstr(out, "--state-dir DIR"));
    assert_non_null(strstr(out, "SIGTERM"));
    free(out);
    free(err);

    const char *bad[] = {zh_bin("ztb-broker"), "--listen", "nowhere", NULL};
    assert_int_equal(zh_run(bad, &out, &err), 2);
    assert_non_null(strstr(err, "listen: expected HOST:PORT"));
    free(out);
    free(err);

    /* on the network without an issuer, every token's iss would be
     * http://0.0.0.0:PORT: refused before anything starts, naming the fix */
    const char *net[] = {zh_bin("ztb-broker"), "--listen", "0.0.0.0:0", NULL};
    assert_int_equal(zh_run(net, &out, &err), 2);
    assert_non_null(strstr(err, "not loopback"));
    assert_non_null(strstr(err, "--issuer"));
    free(out);
    free(err);

    const char *unk[] = {zh_bin("ztb-broker"), "--frobnicate", "1", NULL};
    assert_int_equal(zh_run(unk, &out, &err), 2);
    assert_non_null(strstr(err, "unknown option"));
    free(out);
    free(err);

    char dir[256], conf[300];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(conf, sizeof(conf), "%s/broker.conf", dir);
    FILE *f = fopen(conf, "w");
    fprintf(f, "# comment\nthreads = 2\nmax_body = lots\n");
    fclose(f);
    const char *badconf[] = {zh_bin("ztb-broker"), "--config", conf, NULL};
    assert_int_equal(zh_run(badconf, &out, &err), 2);
    assert_non_null(strstr(err, "broker.conf:3: max_body"));
    free(out);
    free(err);

    char st_dir[320]; /* a new one: the broker hands over only an empty state dir */
    snprintf(st_dir, sizeof(st_dir), "%s/state", dir);
    const char *badredis[] = {
        zh_bin("ztb-broker"), "--redis",     "http://x", "--state-dir", st_dir,
        "--listen",           "127.0.0.1:0", "--user",   "nobody",      NULL};
    assert_int_equal(zh_run(badredis, &out, &err), 1);
    assert_non_null(strstr(err, "redis: expected"));
    free(out);
    free(err);
    zh_rmtree(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_private_redis_healthy),
        cmocka_unit_test(test_crash_and_immediate_restart),
        cmocka_unit_test(test_bad_requests_get_clear_errors),
        cmocka_unit_test(test_external_redis_loss_and_recovery),
        cmocka_unit_test(test_not_ready_without_keys),
        cmocka_unit_test(test_config_errors_and_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
