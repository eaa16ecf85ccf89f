/*
 * agent_enroll.c - enrollment and renewal of the agent's identity:
 * a CSR for a key made here, sent with the join token (/v1/enroll) or an
 * assertion of the current identity (/v1/renew); the answer installed only
 * when it is for our own key and name; the background renewal thread.
 *
 * Must never: send the key anywhere, keep the join token in memory it does
 * not wipe, or accept an identity document that is not for its own key and
 * name.
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

/* ---- enrollment and renewal ---------------------------------------------- */

/*
 * Check an enroll/renew answer for key and make it the agent's identity
 * (written to the credential file first when there is one).
 */
static ztb_err install(struct ztb_agent *a, ztb_key *key, const struct http_response *rs)
{
    json_t *j = agent_body_json(rs);
    const char *sid = j ? json_string_value(json_object_get(j, "spiffe_id")) : NULL;
    const char *leaf = j ? json_string_value(json_object_get(j, "identity")) : NULL;
    const char *chain = j ? json_string_value(json_object_get(j, "ca")) : NULL;
    struct identity id = {0};
    ztb_err rv = ZTB_OK;
    if (sid == NULL || leaf == NULL || strcmp(sid, a->spiffe_id) != 0) {
        rv = errdetail_set(a, ZTB_ERR_CERT, "broker answer names another identity or none");
        goto out;
    }
    size_t ll = strlen(leaf), cl = chain ? strlen(chain) : 0;
    if (ll + cl + 2 > IDENTITY_MAX) {
        rv = errdetail_set(a, ZTB_ERR_CERT, "identity document too large");
        goto out;
    }
    char *pem = malloc(ll + cl + 2);
    if (pem == NULL) {
        rv = ZTB_ERR_NOMEM;
        goto out;
    }
    size_t pl = ll;
    memcpy(pem, leaf, ll);
    if (ll > 0 && leaf[ll - 1] != '\n')
        pem[pl++] = '\n';
    if (cl > 0)
        memcpy(pem + pl, chain, cl);
    pl += cl;
    pem[pl] = '\0';
    rv = identity_check(key, a->spiffe_id, pem, pl, &id.not_before, &id.not_after);
    if (rv != ZTB_OK) {
        free(pem);
        errdetail_set(a, rv, "broker answered with an identity document for another key or name");
        goto out;
    }
    id.pem = pem;
    id.pem_len = pl;
    id.key = ztb_key_ref(key);
    ztb_err saved = ZTB_OK;
    if (a->cred_file != NULL)
        saved = identity_save(a->cred_file, &id);
    pthread_mutex_lock(&a->mu);
    identity_clear(&a->id);
    a->id = id;
    memset(&id, 0, sizeof(id));
    ztb_wipe(a->session, sizeof(a->session)); /* a session belongs to the old identity */
    a->session_until_ms = 0;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (saved != ZTB_OK)
        rv = errdetail_setf(a, saved, "enrolled, but the credential file %s could not be written",
                            a->cred_file);
out:
    identity_clear(&id);
    json_decref(j);
    return rv;
}

/* POST a JSON body to /v1/enroll or /v1/renew and install the answer. */
static ztb_err post_identity(struct ztb_agent *a, const char *path, ztb_key *key, json_t *body,
                             enum agent_call_ctx ctx)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (text == NULL)
        return ZTB_ERR_NOMEM;
    char url[URL_MAX + 64];
    agent_url_of(a, path, url, sizeof(url));
    struct http_request rq = {.method = "POST",
                              .url = url,
                              .content_type = "application/json",
                              .body = text,
                              .body_len = strlen(text),
                              .max_body = 65536};
    struct http_response rs;
    ztb_err rv = agent_call(a, &rq, NULL, NULL, &rs);
    if (rv != ZTB_OK)
        agent_transport_error(a, rv, &rs);
    else if (rs.status != 201 && rs.status != 200)
        rv = agent_broker_error(a, &rs, ctx);
    else
        rv = install(a, key, &rs);
    http_response_free(&rs);
    ztb_free_secret_str(text); /* holds the join token or an assertion */
    return rv;
}

static const char *const join_secret_keys[] = {"join_token", NULL};
static const char *const renew_secret_keys[] = {"client_assertion", NULL};

/* Wipe the secret strings of a JSON body before it is freed. */
static void json_wipe_free(json_t *j, const char *const *keys)
{
    for (const char *const *k = keys; j != NULL && *k != NULL; k++) {
        const char *s = json_string_value(json_object_get(j, *k));
        if (s != NULL)
            ztb_wipe((void *)s, strlen(s));
    }
    json_decref(j);
}

ztb_err ztb_agent_enroll(ztb_agent *a, const char *join_token)
{
    if (a == NULL || !agent_arg_ok(join_token, 512))
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "a join token is required");
    ztb_key *key = NULL;
    ztb_buf csr;
    ztb_buf_init(&csr, 16384);
    json_t *body = NULL;
    ztb_err rv = ZTB_OK;
    ZTB_TRY(rv, ztb_key_generate(&key));
    ZTB_TRY(rv, ztb_csr_make(key, a->spiffe_id, &csr));
    body = json_pack("{s:s,s:s}", "join_token", join_token, "csr", ztb_buf_cstr(&csr));
    ZTB_CHECK(rv, body != NULL, ZTB_ERR_NOMEM);
    rv = post_identity(a, "/v1/enroll", key, body, AGENT_CTX_ENROLL);
out:
    json_wipe_free(body, join_secret_keys);
    ztb_buf_free(&csr);
    ztb_key_free(key);
    return rv;
}

ztb_err ztb_agent_renew(ztb_agent *a)
{
    if (a == NULL)
        return ZTB_ERR_INVALID_ARG;
    ztb_key *key = NULL;
    ztb_buf csr, assertion;
    ztb_buf_init(&csr, 16384);
    ztb_buf_init_secret(&assertion, 4096);
    json_t *body = NULL;
    char te[URL_MAX + 1];
    ztb_err rv = ZTB_OK;
    ZTB_TRY(rv, agent_current_key(a, &key));
    ZTB_TRY(rv, agent_token_endpoint(a, te));
    ZTB_TRY(rv, ztb_csr_make(key, a->spiffe_id, &csr));
    ZTB_TRY(rv, agent_make_assertion(a, key, te, &assertion));
    body = json_pack("{s:s,s:s,s:s}", "csr", ztb_buf_cstr(&csr), "client_assertion_type",
                     ZTB_WIRE_ASSERTION_JWT, "client_assertion", ztb_buf_cstr(&assertion));
    ZTB_CHECK(rv, body != NULL, ZTB_ERR_NOMEM);
    rv = post_identity(a, "/v1/renew", key, body, AGENT_CTX_OTHER);
out:
    json_wipe_free(body, renew_secret_keys);
    ztb_buf_free(&csr);
    ztb_buf_free(&assertion);
    ztb_key_free(key);
    return rv;
}

/* The renewal thread: renew at two thirds of the identity's life, retry with backoff. */
void *agent_renew_main(void *arg)
{
    struct ztb_agent *a = arg;
    int64_t retry_s = 0, retry_at = 0;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        if (a->id.key == NULL) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        int64_t nb = a->id.not_before, na = a->id.not_after, now = clock_now_s();
        int64_t due = nb + (na - nb) * 2 / 3;
        if (retry_at > due)
            due = retry_at;
        if (now < due) {
            int64_t wait_ms = (due - now) * 1000;
            if (wait_ms > 3600000LL)
                wait_ms = 3600000LL; /* wake now and then: the wall clock may have moved */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&a->cv, &a->mu, &ts);
            continue;
        }
        if (na <= now) {
            pthread_cond_wait(&a->cv, &a->mu); /* expired: only a new enrollment helps */
            continue;
        }
        pthread_mutex_unlock(&a->mu);
        ztb_err rv = ztb_agent_renew(a);
        pthread_mutex_lock(&a->mu);
        if (rv == ZTB_OK) {
            retry_s = 0;
            retry_at = 0;
        } else {
            retry_s = retry_s ? retry_s * 2 : RENEW_RETRY_MIN_S;
            if (retry_s > RENEW_RETRY_MAX_S)
                retry_s = RENEW_RETRY_MAX_S;
            int64_t left = na - clock_now_s();
            if (retry_s > left / 2)
                retry_s = left / 2 > 1 ? left / 2 : 1;
            retry_at = clock_now_s() + retry_s;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}
