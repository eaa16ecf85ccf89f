/*
 * reload.c - policy reloads (see reload.h).
 */
#include <stdio.h>
#include <string.h>

#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/http/metrics.h"
#include "broker/admin/reload.h"
#include "common/log.h"
#include "policy/policy.h"

static json_t *diag_json(const policy_diag *d, const char *path)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < d->n; i++) {
        char line[512];
        ztb_buf b;
        ztb_buf_init_fixed(&b, line, sizeof(line));
        policy_diag_format(&d->msgs[i], &b);
        ztb_log(ZTB_LOG_ERROR, "policy.error", ZTB_F_STR("file", path), ZTB_F_STR("detail", line));
        json_array_append_new(arr, json_string(line));
    }
    if (d->dropped > 0) {
        char more[64];
        snprintf(more, sizeof(more), "... and %zu more", d->dropped);
        json_array_append_new(arr, json_string(more));
    }
    return arr;
}

ztb_err broker_policy_reload(struct broker *b, const char *actor, char digest_out[65],
                             json_t **problems)
{
    const struct broker_config *cfg = &b->cfg;
    if (problems != NULL)
        *problems = NULL;
    if (cfg->policy_file[0] == '\0')
        return ZTB_ERR_STATE;
    policy_diag d;
    policy_diag_init(&d);
    ztb_err rv = policy_holder_reload_file(b->policy, cfg->policy_file, &d);
    if (rv != ZTB_OK) {
        json_t *msgs = diag_json(&d, cfg->policy_file);
        policy_diag_free(&d);
        metrics_add(METRIC_POLICY_RELOAD_FAILURES, 1);
        audit("policy.reload_refused", actor, 1, ZTB_F_STR("file", cfg->policy_file), ZTB_F_ERR(rv),
              ZTB_F_INT("problems", (int64_t)json_array_size(msgs)));
        if (problems != NULL)
            *problems = msgs;
        else
            json_decref(msgs);
        return rv;
    }
    policy_diag_free(&d);
    policy *p = policy_holder_acquire(b->policy);
    const char *digest = p ? policy_digest(p) : "";
    audit("policy.loaded", actor, 1, ZTB_F_STR("file", cfg->policy_file),
          ZTB_F_STR("digest", digest));
    ztb_log(ZTB_LOG_INFO, "policy.loaded", ZTB_F_STR("file", cfg->policy_file),
            ZTB_F_STR("digest", digest), ZTB_F_INT("rules", p ? (int64_t)policy_rule_count(p) : 0));
    if (digest_out != NULL)
        snprintf(digest_out, 65, "%s", digest);
    metrics_add(METRIC_POLICY_RELOADS, 1);
    policy_holder_release(p);
    return ZTB_OK;
}
