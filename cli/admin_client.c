/*
 * admin_client.c - ztbctl's HTTP client for the broker's admin API (a unix
 * socket; libcurl does the HTTP).
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ztbctl.h"

struct sink {
    char *p;
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    if (s->len + n > (16u << 20))
        return 0; /* an admin answer is never this large */
    char *np = realloc(s->p, s->len + n + 1);
    if (np == NULL)
        return 0;
    memcpy(np + s->len, data, n);
    s->p = np;
    s->len += n;
    s->p[s->len] = '\0';
    return n;
}

int ztbctl_admin(struct ztbctl *ctl, const char *method, const char *path, json_t *body,
                 json_t **out, long *status)
{
    *out = NULL;
    *status = 0;
    CURL *c = curl_easy_init();
    if (c == NULL) {
        ztbctl_err("out of memory");
        return -1;
    }
    char url[512];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    struct sink s = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, ctl->socket_path);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (text != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(text);
    if (rc != CURLE_OK) {
        ztbctl_err("cannot reach the broker's admin socket %s: %s (is ztb-broker running? "
                   "--socket or $ZTB_ADMIN_SOCKET name another)",
                   ctl->socket_path, curl_easy_strerror(rc));
        free(s.p);
        return -1;
    }
    json_error_t e;
    *out = s.p ? json_loads(s.p, 0, &e) : NULL;
    free(s.p);
    if (*out == NULL) {
        ztbctl_err("the broker answered HTTP %ld with something that is not JSON", *status);
        return -1;
    }
    if (*status >= 400) {
        const char *d = json_string_value(json_object_get(*out, "error_description"));
        const char *code = json_string_value(json_object_get(*out, "error"));
        ztbctl_err("%s (HTTP %ld %s)", d ? d : "request failed", *status, code ? code : "");
        return -1;
    }
    return 0;
}
