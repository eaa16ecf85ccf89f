/*
 * test_store_approvals.c - approvals in Redis (filed, shared, decided once
 * per person, used once, expired) and approver groups, against a real
 * redis-server.
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
#include <jansson.h>

#include "broker/store/store_approvals.h"
#include "store_fixture.h"

/* Redis expires the keys on its own clock: times near the real one */
static int64_t NOW;

static void fill(struct store_approval *a, const char *agent, const char *resource,
                 const char *group, uint32_t needed)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->agent, sizeof(a->agent), "%s", agent);
    a->generation = 3;
    snprintf(a->action, sizeof(a->action), "payments:refund");
    snprintf(a->audience, sizeof(a->audience), "payments");
    snprintf(a->resource, sizeof(a->resource), "%s", resource);
    snprintf(a->details, sizeof(a->details), "[{\"type\":\"payment\",\"amount\":200}]");
    snprintf(a->jkt, sizeof(a->jkt), "jkt-of-the-key");
    snprintf(a->rule, sizeof(a->rule), "refund-large");
    snprintf(a->group, sizeof(a->group), "%s", group);
    a->needed = needed;
    a->expires = NOW + 100;
}

static void test_names(void **state)
{
    (void)state;
    assert_true(store_approver_name_ok("alice"));
    assert_true(store_approver_name_ok("finance-approvers.eu_1"));
    assert_false(store_approver_name_ok(""));
    assert_false(store_approver_name_ok(NULL));
    assert_false(store_approver_name_ok("-rf"));
    assert_false(store_approver_name_ok("a b"));
    assert_false(store_approver_name_ok("a,b")); /* would split the approvers list */
    assert_false(store_approver_name_ok("a:b"));
    char long_name[80];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_false(store_approver_name_ok(long_name));
}

/* Filed once per exact request; any difference is another approval. */
static void test_create_and_share(void **state)
{
    (void)state;
    struct store_approval a, b, c;
    int created = 0;
    fill(&a, "bot", "orders/1", "finance", 1);
    assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_OK);
    assert_true(created);
    assert_int_equal(strncmp(a.id, "apr_", 4), 0);
    assert_int_equal(strlen(a.id), 26);
    assert_string_equal(a.status, "pending");
    fill(&b, "bot", "orders/1", "finance", 1);
    assert_int_equal(store_approval_create(&b, NOW + 1, &created), ZTB_OK);
    assert_false(created);
    assert_string_equal(b.id, a.id);
    assert_string_equal(b.details, a.details);
    /* another key, another amount, another agent: each its own */
    fill(&c, "bot", "orders/1", "finance", 1);
    snprintf(c.jkt, sizeof(c.jkt), "another-key");
    assert_int_equal(store_approval_create(&c, NOW, &created), ZTB_OK);
    assert_true(created);
    assert_string_not_equal(c.id, a.id);
    fill(&c, "bot", "orders/1", "finance", 1);
    snprintf(c.details, sizeof(c.details), "[{\"type\":\"payment\",\"amount\":201}]");
    assert_int_equal(store_approval_create(&c, NOW, &created), ZTB_OK);
    assert_true(created);
    fill(&c, "bot2", "orders/1", "finance", 1);
    assert_int_equal(store_approval_create(&c, NOW, &created), ZTB_OK);
    assert_true(created);
    /* the same request asked under something else (the agent re-enrolled,
     * the policy changed its rule, group or count): its own approval, not
     * the earlier one it could never use */
    for (int i = 0; i < 4; i++) {
        fill(&c, "bot", "orders/1", "finance", 1);
        if (i == 0)
            c.generation++;
        else if (i == 1)
            snprintf(c.rule, sizeof(c.rule), "another-rule");
        else if (i == 2)
            snprintf(c.group, sizeof(c.group), "treasury");
        else
            c.needed = 2;
        assert_int_equal(store_approval_create(&c, NOW, &created), ZTB_OK);
        if (!created || strcmp(c.id, a.id) == 0)
            fail_msg("case %d shared the earlier approval %s", i, a.id);
    }
    /* bad input */
    fill(&c, "Bad Agent", "orders/1", "finance", 1);
    assert_int_equal(store_approval_create(&c, NOW, &created), ZTB_ERR_INVALID_ARG);
    fill(&c, "bot", "orders/1", "fin ance", 1);
    assert_int_equal(store_approval_create(&c, NOW, &created), ZTB_ERR_INVALID_ARG);
    fill(&c, "bot", "orders/1", "finance", 0);
    assert_int_equal(store_approval_create(&c, NOW, &created), ZTB_ERR_INVALID_ARG);
    fill(&c, "bot", "orders/1", "finance", 1);
    c.expires = NOW;
    assert_int_equal(store_approval_create(&c, NOW, &created), ZTB_ERR_INVALID_ARG);
}

/* Group members only, each once; enough of them approve it; used once, by its agent. */
static void test_decide_and_use(void **state)
{
    (void)state;
    struct store_approval a, d;
    int created = 0, expired = 0, changed = 0;
    fill(&a, "payer", "orders/7", "sre", 2);
    assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_OK);
    assert_int_equal(store_approval_decide(a.id, 1, "alice", NULL, NOW, &d, &expired),
                     ZTB_ERR_PERMISSION);
    assert_int_equal(store_approvers_add("sre", "alice", &changed), ZTB_OK);
    assert_true(changed);
    assert_int_equal(store_approvers_add("sre", "alice", &changed), ZTB_OK);
    assert_false(changed);
    assert_int_equal(store_approvers_add("sre", "bob", &changed), ZTB_OK);
    assert_int_equal(store_approval_decide(a.id, 1, "alice", NULL, NOW, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "pending");
    assert_string_equal(d.approvers, "alice");
    assert_int_equal(store_approval_decide(a.id, 1, "alice", NULL, NOW, &d, &expired),
                     ZTB_ERR_EXISTS);
    /* not yet approved: nothing to use */
    assert_int_equal(store_approval_use(a.id, "payer", "jti-1", NOW), ZTB_ERR_STATE);
    assert_int_equal(store_approval_decide(a.id, 1, "bob", NULL, NOW, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "approved");
    assert_string_equal(d.approvers, "alice,bob");
    assert_int_equal(store_approval_decide(a.id, 0, "bob", "late", NOW, &d, &expired),
                     ZTB_ERR_STATE);
    /* another agent cannot use it; its agent once */
    assert_int_equal(store_approval_use(a.id, "thief", "jti-1", NOW), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_approval_use(a.id, "payer", "jti-1", NOW), ZTB_OK);
    assert_int_equal(store_approval_use(a.id, "payer", "jti-2", NOW), ZTB_ERR_STATE);
    assert_int_equal(store_approval_get(a.id, NOW, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "issued");
    assert_string_equal(d.jti, "jti-1");
    /* used: the same request files a new approval */
    struct store_approval n;
    fill(&n, "payer", "orders/7", "sre", 2);
    assert_int_equal(store_approval_create(&n, NOW + 1, &created), ZTB_OK);
    assert_true(created);
    assert_string_not_equal(n.id, a.id);
    /* denial, with its reason */
    assert_int_equal(store_approval_decide(n.id, 0, "bob", "no", NOW, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "denied");
    assert_string_equal(d.reason, "no");
    assert_string_equal(d.decided_by, "bob");
    assert_int_equal(store_approval_use(n.id, "payer", "jti-3", NOW), ZTB_ERR_STATE);
    assert_int_equal(store_approval_withdraw(n.id, "x"), ZTB_ERR_STATE); /* decided */
    fill(&n, "payer", "orders/8", "sre", 2);
    assert_int_equal(store_approval_create(&n, NOW, &created), ZTB_OK);
    assert_int_equal(store_approval_withdraw(n.id, "audit log down"), ZTB_OK);
    assert_int_equal(store_approval_get(n.id, NOW, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "denied");
    assert_string_equal(d.decided_by, "broker");
    assert_int_equal(store_approval_decide(n.id, 1, "bob", NULL, NOW, &d, &expired), ZTB_ERR_STATE);
    /* unknown ids and bad names */
    assert_int_equal(
        store_approval_decide("apr_AAAAAAAAAAAAAAAAAAAAAA", 1, "bob", NULL, NOW, &d, &expired),
        ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_approval_decide("../x", 1, "bob", NULL, NOW, &d, &expired),
                     ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_approval_decide(n.id, 1, "bob,alice", NULL, NOW, &d, &expired),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(store_approval_get("apr_nope", NOW, &d, &expired), ZTB_ERR_NOT_FOUND);
    /* groups */
    json_t *j = NULL;
    assert_int_equal(store_approvers_list("sre", &j), ZTB_OK);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(json_string_value(json_array_get(j, 0)), "alice");
    json_decref(j);
    assert_int_equal(store_approvers_remove("sre", "alice", &changed), ZTB_OK);
    assert_true(changed);
    assert_int_equal(store_approvers_list(NULL, &j), ZTB_OK);
    assert_int_equal(json_array_size(json_object_get(j, "sre")), 1);
    json_decref(j);
    assert_int_equal(store_approvers_remove("sre", "bob", &changed), ZTB_OK);
    assert_int_equal(store_approvers_list(NULL, &j), ZTB_OK);
    assert_null(json_object_get(j, "sre")); /* an empty group is gone */
    json_decref(j);
    assert_int_equal(store_approvers_add("bad group", "x", &changed), ZTB_ERR_INVALID_ARG);
}

/*
 * A vote counts only while its approver is in the group: one removed
 * (left the team, account compromised) while the approval waits, or after
 * it was approved but before the token was collected, no longer counts
 * towards the number needed; the approval waits for another member.
 */
static void test_removed_approver_no_longer_counts(void **state)
{
    (void)state;
    struct store_approval a, d;
    int created = 0, expired = 0, changed = 0;
    assert_int_equal(store_approvers_add("treasury", "erin", &changed), ZTB_OK);
    assert_int_equal(store_approvers_add("treasury", "frank", &changed), ZTB_OK);
    assert_int_equal(store_approvers_add("treasury", "grace", &changed), ZTB_OK);
    /* erin votes, is removed, frank votes: one current member, not two */
    fill(&a, "payer", "orders/removed-1", "treasury", 2);
    assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_OK);
    assert_int_equal(store_approval_decide(a.id, 1, "erin", NULL, NOW, &d, &expired), ZTB_OK);
    assert_int_equal(store_approvers_remove("treasury", "erin", &changed), ZTB_OK);
    assert_int_equal(store_approval_decide(a.id, 1, "frank", NULL, NOW, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "pending");
    assert_string_equal(d.approvers, "frank");
    assert_int_equal(store_approval_use(a.id, "payer", "jti-r1", NOW), ZTB_ERR_STATE);
    assert_int_equal(store_approval_decide(a.id, 1, "grace", NULL, NOW, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "approved");
    assert_int_equal(store_approval_use(a.id, "payer", "jti-r1", NOW), ZTB_OK);
    /* approved by frank and grace, grace removed before the agent collects:
     * not usable, pending again for another member */
    fill(&a, "payer", "orders/removed-2", "treasury", 2);
    assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_OK);
    assert_int_equal(store_approval_decide(a.id, 1, "frank", NULL, NOW, &d, &expired), ZTB_OK);
    assert_int_equal(store_approval_decide(a.id, 1, "grace", NULL, NOW, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "approved");
    assert_int_equal(store_approvers_remove("treasury", "grace", &changed), ZTB_OK);
    assert_int_equal(store_approval_use(a.id, "payer", "jti-r2", NOW), ZTB_ERR_STATE);
    assert_int_equal(store_approval_get(a.id, NOW, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "pending");
    assert_string_equal(d.approvers, "frank");
    assert_string_equal(d.jti, "");
    assert_int_equal(store_approvers_add("treasury", "erin", &changed), ZTB_OK);
    assert_int_equal(store_approval_decide(a.id, 1, "erin", NULL, NOW, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "approved");
    assert_int_equal(store_approval_use(a.id, "payer", "jti-r2", NOW), ZTB_OK);
}

/* Past its expiry: expired once (reported once), and nothing more happens to it. */
static void test_expiry(void **state)
{
    (void)state;
    struct store_approval a, d;
    int created = 0, expired = 0, changed = 0;
    assert_int_equal(store_approvers_add("ops", "carol", &changed), ZTB_OK);
    fill(&a, "late", "orders/9", "ops", 1);
    assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_OK);
    assert_int_equal(store_approval_get(a.id, NOW + 99, &d, &expired), ZTB_OK);
    assert_false(expired);
    assert_int_equal(store_approval_get(a.id, NOW + 100, &d, &expired), ZTB_OK);
    assert_true(expired);
    assert_string_equal(d.status, "expired");
    assert_int_equal(store_approval_get(a.id, NOW + 101, &d, &expired), ZTB_OK);
    assert_false(expired); /* reported once */
    assert_int_equal(store_approval_decide(a.id, 1, "carol", NULL, NOW + 101, &d, &expired),
                     ZTB_ERR_STATE);
    /* approved but not collected in time: expired by the decision or the use */
    fill(&a, "late", "orders/10", "ops", 1);
    assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_OK);
    assert_int_equal(store_approval_decide(a.id, 1, "carol", NULL, NOW, &d, &expired), ZTB_OK);
    assert_int_equal(store_approval_use(a.id, "late", "j", NOW + 100), ZTB_ERR_STATE);
    assert_int_equal(store_approval_get(a.id, NOW + 100, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "expired");
    /* an expired one frees its place: the same request files anew */
    struct store_approval n;
    fill(&n, "late", "orders/10", "ops", 1);
    n.expires = NOW + 300;
    assert_int_equal(store_approval_create(&n, NOW + 200, &created), ZTB_OK);
    assert_true(created);
    json_t *list = NULL;
    assert_int_equal(store_approval_list(100, NOW + 200, &list), ZTB_OK);
    assert_true(json_array_size(list) >= 3);
    json_t *first = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(first, "id")), n.id);
    assert_string_equal(json_string_value(json_object_get(first, "binding")), "dpop");
    json_decref(list);
}

/* At most STORE_APPROVALS_PER_AGENT open at once; decided ones leave room. */
static void test_limit(void **state)
{
    (void)state;
    struct store_approval a, d;
    int created = 0, expired = 0, changed = 0;
    char first[40] = "";
    assert_int_equal(store_approvers_add("lim", "dave", &changed), ZTB_OK);
    for (int i = 0; i < STORE_APPROVALS_PER_AGENT; i++) {
        char res[32];
        snprintf(res, sizeof(res), "orders/%d", i);
        fill(&a, "greedy", res, "lim", 1);
        assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_OK);
        assert_true(created);
        if (i == 0)
            snprintf(first, sizeof(first), "%s", a.id);
    }
    fill(&a, "greedy", "orders/one-more", "lim", 1);
    assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_ERR_TOO_LARGE);
    /* the same request as an open one is still shared */
    fill(&a, "greedy", "orders/0", "lim", 1);
    assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_OK);
    assert_string_equal(a.id, first);
    /* one denied: room for one more */
    assert_int_equal(store_approval_decide(first, 0, "dave", "no", NOW, &d, &expired), ZTB_OK);
    fill(&a, "greedy", "orders/one-more", "lim", 1);
    assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_OK);
    assert_true(created);
}

/* Redis gone: UNAVAILABLE, nothing guessed. */
static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 0);
    struct store_approval a, d;
    int created = 0, expired = 0;
    fill(&a, "bot", "orders/1", "finance", 1);
    assert_int_equal(store_approval_create(&a, NOW, &created), ZTB_ERR_UNAVAILABLE);
    assert_false(created);
    assert_int_equal(store_approval_get("apr_AAAAAAAAAAAAAAAAAAAAAA", NOW, &d, &expired),
                     ZTB_ERR_UNAVAILABLE);
    zh_redis_restart(&rd);
}

int main(void)
{
    NOW = (int64_t)time(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_create_and_share),
        cmocka_unit_test(test_decide_and_use),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_removed_approver_no_longer_counts),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, store_setup, store_teardown);
}
