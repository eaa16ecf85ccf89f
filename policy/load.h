/*
 * load.h - read a policy document, refuse it unless it is entirely right.
 *
 * Loading parses the JSON (duplicate keys refused), checks every field
 * (unknown fields, types, ranges, patterns, references), checks the rules
 * against each other (overlap.h: unreachable, duplicate and conflicting
 * rules), then compiles the lookup tables (compile.h). Any problem refuses the
 * whole document; every problem found is reported in the diag list, syntax
 * errors with line:column, others naming the rule, group or setting.
 *
 * Must never: hand out a policy that has any problem.
 */
#ifndef ZTB_POLICY_LOAD_H
#define ZTB_POLICY_LOAD_H

#include <stddef.h>

#include <ztb/error.h>

#include "policy/diag.h"
#include "policy/types.h"

/* The largest document policy_load accepts (bytes of JSON). */
#define POLICY_MAX_DOCUMENT (16u << 20)

/*
 * Load the len bytes at doc (not necessarily NUL-terminated). On success
 * *out is a new policy with one reference (the caller releases it with
 * policy_unref). Returns JSON for a syntax error, POLICY for any other
 * problem in the document, TOO_LARGE for a document over 16 MiB, NOMEM.
 * On failure *out is NULL and, if diag is not NULL, diag holds the messages
 * (it is appended to; initialise it with policy_diag_init, free it with
 * policy_diag_free). Thread-safe (touches no global state).
 */
ztb_err policy_load(const void *doc, size_t len, policy **out, policy_diag *diag);

/*
 * Same, reading the document from path (a regular file; symlinks are
 * followed, as configuration mounts use them). IO if it cannot be read, with
 * a message in diag.
 */
ztb_err policy_load_file(const char *path, policy **out, policy_diag *diag);

#endif /* ZTB_POLICY_LOAD_H */
