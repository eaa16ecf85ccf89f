/*
 * http_client.c - pooled libcurl easy handles (see http_client.h).
 *
 * curl_global_init runs once (pthread_once) and curl_global_cleanup never:
 * other code in the host may use libcurl too. A handle is reset before each
 * request (curl_easy_reset keeps its live connections and TLS sessions), so
 * no option leaks from one request into the next.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common/guard.h"
#include "common/secret.h"
#include "sdk/src/http_client.h"

struct http_client {
    struct http_client_opts o;
    char *ca_file;
    pthread_mutex_t mu;
    CURL *idle[HTTP_POOL_MAX];
    size_t nidle;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

ztb_err http_client_new(const struct http_client_opts *opts, struct http_client **out)
{
    ZTB_ENSURE(out != NULL, ZTB_ERR_INVALID_ARG);
    *out = NULL;
    (void)pthread_once(&curl_once, curl_init);
    ZTB_ENSURE(curl_init_rc == CURLE_OK, ZTB_ERR_NOMEM);
    struct http_client *c = calloc(1, sizeof(*c));
    ZTB_ENSURE(c != NULL, ZTB_ERR_NOMEM);
    if (opts != NULL)
        c->o = *opts;
    if (c->o.timeout_ms == 0)
        c->o.timeout_ms = 10000;
    if (c->o.connect_timeout_ms == 0)
        c->o.connect_timeout_ms = 3000;
    if (opts != NULL && opts->ca_file != NULL) {
        c->ca_file = strdup(opts->ca_file);
        if (c->ca_file == NULL) {
            free(c);
            return ZTB_ERR_NOMEM;
        }
    }
    c->o.ca_file = c->ca_file;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->ca_file);
        free(c);
        return ZTB_ERR_NOMEM;
    }
    *out = c;
    return ZTB_OK;
}

void http_client_free(struct http_client *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    pthread_mutex_destroy(&c->mu);
    free(c->ca_file);
    free(c);
}

void http_response_free(struct http_response *rs)
{
    ztb_buf_free(&rs->body);
}

static CURL *take(struct http_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->nidle > 0)
        h = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->mu);
    if (h != NULL)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    return h;
}

static void give_back(struct http_client *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->nidle < HTTP_POOL_MAX) {
        c->idle[c->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h != NULL)
        curl_easy_cleanup(h);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct http_response *rs = ud;
    size_t n = size * nmemb;
    return ztb_buf_append(&rs->body, data, n) == ZTB_OK ? n : 0;
}

/* Parse decimal seconds at p (n bytes, surrounding spaces allowed); -1 if not that. */
static int64_t parse_seconds(const char *p, size_t n)
{
    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (n == 0 || n > 10)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Cache-Control: the max-age directive, or 0 for no-store / no-cache. */
static void cache_control(struct http_response *rs, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        const char *d = v + start;
        size_t dl = i - start;
        while (dl > 0 && (d[dl - 1] == ' ' || d[dl - 1] == '\r' || d[dl - 1] == '\n'))
            dl--;
        if (dl >= 8 && strncasecmp(d, "max-age=", 8) == 0) {
            int64_t s = parse_seconds(d + 8, dl - 8);
            if (s >= 0 && rs->max_age_s != 0)
                rs->max_age_s = s;
        } else if ((dl == 8 && strncasecmp(d, "no-store", 8) == 0) ||
                   (dl == 8 && strncasecmp(d, "no-cache", 8) == 0)) {
            rs->max_age_s = 0;
        }
    }
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct http_response *rs = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) { /* a new response (after a 100) */
        rs->retry_after_s = -1;
        rs->max_age_s = -1;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (colon == NULL)
        return n;
    size_t nl = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vl = n - nl - 1;
    if (nl == 11 && strncasecmp(data, "Retry-After", 11) == 0)
        rs->retry_after_s = parse_seconds(v, vl);
    else if (nl == 13 && strncasecmp(data, "Cache-Control", 13) == 0)
        cache_control(rs, v, vl);
    return n;
}

static ztb_err map_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return ZTB_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return ZTB_ERR_UNAVAILABLE;
    case CURLE_OPERATION_TIMEDOUT: return ZTB_ERR_TIMEOUT;
    case CURLE_WRITE_ERROR: return ZTB_ERR_TOO_LARGE; /* on_body refused: over the cap */
    case CURLE_OUT_OF_MEMORY: return ZTB_ERR_NOMEM;
    default: return ZTB_ERR_HTTP;
    }
}

ztb_err http_client_do(struct http_client *c, const struct http_request *rq,
                       struct http_response *rs)
{
    memset(rs, 0, sizeof(*rs));
    rs->retry_after_s = -1;
    rs->max_age_s = -1;
    ztb_buf_init_secret(&rs->body, rq->max_body ? rq->max_body : HTTP_BODY_MAX);
    ZTB_ENSURE(c != NULL && rq != NULL && rq->url != NULL && rq->method != NULL,
               ZTB_ERR_INVALID_ARG);
    CURL *h = take(c);
    ZTB_ENSURE(h != NULL, ZTB_ERR_NOMEM);
    struct curl_slist *hdrs = NULL;
    ztb_err rv = ZTB_OK;
    char errbuf[CURL_ERROR_SIZE] = "";
    if (rq->content_type != NULL) {
        char ct[128];
        snprintf(ct, sizeof(ct), "Content-Type: %s", rq->content_type);
        struct curl_slist *t = curl_slist_append(hdrs, ct);
        ZTB_CHECK(rv, t != NULL, ZTB_ERR_NOMEM);
        hdrs = t;
    }
    static const char *const fixed[] = {"Expect:", "Accept: application/json"};
    for (size_t i = 0; i < ZTB_ARRAY_LEN(fixed); i++) {
        struct curl_slist *t = curl_slist_append(hdrs, fixed[i]);
        ZTB_CHECK(rv, t != NULL, ZTB_ERR_NOMEM);
        hdrs = t;
    }
    for (size_t i = 0; i < ZTB_ARRAY_LEN(rq->headers) && rq->headers[i] != NULL; i++) {
        struct curl_slist *t = curl_slist_append(hdrs, rq->headers[i]);
        ZTB_CHECK(rv, t != NULL, ZTB_ERR_NOMEM);
        hdrs = t;
    }
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->o.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->o.ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->o.ca_file);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "libztb");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body != NULL ? rq->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    } else {
        ZTB_CHECK(rv, strcmp(rq->method, "GET") == 0, ZTB_ERR_INVALID_ARG);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(h);
    rv = map_curl(rc);
    if (rv == ZTB_ERR_TOO_LARGE && ztb_buf_error(&rs->body) == ZTB_OK)
        rv = ZTB_ERR_HTTP; /* a write error that was not our cap */
    if (rv == ZTB_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    else
        snprintf(rs->error, sizeof(rs->error), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
out:
    /* the POST body may hold a credential: do not leave a pointer to it in the handle */
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    if (rv == ZTB_OK)
        give_back(c, h);
    else
        curl_easy_cleanup(h); /* its connection may be in any state */
    return rv;
}

static int loopback_host(const char *host)
{
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
        strcmp(host, "::1") == 0)
        return 1;
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

ztb_err http_url_check(const char *url, int allow_http)
{
    ZTB_ENSURE(url != NULL, ZTB_ERR_INVALID_ARG);
    (void)pthread_once(&curl_once, curl_init);
    CURLU *u = curl_url();
    ZTB_ENSURE(u != NULL, ZTB_ERR_NOMEM);
    ztb_err rv = ZTB_OK;
    char *scheme = NULL, *host = NULL, *user = NULL, *frag = NULL;
    ZTB_CHECK(rv, curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK, ZTB_ERR_INVALID_ARG);
    ZTB_CHECK(rv, curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK, ZTB_ERR_INVALID_ARG);
    ZTB_CHECK(rv, curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK, ZTB_ERR_INVALID_ARG);
    ZTB_CHECK(rv, curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER, ZTB_ERR_INVALID_ARG);
    ZTB_CHECK(rv, curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_NO_FRAGMENT,
              ZTB_ERR_INVALID_ARG);
    if (strcmp(scheme, "https") != 0) {
        ZTB_CHECK(rv, strcmp(scheme, "http") == 0, ZTB_ERR_INVALID_ARG);
        ZTB_CHECK(rv, allow_http || loopback_host(host), ZTB_ERR_INVALID_ARG);
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(frag);
    curl_url_cleanup(u);
    return rv;
}
