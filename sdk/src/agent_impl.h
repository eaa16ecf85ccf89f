/*
 * agent_impl.h - what the files of the agent client share (sdk/src/agent*.c
 * only; the rest of libztb sees agent_internal.h).
 *
 * State and locks: `mu` guards the identity (key reference, documents,
 * validity), the session credential and the broker metadata; it is never
 * held across I/O. `session_mu` is held by the one thread that fetches a
 * new session, so a burst of threads whose session ran out causes one
 * /v1/session call, not one each. Network calls work on a snapshot (a key
 * reference, a copy of the session in a stack buffer that is wiped after).
 */
#ifndef ZTB_SDK_AGENT_IMPL_H
#define ZTB_SDK_AGENT_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <ztb/agent.h>

#include "common/buf.h"
#include "pki/key.h"
#include "pki/spiffe.h"
#include "sdk/src/http_client.h"
#include "sdk/src/identity.h"
#include "wire/wire.h"

#define SESSION_MAX       512
#define ASSERTION_LIFE_S  60
#define FIELD_MAX         1024
#define DETAILS_MAX       4096
#define URL_MAX           2048
#define RENEW_RETRY_MIN_S 5
#define RENEW_RETRY_MAX_S 300

struct ztb_agent_config {
    char *broker, *name, *td, *cred_file, *ca_file;
    int allow_http, dpop, auto_renew;
    unsigned timeout_ms, max_retries, max_wait_ms;
};

struct ztb_agent {
    char *broker; /* base URL, no trailing '/' */
    char name[ZTB_AGENT_NAME_MAX + 1];
    char spiffe_id[ZTB_SPIFFE_ID_MAX + 1];
    char *cred_file;
    unsigned max_retries, max_wait_ms;
    struct http_client *http;
    ztb_key *dpop_key; /* NULL unless DPoP is on */

    pthread_mutex_t mu;
    struct identity id;
    char session[SESSION_MAX + 1]; /* secret; "" if none */
    int64_t session_until_ms;      /* monotonic: renew after this */
    char *token_endpoint;          /* from the metadata: assertion aud, DPoP htu */

    pthread_mutex_t session_mu;

    int auto_renew;
    pthread_t thread;
    int thread_started;
    pthread_cond_t cv; /* wakes the renewal thread (new identity, stop) */
    int stop;
};

/* agent.c: requests to the broker ------------------------------------------ */

/* Which request a broker error answers (invalid_grant means a bad join
 * token only for an enrollment). */
enum agent_call_ctx { AGENT_CTX_ENROLL, AGENT_CTX_OTHER };

/* Something to do before each attempt (e.g. a fresh DPoP proof). */
typedef ztb_err (*agent_prep_fn)(struct ztb_agent *a, void *ud, struct http_request *rq);

/* "<broker><path>" into out. */
void agent_url_of(const struct ztb_agent *a, const char *path, char *out, size_t cap);

/* Append name=value with form encoding (RFC 1866 application/x-www-form-urlencoded). */
void agent_form_add(ztb_buf *b, const char *name, const char *value);

/* 1 if s is a printable argument of 1..max bytes. */
int agent_arg_ok(const char *s, size_t max);

/* The JSON object in an HTTP response body (caller decrefs), or NULL. */
json_t *agent_body_json(const struct http_response *rs);

/* Map a broker error answer (RFC 6749 §5.2 JSON) to a code, set as a's detail. */
ztb_err agent_broker_error(const struct ztb_agent *a, const struct http_response *rs,
                           enum agent_call_ctx ctx);

/* A transport failure rv as an error with detail; returns rv. */
ztb_err agent_transport_error(const struct ztb_agent *a, ztb_err rv,
                              const struct http_response *rs);

/* Run rq with retries and backoff (prep, may be NULL, before each attempt).
 * On ZTB_OK rs holds the last answer, whatever its status; the caller frees
 * it. */
ztb_err agent_call(struct ztb_agent *a, struct http_request *rq, agent_prep_fn prep, void *ud,
                   struct http_response *rs);

/* agent_token.c: the token exchange --------------------------------------- */

/*
 * POST form (plus the session, and a DPoP proof for htu when DPoP is on) to
 * path on the broker: the token into *token on 200, else the broker's error.
 * For an approval's answer (APPROVAL_PENDING, _DENIED, _EXPIRED) *answer,
 * if asked for, is its JSON body (caller decrefs).
 */
ztb_err agent_exchange(struct ztb_agent *a, const char *path, const char *htu, const ztb_buf *form,
                       char **token, json_t **answer);

/* The token request form of ztb_agent_token (arguments checked) and the
 * token endpoint it is sent to. */
ztb_err agent_token_form(struct ztb_agent *a, const char *audience, const char *action,
                         const char *resource, const char *details_json, ztb_buf *form,
                         char te[URL_MAX + 1]);

/* agent_session.c: metadata, assertions, sessions -------------------------- */

/* The token endpoint from the broker's metadata (fetched once). *out is a copy. */
ztb_err agent_token_endpoint(struct ztb_agent *a, char out[URL_MAX + 1]);

/* A client assertion (RFC 7523) for aud signed by key, appended to out. */
ztb_err agent_make_assertion(const struct ztb_agent *a, const ztb_key *key, const char *aud,
                             ztb_buf *out);

/* A reference to the current key if enrolled and valid; STATE otherwise. */
ztb_err agent_current_key(struct ztb_agent *a, ztb_key **key);

/* A session credential into out (copy, secret): the current one, or a new one. */
ztb_err agent_get_session(struct ztb_agent *a, char out[SESSION_MAX + 1]);

/* Forget the session used if it is still the current one (the broker refused it). */
void agent_drop_session(struct ztb_agent *a, const char *used);

/* agent_enroll.c: enrollment and renewal ---------------------------------- */

/* The renewal thread: renew at two thirds of the identity's life, retry with backoff. */
void *agent_renew_main(void *arg);

#endif /* ZTB_SDK_AGENT_IMPL_H */
