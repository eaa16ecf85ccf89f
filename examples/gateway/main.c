/*
 * gateway - an API endpoint guarded by libztb's verifier: a small
 * libmicrohttpd server that serves POST /refunds/<id> only to a request that
 * carries a ztb access token for the action payments:refund on the resource
 * orders/<id>, and says why it refused anything else.
 *
 *   ztb-gateway-example --issuer http://127.0.0.1:8443 --audience payments \
 *       --jwks-url http://127.0.0.1:8443/.well-known/jwks.json \
 *       --redis redis://127.0.0.1:6379 --listen 127.0.0.1:8080
 *
 * It prints "gateway: listening on http://HOST:PORT" when ready (PORT 0 picks
 * one), one line per request on stderr, and stops on SIGINT or SIGTERM.
 * Tokens come as `Authorization: Bearer <token>`, or `Authorization: DPoP
 * <token>` with a `DPoP` proof header for a bound token; the scheme in any
 * case (RFC 7235); the proof is used only with the DPoP scheme. Headers are
 * read with their length: one with a NUL byte inside the value the HTTP
 * library reports, or sent twice, is refused.
 *
 * Build outside the ztb tree against an installed libztb:
 *   cc main.c $(pkg-config --cflags --libs ztb libmicrohttpd) -o ztb-gateway-example
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>
#include <ztb/ztb.h>

struct gateway {
    ztb_verifier *v;
    char public_url[256]; /* scheme://host:port, to rebuild a DPoP proof's htu */
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *json)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Refuse with the verifier's reason (never the token) and log it. */
static enum MHD_Result refuse(struct gateway *g, struct MHD_Connection *c, const char *url,
                              unsigned status, ztb_err rv, const char *why)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"error\":\"%s\",\"reason\":\"%s\"}", ztb_err_name(rv), why);
    fprintf(stderr, "gateway: refused POST %s: %s (%s)\n", url, ztb_err_name(rv), why);
    (void)g;
    return reply(c, status, body);
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

/*
 * A request header's value read with its length (NULL if absent). A value
 * with a NUL byte in it is refused (*bad = 1): cut at the NUL, it would be
 * other bytes than those a proxy in front of us saw and logged. (How much of
 * such a value reaches us is the HTTP library's choice: libmicrohttpd 0.9.75
 * already ends the value at the NUL and drops the rest of the line.) So is
 * a header sent twice: which one a proxy or the backend reads is anyone's
 * guess (RFC 9449 §4.3: one DPoP header).
 */
static const char *header_value(struct MHD_Connection *c, const char *name, int *bad)
{
    struct hdr_count h = {.name = name};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, count_header, &h);
    if (h.n > 1)
        *bad = 1;
    const char *v = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, name, strlen(name), &v, &n) != MHD_YES ||
        v == NULL)
        return NULL;
    if (memchr(v, '\0', n) != NULL)
        *bad = 1;
    return v;
}

/*
 * The token of "Authorization: <scheme> <token>" (RFC 7235: the scheme is
 * case-insensitive, one or more spaces before the token), and *dpop set for
 * the DPoP scheme. NULL if there is none; the header is borrowed from c.
 */
static const char *auth_token(const char *authz, int *dpop)
{
    if (authz == NULL)
        return NULL;
    size_t s = strcspn(authz, " ");
    if (s == 6 && strncasecmp(authz, "Bearer", 6) == 0)
        *dpop = 0;
    else if (s == 4 && strncasecmp(authz, "DPoP", 4) == 0)
        *dpop = 1;
    else
        return NULL;
    const char *t = authz + s;
    while (*t == ' ')
        t++;
    return *t != '\0' ? t : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    struct gateway *g = cls;
    if (*con_cls == NULL) { /* first call: headers only */
        *con_cls = g;
        return MHD_YES;
    }
    if (*upload_size > 0) { /* the body (the refund details) is not needed here */
        *upload_size = 0;
        return MHD_YES;
    }
    const char *id = strncmp(url, "/refunds/", 9) == 0 ? url + 9 : NULL;
    if (strcmp(method, "POST") != 0 || id == NULL || *id == '\0' ||
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
            strlen(id) ||
        strlen(id) > 64)
        return reply(c, 404, "{\"error\":\"not found\"}");

    /* Authorization: Bearer <token> | DPoP <token> (any case), DPoP: <proof> */
    int bad = 0, dpop = 0;
    const char *authz = header_value(c, MHD_HTTP_HEADER_AUTHORIZATION, &bad);
    const char *proof = header_value(c, "DPoP", &bad);
    if (bad)
        return refuse(g, c, url, 400, ZTB_ERR_INVALID_ARG,
                      "two Authorization or DPoP headers, or a NUL byte in one");
    const char *token = auth_token(authz, &dpop);
    if (token == NULL)
        return refuse(g, c, url, 401, ZTB_ERR_INVALID_ARG, "no Bearer or DPoP token");
    if (dpop && proof == NULL)
        return refuse(g, c, url, 401, ZTB_ERR_INVALID_ARG, "a DPoP token without a DPoP proof");

    /* what this request is about to do */
    char resource[300], htu[600];
    snprintf(resource, sizeof(resource), "orders/%s", id);
    snprintf(htu, sizeof(htu), "%s%s", g->public_url, url);
    /* the proof only with the DPoP scheme (RFC 9449 §7.1, §7.2): a bound
     * token sent as Bearer, or a bearer token sent as DPoP, is refused */
    ztb_expect want = {
        .action = "payments:refund",
        .resource = resource,
        .flags = dpop ? ZTB_EXPECT_DPOP_SCHEME : 0,
        .dpop_proof = dpop ? proof : NULL,
        .htm = "POST",
        .htu = htu,
    };
    ztb_claims *claims = ztb_claims_new(); /* a busy gateway keeps one per thread */
    if (claims == NULL)
        return reply(c, 500, "{\"error\":\"out of memory\"}");
    ztb_err rv = ztb_verify(g->v, token, &want, claims);
    enum MHD_Result ret;
    if (rv != ZTB_OK) {
        unsigned status = rv == ZTB_ERR_UNAVAILABLE || rv == ZTB_ERR_REVOCATION_STALE ? 503
                          : rv == ZTB_ERR_ACTION || rv == ZTB_ERR_RESOURCE ||
                                  rv == ZTB_ERR_REVOKED || rv == ZTB_ERR_AGENT_REVOKED ||
                                  rv == ZTB_ERR_AUDIENCE_KILLED || rv == ZTB_ERR_REPLAY
                              ? 403
                              : 401;
        ret = refuse(g, c, url, status, rv, ztb_verifier_errdetail(g->v));
    } else {
        double amount = 0;
        int has_amount = ztb_claims_detail_number(claims, "amount", &amount) == ZTB_OK;
        char body[512];
        snprintf(body, sizeof(body), "{\"refunded\":\"%s\",\"agent\":\"%s\",\"max_amount\":%g}", id,
                 ztb_claims_agent(claims), has_amount ? amount : 0.0);
        fprintf(stderr, "gateway: allowed POST %s for %s (rule %s)\n", url,
                ztb_claims_subject(claims),
                ztb_claims_rule(claims) ? ztb_claims_rule(claims) : "-");
        ret = reply(c, 200, body);
    }
    ztb_claims_free(claims);
    return ret;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --issuer URL --audience AUD (--jwks-url URL | --jwks-file PATH)\n"
            "          (--redis URL | --no-revocation) [--listen HOST:PORT] [--public-url URL]\n"
            "          [--require-dpop]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    const char *issuer = NULL, *audience = NULL, *jwks_url = NULL, *jwks_file = NULL;
    const char *redis = NULL, *listen = "127.0.0.1:8080", *public_url = NULL;
    int no_revocation = 0, require_dpop = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = strcmp(k, "--issuer") == 0       ? &issuer
                            : strcmp(k, "--audience") == 0   ? &audience
                            : strcmp(k, "--jwks-url") == 0   ? &jwks_url
                            : strcmp(k, "--jwks-file") == 0  ? &jwks_file
                            : strcmp(k, "--redis") == 0      ? &redis
                            : strcmp(k, "--listen") == 0     ? &listen
                            : strcmp(k, "--public-url") == 0 ? &public_url
                                                             : NULL;
        if (strcmp(k, "--no-revocation") == 0)
            no_revocation = 1;
        else if (strcmp(k, "--require-dpop") == 0)
            require_dpop = 1;
        else if (slot != NULL && v != NULL)
            *slot = argv[++i];
        else
            return usage(argv[0]);
    }
    if (issuer == NULL || audience == NULL || (jwks_url == NULL) == (jwks_file == NULL) ||
        (redis == NULL) == !no_revocation)
        return usage(argv[0]);
    char host[64];
    unsigned port = 0;
    if (sscanf(listen, "%63[^:]:%u", host, &port) != 2 || port > 65535)
        return usage(argv[0]);

    ztb_verifier_config *cfg = ztb_verifier_config_new();
    ztb_err rv = cfg ? ZTB_OK : ZTB_ERR_NOMEM;
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_issuer(cfg, issuer);
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_audience(cfg, audience);
    if (rv == ZTB_OK)
        rv = jwks_url ? ztb_verifier_config_set_jwks_url(cfg, jwks_url)
                      : ztb_verifier_config_set_jwks_file(cfg, jwks_file);
    if (rv == ZTB_OK)
        rv = redis ? ztb_verifier_config_set_redis(cfg, redis)
                   : ztb_verifier_config_set_no_revocation(cfg);
    if (rv == ZTB_OK)
        rv = ztb_verifier_config_set_require_dpop(cfg, require_dpop);
    struct gateway g = {0};
    if (rv == ZTB_OK)
        rv = ztb_verifier_new(cfg, &g.v);
    ztb_verifier_config_free(cfg);
    if (rv != ZTB_OK) {
        fprintf(stderr, "gateway: %s: %s\n", ztb_strerror(rv), ztb_verifier_errdetail(NULL));
        return 1;
    }

    /* handle SIGINT/SIGTERM in this thread only: block them before MHD starts threads */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        ztb_verifier_free(g.v);
        return usage(argv[0]);
    }
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0,
                         NULL, NULL, on_request, &g, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "gateway: cannot listen on %s\n", listen);
        ztb_verifier_free(g.v);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info ? info->port : port;
    if (public_url != NULL)
        snprintf(g.public_url, sizeof(g.public_url), "%s", public_url);
    else
        snprintf(g.public_url, sizeof(g.public_url), "http://%s:%u", host, bound);
    printf("gateway: listening on http://%s:%u\n", host, bound);
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    ztb_verifier_free(g.v);
    fprintf(stderr, "gateway: stopped\n");
    return 0;
}
