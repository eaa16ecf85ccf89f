/* errdetail.c - per-thread error details (see errdetail.h). */
#include <stdarg.h>
#include <stdio.h>

#include "sdk/src/errdetail.h"

static __thread const void *det_handle;
static __thread const char *det_msg;
static __thread char det_buf[256];

ztb_err errdetail_set(const void *handle, ztb_err err, const char *static_msg)
{
    det_handle = handle;
    det_msg = static_msg;
    return err;
}

ztb_err errdetail_setf(const void *handle, ztb_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(det_buf, sizeof(det_buf), fmt, ap);
    va_end(ap);
    for (char *p = det_buf; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' '; /* a detail is one line a log can hold */
    det_handle = handle;
    det_msg = det_buf;
    return err;
}

const char *errdetail_get(const void *handle)
{
    return det_msg != NULL && det_handle == handle ? det_msg : "";
}
