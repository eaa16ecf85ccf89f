/*
 * holder.c - atomic replacement of the policy in force (see holder.h).
 *
 * `lock` guards only the pointer read + reference increment in acquire and
 * the pointer exchange in swap: after swap returns, no acquire can hand out
 * the old policy, and every reference handed out before keeps it alive (the
 * count is taken under the same lock, so it cannot drop to zero between the
 * read and the increment). Loading and freeing happen outside the lock.
 *
 * Must never: free a policy a request still holds, install a document that
 * did not load cleanly, or hold the lock while loading or freeing.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "policy/holder.h"
#include "policy/load.h"
#include "policy/policy.h"

struct policy_holder {
    pthread_mutex_t lock;   /* guards current */
    pthread_mutex_t reload; /* one reload at a time */
    policy *current;
    atomic_uint_fast64_t generation;
    char trust_domain[256]; /* "" or the only trust domain a document may name */
};

ztb_err policy_holder_new(policy_holder **out)
{
    if (out == NULL)
        return ZTB_ERR_INVALID_ARG;
    policy_holder *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return ZTB_ERR_NOMEM;
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        return ZTB_ERR_NOMEM;
    }
    if (pthread_mutex_init(&h->reload, NULL) != 0) {
        pthread_mutex_destroy(&h->lock);
        free(h);
        return ZTB_ERR_NOMEM;
    }
    atomic_init(&h->generation, 0);
    *out = h;
    return ZTB_OK;
}

void policy_holder_free(policy_holder *h)
{
    if (h == NULL)
        return;
    policy_unref(h->current);
    pthread_mutex_destroy(&h->lock);
    pthread_mutex_destroy(&h->reload);
    free(h);
}

policy *policy_holder_acquire(policy_holder *h)
{
    pthread_mutex_lock(&h->lock);
    policy *p = policy_ref(h->current);
    pthread_mutex_unlock(&h->lock);
    return p;
}

void policy_holder_release(policy *p)
{
    policy_unref(p);
}

void policy_holder_swap(policy_holder *h, policy *next)
{
    if (next == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    policy *old = h->current;
    h->current = next;
    atomic_fetch_add(&h->generation, 1);
    pthread_mutex_unlock(&h->lock);
    policy_unref(old); /* freed here or by the last in-flight request */
}

void policy_holder_require_trust_domain(policy_holder *h, const char *td)
{
    pthread_mutex_lock(&h->reload);
    snprintf(h->trust_domain, sizeof(h->trust_domain), "%s", td ? td : "");
    pthread_mutex_unlock(&h->reload);
}

/* Install next if it names the required trust domain; else drop it and say
 * why in diag. Called with h->reload held. */
static ztb_err install(policy_holder *h, policy *next, policy_diag *diag)
{
    if (h->trust_domain[0] != '\0' && strcmp(policy_trust_domain(next), h->trust_domain) != 0) {
        if (diag != NULL)
            policy_diag_add(diag, 0, 0, "trust_domain", NULL,
                            "the policy is for trust domain %s, this broker serves %s "
                            "(--trust-domain): every agent would be denied; fix the file or "
                            "the flag",
                            policy_trust_domain(next), h->trust_domain);
        policy_unref(next);
        return ZTB_ERR_POLICY;
    }
    policy_holder_swap(h, next);
    return ZTB_OK;
}

ztb_err policy_holder_reload(policy_holder *h, const void *doc, size_t len, policy_diag *diag)
{
    if (h == NULL)
        return ZTB_ERR_INVALID_ARG;
    policy *next = NULL;
    pthread_mutex_lock(&h->reload);
    ztb_err rv = policy_load(doc, len, &next, diag);
    if (rv == ZTB_OK)
        rv = install(h, next, diag);
    pthread_mutex_unlock(&h->reload);
    return rv;
}

ztb_err policy_holder_reload_file(policy_holder *h, const char *path, policy_diag *diag)
{
    if (h == NULL)
        return ZTB_ERR_INVALID_ARG;
    policy *next = NULL;
    pthread_mutex_lock(&h->reload);
    ztb_err rv = policy_load_file(path, &next, diag);
    if (rv == ZTB_OK)
        rv = install(h, next, diag);
    pthread_mutex_unlock(&h->reload);
    return rv;
}

uint64_t policy_holder_generation(policy_holder *h)
{
    return atomic_load(&h->generation);
}
