/*
 * agent.c - integration tests acting as agents and gateways (see agent.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "common/base64url.h"
#include "wire/wire.h"
#include "pki/csr.h"
#include "pki/jws.h"

static char g_issuer[256];

void za_set_issuer(const char *issuer)
{
    snprintf(g_issuer, sizeof(g_issuer), "%s", issuer ? issuer : "");
}

static const char *issuer_of(const struct zh_broker *b)
{
    return g_issuer[0] ? g_issuer : b->url;
}

json_t *za_json(const struct zh_resp *r)
{
    json_error_t e;
    json_t *j = r->body ? json_loads(r->body, 0, &e) : NULL;
    if (j == NULL)
        fail_msg("not JSON (HTTP %ld): %s", r->status, r->body ? r->body : "");
    return j;
}

void za_expect_error(const struct zh_resp *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg("want HTTP %ld, got %ld: %s", status, r->status, r->body);
    json_t *j = za_json(r);
    const char *got = json_string_value(json_object_get(j, "error"));
    if (got == NULL || strcmp(got, code) != 0)
        fail_msg("want error %s, got %s", code, r->body);
    json_decref(j);
}

char *za_join_token(const struct zh_broker *b, const char *name)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    struct zh_resp r;
    assert_int_equal(zh_admin(b, "POST", "/v1/agents", body, &r), 0);
    if (r.status != 201)
        fail_msg("agent add %s: HTTP %ld %s", name, r.status, r.body);
    json_t *j = za_json(&r);
    char *tok = strdup(json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    zh_resp_free(&r);
    return tok;
}

long za_enroll_with(const struct zh_broker *b, const struct za_agent *a, const char *join,
                    struct zh_resp *r)
{
    char spiffe[128];
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", a->name);
    ztb_buf csr;
    ztb_buf_init(&csr, 8192);
    assert_int_equal(ztb_csr_make(a->key, spiffe, &csr), ZTB_OK);
    json_t *req = json_pack("{s:s,s:s}", "join_token", join, "csr", ztb_buf_cstr(&csr));
    char *text = json_dumps(req, 0);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/enroll", b->url);
    assert_int_equal(zh_http("POST", url, NULL, "application/json", text, strlen(text), NULL, r),
                     0);
    free(text);
    json_decref(req);
    ztb_buf_free(&csr);
    return r->status;
}

void za_assertion(const struct zh_broker *b, const struct za_agent *a, const char *jti,
                  ztb_buf *out)
{
    char claims[1024], jti_buf[32];
    if (jti == NULL) {
        uint8_t rnd[16];
        for (int i = 0; i < 16; i++)
            rnd[i] = (uint8_t)rand();
        ztb_b64url_encode(rnd, 16, jti_buf, sizeof(jti_buf), NULL);
        jti = jti_buf;
    }
    int64_t now = time(NULL);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"spiffe://ztb.local/agent/%s\",\"sub\":\"spiffe://ztb.local/agent/%s\","
             "\"aud\":\"%s/v1/token\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}",
             a->name, a->name, issuer_of(b), (long long)now, (long long)(now + 30), jti);
    ztb_jws_sign_opts o = {.typ = "JWT"};
    ztb_buf_reset(out);
    assert_int_equal(ztb_jws_sign(a->key, &o, claims, strlen(claims), out), ZTB_OK);
}

long za_post_form(const struct zh_broker *b, const char *path, const char *form, struct zh_resp *r)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", b->url, path);
    assert_int_equal(zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form,
                             strlen(form), NULL, r),
                     0);
    return r->status;
}

void za_enroll(const struct zh_broker *b, struct za_agent *a, const char *name)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->name, sizeof(a->name), "%s", name);
    assert_int_equal(ztb_key_generate(&a->key), ZTB_OK);
    char *join = za_join_token(b, name);
    struct zh_resp r;
    if (za_enroll_with(b, a, join, &r) != 201)
        fail_msg("enroll %s: HTTP %ld %s", name, r.status, r.body);
    free(join);
    zh_resp_free(&r);
    ztb_buf as;
    ztb_buf_init(&as, 4096);
    za_assertion(b, a, NULL, &as);
    char form[4096];
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_ASSERTION_TYPE,
             ztb_buf_cstr(&as));
    ztb_buf_free(&as);
    if (za_post_form(b, "/v1/session", form, &r) != 200)
        fail_msg("session %s: HTTP %ld %s", name, r.status, r.body);
    json_t *j = za_json(&r);
    snprintf(a->session, sizeof(a->session), "%s",
             json_string_value(json_object_get(j, "session")));
    json_decref(j);
    zh_resp_free(&r);
}

long za_token(const struct zh_broker *b, const struct za_agent *a, const char *audience,
              const char *scope, struct zh_resp *r, char *tok, size_t cap)
{
    char form[2048];
    snprintf(form, sizeof(form),
             "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
             "&client_assertion_type=%s&client_assertion=%s&audience=%s&scope=%s",
             ZA_SESSION_TYPE, a->session, audience, scope);
    long st = za_post_form(b, "/v1/token", form, r);
    if (st == 200 && tok != NULL) {
        json_t *j = za_json(r);
        snprintf(tok, cap, "%s", json_string_value(json_object_get(j, "access_token")));
        json_decref(j);
    }
    return st;
}

json_t *za_claims(const char *tok)
{
    const char *d1 = strchr(tok, '.');
    assert_non_null(d1);
    const char *d2 = strchr(d1 + 1, '.');
    assert_non_null(d2);
    uint8_t buf[8192];
    size_t n;
    assert_int_equal(ztb_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof(buf) - 1, &n),
                     ZTB_OK);
    buf[n] = '\0';
    json_error_t e;
    json_t *j = json_loads((const char *)buf, 0, &e);
    assert_non_null(j);
    return j;
}

void za_kid(const char *tok, char *kid, size_t cap)
{
    ztb_jws_header h;
    assert_int_equal(ztb_jws_peek(tok, strlen(tok), NULL, &h), ZTB_OK);
    snprintf(kid, cap, "%s", h.kid);
}

int za_active(const struct zh_broker *b, const struct za_agent *caller, const char *tok)
{
    char form[12288];
    snprintf(form, sizeof(form), "token=%s&client_assertion_type=%s&client_assertion=%s", tok,
             ZA_SESSION_TYPE, caller->session);
    struct zh_resp r;
    if (za_post_form(b, "/v1/introspect", form, &r) != 200)
        fail_msg("introspect: HTTP %ld %s", r.status, r.body);
    json_t *j = za_json(&r);
    int active = json_is_true(json_object_get(j, "active"));
    if (!active && json_object_size(j) != 1)
        fail_msg("an inactive token must say nothing more: %s", r.body);
    json_decref(j);
    zh_resp_free(&r);
    return active;
}

void za_expect_used_marker(const struct zh_redis *rd, const char *tok)
{
    json_t *c = za_claims(tok);
    redisContext *rc = zh_redis_connect(rd);
    redisReply *rep = redisCommand(rc, "PTTL " ZTB_WIRE_USED_KEY_FMT,
                                   json_string_value(json_object_get(c, "jti")));
    int64_t exp = json_integer_value(json_object_get(c, "exp"));
    long long want = (exp + ZTB_WIRE_MAX_SKEW_S - (int64_t)time(NULL) - 2) * 1000;
    assert_non_null(rep);
    assert_true(rep->type == REDIS_REPLY_INTEGER);
    if (rep->integer < want)
        fail_msg("the used marker lives %lld ms, want at least %lld", rep->integer, want);
    freeReplyObject(rep);
    redisFree(rc);
    json_decref(c);
}

void za_free(struct za_agent *a)
{
    ztb_key_free(a->key);
    a->key = NULL;
}

char *za_audit_text(const struct zh_broker *b)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/audit/audit.log", b->state);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t cap = 1 << 24;
    char *s = calloc(1, cap);
    assert_non_null(s);
    size_t n = fread(s, 1, cap - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

int za_wait(int (*fn)(void *), void *arg, unsigned ms)
{
    for (unsigned t = 0; t <= ms; t += 20) {
        if (fn(arg))
            return 1;
        usleep(20000);
    }
    return 0;
}

void za_settle(const struct zh_broker *b, const struct za_agent *caller, const char *tok)
{
    char form[12288];
    snprintf(form, sizeof(form), "token=%s&client_assertion_type=%s&client_assertion=%s", tok,
             ZA_SESSION_TYPE, caller->session);
    int good = 0;
    for (int i = 0; i < 400 && good < 12; i++) {
        struct zh_resp r;
        good = za_post_form(b, "/v1/introspect", form, &r) == 200 ? good + 1 : 0;
        zh_resp_free(&r);
        struct zh_resp a;
        good =
            zh_admin(b, "GET", "/v1/agents", NULL, &a) == 0 && a.status == 200 && good ? good : 0;
        zh_resp_free(&a);
        if (good == 0)
            usleep(20000);
    }
    if (good < 12)
        fail_msg("the broker did not recover after Redis came back");
}
