/*
 * agent_approval.c - token requests that wait for a human: the pending
 * answer read into a handle, polls of /v1/approvals/{id}, and the blocking
 * wait built on them (docs/protocol.md, "Approvals").
 *
 * How it works: the pending answer is read by its machine-readable members
 * (ztb_error APPROVAL_PENDING, approval_id, interval, expires_in), never its
 * English text. A poll is a token exchange without request fields: the
 * session authenticates it and, with DPoP on, a proof for the approval's
 * URL (built from the token endpoint, not from what the broker sent) shows
 * the key the token was asked with.
 *
 * Must never: put an approval id the broker sent into a URL unchecked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <ztb/agent.h>

#include "common/secret.h"
#include "sdk/src/agent_impl.h"
#include "sdk/src/clock.h"
#include "sdk/src/errdetail.h"

#define APPROVAL_ID_MAX       39
#define APPROVAL_INTERVAL_MAX 60

struct ztb_approval {
    ztb_agent *a;
    char id[APPROVAL_ID_MAX + 1];
    char path[64];          /* /v1/approvals/<id> */
    char htu[URL_MAX + 64]; /* <issuer>/v1/approvals/<id> */
    unsigned interval;      /* s */
    int64_t expires_at;
};

/* 1 if id is "apr_" and base64url characters, at most APPROVAL_ID_MAX. */
static int id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 5 || n > APPROVAL_ID_MAX || strncmp(id, "apr_", 4) != 0)
        return 0;
    return strspn(id + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
           n - 4;
}

/* Interval and expiry from a pending answer. */
static void read_timing(ztb_approval *p, json_t *ans)
{
    json_t *iv = json_object_get(ans, "interval"), *ex = json_object_get(ans, "expires_in");
    json_int_t i = json_is_integer(iv) ? json_integer_value(iv) : 5;
    p->interval = (unsigned)(i < 1 ? 1 : i > APPROVAL_INTERVAL_MAX ? APPROVAL_INTERVAL_MAX : i);
    if (json_is_integer(ex) && json_integer_value(ex) >= 0 && json_integer_value(ex) <= 7 * 86400)
        p->expires_at = clock_now_s() + (int64_t)json_integer_value(ex);
}

/* A handle for the pending answer ans to a request sent to token endpoint te. */
static ztb_err approval_from(ztb_agent *a, const char *te, json_t *ans, ztb_approval **out)
{
    const char *id = json_string_value(json_object_get(ans, "approval_id"));
    size_t tl = strlen(te), sl = strlen("/v1/token");
    if (!id_ok(id) || tl < sl || strcmp(te + tl - sl, "/v1/token") != 0)
        return errdetail_set(a, ZTB_ERR_HTTP, "the broker's pending answer has no usable approval");
    ztb_approval *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return ZTB_ERR_NOMEM;
    p->a = a;
    memcpy(p->id, id, strlen(id) + 1);
    snprintf(p->path, sizeof(p->path), "/v1/approvals/%s", id);
    snprintf(p->htu, sizeof(p->htu), "%.*s%s", (int)(tl - sl), te, p->path);
    read_timing(p, ans);
    *out = p;
    return ZTB_OK;
}

/* Detail for a decided approval's answer: the approver's reason for a denial. */
static void decided_detail(ztb_agent *a, ztb_err rv, json_t *ans)
{
    const char *why = json_string_value(json_object_get(ans, "reason"));
    if (rv == ZTB_ERR_APPROVAL_DENIED && why != NULL && why[0] != '\0')
        errdetail_setf(a, rv, "denied by an approver: %.200s", why);
}

ztb_err ztb_agent_token_start(ztb_agent *a, const char *audience, const char *action,
                              const char *resource, const char *details_json, char **token,
                              ztb_approval **pending)
{
    if (token != NULL)
        *token = NULL;
    if (pending != NULL)
        *pending = NULL;
    if (a == NULL || token == NULL || pending == NULL)
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "NULL agent, token or pending pointer");
    ztb_buf form;
    ztb_buf_init_secret(&form, 16384);
    char te[URL_MAX + 1];
    json_t *ans = NULL;
    ztb_err rv = agent_token_form(a, audience, action, resource, details_json, &form, te);
    if (rv == ZTB_OK)
        rv = agent_exchange(a, "/v1/token", te, &form, token, &ans);
    if (rv == ZTB_ERR_APPROVAL_PENDING) {
        ztb_err hr = approval_from(a, te, ans, pending);
        if (hr != ZTB_OK)
            rv = hr;
    }
    json_decref(ans);
    ztb_buf_free(&form);
    return rv;
}

ztb_err ztb_approval_poll(ztb_approval *p, char **token)
{
    if (token != NULL)
        *token = NULL;
    if (p == NULL || token == NULL)
        return errdetail_set(p ? p->a : NULL, ZTB_ERR_INVALID_ARG, "NULL approval or token");
    ztb_buf form;
    ztb_buf_init_secret(&form, 64);
    json_t *ans = NULL;
    ztb_err rv = agent_exchange(p->a, p->path, p->htu, &form, token, &ans);
    if (rv == ZTB_ERR_APPROVAL_PENDING && ans != NULL)
        read_timing(p, ans);
    else if (ans != NULL)
        decided_detail(p->a, rv, ans);
    json_decref(ans);
    ztb_buf_free(&form);
    return rv;
}

const char *ztb_approval_id(const ztb_approval *p)
{
    return p ? p->id : "";
}

unsigned ztb_approval_interval(const ztb_approval *p)
{
    return p ? p->interval : 5;
}

int64_t ztb_approval_expires_at(const ztb_approval *p)
{
    return p ? p->expires_at : 0;
}

void ztb_approval_free(ztb_approval *p)
{
    free(p);
}

ztb_err ztb_agent_token_wait(ztb_agent *a, const char *audience, const char *action,
                             const char *resource, const char *details_json, unsigned timeout_ms,
                             char **token)
{
    ztb_approval *p = NULL;
    int64_t start = clock_mono_ms();
    ztb_err rv = ztb_agent_token_start(a, audience, action, resource, details_json, token, &p);
    while (rv == ZTB_ERR_APPROVAL_PENDING && p != NULL) {
        uint64_t spent = (uint64_t)(clock_mono_ms() - start);
        if (spent >= timeout_ms) {
            rv = errdetail_setf(a, ZTB_ERR_TIMEOUT,
                                "approval %s is still pending (ask again for the same request "
                                "to pick it up)",
                                p->id);
            break;
        }
        uint64_t wait = (uint64_t)p->interval * 1000u;
        clock_sleep_ms((unsigned)(wait < timeout_ms - spent ? wait : timeout_ms - spent));
        rv = ztb_approval_poll(p, token);
    }
    ztb_approval_free(p);
    return rv;
}
