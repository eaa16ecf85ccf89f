/*
 * errdetail.h - the per-thread, per-handle detail of the last error.
 *
 * Public calls that fail record why, for ztb_agent_errdetail() and
 * ztb_verifier_errdetail(): a static string (free: the verification reject
 * path records one with two stores) or a formatted one copied into a
 * thread-local buffer. The record names the handle it belongs to, so asking
 * one handle never shows another's error. Details must never contain a
 * token, key, credential or password: callers pass only fixed text, names
 * and the broker's sanitised error descriptions.
 */
#ifndef ZTB_SDK_ERRDETAIL_H
#define ZTB_SDK_ERRDETAIL_H

#include <ztb/error.h>

/* Record a static message for handle (NULL: a constructor that failed); returns err. */
ztb_err errdetail_set(const void *handle, ztb_err err, const char *static_msg);

/* Record a formatted message (copied, cut at 255 bytes, controls replaced); returns err. */
ztb_err errdetail_setf(const void *handle, ztb_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The calling thread's last detail if it belongs to handle, else "". */
const char *errdetail_get(const void *handle);

#endif /* ZTB_SDK_ERRDETAIL_H */
