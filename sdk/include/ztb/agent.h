/*
 * ztb/agent.h - an AI agent's side of ztb: enroll once, then ask the broker
 * for one short-lived token per action.
 *
 *   ztb_agent_config *cfg = ztb_agent_config_new();
 *   ztb_agent_config_set_broker(cfg, "https://broker.example");
 *   ztb_agent_config_set_name(cfg, "billing-bot");
 *   ztb_agent_config_set_credential_file(cfg, "/var/lib/billing-bot/ztb.pem");
 *   ztb_agent *a;
 *   ztb_err rv = ztb_agent_new(cfg, &a);
 *   ztb_agent_config_free(cfg);
 *   if (rv == ZTB_OK && !ztb_agent_is_enrolled(a))
 *       rv = ztb_agent_enroll(a, getenv("ZTB_JOIN_TOKEN"));
 *   char *token;
 *   rv = ztb_agent_token(a, "payments", "payments:refund", "orders/1234",
 *                        "{\"type\":\"payment\",\"amount\":40}", &token);
 *   ... Authorization: Bearer <token> ...
 *   ztb_token_free(token);
 *   ztb_agent_free(a);
 *
 * What the handle does for you: makes the agent's P-256 key locally (it
 * never leaves the process, or the 0600 credential file if you ask for one),
 * enrolls with a one-time join token, renews the identity document in the
 * background before it expires, authenticates to the broker once with a
 * signed client assertion and then with a cheap session credential that it
 * renews before it runs out, keeps connections to the broker alive, retries
 * rate-limited and temporarily unavailable answers with jittered backoff
 * honouring Retry-After, and (optionally) binds every token to a DPoP key.
 *
 * Threads: one handle may be shared by any number of threads; every call is
 * thread-safe. Calls that talk to the broker block (up to the timeout times
 * the retries); the others do not. With automatic renewal on (the default)
 * the handle runs one thread of its own, with every signal blocked.
 *
 * Secrets: tokens, proofs, session credentials and the key are wiped from
 * memory when freed and never appear in ztb_agent_errdetail().
 */
#ifndef ZTB_AGENT_H
#define ZTB_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>
#include <ztb/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ztb_agent ztb_agent;
typedef struct ztb_agent_config ztb_agent_config;

/* ---- configuration -------------------------------------------------------
 *
 * Setters copy their arguments and check them at once (INVALID_ARG). A
 * config is not thread-safe; free it whenever ztb_agent_new has returned.
 */

/* A new configuration with the defaults below, or NULL if out of memory. */
ZTB_API ztb_agent_config *ztb_agent_config_new(void);

/* Free a configuration (NULL is fine). */
ZTB_API void ztb_agent_config_free(ztb_agent_config *cfg);

/*
 * Required: the broker's base URL, e.g. "https://broker.example" (https, or
 * http to a loopback host unless ztb_agent_config_set_allow_insecure_http).
 */
ZTB_API ztb_err ztb_agent_config_set_broker(ztb_agent_config *cfg, const char *url);

/* Required: the agent's name as the operator registered it ([a-z0-9][a-z0-9._-]{0,62}). */
ZTB_API ztb_err ztb_agent_config_set_name(ztb_agent_config *cfg, const char *name);

/* The broker's trust domain (default "ztb.local"): the agent is spiffe://<td>/agent/<name>. */
ZTB_API ztb_err ztb_agent_config_set_trust_domain(ztb_agent_config *cfg, const char *td);

/*
 * Keep the agent's key and identity document in this file (PEM, mode 0600,
 * replaced atomically) so a restarted agent needs no new join token. The
 * directory must belong to this user and not be writable by others. Default:
 * in memory only (enroll again after a restart).
 */
ZTB_API ztb_err ztb_agent_config_set_credential_file(ztb_agent_config *cfg, const char *path);

/* PEM CA bundle to trust for an https broker (default: the system's). */
ZTB_API ztb_err ztb_agent_config_set_ca_file(ztb_agent_config *cfg, const char *path);

/* Allow plain http to a broker that is not on a loopback address (default: refused). */
ZTB_API ztb_err ztb_agent_config_set_allow_insecure_http(ztb_agent_config *cfg, int allow);

/*
 * Bind every token to a DPoP key this handle makes and keeps in memory
 * (RFC 9449; default off). Then present each token with a proof from
 * ztb_dpop_proof(). Required when the broker's policy says `binding: dpop`.
 */
ZTB_API ztb_err ztb_agent_config_set_dpop(ztb_agent_config *cfg, int on);

/* Timeout of one HTTP request to the broker, in ms (default 10000, 100..600000). */
ZTB_API ztb_err ztb_agent_config_set_timeout(ztb_agent_config *cfg, unsigned ms);

/*
 * Retries of a request the broker answered 429 or 503, or could not be
 * reached for: at most max_retries more attempts (default 3, at most 20),
 * waiting in all at most max_wait_ms (default 30000). Waits double from
 * 100 ms with jitter, and are never shorter than the broker's Retry-After;
 * a Retry-After beyond what is left of max_wait_ms ends the retries at once.
 */
ZTB_API ztb_err ztb_agent_config_set_retries(ztb_agent_config *cfg, unsigned max_retries,
                                             unsigned max_wait_ms);

/*
 * Renew the identity document in a background thread when two thirds of its
 * life have passed (default on). Off: call ztb_agent_renew() yourself.
 */
ZTB_API ztb_err ztb_agent_config_set_auto_renew(ztb_agent_config *cfg, int on);

/* ---- the agent ----------------------------------------------------------- */

/*
 * Make an agent handle from cfg. Loads the credential file if one is
 * configured and exists (then the agent is enrolled if its identity is still
 * valid). Does not talk to the broker. INVALID_ARG if the broker URL or name
 * is missing; PERMISSION if the credential file is readable by others or not
 * ours; KEY/CERT if it is damaged or its identity is not this agent's. *out
 * is the caller's, freed with ztb_agent_free. ztb_agent_errdetail(NULL) says
 * why it failed.
 */
ZTB_API ZTB_WUR ztb_err ztb_agent_new(const ztb_agent_config *cfg, ztb_agent **out);

/*
 * Stop the renewal thread and free the handle, wiping its key, session and
 * DPoP key (NULL is fine). No other thread may be inside a call on a.
 */
ZTB_API void ztb_agent_free(ztb_agent *a);

/* 1 if the agent holds an identity document that has not expired. Thread-safe. */
ZTB_API int ztb_agent_is_enrolled(const ztb_agent *a);

/*
 * Enroll with a one-time join token from the operator: make a new key, send
 * a CSR for the agent's SPIFFE ID, check and keep the identity document (and
 * write the credential file). Replaces any previous identity. JOIN_TOKEN if
 * the broker refuses the token (unknown, used or expired), CERT if what it
 * returned is not an identity for this key and name, UNAVAILABLE/TIMEOUT/
 * HTTP for transport trouble. The join token is not kept. Blocks.
 */
ZTB_API ZTB_WUR ztb_err ztb_agent_enroll(ztb_agent *a, const char *join_token);

/*
 * Renew the identity document now (with the same key, authenticated by it).
 * STATE if not enrolled. Blocks. The background renewal calls this.
 */
ZTB_API ZTB_WUR ztb_err ztb_agent_renew(ztb_agent *a);

/*
 * Ask the broker for a token allowing one action:
 *   audience      who will accept it, e.g. "payments" (required)
 *   action        "service:verb", e.g. "payments:refund" (required)
 *   resource      what it acts on, e.g. "orders/1234", or NULL
 *   details_json  the details of this action the policy checks, as one JSON
 *                 object (an RFC 9396 authorization detail), e.g.
 *                 {"type":"payment","amount":40}; "type" defaults to
 *                 "ztb_action". NULL for none. The token carries it back.
 * On success *token is a NUL-terminated JWS the caller frees with
 * ztb_token_free. Errors: ACCESS_DENIED, APPROVAL_PENDING (a human must
 * approve first: see ztb_agent_token_start and ztb_agent_token_wait),
 * APPROVAL_REQUIRED (a delegated request cannot wait), QUARANTINED,
 * AUDIENCE_KILLED, RATE_LIMITED (after the retries), INVALID_SCOPE,
 * INVALID_REQUEST, INVALID_CLIENT (the broker does not accept this agent),
 * DPOP, STATE (not enrolled, or the identity expired), UNAVAILABLE,
 * TIMEOUT, HTTP, INTERNAL (the broker could not finish). A refusal is the
 * code the broker names in its answer (docs/protocol.md, "Errors").
 * ztb_agent_errdetail() has the broker's explanation.
 * Thread-safe; blocks for the round trip (and retries).
 */
ZTB_API ZTB_WUR ztb_err ztb_agent_token(ztb_agent *a, const char *audience, const char *action,
                                        const char *resource, const char *details_json,
                                        char **token);

/* ---- approvals ------------------------------------------------------------ */

/*
 * A token request waiting for a human's approval (docs/protocol.md,
 * "Approvals"): the broker answered 400 authorization_pending with an
 * approval id. Opaque; freed with ztb_approval_free. Used by one thread at
 * a time.
 */
typedef struct ztb_approval ztb_approval;

/*
 * Ask for a token as ztb_agent_token does, without waiting for a human:
 * ZTB_OK with *token set when none is needed; APPROVAL_PENDING with
 * *pending set (the caller's, ztb_approval_free) when the request waits
 * for approval; otherwise the errors of ztb_agent_token. Blocks for the
 * round trip only. Asking again for exactly the same request while it
 * waits gives the same approval.
 */
ZTB_API ZTB_WUR ztb_err ztb_agent_token_start(ztb_agent *a, const char *audience,
                                              const char *action, const char *resource,
                                              const char *details_json, char **token,
                                              ztb_approval **pending);

/*
 * Ask once whether the approval was decided: ZTB_OK with *token (the token
 * of exactly the approved request, once; ztb_token_free), APPROVAL_PENDING
 * (poll again after ztb_approval_interval seconds), APPROVAL_DENIED
 * (ztb_agent_errdetail has the approver's reason), APPROVAL_EXPIRED (not
 * decided in time, or its token was already handed out), or the errors of
 * ztb_agent_token (QUARANTINED, AGENT_REVOKED... are checked again now).
 * Blocks for one round trip.
 */
ZTB_API ZTB_WUR ztb_err ztb_approval_poll(ztb_approval *p, char **token);

/* The approval's id ("apr_..."), for the operator (owned by p). */
ZTB_API const char *ztb_approval_id(const ztb_approval *p);

/* Seconds to wait between two polls, as the broker advises (>= 1). */
ZTB_API unsigned ztb_approval_interval(const ztb_approval *p);

/* When the approval expires if nobody decides it (Unix seconds). */
ZTB_API int64_t ztb_approval_expires_at(const ztb_approval *p);

/* Free p (NULL is fine). The approval stays on the broker until it expires. */
ZTB_API void ztb_approval_free(ztb_approval *p);

/*
 * ztb_agent_token, waiting up to timeout_ms for a human's approval when the
 * request needs one (polling at the broker's interval). TIMEOUT if it is
 * still pending then (ztb_agent_errdetail names the approval id; asking
 * again for the same request picks it up), else as ztb_approval_poll.
 * Blocks.
 */
ZTB_API ZTB_WUR ztb_err ztb_agent_token_wait(ztb_agent *a, const char *audience, const char *action,
                                             const char *resource, const char *details_json,
                                             unsigned timeout_ms, char **token);

/* Wipe and free a token or proof from libztb (NULL is fine). */
ZTB_API void ztb_token_free(char *token);

/*
 * A DPoP proof for one request to a resource server: htm the method
 * ("POST"), htu the URL (scheme, host, path), token the access token it
 * carries (its hash goes into the proof). Send it as the `DPoP` header with
 * `Authorization: DPoP <token>`. *proof is freed with ztb_token_free. STATE
 * unless the handle was configured with ztb_agent_config_set_dpop.
 * Thread-safe; does not block.
 */
ZTB_API ZTB_WUR ztb_err ztb_dpop_proof(ztb_agent *a, const char *htm, const char *htu,
                                       const char *token, char **proof);

/* The agent's SPIFFE ID (owned by a, constant). */
ZTB_API const char *ztb_agent_spiffe_id(const ztb_agent *a);

/* When the identity document expires (Unix seconds), 0 if not enrolled. */
ZTB_API int64_t ztb_agent_identity_expires_at(const ztb_agent *a);

/*
 * A short reason for the calling thread's last failed call on a
 * (ztb_agent_new: pass NULL), e.g. the broker's error description. Never
 * NULL, never contains a secret; "" if there is none. Valid until the
 * thread's next libztb call.
 */
ZTB_API const char *ztb_agent_errdetail(const ztb_agent *a);

#ifdef __cplusplus
}
#endif

#endif /* ZTB_AGENT_H */
