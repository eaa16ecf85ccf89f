/*
 * bench_util.h - what every ztb benchmark shares.
 *
 * Benchmarks print figures, not pass/fail: one `metric: value` line per
 * figure on stdout (progress and notes go to stderr), so scripts and
 * docs/BENCHMARKS.md can quote them. The machine is shared and noisy, so a
 * figure is the median of several timed rounds, and a reference (e.g.
 * `openssl speed`) is measured in the same run to give a ratio.
 */
#ifndef ZTB_BENCH_UTIL_H
#define ZTB_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in nanoseconds / seconds. */
uint64_t bench_now_ns(void);
double bench_now_s(void);

/* Median of n values (sorts a copy). 0 for n == 0. */
double bench_median(const double *v, size_t n);

/* Percentile p (0..100) of n values, nearest-rank (sorts a copy). */
double bench_percentile(const double *v, size_t n, double p);

/* Print "name: value" with a sensible precision, flushed at once. */
void bench_metric(const char *name, double value);
void bench_metric_str(const char *name, const char *value);

/* Print a progress note to stderr. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Run `openssl speed -elapsed -seconds SECS ecdsap256` on one core and parse
 * its signs/s and verifies/s. Returns 0 on success, -1 if openssl cannot be
 * run or its output is not understood.
 */
int bench_openssl_ecdsap256(int secs, double *sign_per_s, double *verify_per_s);

/* Peak resident set size (VmHWM) of a process in MiB, -1 if unknown. */
double bench_peak_rss_mib(int pid);

#endif /* ZTB_BENCH_UTIL_H */
