/*
 * resource.c - the resource server's side of OAuth (ztb/resource.h):
 * Protected Resource Metadata (RFC 9728), reading the Authorization header,
 * and the refusal of a request (status and WWW-Authenticate).
 *
 * How it works: a resource identifier is checked once by resource_split
 * (scheme, authority, path; printable, no quotes, no query or fragment) and
 * every output is built from its parts; the document is written with
 * jansson from values that passed that check. The refusal table is the one
 * the broker's GET /v1/authorize answers with (docs/gateways.md).
 *
 * Must never: put token content, or an option with a quote or a control
 * character, into a header; write past cap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <ztb/resource.h>

#include "wire/authorization.h"

#define RESOURCE_MAX 512
#define WELL_KNOWN   "/.well-known/oauth-protected-resource"

/* 1 if s is 1..max bytes of printable ASCII without space, quote or backslash. */
static int plain(const char *s, size_t max)
{
    size_t n = s != NULL ? strnlen(s, max + 1) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

/* 1 if s is 1..max bytes of printable ASCII (spaces allowed: a name for people). */
static int printable(const char *s, size_t max)
{
    size_t n = s != NULL ? strnlen(s, max + 1) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* 1 if host (len bytes, port cut off) is a loopback name or address. */
static int loopback_host(const char *host, size_t len)
{
    return (len == 9 && strncasecmp(host, "localhost", 9) == 0) ||
           (len == 5 && memcmp(host, "[::1]", 5) == 0) ||
           (len >= 4 && memcmp(host, "127.", 4) == 0);
}

/* Split a resource identifier: *auth_len bytes of scheme://authority, then
 * the path from there (maybe ""). 1 if it is a valid identifier. */
static int resource_split(const char *r, size_t *auth_len)
{
    if (!plain(r, RESOURCE_MAX) || strpbrk(r, "?#") != NULL)
        return 0;
    size_t skip = strncmp(r, "https://", 8) == 0 ? 8 : strncmp(r, "http://", 7) == 0 ? 7 : 0;
    if (skip == 0)
        return 0;
    const char *host = r + skip;
    size_t alen = strcspn(host, "/");
    if (alen == 0 || memchr(host, '@', alen) != NULL)
        return 0;
    size_t hlen = alen;
    if (host[0] == '[') {
        const char *close = memchr(host, ']', alen);
        if (close == NULL)
            return 0;
        hlen = (size_t)(close - host) + 1;
    } else {
        const char *colon = memchr(host, ':', alen);
        if (colon != NULL)
            hlen = (size_t)(colon - host);
    }
    if (skip == 7 && !loopback_host(host, hlen))
        return 0; /* plain http only on loopback */
    *auth_len = skip + alen;
    return 1;
}

/* The path after the authority without a terminating slash (RFC 9728 §3.1). */
static size_t path_len(const char *path)
{
    size_t n = strlen(path);
    return n > 0 && path[n - 1] == '/' ? n - 1 : n;
}

ztb_err ztb_resource_metadata_path(const char *resource, char *out, size_t cap)
{
    size_t alen;
    if (out == NULL || cap == 0)
        return ZTB_ERR_INVALID_ARG;
    out[0] = '\0';
    if (!resource_split(resource, &alen))
        return ZTB_ERR_INVALID_ARG;
    const char *path = resource + alen;
    int n = snprintf(out, cap, "%s%.*s", WELL_KNOWN, (int)path_len(path), path);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return ZTB_ERR_TOO_LARGE;
    }
    return ZTB_OK;
}

ztb_err ztb_resource_metadata_url(const char *resource, char *out, size_t cap)
{
    size_t alen;
    if (out == NULL || cap == 0)
        return ZTB_ERR_INVALID_ARG;
    out[0] = '\0';
    if (!resource_split(resource, &alen))
        return ZTB_ERR_INVALID_ARG;
    const char *path = resource + alen;
    int n = snprintf(out, cap, "%.*s%s%.*s", (int)alen, resource, WELL_KNOWN, (int)path_len(path),
                     path);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return ZTB_ERR_TOO_LARGE;
    }
    return ZTB_OK;
}

/* Add name: [values...] to o. 0 on no memory. */
static int add_strings(json_t *o, const char *name, const char *const *values)
{
    json_t *a = json_array();
    if (a == NULL || json_object_set_new(o, name, a) != 0)
        return 0;
    for (const char *const *v = values; *v != NULL; v++)
        if (json_array_append_new(a, json_string(*v)) != 0)
            return 0;
    return 1;
}

ztb_err ztb_resource_metadata_json(const ztb_resource *r, char *out, size_t cap, size_t *len)
{
    size_t alen;
    if (len != NULL)
        *len = 0;
    if (r == NULL || out == NULL || cap == 0)
        return ZTB_ERR_INVALID_ARG;
    out[0] = '\0';
    if (!resource_split(r->resource, &alen) || !plain(r->authorization_server, RESOURCE_MAX) ||
        (r->resource_name != NULL && !printable(r->resource_name, 256)))
        return ZTB_ERR_INVALID_ARG;
    size_t nscopes = 0;
    for (const char *const *s = r->scopes; s != NULL && *s != NULL; s++, nscopes++)
        if (!plain(*s, 256) || nscopes == 256)
            return ZTB_ERR_INVALID_ARG;
    static const char *const header[] = {"header", NULL};
    static const char *const es256[] = {"ES256", NULL};
    const char *const as[] = {r->authorization_server, NULL};
    json_t *o = json_object();
    int ok = o != NULL && json_object_set_new(o, "resource", json_string(r->resource)) == 0 &&
             add_strings(o, "authorization_servers", as) &&
             add_strings(o, "bearer_methods_supported", header) &&
             add_strings(o, "dpop_signing_alg_values_supported", es256) &&
             (nscopes == 0 || add_strings(o, "scopes_supported", r->scopes)) &&
             (r->resource_name == NULL ||
              json_object_set_new(o, "resource_name", json_string(r->resource_name)) == 0) &&
             (!r->dpop_required ||
              json_object_set_new(o, "dpop_bound_access_tokens_required", json_true()) == 0);
    char *text = ok ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (text == NULL)
        return ZTB_ERR_NOMEM;
    size_t n = strlen(text);
    ztb_err rv = ZTB_ERR_TOO_LARGE;
    if (n < cap) {
        memcpy(out, text, n + 1);
        if (len != NULL)
            *len = n;
        rv = ZTB_OK;
    }
    free(text);
    return rv;
}

ztb_auth_scheme ztb_authorization_parse(const char *h, const char **token)
{
    return ztb_wire_authorization_read(h, token, NULL);
}

const char *ztb_challenge_description(ztb_err rv)
{
    switch (rv) {
    case ZTB_ERR_NOT_FOUND: return "no access token (Authorization: Bearer or DPoP)";
    case ZTB_ERR_EXPIRED: return "the token has expired";
    case ZTB_ERR_NOT_YET_VALID:
    case ZTB_ERR_IAT: return "the token is not valid yet";
    case ZTB_ERR_ISSUER: return "the token is not from this broker";
    case ZTB_ERR_AUDIENCE: return "the token is for another audience";
    case ZTB_ERR_ACTION: return "the token is for another action";
    case ZTB_ERR_RESOURCE: return "the token is for another resource";
    case ZTB_ERR_BINDING:
        return "the token's binding is not met (DPoP scheme and proof by its key)";
    case ZTB_ERR_DPOP: return "one DPoP proof for this method and URL, signed by the token's key";
    case ZTB_ERR_DPOP_REPLAY: return "the DPoP proof was used before";
    case ZTB_ERR_REVOKED: return "the token was revoked";
    case ZTB_ERR_AGENT_REVOKED: return "the agent's tokens were revoked";
    case ZTB_ERR_AUDIENCE_KILLED: return "the audience is disabled";
    case ZTB_ERR_KEY_TAINTED: return "the signing key was withdrawn";
    case ZTB_ERR_REPLAY: return "the single-use token was already used";
    case ZTB_ERR_UNAVAILABLE:
    case ZTB_ERR_REVOCATION_STALE: return "the revocation state or keys are not current";
    case ZTB_ERR_SINGLE_USE: return "a single-use token and no store to consume it in";
    case ZTB_ERR_INVALID_ARG:
    case ZTB_ERR_INVALID_REQUEST: return "one Authorization header: Bearer or DPoP and one token";
    case ZTB_ERR_NOMEM:
    case ZTB_ERR_INTERNAL: return "the resource server failed";
    default: return "the token is not a valid token of this broker";
    }
}

/* The status for rv (scheme given). */
static unsigned status_of(ztb_err rv)
{
    switch (rv) {
    case ZTB_ERR_ACTION:
    case ZTB_ERR_RESOURCE: return 403;
    case ZTB_ERR_UNAVAILABLE:
    case ZTB_ERR_REVOCATION_STALE:
    case ZTB_ERR_SINGLE_USE: return 503;
    case ZTB_ERR_INVALID_ARG:
    case ZTB_ERR_INVALID_REQUEST: return 400;
    case ZTB_ERR_NOMEM:
    case ZTB_ERR_INTERNAL: return 500;
    default: return 401;
    }
}

const char *ztb_challenge_error(ztb_err rv, ztb_auth_scheme scheme)
{
    if (scheme == ZTB_SCHEME_NONE)
        return rv == ZTB_ERR_NOT_FOUND ? "invalid_token" : "invalid_request";
    switch (status_of(rv)) {
    case 403: return "insufficient_scope";
    case 503: return "temporarily_unavailable";
    case 400: return "invalid_request";
    case 500: return "server_error";
    default:
        return rv == ZTB_ERR_DPOP || rv == ZTB_ERR_DPOP_REPLAY ? "invalid_dpop_proof"
                                                               : "invalid_token";
    }
}

unsigned ztb_challenge(ztb_err rv, const ztb_challenge_opts *o, char *www, size_t cap)
{
    if (www == NULL || cap == 0)
        return 0;
    www[0] = '\0';
    if (rv == ZTB_OK || o == NULL)
        return 0;
    const char *realm = o->realm != NULL ? o->realm : "ztb";
    if (!plain(realm, 64) || (o->resource_metadata != NULL && !plain(o->resource_metadata, 1024)) ||
        (o->scope != NULL && !plain(o->scope, 256)))
        return 0;
    char rm[1100] = "";
    if (o->resource_metadata != NULL)
        snprintf(rm, sizeof(rm), ", resource_metadata=\"%s\"", o->resource_metadata);
    int n;
    unsigned status;
    if (o->scheme == ZTB_SCHEME_NONE) { /* RFC 6750 §3.1: no error code without a token */
        status = rv == ZTB_ERR_NOT_FOUND ? 401 : 400;
        n = snprintf(www, cap, "Bearer realm=\"%s\"%s, DPoP realm=\"%s\", algs=\"ES256\"%s", realm,
                     rm, realm, rm);
    } else {
        status = status_of(rv);
        if (status == 503 || status == 500)
            return status; /* not the client's token: no challenge */
        const char *err = ztb_challenge_error(rv, o->scheme);
        int dpop = o->scheme == ZTB_SCHEME_DPOP || rv == ZTB_ERR_BINDING || rv == ZTB_ERR_DPOP ||
                   rv == ZTB_ERR_DPOP_REPLAY;
        char scope[300] = "";
        if (status == 403 && o->scope != NULL)
            snprintf(scope, sizeof(scope), ", scope=\"%s\"", o->scope);
        n = snprintf(www, cap, "%s realm=\"%s\", error=\"%s\", error_description=\"%s\"%s%s%s",
                     dpop ? "DPoP" : "Bearer", realm, err, ztb_challenge_description(rv), scope,
                     dpop ? ", algs=\"ES256\"" : "", rm);
    }
    if (n < 0 || (size_t)n >= cap) {
        www[0] = '\0';
        return 0;
    }
    return status;
}
