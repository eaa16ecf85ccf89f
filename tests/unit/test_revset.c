/* test_revset.c - revocation events applied to a revset: checking, expiry, the cap
 * (parsing them is tests/unit/test_revevent.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sdk/src/revset.h"

static ztb_err parse(const char *s, struct rev_event *ev)
{
    return rev_event_parse(s, strlen(s), ev);
}

static ztb_err apply(struct revset *rs, const char *s, int64_t now)
{
    struct rev_event ev;
    assert_int_equal(parse(s, &ev), ZTB_OK);
    return revset_apply(rs, &ev, now);
}

static ztb_err check(const struct revset *rs, const char *kid, const char *aud, const char *agent,
                     int64_t gen, const char *jti, int64_t now)
{
    uint8_t id[IDSET_ID_LEN];
    assert_int_equal(idset_key(jti, strlen(jti), id), ZTB_OK);
    return revset_check(rs, kid, aud, agent, gen, id, now);
}

static void test_apply_and_check(void **state)
{
    (void)state;
    struct revset rs;
    revset_init(&rs, 30, 0);
    int64_t now = 1000;
    assert_int_equal(check(&rs, "k1", "payments", "bot", 3, "j1", now), ZTB_OK);
    assert_int_equal(apply(&rs, "{\"type\":\"jti\",\"id\":\"j1\",\"exp\":1100}", now), ZTB_OK);
    assert_int_equal(check(&rs, "k1", "payments", "bot", 3, "j1", now), ZTB_ERR_REVOKED);
    assert_int_equal(check(&rs, "k1", "payments", "bot", 3, "j2", now), ZTB_OK);
    /* kept until exp + skew, then it no longer matters */
    assert_int_equal(check(&rs, "k1", "payments", "bot", 3, "j1", 1130), ZTB_ERR_REVOKED);
    assert_int_equal(check(&rs, "k1", "payments", "bot", 3, "j1", 1131), ZTB_OK);

    assert_int_equal(apply(&rs, "{\"type\":\"agent\",\"id\":\"bot\",\"gen\":4,\"exp\":2000}", now),
                     ZTB_OK);
    assert_int_equal(check(&rs, "k1", "payments", "bot", 3, "j2", now), ZTB_ERR_AGENT_REVOKED);
    assert_int_equal(check(&rs, "k1", "payments", "bot", 4, "j2", now), ZTB_OK);
    assert_int_equal(check(&rs, "k1", "payments", "other", 1, "j2", now), ZTB_OK);
    /* a lower generation announced later does not undo a higher one */
    assert_int_equal(apply(&rs, "{\"type\":\"agent\",\"id\":\"bot\",\"gen\":2,\"exp\":2000}", now),
                     ZTB_OK);
    assert_int_equal(check(&rs, "k1", "payments", "bot", 3, "j2", now), ZTB_ERR_AGENT_REVOKED);

    assert_int_equal(apply(&rs, "{\"type\":\"audience\",\"id\":\"payments\",\"exp\":0}", now),
                     ZTB_OK);
    assert_int_equal(check(&rs, "k1", "payments", "bot", 4, "j2", now), ZTB_ERR_AUDIENCE_KILLED);
    assert_int_equal(check(&rs, "k1", "payments", "bot", 4, "j2", INT64_MAX / 2),
                     ZTB_ERR_AUDIENCE_KILLED); /* exp 0: until lifted */
    assert_int_equal(check(&rs, "k1", "crm", "bot", 4, "j2", now), ZTB_OK);
    assert_int_equal(apply(&rs, "{\"type\":\"audience\",\"id\":\"payments\",\"lifted\":true}", now),
                     ZTB_OK);
    assert_int_equal(check(&rs, "k1", "payments", "bot", 4, "j2", now), ZTB_OK);

    assert_int_equal(apply(&rs, "{\"type\":\"key\",\"id\":\"k1\",\"exp\":3000}", now), ZTB_OK);
    assert_int_equal(check(&rs, "k1", "payments", "bot", 4, "j2", now), ZTB_ERR_KEY_TAINTED);
    assert_int_equal(check(&rs, "k2", "payments", "bot", 4, "j2", now), ZTB_OK);

    /* an event that no longer matters is not stored */
    size_t before = revset_count(&rs);
    assert_int_equal(apply(&rs, "{\"type\":\"jti\",\"id\":\"old\",\"exp\":900}", now), ZTB_OK);
    assert_int_equal(revset_count(&rs), before);

    revset_sweep_names(&rs, 2100); /* the agent entry (2000 + 30) goes; the key stays */
    assert_int_equal(check(&rs, "k1", "payments", "bot", 3, "j2", 2100), ZTB_ERR_KEY_TAINTED);
    assert_int_equal(rs.agents.count, 0);
    assert_int_equal(rs.keys.count, 1);
    assert_true(revset_bytes(&rs) > 0);
    revset_free(&rs);
}

static void test_many_names_and_deletes(void **state)
{
    (void)state;
    struct revset rs;
    revset_init(&rs, 0, 0);
    char ev[128];
    for (int i = 0; i < 2000; i++) {
        snprintf(ev, sizeof(ev), "{\"type\":\"audience\",\"id\":\"aud-%d\",\"exp\":0}", i);
        assert_int_equal(apply(&rs, ev, 1), ZTB_OK);
    }
    for (int i = 0; i < 2000; i += 2) {
        snprintf(ev, sizeof(ev), "{\"type\":\"audience\",\"id\":\"aud-%d\",\"lifted\":true}", i);
        assert_int_equal(apply(&rs, ev, 1), ZTB_OK);
    }
    assert_int_equal(rs.audiences.count, 1000);
    uint8_t id[IDSET_ID_LEN] = {0};
    for (int i = 0; i < 2000; i++) {
        char aud[32];
        snprintf(aud, sizeof(aud), "aud-%d", i);
        assert_int_equal(revset_check(&rs, NULL, aud, NULL, 0, id, 1),
                         i % 2 ? ZTB_ERR_AUDIENCE_KILLED : ZTB_OK);
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(ev, sizeof(ev), "{\"type\":\"agent\",\"id\":\"a%d\",\"gen\":2,\"exp\":%d}", i,
                 100 + i % 3);
        assert_int_equal(apply(&rs, ev, 1), ZTB_OK);
    }
    revset_sweep_names(&rs, 101); /* those with exp 100 go, whatever their slot */
    assert_int_equal(rs.agents.count, 2000);
    for (int i = 0; i < 3000; i++) {
        char ag[32];
        snprintf(ag, sizeof(ag), "a%d", i);
        assert_int_equal(revset_check(&rs, NULL, NULL, ag, 1, id, 101),
                         i % 3 ? ZTB_ERR_AGENT_REVOKED : ZTB_OK);
    }
    revset_free(&rs);
}

/* A cap of 4 entries in all (jtis and names together). */
static void jti_event(char *ev, size_t cap, int i, int64_t exp)
{
    snprintf(ev, cap, "{\"type\":\"jti\",\"id\":\"jti-%d\",\"exp\":%lld}", i, (long long)exp);
}

static void jti_id(int i, uint8_t id[IDSET_ID_LEN])
{
    char jti[32];
    snprintf(jti, sizeof(jti), "jti-%d", i);
    assert_int_equal(idset_key(jti, strlen(jti), id), ZTB_OK);
}

static void test_cap_evicts_expired_first(void **state)
{
    (void)state;
    struct revset rs;
    revset_init(&rs, 0, 4);
    char ev[128];
    /* two jtis and an agent that expire at 100, one key that lives on */
    jti_event(ev, sizeof(ev), 1, 100);
    assert_int_equal(apply(&rs, ev, 10), ZTB_OK);
    jti_event(ev, sizeof(ev), 2, 100);
    assert_int_equal(apply(&rs, ev, 10), ZTB_OK);
    assert_int_equal(apply(&rs, "{\"type\":\"agent\",\"id\":\"a\",\"gen\":2,\"exp\":100}", 10),
                     ZTB_OK);
    assert_int_equal(apply(&rs, "{\"type\":\"key\",\"id\":\"k\",\"exp\":1000}", 10), ZTB_OK);
    assert_int_equal(revset_count(&rs), 4);
    /* full, but three entries no longer matter at 200: they make room */
    jti_event(ev, sizeof(ev), 3, 1000);
    assert_int_equal(apply(&rs, ev, 200), ZTB_OK);
    jti_event(ev, sizeof(ev), 4, 1000);
    assert_int_equal(apply(&rs, ev, 200), ZTB_OK);
    assert_int_equal(rs.evicted, 3);
    assert_int_equal(rs.refused, 0);
    assert_false(rs.full);
    uint8_t id[IDSET_ID_LEN];
    jti_id(3, id);
    assert_int_equal(revset_check(&rs, NULL, NULL, NULL, 0, id, 200), ZTB_ERR_REVOKED);
    jti_id(4, id);
    assert_int_equal(revset_check(&rs, NULL, NULL, NULL, 0, id, 200), ZTB_ERR_REVOKED);
    assert_int_equal(revset_check(&rs, "k", NULL, NULL, 0, NULL, 200), ZTB_ERR_KEY_TAINTED);
    /* an event for an entry already held needs no room */
    assert_int_equal(apply(&rs, "{\"type\":\"key\",\"id\":\"k\",\"exp\":2000}", 200), ZTB_OK);
    revset_free(&rs);
}

static void test_cap_full_of_live_entries_fails_closed(void **state)
{
    (void)state;
    struct revset rs;
    revset_init(&rs, 0, 4);
    char ev[128];
    for (int i = 0; i < 4; i++) {
        jti_event(ev, sizeof(ev), i, 1000);
        assert_int_equal(apply(&rs, ev, 10), ZTB_OK);
    }
    /* a fifth live revocation cannot be held: never forgotten silently */
    jti_event(ev, sizeof(ev), 4, 1000);
    assert_int_equal(apply(&rs, ev, 10), ZTB_ERR_TOO_LARGE);
    assert_true(rs.full);
    assert_int_equal(rs.refused, 1);
    assert_int_equal(rs.evicted, 0);
    /* every token is refused now, not only the one it would have named */
    uint8_t id[IDSET_ID_LEN];
    jti_id(4, id);
    assert_int_equal(revset_check(&rs, NULL, NULL, NULL, 0, id, 10), ZTB_ERR_REVOCATION_STALE);
    jti_id(99, id);
    assert_int_equal(revset_check(&rs, "kid", "aud", "agent", 1, id, 10), ZTB_ERR_REVOCATION_STALE);
    revset_free(&rs);

    /* names count toward the cap too: an agent revocation past it */
    revset_init(&rs, 0, 4);
    for (int i = 0; i < 4; i++) {
        snprintf(ev, sizeof(ev), "{\"type\":\"agent\",\"id\":\"a%d\",\"gen\":2,\"exp\":1000}", i);
        assert_int_equal(apply(&rs, ev, 10), ZTB_OK);
    }
    assert_int_equal(apply(&rs, "{\"type\":\"agent\",\"id\":\"a4\",\"gen\":2,\"exp\":1000}", 10),
                     ZTB_ERR_TOO_LARGE);
    assert_int_equal(revset_check(&rs, NULL, NULL, "a4", 1, NULL, 10), ZTB_ERR_REVOCATION_STALE);
    assert_int_equal(revset_check(&rs, NULL, NULL, "someone", 1, NULL, 10),
                     ZTB_ERR_REVOCATION_STALE);
    assert_int_equal(rs.refused, 1);
    revset_free(&rs);

    /* a kill switch (exp 0: never expires) too */
    revset_init(&rs, 0, 1);
    assert_int_equal(apply(&rs, "{\"type\":\"audience\",\"id\":\"x\",\"exp\":0}", 10), ZTB_OK);
    assert_int_equal(apply(&rs, "{\"type\":\"audience\",\"id\":\"y\",\"exp\":0}", 10),
                     ZTB_ERR_TOO_LARGE);
    assert_int_equal(revset_check(&rs, NULL, "z", NULL, 0, NULL, 10), ZTB_ERR_REVOCATION_STALE);
    revset_free(&rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_and_check),
        cmocka_unit_test(test_many_names_and_deletes),
        cmocka_unit_test(test_cap_evicts_expired_first),
        cmocka_unit_test(test_cap_full_of_live_entries_fails_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
