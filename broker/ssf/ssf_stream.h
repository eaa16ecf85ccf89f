/*
 * ssf_stream.h - one SSF event stream as a receiver manages it (OpenID SSF
 * 1.0 §8.1): the receiver's requests read into it, its stored record, and
 * the configuration a receiver is shown. No HTTP and no Redis here (those
 * are ssf_streams_http.c and store_ssf.c), so it is unit-tested and fuzzed.
 *
 * Receiver-supplied members: events_requested, delivery {method
 * "urn:ietf:rfc:8935", endpoint_url, authorization_header}, description.
 * Transmitter-supplied members (stream_id, iss, aud, events_supported,
 * events_delivered, min_verification_interval, inactivity_timeout) are
 * ignored when a request carries them; any other member is refused, so a
 * typo never means "absent". aud is the owner's SPIFFE ID: the receiver is
 * the agent whose token created the stream.
 *
 * Must never: accept an endpoint_url push_url_check refuses, show the
 * authorization_header to anyone (the configuration a receiver reads
 * leaves it out), or keep one unwiped.
 */
#ifndef ZTB_BROKER_SSF_STREAM_H
#define ZTB_BROKER_SSF_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "broker/ssf/ssf.h"
#include "broker/store/store.h"
#include "broker/store/store_ssf.h"

#define SSF_DESCRIPTION_MAX 256
#define SSF_REASON_MAX      256
#define SSF_STATE_MAX       256

enum ssf_stream_status { SSF_STREAM_ENABLED = 0, SSF_STREAM_PAUSED, SSF_STREAM_DISABLED };

/* How a request changes a stream: create (POST), replace (PUT), update (PATCH). */
enum ssf_stream_op { SSF_OP_CREATE, SSF_OP_REPLACE, SSF_OP_UPDATE };

struct ssf_stream {
    char id[STORE_SSF_ID_MAX + 1];
    char owner[STORE_NAME_MAX + 1]; /* the receiver's agent name */
    char aud[SSF_URL_MAX];          /* the SETs' aud: the owner's SPIFFE ID */
    unsigned events;                /* requested, within SSF_EV_SENT */
    char url[SSF_URL_MAX];          /* push endpoint_url */
    char *authorization;            /* the Authorization value sent with each SET, or NULL */
    char description[SSF_DESCRIPTION_MAX + 1];
    enum ssf_stream_status status;
    char reason[SSF_REASON_MAX + 1];
    int64_t created;
};

/* The status's name ("enabled", "paused", "disabled"); and back (-1: none). */
const char *ssf_stream_status_name(enum ssf_stream_status s);
int ssf_stream_status_of(const char *name);

/*
 * Apply a receiver's request body (a JSON object) to s. CREATE and REPLACE
 * start from a stream with only its identity (id, owner, aud, status,
 * created) kept; UPDATE changes only the members present (delivery is one
 * member: replaced whole). REPLACE and UPDATE require "stream_id" equal to
 * s->id. On a problem returns MALFORMED (or another error) and writes one
 * sentence naming it and the fix into why; s is then unchanged.
 */
struct json_t;
ztb_err ssf_stream_apply(struct ssf_stream *s, struct json_t *body, enum ssf_stream_op op,
                         char *why, size_t cap);

/* The same from JSON text (through the jansson gate): the fuzz target's entry. */
ztb_err ssf_stream_apply_text(struct ssf_stream *s, const char *text, size_t n,
                              enum ssf_stream_op op, char *why, size_t cap);

/* The stored record of s (a new string, free with ztb_free_secret_str: it
 * holds the authorization value), or NULL when out of memory. */
char *ssf_stream_record(const struct ssf_stream *s);

/* Read a stored record into s (ssf_stream_clear it after). MALFORMED if it is
 * not one ssf_stream_record wrote. */
ztb_err ssf_stream_from_record(const char *text, size_t n, struct ssf_stream *s);

/*
 * The stream's configuration as a receiver is shown it (§8.1.1): stream_id,
 * iss, aud, events_supported, events_requested, events_delivered, delivery
 * {method, endpoint_url} (never the authorization_header),
 * min_verification_interval, description. A new reference, or NULL.
 */
struct json_t *ssf_stream_config_json(const struct ssf_stream *s, const char *issuer,
                                      unsigned min_verification_interval);

/* Wipe and free what s holds (the authorization value). */
void ssf_stream_clear(struct ssf_stream *s);

#endif /* ZTB_BROKER_SSF_STREAM_H */
