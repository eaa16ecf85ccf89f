/*
 * agent_handle.c - the agent handle and its configuration: the
 * ztb_agent_config setters, ztb_agent_new (credential file, renewal thread)
 * and ztb_agent_free, and the handle's accessors.
 *
 * Must never: keep a key or a session in memory it does not wipe.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ztb/agent.h>

#include "common/base64url.h"
#include "common/guard.h"
#include "common/secret.h"
#include "common/utf8.h"
#include "pki/csr.h"
#include "pki/dpop.h"
#include "pki/jws.h"
#include "pki/key.h"
#include "pki/spiffe.h"
#include "sdk/src/agent_impl.h"
#include "sdk/src/agent_internal.h"
#include "sdk/src/clock.h"
#include "sdk/src/errdetail.h"
#include "sdk/src/http_client.h"
#include "sdk/src/identity.h"
#include "sdk/src/sigpipe.h"

/* ---- configuration ------------------------------------------------------- */

ztb_agent_config *ztb_agent_config_new(void)
{
    ztb_agent_config *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->auto_renew = 1;
    c->timeout_ms = 10000;
    c->max_retries = 3;
    c->max_wait_ms = 30000;
    return c;
}

void ztb_agent_config_free(ztb_agent_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->broker);
    free(cfg->name);
    free(cfg->td);
    free(cfg->cred_file);
    free(cfg->ca_file);
    free(cfg);
}

static ztb_err set_str(char **slot, const char *s)
{
    if (s == NULL)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "NULL argument");
    size_t n = strnlen(s, URL_MAX + 1);
    if (n == 0 || n > URL_MAX || !ztb_utf8_printable(s, n))
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "empty, too long or not printable");
    char *copy = strdup(s);
    ZTB_ENSURE(copy != NULL, ZTB_ERR_NOMEM);
    free(*slot);
    *slot = copy;
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_broker(ztb_agent_config *cfg, const char *url)
{
    ZTB_ENSURE(cfg != NULL && url != NULL, ZTB_ERR_INVALID_ARG);
    if (http_url_check(url, 1) != ZTB_OK)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "not an absolute http(s) URL");
    ZTB_GUARD(set_str(&cfg->broker, url));
    size_t n = strlen(cfg->broker);
    while (n > 0 && cfg->broker[n - 1] == '/')
        cfg->broker[--n] = '\0';
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_name(ztb_agent_config *cfg, const char *name)
{
    ZTB_ENSURE(cfg != NULL && name != NULL, ZTB_ERR_INVALID_ARG);
    if (ztb_spiffe_check_agent_name(name) != ZTB_OK)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "not a valid agent name");
    return set_str(&cfg->name, name);
}

ztb_err ztb_agent_config_set_trust_domain(ztb_agent_config *cfg, const char *td)
{
    ZTB_ENSURE(cfg != NULL && td != NULL, ZTB_ERR_INVALID_ARG);
    if (ztb_spiffe_check_trust_domain(td) != ZTB_OK)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "not a valid trust domain");
    return set_str(&cfg->td, td);
}

ztb_err ztb_agent_config_set_credential_file(ztb_agent_config *cfg, const char *path)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    return set_str(&cfg->cred_file, path);
}

ztb_err ztb_agent_config_set_ca_file(ztb_agent_config *cfg, const char *path)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    return set_str(&cfg->ca_file, path);
}

ztb_err ztb_agent_config_set_allow_insecure_http(ztb_agent_config *cfg, int allow)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    cfg->allow_http = allow != 0;
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_dpop(ztb_agent_config *cfg, int on)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    cfg->dpop = on != 0;
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_timeout(ztb_agent_config *cfg, unsigned ms)
{
    ZTB_ENSURE(cfg != NULL && ms >= 100 && ms <= 600000u, ZTB_ERR_INVALID_ARG);
    cfg->timeout_ms = ms;
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_retries(ztb_agent_config *cfg, unsigned max_retries,
                                     unsigned max_wait_ms)
{
    ZTB_ENSURE(cfg != NULL && max_retries <= 20 && max_wait_ms <= 3600000u, ZTB_ERR_INVALID_ARG);
    cfg->max_retries = max_retries;
    cfg->max_wait_ms = max_wait_ms;
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_auto_renew(ztb_agent_config *cfg, int on)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    cfg->auto_renew = on != 0;
    return ZTB_OK;
}

/* ---- handle --------------------------------------------------------------- */

void ztb_agent_free(ztb_agent *a)
{
    if (a == NULL)
        return;
    if (a->thread_started) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    identity_clear(&a->id);
    ztb_key_free(a->dpop_key);
    ztb_wipe(a->session, sizeof(a->session));
    http_client_free(a->http);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->session_mu);
    pthread_cond_destroy(&a->cv);
    free(a->token_endpoint);
    free(a->broker);
    free(a->cred_file);
    free(a);
}

static ztb_err new_fail(ztb_agent *a, ztb_err rv, const char *msg)
{
    ztb_agent_free(a);
    return errdetail_setf(NULL, rv, "%s", msg);
}

ztb_err ztb_agent_new(const ztb_agent_config *cfg, ztb_agent **out)
{
    if (out != NULL)
        *out = NULL;
    if (cfg == NULL || out == NULL)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "NULL argument");
    if (cfg->broker == NULL || cfg->name == NULL)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG,
                             "the broker URL and agent name are required");
    if (http_url_check(cfg->broker, cfg->allow_http) != ZTB_OK)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG,
                             "the broker URL must be https (or http to a loopback host)");
    ztb_agent *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return ZTB_ERR_NOMEM;
    pthread_condattr_t ca;
    int ok = pthread_condattr_init(&ca) == 0;
    if (ok) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        ok = pthread_cond_init(&a->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!ok || pthread_mutex_init(&a->mu, NULL) != 0 ||
        pthread_mutex_init(&a->session_mu, NULL) != 0) {
        free(a);
        return ZTB_ERR_NOMEM;
    }
    a->max_retries = cfg->max_retries;
    a->max_wait_ms = cfg->max_wait_ms;
    a->auto_renew = cfg->auto_renew;
    snprintf(a->name, sizeof(a->name), "%s", cfg->name);
    a->broker = strdup(cfg->broker);
    a->cred_file = cfg->cred_file ? strdup(cfg->cred_file) : NULL;
    if (a->broker == NULL || (cfg->cred_file != NULL && a->cred_file == NULL))
        return new_fail(a, ZTB_ERR_NOMEM, "out of memory");
    ztb_buf id;
    ztb_buf_init_fixed(&id, a->spiffe_id, sizeof(a->spiffe_id));
    ztb_err rv = ztb_spiffe_agent_id(cfg->td ? cfg->td : "ztb.local", cfg->name, &id);
    if (rv != ZTB_OK)
        return new_fail(a, ZTB_ERR_INVALID_ARG, "the trust domain and name make no SPIFFE ID");
    struct http_client_opts ho = {.ca_file = cfg->ca_file, .timeout_ms = cfg->timeout_ms};
    rv = http_client_new(&ho, &a->http);
    if (rv != ZTB_OK)
        return new_fail(a, rv, "out of memory");
    if (cfg->dpop && (rv = ztb_key_generate(&a->dpop_key)) != ZTB_OK)
        return new_fail(a, rv, "cannot make a DPoP key");
    if (a->cred_file != NULL) {
        rv = identity_load(a->cred_file, a->spiffe_id, &a->id);
        if (rv != ZTB_OK && rv != ZTB_ERR_NOT_FOUND)
            return new_fail(a, rv,
                            rv == ZTB_ERR_PERMISSION
                                ? "credential file: must be ours, mode 0600, not a symlink"
                                : "credential file: damaged, or not this agent's identity");
    }
    if (a->auto_renew) {
        sigset_t old;
        sigpipe_block_all_for_new_thread(&old);
        int prc = pthread_create(&a->thread, NULL, agent_renew_main, a);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (prc != 0)
            return new_fail(a, ZTB_ERR_NOMEM, "cannot start the renewal thread");
        a->thread_started = 1;
    }
    *out = a;
    return ZTB_OK;
}

int ztb_agent_is_enrolled(const ztb_agent *a)
{
    if (a == NULL)
        return 0;
    ztb_agent *m = (ztb_agent *)a; /* the lock is not part of the value */
    pthread_mutex_lock(&m->mu);
    int r = a->id.key != NULL && a->id.not_after > clock_now_s();
    pthread_mutex_unlock(&m->mu);
    return r;
}

int64_t ztb_agent_identity_expires_at(const ztb_agent *a)
{
    if (a == NULL)
        return 0;
    ztb_agent *m = (ztb_agent *)a;
    pthread_mutex_lock(&m->mu);
    int64_t t = a->id.key != NULL ? a->id.not_after : 0;
    pthread_mutex_unlock(&m->mu);
    return t;
}

const char *ztb_agent_spiffe_id(const ztb_agent *a)
{
    return a != NULL ? a->spiffe_id : "";
}

const char *ztb_agent_errdetail(const ztb_agent *a)
{
    return errdetail_get(a);
}
