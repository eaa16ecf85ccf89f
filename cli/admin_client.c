/*
 * admin_client.c - a client of the broker's admin API (see admin_client.h).
 *
 * One curl easy handle per call, pointed at the unix socket; the URL's host
 * is only the Host header. "Expect:" is sent empty so a large body is not
 * held back waiting for "100 Continue"; "Content-Type:" empty when the
 * caller names none, so a POST does not claim to be a form. The answer is gathered in a growing
 * buffer (doubling) capped at ZTB_ADMIN_ANSWER_MAX. An answer may hold a
 * secret (a join token, a signal source's secret): every block that held
 * one is wiped before it is released, on growth too (no realloc).
 */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/admin_client.h"

struct sink {
    char *p;
    size_t len, cap;
};

/* libcurl's write callback: append to the sink, which grows by doubling;
 * 0 (abort the transfer) past the cap or out of memory. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    if (n > ZTB_ADMIN_ANSWER_MAX - s->len)
        return 0;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *np = malloc(cap);
        if (np == NULL)
            return 0;
        if (s->p != NULL) {
            memcpy(np, s->p, s->len + 1);
            explicit_bzero(s->p, s->cap);
            free(s->p);
        }
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
    s->p[s->len] = '\0';
    return n;
}

/* libcurl's header callback: keep the header lines that fit. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct ztb_admin_response *rs = ud;
    size_t n = size * nmemb, have = strlen(rs->headers);
    if (n < sizeof(rs->headers) - have) {
        memcpy(rs->headers + have, data, n);
        rs->headers[have + n] = '\0';
    }
    return n;
}

ztb_err ztb_admin_call(const struct ztb_admin_request *rq, struct ztb_admin_response *rs, char *err,
                       size_t errcap)
{
    memset(rs, 0, sizeof(*rs));
    if (errcap > 0)
        err[0] = '\0';
    if (rq == NULL || rq->socket_path == NULL || rq->method == NULL || rq->path == NULL ||
        rq->path[0] != '/' || (rq->body == NULL && rq->body_len != 0))
        return ZTB_ERR_INVALID_ARG;
    char url[1024];
    if ((size_t)snprintf(url, sizeof(url), "http://localhost%s", rq->path) >= sizeof(url))
        return ZTB_ERR_INVALID_ARG;
    CURL *c = curl_easy_init();
    if (c == NULL)
        return ZTB_ERR_NOMEM;
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    char ctype[256];
    if (h != NULL) {
        /* none named: none sent (not libcurl's form type for a POST) */
        snprintf(ctype, sizeof(ctype), "Content-Type:%s%s", rq->content_type ? " " : "",
                 rq->content_type ? rq->content_type : "");
        struct curl_slist *h2 = curl_slist_append(h, ctype);
        if (h2 == NULL) {
            curl_slist_free_all(h);
            h = NULL;
        }
    }
    char sudo_hdr[128];
    if (h != NULL && rq->sudo_user != NULL && rq->sudo_user[0] != '\0' &&
        strcspn(rq->sudo_user, "\r\n") == strlen(rq->sudo_user) &&
        (size_t)snprintf(sudo_hdr, sizeof(sudo_hdr), "Ztb-Sudo-User: %s", rq->sudo_user) <
            sizeof(sudo_hdr)) {
        struct curl_slist *h3 = curl_slist_append(h, sudo_hdr);
        if (h3 == NULL) {
            curl_slist_free_all(h);
            h = NULL;
        }
    }
    if (h == NULL) {
        curl_easy_cleanup(c);
        return ZTB_ERR_NOMEM;
    }
    struct sink s = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, rq->socket_path);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (rq->body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    } else if (strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     rq->timeout_ms > 0 ? rq->timeout_ms : ZTB_ADMIN_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(err, errcap, "%s", curl_easy_strerror(rc));
        if (s.p != NULL)
            explicit_bzero(s.p, s.cap);
        free(s.p);
        rs->status = 0;
        rs->headers[0] = '\0';
        return ZTB_ERR_UNAVAILABLE;
    }
    if (s.p == NULL) {
        s.p = calloc(1, 1); /* an empty answer */
        if (s.p == NULL)
            return ZTB_ERR_NOMEM;
    }
    rs->body = s.p;
    rs->len = s.len;
    return ZTB_OK;
}

void ztb_admin_response_free(struct ztb_admin_response *rs)
{
    if (rs == NULL)
        return;
    if (rs->body != NULL)
        explicit_bzero(rs->body, rs->len + 1);
    free(rs->body);
    memset(rs, 0, sizeof(*rs));
}
