/*
 * audit_ocsf.h - one ztb audit record as an OCSF 1.1.0 event, for
 * `ztbctl audit export --format ocsf` (docs/audit.md, "OCSF mapping").
 *
 * Classes: Authentication (3002) for identity documents and sessions,
 * Authorize Session (3003) for tokens, Detection Finding (2004) for anomaly
 * signals, API Activity (6003) for everything else (approvals, revocations,
 * administration, the log's own events). Every event carries category_uid,
 * class_uid, activity_id, type_uid (class_uid * 100 + activity_id),
 * severity_id, status_id, time (ms since the epoch), message (the ztb
 * event), actor, metadata (product ztb, the record's replica, seq and
 * event) and, in unmapped, every member of the record the class has no
 * place for, so nothing is lost. The mapping reads only; a record that is
 * not one (no event, no seq) gives NULL.
 */
#ifndef ZTB_CLI_AUDIT_OCSF_H
#define ZTB_CLI_AUDIT_OCSF_H

#include <jansson.h>

#define AUDIT_OCSF_VERSION "1.1.0"

/* The OCSF event of record rec (a parsed audit line): a new object the
 * caller decrefs, or NULL if rec is not an audit record. */
json_t *audit_ocsf_map(json_t *rec);

/* "2026-12-03T21:04:05.678Z" as milliseconds since the epoch; -1 if ts
 * is not that shape. */
long long audit_ocsf_time_ms(const char *ts);

#endif /* ZTB_CLI_AUDIT_OCSF_H */
