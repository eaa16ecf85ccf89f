/* test_errdetail.c - details belong to one handle and one thread, and hold one line. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "sdk/src/errdetail.h"

static int h1, h2;

static void *other_thread(void *arg)
{
    (void)arg;
    return (void *)errdetail_get(&h1);
}

static void test_per_handle_and_thread(void **state)
{
    (void)state;
    assert_string_equal(errdetail_get(&h1), "");
    assert_int_equal(errdetail_set(&h1, ZTB_ERR_AUDIENCE, "aud mismatch"), ZTB_ERR_AUDIENCE);
    assert_string_equal(errdetail_get(&h1), "aud mismatch");
    assert_string_equal(errdetail_get(&h2), "");
    assert_string_equal(errdetail_get(NULL), "");
    pthread_t t;
    void *got;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, &got);
    assert_string_equal((const char *)got, "");
    assert_int_equal(errdetail_setf(NULL, ZTB_ERR_IO, "file %s\nline2\x7f", "x"), ZTB_ERR_IO);
    assert_string_equal(errdetail_get(NULL), "file x line2 ");
    char longer[600];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    errdetail_setf(&h2, ZTB_ERR_IO, "%s", longer);
    assert_int_equal(strlen(errdetail_get(&h2)), 255);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_per_handle_and_thread)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
