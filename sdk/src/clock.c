/* clock.c - wall and monotonic time for libztb (see clock.h). */
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "sdk/src/clock.h"

static _Atomic int64_t test_offset;
static _Atomic int64_t test_mono_offset_ms;

int64_t clock_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec + atomic_load_explicit(&test_offset, memory_order_relaxed);
}

int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
           atomic_load_explicit(&test_mono_offset_ms, memory_order_relaxed);
}

void clock_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void clock_set_offset_for_test(int64_t delta_s)
{
    atomic_store(&test_offset, delta_s);
}

void clock_set_mono_offset_for_test(int64_t delta_ms)
{
    atomic_store(&test_mono_offset_ms, delta_ms);
}
