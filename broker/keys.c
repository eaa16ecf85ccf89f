/*
 * keys.c - signing keys and CA for the broker (see keys.h).
 */
#define _GNU_SOURCE /* pthread_cond_clockwait */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "broker/keys.h"
#include "broker/session.h"
#include "common/buf.h"
#include "common/guard.h"
#include "common/log.h"
#include "common/secret.h"
#include "pki/keyfile.h"

struct holder {
    struct keys_state s;
    int refs; /* under g_lock */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;       /* the current pointer, refs */
static pthread_mutex_t g_store_lock = PTHREAD_MUTEX_INITIALIZER; /* the key store itself */
static ztb_keystore *g_store;
static ztb_ca *g_ca;
static struct holder *g_cur;

static pthread_t g_thread;
static int g_thread_running;
static int g_stop;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static unsigned g_interval;

static void holder_free(struct holder *h)
{
    if (h == NULL)
        return;
    ztb_key_free(h->s.active);
    ztb_keyset_free(h->s.keyset);
    free(h->s.jwks);
    free(h);
}

struct keys_state *keys_acquire(void)
{
    pthread_mutex_lock(&g_lock);
    struct holder *h = g_cur;
    if (h != NULL)
        h->refs++;
    pthread_mutex_unlock(&g_lock);
    return h ? &h->s : NULL;
}

void keys_release(struct keys_state *s)
{
    if (s == NULL)
        return;
    struct holder *h = (struct holder *)s; /* s is the first member */
    pthread_mutex_lock(&g_lock);
    int last = --h->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last)
        holder_free(h);
}

static void install(struct holder *h)
{
    h->refs = 1; /* the global's reference */
    pthread_mutex_lock(&g_lock);
    struct holder *old = g_cur;
    g_cur = h;
    int last = old != NULL && --old->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last)
        holder_free(old);
}

/* Build a state from the store; caller holds g_store_lock. */
static ztb_err build(int64_t now, struct holder **out)
{
    struct holder *h = calloc(1, sizeof(*h));
    ZTB_ENSURE(h != NULL, ZTB_ERR_NOMEM);
    ztb_err rv = ztb_keystore_active(g_store, &h->s.active);
    if (rv == ZTB_ERR_NO_ACTIVE_KEY || rv == ZTB_ERR_NOT_FOUND) {
        h->s.active = NULL; /* readyz reports it; tokens get 503 */
        rv = ZTB_OK;
    }
    if (rv == ZTB_OK)
        rv = ztb_keystore_keyset(g_store, now, &h->s.keyset);
    ztb_buf jw;
    ztb_buf_init(&jw, 1 << 20);
    if (rv == ZTB_OK)
        rv = ztb_keystore_jwks(g_store, now, &jw);
    if (rv == ZTB_OK)
        h->s.jwks = ztb_buf_steal(&jw, &h->s.jwks_len);
    ztb_buf_free(&jw);
    if (rv == ZTB_OK && h->s.jwks == NULL)
        rv = ZTB_ERR_NOMEM;
    const ztb_rotation_params *p = ztb_keystore_params(g_store);
    h->s.jwks_max_age = (uint32_t)p->jwks_cache_s;
    h->s.max_token_ttl = (uint32_t)p->max_token_ttl_s;
    h->s.skew = (uint32_t)p->skew_s;
    if (rv != ZTB_OK) {
        holder_free(h);
        return rv;
    }
    *out = h;
    return ZTB_OK;
}

ztb_err keys_open(const char *dir, const char *passphrase_file, int64_t now, char *err,
                  size_t errcap)
{
    char *pass = NULL;
    size_t passlen = 0;
    if (passphrase_file != NULL && passphrase_file[0] != '\0') {
        ztb_err rv = ztb_keyfile_read_passphrase(passphrase_file, &pass, &passlen);
        if (rv != ZTB_OK) {
            snprintf(err, errcap, "passphrase file %s: %s (it must be 0600 and ours)",
                     passphrase_file, ztb_strerror(rv));
            return rv;
        }
    }
    ztb_keystore_opts o = {.passphrase = pass, .passphrase_len = passlen};
    ztb_keystore *ks = NULL;
    ztb_err rv = ztb_keystore_open(dir, &o, &ks);
    if (rv == ZTB_OK) {
        rv = ztb_ca_load(dir, pass, passlen, &g_ca);
        if (rv == ZTB_ERR_NOT_FOUND) {
            g_ca = NULL;
            rv = ZTB_OK;
            ztb_log(ZTB_LOG_WARN, "keys.no_ca", ZTB_F_STR("dir", dir),
                    ZTB_F_STR("hint", "enrollment is refused until `ztbctl ca init` is run"));
        } else if (rv != ZTB_OK) {
            snprintf(err, errcap, "agent CA in %s/ca: %s", dir, ztb_strerror(rv));
        }
    } else if (rv == ZTB_ERR_NOT_FOUND) {
        snprintf(err, errcap, "no key store in %s: create one with `ztbctl keys init --dir %s`",
                 dir, dir);
    } else {
        snprintf(err, errcap, "key store %s: %s", dir, ztb_strerror(rv));
    }
    ztb_free_secret(pass, passlen);
    if (rv != ZTB_OK) {
        ztb_keystore_close(ks);
        return rv;
    }
    pthread_mutex_lock(&g_store_lock);
    g_store = ks;
    unsigned changed;
    ztb_keystore_tick(g_store, now, &changed);
    struct holder *h = NULL;
    rv = build(now, &h);
    pthread_mutex_unlock(&g_store_lock);
    if (rv != ZTB_OK) {
        snprintf(err, errcap, "key store %s: %s", dir, ztb_strerror(rv));
        return rv;
    }
    install(h);
    return ZTB_OK;
}

int keys_loaded(void)
{
    return g_store != NULL;
}

const ztb_ca *keys_ca(void)
{
    return g_ca;
}

ztb_err keys_refresh(int64_t now, int *changed)
{
    if (changed != NULL)
        *changed = 0;
    pthread_mutex_lock(&g_store_lock);
    if (g_store == NULL) {
        pthread_mutex_unlock(&g_store_lock);
        return ZTB_ERR_STATE;
    }
    int reloaded = 0;
    unsigned ticked = 0;
    ztb_err rv = ztb_keystore_reload(g_store, &reloaded);
    if (rv == ZTB_OK)
        rv = ztb_keystore_tick(g_store, now, &ticked);
    struct holder *h = NULL;
    if (rv == ZTB_OK)
        rv = build(now, &h); /* also when nothing moved: published keys expire */
    pthread_mutex_unlock(&g_store_lock);
    if (rv != ZTB_OK) {
        ztb_log(ZTB_LOG_ERROR, "keys.refresh_failed", ZTB_F_ERR(rv));
        return rv;
    }
    int moved = reloaded || ticked != 0;
    install(h);
    if (moved)
        ztb_log(ZTB_LOG_INFO, "keys.changed", ZTB_F_BOOL("reloaded", reloaded),
                ZTB_F_INT("ticked", ticked));
    if (changed != NULL)
        *changed = moved;
    return ZTB_OK;
}

ztb_err keys_rotate(int64_t now, int force, ztb_rotate_result *res)
{
    pthread_mutex_lock(&g_store_lock);
    ztb_err rv = g_store ? ztb_keystore_rotate(g_store, now, force, res) : ZTB_ERR_STATE;
    pthread_mutex_unlock(&g_store_lock);
    if (rv == ZTB_OK)
        rv = keys_refresh(now, NULL);
    return rv;
}

ztb_err keys_retire(const char *kid, int64_t now, int force)
{
    pthread_mutex_lock(&g_store_lock);
    ztb_err rv = g_store ? ztb_keystore_retire(g_store, kid, now, force) : ZTB_ERR_STATE;
    pthread_mutex_unlock(&g_store_lock);
    if (rv == ZTB_OK)
        rv = keys_refresh(now, NULL);
    return rv;
}

ztb_err keys_list_json(char **out)
{
    *out = NULL;
    pthread_mutex_lock(&g_store_lock);
    if (g_store == NULL) {
        pthread_mutex_unlock(&g_store_lock);
        return ZTB_ERR_STATE;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < ztb_keystore_count(g_store); i++) {
        const ztb_key_meta *m = ztb_keystore_meta(g_store, i);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,s:I}", "kid", m->kid, "state",
                                             ztb_key_state_name(m->state), "created",
                                             (json_int_t)m->created, "activated",
                                             (json_int_t)m->activated, "not_after",
                                             (json_int_t)m->not_after));
    }
    pthread_mutex_unlock(&g_store_lock);
    *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return *out ? ZTB_OK : ZTB_ERR_NOMEM;
}

static void *refresher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_store_lock);
    for (;;) {
        /* the interval is a duration: CLOCK_MONOTONIC, so a wall clock step
         * neither delays the next refresh by the step nor hurries it */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += g_interval;
        while (!g_stop &&
               pthread_cond_clockwait(&g_cond, &g_store_lock, CLOCK_MONOTONIC, &until) != ETIMEDOUT)
            ;
        if (g_stop)
            break;
        pthread_mutex_unlock(&g_store_lock);
        keys_refresh((int64_t)time(NULL), NULL);
        pthread_mutex_lock(&g_store_lock);
    }
    pthread_mutex_unlock(&g_store_lock);
    return NULL;
}

ztb_err keys_start_refresher(unsigned interval_s)
{
    g_interval = interval_s ? interval_s : 5;
    g_stop = 0;
    ZTB_ENSURE(pthread_create(&g_thread, NULL, refresher, NULL) == 0, ZTB_ERR_INTERNAL);
    g_thread_running = 1;
    return ZTB_OK;
}

void keys_stop_refresher(void)
{
    pthread_mutex_lock(&g_store_lock);
    g_stop = 1;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_store_lock);
    if (g_thread_running) {
        pthread_join(g_thread, NULL);
        g_thread_running = 0;
    }
}

void keys_close(void)
{
    keys_stop_refresher();
    pthread_mutex_lock(&g_lock);
    struct holder *h = g_cur;
    g_cur = NULL;
    int last = h != NULL && --h->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last)
        holder_free(h);
    pthread_mutex_lock(&g_store_lock);
    ztb_keystore_close(g_store);
    g_store = NULL;
    ztb_ca_free(g_ca);
    g_ca = NULL;
    pthread_mutex_unlock(&g_store_lock);
}

ztb_err keys_load_session_key(const char *keys_dir, const char *path, char *err, size_t errcap)
{
    char dir[512], name[256];
    if (path == NULL || path[0] == '\0') {
        snprintf(dir, sizeof(dir), "%s", keys_dir);
        snprintf(name, sizeof(name), "session.key");
    } else {
        const char *slash = strrchr(path, '/');
        if (slash == NULL) {
            snprintf(dir, sizeof(dir), ".");
            snprintf(name, sizeof(name), "%s", path);
        } else {
            snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
            snprintf(name, sizeof(name), "%s", slash + 1);
        }
    }
    int dfd;
    ztb_err rv = ztb_keyfile_open_dir(dir, &dfd);
    if (rv != ZTB_OK) {
        snprintf(err, errcap, "session key directory %s: %s", dir, ztb_strerror(rv));
        return rv;
    }
    ztb_buf b;
    ztb_buf_init_secret(&b, 64);
    rv = ztb_keyfile_read(dfd, name, 64, ZTB_KEYFILE_SECRET, &b);
    if (rv == ZTB_ERR_NOT_FOUND) {
        uint8_t fresh[SESSION_KEY_LEN];
        rv = ztb_random(fresh, sizeof(fresh));
        if (rv == ZTB_OK) {
            rv = ztb_keyfile_write_new(dfd, name, fresh, sizeof(fresh), 0600);
            if (rv == ZTB_OK)
                ztb_log(ZTB_LOG_INFO, "keys.session_key_created", ZTB_F_STR("dir", dir));
        }
        ztb_wipe(fresh, sizeof(fresh));
        if (rv == ZTB_OK || rv == ZTB_ERR_EXISTS) /* another replica may have won */
            rv = ztb_keyfile_read(dfd, name, 64, ZTB_KEYFILE_SECRET, &b);
    }
    close(dfd);
    if (rv == ZTB_OK && b.len != SESSION_KEY_LEN)
        rv = ZTB_ERR_KEY;
    if (rv == ZTB_OK)
        session_set_key(b.data);
    else
        snprintf(err, errcap, "session key %s/%s: %s (it must hold exactly %d bytes, mode 0600)",
                 dir, name, ztb_strerror(rv), SESSION_KEY_LEN);
    ztb_buf_free(&b);
    return rv;
}
