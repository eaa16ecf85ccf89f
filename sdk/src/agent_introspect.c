/*
 * agent_introspect.c - asking the broker's /v1/introspect about a token,
 * as the agent, for verifiers that cannot reach Redis.
 *
 * Must never: put the token in an error detail.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ztb/agent.h>

#include "common/base64url.h"
#include "common/guard.h"
#include "common/secret.h"
#include "common/utf8.h"
#include "pki/csr.h"
#include "pki/dpop.h"
#include "pki/jws.h"
#include "pki/key.h"
#include "pki/spiffe.h"
#include "sdk/src/agent_impl.h"
#include "sdk/src/agent_internal.h"
#include "sdk/src/clock.h"
#include "sdk/src/errdetail.h"
#include "sdk/src/http_client.h"
#include "sdk/src/identity.h"
#include "sdk/src/sigpipe.h"

/* ---- introspection (for verifiers without Redis) -------------------------- */

ztb_err agent_introspect(ztb_agent *a, const char *token, int *active)
{
    *active = 0;
    char session[SESSION_MAX + 1] = "";
    ztb_buf form;
    ztb_buf_init_secret(&form, 16384);
    char url[URL_MAX + 64];
    agent_url_of(a, "/v1/introspect", url, sizeof(url));
    ztb_err rv = ZTB_OK;
    for (int round = 0; round < 2; round++) {
        ZTB_TRY(rv, agent_get_session(a, session));
        ztb_buf_reset(&form);
        agent_form_add(&form, "token", token);
        agent_form_add(&form, "client_assertion_type", ZTB_WIRE_ASSERTION_SESSION);
        agent_form_add(&form, "client_assertion", session);
        ZTB_TRY(rv, ztb_buf_error(&form));
        struct http_request rq = {.method = "POST",
                                  .url = url,
                                  .content_type = "application/x-www-form-urlencoded",
                                  .body = form.data,
                                  .body_len = form.len,
                                  .max_body = 65536};
        struct http_response rs;
        rv = http_client_do(a->http, &rq, &rs); /* no retries: the request is waiting */
        if (rv == ZTB_OK && rs.status == 200) {
            json_t *j = agent_body_json(&rs);
            json_t *act = j ? json_object_get(j, "active") : NULL;
            if (json_is_boolean(act))
                *active = json_is_true(act);
            else
                rv = ZTB_ERR_HTTP;
            json_decref(j);
        } else if (rv == ZTB_OK) {
            rv = agent_broker_error(a, &rs, AGENT_CTX_OTHER);
            if (rv == ZTB_ERR_INVALID_CLIENT && round == 0) {
                agent_drop_session(a, session);
                http_response_free(&rs);
                continue;
            }
            if (rv != ZTB_ERR_INVALID_CLIENT)
                rv = ZTB_ERR_UNAVAILABLE;
        }
        http_response_free(&rs);
        break;
    }
out:
    ztb_wipe(session, sizeof(session));
    ztb_buf_free(&form);
    return rv;
}
