/*
 * config.c - parse ztb-broker's config file and flags (see config.h).
 *
 * One table describes every option: its name, type, where it lands in
 * struct broker_config, and its help line, so the file, the flags and
 * --help can never disagree.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/config.h"
#include "broker/http/push_client.h"
#include "broker/http/proxy.h"
#include "common/guard.h"
#include "common/redis_target.h"

#ifndef ZTB_VERSION
#define ZTB_VERSION "unknown"
#endif

enum opt_type {
    OPT_STR,
    OPT_UINT,
    OPT_SIZE,
    OPT_LISTEN,
    OPT_METRICS_LISTEN,
    OPT_LEVEL,
    OPT_FORMAT,
    OPT_LIST /* a comma-separated list; each use appends */
};

struct opt {
    const char *name; /* file spelling; the flag is --name with '-' for '_' */
    enum opt_type type;
    size_t off;
    size_t size; /* for strings: capacity; for numbers: max value */
    const char *arg;
    const char *help;
};

#define STR(field)      offsetof(struct broker_config, field), sizeof(((struct broker_config *)0)->field)
#define NUM(field, max) offsetof(struct broker_config, field), (max)

static const struct opt opts[] = {
    {"listen", OPT_LISTEN, 0, 0, "HOST:PORT", "HTTP listen address (default 127.0.0.1:8443)"},
    {"metrics_listen", OPT_METRICS_LISTEN, 0, 0, "HOST:PORT",
     "also serve GET /metrics (and /healthz) on this separate listener, e.g. for a "
     "Prometheus on another network (default: none)"},
    {"redis", OPT_STR, STR(redis_url), "URL",
     "redis[s]://[USER:PASSWORD@]HOST:PORT[/DB], unix:///PATH, "
     "redis[s]+sentinel://S1,S2.../MASTER, redis[s]+cluster://N1,N2... (docs/redis.md); "
     "unset: run a private redis-server"},
    {"state_dir", OPT_STR, STR(state_dir), "DIR", "state directory (default /var/lib/ztb)"},
    {"admin_socket", OPT_STR, STR(admin_socket), "PATH",
     "admin API unix socket (default STATE_DIR/admin.sock)"},
    {"admin_group", OPT_STR, STR(admin_group), "GROUP",
     "make the admin socket 0660 and owned by this group (its members are operators; "
     "the broker's user must belong to it); default: 0600, the broker's user only"},
    {"admin_readonly_socket", OPT_STR, STR(admin_readonly_socket), "PATH",
     "a second admin socket for the read-only role (list, show, stats; every change "
     "refused with 403); needs admin_readonly_group"},
    {"admin_readonly_group", OPT_STR, STR(admin_readonly_group), "GROUP",
     "the group of admin_readonly_socket (0660), e.g. the SOC analysts"},
    {"ready_file", OPT_STR, STR(ready_file), "PATH", "write the bound port here once serving"},
    {"redis_server", OPT_STR, STR(redis_server), "PATH",
     "redis-server binary for the private Redis (default: found in PATH)"},
    {"user", OPT_STR, STR(user), "USER", "user to run as when started as root (default ztb)"},
    {"trust_domain", OPT_STR, STR(trust_domain), "DOMAIN",
     "SPIFFE trust domain of agent identities (default ztb.local)"},
    {"issuer", OPT_STR, STR(issuer), "URL",
     "token issuer, iss (default http://HOST:PORT on loopback; required otherwise)"},
    {"join_ttl", OPT_UINT, NUM(join_ttl_s, 7 * 86400), "SECONDS",
     "life of a join token (default 900)"},
    {"keys", OPT_STR, STR(keys_dir), "DIR",
     "key store with the signing keys and agent CA (default STATE_DIR/keys)"},
    {"key_passphrase_file", OPT_STR, STR(key_passphrase_file), "FILE",
     "passphrase of an encrypted key store (a 0600 file)"},
    {"policy", OPT_STR, STR(policy_file), "FILE", "policy document (unset: every request denied)"},
    {"session_key", OPT_STR, STR(session_key_file), "FILE",
     "32-byte session MAC key shared by replicas (default KEYS/session.key, created)"},
    {"identity_ttl", OPT_UINT, NUM(identity_ttl_s, 86400), "SECONDS",
     "life of an identity document (default 3600)"},
    {"audit_replica", OPT_STR, STR(audit_replica), "ID",
     "replica id every audit line carries (letters, digits, . _ -; default the host name)"},
    {"audit_checkpoint_records", OPT_UINT, NUM(audit_checkpoint_records, 1000000), "N",
     "a signed audit checkpoint after N records (default 1000)"},
    {"audit_checkpoint_interval", OPT_UINT, NUM(audit_checkpoint_s, 86400), "SECONDS",
     "and at least every SECONDS while records are written (default 10)"},
    {"audit_max_bytes", OPT_SIZE, NUM(audit_max_bytes, (size_t)1 << 40), "BYTES",
     "rotate the audit log to audit.log.N once it reaches BYTES, the chain going on in the "
     "new file (default 0: never; SIGHUP reopening works either way)"},
    {"session_ttl", OPT_UINT, NUM(session_ttl_s, 86400), "SECONDS",
     "life of a session credential (default 300)"},
    {"tls_cert", OPT_STR, STR(tls_cert_file), "FILE",
     "serve HTTPS with this certificate chain (PEM); agents may then use mTLS"},
    {"tls_key", OPT_STR, STR(tls_key_file), "FILE", "the TLS certificate's private key (PEM)"},
    {"threads", OPT_UINT, NUM(threads, 256), "N",
     "HTTP worker threads (default: four per core, at most 64)"},
    {"connection_limit", OPT_UINT, NUM(connection_limit, 1000000), "N",
     "most concurrent connections (default 4096)"},
    {"per_ip_connection_limit", OPT_UINT, NUM(per_ip_connection_limit, 1000000), "N",
     "most concurrent connections from one IP address, 0 = no limit (default 128)"},
    {"connection_timeout", OPT_UINT, NUM(connection_timeout_s, 3600), "SECONDS",
     "close idle or slow connections after this (default 10)"},
    {"max_body", OPT_SIZE, NUM(max_body, 1 << 20), "BYTES", "largest request body (default 16384)"},
    {"redis_timeout_ms", OPT_UINT, NUM(redis_timeout_ms, 60000), "MS",
     "Redis connect and command timeout (default 250)"},
    {"redis_allow_eviction", OPT_UINT, NUM(redis_allow_eviction, 1), "0|1",
     "1: start although Redis's maxmemory-policy evicts keys (revocations may be lost; "
     "default 0: refused)"},
    {"redis_wait_replicas", OPT_UINT, NUM(redis_wait_replicas, 16), "N",
     "a revocation is acknowledged only once WAIT confirms N replicas have it, 0 = do not "
     "wait (default 1 with a redis+sentinel:// URL; with redis+cluster:// 1 on a shard whose "
     "master "
     "has replicas, 0 on one without; else 0; see docs/redis.md)"},
    {"redis_wait_timeout_ms", OPT_UINT, NUM(redis_wait_timeout_ms, 60000), "MS",
     "how long a revocation waits for those replicas before it fails with 503 (default 1000)"},
    {"drain_timeout", OPT_UINT, NUM(drain_timeout_s, 3600), "SECONDS",
     "on SIGTERM, wait this long for in-flight requests (default 10)"},
    {"detect_window", OPT_UINT, NUM(detect_window_s, 86400), "SECONDS",
     "anomaly detectors count events in windows this long, and each agent's out-of-scope "
     "requests are summarised (audit scope.summary) per window (default 60)"},
    {"detect_denials", OPT_UINT, NUM(detect_denials, 1000000), "N",
     "policy denials per window that raise a policy_violation signal, 0 = off (default 10)"},
    {"detect_rate_limited", OPT_UINT, NUM(detect_rate_limited, 1000000), "N",
     "rate-limited requests per window that raise a rate_limit_burst signal, 0 = off "
     "(default 20)"},
    {"detect_new_audience", OPT_UINT, NUM(detect_new_audience_s, 365 * 86400), "SECONDS",
     "an agent's learning period, after which a new audience raises a new_audience signal, "
     "0 = off (default 86400)"},
    {"baseline_learn", OPT_UINT, NUM(baseline_learn_s, 366 * 86400), "SECONDS",
     "each agent's behavioural baseline is learned this long from its first enrollment "
     "(or `ztbctl agent baseline --relearn`), 0 = keep none (default 604800)"},
    {"baseline_rate_factor", OPT_UINT, NUM(baseline_rate_factor, 1000000), "N",
     "after learning, an hour with N times the tokens learned for that hour of day raises a "
     "baseline_rate signal, 0 = off (default 4)"},
    {"baseline_rate_min", OPT_UINT, NUM(baseline_rate_min, 100000000), "N",
     "... and never below N tokens in the hour (default 20)"},
    {"shadow_ai_threshold", OPT_UINT, NUM(shadow_ai_threshold, 100000000), "N",
     "callers a gateway refused for carrying no ztb token (or one not ours), from one source: "
     "the Nth raises a shadow_ai signal; also counts verifiers' reports (ztb:unknown_reports), "
     "0 = do not count them (default 10)"},
    {"signals_ip_rate", OPT_UINT, NUM(signals_ip_rate, 1000000), "N",
     "POST /v1/signals per second from one address, before authentication (this replica), "
     "0 = off (default 100)"},
    {"signals_ip_burst", OPT_UINT, NUM(signals_ip_burst, 1000000), "N",
     "requests one address may send at once (default 200)"},
    {"signals_source_rate", OPT_UINT, NUM(signals_source_rate, 1000000), "N",
     "signals per second from one source, across replicas, 0 = off (default 100)"},
    {"signals_source_burst", OPT_UINT, NUM(signals_source_burst, 1000000), "N",
     "signals one source may send at once (default 200)"},
    {"authorize_routes", OPT_STR, STR(authorize_routes), "FILE",
     "route table of GET /v1/authorize (unset: the endpoint answers 404)"},
    {"ssf_config", OPT_STR, STR(ssf_config), "FILE",
     "Shared Signals: transmitters whose SETs POST /v1/ssf/events accepts, receivers ztb "
     "pushes its revocations to (docs/signals.md; unset: off)"},
    {"authorize_method_header", OPT_STR, STR(authorize_method_header), "NAME",
     "header carrying the original method (default X-Original-Method)"},
    {"authorize_uri_header", OPT_STR, STR(authorize_uri_header), "NAME",
     "header carrying the original URI (default X-Original-URI)"},
    {"approval_webhook", OPT_STR, STR(approval_webhook), "URL",
     "POST each pending approval, signed (ZTB-Signature), to this https:// URL (default: "
     "none; see ztb-broker(8), APPROVAL NOTIFICATIONS)"},
    {"approval_webhook_allow_http", OPT_UINT, NUM(approval_webhook_allow_http, 1), "0|1",
     "1: accept an http:// webhook on a host that is not loopback (default 0: refused)"},
    {"approval_webhook_resolutions", OPT_UINT, NUM(approval_webhook_resolutions, 1), "0|1",
     "1: also notify approvals approved, denied and expired (default 0)"},
    {"approval_webhook_timeout_ms", OPT_UINT, NUM(approval_webhook_timeout_ms, 120000), "MS",
     "one delivery attempt's timeout (default 5000)"},
    {"approval_webhook_attempts", OPT_UINT, NUM(approval_webhook_attempts, 100), "N",
     "delivery attempts before a notification is given up (default 8)"},
    {"approval_webhook_backoff_ms", OPT_UINT, NUM(approval_webhook_backoff_ms, 600000), "MS",
     "delay before the first retry; it doubles, with jitter, up to 60 s (default 500)"},
    {"log_level", OPT_LEVEL, 0, 0, "LEVEL", "debug, info, warn or error (default info)"},
    {"log_format", OPT_FORMAT, 0, 0, "FORMAT", "json or text (default json)"},
    {"log_target", OPT_STR, STR(log_target), "TARGET",
     "where the log goes: stderr, syslog (facility daemon) or journald (default stderr)"},
    {"trusted_proxy", OPT_LIST, STR(trusted_proxies), "CIDR[,CIDR...]",
     "load balancers whose X-Forwarded-For names the client (its rightmost address that "
     "is not a trusted proxy) for policy source_ip conditions; repeatable (default: none, "
     "the header is ignored)"},
    {"access_log", OPT_STR, STR(access_log), "on|off",
     "one http.access line per request: id, method, path, status, latency, agent, trace id "
     "(default on)"},
};

void broker_config_defaults(struct broker_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
    c->listen_port = 8443;
    snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/ztb");
    snprintf(c->user, sizeof(c->user), "ztb");
    snprintf(c->trust_domain, sizeof(c->trust_domain), "ztb.local");
    c->join_ttl_s = 900;
    c->identity_ttl_s = 3600;
    c->session_ttl_s = 300;
    c->audit_checkpoint_records = 1000;
    c->audit_checkpoint_s = 10;
    c->connection_limit = 4096;
    c->per_ip_connection_limit = 128; /* one address cannot hold every slot */
    c->connection_timeout_s = 10;
    c->max_body = 16384;
    c->redis_timeout_ms = 250;
    c->redis_wait_replicas = BROKER_REDIS_WAIT_AUTO;
    c->redis_wait_timeout_ms = 1000;
    c->drain_timeout_s = 10;
    c->detect_window_s = 60;
    c->detect_denials = 10;
    c->detect_rate_limited = 20;
    c->detect_new_audience_s = 86400;
    c->baseline_learn_s = 7 * 86400;
    c->baseline_rate_factor = 4;
    c->baseline_rate_min = 20;
    c->shadow_ai_threshold = 10;
    c->signals_ip_rate = 100;
    c->signals_ip_burst = 200;
    c->signals_source_rate = 100;
    c->signals_source_burst = 200;
    c->approval_webhook_timeout_ms = 5000;
    c->approval_webhook_attempts = 8;
    c->approval_webhook_backoff_ms = 500;
    c->log_level = ZTB_LOG_INFO;
    c->log_format = ZTB_LOG_JSON;
    snprintf(c->access_log, sizeof(c->access_log), "on");
    snprintf(c->log_target, sizeof(c->log_target), "stderr");
    snprintf(c->authorize_method_header, sizeof(c->authorize_method_header), "X-Original-Method");
    snprintf(c->authorize_uri_header, sizeof(c->authorize_uri_header), "X-Original-URI");
}

void broker_config_usage(void)
{
    printf("usage: ztb-broker [OPTIONS]\n"
           "\n"
           "ztb credential broker: issues one short-lived token per agent action.\n"
           "\n"
           "Options (each may also be set in the --config file as `name = value`):\n"
           "  --config FILE              read options from FILE first\n");
    for (size_t i = 0; i < ZTB_ARRAY_LEN(opts); i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s %s", opts[i].name, opts[i].arg);
        for (char *p = flag + 2; *p && *p != ' '; p++)
            if (*p == '_')
                *p = '-';
        printf("  %-26s %s\n", flag, opts[i].help);
    }
    printf("  --check-config             check the options, state dir, TLS files, policy, keys\n"
           "                             and Redis as a start would; say what is wrong;\n"
           "                             exit 0 if nothing is, 1 otherwise\n"
           "  --version                  print the version and exit\n"
           "  -h, --help                 print this help and exit\n"
           "\n"
           "Signals: SIGTERM/SIGINT drain in-flight requests then exit; SIGHUP reloads\n"
           "policy, keys and the authorize route table. Started as root, the broker drops to "
           "--user after binding;\n"
           "the state dir and everything in it must belong to that user.\n"
           "See ztb-broker(8).\n");
}

static const struct opt *find_opt(const char *key)
{
    char norm[64];
    size_t n = strlen(key);
    if (n >= sizeof(norm))
        return NULL;
    for (size_t i = 0; i <= n; i++)
        norm[i] = key[i] == '-' ? '_' : key[i];
    for (size_t i = 0; i < ZTB_ARRAY_LEN(opts); i++)
        if (strcmp(opts[i].name, norm) == 0)
            return &opts[i];
    return NULL;
}

static int parse_ulong(const char *s, unsigned long long max, unsigned long long *out)
{
    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* HOST:PORT or [V6]:PORT into host (cap bytes) and *port_out; errors name what. */
static ztb_err parse_hostport(const char *what, const char *v, char *host, size_t cap,
                              uint16_t *port_out, char *err, size_t errcap)
{
    const char *colon = strrchr(v, ':');
    unsigned long long port;
    if (colon == NULL || parse_ulong(colon + 1, 65535, &port) != 0) {
        snprintf(err, errcap, "%s: expected HOST:PORT, got '%s'", what, v);
        return ZTB_ERR_INVALID_ARG;
    }
    const char *h = v;
    size_t hl = (size_t)(colon - v);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:8443 */
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= cap) {
        snprintf(err, errcap, "%s: bad host in '%s'", what, v);
        return ZTB_ERR_INVALID_ARG;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port_out = (uint16_t)port;
    return ZTB_OK;
}

static ztb_err parse_listen(struct broker_config *c, const char *v, char *err, size_t errcap)
{
    return parse_hostport("listen", v, c->listen_host, sizeof(c->listen_host), &c->listen_port, err,
                          errcap);
}

ztb_err broker_config_set(struct broker_config *c, const char *key, const char *value, char *err,
                          size_t errcap)
{
    if (key == NULL || value == NULL) {
        snprintf(err, errcap, "option without a name or value");
        return ZTB_ERR_INVALID_ARG;
    }
    const struct opt *o = find_opt(key);
    if (o == NULL) {
        snprintf(err, errcap, "unknown option '%s'", key);
        return ZTB_ERR_INVALID_ARG;
    }
    unsigned long long n;
    char *field = (char *)c + o->off;
    switch (o->type) {
    case OPT_STR:
        if (strlen(value) >= o->size) {
            snprintf(err, errcap, "%s: value longer than %zu bytes", o->name, o->size - 1);
            return ZTB_ERR_INVALID_ARG;
        }
        memcpy(field, value, strlen(value) + 1);
        return ZTB_OK;
    case OPT_LIST: {
        size_t have = strlen(field);
        if (have + 1 + strlen(value) >= o->size) {
            snprintf(err, errcap, "%s: the list is longer than %zu bytes", o->name, o->size - 1);
            return ZTB_ERR_INVALID_ARG;
        }
        if (have > 0)
            field[have++] = ',';
        memcpy(field + have, value, strlen(value) + 1);
        return ZTB_OK;
    }
    case OPT_UINT:
    case OPT_SIZE:
        if (parse_ulong(value, o->size, &n) != 0) {
            snprintf(err, errcap, "%s: expected a number from 0 to %zu, got '%s'", o->name, o->size,
                     value);
            return ZTB_ERR_INVALID_ARG;
        }
        if (o->type == OPT_UINT)
            *(unsigned *)(void *)field = (unsigned)n;
        else
            *(size_t *)(void *)field = (size_t)n;
        return ZTB_OK;
    case OPT_LISTEN: return parse_listen(c, value, err, errcap);
    case OPT_METRICS_LISTEN:
        return parse_hostport("metrics_listen", value, c->metrics_host, sizeof(c->metrics_host),
                              &c->metrics_port, err, errcap);
    case OPT_LEVEL:
        if (ztb_log_level_parse(value, &c->log_level) != ZTB_OK) {
            snprintf(err, errcap, "log_level: expected debug, info, warn or error, got '%s'",
                     value);
            return ZTB_ERR_INVALID_ARG;
        }
        return ZTB_OK;
    case OPT_FORMAT:
        if (strcmp(value, "json") == 0)
            c->log_format = ZTB_LOG_JSON;
        else if (strcmp(value, "text") == 0)
            c->log_format = ZTB_LOG_TEXT;
        else {
            snprintf(err, errcap, "log_format: expected json or text, got '%s'", value);
            return ZTB_ERR_INVALID_ARG;
        }
        return ZTB_OK;
    }
    return ZTB_ERR_INTERNAL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* 1 if the Redis URL carries a password (its own or the sentinels'). */
static int url_has_password(const char *url)
{
    struct redis_target t;
    char e[256];
    if (url[0] == '\0' || redis_target_parse(url, 0, &t, e, sizeof(e)) != ZTB_OK)
        return 0;
    int has = t.password[0] != '\0' || t.sentinel_password[0] != '\0';
    redis_target_wipe(&t);
    return has;
}

ztb_err broker_config_load_file(struct broker_config *c, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return ZTB_ERR_IO;
    }
    char line[1024];
    unsigned lineno = 0;
    unsigned char seen[ZTB_ARRAY_LEN(opts)] = {0};
    ztb_err rv = ZTB_OK;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errcap, "%s:%u: line longer than %zu bytes", path, lineno,
                     sizeof(line) - 2);
            rv = ZTB_ERR_INVALID_ARG;
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errcap, "%s:%u: expected `name = value`", path, lineno);
            rv = ZTB_ERR_INVALID_ARG;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        const struct opt *o = find_opt(key);
        if (o != NULL && seen[o - opts]++) {
            snprintf(err, errcap, "%s:%u: '%s' set twice", path, lineno, key);
            rv = ZTB_ERR_INVALID_ARG;
            break;
        }
        char msg[256];
        if (broker_config_set(c, key, val, msg, sizeof(msg)) != ZTB_OK) {
            snprintf(err, errcap, "%s:%u: %s", path, lineno, msg);
            rv = ZTB_ERR_INVALID_ARG;
            break;
        }
    }
    /* a Redis password in a file every local user may read */
    const struct opt *ro = find_opt("redis");
    struct stat st;
    if (rv == ZTB_OK && ro != NULL && seen[ro - opts] && fstat(fileno(f), &st) == 0 &&
        (st.st_mode & S_IROTH) && url_has_password(c->redis_url)) {
        snprintf(err, errcap,
                 "%s may be read by every local user (mode %03o) and its `redis` URL holds a "
                 "password: chmod o-r it (e.g. 0640, group of the broker's user)",
                 path, (unsigned)(st.st_mode & 0777));
        rv = ZTB_ERR_INVALID_ARG;
    }
    fclose(f);
    return rv;
}

ztb_err broker_config_parse_args(struct broker_config *c, int argc, char **argv, int *exit_now,
                                 char *err, size_t errcap)
{
    *exit_now = 0;
    /* the config file first, so flags override it wherever it appears */
    for (int i = 1; i < argc && argv[i] != NULL; i++) {
        const char *file = NULL;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
        if (file != NULL)
            ZTB_GUARD(broker_config_load_file(c, file, err, errcap));
    }
    for (int i = 1; i < argc && argv[i] != NULL; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            broker_config_usage();
            *exit_now = 1;
            return ZTB_OK;
        }
        if (strcmp(a, "--check-config") == 0) {
            c->check_config = 1;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            printf("ztb-broker %s\n", ZTB_VERSION);
            *exit_now = 1;
            return ZTB_OK;
        }
        if (strncmp(a, "--", 2) != 0) {
            /* by position, never the text: a misplaced value may be a
             * Redis URL with its password, and this goes to stderr */
            snprintf(err, errcap,
                     "unexpected argument %d: not an option (options are --NAME VALUE or "
                     "--NAME=VALUE; see --help)",
                     i);
            return ZTB_ERR_INVALID_ARG;
        }
        char key[64];
        const char *val;
        const char *eq = strchr(a, '=');
        if (eq != NULL) {
            size_t kl = (size_t)(eq - a - 2);
            if (kl >= sizeof(key)) {
                snprintf(err, errcap, "unknown option '%.*s'", (int)(eq - a), a);
                return ZTB_ERR_INVALID_ARG;
            }
            memcpy(key, a + 2, kl);
            key[kl] = '\0';
            val = eq + 1;
        } else {
            if (strlen(a + 2) >= sizeof(key)) {
                snprintf(err, errcap, "unknown option '%s'", a);
                return ZTB_ERR_INVALID_ARG;
            }
            snprintf(key, sizeof(key), "%s", a + 2);
            if (i + 1 >= argc) {
                snprintf(err, errcap, "option '%s' needs a value", a);
                return ZTB_ERR_INVALID_ARG;
            }
            val = argv[++i];
        }
        if (strcmp(key, "config") == 0)
            continue; /* already read */
        ZTB_GUARD(broker_config_set(c, key, val, err, errcap));
    }
    return ZTB_OK;
}

int broker_config_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

ztb_err broker_config_check(const struct broker_config *c, char *err, size_t errcap)
{
    if (c->issuer[0] == '\0' && !broker_config_host_is_loopback(c->listen_host)) {
        snprintf(err, errcap,
                 "listening on %s (not loopback) needs an explicit issuer: without one, every "
                 "token's iss would be the listening address (e.g. https://%s:8443) and every "
                 "gateway would refuse it; set --issuer (issuer = in the config file) to the URL "
                 "agents and gateways use to reach this broker, e.g. --issuer "
                 "https://broker.example.org:8443",
                 c->listen_host, c->listen_host);
        return ZTB_ERR_INVALID_ARG;
    }
    const char *const hdr[] = {c->authorize_method_header, c->authorize_uri_header};
    for (size_t i = 0; i < 2; i++) {
        const char *h = hdr[i];
        if (h[0] == '\0' || strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789-_") != strlen(h)) {
            snprintf(err, errcap, "%s: a header name is letters, digits, '-' and '_'",
                     i == 0 ? "authorize_method_header" : "authorize_uri_header");
            return ZTB_ERR_INVALID_ARG;
        }
    }
    if (c->approval_webhook[0] != '\0') {
        char why[400];
        if (push_url_check(c->approval_webhook, (int)c->approval_webhook_allow_http, why,
                           sizeof(why)) != ZTB_OK) {
            snprintf(err, errcap, "approval_webhook: %s", why);
            return ZTB_ERR_INVALID_ARG;
        }
        if (c->approval_webhook_attempts == 0 || c->approval_webhook_timeout_ms == 0 ||
            c->approval_webhook_backoff_ms == 0) {
            snprintf(err, errcap,
                     "approval_webhook_attempts, _timeout_ms and _backoff_ms must be "
                     "at least 1");
            return ZTB_ERR_INVALID_ARG;
        }
    }
    if (trusted_proxies_set(c->trusted_proxies, err, errcap) != ZTB_OK)
        return ZTB_ERR_INVALID_ARG;
    if (strcmp(c->access_log, "on") != 0 && strcmp(c->access_log, "off") != 0) {
        snprintf(err, errcap, "access_log: expected on or off, got '%s'", c->access_log);
        return ZTB_ERR_INVALID_ARG;
    }
    if (strcmp(c->log_target, "stderr") != 0 && strcmp(c->log_target, "syslog") != 0 &&
        strcmp(c->log_target, "journald") != 0) {
        snprintf(err, errcap, "log_target: expected stderr, syslog or journald, got '%s'",
                 c->log_target);
        return ZTB_ERR_INVALID_ARG;
    }
    if ((c->admin_readonly_socket[0] == '\0') != (c->admin_readonly_group[0] == '\0')) {
        snprintf(err, errcap,
                 "admin_readonly_socket and admin_readonly_group go together: the read-only "
                 "socket is 0660 for that group (set both, or neither)");
        return ZTB_ERR_INVALID_ARG;
    }
    if (c->admin_readonly_socket[0] != '\0' &&
        strcmp(c->admin_readonly_socket, c->admin_socket) == 0) {
        snprintf(err, errcap, "admin_readonly_socket must differ from admin_socket");
        return ZTB_ERR_INVALID_ARG;
    }
    return ZTB_OK;
}
