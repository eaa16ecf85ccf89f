/*
 * clockshift.c - an LD_PRELOAD library for integration tests: it moves the
 * wall clock of the process it is loaded into (CLOCK_REALTIME and its
 * coarse variant, gettimeofday, time) by ZTB_CLOCK_OFFSET_S seconds
 * (signed decimal), and leaves every other clock alone. The harness loads
 * it into a real redis-server (zh_redis_start_clock) to show what the
 * broker does when Redis's clock is ahead of or behind its own.
 *
 * Why not libfaketime: Debian's redis-server links jemalloc, which reads
 * the clock during its own start-up, before libfaketime is initialised;
 * libfaketime then aborts on the recursion and redis-server exits at once.
 * This library asks the kernel directly (a raw system call: no dlsym, no
 * allocation, no static initialiser), so it is safe at any point of a
 * process's life, jemalloc's start included.
 *
 * Must never: be linked into anything but a test's child process, or be
 * built with a sanitizer (its runtime would have to come first).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The offset in seconds. Read on every call: the first clock reads of a
 * process (jemalloc's start-up) come before its environment is set up, so
 * an answer cached then would be 0 for ever. getenv neither allocates nor
 * locks. */
static long offset_s(void)
{
    const char *v = getenv("ZTB_CLOCK_OFFSET_S");
    return v != NULL ? strtol(v, NULL, 10) : 0;
}

/* The build hides symbols by default; these must interpose libc's. */
#define SHIFT_EXPORT __attribute__((visibility("default")))

static int raw_clock_gettime(clockid_t id, struct timespec *ts)
{
    return (int)syscall(SYS_clock_gettime, id, ts);
}

/* Returns 0 or -1 (errno set), as clock_gettime(2). */
SHIFT_EXPORT int clock_gettime(clockid_t id, struct timespec *ts)
{
    int rc = raw_clock_gettime(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += offset_s();
    return rc;
}

/* Returns 0 or -1 (errno set), as gettimeofday(2); tz is ignored. glibc
 * declares tv nonnull, as every caller we shift passes one. */
SHIFT_EXPORT int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    struct timespec ts;
    if (raw_clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec + offset_s();
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

/* The shifted time in seconds, also stored in *t when t is not NULL. */
SHIFT_EXPORT time_t time(time_t *t)
{
    struct timespec ts;
    if (raw_clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (time_t)-1;
    time_t now = ts.tv_sec + offset_s();
    if (t != NULL)
        *t = now;
    return now;
}
