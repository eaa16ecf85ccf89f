/*
 * push_client.c - outbound HTTP POST with a bounded queue and retries (see
 * push_client.h).
 *
 * The queue is a fixed array of slots; each holds one body, its extra
 * headers (made once, before the first attempt), the attempts made and the
 * monotonic time of the next. The thread sends the slot due first, without
 * the mutex (enqueue only takes the mutex to copy a body in), then either
 * frees it or schedules it again. One easy handle is kept and reset before
 * each attempt, so connections to the receiver are reused.
 */
#define _GNU_SOURCE /* pthread_cond_clockwait */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "broker/config.h"
#include "broker/http/push_client.h"
#include "common/guard.h"
#include "common/log.h"

struct slot {
    char *body;
    size_t len;
    ztb_buf hdrs;
    int has_hdrs;
    unsigned attempts;
    uint64_t due_ms;
};

struct push_client {
    struct push_client_opts o;
    char *url;
    char *ctype;
    char origin[300];
    char name[64];
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct slot *q;
    size_t nq;
    int inflight; /* one slot is out being sent: it keeps its place */
    int stop;
    pthread_t thread;
    CURL *h;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

ztb_err push_client_init(void)
{
    pthread_once(&curl_once, curl_init);
    return curl_init_rc == CURLE_OK ? ZTB_OK : ZTB_ERR_INTERNAL;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- URLs ---------------------------------------------------------------- */

/* Split url into scheme length and the authority [*a, *a + *alen). Returns
 * 0 unless it starts with http:// or https://. */
static int split_url(const char *url, int *https, const char **a, size_t *alen)
{
    size_t skip;
    if (strncasecmp(url, "https://", 8) == 0) {
        *https = 1;
        skip = 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        *https = 0;
        skip = 7;
    } else {
        return 0;
    }
    *a = url + skip;
    *alen = strcspn(*a, "/?#");
    return 1;
}

/* The host of an authority (without brackets or port) into out. Returns 0
 * if it is empty or does not fit. */
static int authority_host(const char *a, size_t alen, char *out, size_t cap)
{
    const char *h = a, *end = a + alen;
    if (alen > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (close == NULL)
            return 0;
        h = a + 1;
        end = close;
    } else {
        const char *colon = memchr(a, ':', alen);
        if (colon != NULL)
            end = colon;
    }
    size_t n = (size_t)(end - h);
    if (n == 0 || n >= cap)
        return 0;
    memcpy(out, h, n);
    out[n] = '\0';
    return 1;
}

ztb_err push_url_check(const char *url, int allow_http, char *err, size_t errcap)
{
    int https = 0;
    const char *a = NULL;
    size_t alen = 0;
    char host[256];
    if (url == NULL || url[0] == '\0') {
        snprintf(err, errcap, "no URL");
        return ZTB_ERR_INVALID_ARG;
    }
    if (strlen(url) > PUSH_URL_MAX) {
        snprintf(err, errcap, "the URL is longer than %d bytes", PUSH_URL_MAX);
        return ZTB_ERR_INVALID_ARG;
    }
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f) {
            snprintf(err, errcap, "the URL holds a space or control character: percent-encode it");
            return ZTB_ERR_INVALID_ARG;
        }
    if (!split_url(url, &https, &a, &alen)) {
        snprintf(err, errcap, "the URL must begin with https:// (or http:// to a loopback host)");
        return ZTB_ERR_INVALID_ARG;
    }
    if (memchr(a, '@', alen) != NULL) {
        snprintf(err, errcap,
                 "the URL carries user information (user@host): put the "
                 "receiver's credential in its path or query instead");
        return ZTB_ERR_INVALID_ARG;
    }
    if (strchr(url, '#') != NULL) {
        snprintf(err, errcap, "the URL has a fragment (#...): remove it");
        return ZTB_ERR_INVALID_ARG;
    }
    if (!authority_host(a, alen, host, sizeof(host))) {
        snprintf(err, errcap, "the URL has no host");
        return ZTB_ERR_INVALID_ARG;
    }
    if (!https && !allow_http && !broker_config_host_is_loopback(host)) {
        snprintf(err, errcap,
                 "http:// to %s would send notifications in clear over the network: use "
                 "https://, or set the allow_http option of this URL to accept that",
                 host);
        return ZTB_ERR_INVALID_ARG;
    }
    return ZTB_OK;
}

int push_url_host(const char *url, char *out, size_t cap)
{
    int https = 0;
    const char *a = NULL;
    size_t alen = 0;
    return url != NULL && split_url(url, &https, &a, &alen) && authority_host(a, alen, out, cap);
}

void push_url_origin(const char *url, char *out, size_t cap)
{
    int https = 0;
    const char *a = NULL;
    size_t alen = 0;
    if (cap == 0)
        return;
    if (url == NULL || !split_url(url, &https, &a, &alen)) {
        snprintf(out, cap, "(invalid URL)");
        return;
    }
    /* user information, if any, is never shown */
    const char *at = memchr(a, '@', alen);
    if (at != NULL) {
        alen -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    snprintf(out, cap, "%s://%.*s", https ? "https" : "http", (int)(alen > 255 ? 255 : alen), a);
}

uint64_t push_backoff_ms(unsigned attempt, unsigned backoff_ms, unsigned backoff_max_ms,
                         uint32_t rnd)
{
    uint64_t d = backoff_ms;
    for (unsigned i = 1; i < attempt && d < backoff_max_ms; i++)
        d *= 2;
    if (d > backoff_max_ms)
        d = backoff_max_ms;
    uint64_t half = d / 2;
    return (d - half) + (half ? rnd % (half + 1) : 0);
}

/* ---- the thread ------------------------------------------------------------ */

/* The start of an answer's body into a push_answer; the rest is dropped. */
struct sink {
    struct push_answer *a;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct sink *k = ud;
    size_t got = size * n;
    size_t room = PUSH_ANSWER_MAX - k->len;
    size_t take = got < room ? got : room;
    memcpy(k->a->body + k->len, p, take);
    k->len += take;
    k->a->body[k->len] = '\0';
    return got;
}

/* Free a header list, wiping each line first (an Authorization value or a
 * signature may be among them; libcurl frees without wiping). */
static void free_headers(struct curl_slist *hl)
{
    for (struct curl_slist *n = hl; n != NULL; n = n->next)
        explicit_bzero(n->data, strlen(n->data));
    curl_slist_free_all(hl);
}

static struct curl_slist *add_header(struct curl_slist *hl, const char *name, const char *value)
{
    char line[4200];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    struct curl_slist *t = curl_slist_append(hl, line);
    explicit_bzero(line, sizeof(line)); /* it may be an Authorization value */
    return t != NULL ? t : hl;
}

/*
 * One POST of r on the easy handle h (reset first: a kept handle reuses its
 * connection). No redirect is followed (a receiver must not send our signed
 * documents elsewhere), no proxy from the environment, http and https only,
 * TLS peers verified. Returns as push_post.
 */
static ztb_err attempt(CURL *h, const struct push_request *r, struct push_answer *a)
{
    memset(a, 0, sizeof(*a));
    char err[256];
    if (r == NULL || r->content_type == NULL ||
        push_url_check(r->url, 1, err, sizeof(err)) != ZTB_OK)
        return ZTB_ERR_INVALID_ARG;
    curl_easy_reset(h);
    struct curl_slist *hl = add_header(NULL, "Content-Type", r->content_type);
    if (r->accept != NULL)
        hl = add_header(hl, "Accept", r->accept);
    if (r->authorization != NULL && r->authorization[0] != '\0')
        hl = add_header(hl, "Authorization", r->authorization);
    struct curl_slist *t = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    if (t != NULL)
        hl = t;
    if (r->extra_headers != NULL && r->extra_headers[0] != '\0') {
        char *copy = strdup(r->extra_headers), *save = NULL;
        for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l != NULL;
             l = strtok_r(NULL, "\n", &save))
            if ((t = curl_slist_append(hl, l)) != NULL)
                hl = t;
        if (copy != NULL)
            explicit_bzero(copy, strlen(r->extra_headers));
        free(copy);
    }
    struct sink k = {.a = a};
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ztb-broker");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(r->timeout_ms ? r->timeout_ms : 5000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(r->connect_timeout_ms ? r->connect_timeout_ms : 2000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &k);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    free_headers(hl);
    if (rc != CURLE_OK) {
        snprintf(a->error, sizeof(a->error), "%s", curl_easy_strerror(rc));
        return ZTB_ERR_UNAVAILABLE;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    return ZTB_OK;
}

ztb_err push_post(const struct push_request *r, struct push_answer *a)
{
    ZTB_GUARD(push_client_init());
    CURL *h = curl_easy_init();
    if (h == NULL) {
        memset(a, 0, sizeof(*a));
        return ZTB_ERR_NOMEM;
    }
    ztb_err rv = attempt(h, r, a);
    curl_easy_cleanup(h);
    return rv;
}

int push_status_retryable(long status)
{
    return status == 408 || status == 425 || status == 429 || status >= 500;
}

static void outcome(struct push_client *c, enum push_outcome o)
{
    if (c->o.outcome != NULL)
        c->o.outcome(c->o.arg, o);
}

/* One attempt to send s. Returns 1 delivered, 0 retry, -1 give up; the
 * HTTP status (0: none) into *status and curl's reason into why. */
static int send_one(struct push_client *c, struct slot *s, long *status, char *why, size_t cap)
{
    *status = 0;
    why[0] = '\0';
    if (c->h == NULL && (c->h = curl_easy_init()) == NULL) {
        snprintf(why, cap, "out of memory");
        return 0;
    }
    struct push_request r = {
        .url = c->url,
        .content_type = c->ctype,
        .extra_headers = s->has_hdrs ? (const char *)ztb_buf_cstr(&s->hdrs) : NULL,
        .body = s->body,
        .body_len = s->len,
        .timeout_ms = c->o.timeout_ms,
        .connect_timeout_ms = c->o.connect_timeout_ms,
    };
    struct push_answer a;
    if (attempt(c->h, &r, &a) != ZTB_OK) {
        snprintf(why, cap, "%s", a.error[0] ? a.error : "refused URL");
        return 0;
    }
    *status = a.status;
    if (a.status >= 200 && a.status < 300)
        return 1;
    snprintf(why, cap, "HTTP %ld", a.status);
    return push_status_retryable(a.status) ? 0 : -1;
}

static void slot_free(struct slot *s)
{
    free(s->body);
    if (s->has_hdrs)
        ztb_buf_free(&s->hdrs);
    memset(s, 0, sizeof(*s));
}

/* Index of the slot due first; caller holds mu and nq > 0. */
static size_t first_due(const struct push_client *c)
{
    size_t best = 0;
    for (size_t i = 1; i < c->nq; i++)
        if (c->q[i].due_ms < c->q[best].due_ms)
            best = i;
    return best;
}

static void *push_thread(void *arg)
{
    struct push_client *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        if (c->nq == 0) {
            pthread_cond_wait(&c->cond, &c->mu);
            continue;
        }
        size_t i = first_due(c);
        uint64_t now = mono_ms();
        if (c->q[i].due_ms > now) {
            uint64_t d = c->q[i].due_ms;
            struct timespec until = {.tv_sec = (time_t)(d / 1000u),
                                     .tv_nsec = (long)(d % 1000u) * 1000000L};
            pthread_cond_clockwait(&c->cond, &c->mu, CLOCK_MONOTONIC, &until);
            continue;
        }
        /* take it out of the queue while it is sent (enqueue may move slots) */
        struct slot s = c->q[i];
        c->q[i] = c->q[--c->nq];
        c->inflight = 1;
        pthread_mutex_unlock(&c->mu);

        int r = 0;
        long status = 0;
        char why[160] = "";
        if (!s.has_hdrs && c->o.headers != NULL) {
            ztb_buf_init(&s.hdrs, 8192);
            s.has_hdrs = 1;
            ztb_err hr = c->o.headers(c->o.arg, s.body, s.len, &s.hdrs);
            if (hr == ZTB_OK)
                hr = ztb_buf_error(&s.hdrs);
            if (hr != ZTB_OK) {
                ztb_buf_free(&s.hdrs);
                s.has_hdrs = 0;
                snprintf(why, sizeof(why), "cannot sign: %s", ztb_err_name(hr));
                r = 0;
                goto judged;
            }
        }
        r = send_one(c, &s, &status, why, sizeof(why));
    judged:
        s.attempts++;
        if (r == 0 && s.attempts >= c->o.max_attempts)
            r = -1;
        if (r == 1) {
            ztb_log(ZTB_LOG_DEBUG, "push.delivered", ZTB_F_STR("client", c->name),
                    ZTB_F_STR("to", c->origin), ZTB_F_INT("attempts", s.attempts));
            outcome(c, PUSH_DELIVERED);
            slot_free(&s);
        } else if (r < 0) {
            ztb_log(ZTB_LOG_ERROR, "push.gave_up", ZTB_F_STR("client", c->name),
                    ZTB_F_STR("to", c->origin), ZTB_F_INT("attempts", s.attempts),
                    ZTB_F_STR("why", why));
            outcome(c, PUSH_GAVE_UP);
            slot_free(&s);
        } else {
            uint32_t rnd = 0;
            if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
                rnd = (uint32_t)mono_ms();
            uint64_t delay = push_backoff_ms(s.attempts, c->o.backoff_ms, c->o.backoff_max_ms, rnd);
            ztb_log(ZTB_LOG_WARN, "push.retry", ZTB_F_STR("client", c->name),
                    ZTB_F_STR("to", c->origin), ZTB_F_INT("attempt", s.attempts),
                    ZTB_F_INT("retry_in_ms", delay), ZTB_F_STR("why", why));
            outcome(c, PUSH_RETRY);
            s.due_ms = mono_ms() + delay;
        }
        pthread_mutex_lock(&c->mu);
        c->inflight = 0;
        if (s.body != NULL)
            c->q[c->nq++] = s; /* its place was kept (enqueue counts inflight) */
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- the client -------------------------------------------------------------- */

ztb_err push_client_new(const struct push_client_opts *o, struct push_client **out, char *err,
                        size_t errcap)
{
    if (o == NULL || out == NULL || o->url == NULL) {
        snprintf(err, errcap, "no URL");
        return ZTB_ERR_INVALID_ARG;
    }
    *out = NULL;
    ztb_err rv = push_url_check(o->url, 1, err, errcap);
    if (rv != ZTB_OK)
        return rv;
    (void)pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errcap, "libcurl cannot start");
        return ZTB_ERR_INTERNAL;
    }
    struct push_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ZTB_ERR_NOMEM;
    c->o = *o;
    if (c->o.timeout_ms == 0)
        c->o.timeout_ms = 5000;
    if (c->o.connect_timeout_ms == 0)
        c->o.connect_timeout_ms = 2000;
    if (c->o.max_attempts == 0)
        c->o.max_attempts = 8;
    if (c->o.backoff_ms == 0)
        c->o.backoff_ms = 500;
    if (c->o.backoff_max_ms == 0)
        c->o.backoff_max_ms = 60000;
    if (c->o.backoff_max_ms < c->o.backoff_ms)
        c->o.backoff_max_ms = c->o.backoff_ms;
    if (c->o.queue_max == 0)
        c->o.queue_max = PUSH_DEFAULT_QMAX;
    snprintf(c->name, sizeof(c->name), "%s", o->name ? o->name : "push");
    push_url_origin(o->url, c->origin, sizeof(c->origin));
    c->url = strdup(o->url);
    c->ctype = strdup(o->content_type ? o->content_type : "application/json");
    c->q = calloc(c->o.queue_max, sizeof(*c->q));
    c->o.url = NULL;
    c->o.content_type = NULL;
    c->o.name = NULL;
    if (c->url == NULL || c->ctype == NULL || c->q == NULL) {
        rv = ZTB_ERR_NOMEM;
        goto fail;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&c->thread, NULL, push_thread, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cond);
        snprintf(err, errcap, "cannot start the delivery thread");
        rv = ZTB_ERR_INTERNAL;
        goto fail;
    }
    *out = c;
    return ZTB_OK;
fail:
    free(c->url);
    free(c->ctype);
    free(c->q);
    free(c);
    return rv;
}

ztb_err push_client_enqueue(struct push_client *c, const void *body, size_t n)
{
    if (c == NULL || (body == NULL && n > 0))
        return ZTB_ERR_INVALID_ARG;
    if (n > PUSH_BODY_MAX)
        return ZTB_ERR_TOO_LARGE;
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return ZTB_ERR_NOMEM;
    if (n > 0)
        memcpy(copy, body, n);
    copy[n] = '\0';
    pthread_mutex_lock(&c->mu);
    ztb_err rv = ZTB_OK;
    if (c->stop) {
        rv = ZTB_ERR_STATE;
    } else if (c->nq + (size_t)c->inflight >= c->o.queue_max) {
        rv = ZTB_ERR_UNAVAILABLE;
    } else {
        c->q[c->nq++] = (struct slot){.body = copy, .len = n, .due_ms = 0};
        copy = NULL;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
    free(copy);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        ztb_log(ZTB_LOG_ERROR, "push.dropped", ZTB_F_STR("client", c->name),
                ZTB_F_STR("to", c->origin), ZTB_F_STR("why", "queue full"));
        outcome(c, PUSH_DROPPED);
    }
    return rv;
}

size_t push_client_queued(struct push_client *c)
{
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->nq + (size_t)c->inflight;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void push_client_free(struct push_client *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    if (c->nq > 0)
        ztb_log(ZTB_LOG_WARN, "push.dropped", ZTB_F_STR("client", c->name),
                ZTB_F_STR("to", c->origin), ZTB_F_INT("count", c->nq),
                ZTB_F_STR("why", "stopping"));
    for (size_t i = 0; i < c->nq; i++) {
        outcome(c, PUSH_DROPPED);
        slot_free(&c->q[i]);
    }
    if (c->h != NULL)
        curl_easy_cleanup(c->h);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c->url);
    free(c->ctype);
    free(c->q);
    free(c);
}
