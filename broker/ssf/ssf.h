/*
 * ssf.h - the Shared Signals Framework (OpenID SSF 1.0, CAEP 1.0): the names
 * ztb speaks on both sides, and the operator's configuration of the
 * transmitters ztb receives from and the receivers it pushes to.
 *
 * Receiving (ssf_receive.c): POST /v1/ssf/events takes Security Event Tokens
 * (RFC 8417) signed by a configured transmitter; their CAEP events become
 * signals (signal type "caep:<event>") that the policy answers.
 * Transmitting (ssf_transmit.c): every revocation, quarantine, audience kill,
 * key taint and approval requirement ztb applies becomes a SET signed by the
 * broker's token key and pushed (RFC 8935) to each receiver that asked for
 * that event type, from a background thread.
 *
 * The configuration is one JSON file (broker option ssf_config), read at
 * start through the jansson gate and read-only afterwards:
 *
 *   {"transmitters": [{"name": "idp", "issuer": "https://idp.example",
 *                      "jwks_file": "/etc/ztb/idp.jwks", "audience": "...",
 *                      (or "jwks": {...} inline, or "jwks_uri": "https://...")
 *                      "confidence": 1.0,
 *                      "subjects": {"email:bot@example.org": "billing-bot"}}],
 *    "receivers": [{"name": "gw", "endpoint_url": "https://gw.example/ssf",
 *                   "authorization_header": "Bearer ...", "audience": "...",
 *                   "events_requested": ["https://schemas.openid.net/..."]}],
 *    "streams": {"audience": "ztb-ssf", "max_per_receiver": 4,
 *                "max_streams": 1024, "min_verification_interval": 10}}
 *
 * Receivers that "streams" lets manage their own streams (ssf_stream.h) are
 * pushed to beside the configured ones.
 *
 * Must never: accept a configuration with any problem (the broker refuses to
 * start), or show a receiver's authorization_header anywhere.
 */
#ifndef ZTB_BROKER_SSF_H
#define ZTB_BROKER_SSF_H

#include <stddef.h>

#include <ztb/error.h>

#include "broker/store/store.h"
#include "broker/store/store_sources.h"
#include "pki/keyset.h"
#include "policy/policy.h"

#define SSF_CAEP_PREFIX             "https://schemas.openid.net/secevent/caep/event-type/"
#define SSF_EVENT_SESSION_REVOKED   SSF_CAEP_PREFIX "session-revoked"
#define SSF_EVENT_CREDENTIAL_CHANGE SSF_CAEP_PREFIX "credential-change"
#define SSF_EVENT_TOKEN_CLAIMS      SSF_CAEP_PREFIX "token-claims-change"
#define SSF_ZTB_PREFIX              "urn:ztb:ssf:event-type:"
#define SSF_EVENT_QUARANTINED       SSF_ZTB_PREFIX "agent-quarantined"
#define SSF_EVENT_APPROVAL_REQUIRED SSF_ZTB_PREFIX "approval-required"
#define SSF_EVENT_AUDIENCE_KILLED   SSF_ZTB_PREFIX "audience-killed"
#define SSF_EVENT_KEY_TAINTED       SSF_ZTB_PREFIX "key-tainted"
#define SSF_EVENT_VERIFICATION      "https://schemas.openid.net/secevent/ssf/event-type/verification"
#define SSF_DELIVERY_PUSH           "urn:ietf:rfc:8935"
#define SSF_SET_TYP                 "secevent+jwt"
#define SSF_EVENTS_PATH             "/v1/ssf/events"
#define SSF_STREAMS_PATH            "/v1/ssf/streams" /* configuration_endpoint */
#define SSF_STATUS_PATH             "/v1/ssf/status"
#define SSF_VERIFY_PATH             "/v1/ssf/verify"

#define SSF_URL_MAX     2048
#define SSF_ISSUER_MAX  256
#define SSF_SUBJECT_MAX 320 /* "format:value" keys of the subjects table */
#define SSF_SET_MAX     8192

/* Event types, as bits (a receiver's events_requested is a mask of them). */
enum ssf_event {
    SSF_EV_SESSION_REVOKED = 1u << 0,
    SSF_EV_CREDENTIAL_CHANGE = 1u << 1,
    SSF_EV_TOKEN_CLAIMS = 1u << 2,
    SSF_EV_QUARANTINED = 1u << 3,
    SSF_EV_APPROVAL_REQUIRED = 1u << 4,
    SSF_EV_AUDIENCE_KILLED = 1u << 5,
    SSF_EV_KEY_TAINTED = 1u << 6,
};
#define SSF_EV_RECEIVED (SSF_EV_SESSION_REVOKED | SSF_EV_CREDENTIAL_CHANGE | SSF_EV_TOKEN_CLAIMS)
#define SSF_EV_SENT                                                                                \
    (SSF_EV_SESSION_REVOKED | SSF_EV_QUARANTINED | SSF_EV_APPROVAL_REQUIRED |                      \
     SSF_EV_AUDIENCE_KILLED | SSF_EV_KEY_TAINTED)

/* The event type URI of one bit, or NULL. */
const char *ssf_event_uri(unsigned ev);
/* The bit of an event type URI (n bytes), or 0 for one ztb does not know. */
unsigned ssf_event_of(const char *uri, size_t n);

struct ssf_jwks;

struct ssf_subject {
    char key[SSF_SUBJECT_MAX +
             1]; /* "email:bot@example.org", "opaque:x", "uri:...", "iss_sub:ISS|SUB" */
    char agent[STORE_NAME_MAX + 1];
};

struct ssf_transmitter {
    char name[STORE_SOURCE_MAX + 1]; /* its signals' source name */
    char issuer[SSF_ISSUER_MAX];     /* the SETs' iss */
    char audience[SSF_ISSUER_MAX];   /* their aud must name it (default: our issuer) */
    double confidence;               /* of the signals it raises (default 1) */
    ztb_keyset *keys;                /* from jwks_file or jwks; NULL with jwks_uri */
    struct ssf_jwks *remote;         /* from jwks_uri (ssf_jwks.h); NULL otherwise */
    struct ssf_subject *subjects;
    size_t nsubjects;
};

struct ssf_receiver {
    char name[STORE_SOURCE_MAX + 1];
    char url[SSF_URL_MAX];
    char audience[SSF_URL_MAX]; /* the aud of the SETs it gets (default: its endpoint_url) */
    char *authorization;        /* the whole Authorization header value, or NULL: a secret */
    unsigned events;            /* mask of SSF_EV_SENT */
};

/* The stream-management API (ssf_streams_http.c): on when the file has a
 * "streams" member. A receiver calls it with a ztb access token for
 * audience `audience` and action SSF_MANAGE_ACTION. */
#define SSF_MANAGE_ACTION  POLICY_ACTION_SSF
#define SSF_PUSH_HOSTS_MAX 32
#define SSF_PUSH_HOST_MAX  256

struct ssf_streams_config {
    int enabled;
    char audience[SSF_ISSUER_MAX];      /* default "ztb-ssf" */
    unsigned max_per_receiver;          /* default 4 */
    unsigned max_streams;               /* default 1024, all receivers together */
    unsigned min_verification_interval; /* seconds between verification events, default 10 */
    /* the hosts receivers may have the broker push to: a name ("siem.example.com",
     * "127.0.0.1") or "*.example.com" (any name under it); required */
    char push_hosts[SSF_PUSH_HOSTS_MAX][SSF_PUSH_HOST_MAX];
    unsigned n_push_hosts;
};

/* 1 if the host of url is one of c's push_hosts (case-insensitive). */
int ssf_streams_push_host_ok(const struct ssf_streams_config *c, const char *url);

struct ssf_config {
    struct ssf_transmitter *tx;
    size_t ntx;
    struct ssf_receiver *rx;
    size_t nrx;
    struct ssf_streams_config streams;
};

/*
 * Read the configuration file at path into *out (free with ssf_config_free).
 * our_issuer is the default audience of received SETs. On any problem
 * returns an error and writes one line naming it (and the fix) into why.
 */
ztb_err ssf_config_load(const char *path, const char *our_issuer, struct ssf_config **out,
                        char *why, size_t cap);

/* The same from JSON text already in memory (unit tests, fuzzing). */
ztb_err ssf_config_parse(const char *text, size_t n, const char *our_issuer,
                         struct ssf_config **out, char *why, size_t cap);

/* Fetch the keys of every transmitter with a jwks_uri now (ssf_jwks_start:
 * bounded, never fatal). */
void ssf_config_fetch_keys(const struct ssf_config *c);

/* Free c (NULL is fine): the authorization values are wiped first. */
void ssf_config_free(struct ssf_config *c);

/* The transmitter whose issuer is iss, or NULL. */
const struct ssf_transmitter *ssf_transmitter_by_issuer(const struct ssf_config *c,
                                                        const char *iss);

/* The agent the subjects table maps key to ("email:x"), or NULL. */
const char *ssf_subject_lookup(const struct ssf_transmitter *t, const char *key);

#endif /* ZTB_BROKER_SSF_H */
