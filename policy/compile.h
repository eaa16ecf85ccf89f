/*
 * compile.h - build the lookup tables that make evaluation fast.
 *
 * After load.c has filled and checked the model, compile.c resolves every
 * agent named exactly anywhere in the document to an index with a hash table
 * (and gives each a bitset of the groups that name it), turns each rule's
 * agent list into indexes and a group mask, and indexes the rules by
 * audience and by service (the part of the action before ':'), so an
 * evaluation looks at the few rules that can apply instead of all of them.
 *
 * Must never: change what a decision is, only how fast it is found.
 */
#ifndef ZTB_POLICY_COMPILE_H
#define ZTB_POLICY_COMPILE_H

#include <ztb/error.h>

#include "policy/model.h"

/*
 * Fill p's agent table, agent sets and rule index, in p's arena. The model
 * must have loaded without errors. NOMEM/TOO_LARGE on allocation failure.
 */
ztb_err policy_compile(policy *p);

/*
 * The (at most four) rule lists that may apply to an exact audience and
 * service: [bucket(audience), service], [bucket(audience), any service],
 * [wild, service], [wild, any service]. Missing lists are left out. Sets
 * *n to how many were filled and *n_exact to how many of the first come from
 * the exact-audience bucket. When the (audience, service) pair was merged
 * at compile time, *merged points to that list instead and *n is 0. Never
 * allocates.
 */
void policy_index_lookup(const policy *p, const char *audience, size_t alen, const char *service,
                         size_t slen, struct policy_rulelist out[4], unsigned *n, unsigned *n_exact,
                         const struct policy_candlist **merged);

#endif /* ZTB_POLICY_COMPILE_H */
