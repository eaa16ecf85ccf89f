/*
 * admin_inventory.c - agents' baselines and the inventory, for operators
 * (see admin_inventory.h). Reads Redis through store_baseline.h; the only
 * change it makes is a new learning window, which is audited.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "broker/admin/admin.h"
#include "broker/admin/admin_inventory.h"
#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/store/store.h"
#include "broker/store/store_baseline.h"

/* The baseline with the agent's activity added: what `agent baseline` shows. */
static void baseline_answer(struct http_resp *resp, const char *name)
{
    json_t *o = NULL;
    ztb_err rv = store_baseline_get(name, &o);
    int64_t last = 0, day = 0;
    if (rv == ZTB_OK)
        rv = store_activity_get(name, &last, &day);
    if (rv != ZTB_OK) {
        json_decref(o);
        admin_store_error(resp, rv, rv == ZTB_ERR_NOT_FOUND ? "no such agent" : "cannot read");
        return;
    }
    json_object_set_new(o, "last_seen", last > 0 ? json_integer(last) : json_null());
    json_object_set_new(o, "tokens_last_day", json_integer(day));
    http_resp_json_value(resp, 200, o);
}

void handle_admin_agent_baseline(struct http_req *req, struct http_resp *resp, const char *name)
{
    if (strcmp(req->method, "GET") == 0) {
        baseline_answer(resp, name);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    static const char *const fields[] = {"relearn", "for", NULL};
    json_t *f = json_object_get(body, "for");
    unsigned learn = broker_of(req)->cfg.baseline_learn_s;
    int ok = admin_only_fields(body, fields, resp);
    if (ok && !json_is_true(json_object_get(body, "relearn"))) {
        http_resp_error(resp, 400, "invalid_request", "send {\"relearn\": true}");
        ok = 0;
    }
    if (ok && f != NULL) {
        if (!json_is_integer(f) || json_integer_value(f) < 1 ||
            json_integer_value(f) > 366 * 86400) {
            http_resp_error(resp, 400, "invalid_request", "for: 1..31622400 seconds");
            ok = 0;
        } else {
            learn = (unsigned)json_integer_value(f);
        }
    }
    if (ok && learn == 0) {
        http_resp_error(resp, 400, "invalid_request",
                        "baselines are off (baseline_learn = 0): name a window with \"for\"");
        ok = 0;
    }
    json_decref(body);
    if (!ok)
        return;
    int64_t until = 0;
    ztb_err rv = store_baseline_start(name, learn, 0, &until);
    if (rv != ZTB_OK) {
        admin_store_error(resp, rv, rv == ZTB_ERR_NOT_FOUND ? "no such agent" : "cannot relearn");
        return;
    }
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    audit("admin.baseline_relearn", actor, 1, ZTB_F_STR("agent", name), ZTB_F_INT("for", learn),
          ZTB_F_INT("until", until));
    baseline_answer(resp, name);
}
