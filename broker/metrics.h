/*
 * metrics.h - counters and histograms exported at GET /metrics.
 *
 * All updates are relaxed atomic adds on fixed arrays: no lock and no
 * allocation on the request path. Label sets are bounded: endpoints come
 * from the route tables (at most METRICS_MAX_ENDPOINTS), status codes are
 * bucketed, and audiences past METRICS_MAX_AUDIENCES count as "_other", so a
 * hostile client cannot grow the metrics without bound.
 */
#ifndef ZTB_BROKER_METRICS_H
#define ZTB_BROKER_METRICS_H

#include <stdint.h>

#include "common/buf.h"

#define METRICS_MAX_ENDPOINTS 48
#define METRICS_MAX_AUDIENCES 256

enum metrics_counter {
    METRIC_REDIS_ERRORS = 0,
    METRIC_REDIS_RECONNECTS,
    METRIC_TOKENS_ISSUED,
    METRIC_TOKENS_DENIED,
    METRIC_POLICY_RELOADS,
    METRIC_POLICY_RELOAD_FAILURES,
    METRIC_COUNTERS_N
};

/* Count one finished request on server ("api"/"admin") and endpoint. */
void metrics_request(const char *server, const char *endpoint, unsigned status,
                     uint64_t duration_ns);

/* Add n to a plain counter. */
void metrics_add(enum metrics_counter c, uint64_t n);

/* Count one token issued for audience. */
void metrics_token_issued(const char *audience);

/* Set a gauge-like value read at render time (e.g. redis up 0/1). */
void metrics_set_redis_up(int up);

/* Append the Prometheus text exposition (format 0.0.4) to b. */
void metrics_render(ztb_buf *b);

/* Current value of a counter (tests). */
uint64_t metrics_get(enum metrics_counter c);

#endif /* ZTB_BROKER_METRICS_H */
