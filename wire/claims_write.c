/*
 * claims_write.c - the broker's writer of access token claims (see
 * claims.h); claims_read.c reads exactly this shape.
 */
#include <string.h>

#include "common/base64url.h"
#include "common/guard.h"
#include "common/secret.h"
#include "wire/claims.h"
#include "wire/wire.h"

ztb_err claims_new_jti(struct token_claims *c)
{
    uint8_t r[16];
    ZTB_GUARD(ztb_random(r, sizeof(r)));
    return ztb_b64url_encode(r, sizeof(r), c->jti, sizeof(c->jti), NULL);
}

static void str(ztb_buf *b, const char *name, const char *v)
{
    ztb_buf_append_str(b, name);
    ztb_buf_append_byte(b, '"');
    ztb_buf_append_json_escaped(b, v, strlen(v));
    ztb_buf_append_byte(b, '"');
}

ztb_err claims_write(const struct token_claims *c, ztb_buf *b)
{
    ZTB_ENSURE(c->iss && c->agent && c->spiffe_id && c->audience && c->action, ZTB_ERR_INVALID_ARG);
    str(b, "{\"iss\":", c->iss);
    str(b, ",\"sub\":", c->spiffe_id);
    str(b, ",\"aud\":", c->audience);
    ztb_buf_append_str(b, ",\"iat\":");
    ztb_buf_append_i64(b, c->iat);
    ztb_buf_append_str(b, ",\"nbf\":");
    ztb_buf_append_i64(b, c->iat);
    ztb_buf_append_str(b, ",\"exp\":");
    ztb_buf_append_i64(b, c->exp);
    str(b, ",\"jti\":", c->jti);
    str(b, ",\"client_id\":", c->spiffe_id);
    str(b, ",\"scope\":", c->action);
    if (c->details_json != NULL) {
        /* rendered by jansson from the parsed request object */
        ztb_buf_append_str(b, ",\"authorization_details\":[");
        ztb_buf_append_str(b, c->details_json);
        ztb_buf_append_byte(b, ']');
    } else {
        str(b,
            ",\"authorization_details\":[{\"type\":\"" ZTB_WIRE_DETAIL_TYPE_ACTION
            "\",\"actions\":[",
            c->action);
        str(b, "],\"locations\":[", c->audience);
        ztb_buf_append_byte(b, ']');
        if (c->resource != NULL && c->resource[0] != '\0')
            str(b, ",\"identifier\":", c->resource);
        ztb_buf_append_str(b, "}]");
    }
    if (c->act_sub != NULL) {
        str(b, ",\"act\":{\"sub\":", c->act_sub);
        ztb_buf_append_byte(b, '}');
    }
    if (c->may_act_sub != NULL) {
        str(b, ",\"may_act\":{\"sub\":", c->may_act_sub);
        ztb_buf_append_byte(b, '}');
    }
    if (c->cnf_jkt != NULL) {
        str(b, ",\"cnf\":{\"jkt\":", c->cnf_jkt);
        ztb_buf_append_byte(b, '}');
    } else if (c->cnf_x5t != NULL) {
        str(b, ",\"cnf\":{\"x5t#S256\":", c->cnf_x5t);
        ztb_buf_append_byte(b, '}');
    }
    str(b, ",\"ztb\":{\"agent\":", c->agent);
    ztb_buf_append_str(b, ",\"gen\":");
    ztb_buf_append_i64(b, c->generation);
    if (c->single_use)
        ztb_buf_append_str(b, ",\"single_use\":true");
    if (c->rule != NULL)
        str(b, ",\"rule\":", c->rule);
    ztb_buf_append_str(b, "}}");
    return ztb_buf_error(b);
}
