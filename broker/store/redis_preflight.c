/*
 * redis_preflight.c - checks that the Redis holding ztb's state is fit for
 * it (see redis_preflight.h).
 *
 * One run reads INFO (version, maxmemory_policy, aof_enabled, loading) and
 * the marker key on the caller's Redis connection; the result is kept
 * under a mutex with the time it was taken, and /readyz runs it again when
 * it is more than a second old. A bad state is logged once, when it is
 * entered, with what happened and what to do; the return to a good state
 * is logged once too. Error replies (LOADING, NOAUTH, ...) and a Redis that
 * cannot be reached leave the state "unchecked": never a conclusion about
 * the data, never ready.
 *
 * The marker: STATE_DIR/redis.marker (0600, written atomically) holds the
 * value the broker found or put in ZTB_WIRE_MARKER_KEY. No file and no key:
 * a fresh install, the key is written (SET NX, so replicas sharing a Redis
 * agree) and then the file. No file but a key: another replica or an
 * earlier state directory wrote it: the file is written. A file and the
 * same key: fine. A file and no key: the data is lost. A file and another
 * key: this Redis belongs to another installation. Neither of the last two
 * is ever repaired here: removing the file is the operator's decision.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/store/redis_client.h"
#include "broker/store/redis_preflight.h"
#include "broker/store/store.h"
#include "broker/store/store_migrate.h"
#include "common/cursor.h"
#include "common/log.h"
#include "common/secret.h"
#include "wire/wire.h"

enum pf_state { PF_UNCHECKED, PF_OK, PF_VERSION, PF_EVICTION, PF_LOST, PF_FOREIGN, PF_LAYOUT };

static const char *const pf_reason[] = {
    "unchecked", NULL, "version", "eviction", "data_lost", "foreign_marker", "key_layout"};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;     /* the state below */
static pthread_mutex_t g_run_mu = PTHREAD_MUTEX_INITIALIZER; /* one run at a time */
static int g_configured;
static int g_allow_eviction;
static int g_warned_eviction;
static char g_marker_file[300];
static enum pf_state g_state = PF_UNCHECKED;
static enum pf_state g_logged = PF_UNCHECKED;
static long long g_checked_ms = -1;

/* Marker values: 32 hex digits, a space, decimal seconds. */
#define MARKER_ID_LEN 32
#define MARKER_MAX    64

int redis_info_field(const char *info, size_t len, const char *name, char *out, size_t cap)
{
    if (cap > 0)
        out[0] = '\0';
    if (info == NULL || name == NULL || cap == 0)
        return 0;
    size_t nlen = strlen(name);
    ztb_cursor c;
    ztb_cursor_init(&c, info, len);
    while (!ztb_cursor_eof(&c)) {
        ztb_span line;
        if (ztb_cursor_take_until(&c, '\n', &line) != ZTB_OK)
            ztb_cursor_take_rest(&c, &line);
        if (line.len > 0 && line.ptr[line.len - 1] == '\r')
            line.len--;
        if (line.len <= nlen || memcmp(line.ptr, name, nlen) != 0 || line.ptr[nlen] != ':')
            continue;
        size_t vlen = line.len - nlen - 1;
        if (vlen >= cap || memchr(line.ptr + nlen + 1, '\0', vlen) != NULL)
            return 0;
        memcpy(out, line.ptr + nlen + 1, vlen);
        out[vlen] = '\0';
        return 1;
    }
    return 0;
}

/* Read a decimal number of at most 5 digits at *p, advancing it; -1 if none. */
static long small_number(const char **p)
{
    long v = 0;
    int digits = 0;
    while (**p >= '0' && **p <= '9' && digits < 6) {
        v = v * 10 + (**p - '0');
        (*p)++;
        digits++;
    }
    return digits == 0 || digits > 5 ? -1 : v;
}

int redis_version_at_least(const char *version, unsigned major, unsigned minor)
{
    if (version == NULL)
        return 0;
    const char *p = version;
    long ma = small_number(&p);
    if (ma < 0 || *p != '.')
        return 0;
    p++;
    long mi = small_number(&p);
    if (mi < 0 || (*p != '\0' && *p != '.'))
        return 0;
    return (unsigned long)ma > major || ((unsigned long)ma == major && (unsigned long)mi >= minor);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 if v is a marker value (32 hex digits, a space, 1-20 digits). */
static int marker_valid(const char *v, size_t len)
{
    if (len < MARKER_ID_LEN + 2 || len > MARKER_ID_LEN + 21 || v[MARKER_ID_LEN] != ' ')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = v[i];
        int ok = i < MARKER_ID_LEN    ? (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')
                 : i == MARKER_ID_LEN ? 1
                                      : ch >= '0' && ch <= '9';
        if (!ok)
            return 0;
    }
    return 1;
}

/* The marker file's value into out: 1, 0 if there is no file, -1 if it
 * cannot be read or does not hold a marker (err says which). */
static int marker_file_read(char out[MARKER_MAX], char *err, size_t errcap)
{
    int fd = open(g_marker_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errcap, "%s: %s", g_marker_file, strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, out, MARKER_MAX - 1);
    close(fd);
    if (n > 0 && out[n - 1] == '\n')
        n--;
    if (n <= 0 || !marker_valid(out, (size_t)n)) {
        snprintf(err, errcap, "%s does not hold a marker (remove it to start over)", g_marker_file);
        return -1;
    }
    out[n] = '\0';
    return 1;
}

/* Write the marker file (0600, tmp + fsync + rename). 0, or -1 (errno). */
static int marker_file_write(const char *v)
{
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.tmp", g_marker_file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char line[MARKER_MAX + 2];
    int n = snprintf(line, sizeof(line), "%s\n", v);
    int bad = write(fd, line, (size_t)n) != n || fsync(fd) != 0;
    bad |= close(fd) != 0;
    if (bad || rename(tmp, g_marker_file) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}

/* GET the marker key into out: 1 (a valid value), 0 (no key), -1 (no
 * answer, an error reply or a value that is not a marker). */
static int marker_key_get(char out[MARKER_MAX])
{
    redisReply *r = NULL;
    if (redis_commandf(&r, "GET %s", ZTB_WIRE_MARKER_KEY) != ZTB_OK)
        return -1;
    int rc = -1;
    if (r->type == REDIS_REPLY_NIL) {
        rc = 0;
    } else if (r->type == REDIS_REPLY_STRING && (size_t)r->len < MARKER_MAX &&
               marker_valid(r->str, (size_t)r->len)) {
        memcpy(out, r->str, (size_t)r->len);
        out[r->len] = '\0';
        rc = 1;
    }
    freeReplyObject(r);
    return rc;
}

/* The marker step of a run (see the file comment). */
static enum pf_state check_marker(char *err, size_t errcap)
{
    char file[MARKER_MAX], key[MARKER_MAX];
    int have_file = marker_file_read(file, err, errcap);
    if (have_file < 0)
        return PF_FOREIGN;
    int have_key = marker_key_get(key);
    if (have_key < 0) {
        snprintf(err, errcap, "cannot read %s", ZTB_WIRE_MARKER_KEY);
        return PF_UNCHECKED;
    }
    if (have_file && !have_key) {
        const char *created = file + MARKER_ID_LEN + 1;
        snprintf(err, errcap,
                 "Redis lost its data: the marker key %s this installation wrote (created at "
                 "unix time %s, recorded in %s) is gone, and with it every revocation, "
                 "quarantine and agent kept there (FLUSHALL, a restart without persistence, "
                 "another Redis or database?). Not ready. Restore Redis from its AOF/RDB "
                 "backup or point --redis at the right one; to start over on this empty Redis "
                 "on purpose, remove %s and restart the broker",
                 ZTB_WIRE_MARKER_KEY, created, g_marker_file, g_marker_file);
        return PF_LOST;
    }
    if (have_file && have_key) {
        if (memcmp(file, key, MARKER_ID_LEN) == 0)
            return PF_OK;
        snprintf(err, errcap,
                 "this Redis belongs to another installation: its %s names install %.32s, "
                 "%s names %.32s. Not ready. Point --redis at this installation's Redis, or "
                 "remove %s to adopt this one",
                 ZTB_WIRE_MARKER_KEY, key, g_marker_file, file, g_marker_file);
        return PF_FOREIGN;
    }
    if (!have_key) { /* a fresh install: write the key, first writer wins */
        unsigned char id[MARKER_ID_LEN / 2];
        if (ztb_random(id, sizeof(id)) != ZTB_OK) {
            snprintf(err, errcap, "no randomness for the install id");
            return PF_UNCHECKED;
        }
        char v[MARKER_MAX];
        for (size_t i = 0; i < sizeof(id); i++)
            snprintf(v + 2 * i, 3, "%02x", id[i]);
        snprintf(v + MARKER_ID_LEN, sizeof(v) - MARKER_ID_LEN, " %lld", (long long)time(NULL));
        redisReply *r = NULL;
        if (redis_commandf(&r, "SET %s %s NX", ZTB_WIRE_MARKER_KEY, v) != ZTB_OK) {
            snprintf(err, errcap, "cannot write %s", ZTB_WIRE_MARKER_KEY);
            return PF_UNCHECKED;
        }
        freeReplyObject(r);
        if (marker_key_get(key) != 1) {
            snprintf(err, errcap, "cannot read %s back", ZTB_WIRE_MARKER_KEY);
            return PF_UNCHECKED;
        }
    }
    if (marker_file_write(key) != 0) {
        snprintf(err, errcap, "writing %s: %s", g_marker_file, strerror(errno));
        return PF_UNCHECKED;
    }
    ztb_log(ZTB_LOG_INFO, "redis.marker_recorded", ZTB_F_STR("key", ZTB_WIRE_MARKER_KEY),
            ZTB_F_STR("install", key), ZTB_F_STR("file", g_marker_file),
            ZTB_F_BOOL("written", !have_key));
    return PF_OK;
}

/*
 * Log what the start found about one server's persistence (port: "" for
 * the only one, else the master's port), and warn if it has none. save is its
 * `CONFIG GET save` reply (NULL or an error: "unknown", e.g. CONFIG denied
 * by the broker's ACL user).
 */
static void log_persistence(const char *info, size_t len, const char *port, const redisReply *save)
{
    char aof[8], version[32], policy[32];
    redis_info_field(info, len, "aof_enabled", aof, sizeof(aof));
    redis_info_field(info, len, "redis_version", version, sizeof(version));
    redis_info_field(info, len, "maxmemory_policy", policy, sizeof(policy));
    const char *rdb = "unknown";
    if (save != NULL && save->type == REDIS_REPLY_ARRAY && save->elements == 2 &&
        save->element[1]->type == REDIS_REPLY_STRING)
        rdb = save->element[1]->str;
    int aof_on = strcmp(aof, "1") == 0;
    ztb_log(ZTB_LOG_INFO, "redis.preflight", port[0] ? ZTB_F_STR("master_port", port) : ZTB_F_SKIP_,
            ZTB_F_STR("redis_version", version), ZTB_F_STR("maxmemory_policy", policy),
            ZTB_F_BOOL("aof", aof_on), ZTB_F_STR("rdb_save", rdb[0] ? rdb : "off"));
    if (!aof_on && rdb[0] == '\0')
        ztb_log(ZTB_LOG_WARN, "redis.no_persistence",
                port[0] ? ZTB_F_STR("master_port", port) : ZTB_F_SKIP_,
                ZTB_F_STR("hint", "neither AOF nor RDB snapshots: a Redis restart loses every "
                                  "revocation and quarantine; set `appendonly yes` "
                                  "(docs/redis.md)"));
}

/* One run of every check; err describes a state other than OK. */
/* The version and eviction checks on one server's INFO (node names it in
 * messages: "" for the only one). */
static enum pf_state check_info(const char *info, size_t len, const char *node, char *err,
                                size_t errcap)
{
    char version[32], policy[32];
    redis_info_field(info, len, "redis_version", version, sizeof(version));
    redis_info_field(info, len, "maxmemory_policy", policy, sizeof(policy));
    if (!redis_version_at_least(version, REDIS_PREFLIGHT_MIN_MAJOR, REDIS_PREFLIGHT_MIN_MINOR)) {
        snprintf(err, errcap, "Redis%s %s is too old: ztb needs Redis %d.%d or newer; upgrade it",
                 node, version[0] ? version : "(no redis_version in INFO)",
                 REDIS_PREFLIGHT_MIN_MAJOR, REDIS_PREFLIGHT_MIN_MINOR);
        return PF_VERSION;
    }
    /* the rate leases' agent read is a write-declared script (Redis 7) */
    if (!redis_version_at_least(version, 7, 0))
        store_leases_off("Redis before 7.0 cannot run a write-declared script");
    if (strcmp(policy, "noeviction") != 0 && !g_allow_eviction) {
        snprintf(err, errcap,
                 "Redis%s maxmemory-policy is %s: an evicting Redis silently drops revocations. "
                 "Fix: redis-cli CONFIG SET maxmemory-policy noeviction, and the line "
                 "`maxmemory-policy noeviction` in redis.conf; or accept the risk with "
                 "--redis-allow-eviction 1",
                 node, policy[0] ? policy : "(unknown)");
        return PF_EVICTION;
    }
    if (strcmp(policy, "noeviction") != 0 && !g_warned_eviction) {
        g_warned_eviction = 1;
        ztb_log(ZTB_LOG_WARN, "redis.eviction_allowed", ZTB_F_STR("maxmemory_policy", policy),
                ZTB_F_STR("hint", "--redis-allow-eviction: when Redis reaches maxmemory it "
                                  "deletes keys, revocations among them, and revoked tokens "
                                  "are accepted again; set maxmemory-policy noeviction"));
    }
    return PF_OK;
}

static enum pf_state run_checks(int at_start, char *err, size_t errcap)
{
    err[0] = '\0';
    /* every server that holds data: on a Cluster each master, since one
     * evicting or old shard loses the revocations that live on it */
    redisReply *rs[REDIS_PREFLIGHT_NODES_MAX];
    size_t n = 0;
    const char *info[] = {"INFO"};
    if (redis_command_masters(1, info, rs, REDIS_PREFLIGHT_NODES_MAX, &n) != ZTB_OK) {
        snprintf(err, errcap, "Redis cannot be reached");
        return PF_UNCHECKED;
    }
    /* at start, each one's persistence is reported (a reply count that
     * differs, the slot map having changed in between, reports "unknown") */
    redisReply *saves[REDIS_PREFLIGHT_NODES_MAX];
    size_t nsave = 0;
    const char *save[] = {"CONFIG", "GET", "save"};
    if (at_start &&
        redis_command_masters(3, save, saves, REDIS_PREFLIGHT_NODES_MAX, &nsave) != ZTB_OK)
        nsave = 0;
    enum pf_state st = PF_OK;
    int loading_any = 0, cluster_on = 0;
    for (size_t i = 0; i < n && st == PF_OK; i++) {
        const redisReply *r = rs[i];
        if (r->type != REDIS_REPLY_STRING) {
            snprintf(err, errcap, "INFO answered %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
            st = PF_UNCHECKED;
            break;
        }
        char node[48] = "", loading[8], cluster[8], port[8] = "";
        redis_info_field(r->str, r->len, "cluster_enabled", cluster, sizeof(cluster));
        redis_info_field(r->str, r->len, "loading", loading, sizeof(loading));
        if (i == 0)
            cluster_on = strcmp(cluster, "1") == 0;
        if (n > 1 && redis_info_field(r->str, r->len, "tcp_port", port, sizeof(port)) == 1)
            snprintf(node, sizeof(node), " (the master on port %s)", port);
        else
            port[0] = '\0';
        st = check_info(r->str, r->len, node, err, errcap);
        if (at_start && st != PF_VERSION)
            log_persistence(r->str, r->len, port, nsave == n ? saves[i] : NULL);
        loading_any |= strcmp(loading, "0") != 0;
    }
    for (size_t i = 0; i < n; i++)
        freeReplyObject(rs[i]);
    for (size_t i = 0; i < nsave; i++)
        freeReplyObject(saves[i]);
    if (st != PF_OK)
        return st;
    if (loading_any) {
        snprintf(err, errcap, "Redis is loading its data");
        return PF_UNCHECKED;
    }
    /* an earlier broker's state under the untagged names is moved first:
     * until it is, its revocations would not be in force */
    if (store_layout_check(cluster_on, err, errcap) != 0)
        return PF_LAYOUT;
    return check_marker(err, errcap);
}

/* Keep the result of a run; log a change. Called with g_mu held. */
static void record(enum pf_state st, const char *err)
{
    g_state = st;
    g_checked_ms = mono_ms();
    if (st == g_logged)
        return;
    if (st == PF_OK)
        ztb_log(ZTB_LOG_INFO, "redis.preflight_ok");
    else if (st == PF_LOST) /* log values are cut at 256 bytes: short fields */
        ztb_log(ZTB_LOG_ERROR, "redis.data_lost", ZTB_F_STR("key", ZTB_WIRE_MARKER_KEY),
                ZTB_F_STR("marker_file", g_marker_file),
                ZTB_F_STR("what", "Redis lost its data: the marker key this installation wrote "
                                  "is gone, and with it every revocation, quarantine and agent "
                                  "(FLUSHALL, a restart without persistence, another Redis or "
                                  "database?); not ready"),
                ZTB_F_STR("fix", "restore Redis from its AOF/RDB backup or point --redis at "
                                 "the right Redis; to start over on this empty Redis on "
                                 "purpose, remove marker_file and restart the broker"));
    else if (st != PF_UNCHECKED)
        ztb_log(ZTB_LOG_ERROR, "redis.preflight_failed", ZTB_F_STR("check", pf_reason[st]),
                ZTB_F_STR("reason", err));
    else
        ztb_log(ZTB_LOG_WARN, "redis.preflight_unchecked", ZTB_F_STR("reason", err));
    g_logged = st;
}

ztb_err redis_preflight_start(const char *state_dir, int allow_eviction, char *err, size_t errcap)
{
    pthread_mutex_lock(&g_mu);
    g_configured = 1;
    g_allow_eviction = allow_eviction;
    g_warned_eviction = 0;
    g_state = g_logged = PF_UNCHECKED;
    if ((size_t)snprintf(g_marker_file, sizeof(g_marker_file), "%s/redis.marker", state_dir) >=
        sizeof(g_marker_file)) {
        pthread_mutex_unlock(&g_mu);
        snprintf(err, errcap, "state dir path too long");
        return ZTB_ERR_INVALID_ARG;
    }
    pthread_mutex_unlock(&g_mu);
    char why[2048];
    pthread_mutex_lock(&g_run_mu);
    enum pf_state st = run_checks(1, why, sizeof(why));
    pthread_mutex_unlock(&g_run_mu);
    pthread_mutex_lock(&g_mu);
    record(st, why);
    pthread_mutex_unlock(&g_mu);
    if (st == PF_VERSION || st == PF_EVICTION) {
        snprintf(err, errcap, "%s", why);
        return ZTB_ERR_STATE;
    }
    return ZTB_OK;
}

const char *redis_preflight_check(void)
{
    pthread_mutex_lock(&g_mu);
    int configured = g_configured;
    int stale = g_checked_ms < 0 || mono_ms() - g_checked_ms >= 1000;
    enum pf_state st = g_state;
    pthread_mutex_unlock(&g_mu);
    if (!configured)
        return NULL;
    /* a thread that finds another one checking reads the last result */
    if (stale && pthread_mutex_trylock(&g_run_mu) == 0) {
        char why[2048];
        enum pf_state now = run_checks(0, why, sizeof(why));
        pthread_mutex_lock(&g_mu);
        record(now, why);
        st = g_state;
        pthread_mutex_unlock(&g_mu);
        pthread_mutex_unlock(&g_run_mu);
    }
    return pf_reason[st];
}

void redis_preflight_reset(void)
{
    pthread_mutex_lock(&g_mu);
    g_configured = 0;
    g_allow_eviction = 0;
    g_warned_eviction = 0;
    g_state = g_logged = PF_UNCHECKED;
    g_checked_ms = -1;
    g_marker_file[0] = '\0';
    pthread_mutex_unlock(&g_mu);
}
