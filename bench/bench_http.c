/*
 * bench_http.c - ztb-bench-http: what the broker's per-IP connection limit
 * costs.
 *
 * libmicrohttpd checks per_ip_connection_limit once per accepted connection
 * (and releases it once per close); requests on a kept-alive connection never
 * touch it. So the costliest case is a new connection for every request: this
 * program runs the broker's HTTP server (broker/http/http.c, a route answering
 * `{}`) and client threads that each connect, send one GET with
 * `Connection: close`, read the answer and close, in rounds alternating the
 * limit off (0) and on (128, the default). It prints the median
 * connections/s of each and their ratio.
 *
 * Usage: ztb-bench-http [--rounds N] [--seconds S] [--clients N]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "broker/http/http.h"
#include "common/log.h"

#define MAX_CLIENTS 64
#define MAX_ROUNDS  32

static void answer(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    http_resp_json(resp, 200, "{}");
}

static const struct http_route routes[] = {{"GET", "/x", answer, "x"}};

static uint16_t g_port;
static atomic_long g_done;
static atomic_int g_stop;

/* One client: a connection per request until told to stop. */
static void *client(void *arg)
{
    (void)arg;
    static const char rq[] = "GET /x HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    char buf[1024];
    while (!atomic_load(&g_stop)) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            continue;
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(g_port)};
        inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        /* reset on close: no TIME_WAIT pile-up exhausting the local ports */
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        if (connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0 &&
            send(fd, rq, sizeof(rq) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(rq) - 1) {
            while (recv(fd, buf, sizeof(buf), 0) > 0)
                ;
            atomic_fetch_add(&g_done, 1);
        }
        close(fd);
    }
    return NULL;
}

/* One timed run with the given per-IP limit: connections per second. */
static double run(unsigned per_ip, unsigned clients, double seconds)
{
    int fd;
    char err[256];
    g_port = 0;
    if (http_listen_tcp("127.0.0.1", 0, &fd, &g_port, err, sizeof(err)) != ZTB_OK) {
        fprintf(stderr, "ztb-bench-http: %s\n", err);
        exit(1);
    }
    struct http_limits lim = {.max_body = 1024,
                              .threads = 2,
                              .connection_limit = 4096,
                              .per_ip_connection_limit = per_ip,
                              .connection_timeout_s = 5};
    struct http_server *s = http_server_start("bench", fd, routes, 1, &lim, NULL);
    if (s == NULL)
        exit(1);
    atomic_store(&g_done, 0);
    atomic_store(&g_stop, 0);
    pthread_t th[MAX_CLIENTS];
    for (unsigned i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, client, NULL);
    usleep(300000); /* warm-up */
    long d0 = atomic_load(&g_done);
    double t0 = bench_now_s();
    usleep((useconds_t)(seconds * 1e6));
    long d1 = atomic_load(&g_done);
    double t1 = bench_now_s();
    atomic_store(&g_stop, 1);
    for (unsigned i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    http_server_stop(s);
    return (double)(d1 - d0) / (t1 - t0);
}

int main(int argc, char **argv)
{
    unsigned rounds = 3, clients = 4;
    double seconds = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--clients") == 0)
            clients = (unsigned)atoi(argv[i + 1]);
    }
    if (argc % 2 == 0 || rounds < 1 || rounds > MAX_ROUNDS || clients < 1 ||
        clients > MAX_CLIENTS || seconds <= 0) {
        fprintf(stderr, "usage: ztb-bench-http [--rounds 1-%d] [--seconds S] [--clients 1-%d]\n",
                MAX_ROUNDS, MAX_CLIENTS);
        return 2;
    }
    ztb_log_set_level(ZTB_LOG_ERROR);
    double off[MAX_ROUNDS], on[MAX_ROUNDS];
    for (unsigned r = 0; r < rounds; r++) {
        off[r] = run(0, clients, seconds);
        on[r] = run(128, clients, seconds);
        bench_note("round %u: %.0f connections/s with the per-IP limit off, %.0f with 128", r + 1,
                   off[r], on[r]);
    }
    double moff = bench_median(off, rounds), mon = bench_median(on, rounds);
    bench_metric("connections_per_s_per_ip_off", moff);
    bench_metric("connections_per_s_per_ip_128", mon);
    bench_metric("ratio_on_to_off", mon / moff);
    return 0;
}
