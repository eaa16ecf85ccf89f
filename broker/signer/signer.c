/*
 * signer.c - the signer process (see signer.h).
 *
 * Key state: the key store (pki/keystore.h) is not thread-safe and is only
 * touched under g_store_lock; what signing needs - the active key - is
 * copied into an immutable, reference-counted holder that a SIGN request
 * takes a reference to, so a rotation never tears a signature. The HTTP
 * process's key refresher sends STATE every few seconds, which re-reads the
 * store (a `ztbctl keys rotate` against the same directory), lets its clock
 * promote and retire keys, and answers the public result.
 *
 * The session MAC key lives in g_session_key; each serving thread keeps an
 * HMAC-SHA256 context keyed once (EVP_MAC_init with a NULL key restarts it).
 *
 * What this file must never do: send anything but signatures, MACs and
 * public data; act on a record that signer_req_decode refused; sign with a
 * key other than the active one.
 */
#define _GNU_SOURCE /* close_range */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "broker/signer/signer.h"
#include "broker/signer/signer_seccomp.h"
#include "common/buf.h"
#include "common/guard.h"
#include "common/log.h"
#include "common/secret.h"
#include "pki/ca.h"
#include "pki/es256.h"
#include "pki/keyfile.h"
#include "pki/keystore.h"

#define SESSION_KEY_BYTES 32

struct holder {
    ztb_key *active; /* private; NULL when the store has none */
    int refs;        /* under g_lock */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;       /* g_cur, refs */
static pthread_mutex_t g_store_lock = PTHREAD_MUTEX_INITIALIZER; /* the key store */
static ztb_keystore *g_store;
static ztb_ca *g_ca;
static struct holder *g_cur;
static uint8_t g_session_key[SESSION_KEY_BYTES];
static int g_have_session_key;
static EVP_MAC *g_hmac;
static __thread EVP_MAC_CTX *t_mac;

/* ---- the active key ---- */

static void holder_put(struct holder *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&g_lock);
    int last = --h->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last) {
        ztb_key_free(h->active); /* key.c cleanses the key material */
        free(h);
    }
}

static struct holder *holder_get(void)
{
    pthread_mutex_lock(&g_lock);
    struct holder *h = g_cur;
    if (h != NULL)
        h->refs++;
    pthread_mutex_unlock(&g_lock);
    return h;
}

/* Copy the store's active key into a new holder and install it; caller
 * holds g_store_lock. */
static ztb_err install_active(void)
{
    struct holder *h = calloc(1, sizeof(*h));
    ZTB_ENSURE(h != NULL, ZTB_ERR_NOMEM);
    ztb_err rv = ztb_keystore_active(g_store, &h->active);
    if (rv == ZTB_ERR_NO_ACTIVE_KEY || rv == ZTB_ERR_NOT_FOUND) {
        h->active = NULL; /* readyz reports it; tokens get 503 */
        rv = ZTB_OK;
    }
    if (rv != ZTB_OK) {
        free(h);
        return rv;
    }
    h->refs = 1;
    pthread_mutex_lock(&g_lock);
    struct holder *old = g_cur;
    g_cur = h;
    pthread_mutex_unlock(&g_lock);
    holder_put(old);
    return ZTB_OK;
}

/* ---- loading ---- */

static ztb_err load_session_key(const struct signer_opts *o, char *err, size_t errcap)
{
    char dir[BROKER_PATH_MAX], name[256];
    const char *path = o->session_key_file;
    if (path[0] == '\0') {
        snprintf(dir, sizeof(dir), "%s", o->keys_dir);
        snprintf(name, sizeof(name), "session.key");
    } else {
        const char *slash = strrchr(path, '/');
        if (slash == NULL) {
            snprintf(dir, sizeof(dir), ".");
            snprintf(name, sizeof(name), "%s", path);
        } else {
            snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
            snprintf(name, sizeof(name), "%s", slash + 1);
        }
    }
    int dfd;
    ztb_err rv = ztb_keyfile_open_dir(dir, &dfd);
    if (rv != ZTB_OK) {
        snprintf(err, errcap, "session key directory %s: %s", dir, ztb_strerror(rv));
        return rv;
    }
    ztb_buf b;
    ztb_buf_init_secret(&b, 64);
    rv = ztb_keyfile_read(dfd, name, 64, ZTB_KEYFILE_SECRET, &b);
    if (rv == ZTB_ERR_NOT_FOUND) {
        uint8_t fresh[SESSION_KEY_BYTES];
        rv = ztb_random(fresh, sizeof(fresh));
        if (rv == ZTB_OK) {
            rv = ztb_keyfile_write_new(dfd, name, fresh, sizeof(fresh), 0600);
            if (rv == ZTB_OK)
                ztb_log(ZTB_LOG_INFO, "keys.session_key_created", ZTB_F_STR("dir", dir));
        }
        ztb_wipe(fresh, sizeof(fresh));
        if (rv == ZTB_OK || rv == ZTB_ERR_EXISTS) /* another replica may have won */
            rv = ztb_keyfile_read(dfd, name, 64, ZTB_KEYFILE_SECRET, &b);
    }
    close(dfd);
    if (rv == ZTB_OK && b.len != SESSION_KEY_BYTES)
        rv = ZTB_ERR_KEY;
    if (rv == ZTB_OK) {
        memcpy(g_session_key, b.data, SESSION_KEY_BYTES);
        g_have_session_key = 1;
    } else {
        snprintf(err, errcap, "session key %s/%s: %s (it must hold exactly %d bytes, mode 0600)",
                 dir, name, ztb_strerror(rv), SESSION_KEY_BYTES);
    }
    ztb_buf_free(&b); /* wiped */
    return rv;
}

ztb_err signer_load(const struct signer_opts *o, char *err, size_t errcap)
{
    char *pass = NULL;
    size_t passlen = 0;
    g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (g_hmac == NULL) {
        snprintf(err, errcap, "OpenSSL has no HMAC");
        return ZTB_ERR_CRYPTO;
    }
    if (o->passphrase_file[0] != '\0') {
        ztb_err rv = ztb_keyfile_read_passphrase(o->passphrase_file, &pass, &passlen);
        if (rv != ZTB_OK) {
            snprintf(err, errcap, "passphrase file %s: %s (it must be 0600 and ours)",
                     o->passphrase_file, ztb_strerror(rv));
            return rv;
        }
    }
    ztb_keystore_opts ko = {.passphrase = pass, .passphrase_len = passlen};
    ztb_keystore *ks = NULL;
    ztb_err rv = ztb_keystore_open(o->keys_dir, &ko, &ks);
    if (rv == ZTB_OK) {
        rv = ztb_ca_load(o->keys_dir, pass, passlen, &g_ca);
        if (rv == ZTB_ERR_NOT_FOUND) {
            g_ca = NULL;
            rv = ZTB_OK;
        } else if (rv != ZTB_OK) {
            snprintf(err, errcap, "agent CA in %s/ca: %s", o->keys_dir, ztb_strerror(rv));
        }
    } else if (rv == ZTB_ERR_NOT_FOUND) {
        snprintf(err, errcap, "no key store in %s: create one with `ztbctl keys init --dir %s`",
                 o->keys_dir, o->keys_dir);
    } else {
        snprintf(err, errcap, "key store %s: %s", o->keys_dir, ztb_strerror(rv));
    }
    ztb_free_secret(pass, passlen);
    if (rv != ZTB_OK) {
        ztb_keystore_close(ks);
        return rv;
    }
    pthread_mutex_lock(&g_store_lock);
    g_store = ks;
    rv = install_active();
    pthread_mutex_unlock(&g_store_lock);
    if (rv != ZTB_OK) {
        snprintf(err, errcap, "key store %s: %s", o->keys_dir, ztb_strerror(rv));
        return rv;
    }
    return load_session_key(o, err, errcap);
}

void signer_unload(void)
{
    pthread_mutex_lock(&g_lock);
    struct holder *h = g_cur;
    g_cur = NULL;
    pthread_mutex_unlock(&g_lock);
    holder_put(h);
    pthread_mutex_lock(&g_store_lock);
    ztb_keystore_close(g_store);
    g_store = NULL;
    ztb_ca_free(g_ca);
    g_ca = NULL;
    pthread_mutex_unlock(&g_store_lock);
    ztb_wipe(g_session_key, sizeof(g_session_key));
    g_have_session_key = 0;
    EVP_MAC_CTX_free(t_mac); /* cleanses its key copy */
    t_mac = NULL;
}

/* ---- operations ---- */

static ztb_err op_sign(const struct signer_req *q, struct signer_resp *r)
{
    struct holder *h = holder_get();
    ztb_err rv = ZTB_ERR_NO_ACTIVE_KEY;
    if (h != NULL && h->active != NULL) {
        const char *kid = ztb_key_kid(h->active);
        size_t kl = strnlen(kid, sizeof(r->kid) - 1);
        memcpy(r->kid, kid, kl);  /* r is zeroed: the rest is the NUL padding */
        rv = ZTB_ERR_UNKNOWN_KID; /* named a key that is not the active one */
        if (strcmp(q->kid, r->kid) == 0) {
            rv = ZTB_OK;
            for (uint32_t i = 0; rv == ZTB_OK && i < q->count; i++) {
                uint8_t der[ZTB_ES256_DER_MAX];
                size_t derlen = sizeof(der);
                rv = ztb_es256_sign_digest(h->active, q->digest[i], der, &derlen);
                if (rv == ZTB_OK)
                    rv = ztb_es256_der_to_raw(der, derlen, r->data + i * ZTB_ES256_SIG_LEN);
            }
            if (rv == ZTB_OK)
                r->len = q->count * ZTB_ES256_SIG_LEN;
        }
    }
    holder_put(h);
    return rv;
}

static ztb_err op_mac(const struct signer_req *q, struct signer_resp *r)
{
    ZTB_ENSURE(g_have_session_key, ZTB_ERR_STATE);
    if (t_mac == NULL) {
        EVP_MAC_CTX *c = EVP_MAC_CTX_new(g_hmac);
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                               OSSL_PARAM_construct_end()};
        if (c == NULL || EVP_MAC_init(c, g_session_key, SESSION_KEY_BYTES, params) != 1) {
            EVP_MAC_CTX_free(c);
            return ZTB_ERR_CRYPTO;
        }
        t_mac = c;
    }
    size_t len = 0;
    ZTB_ENSURE(EVP_MAC_init(t_mac, NULL, 0, NULL) == 1 &&
                   EVP_MAC_update(t_mac, q->digest[0], 32) == 1 &&
                   EVP_MAC_final(t_mac, r->data, &len, 32) == 1 && len == 32,
               ZTB_ERR_CRYPTO);
    r->len = 32;
    return ZTB_OK;
}

static ztb_err op_ca_sign(const struct signer_req *q, struct signer_resp *r)
{
    ZTB_ENSURE(g_ca != NULL, ZTB_ERR_NOT_FOUND);
    size_t derlen = sizeof(r->data);
    ZTB_GUARD(ztb_ca_sign_digest(g_ca, q->digest[0], r->data, &derlen));
    r->len = (uint32_t)derlen;
    return ZTB_OK;
}

/* Re-read the store and let its clock move keys along; caller holds
 * g_store_lock. */
static ztb_err refresh_locked(int64_t now)
{
    int reloaded = 0;
    unsigned ticked = 0;
    ZTB_GUARD(ztb_keystore_reload(g_store, &reloaded));
    ZTB_GUARD(ztb_keystore_tick(g_store, now, &ticked));
    if (reloaded || ticked)
        ztb_log(ZTB_LOG_INFO, "keys.changed", ZTB_F_BOOL("reloaded", reloaded),
                ZTB_F_INT("ticked", ticked));
    return install_active();
}

static ztb_err op_state(const struct signer_req *q, struct signer_state *s)
{
    ztb_buf jw;
    ztb_buf_init_fixed(&jw, s->text, SIGNER_TEXT_MAX - 1);
    pthread_mutex_lock(&g_store_lock);
    ztb_err rv = refresh_locked(q->now);
    if (rv == ZTB_OK)
        rv = ztb_keystore_jwks(g_store, q->now, &jw);
    if (rv == ZTB_OK) {
        const ztb_rotation_params *p = ztb_keystore_params(g_store);
        s->jwks_max_age = (uint32_t)p->jwks_cache_s;
        s->max_token_ttl = (uint32_t)p->max_token_ttl_s;
        s->skew = (uint32_t)p->skew_s;
    }
    pthread_mutex_unlock(&g_store_lock);
    struct holder *h = holder_get();
    if (rv == ZTB_OK && h != NULL && h->active != NULL)
        snprintf(s->active_kid, sizeof(s->active_kid), "%s", ztb_key_kid(h->active));
    holder_put(h);
    if (rv == ZTB_OK)
        s->len = (uint32_t)jw.len;
    return rv;
}

static ztb_err op_list(struct signer_state *s)
{
    json_t *arr = json_array();
    ZTB_ENSURE(arr != NULL, ZTB_ERR_NOMEM);
    pthread_mutex_lock(&g_store_lock);
    for (size_t i = 0; i < ztb_keystore_count(g_store); i++) {
        const ztb_key_meta *m = ztb_keystore_meta(g_store, i);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,s:I}", "kid", m->kid, "state",
                                             ztb_key_state_name(m->state), "created",
                                             (json_int_t)m->created, "activated",
                                             (json_int_t)m->activated, "not_after",
                                             (json_int_t)m->not_after));
    }
    pthread_mutex_unlock(&g_store_lock);
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    ZTB_ENSURE(text != NULL, ZTB_ERR_NOMEM);
    size_t n = strlen(text);
    ztb_err rv = n < SIGNER_TEXT_MAX ? ZTB_OK : ZTB_ERR_TOO_LARGE;
    if (rv == ZTB_OK) {
        memcpy(s->text, text, n);
        s->len = (uint32_t)n;
    }
    free(text);
    return rv;
}

static ztb_err op_rotate(const struct signer_req *q, struct signer_resp *r)
{
    ztb_rotate_result res;
    memset(&res, 0, sizeof(res));
    pthread_mutex_lock(&g_store_lock);
    ztb_err rv = ztb_keystore_rotate(g_store, q->now, (q->flags & SIGNER_F_FORCE) != 0, &res);
    if (rv == ZTB_OK)
        rv = refresh_locked(q->now);
    pthread_mutex_unlock(&g_store_lock);
    if (rv == ZTB_OK) {
        r->action = (uint32_t)res.action;
        r->promotable_at = res.promotable_at;
        snprintf(r->kid, sizeof(r->kid), "%s", res.kid);
    }
    return rv;
}

static ztb_err op_retire(const struct signer_req *q)
{
    pthread_mutex_lock(&g_store_lock);
    ztb_err rv = ztb_keystore_retire(g_store, q->kid, q->now, (q->flags & SIGNER_F_FORCE) != 0);
    if (rv == ZTB_OK)
        rv = refresh_locked(q->now);
    pthread_mutex_unlock(&g_store_lock);
    return rv;
}

size_t signer_handle(const void *buf, size_t n, void *out, size_t outcap)
{
    struct signer_req q;
    const char *why = "";
    ztb_err rv = signer_req_decode(buf, n, &q, &why);
    if (rv != ZTB_OK || outcap < sizeof(struct signer_state)) {
        ztb_log(ZTB_LOG_ERROR, "signer.refused", ZTB_F_ERR(rv), ZTB_F_STR("reason", why),
                ZTB_F_INT("bytes", n));
        struct signer_resp *r = out;
        memset(r, 0, sizeof(*r));
        r->version = SIGNER_PROTO_VERSION;
        if (n == sizeof(struct signer_req)) { /* answer the caller's seq: it stops waiting */
            memcpy(&r->op, (const uint8_t *)buf + offsetof(struct signer_req, op), 4);
            memcpy(&r->seq, (const uint8_t *)buf + offsetof(struct signer_req, seq), 4);
        }
        r->err = rv != ZTB_OK ? rv : ZTB_ERR_INTERNAL;
        return sizeof(*r);
    }
    if (g_store == NULL && q.op != SIGNER_OP_MAC) {
        rv = ZTB_ERR_STATE;
    }
    if (q.op == SIGNER_OP_STATE || q.op == SIGNER_OP_LIST) {
        struct signer_state *s = out;
        memset(s, 0, sizeof(*s));
        s->version = SIGNER_PROTO_VERSION;
        s->op = q.op;
        s->seq = q.seq;
        if (rv == ZTB_OK)
            rv = q.op == SIGNER_OP_STATE ? op_state(&q, s) : op_list(s);
        if (rv != ZTB_OK) {
            memset(s->text, 0, sizeof(s->text));
            s->len = 0;
            s->active_kid[0] = '\0';
        }
        s->err = rv;
        return sizeof(*s);
    }
    struct signer_resp *r = out;
    memset(r, 0, sizeof(*r));
    r->version = SIGNER_PROTO_VERSION;
    r->op = q.op;
    r->seq = q.seq;
    if (rv == ZTB_OK) {
        switch (q.op) {
        case SIGNER_OP_SIGN: rv = op_sign(&q, r); break;
        case SIGNER_OP_MAC: rv = op_mac(&q, r); break;
        case SIGNER_OP_CA_SIGN: rv = op_ca_sign(&q, r); break;
        case SIGNER_OP_ROTATE: rv = op_rotate(&q, r); break;
        case SIGNER_OP_RETIRE: rv = op_retire(&q); break;
        default: rv = ZTB_ERR_INTERNAL; break;
        }
    }
    if (rv != ZTB_OK) { /* an error answer carries no data */
        memset(r->data, 0, sizeof(r->data));
        r->len = 0;
        if (q.op != SIGNER_OP_SIGN)
            memset(r->kid, 0, sizeof(r->kid));
    }
    r->err = rv;
    return sizeof(*r);
}

/* ---- serving ---- */

/*
 * How the channels are served: a "drain" thread answers a set of channels
 * (the signer process runs one per CPU, each with its share of the
 * channels). It waits in epoll until any of its channels is readable and
 * then answers every ready one before it waits again, so under load the
 * requests that arrived while it signed are answered back to back: one
 * sleep and one wake-up for several signatures instead of one pair per
 * signature (a thread per channel slept and woke once per request, and on a
 * paravirtualised VM the context switch costs about what the ECDSA
 * signature does; docs/BENCHMARKS.md). It never spins: on a machine with no
 * CPU to spare, a thread polling for the next request takes the core from
 * the threads that would send it.
 *
 * The key store operations (STATE, LIST, ROTATE, RETIRE: file reads and
 * writes, fsync, perhaps the passphrase KDF) can take milliseconds to
 * seconds, and signatures must not wait behind them: the drain thread hands
 * such a record to the slow thread, with its channel taken out of the epoll
 * set until that thread has sent the answer and put it back. Each channel
 * carries one request at a time (signer_client.c), so a channel never has a
 * request with both threads.
 *
 * Every record is still read, checked and answered whole by signer_handle:
 * nothing about the messages changes here.
 */
#define SLOW_QUEUE SIGNER_MAX_CHANNELS

struct serve_ctx {
    int ep;        /* epoll set: the channels the drain thread serves */
    unsigned live; /* channels not yet closed by the peer (drain thread only) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                      /* under mu: the slow thread returns */
    struct signer_state *slow_out; /* the slow thread's answer scratch */
    unsigned head, n;              /* under mu: the slow queue */
    int q_fd[SLOW_QUEUE];          /* channel of a slow request */
    struct signer_req q_req[SLOW_QUEUE];
};

/* 1 if the record's op may take long (key store work): it goes to the slow
 * thread. This only routes the record: the slow thread's signer_handle
 * checks it whole, as the drain thread's does. */
static int op_is_slow(const void *rec, size_t n)
{
    uint32_t op;
    if (n != sizeof(struct signer_req))
        return 0; /* refused at once by the drain thread */
    memcpy(&op, (const uint8_t *)rec + offsetof(struct signer_req, op), sizeof(op));
    return op == SIGNER_OP_STATE || op == SIGNER_OP_LIST || op == SIGNER_OP_ROTATE ||
           op == SIGNER_OP_RETIRE;
}

/* Answer rec[0..n) on fd; 0 if the answer could not be sent (the channel
 * is gone). out is the caller's scratch, wiped after use (it held a MAC). */
static int answer(int fd, const void *rec, size_t n, struct signer_state *out)
{
    size_t len = signer_handle(rec, n, out, sizeof(*out));
    ssize_t w;
    do
        w = send(fd, out, len, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    ztb_wipe(out, len);
    return w == (ssize_t)len;
}

static void *slow_thread(void *arg)
{
    struct serve_ctx *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->n == 0 && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->n == 0)
            break; /* stopping, nothing left */
        int fd = c->q_fd[c->head];
        struct signer_req q = c->q_req[c->head];
        c->head = (c->head + 1) % SLOW_QUEUE;
        c->n--;
        pthread_mutex_unlock(&c->mu);
        (void)answer(fd, &q, sizeof(q), c->slow_out);
        /* back to the drain thread, which also sees a channel that closed
         * meanwhile (and owns its end: it removes it and counts it gone) */
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        (void)epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev);
        ztb_wipe(&q, sizeof(q));
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    ztb_es256_thread_cleanup();
    return NULL;
}

/* Read and handle one record from the ready channel fd (drain thread). */
static void serve_ready(struct serve_ctx *c, int fd, struct signer_state *out)
{
    /* one byte more than a request: a longer record shows as too long */
    uint8_t in[sizeof(struct signer_req) + 1];
    ssize_t n;
    do
        n = recv(fd, in, sizeof(in), MSG_TRUNC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;        /* nothing after all */
    int gone = n <= 0; /* 0: the HTTP process closed the channel */
    if (!gone && op_is_slow(in, (size_t)n)) {
        /* out of the set first: the slow thread may answer and put it back
         * before this thread would get to take it out */
        (void)epoll_ctl(c->ep, EPOLL_CTL_DEL, fd, NULL);
        pthread_mutex_lock(&c->mu);
        int queued = c->n < SLOW_QUEUE; /* always: one request per channel */
        if (queued) {
            unsigned tail = (c->head + c->n) % SLOW_QUEUE;
            c->q_fd[tail] = fd;
            memcpy(&c->q_req[tail], in, sizeof(c->q_req[tail]));
            c->n++;
            pthread_cond_signal(&c->cv);
        }
        pthread_mutex_unlock(&c->mu);
        if (queued) {
            ztb_wipe(in, sizeof(in));
            return; /* the slow thread puts it back when it has answered */
        }
        /* never (a channel is queued at most once); answered here then */
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        (void)epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev);
    }
    if (!gone && !answer(fd, in, (size_t)n, out))
        gone = 1;
    ztb_wipe(in, sizeof(in));
    if (gone) {
        (void)epoll_ctl(c->ep, EPOLL_CTL_DEL, fd, NULL);
        c->live--;
    }
}

void signer_serve_channels(const int *fds, unsigned nfds)
{
    struct serve_ctx *c = calloc(1, sizeof(*c));
    struct signer_state *out = malloc(sizeof(*out));
    pthread_t slow;
    int have_slow = 0;
    if (c != NULL)
        c->ep = -1;
    if (c == NULL || out == NULL)
        goto out;
    c->slow_out = malloc(sizeof(*c->slow_out));
    if (c->slow_out == NULL)
        goto out;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    if (c->ep < 0)
        goto out;
    for (unsigned i = 0; i < nfds; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fds[i], &ev) == 0)
            c->live++;
    }
    if (pthread_create(&slow, NULL, slow_thread, c) != 0)
        goto out;
    have_slow = 1;
    struct epoll_event ev[SIGNER_MAX_CHANNELS];
    while (c->live > 0) {
        int n = epoll_wait(c->ep, ev, SIGNER_MAX_CHANNELS, -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) /* every ready channel before the next wait */
            serve_ready(c, ev[i].data.fd, out);
    }
out:
    if (have_slow) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(slow, NULL);
    }
    if (c != NULL) {
        if (c->ep >= 0)
            close(c->ep);
        if (c->slow_out != NULL) {
            pthread_mutex_destroy(&c->mu);
            pthread_cond_destroy(&c->cv);
        }
        free(c->slow_out);
        free(c);
    }
    free(out);
    EVP_MAC_CTX_free(t_mac);
    t_mac = NULL;
    ztb_es256_thread_cleanup();
}

void signer_serve(int fd)
{
    signer_serve_channels(&fd, 1);
}

/* ---- the process ---- */

ztb_err signer_harden_process(void)
{
    return ztb_no_core_dumps();
}

#define SERVE_THREADS_MAX 8

/* The channels one drain thread of the signer process serves. */
struct serve_set {
    unsigned n;
    int fds[SIGNER_MAX_CHANNELS];
};

static void *serve_set_thread(void *arg)
{
    const struct serve_set *set = arg;
    signer_serve_channels(set->fds, set->n);
    return NULL;
}

/* A small non-negative number from argv, or -1. */
static long arg_num(const char *s, long max)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return end != s && *end == '\0' && v >= 0 && v <= max ? v : -1;
}

/* Close every descriptor above the channels (and never read stdin). */
static void close_others(int last_channel)
{
    if (close_range((unsigned)last_channel + 1, ~0u, 0) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = last_channel + 1; fd < (max > 0 ? max : 1024); fd++)
            (void)close((int)fd);
    }
}

int signer_process_main(int argc, char **argv)
{
    if (signer_harden_process() != ZTB_OK) {
        /* the keys are never held by a process that could dump them */
        fprintf(stderr, "ztb-broker: the signer cannot turn off core dumps: %s\n", strerror(errno));
        return 2;
    }
    if (argc != 8) {
        fprintf(stderr, "ztb-broker: %s is internal: the broker starts its signer itself\n",
                SIGNER_ARGV1);
        return 2;
    }
    long nch = arg_num(argv[2], SIGNER_MAX_CHANNELS);
    long level = arg_num(argv[6], 16), format = arg_num(argv[7], 16);
    if (nch < 1 || level < 0 || format < 0)
        return 2;
    int last = SIGNER_FIRST_FD + (int)nch - 1;
    close_others(last);
    ztb_log_set_service("ztb-signer");
    ztb_log_set_level((ztb_log_level)level);
    ztb_log_set_format((ztb_log_format)format);
    struct signer_opts o;
    memset(&o, 0, sizeof(o));
    snprintf(o.keys_dir, sizeof(o.keys_dir), "%s", argv[3]);
    snprintf(o.passphrase_file, sizeof(o.passphrase_file), "%s", argv[4]);
    snprintf(o.session_key_file, sizeof(o.session_key_file), "%s", argv[5]);

    struct signer_hello hello;
    memset(&hello, 0, sizeof(hello));
    hello.version = SIGNER_PROTO_VERSION;
    hello.err = signer_load(&o, hello.msg, sizeof(hello.msg));
    if (hello.err == ZTB_OK && signer_seccomp_install() != ZTB_OK) {
        hello.err = ZTB_ERR_INTERNAL;
        snprintf(hello.msg, sizeof(hello.msg), "cannot install the signer's seccomp filter");
    }
    if (send(SIGNER_FIRST_FD, &hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello) ||
        hello.err != ZTB_OK) {
        signer_unload();
        return 1;
    }
    ztb_log(ZTB_LOG_INFO, "signer.started", ZTB_F_INT("pid", getpid()), ZTB_F_INT("channels", nch),
            ZTB_F_BOOL("ca", g_ca != NULL));
    /* one drain thread per CPU (at most SERVE_THREADS_MAX), channel i to
     * thread i % threads: signatures use every core while each thread still
     * answers all its ready channels per wake-up */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nth = cpus < 1 ? 1 : cpus > SERVE_THREADS_MAX ? SERVE_THREADS_MAX : (int)cpus;
    if (nth > nch)
        nth = (int)nch;
    static struct serve_set sets[SERVE_THREADS_MAX];
    for (int i = 0; i < nch; i++) {
        struct serve_set *set = &sets[i % nth];
        set->fds[set->n++] = SIGNER_FIRST_FD + i;
    }
    pthread_t th[SERVE_THREADS_MAX];
    int started = 0;
    for (int t = 1; t < nth; t++)
        if (pthread_create(&th[started], NULL, serve_set_thread, &sets[t]) == 0)
            started++;
        else /* serve its channels here instead */
            for (unsigned k = 0; k < sets[t].n; k++)
                sets[0].fds[sets[0].n++] = sets[t].fds[k];
    serve_set_thread(&sets[0]); /* until the HTTP process closes them all */
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    for (int i = 0; i < nch; i++)
        close(SIGNER_FIRST_FD + i);
    signer_unload();
    ztb_log(ZTB_LOG_INFO, "signer.stopped");
    return 0;
}
