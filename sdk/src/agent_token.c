/*
 * agent_token.c - per-action tokens: the RFC 8693 token exchange form
 * (audience, action, resource, authorization_details) sent with the session
 * and a fresh DPoP proof per attempt, and DPoP proofs for the caller's own
 * requests.
 *
 * Must never: keep a token or session in memory it does not wipe, or put
 * one in an error detail.
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

/* ---- tokens -------------------------------------------------------------- */

struct token_prep {
    const ztb_buf *form; /* everything but client authentication */
    const char *session;
    const char *token_endpoint;
    ztb_buf body;        /* rebuilt per attempt */
    char dpop_hdr[2048]; /* "DPoP: <proof>" */
};

/* Before each attempt: the body with the session, and a fresh DPoP proof. */
static ztb_err token_prep_fn(struct ztb_agent *a, void *ud, struct http_request *rq)
{
    struct token_prep *p = ud;
    ztb_buf_reset(&p->body);
    ztb_buf_append(&p->body, p->form->data, p->form->len);
    agent_form_add(&p->body, "client_assertion_type", ZTB_WIRE_ASSERTION_SESSION);
    agent_form_add(&p->body, "client_assertion", p->session);
    ZTB_GUARD(ztb_buf_error(&p->body));
    rq->body = p->body.data;
    rq->body_len = p->body.len;
    rq->headers[0] = NULL;
    if (a->dpop_key != NULL) {
        ztb_buf h;
        ztb_buf_init_fixed(&h, p->dpop_hdr, sizeof(p->dpop_hdr));
        ztb_buf_append_str(&h, "DPoP: ");
        ZTB_GUARD(
            ztb_dpop_proof_make(a->dpop_key, "POST", p->token_endpoint, clock_now_s(), NULL, &h));
        rq->headers[0] = p->dpop_hdr;
        rq->headers[1] = NULL;
    }
    return ZTB_OK;
}

/* Validate the arguments of ztb_agent_token and build the form without auth. */
static ztb_err token_form(const struct ztb_agent *a, const char *audience, const char *action,
                          const char *resource, const char *details, ztb_buf *form)
{
    if (!agent_arg_ok(audience, 256) || !agent_arg_ok(action, 256))
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "audience and action are required");
    if (resource != NULL && !agent_arg_ok(resource, FIELD_MAX))
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "resource empty, too long or not printable");
    agent_form_add(form, "grant_type", ZTB_WIRE_GRANT_TOKEN_EXCHANGE);
    agent_form_add(form, "audience", audience);
    agent_form_add(form, "scope", action);
    if (resource != NULL)
        agent_form_add(form, "resource", resource);
    if (details == NULL)
        return ztb_buf_error(form);
    size_t dl = strnlen(details, DETAILS_MAX + 1);
    json_error_t e;
    json_t *obj = dl <= DETAILS_MAX && memchr(details, '\0', dl) == NULL
                      ? json_loadb(details, dl, JSON_REJECT_DUPLICATES, &e)
                      : NULL;
    json_t *type = json_is_object(obj) ? json_object_get(obj, "type") : NULL;
    if (!json_is_object(obj) || (type != NULL && !json_is_string(type))) {
        json_decref(obj);
        return errdetail_set(a, ZTB_ERR_INVALID_ARG,
                             "details_json must be a JSON object (its \"type\" a string)");
    }
    if (type == NULL)
        json_object_set_new(obj, "type", json_string(ZTB_WIRE_DETAIL_TYPE_ACTION));
    json_t *arr = json_pack("[o]", obj);
    char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (text == NULL)
        return ZTB_ERR_NOMEM;
    agent_form_add(form, "authorization_details", text);
    free(text);
    return ztb_buf_error(form);
}

/* Parse a 200 token answer into a new secret string. */
static ztb_err token_answer(struct ztb_agent *a, const struct http_response *rs, char **token)
{
    json_t *j = agent_body_json(rs);
    const char *tok = j ? json_string_value(json_object_get(j, "access_token")) : NULL;
    const char *type = j ? json_string_value(json_object_get(j, "token_type")) : NULL;
    ztb_err rv = ZTB_OK;
    if (tok == NULL || type == NULL || strlen(tok) > ZTB_JWS_DEFAULT_MAX) {
        rv = errdetail_set(a, ZTB_ERR_HTTP, "broker sent an unusable token answer");
    } else if ((a->dpop_key != NULL) != (strcmp(type, ZTB_WIRE_TOKEN_TYPE_DPOP) == 0)) {
        rv = errdetail_set(a, ZTB_ERR_DPOP,
                           a->dpop_key ? "broker did not bind the token to DPoP"
                                       : "broker bound the token to a key");
    } else if ((*token = strdup(tok)) == NULL) {
        rv = ZTB_ERR_NOMEM;
    }
    if (tok != NULL)
        ztb_wipe((void *)tok, strlen(tok));
    json_decref(j);
    return rv;
}

/* 1 if the broker's error r names one of the approval states (their
 * answers carry the approval's members). */
static int approval_answer(ztb_err r)
{
    return r == ZTB_ERR_APPROVAL_PENDING || r == ZTB_ERR_APPROVAL_DENIED ||
           r == ZTB_ERR_APPROVAL_EXPIRED;
}

ztb_err agent_exchange(struct ztb_agent *a, const char *path, const char *htu, const ztb_buf *form,
                       char **token, json_t **answer)
{
    if (answer != NULL)
        *answer = NULL;
    struct token_prep p = {.form = form, .token_endpoint = htu};
    ztb_buf_init_secret(&p.body, 16384);
    char session[SESSION_MAX + 1] = "";
    char url[URL_MAX + 64];
    agent_url_of(a, path, url, sizeof(url));
    ztb_err rv = ZTB_OK;
    for (int round = 0; round < 2; round++) {
        ZTB_TRY(rv, agent_get_session(a, session));
        p.session = session;
        struct http_request rq = {.method = "POST",
                                  .url = url,
                                  .content_type = "application/x-www-form-urlencoded",
                                  .max_body = 65536};
        struct http_response rs;
        rv = agent_call(a, &rq, token_prep_fn, &p, &rs);
        if (rv != ZTB_OK) {
            if (rs.error[0] != '\0')
                agent_transport_error(a, rv, &rs);
        } else if (rs.status == 200) {
            rv = token_answer(a, &rs, token);
        } else {
            rv = agent_broker_error(a, &rs, AGENT_CTX_OTHER);
            if (rv == ZTB_ERR_INVALID_CLIENT && round == 0) {
                agent_drop_session(a, session); /* expired or ended: one new session, then again */
                rv = ZTB_OK;
                http_response_free(&rs);
                continue;
            }
            if (answer != NULL && approval_answer(rv))
                *answer = agent_body_json(&rs);
        }
        http_response_free(&rs);
        break;
    }
out:
    ztb_wipe(session, sizeof(session));
    ztb_wipe(p.dpop_hdr, sizeof(p.dpop_hdr));
    ztb_buf_free(&p.body);
    return rv;
}

ztb_err agent_token_form(struct ztb_agent *a, const char *audience, const char *action,
                         const char *resource, const char *details_json, ztb_buf *form,
                         char te[URL_MAX + 1])
{
    ztb_err rv = token_form(a, audience, action, resource, details_json, form);
    if (rv == ZTB_OK)
        rv = agent_token_endpoint(a, te);
    return rv;
}

ztb_err ztb_agent_token(ztb_agent *a, const char *audience, const char *action,
                        const char *resource, const char *details_json, char **token)
{
    if (token != NULL)
        *token = NULL;
    if (a == NULL || token == NULL)
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "NULL agent or token pointer");
    ztb_buf form;
    ztb_buf_init_secret(&form, 16384);
    char te[URL_MAX + 1];
    ztb_err rv = agent_token_form(a, audience, action, resource, details_json, &form, te);
    if (rv == ZTB_OK)
        rv = agent_exchange(a, "/v1/token", te, &form, token, NULL);
    ztb_buf_free(&form);
    return rv;
}

void ztb_token_free(char *token)
{
    ztb_free_secret_str(token);
}

ztb_err ztb_dpop_proof(ztb_agent *a, const char *htm, const char *htu, const char *token,
                       char **proof)
{
    if (proof != NULL)
        *proof = NULL;
    if (a == NULL || proof == NULL || !agent_arg_ok(htm, 16) ||
        !agent_arg_ok(htu, ZTB_DPOP_HTU_MAX) ||
        (token != NULL && !agent_arg_ok(token, ZTB_JWS_DEFAULT_MAX)))
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "method and URL are required");
    if (a->dpop_key == NULL)
        return errdetail_set(a, ZTB_ERR_STATE, "DPoP is off: ztb_agent_config_set_dpop(cfg, 1)");
    ztb_buf b;
    ztb_buf_init_secret(&b, 4096);
    ztb_err rv = ztb_dpop_proof_make(a->dpop_key, htm, htu, clock_now_s(), token, &b);
    if (rv == ZTB_OK) {
        *proof = ztb_buf_steal(&b, NULL);
        if (*proof == NULL)
            rv = ZTB_ERR_NOMEM;
    }
    ztb_buf_free(&b);
    return rv != ZTB_OK ? errdetail_set(a, rv, "cannot make a DPoP proof") : ZTB_OK;
}
