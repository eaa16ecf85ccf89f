/*
 * test_slowloris.c - slow and silent clients do not starve the others.
 *
 * Real sockets against the real broker, started with a short connection
 * timeout and a per-IP connection limit. An attacker on 127.0.0.2 opens
 * connections that send nothing, connections that send a request header a
 * byte at a time, and then a flood of more connections. Meanwhile a normal
 * agent on 127.0.0.1 keeps getting tokens quickly. The test checks that:
 *   - the attacker holds no more than its per-IP share of connections (the
 *     flood beyond it is closed at once);
 *   - silent connections are cut after the connection timeout, and so are
 *     the slow ones once they stop sending (the timeout is an inactivity
 *     timeout; a header that never ends is bounded by the header memory
 *     limit and by the per-IP share);
 *   - the normal agent is answered quickly throughout;
 *   - afterwards the attacker's address can connect again (its slots were
 *     released) and the daemon serves and stops cleanly.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "harness.h"

#define TIMEOUT_S  3 /* --connection-timeout */
#define PER_IP     8 /* --per-ip-connection-limit */
#define N_IDLE     4
#define N_SLOW     (PER_IP - N_IDLE)
#define N_FLOOD    100
#define N_ATTACK   (N_IDLE + N_SLOW + N_FLOOD)
#define ATTACKER   "127.0.0.2"
#define DRIBBLE_MS 250

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 1000, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 1000, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"work\", \"effect\": \"allow\", \"agents\": [\"worker\"],\n"
    "   \"actions\": [\"svc:call\"], \"audiences\": [\"svc\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent worker;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A blocking TCP connection to the broker from source address src. */
static int connect_from(const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, src, &sa.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(b.port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0)
        fail_msg("connect from %s: %s", src, strerror(errno));
    return fd;
}

/* ---- the attacker ---------------------------------------------------------- */

struct victim_conn {
    int fd;
    int slow;                   /* sends its header a byte at a time */
    uint64_t opened_ms;         /* when connected */
    uint64_t last_ms;           /* last byte sent (or opened) */
    _Atomic uint64_t closed_ms; /* when the broker closed it (0: open) */
};

static struct victim_conn conns[N_ATTACK];
static _Atomic int dribbling = 1;
static _Atomic int attacking = 1;

/* Watch every attacker connection for the broker closing it; dribble bytes. */
static void *attacker(void *arg)
{
    (void)arg;
    static const char hdr[] = "X-Slow-Header: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    size_t pos[N_ATTACK] = {0};
    while (atomic_load(&attacking)) {
        struct pollfd p[N_ATTACK];
        int idx[N_ATTACK], n = 0;
        for (int i = 0; i < N_ATTACK; i++)
            if (atomic_load(&conns[i].closed_ms) == 0) {
                p[n] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN | POLLRDHUP};
                idx[n++] = i;
            }
        if (n == 0)
            break;
        int r = poll(p, (nfds_t)n, 20);
        uint64_t t = now_ms();
        for (int k = 0; r > 0 && k < n; k++) {
            if (p[k].revents == 0)
                continue;
            char buf[512];
            ssize_t got = recv(p[k].fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                atomic_store(&conns[idx[k]].closed_ms, t);
        }
        for (int i = 0; i < N_ATTACK; i++) {
            struct victim_conn *c = &conns[i];
            if (!c->slow || !atomic_load(&dribbling) || atomic_load(&c->closed_ms) != 0 ||
                t - c->last_ms < DRIBBLE_MS)
                continue;
            /* one more byte of a header that never ends */
            if (send(c->fd, hdr + pos[i] % (sizeof(hdr) - 1), 1, MSG_NOSIGNAL | MSG_DONTWAIT) ==
                1) {
                pos[i]++;
                c->last_ms = t;
            }
        }
    }
    return NULL;
}

/* ---- fixture ---------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    const char *args[] = {"--connection-timeout",
                          "3",
                          "--per-ip-connection-limit",
                          "8",
                          "--connection-limit",
                          "64",
                          NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = args};
    zh_broker_start(&b, &o);
    za_enroll(&b, &worker, "worker");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    za_free(&worker);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

/* ---- the test ---------------------------------------------------------------- */

static void test_slow_clients_do_not_starve_others(void **state)
{
    (void)state;
    /* the attacker's per-IP share: silent ones and slow-header ones */
    static const char start[] = "POST /v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (int i = 0; i < N_IDLE + N_SLOW; i++) {
        conns[i].fd = connect_from(ATTACKER);
        conns[i].slow = i >= N_IDLE;
        conns[i].opened_ms = conns[i].last_ms = now_ms();
        if (conns[i].slow)
            assert_int_equal(send(conns[i].fd, start, sizeof(start) - 1, MSG_NOSIGNAL),
                             (ssize_t)sizeof(start) - 1);
    }
    sleep_ms(500); /* let the broker accept them */
    /* then a flood beyond the share */
    uint64_t flood_at = now_ms();
    for (int i = N_IDLE + N_SLOW; i < N_ATTACK; i++) {
        conns[i].fd = connect_from(ATTACKER);
        conns[i].opened_ms = conns[i].last_ms = now_ms();
    }
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, attacker, NULL), 0);

    /* a normal agent meanwhile: every answer comes, and quickly */
    uint64_t worst = 0;
    for (int i = 0; i < 30; i++) {
        struct zh_resp r;
        uint64_t t0 = now_ms();
        long s = i % 5 == 4 ? (zh_get(&b, "/readyz", &r), r.status)
                            : za_token(&b, &worker, "svc", "svc%3Acall", &r, NULL, 0);
        uint64_t took = now_ms() - t0;
        if (s != 200)
            fail_msg("normal client: HTTP %ld %s", s, r.body);
        zh_resp_free(&r);
        worst = took > worst ? took : worst;
        sleep_ms(50);
    }
    print_message("normal client: slowest answer %llu ms\n", (unsigned long long)worst);
    assert_true(worst < 1500);

    /* the flood was refused at once; the share is still held */
    while (now_ms() - flood_at < 1500)
        sleep_ms(20);
    int flood_open = 0, share_open = 0;
    for (int i = 0; i < N_ATTACK; i++) {
        int open = atomic_load(&conns[i].closed_ms) == 0;
        if (i < N_IDLE + N_SLOW)
            share_open += open;
        else
            flood_open += open;
    }
    print_message("1.5 s after the flood: %d of %d flood connections open, %d of %d in the share\n",
                  flood_open, N_FLOOD, share_open, N_IDLE + N_SLOW);
    assert_int_equal(flood_open, 0);
    for (int i = N_IDLE + N_SLOW; i < N_ATTACK; i++)
        assert_true(atomic_load(&conns[i].closed_ms) - conns[i].opened_ms < 1500);

    /* silent connections are cut after the timeout, not before */
    uint64_t deadline = now_ms() + 15000;
    for (int i = 0; i < N_IDLE; i++) {
        while (atomic_load(&conns[i].closed_ms) == 0 && now_ms() < deadline)
            sleep_ms(20);
        uint64_t lived = atomic_load(&conns[i].closed_ms) - conns[i].opened_ms;
        print_message("silent connection %d cut after %llu ms\n", i, (unsigned long long)lived);
        assert_true(atomic_load(&conns[i].closed_ms) != 0);
        assert_true(lived >= (TIMEOUT_S - 1) * 1000u && lived < 15000);
    }
    /* the slow ones, once they stop sending */
    atomic_store(&dribbling, 0);
    uint64_t stopped = now_ms();
    deadline = stopped + 15000;
    for (int i = N_IDLE; i < N_IDLE + N_SLOW; i++) {
        while (atomic_load(&conns[i].closed_ms) == 0 && now_ms() < deadline)
            sleep_ms(20);
        assert_true(atomic_load(&conns[i].closed_ms) != 0);
        uint64_t quiet = atomic_load(&conns[i].closed_ms) - conns[i].last_ms;
        print_message("slow connection %d cut %llu ms after its last byte\n", i,
                      (unsigned long long)quiet);
        assert_true(quiet >= (TIMEOUT_S - 1) * 1000u && quiet < 15000);
    }
    atomic_store(&attacking, 0);
    pthread_join(th, NULL);
    for (int i = 0; i < N_ATTACK; i++)
        close(conns[i].fd);

    /* the attacker's address has its slots back; the daemon serves */
    int fd = connect_from(ATTACKER);
    static const char get[] =
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(get) - 1);
    char buf[256] = "";
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_true(recv(fd, buf, sizeof(buf) - 1, 0) > 12);
    assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
    close(fd);
    struct zh_resp r;
    assert_int_equal(za_token(&b, &worker, "svc", "svc%3Acall", &r, NULL, 0), 200);
    zh_resp_free(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_clients_do_not_starve_others),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
