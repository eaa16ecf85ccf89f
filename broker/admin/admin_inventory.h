/*
 * admin_inventory.h - the admin API's view of what agents do: an agent's
 * behavioural baseline, and the inventory of every agent (and of the
 * unknown clients gateways refused).
 *
 *   GET  /v1/agents/NAME/baseline        the baseline (store_baseline_get)
 *   POST /v1/agents/NAME/baseline        {"relearn": true, "for": SECONDS}:
 *                                        start learning again (audited)
 *   GET  /v1/inventory                   every agent (owner, description, the
 *                                        rules that name it, audiences used,
 *                                        last seen, tokens in the last day,
 *                                        identity expiry, status) and the
 *                                        unknown clients gateways refused
 */
#ifndef ZTB_BROKER_ADMIN_INVENTORY_H
#define ZTB_BROKER_ADMIN_INVENTORY_H

#include "broker/http/http.h"

/* /v1/agents/NAME/baseline for the agent name (a valid name). */
void handle_admin_agent_baseline(struct http_req *req, struct http_resp *resp, const char *name);

/* GET /v1/inventory. */
void handle_admin_inventory(struct http_req *req, struct http_resp *resp);

struct json_t;

/*
 * Read the optional "owner" and "description" of an agent registration
 * (body) into *owner, *description (pointing into body, NULL if absent).
 * 1 if they are fit (non-empty, printable, at most 128 and 512 bytes), else
 * 0 with resp filled.
 */
int admin_agent_meta_read(struct json_t *body, const char **owner, const char **description,
                          struct http_resp *resp);

/* Add owner, description, last_seen, tokens_last_day, tokens_last_hour and
 * denied_last_hour of agent name to o (`agent show`); 0 if Redis could not
 * answer. */
int admin_agent_activity_json(struct json_t *o, const char *name);

#endif /* ZTB_BROKER_ADMIN_INVENTORY_H */
