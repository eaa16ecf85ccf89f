/*
 * log_sample.h - log a repeated event at a bounded rate.
 *
 * A request anyone can send (an unauthenticated refusal, a rate-limited
 * request) must not cost a log line each: a flood would turn the attacker's
 * bandwidth into the operator's disk. A sampler lets through the first
 * `burst` records of its event in each `interval_s` seconds (measured on
 * CLOCK_MONOTONIC) and holds back the rest; the first record let through in
 * a later interval is preceded by one summary line
 *
 *   {"event":"log.suppressed","suppressed_event":"signal.refused","suppressed":4873,
 *    "interval_s":10}
 *
 * so the log always says how much it did not write. Counting every
 * occurrence is the job of /metrics (broker/http/metrics.h), not of the log.
 *
 *   static struct ztb_log_sampler refused = ZTB_LOG_SAMPLER_INIT(10, 10);
 *   ztb_log_sampled(&refused, ZTB_LOG_WARN, "signal.refused", ZTB_F_STR("peer", peer));
 *
 * Thread-safe (a small mutex per sampler, held for a few instructions); a
 * sampler is a static object, never freed.
 */
#ifndef ZTB_LOG_SAMPLE_H
#define ZTB_LOG_SAMPLE_H

#include <pthread.h>
#include <stdint.h>

#include "common/log.h"

struct ztb_log_sampler {
    pthread_mutex_t mu;
    unsigned burst;      /* records let through per interval */
    unsigned interval_s; /* length of an interval */
    int64_t window;      /* start of the current interval, monotonic seconds; 0: none yet */
    uint64_t in_window;  /* records seen in the current interval */
    uint64_t held_back;  /* records held back and not yet summarised */
};

#define ZTB_LOG_SAMPLER_INIT(burst_, interval_s_)                                                  \
    {                                                                                              \
        .mu = PTHREAD_MUTEX_INITIALIZER, .burst = (burst_), .interval_s = (interval_s_)            \
    }

/*
 * Account one occurrence of event at level: returns 1 if the caller should
 * log it now, 0 if it is held back. When it returns 1 after records were held
 * back, it has just written the "log.suppressed" summary for them. Records
 * below the log level are neither counted nor summarised.
 */
int ztb_log_sample(struct ztb_log_sampler *s, ztb_log_level level, const char *event);

/* Log a record through sampler s (see ztb_log in log.h for the fields). */
#define ztb_log_sampled(s, level, event, ...)                                                      \
    do {                                                                                           \
        if (ztb_log_sample((s), (level), (event)))                                                 \
            ztb_log((level), (event), ##__VA_ARGS__);                                              \
    } while (0)

#endif /* ZTB_LOG_SAMPLE_H */
