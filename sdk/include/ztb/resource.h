/*
 * ztb/resource.h - the resource server's side of OAuth, for gateways and
 * MCP tool servers: what to answer a client that must find out how to get a
 * token (OAuth 2.0 Protected Resource Metadata, RFC 9728), how to read the
 * token it sends (RFC 6750 §2.1, RFC 9449 §7.1), and how to refuse it
 * (RFC 6750 §3, RFC 9449 §7.1, RFC 9728 §5.1).
 *
 *   ztb_resource r = {.resource = "https://tools.example.org/mcp",
 *                     .authorization_server = "https://broker.example.org"};
 *   char doc[2048], path[600], url[600];
 *   ztb_resource_metadata_json(&r, doc, sizeof(doc), NULL);  // serve it ...
 *   ztb_resource_metadata_path(r.resource, path, sizeof(path)); // ... at this path
 *   ztb_resource_metadata_url(r.resource, url, sizeof(url));
 *
 *   const char *tok;
 *   ztb_auth_scheme s = ztb_authorization_parse(authorization_header, &tok);
 *   ztb_err rv = s == ZTB_SCHEME_NONE ? ZTB_ERR_NOT_FOUND : ztb_verify(v, tok, &want, NULL);
 *   if (rv != ZTB_OK) {
 *       char www[1024];
 *       ztb_challenge_opts o = {.scheme = s, .resource_metadata = url, .scope = want.action};
 *       unsigned status = ztb_challenge(rv, &o, www, sizeof(www));
 *       // answer status, with "WWW-Authenticate: <www>" when www is not ""
 *   }
 *
 * The MCP authorization rule (a token minted for one server is refused at
 * another) is the verifier's audience check: give each server its own
 * audience, and its verifier refuses every token for another (AUDIENCE, 401
 * with the resource_metadata pointer, so the client asks for the right one).
 *
 * None of these calls block, allocate for the caller or keep anything;
 * all are thread-safe.
 */
#ifndef ZTB_RESOURCE_H
#define ZTB_RESOURCE_H

#include <stddef.h>

#include <ztb/error.h>
#include <ztb/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A protected resource, as its metadata document describes it. */
typedef struct ztb_resource {
    /*
     * Required: the resource identifier (RFC 9728 §2, RFC 8707): an https
     * URL (http only to a loopback host), no query, no fragment, printable
     * ASCII without quotes or spaces, at most 512 bytes. For an MCP server,
     * its canonical URL, e.g. "https://tools.example.org/mcp".
     */
    const char *resource;
    /* Required: the broker's issuer identifier (the tokens' iss). */
    const char *authorization_server;
    /* Optional: the actions (scopes) the resource takes, NULL-terminated. */
    const char *const *scopes;
    /* Optional: a name for people (resource_name; printable ASCII, spaces allowed). */
    const char *resource_name;
    /* 1: only DPoP-bound tokens are accepted (dpop_bound_access_tokens_required). */
    int dpop_required;
} ztb_resource;

/*
 * Write r's metadata document (JSON, RFC 9728 §2) to out[0..cap), NUL-
 * terminated, its length in *len (len may be NULL): resource,
 * authorization_servers, bearer_methods_supported ["header"],
 * dpop_signing_alg_values_supported ["ES256"], scopes_supported when r has
 * scopes, resource_name, dpop_bound_access_tokens_required when set.
 * INVALID_ARG for a missing or malformed member (see above), TOO_LARGE if
 * out is too small, NOMEM.
 */
ZTB_API ZTB_WUR ztb_err ztb_resource_metadata_json(const ztb_resource *r, char *out, size_t cap,
                                                   size_t *len);

/*
 * The URL of resource's metadata (RFC 9728 §3.1): the well-known path
 * /.well-known/oauth-protected-resource inserted between the host and the
 * path, e.g. "https://tools.example.org/.well-known/oauth-protected-resource/mcp"
 * for "https://tools.example.org/mcp". INVALID_ARG for a malformed
 * resource, TOO_LARGE if out is too small.
 */
ZTB_API ZTB_WUR ztb_err ztb_resource_metadata_url(const char *resource, char *out, size_t cap);

/* The path part of that URL, which the server answers GET on
 * ("/.well-known/oauth-protected-resource/mcp"). Errors as above. */
ZTB_API ZTB_WUR ztb_err ztb_resource_metadata_path(const char *resource, char *out, size_t cap);

/* The authorization scheme a request used. */
typedef enum ztb_auth_scheme {
    ZTB_SCHEME_NONE = 0, /* no Authorization header, or not one we read */
    ZTB_SCHEME_BEARER = 1,
    ZTB_SCHEME_DPOP = 2
} ztb_auth_scheme;

/*
 * Read an Authorization header value: "Bearer <token>" or "DPoP <token>",
 * the scheme in any case, one or more spaces, one token68 ('=' padding only
 * at its end) and nothing after it (RFC 9110 §11.4, RFC 6750 §2.1). *token
 * points into header. NONE (and *token NULL) for NULL, another scheme or
 * anything malformed. The broker's endpoints read the header the same way.
 */
ZTB_API ztb_auth_scheme ztb_authorization_parse(const char *header, const char **token);

/* How to refuse: what the request used and what the resource requires. */
typedef struct ztb_challenge_opts {
    ztb_auth_scheme scheme;        /* the request's scheme (NONE: it sent no usable token) */
    const char *resource_metadata; /* the metadata URL (RFC 9728 §5.1), or NULL */
    const char *scope;             /* the action required, named in insufficient_scope */
    const char *realm;             /* default "ztb" */
} ztb_challenge_opts;

/*
 * The HTTP status and the WWW-Authenticate value for refusing a request
 * whose token check gave rv (ztb_verify's result; with scheme NONE pass
 * NOT_FOUND for "no token" and INVALID_REQUEST for a malformed header),
 * written to www[0..cap) ("" when the status takes no challenge):
 *
 *   scheme NONE, NOT_FOUND           401, both schemes' challenges, no error code
 *   scheme NONE, anything else       400 (invalid_request), the same challenges
 *   ACTION, RESOURCE                 403 insufficient_scope, scope="<scope>"
 *   DPOP, DPOP_REPLAY                401 invalid_dpop_proof (DPoP challenge)
 *   BINDING                          401 invalid_token (DPoP challenge)
 *   UNAVAILABLE, REVOCATION_STALE,
 *   SINGLE_USE                       503 (fail closed; no challenge)
 *   INVALID_ARG, INVALID_REQUEST     400 invalid_request
 *   NOMEM, INTERNAL                  500
 *   anything else                    401 invalid_token
 *
 * with error_description a fixed English text for rv (never token content)
 * and resource_metadata in every challenge when given. The same answers as
 * the broker's GET /v1/authorize (docs/gateways.md, "The answer"). Returns
 * 0 if rv is OK, www is NULL or too small, or an option is not printable
 * ASCII without quotes.
 */
ZTB_API unsigned ztb_challenge(ztb_err rv, const ztb_challenge_opts *o, char *www, size_t cap);

/* The RFC 6750 / RFC 9449 error code ztb_challenge uses for rv (e.g.
 * "invalid_token"), for a JSON error body. Static. */
ZTB_API const char *ztb_challenge_error(ztb_err rv, ztb_auth_scheme scheme);

/* The fixed English description ztb_challenge uses for rv. Static. */
ZTB_API const char *ztb_challenge_description(ztb_err rv);

#ifdef __cplusplus
}
#endif

#endif /* ZTB_RESOURCE_H */
