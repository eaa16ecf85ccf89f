/*
 * main.c - ztb-broker: start, serve, drain, stop.
 *
 * Order matters for safety: configuration is parsed and the listening socket
 * bound first (possibly as root, for a low port); then root is given up for
 * good; only then is Redis started or reached, keys read, and requests
 * served. All signals are blocked in every thread and taken synchronously
 * here with sigwait(), so no handler ever runs in a signal context.
 */
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/chain.h"
#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "wire/route_table.h"
#include "broker/ssf/ssf.h"
#include "broker/ssf/ssf_transmit.h"
#include "broker/tokens/approval_webhook.h"
#include "broker/check_config.h"
#include "broker/service.h"
#include "broker/auth/client_auth.h"
#include "broker/signals/detectors.h"
#include "broker/signals/scope_summary.h"
#include "broker/signer/keys.h"
#include "broker/signer/signer.h"
#include "broker/signals/signals.h"
#include "policy/policy.h"
#include "broker/privdrop.h"
#include "broker/admin/policy_shadow.h"
#include "broker/admin/reload.h"
#include "broker/admin/admin_roles.h"
#include "broker/store/redis_private.h"
#include "broker/store/redis_preflight.h"
#include "broker/store/store_lease.h"
#include "broker/http/metrics.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/secret.h"

/* Operators' connections on the admin socket (ztbctl makes one at a time). */
#define ADMIN_CONNECTION_LIMIT 64
/* Scrapers on the optional metrics listener. */
#define METRICS_CONNECTION_LIMIT 16
/* Descriptors besides connections: listeners, each worker's Redis
 * connection and event descriptors, audit and key files, the private Redis. */
#define FD_RESERVE(threads) (64u + 3u * (threads))

static void die(const char *what, const char *msg)
{
    ztb_log(ZTB_LOG_ERROR, "broker.fatal", ZTB_F_STR("step", what), ZTB_F_STR("reason", msg));
    fprintf(stderr, "ztb-broker: %s: %s\n", what, msg);
    if (g_broker.private_redis)
        redis_private_stop();
    exit(1);
}

/*
 * mkdir -p with mode for the last component; parents get 0755. The mode is
 * set through a descriptor opened without following a symlink.
 */
/* A rate lease's tokens reached the agent's hour count: the baseline's
 * rate detector looks at it as at an issued token's (detect_baseline). */
static void lease_settled(const char *agent, const char *action,
                          const struct store_baseline_seen *bl)
{
    detect_baseline(agent, action, NULL, NULL, bl);
}

static int mkdirs(const char *path, mode_t mode)
{
    char tmp[BROKER_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return -1;
    int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fchmod(fd, mode);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/*
 * The ready file is opened before privileges are dropped (it may live where
 * the service user cannot create files) and written once the broker serves:
 * one line with the bound port, in a single write.
 */
static int open_ready_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        die("ready_file", strerror(errno));
    return fd;
}

static int slurp(const char *path, ztb_buf *out)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ztb_buf_append(out, chunk, n);
    ztb_wipe(chunk, sizeof(chunk));
    int bad = ferror(f) || ztb_buf_error(out) != ZTB_OK;
    fclose(f);
    return bad ? -1 : 0;
}

/* Read --tls-cert/--tls-key (both or neither). 1 if TLS is on. */
static int read_tls(const struct broker_config *cfg, ztb_buf *cert, ztb_buf *key)
{
    int c = cfg->tls_cert_file[0] != '\0', k = cfg->tls_key_file[0] != '\0';
    if (!c && !k)
        return 0;
    if (c != k)
        die("tls", "--tls-cert and --tls-key go together");
    char err[512];
    if (slurp(cfg->tls_cert_file, cert) != 0) {
        snprintf(err, sizeof(err), "%s: %s", cfg->tls_cert_file, strerror(errno));
        die("tls", err);
    }
    if (slurp(cfg->tls_key_file, key) != 0) {
        snprintf(err, sizeof(err), "%s: %s", cfg->tls_key_file, strerror(errno));
        die("tls", err);
    }
    return 1;
}

/* SIGHUP: read the TLS files again and present them from the next handshake
 * on; a pair that would not start the broker is refused, the one in force
 * stays (logged with the reason). The files are read as the service user. */
static void reload_tls(const struct broker_config *cfg)
{
    if (cfg->tls_cert_file[0] == '\0')
        return;
    ztb_buf cert, key;
    ztb_buf_init(&cert, 1 << 20);
    ztb_buf_init_secret(&key, 1 << 20);
    char why[512] = "";
    const char *bad = NULL;
    if (slurp(cfg->tls_cert_file, &cert) != 0)
        bad = cfg->tls_cert_file;
    else if (slurp(cfg->tls_key_file, &key) != 0)
        bad = cfg->tls_key_file;
    if (bad != NULL)
        snprintf(why, sizeof(why), "%s: %s (the service user must be able to read it)", bad,
                 strerror(errno));
    if (bad != NULL ||
        http_tls_reload(ztb_buf_cstr(&cert), ztb_buf_cstr(&key), why, sizeof(why)) != ZTB_OK)
        ztb_log(ZTB_LOG_ERROR, "tls.reload_refused", ZTB_F_STR("why", why),
                ZTB_F_STR("kept", "the certificate in force"));
    else
        ztb_log(ZTB_LOG_INFO, "tls.reloaded", ZTB_F_STR("cert", cfg->tls_cert_file));
    ztb_buf_free(&key); /* wiped */
    ztb_buf_free(&cert);
}

static void write_ready_file(int fd, unsigned port)
{
    char line[16];
    int n = snprintf(line, sizeof(line), "%u\n", port);
    if (write(fd, line, (size_t)n) != n || close(fd) != 0)
        die("ready_file", strerror(errno));
}

/*
 * Keys: an explicitly configured key store must open; the default one may be
 * missing (the broker then serves health and enrollment of nothing, and
 * refuses tokens with 503 until `ztbctl keys init` and a SIGHUP).
 */
static void load_keys(struct broker_config *cfg)
{
    char err[512];
    int explicit_dir = cfg->keys_dir[0] != '\0';
    if (!explicit_dir &&
        (size_t)snprintf(cfg->keys_dir, sizeof(cfg->keys_dir), "%.*s/keys",
                         (int)sizeof(cfg->keys_dir) - 6, cfg->state_dir) >= sizeof(cfg->keys_dir))
        die("keys", "state_dir too long");
    /* the signer process reads the key files; this one never does */
    keys_configure("/proc/self/exe", cfg->session_key_file, cfg->threads + 4);
    ztb_err rv =
        keys_open(cfg->keys_dir, cfg->key_passphrase_file, (int64_t)time(NULL), err, sizeof(err));
    if (rv == ZTB_ERR_NOT_FOUND && !explicit_dir) {
        ztb_log(ZTB_LOG_WARN, "keys.none", ZTB_F_STR("dir", cfg->keys_dir), ZTB_F_STR("hint", err));
        return;
    }
    if (rv != ZTB_OK)
        die("keys", err);
    if (keys_start_refresher(5) != ZTB_OK)
        die("keys", "cannot start the key refresher");
}

/* The audit writer's checkpoint signer: a JWS by the active token key,
 * through the signer process (on the checkpoint thread, never a request's). */
static ztb_err sign_checkpoint(void *arg, const void *payload, size_t n, ztb_buf *jws)
{
    (void)arg;
    struct keys_state *s = keys_acquire();
    ztb_err rv = ZTB_ERR_NO_ACTIVE_KEY;
    if (s != NULL && s->active != NULL) {
        const ztb_jws_sign_opts o = {.typ = AUDIT_CHECKPOINT_TYP};
        rv = keys_sign_jws(s, &o, payload, n, jws);
    }
    keys_release(s);
    return rv;
}

/* The approval webhook's signer: a JWS of typ by the active token key,
 * through the signer process (on the webhook's thread, never a request's). */
static ztb_err sign_webhook(void *arg, const char *typ, const void *payload, size_t n, ztb_buf *jws)
{
    (void)arg;
    struct keys_state *s = keys_acquire();
    ztb_err rv = ZTB_ERR_NO_ACTIVE_KEY;
    if (s != NULL && s->active != NULL) {
        const ztb_jws_sign_opts o = {.typ = typ};
        rv = keys_sign_jws(s, &o, payload, n, jws);
    }
    keys_release(s);
    return rv;
}

/* Start the approval notifications if a webhook is configured. */
static void start_approval_webhook(const struct broker_config *cfg)
{
    if (cfg->approval_webhook[0] == '\0')
        return;
    char err[512];
    const struct approval_webhook_opts o = {
        .url = cfg->approval_webhook,
        .allow_http = (int)cfg->approval_webhook_allow_http,
        .resolutions = (int)cfg->approval_webhook_resolutions,
        .timeout_ms = cfg->approval_webhook_timeout_ms,
        .max_attempts = cfg->approval_webhook_attempts,
        .backoff_ms = cfg->approval_webhook_backoff_ms,
        .issuer = g_broker.issuer,
        .sign = sign_webhook,
    };
    if (approval_webhook_start(&o, err, sizeof(err)) != ZTB_OK)
        die("approval_webhook", err);
}

/* The replica id of the audit chain: the configured one, or the host name
 * cut to what an id may hold. */
static void set_audit_replica(const struct broker_config *cfg)
{
    char id[AUDIT_REPLICA_MAX + 1] = "";
    if (cfg->audit_replica[0] != '\0') {
        if (audit_set_replica(cfg->audit_replica) != ZTB_OK)
            die("config", "audit_replica: 1-64 letters, digits, '.', '_' or '-'");
        return;
    }
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0)
        host[0] = '\0';
    size_t j = 0;
    for (size_t i = 0; host[i] != '\0' && j < AUDIT_REPLICA_MAX; i++) {
        char c = host[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        id[j++] = ok ? c : '_';
    }
    id[j] = '\0';
    (void)audit_set_replica(j > 0 ? id : "ztb");
}

static void load_policy(const struct broker_config *cfg)
{
    if (policy_holder_new(&g_broker.policy) != ZTB_OK ||
        policy_shadow_new(&g_broker.shadow) != ZTB_OK)
        die("policy", "out of memory");
    /* at start and at every reload alike */
    policy_holder_require_trust_domain(g_broker.policy, cfg->trust_domain);
    if (cfg->policy_file[0] == '\0') {
        ztb_log(ZTB_LOG_WARN, "policy.none",
                ZTB_F_STR("hint", "no --policy: every token request is denied"));
        return;
    }
    json_t *problems = NULL;
    if (broker_policy_reload(&g_broker, "broker", NULL, &problems) != ZTB_OK) {
        size_t i;
        json_t *m;
        json_array_foreach(problems, i, m)
        {
            fprintf(stderr, "ztb-broker: %s: %s\n", cfg->policy_file, json_string_value(m));
        }
        json_decref(problems);
        die("policy", "the policy file has errors (listed above)");
    }
}

/* The route table of GET /v1/authorize, if configured: it must load at start;
 * a reload that fails keeps the table in force (logged). */
static void load_authorize_routes(const struct broker_config *cfg)
{
    if (cfg->authorize_routes[0] == '\0')
        return;
    char why[512];
    g_broker.authz_routes = route_holder_new();
    if (g_broker.authz_routes == NULL)
        die("authorize_routes", "out of memory");
    if (route_holder_reload(g_broker.authz_routes, cfg->authorize_routes, why, sizeof(why)) !=
        ZTB_OK)
        die("authorize_routes", why);
}

/* The SSF configuration, if any: it must load at start (read once; a
 * change needs a restart), then the push delivery thread starts. */
static void load_ssf(const struct broker_config *cfg)
{
    if (cfg->ssf_config[0] == '\0')
        return;
    char why[512] = "";
    if (ssf_config_load(cfg->ssf_config, g_broker.issuer, &g_broker.ssf, why, sizeof(why)) !=
        ZTB_OK)
        die("ssf_config", why);
    ssf_config_fetch_keys(g_broker.ssf); /* transmitters' jwks_uri: tried now, never fatal */
    if (ssf_transmit_start(g_broker.ssf, g_broker.issuer, cfg->trust_domain) != ZTB_OK)
        die("ssf_config", "cannot start the SSF push delivery thread");
}

static void reload_authorize_routes(const struct broker_config *cfg)
{
    char why[512];
    if (g_broker.authz_routes != NULL &&
        route_holder_reload(g_broker.authz_routes, cfg->authorize_routes, why, sizeof(why)) !=
            ZTB_OK)
        ztb_log(ZTB_LOG_ERROR, "authorize.routes_reload_failed", ZTB_F_STR("error", why),
                ZTB_F_STR("kept", "the route table in force"));
}

/* The gid of group name (an admin socket's group, opt names the option),
 * or die saying how to create it. */
static gid_t admin_gid(const char *opt, const char *name)
{
    struct group *g = getgrnam(name);
    if (g == NULL) {
        char why[256];
        snprintf(why, sizeof(why), "no group %s: create it (groupadd --system %s) or fix %s", name,
                 name, opt);
        die(opt, why);
    }
    return g->gr_gid;
}

/* Bind the admin socket path for group gid (0660) or, with group "", for
 * the broker's user only (0600); returns the listening descriptor or dies.
 * The socket is made 0600, handed to the group, and only then opened to it. */
static int admin_listen(const char *path, const char *opt, const char *group, gid_t gid)
{
    char err[512];
    int fd;
    if (http_listen_unix(path, 0600, &fd, err, sizeof(err)) != ZTB_OK)
        die(opt, err);
    if (group[0] != '\0' && (chown(path, (uid_t)-1, gid) != 0 || chmod(path, 0660) != 0)) {
        snprintf(err, sizeof(err),
                 "cannot hand %s to group %s: %s (the broker's user must be a member: usermod "
                 "-aG %s USER, or SupplementaryGroups= in the unit)",
                 path, group, strerror(errno), group);
        die(opt, err);
    }
    return fd;
}

static void drain_and_stop(struct http_server *api, struct http_server *admin,
                           struct http_server *admin_ro, struct http_server *mon)
{
    atomic_store(&g_broker.draining, 1);
    ztb_log(ZTB_LOG_INFO, "broker.draining", ZTB_F_INT("timeout_s", g_broker.cfg.drain_timeout_s));
    http_server_quiesce(api);
    http_server_quiesce(admin);
    if (admin_ro != NULL)
        http_server_quiesce(admin_ro);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        /* requests, not connections: an idle keep-alive connection (a
         * gateway's pool) is closed by the stop, not waited for */
        unsigned open = http_server_in_flight(api) + http_server_in_flight(admin) +
                        (admin_ro != NULL ? http_server_in_flight(admin_ro) : 0);
        if (open == 0)
            break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= (time_t)g_broker.cfg.drain_timeout_s) {
            ztb_log(ZTB_LOG_WARN, "broker.drain_timeout", ZTB_F_INT("requests_in_flight", open));
            break;
        }
        usleep(20000);
    }
    http_server_stop(api);
    http_server_stop(admin);
    http_server_stop(admin_ro);
    if (mon != NULL)
        http_server_stop(mon); /* scraped until the end */
}

int main(int argc, char **argv)
{
    /* the signer: this binary run again by keys_open (broker/signer/signer.h) */
    if (argc >= 2 && strcmp(argv[1], SIGNER_ARGV1) == 0)
        return signer_process_main(argc, argv);
    struct broker_config *cfg = &g_broker.cfg;
    char err[512] = "";
    int exit_now = 0;
    /* before anything secret is read: no core file, no ptrace by our user */
    if (ztb_no_core_dumps() != ZTB_OK) {
        fprintf(stderr, "ztb-broker: cannot turn core dumps off: %s\n", strerror(errno));
        return 1;
    }
    broker_config_defaults(cfg);
    if (broker_config_parse_args(cfg, argc, argv, &exit_now, err, sizeof(err)) != ZTB_OK) {
        fprintf(stderr, "ztb-broker: %s\n", err);
        return 2;
    }
    if (exit_now)
        return 0;
    if (cfg->check_config) {
        ztb_log_set_level(ZTB_LOG_WARN);
        return broker_check_config(cfg, stdout);
    }
    if (broker_config_check(cfg, err, sizeof(err)) != ZTB_OK) {
        fprintf(stderr, "ztb-broker: %s\n", err);
        return 2;
    }
    ztb_log_set_service("ztb-broker");
    broker_json_wipe_on_free();
    ztb_log_set_level(cfg->log_level);
    ztb_log_set_format(cfg->log_format);
    (void)service_log_target(cfg->log_target); /* checked by broker_config_check */
    http_access_log_enable(strcmp(cfg->access_log, "on") == 0);
    if (cfg->threads == 0) {
        /* Four per core (at most 64): a token request waits on its Redis
         * round trip, the signer and the audit write with its thread idle,
         * and the checks of the threads that wait at once go to Redis as one
         * pipeline. With one thread per core a 2-core machine ran at ~80% CPU;
         * with four instead of two, the pipelines hold ~4.2 checks instead of
         * ~2.3, and each token costs ~13% less broker CPU and ~14% less Redis
         * CPU, at the same p99 (docs/BENCHMARKS.md, "HTTP threads"). */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n > 0 ? (n >= 16 ? 64u : 4 * (unsigned)n) : 4;
    }
    if (cfg->admin_socket[0] == '\0' &&
        (size_t)snprintf(cfg->admin_socket, sizeof(cfg->admin_socket), "%s/admin.sock",
                         cfg->state_dir) >= sizeof(cfg->admin_socket))
        die("config", "state_dir too long");

    /* every thread inherits this mask; signals are taken by sigwait below */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    umask(077);
    if (mkdirs(cfg->state_dir, 0700) != 0) {
        snprintf(err, sizeof(err), "%s: %s", cfg->state_dir, strerror(errno));
        die("state_dir", err);
    }

    int api_fd;
    if (http_listen_tcp(cfg->listen_host, cfg->listen_port, &api_fd, &g_broker.port, err,
                        sizeof(err)) != ZTB_OK)
        die("listen", err);

    /* the optional metrics listener, bound while we may (a low port) */
    int metrics_fd = -1;
    uint16_t metrics_port = 0;
    if (cfg->metrics_host[0] != '\0' &&
        http_listen_tcp(cfg->metrics_host, cfg->metrics_port, &metrics_fd, &metrics_port, err,
                        sizeof(err)) != ZTB_OK)
        die("metrics_listen", err);

    /* a descriptor for every connection allowed, raised while we may (root) */
    cfg->connection_limit =
        http_fit_nofile(cfg->connection_limit, ADMIN_CONNECTION_LIMIT + METRICS_CONNECTION_LIMIT +
                                                   FD_RESERVE(cfg->threads));

    int ready_fd = cfg->ready_file[0] != '\0' ? open_ready_file(cfg->ready_file) : -1;
    /* TLS material may be readable by root only: read it before dropping */
    ztb_buf tls_cert, tls_key;
    ztb_buf_init(&tls_cert, 1 << 20);
    ztb_buf_init_secret(&tls_key, 1 << 20);
    int tls = read_tls(cfg, &tls_cert, &tls_key);

    /* the admin sockets' groups: resolved now, kept across the drop */
    gid_t admin_group_gid = 0, admin_ro_gid = 0;
    if (cfg->admin_group[0] != '\0') {
        admin_group_gid = admin_gid("admin_group", cfg->admin_group);
        privdrop_keep_group(admin_group_gid);
    }
    if (cfg->admin_readonly_group[0] != '\0') {
        admin_ro_gid = admin_gid("admin_readonly_group", cfg->admin_readonly_group);
        privdrop_keep_group(admin_ro_gid);
    }
    if (privdrop(cfg->user, cfg->state_dir, err, sizeof(err)) != ZTB_OK)
        die("privileges", err);

    if (cfg->redis_url[0] == '\0') {
        char sock[108];
        if (redis_private_start(cfg->state_dir, cfg->redis_server, sock, sizeof(sock), err,
                                sizeof(err)) != ZTB_OK)
            die("redis", err);
        snprintf(cfg->redis_url, sizeof(cfg->redis_url), "unix://%s", sock);
        g_broker.private_redis = 1;
    }
    if (redis_target_parse(cfg->redis_url, cfg->redis_timeout_ms, &g_broker.redis, err,
                           sizeof(err)) != ZTB_OK)
        die("config", err);
    /* the URL may carry a password: keep only the parsed, wipeable copy */
    memset(cfg->redis_url, 0, sizeof(cfg->redis_url));
    g_broker.redis.timeout_ms = cfg->redis_timeout_ms;
    redis_target_describe(&g_broker.redis, g_broker.redis_desc, sizeof(g_broker.redis_desc));
    redis_client_init(&g_broker.redis);
    redis_client_set_wait(
        cfg->redis_wait_replicas == BROKER_REDIS_WAIT_AUTO ? -1 : (int)cfg->redis_wait_replicas,
        cfg->redis_wait_timeout_ms);
    /* an old or evicting Redis is refused; a lost one starts not ready */
    if (redis_preflight_start(cfg->state_dir, (int)cfg->redis_allow_eviction, err, sizeof(err)) !=
        ZTB_OK)
        die("redis", err);

    char audit_dir[BROKER_PATH_MAX + 8];
    snprintf(audit_dir, sizeof(audit_dir), "%s/audit", cfg->state_dir);
    set_audit_replica(cfg);
    audit_set_max_bytes(cfg->audit_max_bytes);
    if (audit_open(audit_dir, 1, err, sizeof(err)) != ZTB_OK)
        die("audit", err);

    if (cfg->issuer[0] == '\0' && tls) {
        int v6 = strchr(cfg->listen_host, ':') != NULL;
        snprintf(cfg->issuer, sizeof(cfg->issuer), "https://%s%s%s:%u", v6 ? "[" : "",
                 cfg->listen_host, v6 ? "]" : "", g_broker.port);
    }
    if (cfg->issuer[0] != '\0') {
        snprintf(g_broker.issuer, sizeof(g_broker.issuer), "%s", cfg->issuer);
    } else {
        int v6 = strchr(cfg->listen_host, ':') != NULL;
        snprintf(g_broker.issuer, sizeof(g_broker.issuer), "http://%s%s%s:%u", v6 ? "[" : "",
                 cfg->listen_host, v6 ? "]" : "", g_broker.port);
    }
    client_auth_set_issuer(g_broker.issuer);
    client_auth_set_trust_domain(cfg->trust_domain);
    load_keys(cfg);
    if (keys_loaded()) {
        const struct audit_checkpoint_opts cp = {.sign = sign_checkpoint,
                                                 .every_records = cfg->audit_checkpoint_records,
                                                 .every_ms = cfg->audit_checkpoint_s * 1000u};
        if (audit_checkpoints_start(&cp) != ZTB_OK)
            die("audit", "cannot start the audit checkpoint thread");
    }
    start_approval_webhook(cfg);
    load_policy(cfg);
    load_authorize_routes(cfg);
    load_ssf(cfg);
    struct detect_config dc = {cfg->detect_window_s,      cfg->detect_denials,
                               cfg->detect_rate_limited,  cfg->detect_new_audience_s,
                               cfg->baseline_rate_factor, cfg->baseline_rate_min,
                               cfg->shadow_ai_threshold};
    scope_summary_set_window(cfg->detect_window_s);
    detectors_on_tick(scope_summary_tick, NULL); /* the out-of-scope summary, per window */
    if (detectors_start(&dc, signals_publish_detected, &g_broker) != ZTB_OK)
        die("detectors", "cannot start the detector thread");
    if (store_lease_start(lease_settled) != ZTB_OK)
        die("store", "cannot start the rate-lease settlement thread");

    int admin_fd =
        admin_listen(cfg->admin_socket, "admin_socket", cfg->admin_group, admin_group_gid);
    int admin_ro_fd = -1;
    if (cfg->admin_readonly_socket[0] != '\0')
        admin_ro_fd = admin_listen(cfg->admin_readonly_socket, "admin_readonly_socket",
                                   cfg->admin_readonly_group, admin_ro_gid);

    ztb_buf ca_pem;
    ztb_buf_init(&ca_pem, 1 << 20);
    if (tls && keys_ca() != NULL && ztb_ca_cert_pem(keys_ca(), &ca_pem) != ZTB_OK)
        die("tls", "cannot render the agent CA for client certificates");
    struct http_limits lim = {
        .max_body = cfg->max_body,
        .threads = cfg->threads,
        .connection_limit = cfg->connection_limit,
        .per_ip_connection_limit = cfg->per_ip_connection_limit,
        .connection_timeout_s = cfg->connection_timeout_s,
    };
    struct http_limits admin_lim = lim; /* the admin socket is never TLS */
    if (admin_lim.max_body < POLICY_MAX_DOCUMENT)
        admin_lim.max_body = POLICY_MAX_DOCUMENT; /* a candidate policy is a body */
    lim.on_too_large = handle_signals_too_large;  /* audits oversized signals */
    if (tls) {
        lim.tls_cert_pem = ztb_buf_cstr(&tls_cert);
        lim.tls_key_pem = ztb_buf_cstr(&tls_key);
        lim.tls_client_ca_pem = ca_pem.len > 0 ? ztb_buf_cstr(&ca_pem) : NULL;
    }
    struct http_server *api =
        http_server_start("api", api_fd, api_routes, api_routes_n, &lim, &g_broker);
    admin_lim.threads = 1;
    admin_lim.per_ip_connection_limit = 0;
    admin_lim.connection_limit = ADMIN_CONNECTION_LIMIT;
    struct http_server *admin =
        http_server_start("admin", admin_fd, admin_routes, admin_routes_n, &admin_lim, &g_broker);
    if (api == NULL || admin == NULL)
        die("http", "cannot start the HTTP server (see the log above)");
    struct http_server *admin_ro = NULL;
    if (admin_ro_fd >= 0) {
        struct http_limits ro_lim = admin_lim;
        ro_lim.gate = admin_readonly_gate; /* the read-only role: admin_roles.h */
        admin_ro = http_server_start("admin_readonly", admin_ro_fd, admin_routes, admin_routes_n,
                                     &ro_lim, &g_broker);
        if (admin_ro == NULL)
            die("admin_readonly_socket", "cannot start the read-only admin server (see the log)");
    }
    struct http_server *mon = NULL;
    if (metrics_fd >= 0) {
        struct http_limits mon_lim = admin_lim; /* one thread, never TLS */
        mon_lim.connection_limit = METRICS_CONNECTION_LIMIT;
        mon = http_server_start("metrics", metrics_fd, metrics_routes, metrics_routes_n, &mon_lim,
                                &g_broker);
        if (mon == NULL)
            die("metrics_listen", "cannot start the metrics listener (see the log above)");
        ztb_log(ZTB_LOG_INFO, "broker.metrics_listening", ZTB_F_STR("listen", cfg->metrics_host),
                ZTB_F_INT("port", metrics_port));
    }

    if (ready_fd >= 0)
        write_ready_file(ready_fd, g_broker.port);
    ztb_log(ZTB_LOG_INFO, "broker.started", ZTB_F_STR("listen", cfg->listen_host),
            ZTB_F_BOOL("tls", tls), ZTB_F_BOOL("mtls", lim.tls_client_ca_pem != NULL),
            ZTB_F_INT("port", g_broker.port), ZTB_F_STR("redis", g_broker.redis_desc),
            ZTB_F_STR("admin_socket", cfg->admin_socket), ZTB_F_INT("threads", cfg->threads),
            ZTB_F_INT("pid", getpid()));

    service_ready(g_broker.port);

    /* with a watchdog (WatchdogSec), wake at half its period to ping */
    uint64_t wd_ms = service_watchdog_interval_ms();
    struct timespec wd = {(time_t)(wd_ms / 1000), (long)(wd_ms % 1000) * 1000000L};
    for (;;) {
        int sig = 0;
        if (wd_ms > 0) {
            service_watchdog();
            sig = sigtimedwait(&sigs, NULL, &wd);
            if (sig < 0)
                continue; /* the period passed (EAGAIN) or EINTR */
        } else if (sigwait(&sigs, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            ztb_log(ZTB_LOG_INFO, "broker.reload");
            service_reloading(1);
            broker_policy_reload(&g_broker, "operator:SIGHUP", NULL, NULL);
            reload_authorize_routes(cfg);
            reload_tls(cfg);
            char rerr[256];
            if (audit_reopen(rerr, sizeof(rerr)) != ZTB_OK)
                ztb_log(ZTB_LOG_ERROR, "audit.reopen_failed", ZTB_F_STR("why", rerr));
            if (keys_loaded())
                keys_refresh((int64_t)time(NULL), NULL);
            service_reloading(0);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    service_stopping();

    drain_and_stop(api, admin, admin_ro, mon);
    store_lease_stop(); /* the leases' counts and unused units, to Redis */
    detectors_stop();
    (void)scope_summary_flush(); /* the window so far, before the log closes */
    ssf_transmit_stop();
    approval_webhook_stop();
    audit("broker.stopped", "broker", 1);
    audit_close();
    keys_close(); /* and the signer */
    http_tls_free();
    ztb_buf_free(&tls_key); /* wiped */
    ztb_buf_free(&tls_cert);
    ztb_buf_free(&ca_pem);
    policy_holder_free(g_broker.policy);
    policy_shadow_free(g_broker.shadow);
    route_holder_free(g_broker.authz_routes);
    ssf_config_free(g_broker.ssf);
    if (g_broker.private_redis)
        redis_private_stop();
    redis_client_shutdown();
    unlink(cfg->admin_socket);
    if (admin_ro_fd >= 0)
        unlink(cfg->admin_readonly_socket);
    ztb_log(ZTB_LOG_INFO, "broker.stopped");
    return 0;
}
