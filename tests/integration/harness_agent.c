/*
 * harness_agent.c - act as an agent against a real broker (see
 * harness_agent.h). Plays the agent with pki directly, so every byte on the
 * wire is ours and checked against docs/protocol.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "common/base64url.h"
#include "harness_agent.h"
#include "pki/csr.h"
#include "pki/jws.h"

#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define SESSION_TYPE   "urn:ztb:params:oauth:client-assertion-type:session"
#define GRANT          "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("harness_agent: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* The body of r as a JSON object (caller decrefs), or the test fails. */
static json_t *json_body(const struct zh_resp *r, const char *what)
{
    json_error_t e;
    json_t *j = r->body ? json_loads(r->body, 0, &e) : NULL;
    if (!json_is_object(j))
        fail("%s: HTTP %ld, not a JSON object: %s", what, r->status, r->body ? r->body : "");
    return j;
}

/* A string member of the JSON body copied into out, or the test fails. */
static void body_string(const struct zh_resp *r, const char *what, const char *member, char *out,
                        size_t cap)
{
    json_t *j = json_body(r, what);
    const char *v = json_string_value(json_object_get(j, member));
    if (v == NULL || strlen(v) >= cap)
        fail("%s: no usable \"%s\" in %s", what, member, r->body);
    memcpy(out, v, strlen(v) + 1);
    json_decref(j);
}

void zh_token_endpoint(const struct zh_broker *b, char *out, size_t cap)
{
    struct zh_resp r;
    if (zh_get(b, "/.well-known/oauth-authorization-server", &r) != 0 || r.status != 200)
        fail("metadata: HTTP %ld %s", r.status, r.body ? r.body : "");
    body_string(&r, "metadata", "token_endpoint", out, cap);
    zh_resp_free(&r);
}

void zh_agent_enroll(const struct zh_broker *b, const char *name, ztb_key **key)
{
    char req[256], join[128], spiffe[256], url[512];
    snprintf(req, sizeof(req), "{\"name\":\"%s\"}", name);
    struct zh_resp r;
    if (zh_admin(b, "POST", "/v1/agents", req, &r) != 0 || r.status != 201)
        fail("add agent %s: HTTP %ld %s", name, r.status, r.body ? r.body : "");
    body_string(&r, "add agent", "join_token", join, sizeof(join));
    zh_resp_free(&r);

    if (ztb_key_generate(key) != ZTB_OK)
        fail("cannot generate a P-256 key");
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", name);
    ztb_buf csr;
    ztb_buf_init(&csr, 8192);
    if (ztb_csr_make(*key, spiffe, &csr) != ZTB_OK)
        fail("cannot make a CSR for %s", spiffe);
    json_t *body = json_pack("{s:s,s:s}", "join_token", join, "csr", ztb_buf_cstr(&csr));
    char *text = json_dumps(body, 0);
    snprintf(url, sizeof(url), "%s/v1/enroll", b->url);
    if (zh_http("POST", url, NULL, "application/json", text, strlen(text), NULL, &r) != 0 ||
        r.status != 201)
        fail("enroll %s: HTTP %ld %s", name, r.status, r.body ? r.body : "");
    zh_resp_free(&r);
    free(text);
    json_decref(body);
    ztb_buf_free(&csr);
}

void zh_agent_assertion(const ztb_key *k, const char *name, const char *aud, ztb_buf *out)
{
    uint8_t rnd[16];
    char jti[32], claims[1024];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
        ztb_b64url_encode(rnd, sizeof(rnd), jti, sizeof(jti), NULL) != ZTB_OK)
        fail("cannot make a jti");
    long long now = (long long)time(NULL);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"spiffe://ztb.local/agent/%s\",\"sub\":\"spiffe://ztb.local/agent/%s\","
             "\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}",
             name, name, aud, now, now + 30, jti);
    ztb_jws_sign_opts o = {.typ = "JWT"};
    ztb_buf_reset(out);
    if (ztb_jws_sign(k, &o, claims, strlen(claims), out) != ZTB_OK)
        fail("cannot sign a client assertion");
}

void zh_agent_session(const struct zh_broker *b, const ztb_key *k, const char *name, char *out)
{
    char aud[512], form[4096];
    zh_token_endpoint(b, aud, sizeof(aud));
    ztb_buf a;
    ztb_buf_init(&a, 4096);
    zh_agent_assertion(k, name, aud, &a);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ASSERTION_TYPE,
             ztb_buf_cstr(&a));
    ztb_buf_free(&a);
    struct zh_resp r;
    if (zh_post_form(b, "/v1/session", form, &r) != 0 || r.status != 200)
        fail("session for %s: HTTP %ld %s", name, r.status, r.body ? r.body : "");
    body_string(&r, "session", "session", out, ZH_SESSION_MAX);
    if (strncmp(out, "ztbs_", 5) != 0)
        fail("session for %s: not a session credential: %s", name, out);
    zh_resp_free(&r);
}

void zh_agent_ready(const struct zh_broker *b, const char *name, char *session, ztb_key **key)
{
    ztb_key *k;
    zh_agent_enroll(b, name, &k);
    zh_agent_session(b, k, name, session);
    if (key != NULL)
        *key = k;
    else
        ztb_key_free(k);
}

long zh_token_request(const struct zh_broker *b, const char *session, const char *extra,
                      struct zh_resp *r)
{
    char form[4096];
    snprintf(form, sizeof(form), "grant_type=%s&client_assertion_type=%s&client_assertion=%s%s",
             GRANT, SESSION_TYPE, session, extra ? extra : "");
    if (zh_post_form(b, "/v1/token", form, r) != 0)
        return 0;
    return r->status;
}
