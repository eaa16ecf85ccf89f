/*
 * unknown_report.h - the report a gateway's verifier sends about callers it
 * refused for carrying no ztb token or a token that is not this broker's
 * (docs/protocol.md, "Unknown clients"): the one encoder (libztb's
 * verifier) and the one strict decoder (the broker's detector worker).
 *
 * A verifier counts such callers by reason and source (the caller's address
 * or a label the gateway gives) for a while, then LPUSHes one report onto
 * the list ZTB_WIRE_UNKNOWN_REPORTS_KEY and LTRIMs it to
 * UNKNOWN_REPORT_KEEP reports; every broker RPOPs reports from the list
 * and adds their counts to the inventory's unknown clients, raising
 * shadow_ai where a source crosses the threshold. A report is one compact
 * JSON object, members in this order:
 *
 *   {"v":1,"gateway":<audience>,"window":<seconds>,
 *    "clients":[{"reason":"no_token"|"foreign_token","source":<label>,
 *                "count":<n>},...]}
 *
 * A source is 1..64 of A-Z a-z 0-9 . _ : - (an IPv4 or IPv6 address, a
 * host name, a label); "_other" holds the callers of sources that did not
 * fit the verifier's bounded table. Decoders skip members they do not know.
 *
 * What a report can do: add counts, nothing else. Whoever can write the
 * list (the verifiers' Redis user) can make sources look busier than they
 * are; it cannot revoke, quarantine or name an agent (docs/redis.md).
 *
 * Must never: accept a report over UNKNOWN_REPORT_MAX bytes, with more than
 * UNKNOWN_REPORT_MAX_CLIENTS entries, a reason it does not know, a source
 * outside the label alphabet, or a count outside 1..UNKNOWN_COUNT_MAX.
 */
#ifndef ZTB_WIRE_UNKNOWN_REPORT_H
#define ZTB_WIRE_UNKNOWN_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/buf.h"

#define UNKNOWN_REPORT_VERSION     1
#define UNKNOWN_REPORT_MAX         16384 /* bytes of one report */
#define UNKNOWN_REPORT_MAX_CLIENTS 66    /* entries of one report (64 sources, 2 x _other) */
#define UNKNOWN_REPORT_KEEP        1000  /* reports the list keeps while no broker reads it */
#define UNKNOWN_LABEL_MAX          64    /* bytes of a source label */
#define UNKNOWN_GATEWAY_MAX        128   /* bytes of the gateway's name (its audience) */
#define UNKNOWN_COUNT_MAX          1000000000
#define UNKNOWN_OTHER_SOURCE       "_other"

enum unknown_reason {
    UNKNOWN_NO_TOKEN = 0,      /* "no_token": no token at all */
    UNKNOWN_FOREIGN_TOKEN = 1, /* "foreign_token": a token that is not this broker's */
    UNKNOWN_REASONS_N
};

struct unknown_client {
    enum unknown_reason reason;
    char source[UNKNOWN_LABEL_MAX + 1];
    int64_t count;
};

struct unknown_report {
    char gateway[UNKNOWN_GATEWAY_MAX + 1];
    int64_t window_s; /* the seconds the counts cover (0: not said) */
    size_t n;
    struct unknown_client c[UNKNOWN_REPORT_MAX_CLIENTS];
};

/* "no_token" or "foreign_token"; NULL for anything else. */
const char *unknown_reason_name(enum unknown_reason r);

/* 1 if s is a source label (1..64 of A-Z a-z 0-9 . _ : -), else 0. */
int unknown_label_ok(const char *s);

/*
 * Append r's JSON text (the shape above) to out. INVALID_ARG for a report
 * the decoder would refuse (an empty or unprintable gateway, a bad entry,
 * none or too many); else the buffer's error.
 */
ztb_err unknown_report_write(const struct unknown_report *r, ztb_buf *out);

/*
 * Parse one report json[0..n) (strict JSON, common/json_reader.h) into
 * *out. UNSUPPORTED for another version; TOO_LARGE over
 * UNKNOWN_REPORT_MAX bytes or UNKNOWN_REPORT_MAX_CLIENTS entries; JSON or
 * MALFORMED for anything else wrong (a member missing or mistyped, an
 * unknown reason, a source that is not a label, a count out of range).
 */
ztb_err unknown_report_parse(const void *json, size_t n, struct unknown_report *out);

#endif /* ZTB_WIRE_UNKNOWN_REPORT_H */
