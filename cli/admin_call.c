/*
 * admin_call.c - ztbctl's calls to the broker's admin API: a JSON body out,
 * a JSON answer back, the broker's refusals and transport failures printed
 * for the operator. The HTTP is the shared admin client's
 * (admin_client.h), the one the integration tests use too.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/admin_client.h"
#include "common/secret.h"
#include "ztbctl.h"

int ztbctl_admin(struct ztbctl *ctl, const char *method, const char *path, json_t *body,
                 json_t **out, long *status)
{
    *out = NULL;
    *status = 0;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body != NULL && text == NULL) {
        ztbctl_err("out of memory");
        return -1;
    }
    int rc = ztbctl_admin_text(ctl, method, path, text, text ? strlen(text) : 0, out, status);
    ztb_free_secret_str(text); /* it may hold a token (revoke token -) */
    return rc;
}

/* The invoking user's name when ztbctl runs as root under sudo (the broker
 * attributes the call to them), else NULL. Points into the environment. */
static const char *ztbctl_sudo_user(void)
{
    const char *u = getenv("SUDO_USER");
    if (geteuid() == 0 && getuid() == 0 && u != NULL && u[0] != '\0')
        return u;
    return NULL;
}

int ztbctl_admin_text(struct ztbctl *ctl, const char *method, const char *path, const char *text,
                      size_t len, json_t **out, long *status)
{
    *out = NULL;
    *status = 0;
    struct ztb_admin_request rq = {
        .socket_path = ctl->socket_path,
        .method = method,
        .path = path,
        .content_type = text ? "application/json" : NULL,
        .body = text,
        .body_len = text ? len : 0,
        .sudo_user = ztbctl_sudo_user(),
    };
    struct ztb_admin_response rs;
    char why[256];
    ztb_err rv = ztb_admin_call(&rq, &rs, why, sizeof(why));
    if (rv == ZTB_ERR_UNAVAILABLE) {
        /* say which: a permission problem (name the path and its owner),
         * no socket at all, or a socket nobody listens on */
        char problem[512];
        ztbctl_path_problem(ctl->socket_path, 1, problem, sizeof(problem));
        if (strncmp(problem, "no such", 7) == 0)
            ztbctl_err("cannot reach the admin socket %s: %s: nothing is listening there (is "
                       "ztb-broker running? --socket or $ZTB_ADMIN_SOCKET name another)",
                       ctl->socket_path, problem);
        else if (problem[0] != '\0')
            ztbctl_err("cannot reach the admin socket %s: %s (--socket or $ZTB_ADMIN_SOCKET name "
                       "another)",
                       ctl->socket_path, problem);
        else
            ztbctl_err("cannot reach the admin socket %s: nothing is listening on it (%s): is "
                       "ztb-broker running? (--socket or $ZTB_ADMIN_SOCKET name another)",
                       ctl->socket_path, why);
        return -1;
    }
    if (rv != ZTB_OK) {
        ztbctl_err("%s", rv == ZTB_ERR_NOMEM ? "out of memory" : "bad admin API request");
        return -1;
    }
    *status = rs.status;
    json_error_t e;
    *out = rs.len > 0 ? json_loads(rs.body, 0, &e) : NULL;
    ztb_admin_response_free(&rs);
    if (*out == NULL) {
        ztbctl_err("the broker answered HTTP %ld with something that is not JSON", *status);
        return -1;
    }
    if (*status >= 400) {
        const char *d = json_string_value(json_object_get(*out, "error_description"));
        const char *code = json_string_value(json_object_get(*out, "error"));
        ztbctl_err("%s (HTTP %ld %s)", d ? d : "request failed", *status, code ? code : "");
        return -1;
    }
    return 0;
}
