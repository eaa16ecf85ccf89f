/*
 * explain.h - the decision for one request and why, for people.
 *
 * explain runs the same steps as policy_eval (the same resolution, index,
 * rule checks and combination code) but records every rule it looks at and
 * why each did or did not apply, and which rule set each obligation. It
 * then checks that its conclusion is exactly policy_eval's, so what an
 * operator reads is what the broker does. It allocates and is meant for
 * ztbctl and the admin API, not for the request path.
 *
 * Must never: disagree with policy_eval.
 */
#ifndef ZTB_POLICY_EXPLAIN_H
#define ZTB_POLICY_EXPLAIN_H

#include <jansson.h>
#include <ztb/error.h>

#include "common/buf.h"
#include "policy/types.h"

/*
 * Explain req under p as a JSON object (docs/policy.md shows its fields);
 * *out is a new reference the caller json_decref()s. NOMEM; INTERNAL if
 * explain and policy_eval ever disagree (a bug, never expected).
 */
ztb_err policy_explain(const policy *p, const policy_request *req, json_t **out);

/* Render an explanation from policy_explain as text into out. */
ztb_err policy_explain_text(const json_t *ex, ztb_buf *out);

#endif /* ZTB_POLICY_EXPLAIN_H */
