/*
 * traceparent.h - the W3C Trace Context `traceparent` request header
 * (https://www.w3.org/TR/trace-context/, version 00), read strictly.
 *
 * The broker only carries the trace id into its access log and audit
 * records so that a gateway's or an agent's trace can be followed into
 * the broker; it never forwards the header. Anything not exactly a
 * version-00 header is ignored (a request is never refused for it).
 */
#ifndef ZTB_BROKER_HTTP_TRACEPARENT_H
#define ZTB_BROKER_HTTP_TRACEPARENT_H

#include <stddef.h>

/* Length of a version-00 traceparent and of its trace id in hex. */
#define TRACEPARENT_LEN 55
#define TRACE_ID_HEX    32

/*
 * Read value (len bytes, not necessarily NUL-terminated): exactly
 * "00-" 32 lowercase hex (the trace id, not all zeros) "-" 16 lowercase hex
 * (the parent id, not all zeros) "-" 2 lowercase hex (flags). Returns 1
 * and the trace id, NUL-terminated, in trace_id; else 0 and trace_id "".
 */
int traceparent_read(const char *value, size_t len, char trace_id[TRACE_ID_HEX + 1]);

#endif /* ZTB_BROKER_HTTP_TRACEPARENT_H */
