/*
 * diag.h - the list of problems found in a policy document.
 *
 * Loading does not stop at the first problem: it reports as many as it can
 * (up to POLICY_DIAG_MAX; the rest are counted), each naming where it is. A
 * syntax error has a line and column; a problem of meaning names the thing it
 * is about (`rule "refund-small"`, `group "finance"`, `settings`) and the
 * field inside it (`obligations.ttl`). Every string is copied into the list's
 * own storage, so the list outlives the document and the failed policy. Text
 * that came from the document is escaped before it is put in a message, so a
 * message never carries a control character.
 *
 * Must never: hold pointers into the document or the failed policy.
 */
#ifndef ZTB_POLICY_DIAG_H
#define ZTB_POLICY_DIAG_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/arena.h"
#include "common/buf.h"

#define POLICY_DIAG_MAX 200

typedef struct policy_diag_msg {
    uint32_t line;     /* 1-based; 0 for problems of meaning */
    uint32_t column;   /* 1-based; 0 when unknown */
    const char *where; /* `rule "x"`, `group "y"`, `settings`... or NULL */
    const char *field; /* e.g. `obligations.ttl`, or NULL */
    const char *text;  /* what is wrong, never NULL */
} policy_diag_msg;

typedef struct policy_diag {
    policy_diag_msg *msgs;
    size_t n;       /* messages kept */
    size_t dropped; /* messages beyond POLICY_DIAG_MAX, counted only */
    size_t cap;
    ztb_arena arena; /* the strings */
    ztb_err err;     /* NOMEM if a message could not be stored */
} policy_diag;

/* An empty list. */
void policy_diag_init(policy_diag *d);

/*
 * Add one message. where and field may be NULL; all strings are copied.
 * Never fails visibly: on out-of-memory the message is counted as dropped and
 * d->err set, so the caller still knows the document was refused.
 */
void policy_diag_add(policy_diag *d, uint32_t line, uint32_t column, const char *where,
                     const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Total problems seen (kept + dropped). */
static inline size_t policy_diag_count(const policy_diag *d)
{
    return d->n + d->dropped;
}

/*
 * Append one message as a line of text (no newline): "LINE:COL: TEXT" for
 * syntax, "WHERE: FIELD: TEXT" for meaning. Returns the buffer's error.
 */
ztb_err policy_diag_format(const policy_diag_msg *m, ztb_buf *out);

/* Release the list's storage; it is empty (and reusable) afterwards. */
void policy_diag_free(policy_diag *d);

/*
 * Quote document text for a message: JSON string escaping inside double
 * quotes, cut to 64 bytes with "..." when longer. Writes into out (cap bytes,
 * at least 80 recommended) and returns out.
 */
const char *policy_diag_quote(char *out, size_t cap, const char *s, size_t n);

#endif /* ZTB_POLICY_DIAG_H */
