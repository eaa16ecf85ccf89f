/*
 * error_response.h - the error answers of the broker's HTTP API, as both
 * sides read them: RFC 6749 §5.2 JSON with, beside the RFC's "error" code,
 * the machine-readable ztb error name (member ZTB_WIRE_ERROR_MEMBER):
 *
 *   {"error":"access_denied","error_description":"the agent is quarantined",
 *    "ztb_error":"QUARANTINED"}
 *
 * The name is ztb_err_name() of a stable ztb_err (sdk/include/ztb/error.h),
 * so it never changes once published; the description is English for
 * people and may change at any time. Clients map the name, and only when a
 * response has none (an older broker) the RFC code (error_response_for_code),
 * never the description.
 *
 * Must never: put a secret in a description (the writer escapes, it does
 * not redact).
 */
#ifndef ZTB_WIRE_ERROR_RESPONSE_H
#define ZTB_WIRE_ERROR_RESPONSE_H

#include <stddef.h>

#include <ztb/error.h>

#include "common/buf.h"

/*
 * The ztb error an RFC 6749 (or ztb) error code stands for when nothing more
 * specific is known, e.g. "access_denied" -> ACCESS_DENIED, "slow_down" ->
 * RATE_LIMITED. Another code: INVALID_REQUEST for a 4xx status, else HTTP.
 * No code (NULL: the answer was no error JSON): RATE_LIMITED for 429,
 * UNAVAILABLE for 503, else HTTP.
 */
ztb_err error_response_for_code(const char *code, long status);

/*
 * The ztb_err whose ztb_err_name() is name[0..n) (e.g. "QUARANTINED"), or
 * ZTB_OK if none is (an unknown, empty or "OK" name: the caller falls back
 * to the RFC code).
 */
ztb_err error_response_name_to_err(const char *name, size_t n);

/*
 * Append {"error":code,"error_description":desc,"ztb_error":NAME} to out
 * (desc NULL: no description); code and desc are JSON-escaped. err must not
 * be ZTB_OK. Returns the buffer's error.
 */
ztb_err error_response_write(ztb_buf *out, const char *code, ztb_err err, const char *desc);

#endif /* ZTB_WIRE_ERROR_RESPONSE_H */
