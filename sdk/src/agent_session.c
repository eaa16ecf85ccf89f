/*
 * agent_session.c - the agent's credentials towards the broker: the
 * broker's metadata (token endpoint), client assertions signed with the
 * identity key, and the session credential fetched once and shared by all
 * threads (see agent_impl.h for the locks).
 *
 * Must never: send the key anywhere, or keep a session in memory it does
 * not wipe.
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

/* ---- metadata, assertions, sessions -------------------------------------- */

/* The token endpoint from the broker's metadata (fetched once). *out is a copy. */
ztb_err agent_token_endpoint(struct ztb_agent *a, char out[URL_MAX + 1])
{
    pthread_mutex_lock(&a->mu);
    int have = a->token_endpoint != NULL;
    if (have)
        snprintf(out, URL_MAX + 1, "%s", a->token_endpoint);
    pthread_mutex_unlock(&a->mu);
    if (have)
        return ZTB_OK;
    char url[URL_MAX + 64];
    agent_url_of(a, "/.well-known/oauth-authorization-server", url, sizeof(url));
    struct http_request rq = {.method = "GET", .url = url, .max_body = 65536};
    struct http_response rs;
    ztb_err rv = agent_call(a, &rq, NULL, NULL, &rs);
    if (rv != ZTB_OK) {
        agent_transport_error(a, rv, &rs);
    } else if (rs.status != 200) {
        rv = agent_broker_error(a, &rs, AGENT_CTX_OTHER);
    } else {
        json_t *j = agent_body_json(&rs);
        const char *te = j ? json_string_value(json_object_get(j, "token_endpoint")) : NULL;
        if (te == NULL || !agent_arg_ok(te, URL_MAX)) {
            rv = errdetail_set(a, ZTB_ERR_HTTP, "broker metadata has no token_endpoint");
        } else {
            snprintf(out, URL_MAX + 1, "%s", te);
            char *copy = strdup(te);
            pthread_mutex_lock(&a->mu);
            if (a->token_endpoint == NULL && copy != NULL) {
                a->token_endpoint = copy;
                copy = NULL;
            }
            pthread_mutex_unlock(&a->mu);
            free(copy);
        }
        json_decref(j);
    }
    http_response_free(&rs);
    return rv;
}

/* A client assertion (RFC 7523) for aud signed by key, appended to out. */
ztb_err agent_make_assertion(const struct ztb_agent *a, const ztb_key *key, const char *aud,
                             ztb_buf *out)
{
    uint8_t r[16];
    char jti[32];
    ZTB_GUARD(ztb_random(r, sizeof(r)));
    ZTB_GUARD(ztb_b64url_encode(r, sizeof(r), jti, sizeof(jti), NULL));
    int64_t now = clock_now_s();
    char store[4096];
    ztb_buf p;
    ztb_buf_init_fixed(&p, store, sizeof(store));
    ztb_buf_append_str(&p, "{\"iss\":\"");
    ztb_buf_append_json_escaped(&p, a->spiffe_id, strlen(a->spiffe_id));
    ztb_buf_append_str(&p, "\",\"sub\":\"");
    ztb_buf_append_json_escaped(&p, a->spiffe_id, strlen(a->spiffe_id));
    ztb_buf_append_str(&p, "\",\"aud\":\"");
    ztb_buf_append_json_escaped(&p, aud, strlen(aud));
    ztb_buf_printf(&p, "\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}", (long long)now,
                   (long long)now + ASSERTION_LIFE_S, jti);
    ZTB_GUARD(ztb_buf_error(&p));
    static const ztb_jws_sign_opts so = {.typ = "JWT", .omit_kid = 1};
    return ztb_jws_sign(key, &so, p.data, p.len, out);
}

/* A reference to the current key if enrolled and valid; STATE otherwise. */
ztb_err agent_current_key(struct ztb_agent *a, ztb_key **key)
{
    pthread_mutex_lock(&a->mu);
    int valid = a->id.key != NULL && a->id.not_after > clock_now_s();
    *key = valid ? ztb_key_ref(a->id.key) : NULL;
    int had = a->id.key != NULL;
    pthread_mutex_unlock(&a->mu);
    if (!valid)
        return errdetail_set(a, ZTB_ERR_STATE,
                             had ? "the identity document expired: enroll again with a join token"
                                 : "not enrolled: call ztb_agent_enroll with a join token");
    return ZTB_OK;
}

struct session_prep {
    const ztb_key *key;
    const char *aud;
    ztb_buf form;
};

/* Before each /v1/session attempt: a fresh client assertion (its jti is single-use). */
static ztb_err session_prep_fn(struct ztb_agent *a, void *ud, struct http_request *rq)
{
    struct session_prep *p = ud;
    char store[4096];
    ztb_buf assertion;
    ztb_buf_init_fixed(&assertion, store, sizeof(store));
    ztb_err rv = agent_make_assertion(a, p->key, p->aud, &assertion);
    ztb_buf_reset(&p->form);
    if (rv == ZTB_OK) {
        agent_form_add(&p->form, "client_assertion_type", ZTB_WIRE_ASSERTION_JWT);
        agent_form_add(&p->form, "client_assertion", ztb_buf_cstr(&assertion));
        rv = ztb_buf_error(&p->form);
    }
    ztb_wipe(store, sizeof(store));
    rq->body = p->form.data;
    rq->body_len = p->form.len;
    return rv;
}

/* A session credential into out (copy, secret): the current one, or a new one. */
ztb_err agent_get_session(struct ztb_agent *a, char out[SESSION_MAX + 1])
{
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&a->mu);
    int have = a->session[0] != '\0' && now < a->session_until_ms;
    if (have)
        memcpy(out, a->session, SESSION_MAX + 1);
    pthread_mutex_unlock(&a->mu);
    if (have)
        return ZTB_OK;

    pthread_mutex_lock(&a->session_mu);
    pthread_mutex_lock(&a->mu); /* another thread may have fetched one meanwhile */
    have = a->session[0] != '\0' && clock_mono_ms() < a->session_until_ms;
    if (have)
        memcpy(out, a->session, SESSION_MAX + 1);
    pthread_mutex_unlock(&a->mu);
    if (have) {
        pthread_mutex_unlock(&a->session_mu);
        return ZTB_OK;
    }
    ztb_key *key = NULL;
    char te[URL_MAX + 1];
    struct session_prep sp;
    ztb_buf_init_secret(&sp.form, 8192);
    struct http_response rs;
    memset(&rs, 0, sizeof(rs));
    json_t *j = NULL;
    ztb_err rv = ZTB_OK;
    ZTB_TRY(rv, agent_current_key(a, &key));
    ZTB_TRY(rv, agent_token_endpoint(a, te));
    sp.key = key;
    sp.aud = te;
    char url[URL_MAX + 64];
    agent_url_of(a, "/v1/session", url, sizeof(url));
    struct http_request rq = {.method = "POST",
                              .url = url,
                              .content_type = "application/x-www-form-urlencoded",
                              .max_body = 16384};
    rv = agent_call(a, &rq, session_prep_fn, &sp, &rs);
    if (rv != ZTB_OK) {
        if (rs.error[0] != '\0')
            agent_transport_error(a, rv, &rs);
        goto out;
    }
    if (rs.status != 200) {
        rv = agent_broker_error(a, &rs, AGENT_CTX_OTHER);
        goto out;
    }
    j = agent_body_json(&rs);
    const char *cred = j ? json_string_value(json_object_get(j, "session")) : NULL;
    json_t *ei = j ? json_object_get(j, "expires_in") : NULL;
    if (cred == NULL || strlen(cred) > SESSION_MAX || !json_is_integer(ei) ||
        json_integer_value(ei) <= 0) {
        rv = errdetail_set(a, ZTB_ERR_HTTP, "broker sent an unusable session answer");
        goto out;
    }
    int64_t life_ms = (int64_t)json_integer_value(ei) * 1000;
    int64_t margin = life_ms / 5 < 30000 ? life_ms / 5 : 30000; /* renew before it runs out */
    pthread_mutex_lock(&a->mu);
    ztb_wipe(a->session, sizeof(a->session));
    snprintf(a->session, sizeof(a->session), "%s", cred);
    a->session_until_ms = clock_mono_ms() + life_ms - margin;
    memcpy(out, a->session, SESSION_MAX + 1);
    pthread_mutex_unlock(&a->mu);
out:
    if (j != NULL) {
        const char *c = json_string_value(json_object_get(j, "session"));
        if (c != NULL)
            ztb_wipe((void *)c, strlen(c)); /* jansson's copy of the credential */
        json_decref(j);
    }
    http_response_free(&rs);
    ztb_buf_free(&sp.form);
    ztb_key_free(key);
    pthread_mutex_unlock(&a->session_mu);
    return rv;
}

/* Forget the session used if it is still the current one (the broker refused it). */
void agent_drop_session(struct ztb_agent *a, const char *used)
{
    pthread_mutex_lock(&a->mu);
    if (ztb_ct_eq_len(a->session, strlen(a->session), used, strlen(used))) {
        ztb_wipe(a->session, sizeof(a->session));
        a->session_until_ms = 0;
    }
    pthread_mutex_unlock(&a->mu);
}
