/*
 * test_service.c - the sd_notify messages (broker/service.c) as the service
 * manager receives them on $NOTIFY_SOCKET, the watchdog period taken from
 * $WATCHDOG_USEC, and silence without a socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/service.h"

static int fd = -1;
static char path[108];

/* The next datagram on the socket, or "" after 1 s. */
static const char *next(void)
{
    static char msg[512];
    ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
    msg[n > 0 ? n : 0] = '\0';
    return msg;
}

static void test_messages(void **state)
{
    (void)state;
    service_ready(8443);
    assert_string_equal(next(), "READY=1\nSTATUS=serving on port 8443");
    service_reloading(1);
    assert_string_equal(next(), "RELOADING=1");
    service_reloading(0);
    assert_string_equal(next(), "READY=1");
    service_watchdog();
    assert_string_equal(next(), "WATCHDOG=1");
    service_stopping();
    assert_string_equal(next(), "STOPPING=1\nSTATUS=draining");
}

static void test_watchdog_interval(void **state)
{
    (void)state;
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_int_equal(service_watchdog_interval_ms(), 15000); /* half of 30 s */
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1); /* meant for another process */
    assert_int_equal(service_watchdog_interval_ms(), 0);
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    assert_int_equal(service_watchdog_interval_ms(), 0);
}

/* Without $NOTIFY_SOCKET (any supervisor but systemd) nothing is sent. */
static void test_no_socket(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    service_ready(1);
    service_watchdog();
    assert_string_equal(next(), "");
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/ztb-test-notify-%d.sock", (int)getpid());
    unlink(path);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setenv("NOTIFY_SOCKET", path, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(fd);
    unlink(path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_watchdog_interval),
        cmocka_unit_test(test_no_socket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
