/*
 * agent.c - the agent client's requests to the broker (see ztb/agent.h
 * and docs/protocol.md): URLs and forms, the broker's error answers mapped
 * to codes, and retries. The rest of the client: agent_handle.c (the handle
 * and its configuration), agent_session.c (metadata, assertions, sessions),
 * agent_enroll.c (enrollment, renewal), agent_token.c (tokens, DPoP),
 * agent_introspect.c; what they share is in agent_impl.h.
 *
 * Requests: /v1/enroll and /v1/renew (JSON), /v1/session, /v1/token and
 * /v1/introspect (forms). Every request goes through call(), which retries
 * 429, 503 and unreachable brokers with jittered exponential backoff,
 * honours Retry-After, and stops when the retry budget would be exceeded.
 * A DPoP proof is made afresh for each attempt (the broker refuses a proof
 * id twice). A 401 on a session is answered once by fetching a new session.
 *
 * What it must never do: send the key anywhere, keep a token, credential or
 * join token in memory it does not wipe, put one in an error detail, or
 * accept an identity document that is not for its own key and name.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ztb/agent.h>

#include "common/json_gate.h"
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
#include "wire/error_response.h"
#include "wire/wire.h"

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS  5000

/* ---- helpers ------------------------------------------------------------- */

/* "<broker><path>" into out. */
static void url_of(const struct ztb_agent *a, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", a->broker, path);
}

/* Append name=value with form encoding (RFC 1866 application/x-www-form-urlencoded). */
static void form_add(ztb_buf *b, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    if (b->len > 0)
        ztb_buf_append_byte(b, '&');
    ztb_buf_append_str(b, name);
    ztb_buf_append_byte(b, '=');
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            ztb_buf_append_byte(b, ch);
        } else {
            uint8_t enc[3] = {'%', (uint8_t)hex[ch >> 4], (uint8_t)hex[ch & 15]};
            ztb_buf_append(b, enc, 3);
        }
    }
}

/* A printable argument of 1..max bytes. */
static int arg_ok(const char *s, size_t max)
{
    if (s == NULL)
        return 0;
    size_t n = strnlen(s, max + 1);
    return n > 0 && n <= max && ztb_utf8_printable(s, n);
}

/* The JSON object in an HTTP response body (through the gate, common/json_gate.h;
 * the client bounded its size), or NULL. */
static json_t *body_json(const struct http_response *rs)
{
    json_t *j = NULL;
    if (rs->body.len == 0 || ztb_json_gate_load(rs->body.data, rs->body.len, SIZE_MAX,
                                                ZTB_JSON_GATE_DEPTH, 0, &j, NULL, 0) != ZTB_OK)
        return NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

enum call_ctx { CTX_ENROLL, CTX_OTHER };

/*
 * Map a broker error answer (RFC 6749 §5.2 JSON, wire/error_response.h) to a
 * code and a detail: the ztb error the answer names (ZTB_WIRE_ERROR_MEMBER),
 * else, from a broker that names none, its RFC 6749 code. Never the
 * description: it is English for people and may change.
 */
static ztb_err broker_error(const struct ztb_agent *a, const struct http_response *rs,
                            enum call_ctx ctx)
{
    json_t *j = body_json(rs);
    const char *err = j ? json_string_value(json_object_get(j, "error")) : NULL;
    const char *desc = j ? json_string_value(json_object_get(j, "error_description")) : NULL;
    json_t *named = j ? json_object_get(j, ZTB_WIRE_ERROR_MEMBER) : NULL;
    ztb_err rv = ZTB_OK;
    if (err != NULL && json_is_string(named))
        rv = error_response_name_to_err(json_string_value(named), json_string_length(named));
    if (rv == ZTB_OK && err != NULL && ctx == CTX_ENROLL && strcmp(err, "invalid_grant") == 0)
        rv = ZTB_ERR_JOIN_TOKEN;
    if (rv == ZTB_OK)
        rv = error_response_for_code(err, rs->status);
    errdetail_setf(a, rv, "broker: HTTP %ld %.40s: %.180s", rs->status, err ? err : "error",
                   desc ? desc : "(no description)");
    json_decref(j);
    return rv;
}

/* A transport failure as an error with detail. */
static ztb_err transport_error(const struct ztb_agent *a, ztb_err rv,
                               const struct http_response *rs)
{
    return errdetail_setf(a, rv, "broker unreachable: %.200s",
                          rs->error[0] ? rs->error : ztb_strerror(rv));
}

/* Something to do before each attempt (e.g. a fresh DPoP proof). */
typedef ztb_err (*prep_fn)(struct ztb_agent *a, void *ud, struct http_request *rq);

static unsigned random_below(unsigned n)
{
    uint32_t r = 0;
    if (n == 0 || ztb_random(&r, sizeof(r)) != ZTB_OK)
        return 0;
    return r % n;
}

/*
 * Run rq with retries (see the top of this file). On ZTB_OK rs holds the
 * last answer, whatever its status; the caller frees it.
 */
static ztb_err call(struct ztb_agent *a, struct http_request *rq, prep_fn prep, void *ud,
                    struct http_response *rs)
{
    int64_t waited = 0;
    for (unsigned attempt = 0;; attempt++) {
        if (prep != NULL) {
            ztb_err prv = prep(a, ud, rq);
            if (prv != ZTB_OK) {
                memset(rs, 0, sizeof(*rs));
                ztb_buf_init(&rs->body, 1);
                return prv;
            }
        }
        ztb_err rv = http_client_do(a->http, rq, rs);
        int retry =
            rv == ZTB_ERR_UNAVAILABLE || (rv == ZTB_OK && (rs->status == 429 || rs->status == 503));
        if (!retry || attempt >= a->max_retries)
            return rv;
        int64_t wait = BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);
        if (wait > BACKOFF_CAP_MS)
            wait = BACKOFF_CAP_MS;
        wait = wait / 2 + random_below((unsigned)wait / 2 + 1); /* jitter: 50-100% */
        if (rv == ZTB_OK && rs->retry_after_s >= 0) {
            int64_t ra = rs->retry_after_s * 1000;
            if (ra >= wait)
                wait = ra + random_below((unsigned)(ra / 10 < 1000 ? ra / 10 + 1 : 1000));
        }
        if (waited + wait > (int64_t)a->max_wait_ms)
            return rv; /* over the budget: the last answer stands */
        http_response_free(rs);
        clock_sleep_ms((unsigned)wait);
        waited += wait;
    }
}

/* Shared with the other agent_*.c files (agent_impl.h) --------------------*/

void agent_url_of(const struct ztb_agent *a, const char *path, char *out, size_t cap)
{
    url_of(a, path, out, cap);
}

void agent_form_add(ztb_buf *b, const char *name, const char *value)
{
    form_add(b, name, value);
}

int agent_arg_ok(const char *s, size_t max)
{
    return arg_ok(s, max);
}

json_t *agent_body_json(const struct http_response *rs)
{
    return body_json(rs);
}

ztb_err agent_broker_error(const struct ztb_agent *a, const struct http_response *rs,
                           enum agent_call_ctx ctx)
{
    return broker_error(a, rs, ctx == AGENT_CTX_ENROLL ? CTX_ENROLL : CTX_OTHER);
}

ztb_err agent_transport_error(const struct ztb_agent *a, ztb_err rv, const struct http_response *rs)
{
    return transport_error(a, rv, rs);
}

ztb_err agent_call(struct ztb_agent *a, struct http_request *rq, agent_prep_fn prep, void *ud,
                   struct http_response *rs)
{
    return call(a, rq, prep, ud, rs);
}
