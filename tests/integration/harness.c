/*
 * harness.c - start and stop real redis-server and ztb-broker processes,
 * speak HTTP to them with libcurl (see harness.h).
 *
 * Failures abort the test with a message (these are test fixtures: a
 * fixture that cannot start is a failed test, never a skipped one).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/admin_client.h"
#include "harness.h"

#ifndef ZTB_REDIS_SERVER
#define ZTB_REDIS_SERVER "redis-server"
#endif
#ifndef ZTB_CLOCKSHIFT_LIB
#error "ZTB_CLOCKSHIFT_LIB must be set by the build"
#endif
#ifndef ZTB_BIN_DIR
#error "ZTB_BIN_DIR must be set by the build"
#endif

static void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("harness: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/*
 * Every process the harness starts is remembered so that a test that fails
 * half-way (cmocka jumps out of it) leaves nothing running: the children also
 * get SIGTERM if the test process dies (PR_SET_PDEATHSIG), and at exit any
 * still alive are killed and reaped. A leftover child would otherwise keep
 * ctest's output pipe open and turn a failure into a timeout.
 */
#define MAX_CHILDREN 64
static pid_t children[MAX_CHILDREN];

static void forget_child(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

static void reap_all(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
    }
}

static void remember_child(pid_t pid)
{
    static int registered;
    if (!registered) {
        atexit(reap_all);
        registered = 1;
    }
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == 0) {
            children[i] = pid;
            return;
        }
}

/* In a freshly forked child: die with the parent, quiet stdio. */
static void child_setup(int keep_stdio)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (!keep_stdio) {
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2)
                close(fd);
        }
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

const char *zh_clockshift_lib(void)
{
    return ZTB_CLOCKSHIFT_LIB;
}

const char *zh_bin(const char *name)
{
    static __thread char path[512];
    snprintf(path, sizeof(path), "%s/%s", ZTB_BIN_DIR, name);
    return path;
}

void zh_tls_server_cert(const char *dir, char crt[300], char key[300])
{
    snprintf(crt, 300, "%s/server.crt", dir);
    snprintf(key, 300, "%s/server.key", dir);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
             "-keyout %s -out %s 2>/dev/null",
             key, crt);
    if (system(cmd) != 0)
        fatal("cannot make a test server certificate: %s", cmd);
}

void zh_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if ((size_t)snprintf(out, cap, "%s/ztb-it.XXXXXX", base) >= cap)
        fatal("TMPDIR too long");
    if (mkdtemp(out) == NULL)
        fatal("mkdtemp %s: %s", out, strerror(errno));
    /* a broker that drops to `nobody` must be able to reach its state dir */
    if (chmod(out, 0711) != 0)
        fatal("chmod %s: %s", out, strerror(errno));
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void zh_rmtree(const char *dir)
{
    if (dir != NULL && dir[0] != '\0')
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * In a forked child about to exec: load the clockshift library with this
 * wall clock offset (ASan must then allow a library before its runtime).
 */
static void preload_clockshift(long offset_s)
{
    char off[24], asan[512];
    snprintf(off, sizeof(off), "%ld", offset_s);
    const char *cur = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0", cur ? cur : "", cur ? ":" : "");
    setenv("ZTB_CLOCK_OFFSET_S", off, 1);
    setenv("ASAN_OPTIONS", asan, 1);
    setenv("LD_PRELOAD", ZTB_CLOCKSHIFT_LIB, 1);
}

/* ---- redis ---------------------------------------------------------------- */

static void redis_spawn(struct zh_redis *r)
{
    char conf[300];
    snprintf(conf, sizeof(conf), "%s/redis.conf", r->dir);
    pid_t pid = fork();
    if (pid < 0)
        fatal("fork: %s", strerror(errno));
    if (pid == 0) {
        child_setup(0);
        if (r->clock_offset_s != 0)
            preload_clockshift(r->clock_offset_s);
        if (r->sentinel)
            execl(ZTB_REDIS_SERVER, ZTB_REDIS_SERVER, conf, "--sentinel", (char *)NULL);
        else
            execl(ZTB_REDIS_SERVER, ZTB_REDIS_SERVER, conf, (char *)NULL);
        _exit(127);
    }
    remember_child(pid);
    r->pid = pid;
    for (int i = 0; i < 1000; i++) {
        redisContext *c = redisConnectUnix(r->sock);
        if (c != NULL && !c->err) {
            redisReply *rep = redisCommand(c, "PING");
            int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
            if (rep != NULL)
                freeReplyObject(rep);
            redisFree(c);
            if (ok)
                return;
        } else if (c != NULL) {
            redisFree(c);
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            forget_child(pid);
            fatal("redis-server (%s) exited at start (see %s/redis.log; is it installed? "
                  "scripts/install-deps.sh)",
                  ZTB_REDIS_SERVER, r->dir);
        }
        sleep_ms(10);
    }
    fatal("redis-server did not answer on %s within 10 s", r->sock);
}

static void redis_start(struct zh_redis *r, int tcp, long clock_offset_s);

void zh_redis_start(struct zh_redis *r)
{
    redis_start(r, 0, 0);
}

void zh_redis_start_clock(struct zh_redis *r, long clock_offset_s)
{
    redis_start(r, 0, clock_offset_s);
}

/* A free loopback port (a race with other processes is possible but rare). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        fatal("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

void zh_redis_start_tcp(struct zh_redis *r)
{
    redis_start(r, 1, 0);
}

int zh_free_port(void)
{
    return free_port();
}

/* Start redis-server (sentinel: --sentinel) with extra config lines. */
static void redis_start_with(struct zh_redis *r, int tcp, long clock_offset_s, int sentinel,
                             const char *extra);

static void redis_start(struct zh_redis *r, int tcp, long clock_offset_s)
{
    redis_start_with(r, tcp, clock_offset_s, 0, "");
}

void zh_redis_start_conf(struct zh_redis *r, const char *extra)
{
    redis_start_with(r, 0, 0, 0, extra);
}

void zh_redis_start_replica(struct zh_redis *r, const struct zh_redis *master, int wait_sync)
{
    if (master->port == 0)
        fatal("zh_redis_start_replica: the master has no TCP port");
    char extra[128];
    snprintf(extra, sizeof(extra), "replicaof 127.0.0.1 %d\n", master->port);
    redis_start_with(r, 1, 0, 0, extra);
    for (int i = 0; wait_sync && i < 1000; i++) {
        redisContext *c = zh_redis_connect(r);
        redisReply *rep = redisCommand(c, "INFO replication");
        int up = rep != NULL && rep->type == REDIS_REPLY_STRING &&
                 strstr(rep->str, "master_link_status:up") != NULL;
        if (rep != NULL)
            freeReplyObject(rep);
        redisFree(c);
        if (up)
            return;
        sleep_ms(10);
    }
    if (wait_sync)
        fatal("the replica in %s did not sync with its master within 10 s", r->dir);
}

void zh_sentinel_start(struct zh_redis *r, const struct zh_redis *master, const char *name,
                       int quorum)
{
    if (master->port == 0)
        fatal("zh_sentinel_start: the master has no TCP port");
    char extra[512];
    snprintf(extra, sizeof(extra),
             "sentinel monitor %s 127.0.0.1 %d %d\n"
             "sentinel down-after-milliseconds %s 1000\n"
             "sentinel failover-timeout %s 3000\n"
             "sentinel parallel-syncs %s 1\n",
             name, master->port, quorum, name, name, name);
    redis_start_with(r, 1, 0, 1, extra);
}

void zh_sentinel_start_conf(struct zh_redis *r, const char *extra)
{
    redis_start_with(r, 0, 0, 1, extra);
}

/* Start one Cluster node (not yet joined). CLUSTER SLOTS lists a replica
 * only once its replication offset is not 0 (Redis 7.0), which on an idle
 * master takes its first PING to its replicas: sent every second, not 10. */
static void cluster_node_start(struct zh_redis *r, unsigned node_timeout_ms)
{
    char extra[256];
    int bus = free_port();
    snprintf(extra, sizeof(extra),
             "cluster-enabled yes\ncluster-config-file nodes.conf\n"
             "cluster-node-timeout %u\ncluster-port %d\ncluster-replica-validity-factor 0\n"
             "repl-ping-replica-period 1\n",
             node_timeout_ms, bus);
    redis_start_with(r, 1, 0, 0, extra);
    r->bus_port = bus;
}

/* One reply of a command to node r (a unix-socket connection), or NULL. */
static redisReply *node_command(const struct zh_redis *r, const char *fmt, ...)
{
    redisContext *c = zh_redis_connect(r);
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return rep;
}

/* 1 if node r's CLUSTER SLOTS has every range with a master and want
 * replicas, covering all 16384 slots. */
static int slots_complete(const struct zh_redis *r, size_t want)
{
    redisReply *rep = node_command(r, "CLUSTER SLOTS");
    long long covered = 0;
    int ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        ok = e->type == REDIS_REPLY_ARRAY && e->elements == 3 + want;
        if (ok)
            covered += e->element[1]->integer - e->element[0]->integer + 1;
    }
    if (rep != NULL)
        freeReplyObject(rep);
    return ok && covered == 16384;
}

static void cluster_start(struct zh_redis *nodes, size_t n, size_t replicas,
                          unsigned node_timeout_ms, char *url, size_t cap);

void zh_cluster_start(struct zh_redis *nodes, size_t n, char *url, size_t cap)
{
    cluster_start(nodes, n, 0, 2000, url, cap);
}

void zh_cluster_start_replicated(struct zh_redis *nodes, size_t n, unsigned node_timeout_ms,
                                 char *url, size_t cap)
{
    cluster_start(nodes, n, 1, node_timeout_ms, url, cap);
}

/* Node r meets node to (on its bus port), so it joins to's cluster. */
static void cluster_meet(const struct zh_redis *r, const struct zh_redis *to)
{
    redisReply *rep = node_command(r, "CLUSTER MEET 127.0.0.1 %d %d", to->port, to->bus_port);
    if (rep == NULL || rep->type != REDIS_REPLY_STATUS)
        fatal("CLUSTER MEET from port %d to %d failed", r->port, to->port);
    freeReplyObject(rep);
}

/* Wait until nodes[0..n) all pass ok(node), for up to ms. */
static void cluster_wait(struct zh_redis *nodes, size_t n, int (*ok)(const struct zh_redis *),
                         unsigned ms, const char *what)
{
    for (unsigned t = 0; t < ms; t += 10) {
        size_t good = 0;
        for (size_t i = 0; i < n && ok(&nodes[i]); i++)
            good++;
        if (good == n)
            return;
        sleep_ms(10);
    }
    fatal("the cluster: %s not within %u ms", what, ms);
}

static int state_ok(const struct zh_redis *r)
{
    redisReply *rep = node_command(r, "CLUSTER INFO");
    int ok = rep != NULL && rep->type == REDIS_REPLY_STRING &&
             strstr(rep->str, "cluster_state:ok") != NULL &&
             strstr(rep->str, "cluster_slots_ok:16384") != NULL;
    if (rep != NULL)
        freeReplyObject(rep);
    return ok;
}

/* A replica whose link is up, and whose map shows every replica. */
static int replica_ready(const struct zh_redis *r)
{
    redisReply *rep = node_command(r, "INFO replication");
    int up = rep != NULL && rep->type == REDIS_REPLY_STRING &&
             strstr(rep->str, "master_link_status:up") != NULL;
    if (rep != NULL)
        freeReplyObject(rep);
    return up && slots_complete(r, 1);
}

static int map_replicated(const struct zh_redis *r)
{
    return slots_complete(r, 1);
}

/*
 * Made as redis-cli --cluster create makes it, without its one-second
 * polls: the same slot ranges (16384/n each, rounded as it rounds), a
 * config epoch per master, and CLUSTER MEET; then each replica meets
 * every master and follows its own.
 */
static void cluster_start(struct zh_redis *nodes, size_t n, size_t replicas,
                          unsigned node_timeout_ms, char *url, size_t cap)
{
    if (n == 0 || n > 6)
        fatal("zh_cluster_start: 1 to 6 nodes");
    int uoff = snprintf(url, cap, "redis+cluster://");
    double per = 16384.0 / (double)n, cursor = 0;
    long first = 0;
    for (size_t i = 0; i < n; i++) {
        cluster_node_start(&nodes[i], node_timeout_ms);
        uoff +=
            snprintf(url + uoff, cap - (size_t)uoff, "%s127.0.0.1:%d", i ? "," : "", nodes[i].port);
        long last = (long)(cursor + per - 1 + 0.5); /* rounded, as redis-cli does */
        if (last > 16383 || i == n - 1)
            last = 16383;
        redisReply *r = node_command(&nodes[i], "CLUSTER ADDSLOTSRANGE %ld %ld", first, last);
        redisReply *e = node_command(&nodes[i], "CLUSTER SET-CONFIG-EPOCH %d", (int)i + 1);
        if (r == NULL || r->type != REDIS_REPLY_STATUS || e == NULL ||
            e->type != REDIS_REPLY_STATUS)
            fatal("cannot give slots %ld-%ld to port %d", first, last, nodes[i].port);
        freeReplyObject(r);
        freeReplyObject(e);
        first = last + 1;
        cursor += per;
    }
    for (size_t i = 1; i < n; i++)
        cluster_meet(&nodes[0], &nodes[i]);
    cluster_wait(nodes, n, state_ok, 10000, "cluster_state:ok on every master");
    if (replicas == 0)
        return;
    /* a replica for each master: it meets every master, then follows its own */
    for (size_t i = 0; i < n; i++) {
        struct zh_redis *rp = &nodes[n + i];
        cluster_node_start(rp, node_timeout_ms);
        for (size_t k = 0; k < n; k++)
            cluster_meet(rp, &nodes[k]);
    }
    for (size_t i = 0; i < n; i++) {
        struct zh_redis *rp = &nodes[n + i];
        redisReply *id = node_command(&nodes[i], "CLUSTER MYID");
        if (id == NULL || id->type != REDIS_REPLY_STRING)
            fatal("CLUSTER MYID failed on port %d", nodes[i].port);
        int ok = 0;
        for (int t = 0; t < 1000 && !ok; t++) {
            redisReply *r = node_command(rp, "CLUSTER REPLICATE %s", id->str);
            ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            if (r != NULL)
                freeReplyObject(r);
            if (!ok)
                sleep_ms(10); /* until the handshake has told it the master's id */
        }
        freeReplyObject(id);
        if (!ok)
            fatal("the node on port %d could not become a replica of port %d", rp->port,
                  nodes[i].port);
    }
    cluster_wait(nodes + n, n, replica_ready, 15000, "replicas in sync and in CLUSTER SLOTS");
    cluster_wait(nodes, n, map_replicated, 15000, "every master's CLUSTER SLOTS with replicas");
}

redisContext *zh_redis_connect_tcp(const struct zh_redis *r)
{
    struct timeval tv = {.tv_sec = 2};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c == NULL || c->err)
        fatal("cannot connect to 127.0.0.1:%d", r->port);
    redisSetTimeout(c, tv);
    return c;
}

static void redis_start_with(struct zh_redis *r, int tcp, long clock_offset_s, int sentinel,
                             const char *extra)
{
    memset(r, 0, sizeof(*r));
    r->sentinel = sentinel;
    r->clock_offset_s = clock_offset_s;
    zh_tmpdir(r->dir, sizeof(r->dir));
    chmod(r->dir, 0755); /* the broker may run as another user */
    snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
    snprintf(r->url, sizeof(r->url), "unix://%s", r->sock);
    char conf[300];
    snprintf(conf, sizeof(conf), "%s/redis.conf", r->dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        fatal("%s: %s", conf, strerror(errno));
    if (tcp) {
        r->port = free_port();
        snprintf(r->tcp_url, sizeof(r->tcp_url), "redis://127.0.0.1:%d", r->port);
    }
    fprintf(f,
            "port %d\nbind 127.0.0.1\nunixsocket %s\nunixsocketperm 777\ndir %s\n"
            "daemonize no\n%s"
            "logfile %s/redis.log\n%s",
            r->port, r->sock, r->dir,
            sentinel
                ? ""
                : "appendonly yes\nappendfsync always\nsave \"\"\nrepl-diskless-sync-delay 0\n",
            r->dir, extra);
    fclose(f);
    redis_spawn(r);
}

void zh_redis_restart(struct zh_redis *r)
{
    if (r->pid > 0)
        fatal("zh_redis_restart: still running");
    redis_spawn(r);
}

static void reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    forget_child(pid);
}

void zh_redis_kill(struct zh_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        reap(r->pid);
        r->pid = 0;
    }
}

/*
 * SIGTERM, repeated every second: Redis 7 refuses a SIGTERM that comes while
 * it writes its first AOF (a replica just after its full sync: "Writing
 * initial AOF, can't exit") and goes on running, so one SIGTERM could leave
 * the test waiting forever. SIGKILL after 15 s.
 */
static void terminate(pid_t pid)
{
    for (int i = 0; i < 1500; i++) {
        if (i % 100 == 0)
            kill(pid, SIGTERM);
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) {
            forget_child(pid);
            return;
        }
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    reap(pid);
}

void zh_redis_stop(struct zh_redis *r, int remove)
{
    if (r->pid > 0) {
        terminate(r->pid);
        r->pid = 0;
    }
    if (remove)
        zh_rmtree(r->dir);
}

redisContext *zh_redis_connect(const struct zh_redis *r)
{
    redisContext *c = redisConnectUnix(r->sock);
    if (c == NULL || c->err)
        fatal("cannot connect to redis at %s", r->sock);
    return c;
}

/* ---- broker --------------------------------------------------------------- */

void zh_broker_dump_log(const struct zh_broker *b)
{
    FILE *f = fopen(b->log, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "---- broker log %s ----\n", b->log);
    char line[1024];
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, stderr);
    fprintf(stderr, "---- end of broker log ----\n");
    fclose(f);
}

void zh_broker_start(struct zh_broker *b, const struct zh_broker_opts *o)
{
    static const struct zh_broker_opts none;
    if (o == NULL)
        o = &none;
    memset(b, 0, sizeof(*b));
    zh_tmpdir(b->dir, sizeof(b->dir));
    if (o->state_dir != NULL)
        snprintf(b->state, sizeof(b->state), "%s", o->state_dir);
    else
        snprintf(b->state, sizeof(b->state), "%s/state", b->dir);
    char policy_path[320];
    if (o->with_keys) {
        /* made before the broker starts, as an installer would, and then
         * given to the service user below */
        mkdir(b->state, 0700);
        snprintf(b->keys, sizeof(b->keys), "%s/keys", b->state);
        const char *init[] = {zh_bin("ztbctl"), "keys", "--dir", b->keys, "init", NULL};
        const char *ca[] = {zh_bin("ztbctl"), "ca",        "--dir", b->keys, "init",
                            "--trust-domain", "ztb.local", NULL};
        const char *const *steps[] = {init, ca};
        for (size_t i = 0; i < 2; i++) {
            char *out = NULL, *err = NULL;
            int rc = zh_run(steps[i], &out, &err);
            if (rc != 0)
                fatal("provisioning keys failed (%s %s): %s", steps[i][1], steps[i][4], err);
            free(out);
            free(err);
        }
    }
    if (o->policy != NULL) {
        snprintf(policy_path, sizeof(policy_path), "%s/policy.json", b->dir);
        FILE *pf = fopen(policy_path, "w");
        if (pf == NULL || fputs(o->policy, pf) < 0 || fclose(pf) != 0)
            fatal("cannot write %s", policy_path);
        chmod(policy_path, 0644);
    }
    struct stat sst;
    if (geteuid() == 0 && stat(b->state, &sst) == 0) {
        /* the install step: the state tree is the service user's (started as
         * root, the broker changes no owner below its state directory) */
        const char *own[] = {"/bin/chown", "-hR", "nobody:", b->state, NULL};
        /* a private Redis left running by a crashed broker may rename its
         * temp-*.rdb under chown's feet (ENOENT): try again */
        for (int attempt = 1;; attempt++) {
            char *err = NULL;
            int rc = zh_run(own, NULL, &err);
            int vanished = err != NULL && strstr(err, "No such file or directory") != NULL;
            if (rc == 0 || (vanished && attempt < 5)) {
                free(err);
                if (rc == 0)
                    break;
                sleep_ms(50);
                continue;
            }
            fatal("chown -hR nobody: %s: %s", b->state, err ? err : "");
        }
    }
    snprintf(b->admin_sock, sizeof(b->admin_sock), "%s/admin.sock", b->state);
    snprintf(b->log, sizeof(b->log), "%s/broker.log", b->dir);
    char ready[300];
    snprintf(ready, sizeof(ready), "%s/ready", b->dir);

    const char *argv[64];
    int n = 0;
    argv[n++] = zh_bin("ztb-broker");
    argv[n++] = "--state-dir";
    argv[n++] = b->state;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    argv[n++] = "--log-level";
    argv[n++] = "debug";
    argv[n++] = "--redis-timeout-ms";
    argv[n++] = "5000"; /* ZH_REDIS_TIMEOUT_MS: the machine's load is not under test */
    if (geteuid() == 0) {
        argv[n++] = "--user";
        argv[n++] = "nobody";
    }
    if (o->redis_url != NULL) {
        argv[n++] = "--redis";
        argv[n++] = o->redis_url;
    }
    if (o->policy != NULL) {
        argv[n++] = "--policy";
        argv[n++] = policy_path;
    }
    if (o->tls_cert != NULL) {
        argv[n++] = "--tls-cert";
        argv[n++] = o->tls_cert;
        argv[n++] = "--tls-key";
        argv[n++] = o->tls_key;
        zh_tls_trust(o->tls_cert);
    }
    for (const char *const *e = o->extra_args; e != NULL && *e != NULL && n < 62; e++)
        argv[n++] = *e;
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        fatal("fork: %s", strerror(errno));
    if (pid == 0) {
        child_setup(1);
        int fd = open(b->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (fd >= 0 && in >= 0) {
            dup2(in, 0);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (o->clock_offset_s != 0)
            preload_clockshift(o->clock_offset_s);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    remember_child(pid);
    b->pid = pid;
    for (int i = 0; i < 1500; i++) { /* 15 s: ASan builds start slowly */
        FILE *f = fopen(ready, "r");
        unsigned port = 0;
        if (f != NULL) {
            int got = fscanf(f, "%u", &port);
            fclose(f);
            if (got == 1 && port > 0) {
                b->port = (uint16_t)port;
                snprintf(b->url, sizeof(b->url), "%s://127.0.0.1:%u",
                         o->tls_cert ? "https" : "http", port);
                struct zh_resp r;
                if (zh_get(b, "/healthz", &r) == 0 && r.status == 200) {
                    zh_resp_free(&r);
                    return;
                }
                zh_resp_free(&r);
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            forget_child(pid);
            zh_broker_dump_log(b);
            fatal("ztb-broker exited at start (status %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
        sleep_ms(10);
    }
    zh_broker_dump_log(b);
    fatal("ztb-broker did not become healthy within 15 s");
}

void zh_broker_start_issuing(struct zh_broker *b, const char *redis_url, const char *policy)
{
    struct zh_broker_opts o = {.redis_url = redis_url, .with_keys = 1, .policy = policy};
    zh_broker_start(b, &o);
}

int zh_broker_stop(struct zh_broker *b)
{
    if (b->pid <= 0)
        return -1;
    kill(b->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 3000; i++) { /* 30 s */
        pid_t w = waitpid(b->pid, &st, WNOHANG);
        if (w == b->pid)
            break;
        if (i == 2999) {
            zh_broker_dump_log(b);
            kill(b->pid, SIGKILL);
            waitpid(b->pid, &st, 0);
            fprintf(stderr, "harness: broker did not stop within 30 s of SIGTERM\n");
        }
        sleep_ms(10);
    }
    forget_child(b->pid);
    b->pid = 0;
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    if (rc != 0) { /* the test will fail on it: show why */
        fprintf(stderr, "harness: the broker ended with %s %d\n",
                WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? rc : -rc);
        zh_broker_dump_log(b);
    }
    return rc;
}

/* ---- HTTP ----------------------------------------------------------------- */

struct sink {
    char *p;
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    char *np = realloc(s->p, s->len + n + 1);
    if (np == NULL)
        return 0;
    memcpy(np + s->len, data, n);
    s->p = np;
    s->len += n;
    s->p[s->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct zh_resp *r = ud;
    size_t n = size * nmemb;
    size_t used = strlen(r->headers);
    if (strncmp(data, "HTTP/", 5) == 0) { /* a new response (e.g. after 100) */
        r->headers[0] = '\0';
        used = 0;
    }
    if (used + n < sizeof(r->headers)) {
        memcpy(r->headers + used, data, n);
        r->headers[used + n] = '\0';
    }
    return n;
}

static __thread const char *t_ca, *t_cert, *t_key;

void zh_tls_trust(const char *ca_file)
{
    t_ca = ca_file;
}

void zh_tls_client(const char *cert_file, const char *key_file)
{
    t_cert = cert_file;
    t_key = key_file;
}

int zh_http(const char *method, const char *url, const char *unix_sock, const char *ctype,
            const void *body, size_t body_len, const char *const *headers, struct zh_resp *out)
{
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    if (c == NULL)
        fatal("curl_easy_init");
    struct sink s = {0};
    struct curl_slist *h = NULL;
    char cth[256];
    if (ctype != NULL) {
        snprintf(cth, sizeof(cth), "Content-Type: %s", ctype);
        h = curl_slist_append(h, cth);
    }
    h = curl_slist_append(h, "Expect:");
    for (const char *const *p = headers; p != NULL && *p != NULL; p++)
        h = curl_slist_append(h, *p);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (unix_sock != NULL)
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_sock);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (t_ca != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, t_ca);
    if (t_cert != NULL) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, t_cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, t_key);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    out->body = s.p ? s.p : strdup("");
    out->len = s.len;
    return rc == CURLE_OK ? 0 : -1;
}

long zh_wait_ready(const struct zh_broker *b, long limit_ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char last[512] = "no answer";
    for (;;) {
        struct zh_resp r;
        int got = zh_get(b, "/readyz", &r) == 0;
        int ok = got && r.status == 200;
        if (got && !ok)
            snprintf(last, sizeof(last), "%ld %s", r.status, r.body ? r.body : "");
        zh_resp_free(&r);
        clock_gettime(CLOCK_MONOTONIC, &t);
        long ms = (long)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (ok)
            return ms;
        if (ms >= limit_ms) {
            fprintf(stderr, "/readyz not ready after %ld ms: %s\n", ms, last);
            return -1;
        }
        usleep(20000);
    }
}

int zh_get(const struct zh_broker *b, const char *path, struct zh_resp *out)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", b->url, path);
    return zh_http("GET", url, NULL, NULL, NULL, 0, NULL, out);
}

int zh_post_form(const struct zh_broker *b, const char *path, const char *form, struct zh_resp *out)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", b->url, path);
    return zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form, strlen(form), NULL,
                   out);
}

int zh_admin_send(const struct zh_broker *b, const char *method, const char *path,
                  const char *ctype, const void *body, size_t body_len, struct zh_resp *out)
{
    memset(out, 0, sizeof(*out));
    struct ztb_admin_request rq = {.socket_path = b->admin_sock,
                                   .method = method,
                                   .path = path,
                                   .content_type = ctype,
                                   .body = body,
                                   .body_len = body_len,
                                   .timeout_ms = 10000};
    struct ztb_admin_response rs;
    char err[256];
    ztb_err rv = ztb_admin_call(&rq, &rs, err, sizeof(err));
    if (rv != ZTB_OK) {
        if (rv != ZTB_ERR_UNAVAILABLE)
            fatal("admin call %s %s: %s", method, path, ztb_strerror(rv));
        out->body = strdup("");
        return -1;
    }
    out->status = rs.status;
    snprintf(out->headers, sizeof(out->headers), "%s", rs.headers);
    out->body = rs.body; /* taken */
    out->len = rs.len;
    return 0;
}

int zh_admin(const struct zh_broker *b, const char *method, const char *path, const char *json_body,
             struct zh_resp *out)
{
    return zh_admin_send(b, method, path, json_body ? "application/json" : NULL, json_body,
                         json_body ? strlen(json_body) : 0, out);
}

const char *zh_resp_header(const struct zh_resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; *p;) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = ll - (size_t)(v - p);
            while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        if (eol == NULL)
            break;
        p = eol + 1;
    }
    return NULL;
}

void zh_resp_free(struct zh_resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* ---- tools ---------------------------------------------------------------- */

static char *slurp_fd(int fd)
{
    struct sink s = {0};
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            on_body(buf, 1, (size_t)n, &s);
    return s.p ? s.p : strdup("");
}

int zh_run(const char *const *argv, char **out, char **err)
{
    char tmpl_o[] = "/tmp/ztb-run-out.XXXXXX", tmpl_e[] = "/tmp/ztb-run-err.XXXXXX";
    int fo = mkstemp(tmpl_o), fe = mkstemp(tmpl_e);
    if (fo < 0 || fe < 0)
        fatal("mkstemp: %s", strerror(errno));
    unlink(tmpl_o);
    unlink(tmpl_e);
    pid_t pid = fork();
    if (pid < 0)
        fatal("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    lseek(fo, 0, SEEK_SET);
    lseek(fe, 0, SEEK_SET);
    if (out != NULL)
        *out = slurp_fd(fo);
    if (err != NULL)
        *err = slurp_fd(fe);
    close(fo);
    close(fe);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}
