/*
 * test_redis_cluster.c - ztb on a real Redis Cluster: three masters on
 * loopback made by the test (cluster-enabled yes, redis-cli --cluster
 * create), ztb-broker with --redis redis+cluster://..., agents whose keys
 * live on three different shards ({crm-bot} slot 806, {beta-bot} 9943,
 * {alpha-bot} 13435; the revocation state {rev} is on the middle one),
 * and SDK verifiers following the same URL:
 *
 * - enrollment, sessions and issuance for each agent;
 * - a verifier made after a revocation loads it (bootstrap), and sees
 *   later ones announced over sharded pub/sub (SPUBLISH/SSUBSCRIBE on the
 *   {rev} slot's master): a token, an agent, an audience kill (issuance
 *   refused too, until lifted), a tainted key;
 * - a single-use token is consumed once across verifiers; a DPoP proof is
 *   accepted once;
 * - /readyz is ready and no Redis error reply was counted (no CROSSSLOT,
 *   no MOVED left unresolved).
 * The broker and the verifiers reach every node through the least-privilege
 * ACL users of docs/redis.md's Cluster lines (set on each node, the default
 * user off); the verifier's user is refused what it must not do there.
 * A shard failover: test_redis_cluster_failover.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdk_it.h"

static const char *const policy =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 100000, \"burst\": 10000, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 100000, \"burst\": 10000, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"refund\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/*\"], \"obligations\": {\"ttl\": 30, \"single_use\": true}},\n"
    "  {\"id\": \"list\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:list\"], \"audiences\": [\"payments\"], \"resources\": "
    "[\"**\"]},\n"
    "  {\"id\": \"tickets\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"tickets:create\"], \"audiences\": [\"payments\"], \"resources\": "
    "[\"**\"],\n"
    "   \"obligations\": {\"binding\": \"dpop\"}}\n"
    " ]}\n";

/* docs/redis.md, "ACL users per role", the Cluster lines (the passwords
 * are the test's) */
static const char *const acl_lines[] = {
    "ACL SETUSER ztb-broker reset on >broker-pw ~ztb:* &ztb:{rev}:revocations "
    "+@read +@write +@scripting +@connection +@transaction -@dangerous "
    "+info +config|get +role +wait +sort +time +spublish +cluster|slots",
    "ACL SETUSER ztb-verifier reset on >verifier-pw resetchannels &ztb:{rev}:revocations "
    "+ping +ssubscribe +sunsubscribe +cluster|slots +asking +zscan +get +set +lpush +ltrim "
    "%R~ztb:{rev}:events %R~ztb:{rev}:seq %W~ztb:used:* %W~ztb:dpop:* "
    "%W~ztb:unknown_reports",
    "ACL SETUSER default off",
};

static struct zh_redis nodes[3];
static char url[256], verifier_url[256];
static struct zh_broker b;
static const char *const names[] = {"crm-bot", "beta-bot", "alpha-bot"};
static ztb_agent *agents[3];
static ztb_agent *dpop_agent; /* ops-bot, slot 4607 */
static ztb_verifier *v, *replica;

/* A connection to node n as user (AUTH user pw). */
static redisContext *node_user(const struct zh_redis *n, const char *user, const char *pw)
{
    redisContext *c = zh_redis_connect(n);
    redisReply *r = redisCommand(c, "AUTH %s %s", user, pw);
    if (r == NULL || r->type != REDIS_REPLY_STATUS)
        fail_msg("AUTH %s on port %d: %s", user, n->port, r ? r->str : c->errstr);
    freeReplyObject(r);
    return c;
}

/* The test's own connection to node n (the default user is off). */
static redisContext *node_as(const struct zh_redis *n)
{
    return node_user(n, "admin", "admin-pw");
}

/* The users of docs/redis.md on node n (ACLs are per node), and an admin
 * for the test. */
static void set_acl_users(const struct zh_redis *n)
{
    redisContext *c = zh_redis_connect(n);
    redisReply *r = redisCommand(c, "ACL SETUSER admin on >admin-pw ~* &* +@all");
    assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    for (size_t i = 0; i < sizeof(acl_lines) / sizeof(acl_lines[0]); i++) {
        /* split at spaces: the lines hold '%', which is no format here */
        char line[512];
        const char *argv[40];
        int argc = 0;
        snprintf(line, sizeof(line), "%s", acl_lines[i]);
        for (char *save = NULL, *w = strtok_r(line, " ", &save); w != NULL && argc < 40;
             w = strtok_r(NULL, " ", &save))
            argv[argc++] = w;
        r = redisCommandArgv(c, argc, argv, NULL);
        if (r == NULL || r->type != REDIS_REPLY_STATUS)
            fail_msg("%s: %s", acl_lines[i], r ? r->str : c->errstr);
        freeReplyObject(r);
    }
    redisFree(c);
}

static int setup(void **state)
{
    (void)state;
    char plain[200];
    zh_cluster_start(nodes, 3, plain, sizeof(plain));
    for (int i = 0; i < 3; i++)
        set_acl_users(&nodes[i]);
    const char *seeds = plain + strlen("redis+cluster://");
    snprintf(url, sizeof(url), "redis+cluster://ztb-broker:broker-pw@%s", seeds);
    snprintf(verifier_url, sizeof(verifier_url), "redis+cluster://ztb-verifier:verifier-pw@%s",
             seeds);
    zh_broker_start_issuing(&b, url, policy);
    for (int i = 0; i < 3; i++)
        agents[i] = sdk_it_enrolled(&b, names[i], 0);
    dpop_agent = sdk_it_enrolled(&b, "ops-bot", 1);
    replica = sdk_it_verifier(&b, verifier_url);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_verifier_free(v);
    ztb_verifier_free(replica);
    for (int i = 0; i < 3; i++)
        ztb_agent_free(agents[i]);
    ztb_agent_free(dpop_agent);
    zh_broker_stop(&b);
    for (int i = 0; i < 3; i++)
        zh_redis_stop(&nodes[i], 1);
    zh_rmtree(b.dir);
    return 0;
}

static char *mint(ztb_agent *a, const char *action, const char *resource)
{
    char *tok = NULL;
    ztb_err rv = ztb_agent_token(a, "payments", action, resource, NULL, &tok);
    if (rv != ZTB_OK)
        fail_msg("token %s: %s: %s", action, ztb_err_name(rv), ztb_agent_errdetail(a));
    return tok;
}

static ztb_err check(ztb_verifier *x, const char *tok, const char *action, const char *resource)
{
    ztb_expect e = {.action = action, .resource = resource};
    return ztb_verify(x, tok, &e, NULL);
}

/* Wait up to 3 s for tok to be refused with want at x. */
static ztb_err wait_refused(ztb_verifier *x, const char *tok, ztb_err want)
{
    ztb_err rv = ZTB_OK;
    for (int i = 0; i < 300 && rv != want; i++) {
        rv = check(x, tok, "payments:list", NULL);
        if (rv != want)
            usleep(10000);
    }
    return rv;
}

static void admin_revoke(const char *body)
{
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/revocations", body, &r), 0);
    if (r.status != 200)
        fail_msg("revoke %s: HTTP %ld %s", body, r.status, r.body);
    zh_resp_free(&r);
}

static void revoke_token(const char *tok)
{
    char body[4096];
    snprintf(body, sizeof(body), "{\"type\":\"jti\",\"token\":\"%s\"}", tok);
    admin_revoke(body);
}

/* The node (index) holding key, -1 if none. */
static int holder(const char *key)
{
    int at = -1;
    for (int i = 0; i < 3; i++) {
        redisContext *c = node_as(&nodes[i]);
        redisReply *r = redisCommand(c, "EXISTS %s", key);
        if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
            at = i;
        if (r != NULL)
            freeReplyObject(r);
        redisFree(c);
    }
    return at;
}

static void test_agents_on_three_shards(void **state)
{
    (void)state;
    int seen[3] = {0};
    for (int i = 0; i < 3; i++) {
        char k[64];
        snprintf(k, sizeof(k), "ztb:{%s}:agent", names[i]);
        int h = holder(k);
        assert_true(h >= 0);
        seen[h] = 1;
    }
    assert_true(seen[0] && seen[1] && seen[2]);
}

/* A revocation made before the verifier exists is in the set it loads;
 * one made after is announced to it. */
static void test_bootstrap_and_announcements(void **state)
{
    (void)state;
    char *before = mint(agents[0], "payments:list", NULL);
    revoke_token(before);
    v = sdk_it_verifier(&b, verifier_url);
    assert_int_equal(check(v, before, "payments:list", NULL), ZTB_ERR_REVOKED);
    char *toks[3];
    for (int i = 0; i < 3; i++) {
        toks[i] = mint(agents[i], "payments:list", NULL);
        ztb_err rv = check(v, toks[i], "payments:list", NULL);
        if (rv != ZTB_OK)
            fail_msg("%s: %s: %s", names[i], ztb_err_name(rv), ztb_verifier_errdetail(v));
    }
    /* a token, announced */
    revoke_token(toks[2]);
    assert_int_equal(wait_refused(v, toks[2], ZTB_ERR_REVOKED), ZTB_ERR_REVOKED);
    /* an agent (its generation on its own shard, the event on {rev}'s) */
    admin_revoke("{\"type\":\"agent\",\"id\":\"beta-bot\"}");
    assert_int_equal(wait_refused(v, toks[1], ZTB_ERR_AGENT_REVOKED), ZTB_ERR_AGENT_REVOKED);
    assert_int_equal(wait_refused(replica, toks[1], ZTB_ERR_AGENT_REVOKED), ZTB_ERR_AGENT_REVOKED);
    assert_int_equal(check(v, toks[0], "payments:list", NULL), ZTB_OK);
    /* an audience: refused at the verifiers and at issuance, until lifted */
    admin_revoke("{\"type\":\"audience\",\"id\":\"payments\"}");
    assert_int_equal(wait_refused(v, toks[0], ZTB_ERR_AUDIENCE_KILLED), ZTB_ERR_AUDIENCE_KILLED);
    char *none = NULL;
    assert_int_not_equal(ztb_agent_token(agents[0], "payments", "payments:list", NULL, NULL, &none),
                         ZTB_OK);
    assert_null(none);
    admin_revoke("{\"type\":\"audience\",\"id\":\"payments\",\"lift\":true}");
    assert_int_equal(wait_refused(v, toks[0], ZTB_OK), ZTB_OK);
    char *after = mint(agents[2], "payments:list", NULL);
    assert_int_equal(check(v, after, "payments:list", NULL), ZTB_OK);
    ztb_token_free(after);
    ztb_token_free(before);
    for (int i = 0; i < 3; i++)
        ztb_token_free(toks[i]);
}

static void test_single_use_and_dpop_replay(void **state)
{
    (void)state;
    char *tok = mint(agents[0], "payments:refund", "orders/1");
    assert_int_equal(check(v, tok, "payments:refund", "orders/1"), ZTB_OK);
    assert_int_equal(check(v, tok, "payments:refund", "orders/1"), ZTB_ERR_REPLAY);
    assert_int_equal(check(replica, tok, "payments:refund", "orders/1"), ZTB_ERR_REPLAY);
    ztb_token_free(tok);

    tok = mint(dpop_agent, "tickets:create", "tickets/new");
    const char *htu = "https://payments.example/tickets/new";
    char *proof = NULL;
    assert_int_equal(ztb_dpop_proof(dpop_agent, "POST", htu, tok, &proof), ZTB_OK);
    ztb_expect e = {.action = "tickets:create",
                    .resource = "tickets/new",
                    .htm = "POST",
                    .htu = htu,
                    .dpop_proof = proof,
                    .flags = ZTB_EXPECT_DPOP_SCHEME};
    ztb_err rv = ztb_verify(v, tok, &e, NULL);
    if (rv != ZTB_OK)
        fail_msg("%s: %s", ztb_err_name(rv), ztb_verifier_errdetail(v));
    assert_int_equal(ztb_verify(replica, tok, &e, NULL), ZTB_ERR_DPOP_REPLAY);
    ztb_token_free(proof);
    ztb_token_free(tok);
}

/* The jti of tok into out (cap bytes): the payload decoded by hand
 * (base64url), the value of "jti" cut out. */
static void jti_of(const char *tok, char *out, size_t cap)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = strchr(tok, '.');
    assert_non_null(p);
    char json[4096];
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (p++; *p != '.' && *p != '\0' && n + 1 < sizeof(json); p++) {
        const char *at = strchr(abc, *p);
        assert_non_null(at);
        acc = acc << 6 | (unsigned)(at - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            json[n++] = (char)(acc >> bits & 0xff);
        }
    }
    json[n] = '\0';
    const char *j = strstr(json, "\"jti\":\"");
    assert_non_null(j);
    j += 7;
    snprintf(out, cap, "%.*s", (int)strcspn(j, "\""), j);
}

/* An integer reply of cmd at node n (admin). */
static long long node_int(const struct zh_redis *n, const char *cmd, const char *arg)
{
    redisContext *c = node_as(n);
    redisReply *r = redisCommand(c, cmd, arg);
    assert_true(r != NULL && r->type == REDIS_REPLY_INTEGER);
    long long val = r->integer;
    freeReplyObject(r);
    redisFree(c);
    return val;
}

/* A status reply of CLUSTER SETSLOT at node n. */
static void setslot(const struct zh_redis *n, long long slot, const char *state, const char *id)
{
    redisContext *c = node_as(n);
    redisReply *r = id ? redisCommand(c, "CLUSTER SETSLOT %lld %s %s", slot, state, id)
                       : redisCommand(c, "CLUSTER SETSLOT %lld %s", slot, state);
    if (r == NULL || r->type != REDIS_REPLY_STATUS)
        fail_msg("CLUSTER SETSLOT %lld %s: %s", slot, state, r ? r->str : c->errstr);
    freeReplyObject(r);
    redisFree(c);
}

/* A node's id (admin). */
static void node_id(const struct zh_redis *n, char id[64])
{
    redisContext *c = node_as(n);
    redisReply *r = redisCommand(c, "CLUSTER MYID");
    assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
    snprintf(id, 64, "%s", r->str);
    freeReplyObject(r);
    redisFree(c);
}

/*
 * While the slot of a single-use token's marker migrates to another
 * master, its owner answers ASK: the verifier (through its ACL user, which
 * needs +asking) follows it, consumes the token on the importing node, and
 * refuses the second use there.
 */
static void test_single_use_during_slot_migration(void **state)
{
    (void)state;
    char *tok = mint(agents[0], "payments:refund", "orders/2");
    char jti[64], key[96], from_id[64], to_id[64];
    jti_of(tok, jti, sizeof(jti));
    snprintf(key, sizeof(key), "ztb:used:%s", jti);
    long long slot = node_int(&nodes[0], "CLUSTER KEYSLOT %s", key);
    int from = slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2, to = (from + 1) % 3;
    node_id(&nodes[from], from_id);
    node_id(&nodes[to], to_id);
    setslot(&nodes[to], slot, "IMPORTING", from_id);
    setslot(&nodes[from], slot, "MIGRATING", to_id);
    ztb_err rv = check(v, tok, "payments:refund", "orders/2");
    ztb_err again = check(replica, tok, "payments:refund", "orders/2");
    setslot(&nodes[to], slot, "STABLE", NULL);
    setslot(&nodes[from], slot, "STABLE", NULL);
    if (rv != ZTB_OK)
        fail_msg("single use during a migration: %s: %s", ztb_err_name(rv),
                 ztb_verifier_errdetail(v));
    assert_int_equal(again, ZTB_ERR_REPLAY);
    ztb_token_free(tok);
}

/* The feeds follow the sharded channel of the {rev} slot (SSUBSCRIBE on
 * its master), and nobody listens on the classic channel. */
static void test_sharded_announcements(void **state)
{
    (void)state;
    int rev = holder("ztb:{rev}:seq");
    assert_true(rev >= 0);
    redisContext *c = node_as(&nodes[rev]);
    redisReply *r = redisCommand(c, "PUBSUB SHARDNUMSUB ztb:{rev}:revocations");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_true(r->element[1]->integer >= 2); /* v and replica */
    freeReplyObject(r);
    redisFree(c);
    int streams = 0;
    for (int i = 0; i < 3; i++) {
        c = node_as(&nodes[i]);
        r = redisCommand(c, "PUBSUB NUMSUB ztb:revocations");
        assert_int_equal(r->element[1]->integer, 0);
        freeReplyObject(r);
        /* the audit copy: this replica's own stream, ztb:audit:{REPLICA} */
        r = redisCommand(c, "SCAN 0 MATCH ztb:audit* COUNT 1000");
        for (size_t k = 0; k < r->element[1]->elements; k++) {
            assert_non_null(strstr(r->element[1]->element[k]->str, "ztb:audit:{"));
            streams++;
        }
        freeReplyObject(r);
        redisFree(c);
    }
    assert_int_equal(streams, 1);
}

/* Last: a tainted key kills every token it signed. */
static void test_key_taint_and_truth(void **state)
{
    (void)state;
    char *tok = mint(agents[2], "payments:list", NULL);
    char kid[128] = "";
    assert_int_equal(check(v, tok, "payments:list", NULL), ZTB_OK);
    /* the one signing key, from the JWKS */
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/.well-known/jwks.json", &r), 0);
    const char *k = strstr(r.body, "\"kid\":\"");
    assert_non_null(k);
    k += 7;
    snprintf(kid, sizeof(kid), "%.*s", (int)strcspn(k, "\""), k);
    zh_resp_free(&r);
    char body[256];
    snprintf(body, sizeof(body), "{\"type\":\"key\",\"id\":\"%s\"}", kid);
    admin_revoke(body);
    assert_int_equal(wait_refused(v, tok, ZTB_ERR_KEY_TAINTED), ZTB_ERR_KEY_TAINTED);
    ztb_token_free(tok);

    assert_int_equal(zh_get(&b, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    assert_int_equal(zh_get(&b, "/metrics", &r), 0);
    const char *e = strstr(r.body, "ztb_redis_errors_total{kind=\"crossslot\"} ");
    if (e != NULL)
        assert_int_equal(
            strtol(e + strlen("ztb_redis_errors_total{kind=\"crossslot\"} "), NULL, 10), 0);
    zh_resp_free(&r);
}

/* The broker's log so far (the caller frees it). */
static char *log_text(void)
{
    FILE *f = fopen(b.log, "r");
    assert_non_null(f);
    char *s = calloc(1, 1 << 20);
    assert_non_null(s);
    s[fread(s, 1, (1 << 20) - 1, f)] = '\0';
    fclose(f);
    return s;
}

/* /readyz within limit_ms: 1 if its status is want (and, for 503, the body
 * names needle). */
static int readyz_becomes(long want, const char *needle, long limit_ms)
{
    for (long t = 0; t < limit_ms; t += 50) {
        struct zh_resp r;
        int ok = zh_get(&b, "/readyz", &r) == 0 && r.status == want &&
                 (needle == NULL || (r.body != NULL && strstr(r.body, needle) != NULL));
        zh_resp_free(&r);
        if (ok)
            return 1;
        usleep(50000);
    }
    return 0;
}

/* An evicting master loses the revocations on its shard: whichever master
 * it is, the broker is not ready and says which, until it is fixed. */
static void test_every_master_preflighted(void **state)
{
    (void)state;
    /* at start, each master's persistence was reported, by port */
    char *start = log_text();
    for (int i = 0; i < 3; i++) {
        char want[48];
        snprintf(want, sizeof(want), "\"master_port\":\"%d\"", nodes[i].port);
        int found = 0;
        for (char *line = strtok(start, "\n"); line != NULL && !found; line = strtok(NULL, "\n"))
            found = strstr(line, "\"redis.preflight\"") != NULL && strstr(line, want) != NULL;
        if (!found)
            fail_msg("no redis.preflight line for the master on port %d", nodes[i].port);
        free(start);
        start = log_text();
    }
    free(start);
    for (int i = 0; i < 3; i++) {
        redisContext *c = node_as(&nodes[i]);
        redisReply *r = redisCommand(c, "CONFIG SET maxmemory-policy allkeys-lru");
        assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
        freeReplyObject(r);
        if (!readyz_becomes(503, "\"redis_preflight\":\"eviction\"", 5000))
            fail_msg("master %d (port %d) evicting, and /readyz did not say so", i, nodes[i].port);
        /* the log names the master */
        char port[48];
        snprintf(port, sizeof(port), "the master on port %d", nodes[i].port);
        char *log = log_text();
        if (strstr(log, port) == NULL)
            fail_msg("the broker log does not name %s", port);
        free(log);
        r = redisCommand(c, "CONFIG SET maxmemory-policy noeviction");
        assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
        freeReplyObject(r);
        redisFree(c);
        if (!readyz_becomes(200, NULL, 5000))
            fail_msg("master %d fixed, and /readyz did not become ready", i);
    }
}

/* On a Cluster node the verifier's user may read the slot map and follow
 * ASK, and nothing it must not: no announcement, no revocation, no agent,
 * no script, no cluster administration. */
static void test_verifier_user_is_least_privilege(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        redisContext *c = node_user(&nodes[i], "ztb-verifier", "verifier-pw");
        redisReply *r = redisCommand(c, "CLUSTER SLOTS");
        assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY);
        freeReplyObject(r);
        r = redisCommand(c, "ASKING");
        assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
        freeReplyObject(r);
        static const char *const refused[] = {
            "SPUBLISH ztb:{rev}:revocations x",
            "PUBLISH ztb:revocations x",
            "ZADD ztb:{rev}:events 1 x",
            "SET ztb:{rev}:jti:x 1",
            "INCR ztb:{rev}:seq",
            "HGETALL ztb:{crm-bot}:agent",
            "GET ztb:used:x",
            "EVAL \"return 1\" 0",
            "CLUSTER NODES",
            "CLUSTER FAILOVER",
            "CLUSTER RESET",
            "FLUSHALL",
        };
        for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++) {
            r = redisCommand(c, refused[k]);
            if (r == NULL || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOPERM", 6) != 0)
                fail_msg("the verifier's user may, on port %d: %s (%s)", nodes[i].port, refused[k],
                         r && r->type == REDIS_REPLY_ERROR ? r->str : "allowed");
            freeReplyObject(r);
        }
        redisFree(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agents_on_three_shards),
        cmocka_unit_test(test_bootstrap_and_announcements),
        cmocka_unit_test(test_single_use_and_dpop_replay),
        cmocka_unit_test(test_single_use_during_slot_migration),
        cmocka_unit_test(test_sharded_announcements),
        cmocka_unit_test(test_key_taint_and_truth),
        cmocka_unit_test(test_every_master_preflighted),
        cmocka_unit_test(test_verifier_user_is_least_privilege),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
