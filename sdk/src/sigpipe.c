/* sigpipe.c - SIGPIPE-safe writes on threads libztb does not own (see sigpipe.h). */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "sdk/src/sigpipe.h"

static void pipe_set(sigset_t *s)
{
    sigemptyset(s);
    sigaddset(s, SIGPIPE);
}

void sigpipe_enter(struct sigpipe_guard *g)
{
    sigset_t set, pending;
    pipe_set(&set);
    g->active = pthread_sigmask(SIG_BLOCK, &set, &g->old) == 0;
    g->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

void sigpipe_leave(struct sigpipe_guard *g)
{
    if (!g->active)
        return;
    if (!g->was_pending) {
        sigset_t set, pending;
        pipe_set(&set);
        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
            const struct timespec zero = {0, 0};
            while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    g->active = 0;
}

void sigpipe_block_all_for_new_thread(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, old);
}
