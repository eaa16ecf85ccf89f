/*
 * log_sample.c - rate-bounded logging of repeated events (see log_sample.h).
 *
 * Fixed intervals on CLOCK_MONOTONIC (a wall-clock step must neither open
 * the gate nor close it). The summary of held-back records is written by
 * whichever caller first passes the gate in a later interval, outside the
 * sampler's mutex.
 */
#include <time.h>

#include "common/log_sample.h"

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

int ztb_log_sample(struct ztb_log_sampler *s, ztb_log_level level, const char *event)
{
    if (level < ztb_log_get_level() || level >= ZTB_LOG_OFF)
        return 0;
    int64_t now = mono_s();
    uint64_t summary = 0;
    int pass;
    pthread_mutex_lock(&s->mu);
    unsigned interval = s->interval_s ? s->interval_s : 1;
    if (s->window == 0 || now - s->window >= (int64_t)interval) {
        s->window = now;
        s->in_window = 0;
    }
    pass = s->in_window++ < s->burst;
    if (!pass) {
        s->held_back++;
    } else if (s->held_back > 0) {
        summary = s->held_back;
        s->held_back = 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (summary > 0)
        ztb_log(level, "log.suppressed", ZTB_F_STR("suppressed_event", event),
                ZTB_F_INT("suppressed", summary), ZTB_F_INT("interval_s", interval));
    return pass;
}
