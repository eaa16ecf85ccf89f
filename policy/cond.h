/*
 * cond.h - conditions on the request: time, delegation, source network,
 * numeric limits inside authorization_details.
 *
 * A rule's conditions all have to hold for the rule to apply. Each condition
 * evaluates to TRUE, FALSE or UNKNOWN; UNKNOWN means the request lacks what
 * the condition reads (no source address, no authorization_details, no
 * number at the path). The engine fails closed both ways: an allow rule
 * applies only when every condition is TRUE, and a deny rule fires unless one
 * of its conditions is FALSE (UNKNOWN fires it). Limits are read per entry of
 * authorization_details: an allow rule needs every entry (of the given type)
 * to carry a number within bounds; a deny rule fires if any entry does, or if
 * any lacks the number.
 *
 * This file also has the small parsers of condition values (times, days,
 * CIDRs, offsets), shared by the loader and by callers that build requests
 * (policy_ip_parse). Evaluation never allocates; reading the JSON uses only
 * jansson lookups.
 */
#ifndef ZTB_POLICY_COND_H
#define ZTB_POLICY_COND_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <ztb/error.h>

#include "policy/glob.h"
#include "policy/types.h"

typedef enum policy_tri {
    POLICY_FALSE = 0,
    POLICY_TRUE = 1,
    POLICY_UNKNOWN = 2,
} policy_tri;

enum policy_delegation {
    POLICY_DELEGATION_ANY = 0,
    POLICY_DELEGATION_REQUIRED = 1,
    POLICY_DELEGATION_FORBIDDEN = 2,
    POLICY_DELEGATION_RESTRICTED = 3, /* required, and the subject token had may_act */
};

/* Largest magnitude of a limit bound: integers up to it are exact in a double. */
#define POLICY_LIMIT_MAX         9007199254740992.0 /* 2^53 */
#define POLICY_PATH_MAX_SEGMENTS 8

/* Local time window [start, end) in minutes of the day (end < start wraps past midnight). */
struct policy_window {
    uint8_t days;   /* bit 0 = Sunday ... bit 6 = Saturday */
    uint16_t start; /* 0..1439 */
    uint16_t end;   /* 1..1440 */
    int16_t offset; /* minutes east of UTC */
};

struct policy_cidr {
    uint8_t family; /* 4 or 6 */
    uint8_t prefix;
    uint8_t addr[16];
};

struct policy_limit {
    const char *const *seg; /* the path, one object key per segment */
    uint32_t n_seg;
    const char *type; /* only entries whose "type" equals this; NULL for all */
    uint8_t has_min, has_max;
    double min, max;    /* inclusive bounds for real values */
    int64_t imin, imax; /* the same bounds for integer values: ceil(min), floor(max) */
};

struct policy_conditions {
    uint8_t any; /* 1 if at least one condition is present */
    uint8_t has_not_before, has_not_after;
    uint8_t delegation; /* enum policy_delegation */
    int64_t not_before, not_after;
    uint32_t n_windows, n_act, n_cidrs, n_limits;
    const struct policy_window *windows;
    const policy_glob *act;
    const struct policy_cidr *cidrs;
    const struct policy_limit *limits;
    /* each condition as written, for decisions and explain */
    const char *desc_not_before, *desc_not_after, *desc_windows, *desc_delegation, *desc_act,
        *desc_source_ip;
    const char *const *desc_limits;
    const char *canon; /* all conditions in one canonical text ("" when none) */
};

/* "HH:MM", 00:00..24:00 -> minutes. MALFORMED otherwise. */
ztb_err policy_parse_hhmm(const char *s, uint16_t *minutes);

/* "+HH:MM" / "-HH:MM" (|offset| <= 14:00) -> minutes east of UTC. */
ztb_err policy_parse_utc_offset(const char *s, int16_t *minutes);

/* "sun".."sat" -> bit number 0..6. */
ztb_err policy_parse_day(const char *s, unsigned *bit);

/* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" (years 1970..9999) -> Unix seconds. */
ztb_err policy_parse_time(const char *s, int64_t *out);

/* Format Unix seconds as "YYYY-MM-DDTHH:MM:SSZ" into out (at least 21 bytes). */
void policy_format_time(int64_t t, char *out, size_t cap);

/* "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128). Host bits must be 0. */
ztb_err policy_parse_cidr(const char *s, struct policy_cidr *out);

/*
 * Parse an IPv4 or IPv6 address (no prefix). An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) becomes the IPv4 address, so one rule covers both forms.
 */
ztb_err policy_ip_parse(const char *s, policy_ip *out);

/* 1 if ip (family 4 or 6) lies in c. IPv4-mapped addresses must be normalised first. */
int policy_cidr_contains(const struct policy_cidr *c, const policy_ip *ip);

/* 1 if Unix time now falls in the window. */
int policy_window_contains(const struct policy_window *w, int64_t now);

/*
 * One limit against authorization_details (see the file comment for the
 * per-entry rule). for_deny selects the deny reading (any entry) over the
 * allow reading (every entry).
 */
policy_tri policy_limit_eval(const struct policy_limit *l, const json_t *ad, int for_deny);

/*
 * All conditions of a rule. effect is POLICY_ALLOW or POLICY_DENY. Returns
 * TRUE when every condition holds, FALSE when one does not, UNKNOWN when none
 * is FALSE but one cannot be decided. *failed (if not NULL) is set to the
 * description of the first FALSE condition, else the first UNKNOWN one, else
 * NULL. Never allocates.
 */
policy_tri policy_cond_eval(const struct policy_conditions *c, const policy_context *ctx,
                            policy_effect effect, const char **failed);

#endif /* ZTB_POLICY_COND_H */
