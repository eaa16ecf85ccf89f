/*
 * holder.h - the policy in force, replaced atomically on reload.
 *
 * The broker keeps one holder. Each request acquires a reference to the
 * current policy, evaluates with it, and releases it; a reload (SIGHUP or
 * the admin API) loads and checks the new document completely first and
 * only then swaps it in. So no request ever sees half a policy, requests
 * already running finish on the policy they started with (it is freed when
 * the last of them releases it), and a document with any error is refused
 * with its messages while the old policy stays in force.
 *
 * acquire is a mutex-protected pointer read plus an atomic increment (tens
 * of nanoseconds; bench/bench_policy.c measures it); the mutex is never held
 * while loading or freeing, so a slow reload never stalls requests.
 */
#ifndef ZTB_POLICY_HOLDER_H
#define ZTB_POLICY_HOLDER_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "policy/diag.h"
#include "policy/types.h"

typedef struct policy_holder policy_holder;

/* A holder with no policy yet (acquire returns NULL: deny everything). NOMEM. */
ztb_err policy_holder_new(policy_holder **out);

/*
 * Free the holder and drop its reference to the current policy. References
 * acquired earlier stay valid until released. No other thread may use the
 * holder during or after this call. NULL is fine.
 */
void policy_holder_free(policy_holder *h);

/*
 * A new reference to the policy in force, or NULL if none was ever
 * installed. The caller evaluates with it and then calls policy_unref (or
 * policy_holder_release). Thread-safe.
 */
policy *policy_holder_acquire(policy_holder *h);

/* Release what acquire returned (policy_unref; NULL is fine). */
void policy_holder_release(policy *p);

/*
 * Install next, taking over the caller's reference to it; the previous policy
 * is released (and freed once in-flight requests release theirs). next must
 * not be NULL. Thread-safe.
 */
void policy_holder_swap(policy_holder *h, policy *next);

/*
 * Load a document and, only if it loads without any problem (and names the
 * required trust domain, if one is set), install it.
 * Otherwise the policy in force does not change and the error (JSON, POLICY,
 * IO, TOO_LARGE, NOMEM) is returned with its messages in diag (may be NULL).
 * Reloads are serialised with each other, never with requests.
 */
ztb_err policy_holder_reload(policy_holder *h, const void *doc, size_t len, policy_diag *diag);

/*
 * From now on refuse (POLICY, with a message in diag) any document whose
 * trust domain is not td: a start and a reload refuse the same documents.
 * td NULL or "": any.
 */
void policy_holder_require_trust_domain(policy_holder *h, const char *td);
ztb_err policy_holder_reload_file(policy_holder *h, const char *path, policy_diag *diag);

/* How many policies have been installed so far (0 before the first). */
uint64_t policy_holder_generation(policy_holder *h);

#endif /* ZTB_POLICY_HOLDER_H */
