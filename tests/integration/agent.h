/*
 * agent.h - integration tests acting as agents and gateways: enroll with a
 * join token and a CSR, sign RFC 7523 client assertions, open a session,
 * ask for tokens, introspect and revoke them, with pki directly (every byte
 * on the wire as docs/protocol.md says, not as the SDK reads it).
 *
 * Failures fail the calling cmocka test.
 */
#ifndef ZTB_TEST_AGENT_H
#define ZTB_TEST_AGENT_H

#include <stddef.h>

#include <jansson.h>

#include "common/buf.h"
#include "harness.h"
#include "pki/key.h"
#include "wire/wire.h"

#define ZA_ASSERTION_TYPE ZTB_WIRE_ASSERTION_JWT
#define ZA_SESSION_TYPE   ZTB_WIRE_ASSERTION_SESSION

struct za_agent {
    char name[64];
    ztb_key *key;
    char session[512];
};

/* The issuer client assertions are addressed to (default: the broker's URL). */
void za_set_issuer(const char *issuer);

/* Parse a response body as JSON (fails the test if it is not). */
json_t *za_json(const struct zh_resp *r);

/* Fail unless r has this status and RFC 6749 error code. */
void za_expect_error(const struct zh_resp *r, long status, const char *code);

/* Register name (admin API) and return its join token (caller frees). */
char *za_join_token(const struct zh_broker *b, const char *name);

/* POST a CSR for a with join; returns the HTTP status. */
long za_enroll_with(const struct zh_broker *b, const struct za_agent *a, const char *join,
                    struct zh_resp *r);

/* Register, enroll and open a session for a new agent called name. */
void za_enroll(const struct zh_broker *b, struct za_agent *a, const char *name);

/* A fresh client assertion of a for b (jti NULL: random) into out. */
void za_assertion(const struct zh_broker *b, const struct za_agent *a, const char *jti,
                  ztb_buf *out);

/* POST form to path; returns the status. */
long za_post_form(const struct zh_broker *b, const char *path, const char *form, struct zh_resp *r);

/*
 * Ask for a token (session authentication). On 200 the token is copied
 * into tok (cap bytes); returns the status.
 */
long za_token(const struct zh_broker *b, const struct za_agent *a, const char *audience,
              const char *scope, struct zh_resp *r, char *tok, size_t cap);

/* A token's claims and kid, read without checking the signature (test only). */
json_t *za_claims(const char *tok);
void za_kid(const char *tok, char *kid, size_t cap);

/* Introspect tok as caller (session): 1 active, 0 inactive; fails on other answers. */
int za_active(const struct zh_broker *b, const struct za_agent *caller, const char *tok);

/*
 * After Redis restarted: every broker thread finds its old connection gone
 * once (a 503) and then reconnects. Wait until a run of requests on the API
 * (introspecting tok as caller) and the admin API all succeed.
 */
void za_settle(const struct zh_broker *b, const struct za_agent *caller, const char *tok);

/*
 * Fail unless the single-use token tok was consumed and its marker
 * (ztb:used:<jti>, in the Redis rd) lives at least until exp + the largest
 * skew any verifier may have (wire/wire.h).
 */
void za_expect_used_marker(const struct zh_redis *rd, const char *tok);

/* Free a's key. */
void za_free(struct za_agent *a);

/* The broker's audit log as text (caller frees). */
char *za_audit_text(const struct zh_broker *b);

/* Poll fn(arg) every 20 ms for up to ms milliseconds; 1 once it returned nonzero. */
int za_wait(int (*fn)(void *), void *arg, unsigned ms);

#endif /* ZTB_TEST_AGENT_H */
