/* test_sigpipe.c - writing to a closed pipe inside the guard neither kills nor leaves a signal. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdk/src/sigpipe.h"

static int pending_pipe(void)
{
    sigset_t p;
    sigpending(&p);
    return sigismember(&p, SIGPIPE) == 1;
}

static void test_write_to_closed_pipe(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_DFL); /* as in a host that never ignored it */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    struct sigpipe_guard g;
    sigpipe_enter(&g);
    ssize_t n = write(fds[1], "x", 1);
    int e = errno;
    sigpipe_leave(&g);
    assert_int_equal(n, -1);
    assert_int_equal(e, EPIPE);
    assert_false(pending_pipe());
    /* the mask is as it was */
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    assert_false(sigismember(&now, SIGPIPE));
    close(fds[1]);
}

static void test_does_not_eat_a_signal_pending_before(void **state)
{
    (void)state;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    raise(SIGPIPE); /* pending, blocked: the host's own */
    struct sigpipe_guard g;
    sigpipe_enter(&g);
    sigpipe_leave(&g);
    assert_true(pending_pipe());
    const struct timespec zero = {0, 0};
    assert_int_equal(sigtimedwait(&set, NULL, &zero), SIGPIPE);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void test_block_all_for_new_thread(void **state)
{
    (void)state;
    sigset_t old, now;
    sigpipe_block_all_for_new_thread(&old);
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    assert_true(sigismember(&now, SIGPIPE));
    assert_true(sigismember(&now, SIGTERM));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    assert_false(sigismember(&now, SIGTERM));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_to_closed_pipe),
        cmocka_unit_test(test_does_not_eat_a_signal_pending_before),
        cmocka_unit_test(test_block_all_for_new_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
