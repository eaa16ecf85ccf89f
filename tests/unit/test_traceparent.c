/*
 * test_traceparent.c - the W3C traceparent reader: the spec's example, and
 * every way a value can be almost right (each one ignored).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "broker/http/traceparent.h"

static int rd(const char *v, char id[TRACE_ID_HEX + 1])
{
    return traceparent_read(v, strlen(v), id);
}

static void test_valid(void **state)
{
    (void)state;
    char id[TRACE_ID_HEX + 1];
    assert_int_equal(rd("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", id), 1);
    assert_string_equal(id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_int_equal(rd("00-0000000000000000000000000000000a-000000000000000b-00", id), 1);
    assert_string_equal(id, "0000000000000000000000000000000a");
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00",
        /* uppercase */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        /* other versions (ff is invalid, the rest not understood here) */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        /* all-zero ids */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        /* lengths and separators */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "00-4bf92f3577b34da6a3ce929d0e0e47\"6-00f067aa0ba902b7-01",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char id[TRACE_ID_HEX + 1] = "x";
        if (rd(bad[i], id) != 0)
            fail_msg("accepted %s", bad[i]);
        assert_string_equal(id, "");
    }
    char id[TRACE_ID_HEX + 1];
    assert_int_equal(traceparent_read(NULL, 55, id), 0);
    /* a NUL inside the value */
    char nul[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    nul[10] = '\0';
    assert_int_equal(traceparent_read(nul, TRACEPARENT_LEN, id), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
