/* test_routes.c - the route tables are well formed: no duplicate, no hole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "broker/broker.h"
#include "broker/http/metrics.h"

static void check_table(const struct http_route *t, size_t n)
{
    assert_true(n > 0);
    assert_true(n <= METRICS_MAX_ENDPOINTS);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(t[i].fn);
        assert_non_null(t[i].path);
        assert_int_equal(t[i].path[0], '/');
        assert_non_null(t[i].metric_name);
        for (size_t j = i + 1; j < n; j++) {
            int same_method = (t[i].method == NULL || t[j].method == NULL) ||
                              strcmp(t[i].method, t[j].method) == 0;
            if (same_method && strcmp(t[i].path, t[j].path) == 0)
                fail_msg("duplicate route %s", t[i].path);
            assert_string_not_equal(t[i].metric_name, t[j].metric_name);
        }
    }
}

static void test_tables(void **state)
{
    (void)state;
    check_table(api_routes, api_routes_n);
    check_table(admin_routes, admin_routes_n);
    /* the public API has the health endpoints load balancers need */
    int found = 0;
    for (size_t i = 0; i < api_routes_n; i++)
        found += strcmp(api_routes[i].path, "/healthz") == 0 ||
                 strcmp(api_routes[i].path, "/readyz") == 0;
    assert_int_equal(found, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
