/*
 * mcp-tool-server - a small MCP-style tool server (JSON-RPC 2.0 over HTTP
 * POST, MCP's streamable HTTP transport without streaming) protected by
 * ztb as an OAuth resource server (MCP authorization, 2025-06-18):
 *
 *   - it serves its Protected Resource Metadata (RFC 9728) at
 *     /.well-known/oauth-protected-resource/mcp;
 *   - every request to /mcp needs a ztb token for this server's audience:
 *     `initialize`, `notifications/initialized` and `tools/list` the action
 *     mcp:connect, `tools/call` of the one tool, `refund`, the action
 *     payments:refund on the resource orders/<order_id>;
 *   - a request without a valid token gets 401 with WWW-Authenticate naming
 *     the metadata (resource_metadata, RFC 9728 §5.1); a token for another
 *     server is refused (its audience), however valid it is there.
 *
 *   mcp-tool-server --issuer http://127.0.0.1:8443 --audience mcp-refunds \
 *       --jwks-url http://127.0.0.1:8443/.well-known/jwks.json \
 *       --redis redis://127.0.0.1:6379 --listen 127.0.0.1:8090
 *
 * It prints "mcp-tool-server: listening on http://HOST:PORT/mcp" when ready
 * (PORT 0 picks one), one line per refusal on stderr, and stops on SIGINT or
 * SIGTERM. --resource URL sets the resource identifier when clients reach
 * it under another URL (default http://HOST:PORT/mcp).
 *
 * Build outside the ztb tree against an installed libztb:
 *   cc main.c $(pkg-config --cflags --libs ztb libmicrohttpd jansson) -o mcp-tool-server
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <ztb/ztb.h>

#define BODY_MAX      65536
#define PROTOCOL      "2025-06-18"
#define CONNECT_SCOPE "mcp:connect"
#define REFUND_SCOPE  "payments:refund"

struct server {
    ztb_verifier *v;
    char resource[256];      /* the resource identifier, http(s)://host:port/mcp */
    char metadata_path[300]; /* where the metadata is served */
    char metadata_url[400];  /* what challenges point to */
    char metadata[2048];     /* the document */
};

/* One request's body, accumulated across MHD's calls. */
struct upload {
    char *data;
    size_t len;
    int too_large;
};

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, const char *json,
                                 const char *www)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (www != NULL && www[0] != '\0')
        MHD_add_response_header(r, "WWW-Authenticate", www);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A JSON-RPC answer: {"jsonrpc":"2.0","id":id, "result"|"error": ...}; steals body. */
static enum MHD_Result rpc_answer(struct MHD_Connection *c, json_t *id, const char *member,
                                  json_t *body)
{
    json_t *o = json_pack("{s:s, s:O?, s:o}", "jsonrpc", "2.0", "id", id, member, body);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    enum MHD_Result ret = send_json(c, 200, text != NULL ? text : "{}", NULL);
    free(text);
    return ret;
}

static enum MHD_Result rpc_error(struct MHD_Connection *c, json_t *id, int code, const char *msg)
{
    return rpc_answer(c, id, "error", json_pack("{s:i, s:s}", "code", code, "message", msg));
}

/* Refuse with the status and challenge libztb gives for rv (never the token). */
static enum MHD_Result refuse(struct server *s, struct MHD_Connection *c, ztb_err rv,
                              ztb_auth_scheme scheme, const char *scope)
{
    char www[1024], body[512];
    ztb_challenge_opts o = {.scheme = scheme, .resource_metadata = s->metadata_url, .scope = scope};
    unsigned status = ztb_challenge(rv, &o, www, sizeof(www));
    if (status == 0)
        status = 500;
    snprintf(body, sizeof(body),
             "{\"error\":\"%s\",\"error_description\":\"%s\",\"ztb_error\":\"%s\"}",
             ztb_challenge_error(rv, scheme), ztb_challenge_description(rv), ztb_err_name(rv));
    fprintf(stderr, "mcp-tool-server: refused: %u %s (%s)\n", status, ztb_err_name(rv),
            ztb_verifier_errdetail(s->v));
    return send_json(c, status, body, www);
}

/* 1 if id is an order id we accept (it becomes part of the resource). */
static int order_id_ok(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n <= 64 &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

/* Counting the values of one header name (case-insensitive). */
struct hdr_count {
    const char *name;
    int n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)value;
    (void)value_size;
    struct hdr_count *h = cls;
    if (key_size == strlen(h->name) && strncasecmp(key, h->name, key_size) == 0)
        h->n++;
    return MHD_YES;
}

/* How many times the request carries header name. */
static int header_count(struct MHD_Connection *c, const char *name)
{
    struct hdr_count h = {.name = name};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, count_header, &h);
    return h.n;
}

/* The one JSON-RPC request in body, authorised and answered. */
static enum MHD_Result handle_rpc(struct server *s, struct MHD_Connection *c, const char *body,
                                  size_t len)
{
    /* the token first: no token, no parsing of anything else; one
     * Authorization and at most one DPoP header (RFC 9449 §4.3): of two,
     * which one a proxy in front read is anyone's guess */
    if (header_count(c, "Authorization") > 1 || header_count(c, "DPoP") > 1)
        return refuse(s, c, ZTB_ERR_INVALID_REQUEST, ZTB_SCHEME_NONE, NULL);
    const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *tok = NULL;
    ztb_auth_scheme scheme = ztb_authorization_parse(authz, &tok);
    if (scheme == ZTB_SCHEME_NONE)
        return refuse(s, c, authz == NULL ? ZTB_ERR_NOT_FOUND : ZTB_ERR_INVALID_REQUEST,
                      ZTB_SCHEME_NONE, NULL);
    json_error_t jerr;
    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *method = NULL;
    json_t *id = NULL, *params = NULL;
    if (req == NULL ||
        json_unpack(req, "{s:s, s?o, s?o}", "method", &method, "id", &id, "params", &params) != 0 ||
        !json_is_string(json_object_get(req, "jsonrpc")) ||
        strcmp(json_string_value(json_object_get(req, "jsonrpc")), "2.0") != 0) {
        json_decref(req);
        return rpc_error(c, NULL, -32700, "not a JSON-RPC 2.0 request");
    }
    /* what the method needs */
    char resource[80] = "";
    const char *action = CONNECT_SCOPE, *order = NULL;
    if (strcmp(method, "tools/call") == 0) {
        const char *name = NULL;
        if (json_unpack(params, "{s:s, s:{s:s}}", "name", &name, "arguments", "order_id", &order) !=
                0 ||
            strcmp(name, "refund") != 0 || !order_id_ok(order)) {
            enum MHD_Result r =
                rpc_error(c, id, -32602, "tools/call: name \"refund\" and arguments.order_id");
            json_decref(req);
            return r;
        }
        action = REFUND_SCOPE;
        snprintf(resource, sizeof(resource), "orders/%s", order);
    }
    const char *proof = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "DPoP");
    ztb_expect want = {.action = action,
                       .resource = resource[0] != '\0' ? resource : NULL,
                       .flags = scheme == ZTB_SCHEME_DPOP ? ZTB_EXPECT_DPOP_SCHEME : 0,
                       .dpop_proof = scheme == ZTB_SCHEME_DPOP ? proof : NULL,
                       .htm = "POST",
                       .htu = s->resource};
    ztb_claims *cl = ztb_claims_new();
    ztb_err rv = cl != NULL ? ztb_verify(s->v, tok, &want, cl) : ZTB_ERR_NOMEM;
    if (rv != ZTB_OK) {
        ztb_claims_free(cl);
        json_decref(req);
        return refuse(s, c, rv, scheme, action);
    }
    enum MHD_Result ret;
    if (strcmp(method, "initialize") == 0) {
        ret = rpc_answer(c, id, "result",
                         json_pack("{s:s, s:{s:{}}, s:{s:s, s:s}}", "protocolVersion", PROTOCOL,
                                   "capabilities", "tools", "serverInfo", "name",
                                   "ztb-mcp-tool-server", "version", ztb_version()));
    } else if (strcmp(method, "notifications/initialized") == 0) {
        ret = send_json(c, 202, "", NULL);
    } else if (strcmp(method, "tools/list") == 0) {
        ret = rpc_answer(c, id, "result",
                         json_pack("{s:[{s:s, s:s, s:{s:s, s:{s:{s:s}}, s:[s]}}]}", "tools", "name",
                                   "refund", "description",
                                   "Refund an order (needs a ztb token for payments:refund "
                                   "on orders/<order_id>)",
                                   "inputSchema", "type", "object", "properties", "order_id",
                                   "type", "string", "required", "order_id"));
    } else if (strcmp(method, "tools/call") == 0) {
        char text[300];
        snprintf(text, sizeof(text), "refunded order %s for %s", order, ztb_claims_subject(cl));
        fprintf(stderr, "mcp-tool-server: refund of order %s by %s\n", order,
                ztb_claims_subject(cl));
        ret = rpc_answer(c, id, "result",
                         json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", text,
                                   "isError", 0));
    } else {
        ret = rpc_error(c, id, -32601, "method not found");
    }
    ztb_claims_free(cl);
    json_decref(req);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct server *s = cls;
    struct upload *u = *con_cls;
    if (u == NULL) { /* headers only so far */
        u = calloc(1, sizeof(*u));
        if (u == NULL)
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*upload_size > 0) { /* the body, in pieces */
        if (u->len + *upload_size > BODY_MAX) {
            u->too_large = 1;
        } else {
            char *d = realloc(u->data, u->len + *upload_size);
            if (d == NULL)
                return MHD_NO;
            memcpy(d + u->len, upload, *upload_size);
            u->data = d;
            u->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, s->metadata_path) == 0)
        return send_json(c, 200, s->metadata, NULL);
    if (strcmp(url, "/mcp") != 0)
        return send_json(c, 404, "{\"error\":\"not found\"}", NULL);
    if (strcmp(method, "POST") != 0)
        return send_json(c, 405, "{\"error\":\"POST JSON-RPC requests to /mcp\"}", NULL);
    if (u->too_large)
        return send_json(c, 413, "{\"error\":\"request too large\"}", NULL);
    return handle_rpc(s, c, u->data != NULL ? u->data : "", u->len);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct upload *u = *con_cls;
    if (u != NULL) {
        free(u->data);
        free(u);
        *con_cls = NULL;
    }
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --issuer URL --audience AUD (--jwks-url URL | --jwks-file PATH)\n"
            "          --redis URL [--listen HOST:PORT] [--resource URL]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    const char *issuer = NULL, *audience = NULL, *jwks_url = NULL, *jwks_file = NULL;
    const char *redis = NULL, *listen_at = "127.0.0.1:8090", *resource = NULL;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = strcmp(k, "--issuer") == 0      ? &issuer
                            : strcmp(k, "--audience") == 0  ? &audience
                            : strcmp(k, "--jwks-url") == 0  ? &jwks_url
                            : strcmp(k, "--jwks-file") == 0 ? &jwks_file
                            : strcmp(k, "--redis") == 0     ? &redis
                            : strcmp(k, "--listen") == 0    ? &listen_at
                            : strcmp(k, "--resource") == 0  ? &resource
                                                            : NULL;
        if (slot == NULL || v == NULL)
            return usage(argv[0]);
        *slot = argv[++i];
    }
    if (issuer == NULL || audience == NULL || (jwks_url == NULL) == (jwks_file == NULL) ||
        redis == NULL)
        return usage(argv[0]);
    char host[64];
    unsigned port = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (sscanf(listen_at, "%63[^:]:%u", host, &port) != 2 || port > 65535 ||
        inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return usage(argv[0]);
    sa.sin_port = htons((uint16_t)port);

    ztb_verifier_config *cfg = ztb_verifier_config_new();
    ztb_err rv = cfg ? ZTB_OK : ZTB_ERR_NOMEM;
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_issuer(cfg, issuer);
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_audience(cfg, audience); /* this server, no other */
    if (rv == ZTB_OK)
        rv = jwks_url ? ztb_verifier_config_set_jwks_url(cfg, jwks_url)
                      : ztb_verifier_config_set_jwks_file(cfg, jwks_file);
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_redis(cfg, redis);
    static struct server s;
    if (rv == ZTB_OK)
        rv = ztb_verifier_new(cfg, &s.v);
    ztb_verifier_config_free(cfg);
    if (rv != ZTB_OK) {
        fprintf(stderr, "mcp-tool-server: %s: %s\n", ztb_strerror(rv),
                ztb_verifier_errdetail(NULL));
        return 1;
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before MHD starts its threads */
    /* bind first: the resource identifier names the port, and the metadata
     * must be whole before the first request can arrive */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t sl = sizeof(sa);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        fprintf(stderr, "mcp-tool-server: cannot listen on %s\n", listen_at);
        ztb_verifier_free(s.v);
        return 1;
    }
    unsigned bound = ntohs(sa.sin_port);
    if (resource != NULL)
        snprintf(s.resource, sizeof(s.resource), "%s", resource);
    else
        snprintf(s.resource, sizeof(s.resource), "http://%s:%u/mcp", host, bound);
    /* the metadata: this resource, the broker as its authorization server */
    const char *scopes[] = {CONNECT_SCOPE, REFUND_SCOPE, NULL};
    ztb_resource r = {.resource = s.resource,
                      .authorization_server = issuer,
                      .scopes = scopes,
                      .resource_name = "ztb example MCP tool server"};
    rv = ztb_resource_metadata_json(&r, s.metadata, sizeof(s.metadata), NULL);
    if (rv == ZTB_OK)
        rv = ztb_resource_metadata_path(s.resource, s.metadata_path, sizeof(s.metadata_path));
    if (rv == ZTB_OK)
        rv = ztb_resource_metadata_url(s.resource, s.metadata_url, sizeof(s.metadata_url));
    if (rv != ZTB_OK) {
        fprintf(stderr, "mcp-tool-server: --resource: %s (an https URL, or http on loopback)\n",
                ztb_strerror(rv));
        close(fd);
        ztb_verifier_free(s.v);
        return 1;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, &s, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE, 2u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "mcp-tool-server: cannot serve on %s\n", listen_at);
        close(fd);
        ztb_verifier_free(s.v);
        return 1;
    }
    printf("mcp-tool-server: listening on http://%s:%u/mcp\n", host, bound);
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    ztb_verifier_free(s.v);
    fprintf(stderr, "mcp-tool-server: stopped\n");
    return 0;
}
