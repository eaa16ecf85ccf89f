/*
 * broker_fixture.h - what the broker's revocation and signal unit tests
 * share: a real redis-server, the audit log in a scratch directory, a key
 * store (so tokens can be minted and keys rotated), a policy in g_broker,
 * and small helpers to read the audit log and mint access tokens.
 *
 * Header-only (static inline functions): each test file includes it once.
 */
#ifndef ZTB_TEST_BROKER_FIXTURE_H
#define ZTB_TEST_BROKER_FIXTURE_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/audit.h"
#include "broker/broker.h"
#include "wire/claims.h"
#include "broker/keys.h"
#include "broker/redis_client.h"
#include "harness.h"
#include "pki/jws.h"
#include "pki/keystore.h"
#include "policy/holder.h"

#define BF_ISSUER "https://broker.unit.test"

static struct zh_redis bf_redis;
static char bf_dir[256];

/* Start Redis, the audit log, a key store (keys opened) and load policy
 * (JSON text, may be NULL). */
static inline void bf_setup(const char *policy_text)
{
    signal(SIGPIPE, SIG_IGN);
    zh_redis_start(&bf_redis);
    struct redis_target t;
    char err[512];
    if (redis_target_parse(bf_redis.url, 0, &t, err, sizeof(err)) != ZTB_OK)
        abort();
    t.timeout_ms = ZH_REDIS_TIMEOUT_MS;
    redis_client_init(&t);
    zh_tmpdir(bf_dir, sizeof(bf_dir));
    char path[400];
    snprintf(path, sizeof(path), "%s/audit", bf_dir);
    if (audit_open(path, 0, err, sizeof(err)) != ZTB_OK)
        abort();
    snprintf(path, sizeof(path), "%s/keys", bf_dir);
    ztb_keystore *ks = NULL;
    if (ztb_keystore_init(path, NULL, (int64_t)time(NULL) - 10, &ks) != ZTB_OK)
        abort();
    ztb_keystore_close(ks);
    if (keys_open(path, NULL, (int64_t)time(NULL), err, sizeof(err)) != ZTB_OK) {
        fprintf(stderr, "keys_open: %s\n", err);
        abort();
    }
    snprintf(g_broker.issuer, sizeof(g_broker.issuer), "%s", BF_ISSUER);
    snprintf(g_broker.cfg.trust_domain, sizeof(g_broker.cfg.trust_domain), "ztb.local");
    if (policy_holder_new(&g_broker.policy) != ZTB_OK)
        abort();
    if (policy_text != NULL) {
        policy_diag d;
        policy_diag_init(&d);
        if (policy_holder_reload(g_broker.policy, policy_text, strlen(policy_text), &d) != ZTB_OK) {
            fprintf(stderr, "policy refused (%zu problems)\n", d.n);
            abort();
        }
        policy_diag_free(&d);
    }
}

static inline void bf_teardown(void)
{
    policy_holder_free(g_broker.policy);
    g_broker.policy = NULL;
    keys_close();
    audit_close();
    redis_client_shutdown();
    zh_redis_stop(&bf_redis, 1);
    zh_rmtree(bf_dir);
}

/* The audit log as text (caller frees). */
static inline char *bf_audit(void)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/audit/audit.log", bf_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    char *s = calloc(1, 1 << 22);
    size_t n = fread(s, 1, (1 << 22) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* 1 if an audit line has event and contains needle. */
static inline int bf_audit_has(const char *event, const char *needle)
{
    char *s = bf_audit();
    char ev[96];
    snprintf(ev, sizeof(ev), "\"event\":\"%s\"", event);
    int found = 0;
    for (char *line = s; line && *line && !found;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        found = strstr(line, ev) != NULL && (needle == NULL || strstr(line, needle) != NULL);
        line = nl ? nl + 1 : NULL;
    }
    free(s);
    return found;
}

/* A Redis command's integer (or string as integer) answer. */
static inline long long bf_redis_int(const char *fmt, const char *arg)
{
    redisContext *c = zh_redis_connect(&bf_redis);
    redisReply *r = redisCommand(c, fmt, arg);
    long long v = -999;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r != NULL && r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

/* Mint an access token as the broker does (active key, typ at+jwt). */
static inline void bf_mint(const char *agent, const char *aud, int64_t iat, int64_t exp,
                           int64_t gen, int single_use, const char *typ, char *jti_out, char *tok,
                           size_t cap)
{
    char spiffe[128];
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", agent);
    struct token_claims c = {.iss = g_broker.issuer,
                             .agent = agent,
                             .spiffe_id = spiffe,
                             .audience = aud,
                             .action = "payments:read",
                             .iat = iat,
                             .exp = exp,
                             .generation = gen,
                             .single_use = single_use};
    if (claims_new_jti(&c) != ZTB_OK)
        abort();
    ztb_buf cb, tb;
    ztb_buf_init(&cb, 8192);
    ztb_buf_init_fixed(&tb, tok, cap);
    if (claims_write(&c, &cb) != ZTB_OK)
        abort();
    struct keys_state *ks = keys_acquire();
    ztb_jws_sign_opts so = {.typ = typ};
    if (keys_sign_jws(ks, &so, ztb_buf_cstr(&cb), cb.len, &tb) != ZTB_OK ||
        ztb_buf_cstr(&tb) == NULL)
        abort();
    keys_release(ks);
    ztb_buf_free(&cb);
    if (jti_out != NULL)
        memcpy(jti_out, c.jti, sizeof(c.jti));
}

#endif /* ZTB_TEST_BROKER_FIXTURE_H */
