/*
 * test_signal_stats.c - precision, false positives, Brier score, calibration
 * buckets, escalations and time to containment, computed by hand for a small
 * set of records and verdicts.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/signals/signal_stats.h"

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (j == NULL)
        fail_msg("fixture: %s", e.text);
    return j;
}

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_number(v))
        fail_msg("%s is not a number", k);
    return json_number_value(v);
}

static void test_by_source(void **state)
{
    (void)state;
    json_t *rec = parse(
        "[{\"id\":\"s1\",\"source\":\"soc\",\"type\":\"t\",\"confidence\":0.9,\"received\":100,"
        "\"event_timestamp\":90,\"responses\":[{\"status\":\"applied\"}]},"
        " {\"id\":\"s2\",\"source\":\"soc\",\"type\":\"t\",\"confidence\":0.9,\"received\":200,"
        "\"responses\":[{\"status\":\"pending_operator\"}]},"
        " {\"id\":\"s3\",\"source\":\"soc\",\"type\":\"t\",\"confidence\":0.3,\"received\":300,"
        "\"mode\":\"observe\",\"responses\":[{\"status\":\"observed\"}]},"
        " {\"id\":\"s4\",\"source\":\"ztb-broker\",\"type\":\"policy_violation\","
        "\"confidence\":0.7,\"received\":400,\"responses\":[]}]");
    /* s1 confirmed, s2 confirmed by an operator who applied it at 260,
     * s3 a false positive, s4 unjudged */
    json_t *oc = parse("{\"s1\":{\"outcome\":\"confirmed\"},"
                       "\"s2\":{\"outcome\":\"confirmed\",\"contained_at\":260},"
                       "\"s3\":{\"outcome\":\"false_positive\"}}");
    json_t *st = NULL;
    assert_int_equal(signal_stats(rec, oc, &st), ZTB_OK);
    const json_t *soc = json_object_get(json_object_get(st, "by"), "source:soc");
    assert_non_null(soc);
    assert_int_equal(num(soc, "signals"), 3);
    assert_int_equal(num(soc, "observed"), 1);
    assert_int_equal(num(soc, "escalations"), 1);
    assert_int_equal(num(soc, "judged"), 3);
    assert_int_equal(num(soc, "confirmed"), 2);
    assert_int_equal(num(soc, "false_positives"), 1);
    assert_true(fabs(num(soc, "precision") - 2.0 / 3.0) < 1e-9);
    assert_true(fabs(num(soc, "false_positive_rate") - 1.0 / 3.0) < 1e-9);
    /* ((0.9-1)^2 + (0.9-1)^2 + (0.3-0)^2) / 3 */
    assert_true(fabs(num(soc, "brier") - (0.01 + 0.01 + 0.09) / 3.0) < 1e-9);
    /* containment: s1 from its event (90) to receipt (100): 10 s; s2 from
     * receipt (200) to the operator (260): 60 s */
    const json_t *c = json_object_get(soc, "containment_s");
    assert_int_equal(num(c, "n"), 2);
    assert_true(fabs(num(c, "p50") - 10) < 1e-9);
    assert_true(fabs(num(c, "p95") - 60) < 1e-9);
    /* calibration: 0.8-1.0 holds s1, s2 (both confirmed), 0.2-0.4 holds s3 */
    const json_t *cal = json_object_get(soc, "calibration");
    assert_int_equal(json_array_size(cal), 2);
    const json_t *lo = json_array_get(cal, 0), *hi = json_array_get(cal, 1);
    assert_string_equal(json_string_value(json_object_get(lo, "bucket")), "0.2-0.4");
    assert_true(fabs(num(lo, "observed_rate")) < 1e-9);
    assert_string_equal(json_string_value(json_object_get(hi, "bucket")), "0.8-1.0");
    assert_true(fabs(num(hi, "observed_rate") - 1.0) < 1e-9);
    assert_true(fabs(num(hi, "mean_confidence") - 0.9) < 1e-9);
    /* the detector: its own key, nothing judged yet */
    const json_t *det = json_object_get(json_object_get(st, "by"), "detector:policy_violation");
    assert_non_null(det);
    assert_int_equal(num(det, "signals"), 1);
    assert_true(json_is_null(json_object_get(det, "precision")));
    assert_true(json_is_null(json_object_get(det, "brier")));
    assert_int_equal(num(json_object_get(st, "total"), "signals"), 4);
    json_decref(st);
    json_decref(rec);
    json_decref(oc);
}

static void test_empty_and_bad(void **state)
{
    (void)state;
    json_t *st = NULL, *empty = json_array();
    assert_int_equal(signal_stats(empty, NULL, &st), ZTB_OK);
    assert_int_equal(num(json_object_get(st, "total"), "signals"), 0);
    assert_true(json_is_null(
        json_object_get(json_object_get(json_object_get(st, "total"), "containment_s"), "p50")));
    json_decref(st);
    json_decref(empty);
    assert_int_equal(signal_stats(NULL, NULL, &st), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_source),
        cmocka_unit_test(test_empty_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
