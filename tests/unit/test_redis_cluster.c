/*
 * test_redis_cluster.c - common/redis_cluster.c: the key slot function
 * against the values of the Redis Cluster specification, the slot of an
 * encoded command, and, against a real 3-master cluster the test makes,
 * routing by slot, a MOVED followed (and counted) when the map is stale,
 * and an ASK followed with ASKING while a slot migrates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/redis_cluster.h"
#include "harness.h"

static unsigned slot_of(const char *k)
{
    return redis_key_slot(k, strlen(k));
}

/* The values of the specification (cluster-spec, "Keys distribution
 * model"; CLUSTER KEYSLOT agrees) and its hash tag rules. */
static void test_key_slot(void **state)
{
    (void)state;
    assert_int_equal(slot_of("123456789"), 0x31C3 & 16383); /* CRC16 check value 0x31C3 */
    assert_int_equal(slot_of("foo"), 12182);
    assert_int_equal(slot_of("bar"), 5061);
    assert_int_equal(slot_of("somekey"), 11058);
    assert_int_equal(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
    assert_int_equal(slot_of("{user1000}.following"), slot_of("user1000"));
    assert_int_equal(slot_of("foo{}{bar}"), slot_of("foo{}{bar}")); /* empty tag: whole key */
    assert_int_not_equal(slot_of("foo{}{bar}"), slot_of("bar"));
    assert_int_equal(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    assert_int_equal(slot_of("foo{bar}{zap}"), slot_of("bar"));
    assert_int_equal(slot_of("ztb:{rev}:events"), slot_of("ztb:{rev}:seq"));
    assert_int_equal(slot_of("ztb:{rev}:revocations"), slot_of("rev"));
    assert_int_equal(slot_of(""), 0);
}

static int slot_of_cmd(int argc, const char **argv)
{
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    assert_true(n > 0);
    int s = redis_command_slot(cmd, (size_t)n);
    free(cmd);
    return s;
}

static void test_command_slot(void **state)
{
    (void)state;
    const char *get[] = {"GET", "foo"};
    assert_int_equal(slot_of_cmd(2, get), 12182);
    const char *ev[] = {"EVALSHA", "0123", "2", "ztb:{a}:x", "ztb:{a}:y", "arg"};
    assert_int_equal(slot_of_cmd(6, ev), (int)slot_of("a"));
    const char *ev0[] = {"EVAL", "return 1", "0"};
    assert_int_equal(slot_of_cmd(3, ev0), -1);
    const char *ping[] = {"PING"};
    assert_int_equal(slot_of_cmd(1, ping), -1);
    const char *wait[] = {"WAIT", "1", "100"};
    assert_int_equal(slot_of_cmd(3, wait), -1);
    const char *sp[] = {"SPUBLISH", "ztb:{rev}:revocations", "x"};
    assert_int_equal(slot_of_cmd(3, sp), (int)slot_of("rev"));
    /* not one whole command: refused, nothing read past the end */
    static const char *const cut[] = {"*2\r\n$3\r\nGET\r\n$3\r\nfo", "*1\r\n$99\r\nGET\r\n",
                                      "PING\r\n", "*1\r\n$4\r\nPING\r\n*1\r\n"};
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        /* a copy of exactly its length, so ASan sees a read past the end */
        size_t n = strlen(cut[i]);
        char *c = malloc(n);
        assert_non_null(c);
        memcpy(c, cut[i], n);
        assert_int_equal(redis_command_slot(c, n), -2);
        free(c);
    }
}

static struct zh_redis nodes[3];
static char url[256];
static struct redis_target target;
static int noted[REDIS_EK_N];

static void note(enum redis_error_kind k, void *arg)
{
    (void)arg;
    noted[k]++;
}

/* The node id of nodes[i]. */
static void node_id(int i, char *out, size_t cap)
{
    redisContext *c = zh_redis_connect(&nodes[i]);
    redisReply *r = redisCommand(c, "CLUSTER MYID");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    snprintf(out, cap, "%s", r->str);
    freeReplyObject(r);
    redisFree(c);
}

/* The index into nodes of the node serving slot (by CLUSTER KEYSLOT and
 * asking each whether it owns it). */
static int owner(struct redis_cluster *cl, unsigned slot)
{
    int idx = (int)cl->slot_node[slot] - 1;
    assert_true(idx >= 0);
    for (int i = 0; i < 3; i++)
        if (cl->nodes[idx].port == nodes[i].port)
            return i;
    fail_msg("slot %u: unknown node", slot);
    return -1;
}

static void test_routing_moved_ask(void **state)
{
    (void)state;
    zh_cluster_start(nodes, 3, url, sizeof(url));
    char err[256];
    assert_int_equal(redis_target_parse(url, ZH_REDIS_TIMEOUT_MS, &target, err, sizeof(err)),
                     ZTB_OK);
    struct redis_cluster *cl = redis_cluster_new(&target, note, NULL);
    assert_non_null(cl);
    /* keys on every shard, each to its master */
    const char *keys[] = {"crm-bot", "beta-bot", "alpha-bot"};
    for (int i = 0; i < 3; i++) {
        redisReply *r = redis_cluster_commandf(cl, "SET %s v%d", keys[i], i);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
    }
    assert_int_equal(noted[REDIS_EK_MOVED], 0);
    /* masters without replicas: a revocation written there waits for none */
    assert_int_equal(redis_cluster_last_replicas(cl), 0);
    int masters[8];
    assert_int_equal(redis_cluster_masters(cl, masters, 8), 3);

    /* a stale map: the slot of foo pointed at another node -> MOVED, followed */
    unsigned s = slot_of("foo");
    int right = (int)cl->slot_node[s];
    cl->slot_node[s] = (uint8_t)(right % 3 + 1);
    redisReply *r = redis_cluster_commandf(cl, "SET foo bar");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    assert_int_equal(noted[REDIS_EK_MOVED], 1);
    assert_int_equal(cl->slot_node[s], right); /* the map was read again */

    /* a migrating slot: a key not yet on the importing node is asked for
     * there, with ASKING */
    unsigned ms = slot_of("{mig}");
    int src = owner(cl, ms), dst = (src + 1) % 3;
    char src_id[64], dst_id[64];
    node_id(src, src_id, sizeof(src_id));
    node_id(dst, dst_id, sizeof(dst_id));
    redisContext *cs = zh_redis_connect(&nodes[src]), *cd = zh_redis_connect(&nodes[dst]);
    r = redisCommand(cd, "CLUSTER SETSLOT %u IMPORTING %s", ms, src_id);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = redisCommand(cs, "CLUSTER SETSLOT %u MIGRATING %s", ms, dst_id);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = redis_cluster_commandf(cl, "SET {mig}:new 1");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    assert_int_equal(noted[REDIS_EK_ASK], 1);
    r = redisCommand(cd, "ASKING");
    freeReplyObject(r);
    r = redisCommand(cd, "EXISTS {mig}:new");
    assert_int_equal(r->integer, 1); /* it went to the importing node */
    freeReplyObject(r);
    redisFree(cs);
    redisFree(cd);

    /* a node gone: no reply, the kind says so; nothing sent twice */
    zh_redis_kill(&nodes[owner(cl, slot_of("alpha-bot"))]);
    r = redis_cluster_commandf(cl, "GET alpha-bot");
    assert_null(r);
    assert_true(cl->fail_kind == REDIS_EK_CONNECTION || cl->fail_kind == REDIS_EK_TIMEOUT);
    redis_cluster_free(cl);
    for (int i = 0; i < 3; i++)
        zh_redis_stop(&nodes[i], 1);
    redis_target_wipe(&target);
}

/* The URL form: seeds, IPv6, credentials, only database 0, TLS options. */
static void test_cluster_url(void **state)
{
    (void)state;
    struct redis_target t;
    char err[256], d[256];
    assert_int_equal(redis_target_parse("redis+cluster://u:p@10.0.0.1,[2001:db8::7]:7001,h:7002", 0,
                                        &t, err, sizeof(err)),
                     ZTB_OK);
    assert_int_equal(t.nseeds, 3);
    assert_string_equal(t.seeds[0].host, "10.0.0.1");
    assert_int_equal(t.seeds[0].port, 6379);
    assert_string_equal(t.seeds[1].host, "2001:db8::7");
    assert_int_equal(t.seeds[1].port, 7001);
    assert_string_equal(t.user, "u");
    redis_target_describe(&t, d, sizeof(d));
    assert_string_equal(d, "cluster:u@10.0.0.1:6379,[2001:db8::7]:7001,h:7002");
    assert_null(strstr(d, "p@"));
    redis_target_wipe(&t);
    assert_int_equal(redis_target_parse("redis+cluster://h:7000/0", 0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_int_equal(redis_target_parse("redis+cluster://h:7000/1", 0, &t, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "database 0"));
    assert_int_equal(redis_target_parse("redis+cluster://", 0, &t, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(redis_target_parse("redis+cluster://a,", 0, &t, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(redis_target_parse("redis+cluster://a?ca=/x", 0, &t, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(
        redis_target_parse("rediss+cluster://a:7000?ca=/etc/ca.pem", 0, &t, err, sizeof(err)),
        ZTB_OK);
    assert_true(t.tls.on);
    assert_string_equal(t.tls.ca, "/etc/ca.pem");
    redis_target_wipe(&t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_slot),
        cmocka_unit_test(test_command_slot),
        cmocka_unit_test(test_cluster_url),
        cmocka_unit_test(test_routing_moved_ask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
