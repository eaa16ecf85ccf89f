/*
 * harness.h - run real processes for integration tests.
 *
 * Integration tests talk to the real ztb-broker and a real redis-server over
 * real sockets. The harness starts each in its own scratch directory (a
 * redis-server with its own config on a unix socket, no TCP port), waits
 * until it answers, and stops it afterwards. Nothing is skipped: if
 * redis-server is missing the test fails and says how to install it.
 *
 * When the tests run as root (CI), brokers are started with --user nobody,
 * so the privilege drop is exercised too; a state directory made before the
 * start is first given to nobody (chown -hR), as an install step would.
 */
#ifndef ZTB_TEST_HARNESS_H
#define ZTB_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

/* ---- scratch directories ------------------------------------------------ */

/* Make a fresh directory under $TMPDIR (or /tmp); aborts the test on failure. */
void zh_tmpdir(char *out, size_t cap);

/*
 * A self-signed P-256 certificate and key for a test server on loopback
 * (CN localhost, SANs 127.0.0.1 and localhost, one day), written to
 * DIR/server.crt and DIR/server.key (paths into crt and key, 300 bytes each).
 * Fails the test if openssl cannot make them.
 */
void zh_tls_server_cert(const char *dir, char crt[300], char key[300]);

/* Remove a directory tree (best effort). */
void zh_rmtree(const char *dir);

/* ---- redis-server --------------------------------------------------------- */

/*
 * The Redis command timeout tests use (the broker's default is 250 ms). A
 * loaded 2-core machine running ASan builds can stall a command for longer;
 * a test must not fail on the machine's load. Tests of the timeout itself
 * set their own.
 */
#define ZH_REDIS_TIMEOUT_MS 5000

struct zh_redis {
    pid_t pid;
    char dir[256];
    char sock[300];
    char url[320];    /* unix://... for --redis */
    int port;         /* zh_redis_start_tcp: the loopback TCP port, else 0 */
    char tcp_url[64]; /* redis://127.0.0.1:PORT */
    /* Redis's wall clock runs this many seconds ahead (negative: behind) of
     * the machine's, through the clockshift library (clockshift.c). Set it
     * before zh_redis_restart to step the clock of a restarted Redis. */
    long clock_offset_s;
    int sentinel; /* started with --sentinel (zh_sentinel_start) */
    int bus_port; /* a Cluster node: its cluster bus port */
};

/* Start redis-server in a new scratch directory; wait until it answers. */
void zh_redis_start(struct zh_redis *r);

/* The same, with Redis's wall clock clock_offset_s seconds off the machine's. */
void zh_redis_start_clock(struct zh_redis *r, long clock_offset_s);

/* The same, also listening on a free loopback TCP port. */
void zh_redis_start_tcp(struct zh_redis *r);
/* The same (unix socket only, no plain TCP port) with extra lines appended
 * to its redis.conf, e.g. "tls-port N\ntls-cert-file F\n..." or ACL rules. */
void zh_redis_start_conf(struct zh_redis *r, const char *extra);
/* A free loopback TCP port (for a tls-port). */
int zh_free_port(void);

/*
 * A replica of master (which must have a TCP port): its own directory,
 * socket and loopback port; returns once it answers, and (wait_sync) once
 * its link to the master is up.
 */
void zh_redis_start_replica(struct zh_redis *r, const struct zh_redis *master, int wait_sync);

/*
 * A sentinel (redis-server --sentinel) on a free loopback port (r->port,
 * r->tcp_url) watching master under name with quorum, with small timeouts
 * so a test's failover takes seconds: down-after-milliseconds 1000,
 * failover-timeout 3000.
 */
void zh_sentinel_start(struct zh_redis *r, const struct zh_redis *master, const char *name,
                       int quorum);

/* A sentinel with only these config lines (its own `sentinel monitor`,
 * `tls-port`...) after the harness's (unix socket, no TCP port). */
void zh_sentinel_start_conf(struct zh_redis *r, const char *extra);

/*
 * A Redis Cluster of n (1..6) masters without replicas on loopback: each
 * node started with cluster-enabled yes (its bus on another free port),
 * given the slot ranges `redis-cli --cluster create` would give it (16384/n
 * each, in order) and joined with CLUSTER MEET, and returned once every
 * node says cluster_state:ok. url gets
 * "redis+cluster://127.0.0.1:P1,127.0.0.1:P2,..." (cap bytes).
 */
void zh_cluster_start(struct zh_redis *nodes, size_t n, char *url, size_t cap);

/*
 * The same with one replica per master: nodes[0..n) are the masters
 * (slot ranges in that order, as above), nodes[n + i] the replica of
 * nodes[i] (CLUSTER MEET, then CLUSTER REPLICATE), 2n entries in all.
 * cluster-node-timeout is node_timeout_ms (small: a kill -9 is failed
 * over within a few seconds) and cluster-replica-validity-factor 0 (a
 * replica may always take over). Returns once every replica's link is up
 * and every node's CLUSTER SLOTS lists each master with its replica; url
 * names the masters as seeds.
 */
void zh_cluster_start_replicated(struct zh_redis *nodes, size_t n, unsigned node_timeout_ms,
                                 char *url, size_t cap);

/* A new hiredis connection to a server's TCP port (sentinels, replicas). */
redisContext *zh_redis_connect_tcp(const struct zh_redis *r);

/* Start it again on the same directory and socket (after stop or kill). */
void zh_redis_restart(struct zh_redis *r);

/* SIGKILL (a crash: no AOF rewrite) and reap. */
void zh_redis_kill(struct zh_redis *r);

/* SIGTERM, reap, and (if remove) delete its directory. */
void zh_redis_stop(struct zh_redis *r, int remove);

/* A new hiredis connection to it (caller frees with redisFree). */
redisContext *zh_redis_connect(const struct zh_redis *r);

/* ---- ztb-broker ----------------------------------------------------------- */

struct zh_broker_opts {
    const char *redis_url;         /* NULL: the broker runs its own Redis */
    const char *const *extra_args; /* NULL-terminated, may be NULL */
    const char *state_dir;         /* NULL: a fresh one under the scratch dir */
    /* Provision before start: a key store and agent CA (trust domain
     * ztb.local) in STATE/keys, and this policy document (JSON text) as
     * --policy. */
    int with_keys;
    const char *policy;
    /* Serve HTTPS with this certificate and key (PEM files); the harness then
     * trusts tls_cert for its own requests. */
    const char *tls_cert;
    const char *tls_key;
    /* The broker's wall clock runs this many seconds off the machine's
     * (clockshift.c); its sleeps, on the kernel's clocks, do not move. */
    long clock_offset_s;
};

struct zh_broker {
    pid_t pid;
    uint16_t port;
    char dir[256];        /* scratch directory (log, ready file) */
    char state[300];      /* --state-dir */
    char admin_sock[320]; /* --admin-socket */
    char log[300];        /* stdout+stderr of the broker */
    char url[64];         /* http://127.0.0.1:PORT: also the issuer */
    char keys[320];       /* STATE/keys when provisioned */
};

/* Start ztb-broker; wait until it has written its ready file and /healthz
 * answers 200. Fails the test (with the broker's log) if it does not. */
void zh_broker_start(struct zh_broker *b, const struct zh_broker_opts *o);

/* SIGTERM and wait; returns the exit status (or -signal). */
int zh_broker_stop(struct zh_broker *b);

/* Wait until /readyz answers 200: the milliseconds it took, or -1 after
 * limit_ms (then the last answer's body is printed to stderr). */
long zh_wait_ready(const struct zh_broker *b, long limit_ms);

/* Print the broker's log to stderr (on failure). */
void zh_broker_dump_log(const struct zh_broker *b);

/* Start a broker (with_keys set) on redis_url (NULL: private) with policy. */
void zh_broker_start_issuing(struct zh_broker *b, const char *redis_url, const char *policy);

/* Path of a built binary, e.g. zh_bin("ztbctl"). */
const char *zh_bin(const char *name);

/* ---- HTTP client ---------------------------------------------------------- */

struct zh_resp {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
    char headers[8192]; /* raw response headers */
};

/*
 * One HTTP request. unix_sock: NULL for TCP, else the socket path (url's
 * host is then ignored). headers: NULL-terminated "Name: value" strings or
 * NULL. Returns 0, or -1 on a transport error (status 0).
 */
int zh_http(const char *method, const char *url, const char *unix_sock, const char *ctype,
            const void *body, size_t body_len, const char *const *headers, struct zh_resp *out);

/*
 * TLS settings for later zh_http calls on this thread: the CA file to trust
 * for https URLs (NULL: none set), and a client certificate and key (PEM
 * files) to present (NULL: none).
 */
void zh_tls_trust(const char *ca_file);
void zh_tls_client(const char *cert_file, const char *key_file);

/* Shorthands for the broker's public API. */
int zh_get(const struct zh_broker *b, const char *path, struct zh_resp *out);
int zh_post_form(const struct zh_broker *b, const char *path, const char *form,
                 struct zh_resp *out);

/*
 * A call to the broker's admin API through the admin client ztbctl uses
 * (cli/admin_client.h): json_body NULL for none. No response headers are
 * kept. Returns 0, or -1 if the socket could not be reached (status 0).
 */
int zh_admin(const struct zh_broker *b, const char *method, const char *path, const char *json_body,
             struct zh_resp *out);

/* The same with any content type and body (body_len bytes, NULL: none). */
int zh_admin_send(const struct zh_broker *b, const char *method, const char *path,
                  const char *ctype, const void *body, size_t body_len, struct zh_resp *out);

/* A response header's value (copied into out), or NULL. */
const char *zh_resp_header(const struct zh_resp *r, const char *name, char *out, size_t cap);

void zh_resp_free(struct zh_resp *r);

/* ---- running tools -------------------------------------------------------- */

/*
 * Path of the clockshift library (clockshift.c). A test that must move its
 * own wall clock re-executes itself with LD_PRELOAD set to it (and
 * ASAN_OPTIONS allowing the preload); ZTB_CLOCK_OFFSET_S in its
 * environment, changed with setenv at any time, is the offset.
 */
const char *zh_clockshift_lib(void);

/*
 * Run argv (argv[0] a path), wait, capture stdout and stderr (caller frees
 * them; either may be NULL if unwanted). Returns the exit status, or -signal.
 */
int zh_run(const char *const *argv, char **out, char **err);

#endif /* ZTB_TEST_HARNESS_H */
