/*
 * authz.h - the decision of the ztb-authz sidecar: /v1/authorize (GET with
 * the original method and URI headers, or the prefix form <method>
 * /v1/authorize/<path> of Envoy's ext_authz) for a gateway on a host without a broker, answered
 * from libztb's verifier (offline signature check, the revocation feed from Redis, single-use
 * tokens and DPoP proof ids recorded in Redis) with the broker's contract:
 * the same request headers, the same route table file (wire/route_table.h),
 * the same 200 identity headers and the same 401/403/400/503 answers with
 * WWW-Authenticate (docs/gateways.md, "The answer"); it also serves the
 * resource's RFC 9728 metadata and names it in every challenge.
 *
 * One verifier per audience the route table names (a verifier holds one
 * audience), all on the same issuer, JWKS and Redis.
 *
 * Must never: answer 200 without every check of ztb_verify (revocation
 * included), consume a token the request was refused for, put anything
 * but verified printable claims into a header, or log a token or proof.
 */
#ifndef ZTB_AUTHZ_H
#define ZTB_AUTHZ_H

#include <stddef.h>
#include <stdio.h>

#include <ztb/ztb.h>

#include "wire/route_table.h"

#define AUTHZ_MAX_AUDIENCES 16
#define AUTHZ_HDR_MAX       1024

/* Options (ztb-authz --help); strings are borrowed from argv. */
struct authz_config {
    const char *issuer, *jwks_url, *jwks_file, *redis, *routes, *ca_file;
    const char *redis_file;    /* --redis-file: the URL read from it into redis_url */
    char redis_url[1024];      /* (a URL with a password stays out of argv: ps, /proc) */
    const char *listen;        /* HOST:PORT, default 127.0.0.1:8181 */
    const char *method_header; /* default X-Original-Method */
    const char *uri_header;    /* default X-Original-URI */
    const char *resource;      /* RFC 9728 resource; default: the table's origin */
    const char *resource_name;
    unsigned skew_s;    /* default 30 */
    unsigned grace_ms;  /* revocation grace, default 0 */
    unsigned report_ms; /* unknown-client reports, default 10000; 0 off */
    int allow_insecure_http;
};

/*
 * Parse argv into c (defaults first). 0: run; 1: --help or --version was
 * printed to out; -1: a usage error, described in why[cap].
 */
int authz_parse_args(int argc, char *const *argv, struct authz_config *c, FILE *out, char *why,
                     size_t cap);

struct authz;

/*
 * Load the route table, make one verifier per audience it names (each
 * waits for the JWKS and the revocation state: fail closed at start), and
 * the metadata document. OK: *out (free with authz_free); otherwise why[cap]
 * says what is wrong. verifier_cfg, if not NULL, is called on each verifier
 * configuration before it is used (tests: a revocation source other than
 * Redis); it returns ZTB_OK or an error that stops the start.
 */
ztb_err authz_new(const struct authz_config *c,
                  ztb_err (*verifier_cfg)(ztb_verifier_config *vc, void *ud), void *ud,
                  struct authz **out, char *why, size_t cap);
void authz_free(struct authz *a);

/* A request as the HTTP layer saw it: the check request's own method and
 * raw target (byte for byte as sent: path and query, nothing decoded), and
 * each header value and how many times it was sent (a value is read only
 * when sent once). method and uri are the original method and URI headers;
 * route_check_original picks the original request from them or from the
 * prefix form's own method and target. */
struct authz_request {
    int loopback; /* the peer is on 127.0.0.0/8 or ::1 */
    const char *check_method, *target;
    const char *method, *uri, *authorization, *dpop;
    int n_method, n_uri, n_authorization, n_dpop;
    /* the method override headers (route_override_headers: the client's
     * own, passed on by the gateway), all counted together, and the value
     * when there is one (refused unless route_override_ok) */
    const char *override;
    int n_override;
    /* the caller's source as the gateway says it (X-Ztb-Source, else
     * X-Real-IP; NULL: "unknown"), for callers with no or a foreign token */
    const char *source;
};

/* The answer: status, headers (name/value pairs), the JSON body. */
struct authz_answer {
    unsigned status;
    size_t nhdr;
    char hdr_name[10][32];
    char hdr_value[10][AUTHZ_HDR_MAX];
    char body[768];
    const char *log_reason; /* a ztb_err name for the log line, or NULL */
};

/* Decide rq (/v1/authorize in either form). Thread-safe. */
void authz_decide(struct authz *a, const struct authz_request *rq, struct authz_answer *ans);

/* The metadata document's path ("" when no resource is configured) and
 * body (NULL then). Owned by a. */
const char *authz_metadata_path(const struct authz *a);
const char *authz_metadata_json(const struct authz *a);

/* The method and URI header names a reads. */
const char *authz_method_header(const struct authz *a);
const char *authz_uri_header(const struct authz *a);

/* 1 if every verifier's revocation feed is live and its state not full
 * (the readiness probe). */
int authz_ready(struct authz *a);

#endif /* ZTB_AUTHZ_H */
