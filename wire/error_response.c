/*
 * error_response.c - write and read the ztb error name of an error answer
 * (see error_response.h).
 *
 * One table maps RFC 6749 and ztb error codes to the ztb error each stands
 * for by default; the broker uses it for every answer that names nothing
 * more specific, and clients use it only for answers without a name.
 */
#include <string.h>

#include "common/guard.h"
#include "wire/error_response.h"
#include "wire/wire.h"

static const struct {
    const char *code;
    ztb_err err;
} defaults[] = {
    {"invalid_request", ZTB_ERR_INVALID_REQUEST},
    {"invalid_client", ZTB_ERR_INVALID_CLIENT},
    {"invalid_grant", ZTB_ERR_INVALID_REQUEST},
    {"unsupported_grant_type", ZTB_ERR_INVALID_REQUEST},
    {"invalid_scope", ZTB_ERR_INVALID_SCOPE},
    {"invalid_authorization_details", ZTB_ERR_INVALID_REQUEST},
    {"invalid_dpop_proof", ZTB_ERR_DPOP},
    {"access_denied", ZTB_ERR_ACCESS_DENIED},
    {"approval_required", ZTB_ERR_APPROVAL_REQUIRED},
    {"authorization_pending", ZTB_ERR_APPROVAL_PENDING},
    {"expired_token", ZTB_ERR_APPROVAL_EXPIRED},
    {"slow_down", ZTB_ERR_RATE_LIMITED},
    {"temporarily_unavailable", ZTB_ERR_UNAVAILABLE},
    {"server_error", ZTB_ERR_INTERNAL},
    {"not_found", ZTB_ERR_NOT_FOUND},
    {"conflict", ZTB_ERR_EXISTS},
    {"invalid_policy", ZTB_ERR_POLICY},
};

/* The highest ztb_err number (sdk/include/ztb/error.h ranges end at 599). */
#define ERR_LAST 599

ztb_err error_response_for_code(const char *code, long status)
{
    if (code == NULL) /* not an error answer at all (e.g. a proxy's page) */
        return status == 429   ? ZTB_ERR_RATE_LIMITED
               : status == 503 ? ZTB_ERR_UNAVAILABLE
                               : ZTB_ERR_HTTP;
    for (size_t i = 0; i < ZTB_ARRAY_LEN(defaults); i++)
        if (strcmp(code, defaults[i].code) == 0)
            return defaults[i].err;
    return status >= 400 && status < 500 ? ZTB_ERR_INVALID_REQUEST : ZTB_ERR_HTTP;
}

ztb_err error_response_name_to_err(const char *name, size_t n)
{
    if (name == NULL || n == 0 || n > 32)
        return ZTB_OK;
    /* only on error answers: a scan of the stable numbers is cheap enough */
    for (int e = 1; e <= ERR_LAST; e++) {
        const char *k = ztb_err_name((ztb_err)e);
        if (strncmp(k, name, n) == 0 && k[n] == '\0' && strcmp(k, "UNKNOWN") != 0)
            return (ztb_err)e;
    }
    return ZTB_OK;
}

ztb_err error_response_write(ztb_buf *b, const char *code, ztb_err err, const char *desc)
{
    ZTB_ENSURE(b != NULL && code != NULL && err != ZTB_OK, ZTB_ERR_INVALID_ARG);
    ztb_buf_append_str(b, "{\"error\":\"");
    ztb_buf_append_json_escaped(b, code, strlen(code));
    ztb_buf_append_byte(b, '"');
    if (desc != NULL) {
        ztb_buf_append_str(b, ",\"error_description\":\"");
        ztb_buf_append_json_escaped(b, desc, strlen(desc));
        ztb_buf_append_byte(b, '"');
    }
    ztb_buf_append_str(b, ",\"" ZTB_WIRE_ERROR_MEMBER "\":\"");
    ztb_buf_append_str(b, ztb_err_name(err)); /* [A-Z0-9_]: nothing to escape */
    ztb_buf_append_str(b, "\"}");
    return ztb_buf_error(b);
}
