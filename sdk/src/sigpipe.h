/*
 * sigpipe.h - write to sockets on the caller's thread without SIGPIPE.
 *
 * hiredis writes with write(2), which raises SIGPIPE when the peer has gone;
 * its default action kills the process, and a library must not rely on the
 * host program ignoring it. Around such writes on a thread libztb does not
 * own, sigpipe_enter() blocks SIGPIPE for the calling thread and
 * sigpipe_leave() consumes a SIGPIPE the write raised (only if none was
 * pending before) and restores the thread's mask: the technique libcurl uses.
 * Threads libztb starts block every signal for their whole life instead
 * (sigpipe_block_all_for_new_thread()).
 */
#ifndef ZTB_SDK_SIGPIPE_H
#define ZTB_SDK_SIGPIPE_H

#include <signal.h>

struct sigpipe_guard {
    sigset_t old;
    int was_pending; /* a SIGPIPE was already pending: it is not ours to consume */
    int active;
};

/* Block SIGPIPE on this thread, remembering the previous mask. */
void sigpipe_enter(struct sigpipe_guard *g);

/* Consume a SIGPIPE raised since sigpipe_enter, then restore the mask. */
void sigpipe_leave(struct sigpipe_guard *g);

/*
 * Block every blockable signal on the calling thread, saving the old mask in
 * old; a thread created now inherits the full mask. Restore with
 * pthread_sigmask(SIG_SETMASK, old, NULL) after pthread_create.
 */
void sigpipe_block_all_for_new_thread(sigset_t *old);

#endif /* ZTB_SDK_SIGPIPE_H */
