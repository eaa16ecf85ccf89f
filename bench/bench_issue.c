/*
 * bench_issue.c - per-action token issuance at saturation: POST /v1/token
 * through the real ztb-broker, its real Redis and its audit log.
 *
 * What it does:
 *   1. Unless pointed at a running broker (--broker URL --admin-socket PATH),
 *      it provisions a scratch state directory (ztbctl keys init, ztbctl ca
 *      init, a policy that allows the bench agents with generous rate
 *      limits), starts redis-server on a unix socket with its own config
 *      (AOF everysec, as the broker's private Redis) and ztb-broker on it.
 *   2. Outside the timed window it enrolls N agents (admin API join token,
 *      a CSR made here, POST /v1/enroll) and turns an RFC 7523 client
 *      assertion of each into a session credential (POST /v1/session):
 *      pre-made credentials, as an agent's SDK holds them.
 *   3. It drives POST /v1/token with those credentials over a fixed number of
 *      keep-alive connections from an epoll loop (non-blocking sockets,
 *      HTTP/1.1, one request in flight per connection, no pipelining): each
 *      answer is followed at once by the next request (closed loop, so the
 *      broker is saturated and latency is what a caller waits at that
 *      load). Request bytes are made once; a response is read only as far
 *      as its status line and Content-Length. A warm-up, then timed rounds.
 *   4. It prints tokens/s and p50/p99 latency (medians over the rounds),
 *      errors, the broker's peak RSS (VmHWM), the CPU each process used per
 *      token, and `openssl speed ecdsap256` measured in the same run.
 *
 * Every request goes the whole way: HTTP, form parse, session MAC, policy,
 * the Redis check (the issue script, or the agent read and a leased rate
 * unit: docs/redis.md "Rate leases"), ES256 signature, audit line before
 * the answer.
 * Metrics on stdout (`name: value`), progress and notes on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bench_util.h"
#include "common/base64url.h"
#include "common/buf.h"
#include "pki/csr.h"
#include "pki/jws.h"
#include "pki/key.h"

#ifndef ZTB_BIN_DIR
#define ZTB_BIN_DIR "."
#endif
#ifndef ZTB_REDIS_SERVER
#define ZTB_REDIS_SERVER "redis-server"
#endif

#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define SESSION_TYPE   "urn%3Aztb%3Aparams%3Aoauth%3Aclient-assertion-type%3Asession"
#define GRANT          "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
#define MAX_ROUNDS     64
#define RESP_BUF       16384
#define SETUP_RESP_MAX (1u << 20)

/* Latency histogram: 1 µs buckets up to 100 ms, then 1 ms buckets to 10 s. */
#define HIST_FINE   100000u
#define HIST_COARSE 9900u
#define HIST_N      (HIST_FINE + HIST_COARSE + 1u)

struct opts {
    unsigned connections, agents, rounds, client_threads;
    double seconds, warmup;
    int openssl_seconds;
    const char *broker_url; /* NULL: start our own */
    const char *admin_socket;
    int broker_pid, redis_pid; /* for RSS and CPU when pointed at running ones */
    const char *redis_server;
    const char *extra_args[32];
    unsigned nextra;
    int keep;
    int inproc_signing; /* start ztb-bench-broker-inproc: the baseline, keys in-process */
    unsigned cluster;   /* 0: one Redis; else a Cluster of this many masters */
};

static struct opts g_opt = {
    .connections = 64,
    .agents = 64,
    .rounds = 5,
    .client_threads = 1,
    .seconds = 5,
    .warmup = 3,
    .openssl_seconds = 3,
};

/* ---- small helpers ------------------------------------------------------- */

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...);

static pid_t g_broker_child = -1, g_redis_child = -1;
static char g_scratch[256];

/* The Redis servers we started: one, or each master of a Cluster (each
 * also on a unix socket, for the figures) */
#define MAX_SHARDS 6
static struct {
    char sock[400];
    int port;
    pid_t pid;
} g_shard[MAX_SHARDS];
static unsigned g_nshards;

static void stop_children(void)
{
    if (g_broker_child > 0) {
        kill(g_broker_child, SIGTERM);
        int st;
        waitpid(g_broker_child, &st, 0);
        g_broker_child = -1;
    }
    if (g_redis_child > 0) {
        kill(g_redis_child, SIGTERM);
        int st;
        waitpid(g_redis_child, &st, 0);
        g_redis_child = -1;
    }
    for (unsigned i = 1; i < g_nshards; i++) {
        if (g_shard[i].pid > 0) {
            kill(g_shard[i].pid, SIGTERM);
            int st;
            waitpid(g_shard[i].pid, &st, 0);
            g_shard[i].pid = -1;
        }
    }
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void cleanup(void)
{
    stop_children();
    if (g_scratch[0] != '\0' && !g_opt.keep)
        nftw(g_scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ztb-bench-issue: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (g_scratch[0] != '\0')
        fprintf(stderr, "ztb-bench-issue: logs are in %s (kept)\n", g_scratch);
    g_opt.keep = 1;
    cleanup();
    exit(1);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Directory of this executable: ztb-broker and ztbctl are built beside it. */
static const char *bin_path(const char *name)
{
    static char dir[PATH_MAX];
    static __thread char out[PATH_MAX + 64];
    if (dir[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
        char *slash = n > 0 ? memrchr(dir, '/', (size_t)n) : NULL;
        if (slash != NULL)
            *slash = '\0';
        else
            snprintf(dir, sizeof(dir), "%s", ZTB_BIN_DIR);
    }
    snprintf(out, sizeof(out), "%s/%s", dir, name);
    return out;
}

/* Run argv to completion, output to log_fd; returns the exit status. */
static int run(const char *const *argv, int log_fd)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (log_fd >= 0) {
            dup2(log_fd, 1);
            dup2(log_fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write %s: %s", path, strerror(errno));
    chmod(path, mode);
}

/* ---- CPU accounting ------------------------------------------------------ */

/* utime+stime of a process (all its threads) in seconds, -1 if unknown. */
static double proc_cpu_s(int pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * utime+stime of pid and of its live children (the broker's signer process
 * does the signatures: its CPU is part of a token's cost), -1 if unknown.
 * Children are read from /proc/PID/task/TID/children of every thread.
 */
static double proc_tree_cpu_s(int pid)
{
    double total = proc_cpu_s(pid);
    if (total < 0)
        return -1;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return total;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char cp[128], list[512];
        snprintf(cp, sizeof(cp), "/proc/%d/task/%.16s/children", pid, e->d_name);
        int fd = open(cp, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, list, sizeof(list) - 1);
        close(fd);
        if (n <= 0)
            continue;
        list[n] = '\0';
        char *save = NULL;
        for (char *t = strtok_r(list, " \n", &save); t != NULL; t = strtok_r(NULL, " \n", &save)) {
            double c = proc_cpu_s(atoi(t));
            if (c > 0)
                total += c;
        }
    }
    closedir(d);
    return total;
}

/* Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
static double machine_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return -1;
    unsigned long long v[8] = {0};
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got < 8)
        return -1;
    /* user nice system idle iowait irq softirq steal: busy = all but idle, iowait */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

/* ---- a blocking HTTP client for setup (not timed) ------------------------- */

struct target {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char hostport[128]; /* Host header */
};

static struct target g_api;

static void parse_url(const char *url, struct target *t)
{
    if (strncmp(url, "http://", 7) != 0)
        die("--broker: expected http://HOST:PORT, got %s", url);
    char host[128], port[16] = "80";
    const char *p = url + 7;
    const char *end = p + strcspn(p, "/");
    const char *colon = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            die("--broker: bad IPv6 literal in %s", url);
        snprintf(host, sizeof(host), "%.*s", (int)(rb - p - 1), p + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        snprintf(host, sizeof(host), "%.*s", (int)((colon ? colon : end) - p), p);
    }
    if (colon != NULL)
        snprintf(port, sizeof(port), "%.*s", (int)(end - colon - 1), colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
        die("--broker: cannot resolve %s", url);
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(t->hostport, sizeof(t->hostport), "%.*s", (int)(end - p), p);
}

static int connect_api(int nonblock)
{
    int fd = socket(g_api.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&g_api.addr, g_api.addrlen) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (nonblock)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * One request with Connection: close; the answer is read to EOF. Returns the
 * status (0 on a transport error); *body (caller frees) is the NUL-terminated
 * body.
 */
static int http_call(const char *unix_path, const char *method, const char *path, const char *ctype,
                     const char *body, char **resp_body)
{
    *resp_body = NULL;
    int fd = unix_path ? connect_unix(unix_path) : connect_api(0);
    if (fd < 0)
        return 0;
    char head[1024];
    size_t blen = body ? strlen(body) : 0;
    int hn = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                      "Content-Length: %zu\r\n%s%s%s\r\n",
                      method, path, unix_path ? "localhost" : g_api.hostport, blen,
                      ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "");
    if (hn < 0 || (size_t)hn >= sizeof(head) || send_all(fd, head, (size_t)hn) != 0 ||
        (blen > 0 && send_all(fd, body, blen) != 0)) {
        close(fd);
        return 0;
    }
    char *buf = malloc(SETUP_RESP_MAX + 1);
    if (buf == NULL)
        die("out of memory");
    size_t have = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + have, SETUP_RESP_MAX - have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        if (have == SETUP_RESP_MAX)
            break;
    }
    close(fd);
    buf[have] = '\0';
    int status = 0;
    const char *hend = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || hend == NULL) {
        free(buf);
        return 0;
    }
    size_t off = (size_t)(hend + 4 - buf);
    memmove(buf, buf + off, have - off + 1);
    *resp_body = buf;
    return status;
}

static json_t *json_of(const char *text, const char *what)
{
    json_error_t e;
    json_t *j = text ? json_loads(text, 0, &e) : NULL;
    if (!json_is_object(j))
        die("%s: answer is not a JSON object: %s", what, text ? text : "(none)");
    return j;
}

/* ---- provisioning our own Redis and broker --------------------------------- */

static const char policy_fmt[] =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000000, \"burst\": 1000000, \"period\": 1},\n"
    "                   \"per_action\": {\"rate\": 1000000, \"burst\": 1000000, \"period\": "
    "1}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"bench-issue\", \"effect\": \"allow\", \"agents\": [\"bench-*\"],\n"
    "   \"actions\": [\"bench:issue\"], \"audiences\": [\"bench\"],\n"
    "   \"resources\": [\"orders/**\"]}\n"
    " ]}\n";

static char g_redis_sock[400], g_admin_sock[320], g_audit_log[400];

static int redis_ping(const char *sock)
{
    int fd = connect_unix(sock);
    if (fd < 0)
        return 0;
    char buf[64];
    int ok = send_all(fd, "PING\r\n", 6) == 0 && recv(fd, buf, sizeof(buf), 0) >= 5 &&
             memcmp(buf, "+PONG", 5) == 0;
    close(fd);
    return ok;
}

/* A one-line integer reply to an inline command (e.g. XLEN), -1 on error. */
static long long redis_int(const char *sock, const char *cmd)
{
    int fd = connect_unix(sock);
    if (fd < 0)
        return -1;
    char buf[64];
    long long v = -1;
    if (send_all(fd, cmd, strlen(cmd)) == 0) {
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n > 1 && buf[0] == ':') {
            buf[n] = '\0';
            v = strtoll(buf + 1, NULL, 10);
        }
    }
    close(fd);
    return v;
}

/*
 * Redis's own time per call of a command (INFO commandstats usec_per_call),
 * -1 if unknown: the script and XADD cost without the event loop around them.
 */
static double redis_usec_per_call(const char *sock, const char *cmd)
{
    int fd = connect_unix(sock);
    if (fd < 0)
        return -1;
    static char buf[65536];
    size_t have = 0;
    if (send_all(fd, "INFO commandstats\r\n", 19) == 0) {
        for (;;) {
            ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
            if (n <= 0)
                break;
            have += (size_t)n;
            buf[have] = '\0';
            /* a bulk reply: $LEN\r\n...\r\n; stop once it is all here */
            const char *nl = strstr(buf, "\r\n");
            if (buf[0] != '$' || nl == NULL)
                continue;
            size_t want = (size_t)(nl - buf) + 2 + strtoul(buf + 1, NULL, 10) + 2;
            if (have >= want || have == sizeof(buf) - 1)
                break;
        }
    }
    close(fd);
    buf[have] = '\0';
    char key[64];
    snprintf(key, sizeof(key), "cmdstat_%s:", cmd);
    const char *p = strstr(buf, key);
    const char *u = p ? strstr(p, "usec_per_call=") : NULL;
    return u ? strtod(u + 14, NULL) : -1;
}

/* A counter of the broker's /metrics (admin socket), -1 if absent. */
static double broker_counter(const char *name)
{
    char *body = NULL;
    double v = -1;
    if (g_opt.admin_socket != NULL &&
        http_call(g_opt.admin_socket, "GET", "/metrics", NULL, NULL, &body) == 200 && body) {
        size_t nl = strlen(name);
        for (const char *p = body; (p = strstr(p, name)) != NULL; p += nl)
            if ((p == body || p[-1] == '\n') && p[nl] == ' ') {
                v = strtod(p + nl + 1, NULL);
                break;
            }
    }
    free(body);
    return v;
}

/* A TCP port free on 127.0.0.1 now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        die("no free port: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

/* Start redis-server number i of the run (a Cluster node if port > 0). */
static void start_one_redis(unsigned i, int port)
{
    char dir[300], conf[340];
    snprintf(dir, sizeof(dir), "%s/redis%s%u", g_scratch, i ? "-" : "", i);
    if (i == 0)
        snprintf(dir, sizeof(dir), "%s/redis", g_scratch);
    if (mkdir(dir, 0755) != 0)
        die("mkdir %s: %s", dir, strerror(errno));
    chmod(dir, 0755); /* the broker may run as another user */
    snprintf(g_shard[i].sock, sizeof(g_shard[i].sock), "%s/redis.sock", dir);
    snprintf(conf, sizeof(conf), "%s/redis.conf", dir);
    char text[1600], node[300] = "";
    if (port > 0)
        snprintf(node, sizeof(node),
                 "bind 127.0.0.1\ncluster-enabled yes\ncluster-config-file nodes.conf\n"
                 "cluster-node-timeout 5000\ncluster-port %d\n",
                 free_port());
    /* the durability the broker's own private Redis has: AOF, fsync each second */
    snprintf(text, sizeof(text),
             "port %d\nunixsocket %s\nunixsocketperm 777\ndir %s\ndaemonize no\n"
             "appendonly yes\nappendfsync everysec\nsave \"\"\nlogfile %s/redis.log\n"
             "maxclients 1024\n%s",
             port, g_shard[i].sock, dir, dir, node);
    write_file(conf, text, 0644);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
        }
        execlp(g_opt.redis_server, g_opt.redis_server, conf, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", g_opt.redis_server, strerror(errno));
        _exit(127);
    }
    g_shard[i].pid = pid;
    g_shard[i].port = port;
    if (i == 0) {
        g_redis_child = pid;
        g_opt.redis_pid = pid;
    }
    for (int t = 0; t < 1000; t++) {
        if (redis_ping(g_shard[i].sock))
            return;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            g_shard[i].pid = -1;
            if (i == 0)
                g_redis_child = -1;
            die("redis-server exited at start (see %s/redis.log)", dir);
        }
        sleep_ms(10);
    }
    die("redis-server did not answer within 10 s");
}

/* One Redis, or a Cluster of g_opt.cluster masters made with redis-cli
 * --cluster create; *url (cap bytes) is what the broker is given. */
static void start_redis(char *url, size_t cap)
{
    if (g_opt.cluster == 0) {
        start_one_redis(0, 0);
        g_nshards = 1;
        snprintf(g_redis_sock, sizeof(g_redis_sock), "%s", g_shard[0].sock);
        snprintf(url, cap, "unix://%s", g_redis_sock);
        return;
    }
    char cmd[1024];
    int off = snprintf(cmd, sizeof(cmd), "redis-cli --cluster create");
    int uoff = snprintf(url, cap, "redis+cluster://");
    for (unsigned i = 0; i < g_opt.cluster; i++) {
        start_one_redis(i, free_port());
        g_nshards = i + 1;
        off += snprintf(cmd + off, sizeof(cmd) - (size_t)off, " 127.0.0.1:%d", g_shard[i].port);
        uoff += snprintf(url + uoff, cap - (size_t)uoff, "%s127.0.0.1:%d", i ? "," : "",
                         g_shard[i].port);
    }
    snprintf(g_redis_sock, sizeof(g_redis_sock), "%s", g_shard[0].sock);
    snprintf(cmd + off, sizeof(cmd) - (size_t)off, " --cluster-yes >/dev/null 2>&1");
    if (system(cmd) != 0)
        die("redis-cli --cluster create failed: %s", cmd);
    for (int t = 0; t < 1000; t++) {
        unsigned ok = 0;
        for (unsigned i = 0; i < g_nshards; i++)
            ok +=
                redis_int(g_shard[i].sock, "EVAL \"return string.find(redis.call('CLUSTER', "
                                           "'INFO'), 'cluster_state:ok') and 1 or 0\" 0\r\n") == 1;
        if (ok == g_nshards) {
            bench_note("Redis Cluster of %u masters (no replicas)", g_nshards);
            return;
        }
        sleep_ms(10);
    }
    die("the Redis Cluster did not reach cluster_state:ok within 10 s");
}

static void start_broker(void)
{
    char state[300], keys[320], policy[300], ready[300], logp[300], redis_url[600];
    snprintf(state, sizeof(state), "%s/state", g_scratch);
    snprintf(keys, sizeof(keys), "%s/keys", state);
    snprintf(policy, sizeof(policy), "%s/policy.json", g_scratch);
    snprintf(ready, sizeof(ready), "%s/ready", g_scratch);
    snprintf(logp, sizeof(logp), "%s/broker.log", g_scratch);
    start_redis(redis_url, sizeof(redis_url));
    snprintf(g_admin_sock, sizeof(g_admin_sock), "%s/admin.sock", state);
    snprintf(g_audit_log, sizeof(g_audit_log), "%s/audit/audit.log", state);
    if (mkdir(state, 0700) != 0)
        die("mkdir %s: %s", state, strerror(errno));
    write_file(policy, policy_fmt, 0644);

    int log_fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0)
        die("%s: %s", logp, strerror(errno));
    const char *init[] = {bin_path("ztbctl"), "keys", "--dir", keys, "init", NULL};
    char ztbctl[PATH_MAX + 64];
    snprintf(ztbctl, sizeof(ztbctl), "%s", bin_path("ztbctl"));
    init[0] = ztbctl;
    const char *ca[] = {ztbctl, "ca", "--dir", keys, "init", "--trust-domain", "ztb.local", NULL};
    if (run(init, log_fd) != 0 || run(ca, log_fd) != 0)
        die("provisioning keys failed (see %s)", logp);
    /* the install step: the state tree is the service user's (a broker
     * started as root changes no owner below its state directory) */
    const char *own[] = {"/bin/chown", "-hR", "nobody:", state, NULL};
    if (geteuid() == 0 && run(own, log_fd) != 0)
        die("chown %s to nobody failed (see %s)", state, logp);

    char broker[PATH_MAX + 64];
    snprintf(broker, sizeof(broker), "%s",
             bin_path(g_opt.inproc_signing ? "ztb-bench-broker-inproc" : "ztb-broker"));
    const char *argv[80];
    int n = 0;
    argv[n++] = broker;
    argv[n++] = "--state-dir";
    argv[n++] = state;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    argv[n++] = "--redis";
    argv[n++] = redis_url;
    argv[n++] = "--policy";
    argv[n++] = policy;
    argv[n++] = "--session-ttl";
    argv[n++] = "3600";
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    /* every simulated agent connects from 127.0.0.1: one address, many clients */
    argv[n++] = "--per-ip-connection-limit";
    argv[n++] = "0";
    if (geteuid() == 0) {
        argv[n++] = "--user";
        argv[n++] = "nobody";
    }
    for (unsigned i = 0; i < g_opt.nextra; i++)
        argv[n++] = g_opt.extra_args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(log_fd);
    g_broker_child = pid;
    g_opt.broker_pid = pid;
    g_opt.admin_socket = g_admin_sock;
    for (int i = 0; i < 1500; i++) {
        FILE *f = fopen(ready, "r");
        unsigned port = 0;
        if (f != NULL) {
            int got = fscanf(f, "%u", &port);
            fclose(f);
            if (got == 1 && port > 0) {
                static char url[64];
                snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
                g_opt.broker_url = url;
                return;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            g_broker_child = -1;
            die("ztb-broker exited at start (see %s)", logp);
        }
        sleep_ms(10);
    }
    die("ztb-broker did not write its ready file within 15 s");
}

/* ---- agents and their session credentials ---------------------------------- */

static char g_token_endpoint[512];

static void discover_endpoint(void)
{
    char *body;
    int st = http_call(NULL, "GET", "/.well-known/oauth-authorization-server", NULL, NULL, &body);
    if (st != 200)
        die("GET metadata: HTTP %d %s", st, body ? body : "");
    json_t *j = json_of(body, "metadata");
    const char *te = json_string_value(json_object_get(j, "token_endpoint"));
    if (te == NULL)
        die("metadata without token_endpoint");
    snprintf(g_token_endpoint, sizeof(g_token_endpoint), "%s", te);
    json_decref(j);
    free(body);
}

/* Enroll agent `name` with a fresh key; returns its session credential. */
static char *make_session(const char *name)
{
    char req[256], *body = NULL;
    snprintf(req, sizeof(req), "{\"name\":\"%s\"}", name);
    int st = http_call(g_opt.admin_socket, "POST", "/v1/agents", "application/json", req, &body);
    if (st != 201)
        die("admin: add agent %s: HTTP %d %s", name, st, body ? body : "");
    json_t *j = json_of(body, "add agent");
    char *join = strdup(json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    free(body);

    ztb_key *k;
    if (ztb_key_generate(&k) != ZTB_OK)
        die("key generation failed");
    char spiffe[256];
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", name);
    ztb_buf csr;
    ztb_buf_init(&csr, 8192);
    if (ztb_csr_make(k, spiffe, &csr) != ZTB_OK)
        die("CSR failed");
    json_t *er = json_pack("{s:s,s:s}", "join_token", join, "csr", ztb_buf_cstr(&csr));
    char *text = json_dumps(er, 0);
    st = http_call(NULL, "POST", "/v1/enroll", "application/json", text, &body);
    if (st != 201)
        die("enroll %s: HTTP %d %s", name, st, body ? body : "");
    free(body);
    free(text);
    json_decref(er);
    ztb_buf_free(&csr);
    free(join);

    uint8_t rnd[16];
    for (size_t i = 0; i < sizeof(rnd); i++)
        rnd[i] = (uint8_t)rand();
    char jti[32], claims[2048];
    ztb_b64url_encode(rnd, sizeof(rnd), jti, sizeof(jti), NULL);
    long long now = (long long)time(NULL);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld,"
             "\"jti\":\"%s\"}",
             spiffe, spiffe, g_token_endpoint, now, now + 30, jti);
    ztb_buf a;
    ztb_buf_init(&a, 4096);
    ztb_jws_sign_opts so = {.typ = "JWT"};
    if (ztb_jws_sign(k, &so, claims, strlen(claims), &a) != ZTB_OK)
        die("assertion signing failed");
    ztb_key_free(k);
    char form[4096];
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ASSERTION_TYPE,
             ztb_buf_cstr(&a));
    ztb_buf_free(&a);
    st = http_call(NULL, "POST", "/v1/session", "application/x-www-form-urlencoded", form, &body);
    if (st != 200)
        die("session for %s: HTTP %d %s", name, st, body ? body : "");
    j = json_of(body, "session");
    const char *s = json_string_value(json_object_get(j, "session"));
    if (s == NULL || strncmp(s, "ztbs_", 5) != 0)
        die("session for %s: no credential in %s", name, body);
    char *out = strdup(s);
    json_decref(j);
    free(body);
    return out;
}

/* ---- the load generator ------------------------------------------------------ */

struct hist {
    uint64_t n[HIST_N];
    uint64_t count;
};

static unsigned hist_bucket(uint64_t us)
{
    if (us < HIST_FINE)
        return (unsigned)us;
    uint64_t c = (us - HIST_FINE) / 1000u;
    return HIST_FINE + (unsigned)(c < HIST_COARSE ? c : HIST_COARSE);
}

static double hist_value_us(unsigned b)
{
    return b < HIST_FINE ? (double)b + 0.5
                         : (double)HIST_FINE + ((double)(b - HIST_FINE) + 0.5) * 1000.0;
}

/* Percentile p (0..100) in milliseconds, nearest rank. */
static double hist_pct_ms(const struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HIST_N; b++) {
        seen += h->n[b];
        if (seen >= rank)
            return hist_value_us(b) / 1000.0;
    }
    return hist_value_us(HIST_N - 1) / 1000.0;
}

struct conn {
    int fd;
    const char *req; /* this connection's request bytes */
    size_t req_len, sent;
    uint64_t t0;         /* when the request started (ns) */
    size_t have, header; /* bytes buffered; header length once known (0 before) */
    size_t total;        /* header + Content-Length once known */
    int status;
    char buf[RESP_BUF];
};

/* What one load thread counts in the current phase. */
struct tally {
    struct hist *lat; /* NULL during warm-up */
    uint64_t ok, errors, reconnects;
    uint64_t by_status[6]; /* 1xx..5xx, [0] transport */
};

/*
 * One load thread and its connections. mu is held while the thread handles
 * a batch of events, so the main thread can take the tally between batches.
 */
struct worker {
    pthread_t th;
    pthread_mutex_t mu;
    struct conn *c;
    unsigned nconn;
    int ep;
    struct tally t;
    char first_error[256];
};

static char **g_reqs; /* one request per agent */
static size_t *g_req_lens;
static unsigned g_nreqs;

static _Atomic int g_running; /* 0: workers stop */

static void conn_arm(struct worker *w, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int conn_open(struct worker *w, struct conn *c)
{
    c->fd = connect_api(1);
    if (c->fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

/* Send (the rest of) the request; arms EPOLLOUT if the socket is full. */
static int conn_send(struct worker *w, struct conn *c)
{
    if (c->sent == 0) {
        c->t0 = bench_now_ns();
        c->have = c->header = c->total = 0;
    }
    while (c->sent < c->req_len) {
        ssize_t n = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_arm(w, c, EPOLLIN | EPOLLOUT);
            return 0;
        }
        return -1;
    }
    return 0;
}

static void note_error(struct worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_error(struct worker *w, const char *fmt, ...)
{
    w->t.errors++;
    if (w->first_error[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
    va_end(ap);
}

/* A transport failure: count it, reconnect, start the request again. */
static void conn_reset(struct worker *w, struct conn *c, const char *why)
{
    note_error(w, "connection: %s", why);
    w->t.by_status[0]++;
    w->t.reconnects++;
    if (c->fd >= 0) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->sent = 0;
    while (atomic_load(&g_running) && conn_open(w, c) != 0)
        sleep_ms(10);
    if (c->fd >= 0 && conn_send(w, c) != 0)
        c->sent = 0; /* the next event resets it again */
}

/* Parse the status line and Content-Length once the header is complete. */
static int parse_header(struct conn *c)
{
    const char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    if (end == NULL)
        return c->have < sizeof(c->buf) ? 0 : -1;
    c->header = (size_t)(end - c->buf) + 4;
    if (c->have < 12 || memcmp(c->buf, "HTTP/1.1 ", 9) != 0)
        return -1;
    c->status = (c->buf[9] - '0') * 100 + (c->buf[10] - '0') * 10 + (c->buf[11] - '0');
    size_t cl = 0;
    int found = 0;
    for (const char *p = c->buf; p < end;) {
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
            cl = strtoul(p + 15, NULL, 10);
            found = 1;
        }
        p = eol + 2;
    }
    if (!found)
        return -1; /* the broker always sends one; chunked is not expected */
    c->total = c->header + cl;
    return c->total <= sizeof(c->buf) ? 1 : -1;
}

static void conn_readable(struct worker *w, struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_reset(w, c, n == 0 ? "closed by the broker" : strerror(errno));
            return;
        }
        c->have += (size_t)n;
        if (c->header == 0) {
            int h = parse_header(c);
            if (h < 0) {
                conn_reset(w, c, "malformed or oversized response");
                return;
            }
            if (h == 0)
                continue;
        }
        if (c->have < c->total)
            continue;
        if (c->have > c->total) {
            conn_reset(w, c, "bytes after the response (no pipelining was asked for)");
            return;
        }
        uint64_t us = (bench_now_ns() - c->t0) / 1000u;
        int cls = c->status / 100;
        w->t.by_status[cls >= 1 && cls <= 5 ? cls : 0]++;
        if (c->status == 200) {
            w->t.ok++;
            if (w->t.lat != NULL) {
                w->t.lat->n[hist_bucket(us)]++;
                w->t.lat->count++;
            }
        } else {
            note_error(w, "HTTP %d: %.*s", c->status, (int)(c->total - c->header),
                       c->buf + c->header);
        }
        c->sent = 0;
        if (!atomic_load(&g_running))
            return;
        if (conn_send(w, c) != 0)
            conn_reset(w, c, "send failed");
        return;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (unsigned i = 0; i < w->nconn; i++) {
        struct conn *c = &w->c[i];
        if (conn_open(w, c) != 0)
            die("cannot connect to %s: %s", g_api.hostport, strerror(errno));
        if (conn_send(w, c) != 0)
            conn_reset(w, c, "send failed");
    }
    pthread_mutex_unlock(&w->mu);
    struct epoll_event evs[256];
    while (atomic_load(&g_running)) {
        int n = epoll_wait(w->ep, evs, 256, 50);
        pthread_mutex_lock(&w->mu);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if ((evs[i].events & (EPOLLERR | EPOLLHUP)) && !(evs[i].events & EPOLLIN)) {
                conn_reset(w, c, "socket error");
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                conn_arm(w, c, EPOLLIN);
                if (conn_send(w, c) != 0) {
                    conn_reset(w, c, "send failed");
                    continue;
                }
            }
            if (evs[i].events & EPOLLIN)
                conn_readable(w, c);
        }
        pthread_mutex_unlock(&w->mu);
    }
    for (unsigned i = 0; i < w->nconn; i++)
        if (w->c[i].fd >= 0)
            close(w->c[i].fd);
    return NULL;
}

static struct worker *g_workers;

/*
 * Take every worker's tally of the phase that ends now and start the next
 * one (its latencies go to fresh histograms when record is set). The
 * finished phase's tallies are summed into *sum, its histograms into *h.
 */
static void switch_phase(int record, struct tally *sum, struct hist *h)
{
    memset(sum, 0, sizeof(*sum));
    if (h != NULL)
        memset(h, 0, sizeof(*h));
    for (unsigned i = 0; i < g_opt.client_threads; i++) {
        struct worker *w = &g_workers[i];
        struct hist *next = record ? calloc(1, sizeof(struct hist)) : NULL;
        if (record && next == NULL)
            die("out of memory");
        pthread_mutex_lock(&w->mu);
        struct tally t = w->t;
        memset(&w->t, 0, sizeof(w->t));
        w->t.lat = next;
        pthread_mutex_unlock(&w->mu);
        sum->ok += t.ok;
        sum->errors += t.errors;
        sum->reconnects += t.reconnects;
        for (size_t k = 0; k < 6; k++)
            sum->by_status[k] += t.by_status[k];
        if (t.lat != NULL) {
            if (h != NULL) {
                for (unsigned b = 0; b < HIST_N; b++)
                    h->n[b] += t.lat->n[b];
                h->count += t.lat->count;
            }
            free(t.lat);
        }
    }
}

/* Build each agent's request once: the bytes sent for every token. */
static void build_requests(char **sessions)
{
    g_nreqs = g_opt.agents;
    g_reqs = calloc(g_nreqs, sizeof(*g_reqs));
    g_req_lens = calloc(g_nreqs, sizeof(*g_req_lens));
    if (g_reqs == NULL || g_req_lens == NULL)
        die("out of memory");
    for (unsigned i = 0; i < g_nreqs; i++) {
        char body[2048];
        int bl = snprintf(body, sizeof(body),
                          "grant_type=%s&client_assertion_type=%s&client_assertion=%s"
                          "&audience=bench&scope=bench%%3Aissue&resource=orders%%2F%u",
                          GRANT, SESSION_TYPE, sessions[i], 1000 + i);
        if (bl < 0 || (size_t)bl >= sizeof(body))
            die("session credential too long");
        char *req = malloc(4096);
        if (req == NULL)
            die("out of memory");
        int n = snprintf(req, 4096,
                         "POST /v1/token HTTP/1.1\r\nHost: %s\r\n"
                         "Content-Type: application/x-www-form-urlencoded\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         g_api.hostport, bl, body);
        if (n < 0 || n >= 4096)
            die("request too long");
        g_reqs[i] = req;
        g_req_lens[i] = (size_t)n;
    }
}

/* ---- reporting ----------------------------------------------------------------- */

struct cpu_snap {
    double t, broker, redis, self, machine;
    double shard[MAX_SHARDS]; /* each Redis we started (redis is their sum) */
};

static void cpu_snap(struct cpu_snap *s)
{
    s->t = bench_now_s();
    s->broker = proc_tree_cpu_s(g_opt.broker_pid); /* with its signer */
    s->redis = proc_cpu_s(g_opt.redis_pid);
    for (unsigned i = 1; i < g_nshards && s->redis >= 0; i++) {
        s->shard[i] = proc_cpu_s(g_shard[i].pid);
        s->redis = s->shard[i] < 0 ? -1 : s->redis + s->shard[i];
    }
    if (g_nshards > 0)
        s->shard[0] = proc_cpu_s(g_shard[0].pid);
    s->self = proc_cpu_s(getpid());
    s->machine = machine_busy_s();
}

/* CPU µs per token of one process over a round, -1 if unknown. */
static double per_token_us(double a, double b, uint64_t ok)
{
    return a < 0 || b < 0 || ok == 0 ? -1 : (b - a) * 1e6 / (double)ok;
}

static uint64_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char buf[65536];
    uint64_t n = 0;
    size_t r;
    while ((r = fread(buf, 1, sizeof(buf), f)) > 0)
        for (size_t i = 0; i < r; i++)
            n += buf[i] == '\n';
    fclose(f);
    return n;
}

static void usage(void)
{
    fprintf(stderr, "usage: ztb-bench-issue [options]\n"
                    "  --connections N     keep-alive connections (default 64)\n"
                    "  --agents N          agents, each with its own session (default 64)\n"
                    "  --seconds S         length of a timed round (default 5)\n"
                    "  --rounds N          timed rounds; figures are their medians (default 5)\n"
                    "  --warmup S          untimed load first (default 3)\n"
                    "  --client-threads N  load generator threads (default 1)\n"
                    "  --openssl-seconds S openssl speed ecdsap256 duration (default 3)\n"
                    "  --broker-arg ARG    pass ARG to the ztb-broker we start (repeatable)\n"
                    "  --redis-server PATH redis-server binary (default: the one found at build)\n"
                    "  --cluster N         a Redis Cluster of N masters (2-6) instead of one\n"
                    "                      Redis; prints each shard's CPU per token\n"
                    "  --keep              keep the scratch directory (logs, audit log)\n"
                    "  --inproc-signing    baseline: start ztb-bench-broker-inproc, the broker\n"
                    "                      with signatures made in its HTTP process (benchmark\n"
                    "                      build only), to measure the signer process's cost\n"
                    "  --broker URL        use a running broker (http://HOST:PORT) instead\n"
                    "  --admin-socket PATH    ... and its admin socket (to enroll bench agents)\n"
                    "  --broker-pid PID       ... for its peak RSS and CPU (optional)\n"
                    "  --redis-pid PID        ... and its Redis's CPU (optional)\n"
                    "  --print-policy      print the policy the bench agents need, and exit\n"
                    "A running broker's policy must allow agents bench-* the action bench:issue\n"
                    "on audience bench, resources orders/**, with rate limits that do not bind.\n");
}

static unsigned num_arg(const char *flag, const char *v, unsigned min, unsigned max)
{
    char *end;
    errno = 0;
    unsigned long n = v ? strtoul(v, &end, 10) : 0;
    if (v == NULL || errno != 0 || *end != '\0' || n < min || n > max)
        die("%s wants a number in %u..%u", flag, min, max);
    return (unsigned)n;
}

static double secs_arg(const char *flag, const char *v)
{
    char *end;
    double d = v ? strtod(v, &end) : -1;
    if (v == NULL || *end != '\0' || d < 0 || d > 3600)
        die("%s wants seconds (0..3600)", flag);
    return d;
}

static void parse_args(int argc, char **argv)
{
    g_opt.redis_server = ZTB_REDIS_SERVER;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 1;
        if (strcmp(a, "--connections") == 0)
            g_opt.connections = num_arg(a, v, 1, 10000);
        else if (strcmp(a, "--agents") == 0)
            g_opt.agents = num_arg(a, v, 1, 10000);
        else if (strcmp(a, "--seconds") == 0)
            g_opt.seconds = secs_arg(a, v);
        else if (strcmp(a, "--rounds") == 0)
            g_opt.rounds = num_arg(a, v, 1, MAX_ROUNDS);
        else if (strcmp(a, "--warmup") == 0)
            g_opt.warmup = secs_arg(a, v);
        else if (strcmp(a, "--client-threads") == 0)
            g_opt.client_threads = num_arg(a, v, 1, 64);
        else if (strcmp(a, "--openssl-seconds") == 0)
            g_opt.openssl_seconds = (int)num_arg(a, v, 1, 60);
        else if (strcmp(a, "--broker-arg") == 0 && v != NULL &&
                 g_opt.nextra < sizeof(g_opt.extra_args) / sizeof(g_opt.extra_args[0]))
            g_opt.extra_args[g_opt.nextra++] = v;
        else if (strcmp(a, "--cluster") == 0)
            g_opt.cluster = num_arg(a, v, 2, MAX_SHARDS);
        else if (strcmp(a, "--redis-server") == 0 && v != NULL)
            g_opt.redis_server = v;
        else if (strcmp(a, "--broker") == 0 && v != NULL)
            g_opt.broker_url = v;
        else if (strcmp(a, "--admin-socket") == 0 && v != NULL)
            g_opt.admin_socket = v;
        else if (strcmp(a, "--broker-pid") == 0)
            g_opt.broker_pid = (int)num_arg(a, v, 1, INT_MAX);
        else if (strcmp(a, "--redis-pid") == 0)
            g_opt.redis_pid = (int)num_arg(a, v, 1, INT_MAX);
        else {
            used = 0;
            if (strcmp(a, "--keep") == 0) {
                g_opt.keep = 1;
            } else if (strcmp(a, "--inproc-signing") == 0) {
                g_opt.inproc_signing = 1;
            } else if (strcmp(a, "--print-policy") == 0) {
                fputs(policy_fmt, stdout);
                exit(0);
            } else {
                usage();
                exit(strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 ? 0 : 2);
            }
        }
        i += used;
    }
    if (g_opt.broker_url != NULL && g_opt.admin_socket == NULL)
        die("--broker needs --admin-socket (the bench enrolls its own agents)");
    if (g_opt.client_threads > g_opt.connections)
        g_opt.client_threads = g_opt.connections;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int own = g_opt.broker_url == NULL;
    if (own) {
        const char *base = getenv("TMPDIR");
        snprintf(g_scratch, sizeof(g_scratch), "%s/ztb-bench.XXXXXX",
                 base && base[0] ? base : "/tmp");
        if (mkdtemp(g_scratch) == NULL)
            die("mkdtemp: %s", strerror(errno));
        chmod(g_scratch, 0711); /* a broker that drops to nobody must reach its state */
        bench_note("scratch directory %s", g_scratch);
        start_broker(); /* starts Redis first */
    }
    parse_url(g_opt.broker_url, &g_api);
    for (int i = 0;; i++) {
        char *body = NULL;
        int st = http_call(NULL, "GET", "/healthz", NULL, NULL, &body);
        free(body);
        if (st == 200)
            break;
        if (i == 500)
            die("%s/healthz does not answer 200", g_opt.broker_url);
        sleep_ms(10);
    }
    discover_endpoint();

    /* pre-made credentials: enrolled agents with session credentials */
    double t_setup = bench_now_s();
    char **sessions = calloc(g_opt.agents, sizeof(*sessions));
    if (sessions == NULL)
        die("out of memory");
    unsigned tag = (unsigned)rand() & 0xffffffu;
    for (unsigned i = 0; i < g_opt.agents; i++) {
        char name[64];
        snprintf(name, sizeof(name), "bench-%06x-%04u", tag, i);
        sessions[i] = make_session(name);
    }
    build_requests(sessions);
    for (unsigned i = 0; i < g_opt.agents; i++) {
        memset(sessions[i], 0, strlen(sessions[i]));
        free(sessions[i]);
    }
    free(sessions);
    bench_note("%u agents enrolled with session credentials in %.1f s", g_opt.agents,
               bench_now_s() - t_setup);
    bench_note("broker pid %d, redis pid %d, load generator pid %d", g_opt.broker_pid,
               g_opt.redis_pid, (int)getpid());

    /* the connections, spread over the load threads and the agents */
    atomic_store(&g_running, 1);
    g_workers = calloc(g_opt.client_threads, sizeof(*g_workers));
    if (g_workers == NULL)
        die("out of memory");
    unsigned ci = 0;
    for (unsigned t = 0; t < g_opt.client_threads; t++) {
        struct worker *w = &g_workers[t];
        pthread_mutex_init(&w->mu, NULL);
        w->nconn = g_opt.connections / g_opt.client_threads +
                   (t < g_opt.connections % g_opt.client_threads);
        w->c = calloc(w->nconn, sizeof(*w->c));
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (w->c == NULL || w->ep < 0)
            die("out of memory or epoll");
        for (unsigned i = 0; i < w->nconn; i++, ci++) {
            w->c[i].fd = -1;
            w->c[i].req = g_reqs[ci % g_nreqs];
            w->c[i].req_len = g_req_lens[ci % g_nreqs];
        }
    }
    for (unsigned t = 0; t < g_opt.client_threads; t++)
        if (pthread_create(&g_workers[t].th, NULL, worker_main, &g_workers[t]) != 0)
            die("pthread_create failed");
    bench_note("warm-up %.0f s with %u connections, %u load thread(s)", g_opt.warmup,
               g_opt.connections, g_opt.client_threads);
    sleep_ms((unsigned)(g_opt.warmup * 1000));

    double tps[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS], p999[MAX_ROUNDS];
    double cs[MAX_SHARDS][MAX_ROUNDS];
    double cb[MAX_ROUNDS], cr[MAX_ROUNDS], cl[MAX_ROUNDS], other[MAX_ROUNDS];
    uint64_t total_ok = 0, total_err = 0;
    struct hist *h = malloc(sizeof(*h));
    if (h == NULL)
        die("out of memory");
    struct tally sum;
    switch_phase(1, &sum, NULL); /* warm-up figures are dropped */
    total_ok += sum.ok;
    struct cpu_snap a, b;
    cpu_snap(&a);
    for (unsigned r = 0; r < g_opt.rounds; r++) {
        sleep_ms((unsigned)(g_opt.seconds * 1000));
        switch_phase(r + 1 < g_opt.rounds, &sum, h);
        cpu_snap(&b);
        double el = b.t - a.t;
        tps[r] = (double)sum.ok / el;
        p50[r] = hist_pct_ms(h, 50);
        p99[r] = hist_pct_ms(h, 99);
        p999[r] = hist_pct_ms(h, 99.9);
        cb[r] = per_token_us(a.broker, b.broker, sum.ok);
        cr[r] = per_token_us(a.redis, b.redis, sum.ok);
        for (unsigned i = 0; i < g_nshards; i++)
            cs[i][r] = per_token_us(a.shard[i], b.shard[i], sum.ok);
        cl[r] = per_token_us(a.self, b.self, sum.ok);
        double ours =
            (b.broker - a.broker) + (b.redis > 0 ? b.redis - a.redis : 0) + (b.self - a.self);
        other[r] = a.machine < 0 ? -1 : ((b.machine - a.machine) - ours) / el;
        total_ok += sum.ok;
        total_err += sum.errors;
        bench_note("round %u: %.0f tokens/s, p50 %.2f ms, p99 %.2f ms, errors %llu | CPU per "
                   "token: broker %.1f us, redis %.1f us, load generator %.1f us | other "
                   "processes %.2f cores",
                   r + 1, tps[r], p50[r], p99[r], (unsigned long long)sum.errors, cb[r], cr[r],
                   cl[r], other[r]);
        a = b;
    }
    atomic_store(&g_running, 0);
    for (unsigned t = 0; t < g_opt.client_threads; t++)
        pthread_join(g_workers[t].th, NULL);
    for (unsigned t = 0; t < g_opt.client_threads; t++)
        if (g_workers[t].first_error[0] != '\0')
            bench_note("first error seen: %s", g_workers[t].first_error);

    double rss = g_opt.broker_pid > 0 ? bench_peak_rss_mib(g_opt.broker_pid) : -1;
    /* on a Cluster each broker has its own stream, ztb:audit:{REPLICA} */
    long long stream = own && g_nshards == 1 ? redis_int(g_redis_sock, "XLEN ztb:audit\r\n") : -1;
    uint64_t audit_lines = own ? count_lines(g_audit_log) : 0;
    /* on a Cluster: the mean over the shards that ran the command */
    double evalsha_us = -1, xadd_us = -1, es = 0, xs = 0;
    unsigned en = 0, xn = 0;
    for (unsigned i = 0; own && i < g_nshards; i++) {
        double e = redis_usec_per_call(g_shard[i].sock, "evalsha");
        double x = redis_usec_per_call(g_shard[i].sock, "xadd");
        if (e >= 0)
            es += e, en++;
        if (x >= 0)
            xs += x, xn++;
    }
    if (en > 0)
        evalsha_us = es / en;
    if (xn > 0)
        xadd_us = xs / xn;
    /* token checks per pipeline on the shared connection (group commit) */
    double batches = broker_counter("ztb_redis_shared_batches_total");
    double batched = broker_counter("ztb_redis_shared_commands_total");
    if (own) {
        stop_children(); /* openssl speed gets a quiet machine */
        bench_note("broker and redis stopped; audit log has %llu lines, stream %lld entries",
                   (unsigned long long)audit_lines, stream);
    }
    double osign = -1, overify = -1;
    if (bench_openssl_ecdsap256(g_opt.openssl_seconds, &osign, &overify) != 0)
        bench_note("openssl speed ecdsap256 could not be run");

    unsigned n = g_opt.rounds;
    if (own) /* 1: the real broker, keys in its signer process; 0: the inproc baseline */
        bench_metric("signer_process", g_opt.inproc_signing ? 0 : 1);
    bench_metric("connections", g_opt.connections);
    bench_metric("agents", g_opt.agents);
    bench_metric("rounds", n);
    bench_metric("round_seconds", g_opt.seconds);
    bench_metric("tokens_per_s", bench_median(tps, n));
    bench_metric("tokens_per_s_min", bench_percentile(tps, n, 0));
    bench_metric("tokens_per_s_max", bench_percentile(tps, n, 100));
    bench_metric("p50_ms", bench_median(p50, n));
    bench_metric("p99_ms", bench_median(p99, n));
    bench_metric("p99_ms_max", bench_percentile(p99, n, 100));
    bench_metric("p999_ms", bench_median(p999, n));
    bench_metric("errors", (double)total_err);
    bench_metric("tokens_total", (double)total_ok);
    bench_metric("broker_peak_rss_mib", rss);
    bench_metric("broker_cpu_us_per_token", bench_median(cb, n));
    bench_metric("redis_cpu_us_per_token", bench_median(cr, n));
    if (g_nshards > 1) {
        /* the load divides across the shards: each one's CPU per token of
         * the whole run */
        bench_metric("redis_shards", g_nshards);
        for (unsigned i = 0; i < g_nshards; i++) {
            char name[64];
            snprintf(name, sizeof(name), "redis_shard_%u_cpu_us_per_token", i + 1);
            bench_metric(name, bench_median(cs[i], n));
        }
    }
    bench_metric("loadgen_cpu_us_per_token", bench_median(cl, n));
    bench_metric("other_processes_cores", bench_median(other, n));
    if (own) {
        bench_metric("audit_lines", (double)audit_lines);
        bench_metric("audit_stream_entries", (double)stream);
        bench_metric("redis_evalsha_usec_per_call", evalsha_us);
        bench_metric("redis_xadd_usec_per_call", xadd_us);
    }
    if (batches > 0)
        bench_metric("redis_checks_per_batch", batched / batches);
    bench_metric("openssl_sign_per_s", osign);
    bench_metric("openssl_verify_per_s", overify);
    if (osign > 0)
        bench_metric("tokens_vs_openssl_sign", bench_median(tps, n) / osign);
    free(h);
    for (unsigned i = 0; i < g_nreqs; i++)
        free(g_reqs[i]);
    free(g_reqs);
    free(g_req_lens);
    cleanup();
    return 0;
}
