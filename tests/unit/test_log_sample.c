/* test_log_sample.c - the first records of an interval pass, the rest are
 * held back and summarised once; records below the level are not counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log_sample.h"

/* The whole file, read without moving its offset (the logger writes at it). */
static char *read_all(FILE *f)
{
    struct stat st;
    assert_int_equal(fstat(fileno(f), &st), 0);
    char *s = calloc(1, (size_t)st.st_size + 1);
    assert_int_equal(pread(fileno(f), s, (size_t)st.st_size, 0), st.st_size);
    return s;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_burst_then_summary(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    ztb_log_set_fd(fileno(f));
    ztb_log_set_level(ZTB_LOG_INFO);
    static struct ztb_log_sampler s = ZTB_LOG_SAMPLER_INIT(3, 1);
    for (int i = 0; i < 1000; i++)
        ztb_log_sampled(&s, ZTB_LOG_WARN, "x.refused", ZTB_F_INT("i", i));
    char *t = read_all(f);
    assert_int_equal(count(t, "\"event\":\"x.refused\""), 3);
    assert_int_equal(count(t, "log.suppressed"), 0);
    assert_int_equal(s.held_back, 997);
    free(t);
    /* a later interval: the summary first, then the record */
    sleep(1);
    ztb_log_sampled(&s, ZTB_LOG_WARN, "x.refused", ZTB_F_INT("i", 1000));
    t = read_all(f);
    assert_int_equal(count(t, "\"event\":\"log.suppressed\""), 1);
    assert_non_null(strstr(t, "\"suppressed_event\":\"x.refused\",\"suppressed\":997"));
    assert_int_equal(count(t, "\"event\":\"x.refused\""), 4);
    assert_non_null(strstr(strstr(t, "log.suppressed"), "\"i\":1000"));
    free(t);
    /* below the level: neither logged nor counted */
    ztb_log_set_level(ZTB_LOG_ERROR);
    for (int i = 0; i < 100; i++)
        assert_int_equal(ztb_log_sample(&s, ZTB_LOG_WARN, "x.refused"), 0);
    assert_int_equal(s.held_back, 0);
    ztb_log_set_level(ZTB_LOG_INFO);
    ztb_log_set_fd(2);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
