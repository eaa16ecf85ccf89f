/*
 * test_scope_summary.c - the out-of-scope summary (broker/signals/
 * scope_summary.c) into a real audit log: nothing before the window ends,
 * one scope.summary record per agent after it with its counts by action,
 * audience and rule, bounded for agents and for items, and a flush at
 * shutdown that writes the window so far.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/audit/audit.h"
#include "broker/signals/scope_summary.h"
#include "harness.h"

static char dir[256], path[300];

/* The scope.summary records of the log, as a new JSON array. */
static json_t *summaries(void)
{
    json_t *out = json_array();
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[16384];
    while (fgets(line, sizeof(line), f) != NULL) {
        json_error_t e;
        json_t *rec = json_loads(line, 0, &e);
        const char *ev = rec != NULL ? json_string_value(json_object_get(rec, "event")) : NULL;
        if (ev != NULL && strcmp(ev, "scope.summary") == 0)
            json_array_append(out, rec);
        json_decref(rec);
    }
    fclose(f);
    return out;
}

static json_t *record_of(json_t *recs, const char *agent)
{
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "agent")), agent) == 0)
            return r;
    }
    return NULL;
}

static void test_window_and_bounds(void **state)
{
    (void)state;
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    char err[256];
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    /* 2 s: the window starts at the whole second of the first note, so a
     * 1 s window could end between the notes and the first tick below
     * (notes at x.999, tick at x+1.0); 2 s cannot, and sleep(2) is
     * always past it */
    scope_summary_set_window(2);
    scope_summary_tick(NULL); /* nothing counted: nothing written */
    for (int i = 0; i < 3; i++)
        scope_summary_note("prober", "payments:delete", "payments", NULL);
    scope_summary_note("prober", "crm:export", "crm", "no-export");
    char name[64];
    for (int i = 0; i < 40; i++) { /* one agent asks for many distinct things */
        snprintf(name, sizeof(name), "act:%d", i);
        scope_summary_note("wide", name, "crm", NULL);
    }
    for (int i = 0; i < SCOPE_SUMMARY_AGENTS + 10; i++) { /* and many agents one thing each */
        snprintf(name, sizeof(name), "bot-%d", i);
        scope_summary_note(name, "x:y", "z", NULL);
    }
    scope_summary_tick(NULL); /* the window has not ended */
    json_t *recs = summaries();
    assert_int_equal(json_array_size(recs), 0);
    json_decref(recs);
    sleep(2);
    scope_summary_tick(NULL);
    recs = summaries();
    /* every agent that fitted, and "_other" for those that did not */
    assert_int_equal(json_array_size(recs), SCOPE_SUMMARY_AGENTS + 1);
    json_t *p = record_of(recs, "prober");
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "actor")), "agent:prober");
    assert_int_equal(json_integer_value(json_object_get(p, "requests")), 4);
    assert_int_equal(json_integer_value(json_object_get(p, "distinct")), 2);
    assert_int_equal(json_integer_value(json_object_get(p, "other")), 0);
    assert_true(json_integer_value(json_object_get(p, "window_end")) >
                json_integer_value(json_object_get(p, "window_start")));
    assert_string_equal(json_string_value(json_object_get(p, "by")),
                        "[{\"action\":\"payments:delete\",\"audience\":\"payments\",\"rule\":"
                        "\"(default deny)\",\"count\":3},{\"action\":\"crm:export\",\"audience\":"
                        "\"crm\",\"rule\":\"no-export\",\"count\":1}]");
    json_t *w = record_of(recs, "wide");
    assert_int_equal(json_integer_value(json_object_get(w, "requests")), 40);
    assert_int_equal(json_integer_value(json_object_get(w, "distinct")), SCOPE_SUMMARY_ITEMS);
    assert_int_equal(json_integer_value(json_object_get(w, "other")), 40 - SCOPE_SUMMARY_ITEMS);
    json_t *o = record_of(recs, "_other");
    assert_non_null(o);
    /* 128 slots: prober, wide and 126 bots; 12 bots in _other */
    assert_int_equal(json_integer_value(json_object_get(o, "requests")),
                     SCOPE_SUMMARY_AGENTS + 10 - (SCOPE_SUMMARY_AGENTS - 2));
    json_decref(recs);
    /* a new window: the shutdown flush writes it before it ends */
    scope_summary_set_window(3600);
    scope_summary_note("late", "a:b", "c", "r1");
    scope_summary_tick(NULL);
    recs = summaries();
    assert_null(record_of(recs, "late"));
    json_decref(recs);
    assert_int_equal(scope_summary_flush(), 1);
    assert_int_equal(scope_summary_flush(), 0); /* nothing since */
    recs = summaries();
    assert_non_null(record_of(recs, "late"));
    json_decref(recs);
    audit_close();
    zh_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_and_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
