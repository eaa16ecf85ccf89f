/*
 * admin_inventory.h - the admin API's view of what agents do: an agent's
 * behavioural baseline, and the inventory of every agent (and of the
 * unknown clients gateways refused).
 *
 *   GET  /v1/agents/NAME/baseline        the baseline (store_baseline_get)
 *   POST /v1/agents/NAME/baseline        {"relearn": true, "for": SECONDS}:
 *                                        start learning again (audited)
 */
#ifndef ZTB_BROKER_ADMIN_INVENTORY_H
#define ZTB_BROKER_ADMIN_INVENTORY_H

#include "broker/http/http.h"

/* /v1/agents/NAME/baseline for the agent name (a valid name). */
void handle_admin_agent_baseline(struct http_req *req, struct http_resp *resp, const char *name);

#endif /* ZTB_BROKER_ADMIN_INVENTORY_H */
