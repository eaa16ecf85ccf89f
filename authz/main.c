/*
 * main.c - ztb-authz, the gateway decision sidecar: /v1/authorize on
 * libztb's verifier for nginx auth_request and Envoy ext_authz in HTTP
 * mode on hosts without a broker. The decision is authz.c;
 * this file is the HTTP server (libmicrohttpd, as the broker) and the
 * process: options, start (fail closed: no verifier, no listening socket),
 * SIGINT/SIGTERM.
 *
 * Routes: GET /v1/authorize and <any method> /v1/authorize/<path> (the
 * decision, authz_decide; the raw target kept by on_uri), GET the
 * resource's RFC 9728 metadata path, GET /healthz (alive), GET /readyz
 * (200 only while every revocation feed is live). Anything else: 404.
 *
 * Must never: read a header value with a NUL byte in it as if it ended
 * there, or log a token or a proof.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "authz/authz.h"

/* Counting the values of one header name (case-insensitive). */
struct hdr_count {
    const char *name;
    const char *value;
    int n;
    int nul; /* a value with a NUL byte inside */
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    struct hdr_count *h = cls;
    if (key_size == strlen(h->name) && strncasecmp(key, h->name, key_size) == 0) {
        h->n++;
        h->value = value;
        if (value == NULL || memchr(value, '\0', value_size) != NULL)
            h->nul = 1;
    }
    return MHD_YES;
}

static struct hdr_count header_of(struct MHD_Connection *c, const char *name)
{
    struct hdr_count h = {.name = name};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, count_header, &h);
    if (h.nul)
        h.n = 2; /* read as "sent more than once": refused, never cut short */
    return h;
}

static int peer_is_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return 0;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) ==
               127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

static enum MHD_Result send_answer(struct MHD_Connection *c, unsigned status, const char *ctype,
                                   const char *body, const struct authz_answer *ans)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    for (size_t i = 0; ans != NULL && i < ans->nhdr; i++)
        MHD_add_response_header(r, ans->hdr_name[i], ans->hdr_value[i]);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* One request's state: whether its headers were seen, and its target as
 * the gateway sent it. */
struct req_state {
    int started;
    char *target;       /* NULL if unknown (no memory, a NUL byte in it) */
    const char *uri_at; /* where libmicrohttpd held it (until the first call) */
    size_t uri_len;
};

/* MHD_OPTION_URI_LOG_CALLBACK: the request target byte for byte as sent,
 * before libmicrohttpd cuts off the query and percent-decodes the path it
 * gives on_request (the prefix form is matched on the raw bytes). Returns
 * the request's state (its *con_cls; freed by on_completed), or NULL. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    struct req_state *st = calloc(1, sizeof(*st));
    if (st != NULL && uri != NULL) {
        st->target = strdup(uri);
        st->uri_at = uri;
        st->uri_len = strlen(uri);
    }
    return st;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req_state *st = *con_cls;
    if (st != NULL) {
        free(st->target);
        free(st);
    }
    *con_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)upload;
    struct authz *a = cls;
    struct req_state *st = *con_cls;
    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return MHD_NO;
        *con_cls = st;
    }
    if (!st->started) { /* headers only so far */
        st->started = 1;
        /* a NUL byte of the client's cuts the target short: it then ends
         * before the version string that libmicrohttpd 0.9.75 parsed in
         * place right after it (as the broker, broker/http/http.c) */
        if (st->target != NULL && (version == NULL || version != st->uri_at + st->uri_len + 1)) {
            free(st->target);
            st->target = NULL;
        }
        st->uri_at = NULL;
        return MHD_YES;
    }
    if (*upload_size > 0) { /* a body is never needed: drop it */
        *upload_size = 0;
        return MHD_YES;
    }
    static const char json[] = "application/json";
    /* the prefix form (Envoy ext_authz) comes with the original method; the
     * raw target decides (authz_decide) whether it really is that form */
    int prefix = strncmp(url, ROUTE_CHECK_PATH "/", sizeof(ROUTE_CHECK_PATH)) == 0;
    if (!prefix && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_answer(c, 405, json, "{\"error\":\"invalid_request\"}", NULL);
    if (strcmp(url, "/healthz") == 0)
        return send_answer(c, 200, "text/plain", "ok\n", NULL);
    if (strcmp(url, "/readyz") == 0)
        return authz_ready(a)
                   ? send_answer(c, 200, "text/plain", "ready\n", NULL)
                   : send_answer(c, 503, "text/plain", "revocation feed not live\n", NULL);
    if (authz_metadata_json(a) != NULL && strcmp(url, authz_metadata_path(a)) == 0)
        return send_answer(c, 200, json, authz_metadata_json(a), NULL);
    if (!prefix && strcmp(url, ROUTE_CHECK_PATH) != 0)
        return send_answer(c, 404, json, "{\"error\":\"not_found\"}", NULL);

    struct hdr_count m = header_of(c, authz_method_header(a)),
                     u = header_of(c, authz_uri_header(a));
    struct hdr_count au = header_of(c, "Authorization"), dp = header_of(c, "DPoP");
    struct hdr_count src = header_of(c, "X-Ztb-Source"), rip = header_of(c, "X-Real-IP");
    struct hdr_count ov = {0};
    for (const char *const *name = route_override_headers; *name != NULL; name++) {
        struct hdr_count h = header_of(c, *name);
        ov.n += h.n;
        if (h.n == 1)
            ov.value = h.value;
    }
    struct authz_request rq = {.loopback = peer_is_loopback(c),
                               .check_method = method,
                               .target = st->target,
                               .method = m.value,
                               .n_method = m.n,
                               .uri = u.value,
                               .n_uri = u.n,
                               .authorization = au.value,
                               .n_authorization = au.n,
                               .dpop = dp.value,
                               .n_dpop = dp.n,
                               .override = ov.value,
                               .n_override = ov.n,
                               .source = src.n == 1   ? src.value
                                         : rip.n == 1 ? rip.value
                                                      : NULL};
    struct authz_answer *ans = malloc(sizeof(*ans));
    if (ans == NULL)
        return send_answer(c, 500, json, "{\"error\":\"server_error\"}", NULL);
    authz_decide(a, &rq, ans);
    if (ans->status != 200 && ans->log_reason != NULL && rq.n_authorization > 0) {
        /* the original request as the check request named it (printable
         * only: it is the client's), its path only: a query string may
         * carry a credential (access_token=, an API key), as the broker's
         * access log leaves it out too */
        const char *target = prefix     ? (st->target != NULL ? st->target : "-")
                             : u.n == 1 ? u.value
                                        : "-";
        int path_len = (int)strcspn(target, "?#");
        char what[240];
        snprintf(what, sizeof(what), "%.16s %.*s",
                 prefix     ? method
                 : m.n == 1 ? m.value
                            : "-",
                 path_len > 200 ? 200 : path_len, target);
        for (char *p = what; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        fprintf(stderr, "ztb-authz: refused %s: %u %s\n", what, ans->status, ans->log_reason);
    }
    enum MHD_Result ret = send_answer(c, ans->status, json, ans->body, ans);
    free(ans);
    return ret;
}

int main(int argc, char **argv)
{
    /* before anything secret is held (a Redis password in --redis, the
     * bearer tokens and proofs of every check): no core file, no ptrace by
     * our user. The same two calls as common/secret.c's
     * ztb_no_core_dumps, which this program (built on libztb's public API)
     * does not reach. */
    struct rlimit no_core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        perror("ztb-authz: cannot turn core dumps off");
        return 1;
    }
    struct authz_config cfg;
    char why[600];
    int p = authz_parse_args(argc, argv, &cfg, stdout, why, sizeof(why));
    if (p != 0) {
        if (p < 0)
            fprintf(stderr, "ztb-authz: %s\n", why);
        return p < 0 ? 2 : 0;
    }
    /* IPV4:PORT, the port read with strtoul (every byte checked) */
    char host[64];
    const char *colon = strrchr(cfg.listen, ':');
    char *end = NULL;
    unsigned long port = colon != NULL ? strtoul(colon + 1, &end, 10) : 0;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (colon == NULL || (size_t)(colon - cfg.listen) >= sizeof(host) || colon[1] < '0' ||
        colon[1] > '9' || *end != '\0' || port > 65535 ||
        snprintf(host, sizeof(host), "%.*s", (int)(colon - cfg.listen), cfg.listen) < 0 ||
        inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "ztb-authz: --listen takes IPV4:PORT, e.g. 127.0.0.1:8181\n");
        return 2;
    }
    sa.sin_port = htons((uint16_t)port);

    /* SIGINT/SIGTERM are waited for in this thread: block them before any
     * thread (verifiers, MHD) starts */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct authz *a = NULL;
    ztb_err rv = authz_new(&cfg, NULL, NULL, &a, why, sizeof(why));
    if (rv != ZTB_OK) {
        fprintf(stderr, "ztb-authz: cannot start: %s\n", why);
        return 1;
    }
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0,
                         NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
                         NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "ztb-authz: cannot listen on %s\n", cfg.listen);
        authz_free(a);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("ztb-authz: listening on http://%s:%u\n", host,
           info != NULL ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);
    int sig = 0;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    authz_free(a);
    fprintf(stderr, "ztb-authz: stopped\n");
    return 0;
}
