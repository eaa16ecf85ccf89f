/*
 * clock.h - the times libztb works with.
 *
 * Token times are wall-clock Unix seconds (clock_now_s); intervals, backoff
 * and deadlines use the monotonic clock (clock_mono_ms), so a wall-clock step
 * never stretches or shortens a wait. Tests can shift the wall clock
 * (clock_set_offset_for_test) and the monotonic one as this library reads it
 * (clock_set_mono_offset_for_test) to craft expiry cases without sleeping;
 * the second does not move waits already started on the real clock.
 */
#ifndef ZTB_SDK_CLOCK_H
#define ZTB_SDK_CLOCK_H

#include <stdint.h>

/* Wall-clock Unix seconds (plus the test offset). */
int64_t clock_now_s(void);

/* Monotonic milliseconds since an arbitrary start. */
int64_t clock_mono_ms(void);

/* Sleep ms milliseconds (resumes after signals). */
void clock_sleep_ms(unsigned ms);

/* Tests only: add delta_s to every later clock_now_s(). Not thread-safe to change. */
void clock_set_offset_for_test(int64_t delta_s);

/* Tests only: add delta_ms to every later clock_mono_ms(). */
void clock_set_mono_offset_for_test(int64_t delta_ms);

#endif /* ZTB_SDK_CLOCK_H */
