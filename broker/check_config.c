/*
 * check_config.c - `ztb-broker --check-config` (see check_config.h).
 *
 * Each check prints one line and counts a failure; later checks still run
 * when they can, so one run lists every problem. Key material read here is
 * held only as long as the check and wiped when closed (pki/).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "broker/check_config.h"
#include "broker/privdrop.h"
#include "common/redis_target.h"
#include "common/secret.h"
#include "pki/ca.h"
#include "pki/keyfile.h"
#include "pki/keystore.h"
#include "policy/holder.h"
#include "policy/policy.h"

/* Print one check's line; returns 1 for a failure (to count), 0 for ok. */
static int report(FILE *out, int ok, const char *what, const char *detail)
{
    fprintf(out, "%-4s %s: %s\n", ok ? "ok" : "FAIL", what, detail);
    return ok ? 0 : 1;
}

static int check_state_dir(FILE *out, const struct broker_config *cfg)
{
    char msg[1024];
    struct stat st;
    if (stat(cfg->state_dir, &st) != 0) {
        snprintf(msg, sizeof(msg),
                 "%s: %s (create it as the service user's: install -d -o %s -g %s -m 0700 %s, "
                 "or systemd-tmpfiles --create ztb.conf)",
                 cfg->state_dir, strerror(errno), cfg->user, cfg->user, cfg->state_dir);
        return report(out, 0, "state_dir", msg);
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(msg, sizeof(msg), "%s is not a directory", cfg->state_dir);
        return report(out, 0, "state_dir", msg);
    }
    snprintf(msg, sizeof(msg), "%s", cfg->state_dir);
    return report(out, 1, "state_dir", msg);
}

static int check_tls(FILE *out, const struct broker_config *cfg)
{
    if (cfg->tls_cert_file[0] == '\0' && cfg->tls_key_file[0] == '\0')
        return report(out, 1, "tls", "off (plain HTTP: terminate TLS in front of the broker)");
    char msg[1024];
    if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0')
        return report(out, 0, "tls", "tls_cert and tls_key go together: set both");
    const char *files[] = {cfg->tls_cert_file, cfg->tls_key_file};
    for (size_t i = 0; i < 2; i++)
        if (access(files[i], R_OK) != 0) {
            snprintf(msg, sizeof(msg), "%s: %s", files[i], strerror(errno));
            return report(out, 0, "tls", msg);
        }
    snprintf(msg, sizeof(msg), "%s, %s readable", cfg->tls_cert_file, cfg->tls_key_file);
    return report(out, 1, "tls", msg);
}

static int check_policy(FILE *out, const struct broker_config *cfg)
{
    if (cfg->policy_file[0] == '\0')
        return report(out, 1, "policy", "none set: every token request will be denied");
    policy_holder *h = NULL;
    if (policy_holder_new(&h) != ZTB_OK)
        return report(out, 0, "policy", "out of memory");
    policy_holder_require_trust_domain(h, cfg->trust_domain);
    policy_diag d;
    policy_diag_init(&d);
    ztb_err rv = policy_holder_reload_file(h, cfg->policy_file, &d);
    char msg[1024];
    int bad = 0;
    if (rv != ZTB_OK) {
        for (size_t i = 0; i < d.n; i++) {
            char line[512];
            ztb_buf b;
            ztb_buf_init_fixed(&b, line, sizeof(line));
            (void)policy_diag_format(&d.msgs[i], &b);
            snprintf(msg, sizeof(msg), "%s: %s", cfg->policy_file, ztb_buf_cstr(&b));
            bad |= report(out, 0, "policy", msg);
        }
        if (d.n == 0) {
            snprintf(msg, sizeof(msg), "%s: %s", cfg->policy_file, ztb_strerror(rv));
            bad |= report(out, 0, "policy", msg);
        }
    } else {
        policy *p = policy_holder_acquire(h);
        snprintf(msg, sizeof(msg), "%s: %zu rules, trust domain %s", cfg->policy_file,
                 p ? policy_rule_count(p) : 0, cfg->trust_domain);
        policy_unref(p);
        bad |= report(out, 1, "policy", msg);
    }
    policy_diag_free(&d);
    policy_holder_free(h);
    return bad;
}

static int check_keys(FILE *out, const struct broker_config *cfg)
{
    char dir[BROKER_PATH_MAX + 8], msg[1024];
    if (cfg->keys_dir[0] != '\0')
        snprintf(dir, sizeof(dir), "%s", cfg->keys_dir);
    else
        snprintf(dir, sizeof(dir), "%s/keys", cfg->state_dir);
    char *pass = NULL;
    size_t passlen = 0;
    if (cfg->key_passphrase_file[0] != '\0') {
        ztb_err rv = ztb_keyfile_read_passphrase(cfg->key_passphrase_file, &pass, &passlen);
        if (rv != ZTB_OK) {
            snprintf(msg, sizeof(msg),
                     "passphrase file %s: %s (it must be 0600 and the service "
                     "user's)",
                     cfg->key_passphrase_file, ztb_strerror(rv));
            return report(out, 0, "keys", msg);
        }
    }
    ztb_keystore_opts ko = {.passphrase = pass, .passphrase_len = passlen};
    ztb_keystore *ks = NULL;
    ztb_err rv = ztb_keystore_open(dir, &ko, &ks);
    int bad = 0;
    if (rv == ZTB_ERR_NOT_FOUND) {
        snprintf(msg, sizeof(msg),
                 "no key store in %s: create one as the service user (sudo -u %s ztbctl keys "
                 "--dir %s init)",
                 dir, cfg->user, dir);
        bad = report(out, 0, "keys", msg);
    } else if (rv != ZTB_OK) {
        snprintf(msg, sizeof(msg), "key store %s: %s%s", dir, ztb_strerror(rv),
                 rv == ZTB_ERR_PERMISSION ? " (key files must be 0600 and the service user's, "
                                            "no symlinks)"
                                          : "");
        bad = report(out, 0, "keys", msg);
    } else {
        ztb_key *active = NULL;
        if (ztb_keystore_active(ks, &active) != ZTB_OK || active == NULL) {
            snprintf(msg, sizeof(msg),
                     "key store %s has no active signing key (ztbctl keys --dir "
                     "%s rotate)",
                     dir, dir);
            bad = report(out, 0, "keys", msg);
        } else {
            snprintf(msg, sizeof(msg), "key store %s: an active signing key", dir);
            bad = report(out, 1, "keys", msg);
        }
        ztb_key_free(active);
        ztb_ca *ca = NULL;
        rv = ztb_ca_load(dir, pass, passlen, &ca);
        if (rv == ZTB_ERR_NOT_FOUND) {
            snprintf(msg, sizeof(msg),
                     "no agent CA in %s/ca: agents cannot enroll (ztbctl ca --dir %s init "
                     "--trust-domain %s)",
                     dir, dir, cfg->trust_domain);
            bad |= report(out, 0, "ca", msg);
        } else if (rv != ZTB_OK) {
            snprintf(msg, sizeof(msg), "agent CA in %s/ca: %s", dir, ztb_strerror(rv));
            bad |= report(out, 0, "ca", msg);
        } else {
            snprintf(msg, sizeof(msg), "agent CA in %s/ca", dir);
            bad |= report(out, 1, "ca", msg);
        }
        ztb_ca_free(ca);
    }
    ztb_keystore_close(ks);
    ztb_free_secret(pass, passlen);
    return bad;
}

/* 1 if name is an executable file on $PATH (or a path that is one). */
static int on_path(const char *name, char *found, size_t cap)
{
    if (strchr(name, '/') != NULL) {
        snprintf(found, cap, "%s", name);
        return access(name, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(buf, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
        snprintf(found, cap, "%s/%s", d, name);
        if (access(found, X_OK) == 0)
            return 1;
    }
    return 0;
}

static int check_redis(FILE *out, const struct broker_config *cfg)
{
    char msg[1024], desc[256];
    if (cfg->redis_url[0] == '\0') {
        char found[512];
        const char *bin = cfg->redis_server[0] != '\0' ? cfg->redis_server : "redis-server";
        if (!on_path(bin, found, sizeof(found))) {
            snprintf(msg, sizeof(msg),
                     "no redis set and %s is not an executable on PATH: install redis-server or "
                     "set redis = redis://HOST:PORT",
                     bin);
            return report(out, 0, "redis", msg);
        }
        snprintf(msg, sizeof(msg), "private redis-server %s in %s/redis", found, cfg->state_dir);
        return report(out, 1, "redis", msg);
    }
    struct redis_target t;
    char err[512];
    if (redis_target_parse(cfg->redis_url, cfg->redis_timeout_ms, &t, err, sizeof(err)) != ZTB_OK)
        return report(out, 0, "redis", err);
    redis_target_describe(&t, desc, sizeof(desc));
    struct redis_link *c = NULL;
    int bad;
    if (redis_target_connect(&t, &c, err, sizeof(err)) != ZTB_OK) {
        snprintf(msg, sizeof(msg), "%s: %s", desc, err);
        bad = report(out, 0, "redis", msg);
    } else {
        redisReply *r = redis_link_commandf(c, "PING");
        int pong = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        snprintf(msg, sizeof(msg), "%s: %s", desc,
                 pong ? "PING answered" : (r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr));
        bad = report(out, pong, "redis", msg);
        if (r != NULL)
            freeReplyObject(r);
        redis_link_free(c);
    }
    redis_target_wipe(&t);
    return bad;
}

int broker_check_config(struct broker_config *cfg, FILE *out)
{
    char err[512];
    int bad = 0;
    if (broker_config_check(cfg, err, sizeof(err)) != ZTB_OK)
        bad += report(out, 0, "config", err);
    else
        bad += report(out, 1, "config", "options consistent");
    int have_state = check_state_dir(out, cfg) == 0;
    bad += !have_state;
    bad += check_tls(out, cfg);
    if (have_state) {
        /* as the service user, as a start would: file owners are checked
         * against the user that will read them */
        if (privdrop(cfg->user, cfg->state_dir, err, sizeof(err)) != ZTB_OK) {
            bad += report(out, 0, "user", err);
        } else {
            char msg[128];
            snprintf(msg, sizeof(msg), "checks run as uid %lu", (unsigned long)geteuid());
            bad += report(out, 1, "user", msg);
        }
    }
    bad += check_policy(out, cfg);
    bad += check_keys(out, cfg);
    bad += check_redis(out, cfg);
    if (bad == 0)
        fprintf(out, "ztb-broker: the configuration is good\n");
    else
        fprintf(out, "ztb-broker: %d problem%s found (FAIL lines above)\n", bad,
                bad == 1 ? "" : "s");
    return bad == 0 ? 0 : 1;
}
