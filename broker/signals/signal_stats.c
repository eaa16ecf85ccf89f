/*
 * signal_stats.c - precision, calibration, escalations and containment per
 * source and detector (see signal_stats.h).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/signals/signal_stats.h"
#include "broker/signals/signals.h"

#define BUCKETS 5

struct acc {
    long signals, observed, escalations, judged, confirmed, false_pos;
    double brier_sum;
    long b_signals[BUCKETS], b_judged[BUCKETS], b_confirmed[BUCKETS];
    double b_conf_sum[BUCKETS];
    double *contain; /* seconds, grown as needed */
    size_t n_contain, cap_contain;
};

static int has_status(const json_t *rec, const char *status)
{
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(rec, "responses"), i, r)
    {
        const char *s = json_string_value(json_object_get(r, "status"));
        if (s != NULL && strcmp(s, status) == 0)
            return 1;
    }
    return 0;
}

static int bucket_of(double c)
{
    int b = (int)(c * BUCKETS);
    return b < 0 ? 0 : b >= BUCKETS ? BUCKETS - 1 : b;
}

static ztb_err add(struct acc *a, const json_t *rec, const json_t *outcome)
{
    double conf = json_number_value(json_object_get(rec, "confidence"));
    int b = bucket_of(conf);
    const char *mode = json_string_value(json_object_get(rec, "mode"));
    a->signals++;
    a->b_signals[b]++;
    a->b_conf_sum[b] += conf;
    if (mode != NULL && strcmp(mode, "observe") == 0)
        a->observed++;
    if (has_status(rec, "pending_operator"))
        a->escalations++;
    const char *v = json_string_value(json_object_get(outcome, "outcome"));
    if (v != NULL && (strcmp(v, "confirmed") == 0 || strcmp(v, "false_positive") == 0)) {
        int y = v[0] == 'c';
        a->judged++;
        a->b_judged[b]++;
        a->confirmed += y;
        a->b_confirmed[b] += y;
        a->false_pos += !y;
        a->brier_sum += (conf - y) * (conf - y);
    }
    json_int_t received = json_integer_value(json_object_get(rec, "received"));
    json_int_t event = json_integer_value(json_object_get(rec, "event_timestamp"));
    json_int_t contained = 0;
    if (json_is_integer(json_object_get(outcome, "contained_at")))
        contained = json_integer_value(json_object_get(outcome, "contained_at"));
    else if (has_status(rec, "applied"))
        contained = received;
    if (contained > 0) {
        json_int_t start = event > 0 && event <= received ? event : received;
        if (a->n_contain == a->cap_contain) {
            size_t nc = a->cap_contain ? a->cap_contain * 2 : 64;
            double *p = realloc(a->contain, nc * sizeof(*p));
            if (p == NULL)
                return ZTB_ERR_NOMEM;
            a->contain = p;
            a->cap_contain = nc;
        }
        a->contain[a->n_contain++] = contained >= start ? (double)(contained - start) : 0.0;
    }
    return ZTB_OK;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The nearest-rank percentile p (0..100) of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
    double exact = p / 100.0 * (double)n;
    size_t rank = (size_t)exact;
    if ((double)rank < exact)
        rank++; /* the ceiling, without libm */
    return v[rank > 0 ? rank - 1 : 0];
}

static json_t *ratio(long num, long den)
{
    return den > 0 ? json_real((double)num / (double)den) : json_null();
}

static json_t *render(struct acc *a)
{
    static const char *const names[BUCKETS] = {"0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8",
                                               "0.8-1.0"};
    json_t *cal = json_array();
    for (int b = 0; b < BUCKETS; b++) {
        if (a->b_signals[b] == 0)
            continue;
        json_array_append_new(
            cal, json_pack("{s:s,s:I,s:I,s:I,s:f,s:o}", "bucket", names[b], "signals",
                           (json_int_t)a->b_signals[b], "judged", (json_int_t)a->b_judged[b],
                           "confirmed", (json_int_t)a->b_confirmed[b], "mean_confidence",
                           a->b_conf_sum[b] / (double)a->b_signals[b], "observed_rate",
                           ratio(a->b_confirmed[b], a->b_judged[b])));
    }
    json_t *contain;
    if (a->n_contain > 0) {
        qsort(a->contain, a->n_contain, sizeof(double), cmp_double);
        contain = json_pack("{s:I,s:f,s:f}", "n", (json_int_t)a->n_contain, "p50",
                            percentile(a->contain, a->n_contain, 50), "p95",
                            percentile(a->contain, a->n_contain, 95));
    } else {
        contain = json_pack("{s:i,s:n,s:n}", "n", 0, "p50", "p95");
    }
    return json_pack("{s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:o}", "signals",
                     (json_int_t)a->signals, "observed", (json_int_t)a->observed, "escalations",
                     (json_int_t)a->escalations, "escalation_rate",
                     ratio(a->escalations, a->signals), "judged", (json_int_t)a->judged,
                     "confirmed", (json_int_t)a->confirmed, "false_positives",
                     (json_int_t)a->false_pos, "precision", ratio(a->confirmed, a->judged),
                     "false_positive_rate", ratio(a->false_pos, a->judged), "brier",
                     a->judged > 0 ? json_real(a->brier_sum / (double)a->judged) : json_null(),
                     "calibration", cal, "containment_s", contain);
}

/* "source:NAME" or "detector:TYPE" of a record, into key. */
static void key_of(const json_t *rec, char *key, size_t cap)
{
    const char *src = json_string_value(json_object_get(rec, "source"));
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (src != NULL && strcmp(src, SIGNALS_BROKER_SOURCE) == 0)
        snprintf(key, cap, "detector:%s", type ? type : "?");
    else
        snprintf(key, cap, "source:%s", src ? src : "?");
}

ztb_err signal_stats(const json_t *records, const json_t *outcomes, json_t **out)
{
    if (!json_is_array(records) || out == NULL)
        return ZTB_ERR_INVALID_ARG;
    *out = NULL;
    /* keys in first-seen order: a small linear table (sources are few) */
    size_t nkeys = 0, capkeys = 0;
    char(*keys)[160] = NULL;
    struct acc *accs = NULL, total;
    memset(&total, 0, sizeof(total));
    ztb_err rv = ZTB_OK;
    size_t i;
    const json_t *rec;
    json_array_foreach(records, i, rec)
    {
        const char *id = json_string_value(json_object_get(rec, "id"));
        const json_t *oc = id ? json_object_get(outcomes, id) : NULL;
        char key[160];
        key_of(rec, key, sizeof(key));
        size_t k = 0;
        while (k < nkeys && strcmp(keys[k], key) != 0)
            k++;
        if (k == nkeys) {
            if (nkeys == capkeys) {
                size_t nc = capkeys ? capkeys * 2 : 16;
                void *nk = realloc(keys, nc * sizeof(*keys));
                if (nk == NULL) {
                    rv = ZTB_ERR_NOMEM;
                    break;
                }
                keys = nk;
                void *na = realloc(accs, nc * sizeof(*accs));
                if (na == NULL) {
                    rv = ZTB_ERR_NOMEM;
                    break;
                }
                accs = na;
                capkeys = nc;
            }
            memcpy(keys[nkeys], key, sizeof(key));
            memset(&accs[nkeys], 0, sizeof(accs[nkeys]));
            nkeys++;
        }
        if ((rv = add(&accs[k], rec, oc)) != ZTB_OK || (rv = add(&total, rec, oc)) != ZTB_OK)
            break;
    }
    if (rv == ZTB_OK) {
        json_t *by = json_object();
        for (size_t k = 0; k < nkeys; k++)
            json_object_set_new(by, keys[k], render(&accs[k]));
        *out = json_pack("{s:o,s:o}", "total", render(&total), "by", by);
        if (*out == NULL)
            rv = ZTB_ERR_NOMEM;
    }
    for (size_t k = 0; k < nkeys; k++)
        free(accs[k].contain);
    free(total.contain);
    free(accs);
    free(keys);
    return rv;
}
