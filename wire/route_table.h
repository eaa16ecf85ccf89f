/*
 * route_table.h - the gateway route table of GET /v1/authorize: which
 * (audience, action, resource) a gateway's original request needs.
 *
 * One format, one parser, for both programs that answer GET /v1/authorize:
 * the broker (its `authorize_routes` setting, loaded at start and again on
 * SIGHUP; a file with any error is refused and the table in force stays)
 * and the ztb-authz sidecar (--routes). docs/gateways.md "The decision endpoint" is its
 * reference:
 *
 *   {"origin": "https://payments.example.org",
 *    "routes": [{"method": "POST", "path": "/refunds/{id}",
 *                "audience": "payments", "action": "payments:refund",
 *                "resource": "orders/{id}"}]}
 *
 * Matching is strict and on the raw bytes the client sent, never on a
 * normalised form: the query string is cut off; a literal segment must be
 * equal byte for byte; a {name} segment takes 1..128 RFC 3986 unreserved
 * characters (A-Z a-z 0-9 - . _ ~), never "." or "..". So a percent-encoded
 * slash or dot, a dot segment, an empty segment (double or trailing slash),
 * a backslash, ';' parameters or a fragment never match anything: the
 * gateway gets a refusal, not a widened match. The first route in file order
 * that matches wins.
 *
 * Must never: decode or normalise the path, or let a captured value carry a
 * '/' into the resource.
 */
#ifndef ZTB_WIRE_ROUTE_TABLE_H
#define ZTB_WIRE_ROUTE_TABLE_H

#include <stddef.h>

#include <ztb/error.h>

#define ROUTE_MAX_ROUTES   256
#define ROUTE_PATH_MAX     512
#define ROUTE_SEGMENTS_MAX 16
#define ROUTE_VALUE_MAX    128 /* one captured {name} */
#define ROUTE_NAME_MAX     256 /* audience, action */
#define ROUTE_RESOURCE_MAX 1024
#define ROUTE_ORIGIN_MAX   256
#define ROUTE_FILE_MAX     (256 * 1024)

struct route_table;

/* What a request needs, as route_table_match fills it. */
struct route_need {
    char audience[ROUTE_NAME_MAX];
    char action[ROUTE_NAME_MAX];
    char resource[ROUTE_RESOURCE_MAX]; /* "" when the route names none */
    char origin[ROUTE_ORIGIN_MAX];     /* the table's origin, "" if none */
    int route;                         /* index of the route that matched */
};

/*
 * Parse a route table from text[0..n). OK: *out (free with
 * route_table_free). Otherwise INVALID_ARG / JSON / TOO_LARGE with a
 * message naming the route and the problem in why[cap].
 */
ztb_err route_table_parse(const char *text, size_t n, struct route_table **out, char *why,
                          size_t cap);

/* Read and parse path (route_table_parse; IO if it cannot be read). */
ztb_err route_table_load(const char *path, struct route_table **out, char *why, size_t cap);

/* Free t (NULL is fine). */
void route_table_free(struct route_table *t);

/* Number of routes in t. */
size_t route_table_count(const struct route_table *t);

/* The audience and the action of route i of t (owned by t), or NULL if i
 * is out of range. */
const char *route_table_audience(const struct route_table *t, size_t i);
const char *route_table_action(const struct route_table *t, size_t i);

/* The table's origin (owned by t), "" if it names none. */
const char *route_table_origin(const struct route_table *t);

/*
 * Match method (e.g. "POST") and the raw request target uri (as the client
 * sent it: path and maybe "?query") against t. OK: *need filled.
 * NOT_FOUND: no route matches (including every malformed or suspicious
 * path); INVALID_ARG: NULL or over-long input.
 */
ztb_err route_table_match(const struct route_table *t, const char *method, const char *uri,
                          struct route_need *need);

/*
 * The check request: which original request a gateway asks about.
 *
 * The decision endpoint's path, ROUTE_CHECK_PATH, takes the original
 * request in one of two forms, the one rule of both programs that answer
 * it (the broker and ztb-authz):
 *
 *  - the header form (nginx auth_request): GET ROUTE_CHECK_PATH with the
 *    original method and request target in two headers (X-Original-Method,
 *    X-Original-URI, or configured names), each sent exactly once;
 *  - the prefix form (Envoy ext_authz in HTTP mode, path_prefix
 *    ROUTE_CHECK_PATH): the ORIGINAL method, to ROUTE_CHECK_PATH followed
 *    by the original path and query. The original target is the check
 *    request's raw target from the '/' after ROUTE_CHECK_PATH on, byte for
 *    byte as the gateway sent it: never percent-decoded or normalised, so
 *    route_table_match sees exactly what it would see in the header form.
 *
 * A prefix-form request that also carries either header is refused: the
 * original request would have two sources, and the headers may be the
 * client's own, let through by a gateway's allowed_headers. A target that
 * is neither "/v1/authorize[?...]" nor starts with exactly "/v1/authorize/"
 * (e.g. "/v1/authorize%2F...", "/v1/authoriz%65/...", which an HTTP
 * server's decoding would route here) is refused too.
 */
#define ROUTE_CHECK_PATH "/v1/authorize"

struct route_check {
    const char *method; /* the original method (borrowed from the arguments) */
    const char *uri;    /* the original target: path and maybe "?query", raw (borrowed) */
    int prefix_form;    /* 1: named by the check request's own method and path */
};

/*
 * Which original request the check request (method, raw target) names.
 * hdr_method and hdr_uri are the header values, n_method and n_uri how many
 * times each was sent (a value is read only when sent once; a value with a
 * NUL byte counts as sent twice). OK with *out filled (pointers into the
 * arguments), or INVALID_REQUEST with *why, a static sentence naming the
 * fix (for a 400).
 */
ztb_err route_check_original(const char *method, const char *target, const char *hdr_method,
                             int n_method, const char *hdr_uri, int n_uri, struct route_check *out,
                             const char **why);

/*
 * Method overrides: a client asking the backend to run another method than
 * its request's, with a header (X-HTTP-Method-Override, X-HTTP-Method,
 * X-Method-Override; Rails, Symfony, Laravel and Express's method-override
 * honour one) or a _method query parameter (Symfony and Laravel). A gateway
 * passes the client's headers and target on to the check request (nginx's
 * auth_request does), and a decision for the original method says nothing
 * about the one the backend would then run: both programs refuse (403) a
 * check request that is not route_override_ok, before the token is read.
 * (A _method in a form body is beyond what a check request carries: turn
 * the override off in such a backend.) The header names, NULL-terminated:
 */
extern const char *const route_override_headers[];

/*
 * 1 if the original request leaves the backend running orig->method: its
 * override headers (n of them, all names together; value the one when
 * n == 1) are none, or one naming orig->method itself (byte for byte), and
 * the query of orig->uri has no parameter a framework reads as _method
 * (percent-decoded, any case, '.', ' ' and '+' read as '_', '[' ending it).
 */
int route_override_ok(const struct route_check *orig, int n, const char *value);

/*
 * The table in force, swapped whole on reload (like policy/holder.h): a
 * request matches under a read lock, a reload parses first and swaps under
 * the write lock. All functions are thread-safe.
 */
struct route_holder;

/* A holder with no table (match answers NOT_FOUND). NULL on no memory. */
struct route_holder *route_holder_new(void);
void route_holder_free(struct route_holder *h);

/* Load path and install it; on error the table in force stays and why says
 * what is wrong (route_table_load). */
ztb_err route_holder_reload(struct route_holder *h, const char *path, char *why, size_t cap);

/* route_table_match on the table in force (NOT_FOUND if none). */
ztb_err route_holder_match(struct route_holder *h, const char *method, const char *uri,
                           struct route_need *need);

/* The origin of the table in force into out (cap bytes; "" if none). */
void route_holder_origin(struct route_holder *h, char *out, size_t cap);

#endif /* ZTB_WIRE_ROUTE_TABLE_H */
