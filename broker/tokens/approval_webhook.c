/*
 * approval_webhook.c - approval notifications to a webhook (see
 * approval_webhook.h).
 *
 * The body is written on the caller's thread (a few microseconds of
 * jansson) and queued; the signature is made on the push thread, through
 * the signer, before the first attempt, so the token path never waits for
 * the signer or the network. The client is published through an atomic
 * pointer: set once before the servers start, cleared after they stopped.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/http/metrics.h"
#include "broker/http/push_client.h"
#include "broker/tokens/approval_webhook.h"
#include "common/base64url.h"
#include "common/log.h"
#include "common/secret.h"

static _Atomic(struct push_client *) g_client;
static int g_resolutions;
static char g_issuer[256];
static approval_webhook_sign_fn g_sign;
static void *g_sign_arg;

ztb_err approval_webhook_signature(approval_webhook_sign_fn sign, void *arg, const void *body,
                                   size_t n, ztb_buf *out)
{
    ztb_buf jws;
    ztb_buf_init(&jws, 8192);
    ztb_err rv = sign(arg, APPROVAL_WEBHOOK_TYP, body, n, &jws);
    if (rv == ZTB_OK)
        rv = ztb_buf_error(&jws);
    if (rv == ZTB_OK) {
        const char *t = ztb_buf_cstr(&jws);
        const char *d1 = memchr(t, '.', jws.len);
        const char *d2 = d1 ? memchr(d1 + 1, '.', jws.len - (size_t)(d1 + 1 - t)) : NULL;
        if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', jws.len - (size_t)(d2 + 1 - t))) {
            rv = ZTB_ERR_MALFORMED;
        } else {
            /* header . (payload removed) . signature */
            ztb_buf_append(out, t, (size_t)(d1 - t) + 1);
            ztb_buf_append(out, d2, jws.len - (size_t)(d2 - t));
            rv = ztb_buf_error(out);
        }
    }
    ztb_buf_free(&jws);
    return rv;
}

/* The push client's header callback: the ZTB-Signature line. */
static ztb_err sign_headers(void *arg, const void *body, size_t n, ztb_buf *hdrs)
{
    (void)arg;
    ztb_buf_append_str(hdrs, APPROVAL_WEBHOOK_HEADER ": ");
    return approval_webhook_signature(g_sign, g_sign_arg, body, n, hdrs);
}

static void count(void *arg, enum push_outcome o)
{
    (void)arg;
    static const enum metrics_counter m[] = {
        [PUSH_DELIVERED] = METRIC_WEBHOOK_DELIVERED,
        [PUSH_RETRY] = METRIC_WEBHOOK_RETRIES,
        [PUSH_GAVE_UP] = METRIC_WEBHOOK_FAILED,
        [PUSH_DROPPED] = METRIC_WEBHOOK_DROPPED,
    };
    if ((unsigned)o < sizeof(m) / sizeof(m[0]))
        metrics_add(m[o], 1);
}

ztb_err approval_webhook_start(const struct approval_webhook_opts *o, char *err, size_t errcap)
{
    if (o == NULL || o->sign == NULL || atomic_load(&g_client) != NULL) {
        snprintf(err, errcap, "approval webhook: started twice or without a signer");
        return ZTB_ERR_STATE;
    }
    ztb_err rv = push_url_check(o->url, o->allow_http, err, errcap);
    if (rv != ZTB_OK)
        return rv;
    g_resolutions = o->resolutions;
    snprintf(g_issuer, sizeof(g_issuer), "%s", o->issuer ? o->issuer : "");
    g_sign = o->sign;
    g_sign_arg = o->sign_arg;
    const struct push_client_opts po = {
        .name = "approval_webhook",
        .url = o->url,
        .timeout_ms = o->timeout_ms,
        .max_attempts = o->max_attempts,
        .backoff_ms = o->backoff_ms,
        .headers = sign_headers,
        .outcome = count,
    };
    struct push_client *c = NULL;
    rv = push_client_new(&po, &c, err, errcap);
    if (rv != ZTB_OK)
        return rv;
    atomic_store(&g_client, c);
    char origin[300];
    push_url_origin(o->url, origin, sizeof(origin));
    ztb_log(ZTB_LOG_INFO, "approval_webhook.on", ZTB_F_STR("to", origin),
            ZTB_F_BOOL("resolutions", o->resolutions));
    return ZTB_OK;
}

void approval_webhook_stop(void)
{
    push_client_free(atomic_exchange(&g_client, NULL));
}

int approval_webhook_on(void)
{
    return atomic_load(&g_client) != NULL;
}

ztb_err approval_webhook_body(const char *issuer, const char *event, const struct store_approval *a,
                              int64_t now, ztb_buf *out)
{
    uint8_t raw[16];
    char jti[4 + 32] = "whk_";
    if (ztb_random(raw, sizeof(raw)) != ZTB_OK ||
        ztb_b64url_encode(raw, sizeof(raw), jti + 4, sizeof(jti) - 4, NULL) != ZTB_OK)
        return ZTB_ERR_INTERNAL;
    char approve[160], deny[160];
    snprintf(approve, sizeof(approve), "ztbctl approvals approve %s", a->id);
    snprintf(deny, sizeof(deny), "ztbctl approvals deny %s --reason TEXT", a->id);
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:o,s:s,s:s}", "iss", issuer, "jti", jti, "iat",
                          (json_int_t)now, "event", event, "approval", store_approval_json(a),
                          "approve", approve, "deny", deny);
    if (o == NULL)
        return ZTB_ERR_NOMEM;
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (s == NULL)
        return ZTB_ERR_NOMEM;
    ztb_buf_append_str(out, s);
    free(s);
    return ztb_buf_error(out);
}

static void notify(const char *event, const struct store_approval *a)
{
    struct push_client *c = atomic_load(&g_client);
    if (c == NULL)
        return;
    ztb_buf body;
    ztb_buf_init(&body, PUSH_BODY_MAX);
    ztb_err rv = approval_webhook_body(g_issuer, event, a, (int64_t)time(NULL), &body);
    if (rv == ZTB_OK)
        (void)push_client_enqueue(c, body.data, body.len); /* a full queue counts and logs */
    else
        ztb_log(ZTB_LOG_ERROR, "approval_webhook.not_sent", ZTB_F_STR("approval", a->id),
                ZTB_F_ERR(rv));
    ztb_buf_free(&body);
}

void approval_webhook_requested(const struct store_approval *a)
{
    notify("approval.requested", a);
}

void approval_webhook_resolved(const struct store_approval *a)
{
    if (!g_resolutions)
        return;
    if (strcmp(a->status, "approved") == 0)
        notify("approval.approved", a);
    else if (strcmp(a->status, "denied") == 0)
        notify("approval.denied", a);
    else if (strcmp(a->status, "expired") == 0)
        notify("approval.expired", a);
}
