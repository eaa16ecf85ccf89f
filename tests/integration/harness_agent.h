/*
 * harness_agent.h - integration tests acting as an agent against a real
 * broker, the way an agent's SDK would: register the agent through the
 * admin API, enroll it with its own P-256 key (a CSR naming its SPIFFE ID),
 * and trade an RFC 7523 client assertion for a session credential that
 * later token requests present.
 *
 * Brokers are those the harness provisions (trust domain ztb.local). Every
 * helper fails the test (exits with a message) when the broker does not
 * answer as docs/protocol.md says; nothing is skipped.
 */
#ifndef ZTB_TEST_HARNESS_AGENT_H
#define ZTB_TEST_HARNESS_AGENT_H

#include <stddef.h>

#include "common/buf.h"
#include "harness.h"
#include "pki/key.h"

#define ZH_SESSION_MAX 512

/* The broker's token endpoint from its RFC 8414 metadata (the assertion aud). */
void zh_token_endpoint(const struct zh_broker *b, char *out, size_t cap);

/*
 * Register agent `name` on b (admin API), make it a key and enroll it. The
 * agent's key is returned in *key (caller frees with ztb_key_free).
 */
void zh_agent_enroll(const struct zh_broker *b, const char *name, ztb_key **key);

/*
 * A client assertion (ES256, 30 s, random jti) for agent `name` with key k,
 * addressed to aud (a token endpoint), into out.
 */
void zh_agent_assertion(const ztb_key *k, const char *name, const char *aud, ztb_buf *out);

/*
 * A session credential for the enrolled agent `name` from broker b (POST
 * /v1/session with a client assertion), into out (ZH_SESSION_MAX bytes).
 */
void zh_agent_session(const struct zh_broker *b, const ztb_key *k, const char *name, char *out);

/*
 * Register, enroll and open a session in one call; the key is freed unless
 * key is non-NULL.
 */
void zh_agent_ready(const struct zh_broker *b, const char *name, char *session, ztb_key **key);

/*
 * POST /v1/token with the session credential plus extra form fields (e.g.
 * "&audience=payments&scope=payments%3Aread", already form-encoded).
 * Returns the HTTP status (0 on a transport error); *r is filled.
 */
long zh_token_request(const struct zh_broker *b, const char *session, const char *extra,
                      struct zh_resp *r);

#endif /* ZTB_TEST_HARNESS_AGENT_H */
