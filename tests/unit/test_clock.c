/* test_clock.c - wall time, monotonic time, the test offsets, sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <cmocka.h>

#include "sdk/src/clock.h"

static void test_clocks(void **state)
{
    (void)state;
    int64_t w = clock_now_s();
    assert_true(w >= (int64_t)time(NULL) - 1 && w <= (int64_t)time(NULL) + 1);
    clock_set_offset_for_test(1000);
    assert_true(clock_now_s() >= w + 999);
    clock_set_offset_for_test(0);
    int64_t m0 = clock_mono_ms();
    clock_sleep_ms(20);
    int64_t m1 = clock_mono_ms();
    assert_true(m1 - m0 >= 19);
    assert_true(m1 - m0 < 2000);
    clock_set_mono_offset_for_test(60000);
    assert_true(clock_mono_ms() >= m1 + 60000);
    clock_set_mono_offset_for_test(0);
    assert_true(clock_mono_ms() < m1 + 60000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_clocks)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
