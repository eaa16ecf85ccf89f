/*
 * push_client.c - one outbound HTTP POST on libcurl (see push_client.h).
 *
 * Each call makes its own easy handle (no state shared between threads),
 * restricts it to HTTP(S), follows no redirect, ignores proxy variables and
 * verifies TLS peers. The answer body is kept up to PUSH_ANSWER_MAX bytes and
 * the rest is read and dropped, so a receiver cannot make us buffer more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "broker/http/push_client.h"

ztb_err push_client_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? ZTB_OK : ZTB_ERR_INTERNAL;
}

int push_url_ok(const char *url)
{
    if (url == NULL)
        return 0;
    size_t skip;
    if (strncmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return 0;
    if (url[skip] == '\0' || url[skip] == '/')
        return 0;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return 0;
    return strlen(url) < 2048;
}

struct sink {
    struct push_answer *a;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t got = size * n;
    size_t room = PUSH_ANSWER_MAX - s->len;
    size_t take = got < room ? got : room;
    memcpy(s->a->body + s->len, p, take);
    s->len += take;
    s->a->body[s->len] = '\0';
    return got; /* the rest is read and dropped */
}

ztb_err push_post(const struct push_request *r, struct push_answer *a)
{
    memset(a, 0, sizeof(*a));
    if (r == NULL || !push_url_ok(r->url) || r->content_type == NULL)
        return ZTB_ERR_INVALID_ARG;
    CURL *c = curl_easy_init();
    if (c == NULL)
        return ZTB_ERR_NOMEM;
    struct curl_slist *h = NULL;
    char line[4200];
    snprintf(line, sizeof(line), "Content-Type: %s", r->content_type);
    h = curl_slist_append(h, line);
    if (r->accept != NULL) {
        snprintf(line, sizeof(line), "Accept: %s", r->accept);
        h = curl_slist_append(h, line);
    }
    if (r->authorization != NULL && r->authorization[0]) {
        snprintf(line, sizeof(line), "Authorization: %s", r->authorization);
        h = curl_slist_append(h, line);
    }
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    memset(line, 0, sizeof(line));
    struct sink s = {.a = a};
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(r->timeout_ms ? r->timeout_ms : 5000));
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    CURLcode cr = curl_easy_perform(c);
    ztb_err rv = ZTB_OK;
    if (cr == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    } else {
        snprintf(a->error, sizeof(a->error), "%s", curl_easy_strerror(cr));
        rv = ZTB_ERR_UNAVAILABLE;
    }
    curl_slist_free_all(h); /* libcurl copies nothing it keeps: the Authorization line dies here */
    curl_easy_cleanup(c);
    return rv;
}

uint64_t push_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms)
{
    if (attempt == 0)
        attempt = 1;
    uint64_t d = base_ms;
    for (unsigned i = 1; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    unsigned char r = 0;
    if (RAND_bytes(&r, 1) == 1)
        d -= d / 4 * r / 255;
    return d;
}
