/*
 * authz.c - the ztb-authz decision (see authz.h): options, the verifiers
 * per audience, and GET /v1/authorize answered as the broker answers it.
 *
 * How it works, cheapest and least revealing first (the broker's order,
 * broker/tokens/authorize.c): the caller must be on loopback; the original
 * method and URI, read in either form by route_check_original (the two
 * headers, or the prefix form's own method and raw target), must match a
 * route (else 403 and nothing else is read), and no method override header
 * or _method query parameter may name another method (else 403); the
 * Authorization header must be there once,
 * "Bearer" or "DPoP" (any case) and one token; then ztb_verify of the
 * route's audience verifier checks everything (signature with the key the
 * kid names and its pinned algorithm, typ, the strict claims, issuer,
 * audience, times, action, resource, revocation, the DPoP binding for the
 * original method and the table's origin + path, the proof's jti, and last
 * consumes a single-use token in Redis), and ztb_challenge (libztb) turns a
 * refusal into the status and WWW-Authenticate the broker would send, with
 * the RFC 9728 metadata URL added.
 *
 * Must never: answer 200 on anything but ZTB_OK from ztb_verify; hand a
 * bound token's proof to the verifier when the Bearer scheme was used.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "authz/authz.h"
#include "common/buf.h"
#include "wire/error_response.h"

struct audience_verifier {
    char audience[ROUTE_NAME_MAX];
    ztb_verifier *v;
};

struct authz {
    struct route_table *routes;
    struct audience_verifier av[AUTHZ_MAX_AUDIENCES];
    size_t nav;
    char method_header[64], uri_header[64];
    char origin[ROUTE_ORIGIN_MAX];
    char metadata_path[600], metadata_url[700];
    char *metadata_json;
};

/* ---- options ------------------------------------------------------------- */

static const char usage_text[] =
    "usage: ztb-authz --issuer URL (--jwks-url URL | --jwks-file PATH)\n"
    "                 (--redis URL | --redis-file PATH)\n"
    "                 --routes FILE [--listen HOST:PORT] [--resource URL]\n"
    "                 [--resource-name NAME] [--method-header NAME] [--uri-header NAME]\n"
    "                 [--ca-file PATH] [--skew SECONDS] [--revocation-grace MS]\n"
    "                 [--report-interval MS] [--allow-insecure-http]\n"
    "\n"
    "The gateway decision endpoint /v1/authorize on libztb's verifier, for\n"
    "gateways on hosts without a broker: the broker's contract and route table,\n"
    "no round trip to the broker. nginx auth_request: GET /v1/authorize with the\n"
    "original method and URI headers. Envoy ext_authz (HTTP, path_prefix\n"
    "/v1/authorize): the original method to /v1/authorize/<original path>.\n"
    "\n"
    "  --issuer URL          the broker's issuer (the tokens' iss)\n"
    "  --jwks-url URL        the broker's JWKS (https, or http to loopback)\n"
    "  --jwks-file PATH      a JWKS file instead (ztbctl keys jwks)\n"
    "  --redis URL           the broker's Redis: revocation feed, single-use\n"
    "                        tokens, DPoP proof ids (redis://, unix://, redis+sentinel://)\n"
    "  --redis-file PATH     the same URL read from a file only its owner may read\n"
    "                        (0600): a password in --redis is visible to every local\n"
    "                        user (ps, /proc/PID/cmdline)\n"
    "  --routes FILE         the route table (the broker's authorize_routes format)\n"
    "  --listen HOST:PORT    where to answer (default 127.0.0.1:8181; only\n"
    "                        loopback callers are answered)\n"
    "  --resource URL        the protected resource (RFC 9728 metadata and\n"
    "                        resource_metadata in challenges; default: the\n"
    "                        route table's origin)\n"
    "  --resource-name NAME  resource_name in the metadata\n"
    "  --method-header NAME  header with the original method (X-Original-Method)\n"
    "  --uri-header NAME     header with the original URI (X-Original-URI)\n"
    "  --ca-file PATH        CA bundle for an https JWKS URL\n"
    "  --skew SECONDS        clock skew tolerated (default 30, at most 60)\n"
    "  --revocation-grace MS answer from the last revocation state this long\n"
    "                        after losing the feed (default 0: refuse at once)\n"
    "  --report-interval MS  how often callers refused for no ztb token or a\n"
    "                        foreign one are reported to the broker through\n"
    "                        Redis, by X-Ztb-Source or X-Real-IP (default\n"
    "                        10000; 0: never; docs/soc.md)\n"
    "  --allow-insecure-http plain http JWKS from a host other than loopback\n"
    "  --help, --version\n"
    "\n"
    "Answers: 200 with X-Ztb-Subject, X-Ztb-Agent, X-Ztb-Action, X-Ztb-Resource,\n"
    "X-Ztb-Jti (X-Ztb-Actor); 401/403 with WWW-Authenticate; 400 for a gateway\n"
    "misconfiguration; 503 while the revocation feed or the keys are stale.\n"
    "Also GET /healthz, GET /readyz and the resource's metadata. See ztb-authz(8)\n"
    "and docs/gateways.md.\n";

/* Read an unsigned option value <= max. 0 if it is not one. */
static int read_uint(const char *s, unsigned max, unsigned *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0' || v > max)
        return 0;
    *out = (unsigned)v;
    return 1;
}

/* The Redis URL of --redis-file into c->redis_url: its first line, from a
 * regular file no one but its owner may read. 1, or 0 with why filled. */
static int read_redis_file(struct authz_config *c, char *why, size_t cap)
{
    FILE *f = fopen(c->redis_file, "re");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        snprintf(why, cap, "--redis-file %s: %s", c->redis_file, strerror(errno));
        if (f != NULL)
            fclose(f);
        return 0;
    }
    int ok = 0;
    if (!S_ISREG(st.st_mode))
        snprintf(why, cap, "--redis-file %s is not a regular file", c->redis_file);
    else if (st.st_mode & 077)
        snprintf(why, cap,
                 "--redis-file %s may be read by others (mode %03o): chmod 600 it, it holds "
                 "the Redis password",
                 c->redis_file, (unsigned)(st.st_mode & 0777));
    else if (fgets(c->redis_url, sizeof(c->redis_url), f) == NULL)
        snprintf(why, cap, "--redis-file %s is empty", c->redis_file);
    else if (strchr(c->redis_url, '\n') == NULL && !feof(f))
        snprintf(why, cap, "--redis-file %s: the URL is longer than %zu bytes", c->redis_file,
                 sizeof(c->redis_url) - 2);
    else
        ok = 1;
    fclose(f);
    c->redis_url[strcspn(c->redis_url, "\r\n")] = '\0';
    if (ok && c->redis_url[0] == '\0') {
        snprintf(why, cap, "--redis-file %s: its first line is empty", c->redis_file);
        ok = 0;
    }
    return ok;
}

int authz_parse_args(int argc, char *const *argv, struct authz_config *c, FILE *out, char *why,
                     size_t cap)
{
    memset(c, 0, sizeof(*c));
    c->listen = "127.0.0.1:8181";
    c->method_header = "X-Original-Method";
    c->uri_header = "X-Original-URI";
    c->skew_s = 30;
    c->report_ms = 10000;
    why[0] = '\0';
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = strcmp(k, "--issuer") == 0          ? &c->issuer
                            : strcmp(k, "--jwks-url") == 0      ? &c->jwks_url
                            : strcmp(k, "--jwks-file") == 0     ? &c->jwks_file
                            : strcmp(k, "--redis") == 0         ? &c->redis
                            : strcmp(k, "--redis-file") == 0    ? &c->redis_file
                            : strcmp(k, "--routes") == 0        ? &c->routes
                            : strcmp(k, "--ca-file") == 0       ? &c->ca_file
                            : strcmp(k, "--listen") == 0        ? &c->listen
                            : strcmp(k, "--method-header") == 0 ? &c->method_header
                            : strcmp(k, "--uri-header") == 0    ? &c->uri_header
                            : strcmp(k, "--resource") == 0      ? &c->resource
                            : strcmp(k, "--resource-name") == 0 ? &c->resource_name
                                                                : NULL;
        if (strcmp(k, "--help") == 0 || strcmp(k, "-h") == 0) {
            fputs(usage_text, out);
            return 1;
        }
        if (strcmp(k, "--version") == 0) {
            fprintf(out, "ztb-authz %s\n", ztb_version());
            return 1;
        }
        if (strcmp(k, "--allow-insecure-http") == 0) {
            c->allow_insecure_http = 1;
            continue;
        }
        if (strcmp(k, "--report-interval") == 0) {
            if (!read_uint(v, 3600000, &c->report_ms) || (c->report_ms > 0 && c->report_ms < 100)) {
                snprintf(why, cap, "--report-interval takes 0 or 100 to 3600000 ms");
                return -1;
            }
            i++;
            continue;
        }
        if (strcmp(k, "--skew") == 0 || strcmp(k, "--revocation-grace") == 0) {
            int skew = k[2] == 's';
            if (!read_uint(v, skew ? 60 : 600000, skew ? &c->skew_s : &c->grace_ms)) {
                snprintf(why, cap, "%s takes a number (%s)", k,
                         skew ? "0 to 60 seconds" : "0 to 600000 ms");
                return -1;
            }
            i++;
            continue;
        }
        if (slot == NULL) {
            /* never the value: a misplaced or "--redis=" one may be a Redis
             * URL with its password, and this goes to stderr */
            if (k[0] == '-')
                snprintf(why, cap, "unknown option %.*s (ztb-authz --help)", (int)strcspn(k, "="),
                         k);
            else
                snprintf(why, cap,
                         "argument %d is not an option (options are --NAME VALUE; "
                         "ztb-authz --help)",
                         i);
            return -1;
        }
        if (v == NULL || *v == '\0') {
            snprintf(why, cap, "%s needs a value", k);
            return -1;
        }
        *slot = v;
        i++;
    }
    if (c->redis != NULL && c->redis_file != NULL)
        snprintf(why, cap, "give one of --redis and --redis-file");
    else if (c->redis_file != NULL && read_redis_file(c, why, cap))
        c->redis = c->redis_url;
    if (why[0] != '\0')
        return -1;
    if (c->issuer == NULL || c->redis == NULL || c->routes == NULL)
        snprintf(
            why, cap,
            "--issuer, --redis (or --redis-file) and --routes are required (ztb-authz --help)");
    else if ((c->jwks_url == NULL) == (c->jwks_file == NULL))
        snprintf(why, cap, "give one of --jwks-url and --jwks-file");
    else if (strlen(c->method_header) >= 64 || strlen(c->uri_header) >= 64 ||
             strspn(c->method_header,
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") !=
                 strlen(c->method_header) ||
             strspn(c->uri_header,
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") !=
                 strlen(c->uri_header))
        snprintf(why, cap, "--method-header and --uri-header are header names (A-Z a-z 0-9 -)");
    return why[0] != '\0' ? -1 : 0;
}

/* ---- the verifiers ------------------------------------------------------- */

/* The verifier for aud, or NULL. */
static ztb_verifier *verifier_for(const struct authz *a, const char *aud)
{
    for (size_t i = 0; i < a->nav; i++)
        if (strcmp(a->av[i].audience, aud) == 0)
            return a->av[i].v;
    return NULL;
}

static ztb_err new_verifier(const struct authz_config *c, const char *aud,
                            ztb_err (*verifier_cfg)(ztb_verifier_config *, void *), void *ud,
                            ztb_verifier **out)
{
    ztb_verifier_config *vc = ztb_verifier_config_new();
    ztb_err rv = vc != NULL ? ZTB_OK : ZTB_ERR_NOMEM;
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_issuer(vc, c->issuer);
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_audience(vc, aud);
    if (rv == ZTB_OK)
        rv = c->jwks_url != NULL ? ztb_verifier_config_set_jwks_url(vc, c->jwks_url)
                                 : ztb_verifier_config_set_jwks_file(vc, c->jwks_file);
    if (rv == ZTB_OK && c->ca_file != NULL)
        rv = ztb_verifier_config_set_ca_file(vc, c->ca_file);
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_allow_insecure_http(vc, c->allow_insecure_http);
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_skew(vc, c->skew_s);
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_unknown_report_interval(vc, c->report_ms);
    if (rv == ZTB_OK)
        rv = verifier_cfg != NULL ? verifier_cfg(vc, ud)
                                  : ztb_verifier_config_set_redis(vc, c->redis);
    if (rv == ZTB_OK && verifier_cfg == NULL)
        rv = ztb_verifier_config_set_revocation_grace(vc, c->grace_ms);
    if (rv == ZTB_OK)
        rv = ztb_verifier_new(vc, out);
    ztb_verifier_config_free(vc);
    return rv;
}

void authz_free(struct authz *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->nav; i++)
        ztb_verifier_free(a->av[i].v);
    route_table_free(a->routes);
    free(a->metadata_json);
    free(a);
}

/* The metadata document of a's resource (c->resource or the origin), its
 * scopes the distinct actions of the routes. */
static ztb_err make_metadata(struct authz *a, const struct authz_config *c, char *why, size_t cap)
{
    const char *res = c->resource != NULL ? c->resource : a->origin[0] ? a->origin : NULL;
    if (res == NULL)
        return ZTB_OK; /* no resource named: no metadata */
    const char *scopes[ROUTE_MAX_ROUTES + 1];
    size_t n = 0;
    for (size_t i = 0; i < route_table_count(a->routes); i++) {
        const char *act = route_table_action(a->routes, i);
        size_t j = 0;
        while (j < n && strcmp(scopes[j], act) != 0)
            j++;
        if (j == n)
            scopes[n++] = act;
    }
    scopes[n] = NULL;
    ztb_resource r = {.resource = res,
                      .authorization_server = c->issuer,
                      .scopes = scopes,
                      .resource_name = c->resource_name};
    char *doc = malloc(65536);
    ztb_err rv = doc != NULL ? ztb_resource_metadata_json(&r, doc, 65536, NULL) : ZTB_ERR_NOMEM;
    if (rv == ZTB_OK)
        rv = ztb_resource_metadata_path(res, a->metadata_path, sizeof(a->metadata_path));
    if (rv == ZTB_OK)
        rv = ztb_resource_metadata_url(res, a->metadata_url, sizeof(a->metadata_url));
    if (rv != ZTB_OK) {
        free(doc);
        snprintf(why, cap,
                 "--resource (or the route table's origin) must be an https URL without query "
                 "or fragment (http only on loopback), --issuer and --resource-name printable");
        return rv == ZTB_ERR_NOMEM ? rv : ZTB_ERR_INVALID_ARG;
    }
    a->metadata_json = doc;
    return ZTB_OK;
}

ztb_err authz_new(const struct authz_config *c,
                  ztb_err (*verifier_cfg)(ztb_verifier_config *vc, void *ud), void *ud,
                  struct authz **out, char *why, size_t cap)
{
    *out = NULL;
    why[0] = '\0';
    struct authz *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return ZTB_ERR_NOMEM;
    snprintf(a->method_header, sizeof(a->method_header), "%s", c->method_header);
    snprintf(a->uri_header, sizeof(a->uri_header), "%s", c->uri_header);
    ztb_err rv = route_table_load(c->routes, &a->routes, why, cap);
    for (size_t i = 0; rv == ZTB_OK && i < route_table_count(a->routes); i++) {
        const char *aud = route_table_audience(a->routes, i);
        if (verifier_for(a, aud) != NULL)
            continue;
        if (a->nav == AUTHZ_MAX_AUDIENCES) {
            snprintf(why, cap, "%s: more than %d audiences", c->routes, AUTHZ_MAX_AUDIENCES);
            rv = ZTB_ERR_INVALID_ARG;
            break;
        }
        struct audience_verifier *av = &a->av[a->nav];
        snprintf(av->audience, sizeof(av->audience), "%s", aud);
        rv = new_verifier(c, aud, verifier_cfg, ud, &av->v);
        if (rv != ZTB_OK)
            snprintf(why, cap, "verifier for audience %s: %s: %s", aud, ztb_strerror(rv),
                     ztb_verifier_errdetail(NULL));
        else
            a->nav++;
    }
    if (rv == ZTB_OK) {
        snprintf(a->origin, sizeof(a->origin), "%s", route_table_origin(a->routes));
        rv = make_metadata(a, c, why, cap);
    }
    if (rv != ZTB_OK) {
        if (why[0] == '\0')
            snprintf(why, cap, "%s", ztb_strerror(rv));
        authz_free(a);
        return rv;
    }
    *out = a;
    return ZTB_OK;
}

const char *authz_metadata_path(const struct authz *a)
{
    return a->metadata_path;
}

const char *authz_metadata_json(const struct authz *a)
{
    return a->metadata_json;
}

const char *authz_method_header(const struct authz *a)
{
    return a->method_header;
}

const char *authz_uri_header(const struct authz *a)
{
    return a->uri_header;
}

int authz_ready(struct authz *a)
{
    for (size_t i = 0; i < a->nav; i++) {
        ztb_verifier_stats st = ZTB_VERIFIER_STATS_INIT;
        if (ztb_verifier_stats_get(a->av[i].v, &st) != ZTB_OK || !st.revocation_live ||
            st.revocation_full)
            return 0;
    }
    return 1;
}

/* ---- the decision -------------------------------------------------------- */

static void header(struct authz_answer *ans, const char *name, const char *value)
{
    if (ans->nhdr == sizeof(ans->hdr_name) / sizeof(ans->hdr_name[0]))
        return;
    snprintf(ans->hdr_name[ans->nhdr], sizeof(ans->hdr_name[0]), "%s", name);
    snprintf(ans->hdr_value[ans->nhdr], sizeof(ans->hdr_value[0]), "%s", value);
    ans->nhdr++;
}

/* The JSON error body (the broker's shape: error, error_description, ztb_error). */
static void body(struct authz_answer *ans, const char *code, ztb_err err, const char *desc)
{
    ztb_buf b;
    ztb_buf_init_fixed(&b, ans->body, sizeof(ans->body));
    if (error_response_write(&b, code, err, desc) != ZTB_OK)
        snprintf(ans->body, sizeof(ans->body), "{\"error\":\"%s\"}", code);
    else
        ans->body[b.len] = '\0';
}

/* A refusal: status and challenge by ztb_challenge, the body. */
static void refuse(struct authz *a, struct authz_answer *ans, ztb_err rv, ztb_auth_scheme s,
                   const char *scope)
{
    char www[AUTHZ_HDR_MAX];
    ztb_challenge_opts o = {.scheme = s,
                            .resource_metadata = a->metadata_url[0] ? a->metadata_url : NULL,
                            .scope = scope};
    unsigned st = ztb_challenge(rv, &o, www, sizeof(www));
    if (st == 0) { /* cannot happen with checked options; fail closed anyway */
        st = 500;
        www[0] = '\0';
    }
    ans->status = st;
    if (www[0] != '\0')
        header(ans, "WWW-Authenticate", www);
    if (st == 503)
        header(ans, "Retry-After", "1");
    body(ans, ztb_challenge_error(rv, s), rv, ztb_challenge_description(rv));
    ans->log_reason = ztb_err_name(rv);
}

/* A plain error answer (no challenge). */
static void plain_error(struct authz_answer *ans, unsigned status, const char *code, ztb_err err,
                        const char *desc)
{
    ans->status = status;
    body(ans, code, err, desc);
    ans->log_reason = ztb_err_name(err);
}

/* 1 if every identity value fits a header (claims are printable: wire/claims.h). */
static int fits(const char *s)
{
    return s == NULL || strlen(s) < AUTHZ_HDR_MAX;
}

void authz_decide(struct authz *a, const struct authz_request *rq, struct authz_answer *ans)
{
    memset(ans, 0, sizeof(*ans));
    header(ans, "Cache-Control", "no-store");
    if (!rq->loopback) {
        plain_error(ans, 403, "access_denied", ZTB_ERR_ACCESS_DENIED,
                    "ztb-authz answers gateways on its own host only (loopback)");
        return;
    }
    /* the original request, in either form, as the broker reads it */
    struct route_check orig;
    const char *why = NULL;
    if (route_check_original(rq->check_method, rq->target, rq->method, rq->n_method, rq->uri,
                             rq->n_uri, &orig, &why) != ZTB_OK) {
        plain_error(ans, 400, "invalid_request", ZTB_ERR_INVALID_REQUEST, why);
        return;
    }
    if (!route_override_ok(&orig, rq->n_override, rq->override)) {
        /* the backend may run the overriding method, not the one authorized */
        plain_error(ans, 403, "access_denied", ZTB_ERR_ACCESS_DENIED,
                    "a method override (an X-HTTP-Method-Override, X-HTTP-Method or "
                    "X-Method-Override header, a _method query parameter) names another "
                    "method than the original one");
        return;
    }
    struct route_need need;
    if (route_table_match(a->routes, orig.method, orig.uri, &need) != ZTB_OK) {
        /* as the broker: 403 insufficient_scope before the token is read */
        char www[AUTHZ_HDR_MAX];
        snprintf(www, sizeof(www), "Bearer realm=\"ztb\", error=\"insufficient_scope\"%s%s%s",
                 a->metadata_url[0] ? ", resource_metadata=\"" : "", a->metadata_url,
                 a->metadata_url[0] ? "\"" : "");
        header(ans, "WWW-Authenticate", www);
        plain_error(ans, 403, "insufficient_scope", ZTB_ERR_ACCESS_DENIED,
                    "no route of the table allows this method and path");
        return;
    }
    ztb_verifier *v = verifier_for(a, need.audience);
    if (v == NULL) {
        plain_error(ans, 500, "server_error", ZTB_ERR_INTERNAL, "no verifier for the audience");
        return;
    }
    if (rq->n_authorization == 0) {
        (void)ztb_verifier_report_no_token(v, rq->source); /* an unknown client */
        refuse(a, ans, ZTB_ERR_NOT_FOUND, ZTB_SCHEME_NONE, NULL);
        return;
    }
    const char *tok = NULL;
    ztb_auth_scheme s = rq->n_authorization == 1 ? ztb_authorization_parse(rq->authorization, &tok)
                                                 : ZTB_SCHEME_NONE;
    if (s == ZTB_SCHEME_NONE) {
        if (rq->n_authorization == 1) /* Basic, an API key scheme...: no ztb token */
            (void)ztb_verifier_report_no_token(v, rq->source);
        refuse(a, ans, ZTB_ERR_INVALID_REQUEST, ZTB_SCHEME_NONE, NULL);
        return;
    }
    /* DPoP: the proof is handed over only with the DPoP scheme (RFC 9449
     * §7.2), for the original method and the table's origin + path */
    char htu[ROUTE_ORIGIN_MAX + ROUTE_PATH_MAX + 1] = "";
    const char *q = strchr(orig.uri, '?');
    int plen = q != NULL ? (int)(q - orig.uri) : (int)strlen(orig.uri);
    if (need.origin[0] != '\0')
        snprintf(htu, sizeof(htu), "%s%.*s", need.origin, plen, orig.uri);
    ztb_expect want = {
        .action = need.action,
        .resource = need.resource[0] != '\0' ? need.resource : NULL,
        .flags = s == ZTB_SCHEME_DPOP ? ZTB_EXPECT_DPOP_SCHEME : 0,
        .dpop_proof = s == ZTB_SCHEME_DPOP && rq->n_dpop == 1 ? rq->dpop : NULL,
        .htm = orig.method,
        .htu = htu,
    };
    ztb_claims *cl = ztb_claims_new();
    if (cl == NULL) {
        plain_error(ans, 500, "server_error", ZTB_ERR_NOMEM, "out of memory");
        return;
    }
    ztb_err rv = ztb_verify_from(v, tok, &want, cl, rq->source);
    if (rv == ZTB_ERR_INVALID_ARG && want.dpop_proof != NULL)
        rv = ZTB_ERR_DPOP; /* a proof and no origin to check its htu against */
    if (rv != ZTB_OK) {
        refuse(a, ans, rv, s, need.action);
        ztb_claims_free(cl);
        return;
    }
    const char *sub = ztb_claims_subject(cl), *agent = ztb_claims_agent(cl);
    const char *jti = ztb_claims_jti(cl), *act = ztb_claims_actor(cl);
    if (!fits(sub) || !fits(agent) || !fits(act) || !fits(need.resource)) {
        plain_error(ans, 500, "server_error", ZTB_ERR_INTERNAL,
                    "an identity is too long for a header");
        ztb_claims_free(cl);
        return;
    }
    ans->status = 200;
    header(ans, "X-Ztb-Subject", sub);
    header(ans, "X-Ztb-Agent", agent != NULL ? agent : "");
    header(ans, "X-Ztb-Action", need.action);
    header(ans, "X-Ztb-Resource", need.resource);
    header(ans, "X-Ztb-Jti", jti);
    if (act != NULL)
        header(ans, "X-Ztb-Actor", act);
    snprintf(ans->body, sizeof(ans->body), "{\"allowed\":true}");
    ztb_claims_free(cl);
}
