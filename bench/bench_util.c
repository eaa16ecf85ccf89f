/*
 * bench_util.c - timing, medians, metric lines, reference measurements.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double bench_now_s(void)
{
    return (double)bench_now_ns() / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double *sorted_copy(const double *v, size_t n)
{
    double *c = malloc(n * sizeof(double));
    if (c == NULL)
        return NULL;
    memcpy(c, v, n * sizeof(double));
    qsort(c, n, sizeof(double), cmp_double);
    return c;
}

double bench_median(const double *v, size_t n)
{
    if (n == 0)
        return 0;
    double *c = sorted_copy(v, n);
    if (c == NULL)
        return 0;
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

double bench_percentile(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    double *c = sorted_copy(v, n);
    if (c == NULL)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    double r = c[rank - 1];
    free(c);
    return r;
}

void bench_metric(const char *name, double value)
{
    if (value == (double)(long long)value && value < 1e15 && value > -1e15)
        printf("%s: %lld\n", name, (long long)value);
    else if (value >= 100 || value <= -100)
        printf("%s: %.0f\n", name, value);
    else
        printf("%s: %.4g\n", name, value);
    fflush(stdout);
}

void bench_metric_str(const char *name, const char *value)
{
    printf("%s: %s\n", name, value);
    fflush(stdout);
}

void bench_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int bench_openssl_ecdsap256(int secs, double *sign_per_s, double *verify_per_s)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "openssl speed -elapsed -seconds %d ecdsap256 2>/dev/null",
             secs > 0 ? secs : 3);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof(line), p) != NULL) {
        /* " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  39700.1  14100.2" */
        char *at = strstr(line, "ecdsa (nistp256)");
        if (at == NULL)
            continue;
        double s1, s2, sign, verify;
        if (sscanf(at, "ecdsa (nistp256) %lfs %lfs %lf %lf", &s1, &s2, &sign, &verify) == 4) {
            *sign_per_s = sign;
            *verify_per_s = verify;
            found = 1;
        }
    }
    int rc = pclose(p);
    return found && rc == 0 ? 0 : -1;
}

double bench_peak_rss_mib(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    double mib = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        long kb;
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
            mib = (double)kb / 1024.0;
            break;
        }
    }
    fclose(f);
    return mib;
}
