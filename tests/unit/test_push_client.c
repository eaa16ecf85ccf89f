/*
 * test_push_client.c - broker/http/push_client.c: which URLs it accepts
 * (http:// only to loopback unless allowed, no user information), the
 * back-off's bounds, and delivery to a real local socket: a 2xx delivers,
 * a 503 is retried until it is accepted, a 400 is given up at once, a
 * receiver that never answers times out and is retried, a full queue
 * refuses, and enqueue never waits for the network.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/http/push_client.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- URLs ------------------------------------------------------------------ */

static void test_url_check(void **state)
{
    (void)state;
    char err[400];
    assert_int_equal(push_url_check("https://hooks.example.org/x/y?z=1", 0, err, sizeof(err)),
                     ZTB_OK);
    assert_int_equal(push_url_check("http://127.0.0.1:9/hook", 0, err, sizeof(err)), ZTB_OK);
    assert_int_equal(push_url_check("http://[::1]:9/hook", 0, err, sizeof(err)), ZTB_OK);
    assert_int_equal(push_url_check("http://localhost/hook", 0, err, sizeof(err)), ZTB_OK);
    /* clear text over the network: refused unless allowed */
    assert_int_equal(push_url_check("http://hooks.example.org/x", 0, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "https://"));
    assert_int_equal(push_url_check("http://10.0.0.1/x", 0, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_int_equal(push_url_check("http://127.0.0.1.example.org/x", 0, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(push_url_check("http://hooks.example.org/x", 1, err, sizeof(err)), ZTB_OK);
    /* no other scheme, no credentials in the authority, no spaces */
    assert_int_equal(push_url_check("ftp://h/x", 1, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_int_equal(push_url_check("file:///etc/passwd", 1, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(push_url_check("https://u:p@h/x", 1, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_int_equal(push_url_check("https://h/x y", 1, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_int_equal(push_url_check("https:///x", 1, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_int_equal(push_url_check("https://h/x#f", 1, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_int_equal(push_url_check("", 1, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    /* the origin shown in logs keeps the path (a secret) out */
    char o[128];
    push_url_origin("https://hooks.example.org/services/T0/B0/SECRET", o, sizeof(o));
    assert_string_equal(o, "https://hooks.example.org");
}

static void test_backoff(void **state)
{
    (void)state;
    /* half fixed, half random, doubling to the cap */
    assert_int_equal(push_backoff_ms(1, 500, 60000, 0), 250);
    assert_int_equal(push_backoff_ms(1, 500, 60000, 250), 500);
    assert_int_equal(push_backoff_ms(1, 500, 60000, 251), 250); /* modulo, never over */
    assert_int_equal(push_backoff_ms(3, 500, 60000, 0), 1000);
    assert_int_equal(push_backoff_ms(3, 500, 60000, 1000), 2000);
    assert_int_equal(push_backoff_ms(40, 500, 60000, 0), 30000);
    assert_int_equal(push_backoff_ms(40, 500, 60000, 30000), 60000);
    for (uint32_t r = 0; r < 5000; r += 7) {
        uint64_t d = push_backoff_ms(5, 500, 60000, r * 2654435761u);
        assert_true(d >= 4000 && d <= 8000);
    }
}

/* ---- a receiver -------------------------------------------------------------- */

/* A one-thread HTTP receiver on 127.0.0.1: answers the statuses in
 * script[] in turn (then 200), or never answers while hang is set. */
struct receiver {
    int fd;
    uint16_t port;
    pthread_t t;
    int script[8];
    size_t nscript;
    _Atomic int requests;
    _Atomic int delivered;
    _Atomic int hang;
    _Atomic int stop;
    char last_body[256];
    char last_hdrs[2048];
};

static void *serve(void *arg)
{
    struct receiver *r = arg;
    while (!atomic_load(&r->stop)) {
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[8192];
        size_t n = 0;
        for (;;) { /* headers, then Content-Length bytes */
            ssize_t k = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
            if (k <= 0)
                break;
            n += (size_t)k;
            buf[n] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (end == NULL)
                continue;
            const char *cl = strcasestr(buf, "Content-Length:");
            size_t want = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
            if (n >= (size_t)(end + 4 - buf) + want)
                break;
        }
        if (atomic_load(&r->stop)) {
            close(c);
            break;
        }
        int i = atomic_fetch_add(&r->requests, 1);
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            snprintf(r->last_hdrs, sizeof(r->last_hdrs), "%.*s", (int)(end - buf), buf);
            snprintf(r->last_body, sizeof(r->last_body), "%s", end + 4);
        }
        while (atomic_load(&r->hang) && !atomic_load(&r->stop))
            usleep(10000);
        int st = (size_t)i < r->nscript ? r->script[i] : 200;
        char ans[128];
        int m = snprintf(ans, sizeof(ans), "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n", st);
        (void)!send(c, ans, (size_t)m, MSG_NOSIGNAL);
        if (st >= 200 && st < 300)
            atomic_fetch_add(&r->delivered, 1);
        close(c);
    }
    return NULL;
}

static void receiver_start(struct receiver *r)
{
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(r->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(r->fd, (struct sockaddr *)&a, &al), 0);
    r->port = ntohs(a.sin_port);
    assert_int_equal(listen(r->fd, 16), 0);
    assert_int_equal(pthread_create(&r->t, NULL, serve, r), 0);
}

static void receiver_stop(struct receiver *r)
{
    atomic_store(&r->stop, 1);
    atomic_store(&r->hang, 0);
    shutdown(r->fd, SHUT_RDWR);
    close(r->fd);
    pthread_join(r->t, NULL);
}

static _Atomic int outcomes[4];

static void on_outcome(void *arg, enum push_outcome o)
{
    (void)arg;
    atomic_fetch_add(&outcomes[o], 1);
}

static ztb_err add_headers(void *arg, const void *body, size_t n, ztb_buf *h)
{
    (void)arg;
    ztb_buf_printf(h, "X-Sig: len=%zu\nX-Other: %c", n, ((const char *)body)[0]);
    return ZTB_OK;
}

static struct push_client *client(const struct receiver *r, unsigned timeout_ms, size_t qmax)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", r->port);
    const struct push_client_opts o = {.name = "test",
                                       .url = url,
                                       .timeout_ms = timeout_ms,
                                       .max_attempts = 4,
                                       .backoff_ms = 20,
                                       .backoff_max_ms = 100,
                                       .queue_max = qmax,
                                       .headers = add_headers,
                                       .outcome = on_outcome};
    struct push_client *c = NULL;
    char err[256];
    assert_int_equal(push_client_new(&o, &c, err, sizeof(err)), ZTB_OK);
    return c;
}

static void wait_for(_Atomic int *v, int want)
{
    for (int i = 0; i < 500 && atomic_load(v) < want; i++)
        usleep(10000);
    assert_int_equal(atomic_load(v), want);
}

static void reset_outcomes(void)
{
    for (int i = 0; i < 4; i++)
        atomic_store(&outcomes[i], 0);
}

static void test_delivers_and_retries(void **state)
{
    (void)state;
    reset_outcomes();
    struct receiver r = {.script = {503, 503}, .nscript = 2};
    receiver_start(&r);
    struct push_client *c = client(&r, 2000, 4);
    assert_int_equal(push_client_enqueue(c, "{\"a\":1}", 7), ZTB_OK);
    wait_for(&outcomes[PUSH_DELIVERED], 1);
    assert_int_equal(atomic_load(&r.requests), 3);
    assert_int_equal(atomic_load(&outcomes[PUSH_RETRY]), 2);
    assert_string_equal(r.last_body, "{\"a\":1}");
    assert_non_null(strstr(r.last_hdrs, "X-Sig: len=7"));
    assert_non_null(strstr(r.last_hdrs, "X-Other: {"));
    assert_non_null(strstr(r.last_hdrs, "Content-Type: application/json"));
    push_client_free(c);
    receiver_stop(&r);
}

static void test_refused_is_given_up(void **state)
{
    (void)state;
    reset_outcomes();
    struct receiver r = {.script = {400}, .nscript = 1};
    receiver_start(&r);
    struct push_client *c = client(&r, 2000, 4);
    assert_int_equal(push_client_enqueue(c, "x", 1), ZTB_OK);
    wait_for(&outcomes[PUSH_GAVE_UP], 1);
    usleep(100000);
    assert_int_equal(atomic_load(&r.requests), 1); /* no retry of a refusal */
    push_client_free(c);
    receiver_stop(&r);
}

static void test_receiver_down_then_attempts_run_out(void **state)
{
    (void)state;
    reset_outcomes();
    struct receiver r = {0};
    receiver_start(&r);
    uint16_t port = r.port;
    receiver_stop(&r); /* nothing listens there now */
    r.port = port;
    struct push_client *c = client(&r, 500, 4);
    assert_int_equal(push_client_enqueue(c, "x", 1), ZTB_OK);
    wait_for(&outcomes[PUSH_GAVE_UP], 1);
    assert_int_equal(atomic_load(&outcomes[PUSH_RETRY]), 3); /* 4 attempts */
    push_client_free(c);
}

/* A receiver that hangs: enqueue still returns at once, attempts time
 * out, a full queue refuses, and free returns within the timeout. */
static void test_hanging_receiver_never_blocks(void **state)
{
    (void)state;
    reset_outcomes();
    struct receiver r = {0};
    atomic_store(&r.hang, 1);
    receiver_start(&r);
    struct push_client *c = client(&r, 300, 3);
    uint64_t t0 = now_ms();
    for (int i = 0; i < 3; i++)
        assert_int_equal(push_client_enqueue(c, "x", 1), ZTB_OK);
    /* the one in flight keeps its place: full */
    usleep(50000);
    assert_int_equal(push_client_queued(c), 3);
    assert_int_equal(push_client_enqueue(c, "z", 1), ZTB_ERR_UNAVAILABLE);
    assert_true(now_ms() - t0 < 200);
    assert_int_equal(atomic_load(&outcomes[PUSH_DROPPED]), 1);
    wait_for(&outcomes[PUSH_RETRY], 1); /* the first attempt timed out */
    t0 = now_ms();
    push_client_free(c);
    assert_true(now_ms() - t0 < 1000);
    assert_int_equal(atomic_load(&outcomes[PUSH_DROPPED]), 4); /* + the 3 waiting at stop */
    assert_int_equal(atomic_load(&outcomes[PUSH_DELIVERED]), 0);
    receiver_stop(&r);
}

/* push_post, the one-attempt level: a refused URL, nothing listening, and
 * a real answer with its status and the start of its body. */
static void test_post_once(void **state)
{
    (void)state;
    assert_int_equal(push_client_init(), ZTB_OK);
    struct push_answer a;
    struct push_request r = {
        .url = "gopher://x/", .content_type = "text/plain", .body = "x", .body_len = 1};
    assert_int_equal(push_post(&r, &a), ZTB_ERR_INVALID_ARG);
    r.url = "https://gw.example/x\r\nHost: evil";
    assert_int_equal(push_post(&r, &a), ZTB_ERR_INVALID_ARG);
    r.url = "http://127.0.0.1:1/nothing-listens-here";
    r.timeout_ms = 2000;
    assert_int_equal(push_post(&r, &a), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(a.status, 0);
    assert_true(a.error[0] != '\0');
    assert_true(push_status_retryable(503) && push_status_retryable(429) &&
                push_status_retryable(408) && !push_status_retryable(400) &&
                !push_status_retryable(202));
}

static void test_bad_input(void **state)
{
    (void)state;
    struct push_client *c = NULL;
    char err[256];
    const struct push_client_opts o = {.url = "gopher://h/"};
    assert_int_equal(push_client_new(&o, &c, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_null(c);
    struct receiver r = {0};
    receiver_start(&r);
    c = client(&r, 500, 2);
    static char big[PUSH_BODY_MAX + 1];
    assert_int_equal(push_client_enqueue(c, big, sizeof(big)), ZTB_ERR_TOO_LARGE);
    assert_int_equal(push_client_enqueue(NULL, "x", 1), ZTB_ERR_INVALID_ARG);
    push_client_free(c);
    receiver_stop(&r);
    push_client_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_delivers_and_retries),
        cmocka_unit_test(test_refused_is_given_up),
        cmocka_unit_test(test_receiver_down_then_attempts_run_out),
        cmocka_unit_test(test_hanging_receiver_never_blocks),
        cmocka_unit_test(test_post_once),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
