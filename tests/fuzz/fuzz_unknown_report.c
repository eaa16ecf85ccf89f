/*
 * fuzz_unknown_report.c - verifiers' reports of unknown callers, as the
 * broker pops them from Redis, on arbitrary bytes.
 *
 * Checks, beyond memory safety: an accepted report is within every bound
 * (entries, labels, counts, reasons), and writing it again gives a report
 * the decoder reads back to the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/unknown_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct unknown_report r, back;
    if (unknown_report_parse(data, size, &r) != ZTB_OK)
        return 0;
    if (r.n > UNKNOWN_REPORT_MAX_CLIENTS || r.gateway[0] == '\0')
        abort();
    for (size_t i = 0; i < r.n; i++)
        if (unknown_reason_name(r.c[i].reason) == NULL || !unknown_label_ok(r.c[i].source) ||
            r.c[i].count < 1 || r.c[i].count > UNKNOWN_COUNT_MAX)
            abort();
    if (r.n == 0)
        return 0; /* valid to read, never written */
    ztb_buf b;
    ztb_buf_init(&b, UNKNOWN_REPORT_MAX * 2);
    if (unknown_report_write(&r, &b) != ZTB_OK)
        abort();
    if (unknown_report_parse(b.data, b.len, &back) != ZTB_OK || back.n != r.n ||
        strcmp(back.gateway, r.gateway) != 0)
        abort();
    for (size_t i = 0; i < r.n; i++)
        if (back.c[i].reason != r.c[i].reason || back.c[i].count != r.c[i].count ||
            strcmp(back.c[i].source, r.c[i].source) != 0)
            abort();
    ztb_buf_free(&b);
    return 0;
}
