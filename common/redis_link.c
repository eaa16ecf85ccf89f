/*
 * redis_link.c - one Redis connection on a socket ztb owns, plain or TLS,
 * with hiredis as the RESP codec (see redis_link.h).
 *
 * Connect is non-blocking with poll() for the timeout, then the socket goes
 * back to blocking with SO_RCVTIMEO/SO_SNDTIMEO, as hiredis does. TLS is an
 * OpenSSL client over that socket: the SSL_CTX is made per connection from
 * the files the URL names (connections are made rarely; a renewed CA or
 * client certificate is picked up at the next connect without a restart).
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL, SOCK_CLOEXEC */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/guard.h"
#include "common/redis_link.h"

#define READ_CHUNK (16 * 1024)

/* printf into l->errstr and mark the link broken with code. Returns REDIS_ERR. */
static int fail(struct redis_link *l, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct redis_link *l, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->errstr, sizeof(l->errstr), fmt, ap);
    va_end(ap);
    l->err = code;
    return REDIS_ERR;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_blocking(int fd, int blocking)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
    return fcntl(fd, F_SETFL, fl);
}

int redis_link_set_timeout(struct redis_link *l, unsigned timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (long)(timeout_ms % 1000) * 1000};
    if (setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(l->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
        return -1;
    l->timeout_ms = timeout_ms;
    return 0;
}

/* Connect fd to sa within the time left until deadline; 0 or an errno. */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t salen, int64_t deadline)
{
    if (set_blocking(fd, 0) != 0)
        return errno;
    if (connect(fd, sa, salen) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return errno;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return ETIMEDOUT;
        int e = 0;
        socklen_t el = sizeof(e);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
            return errno;
        return e;
    }
}

/* A connected socket to path or host:port, or -1 with why in l->errstr. */
static int open_socket(struct redis_link *l, const char *path, const char *host, int port)
{
    int64_t deadline = now_ms() + l->timeout_ms;
    if (path[0] != '\0') {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path)) {
            fail(l, REDIS_ERR_OTHER, "unix socket path too long");
            return -1;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            fail(l, REDIS_ERR_IO, "%s", strerror(errno));
            return -1;
        }
        int e = connect_within(fd, (struct sockaddr *)&sa, sizeof(sa), deadline);
        if (e != 0) {
            close(fd);
            fail(l, REDIS_ERR_IO, "%s", strerror(e));
            return -1;
        }
        return fd;
    }
    char ps[8];
    snprintf(ps, sizeof(ps), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(host, ps, &hints, &ai);
    if (g != 0) {
        fail(l, REDIS_ERR_OTHER, "cannot resolve %s: %s", host, gai_strerror(g));
        return -1;
    }
    int fd = -1, e = 0;
    for (const struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        e = connect_within(fd, a->ai_addr, a->ai_addrlen, deadline);
        if (e != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        fail(l, REDIS_ERR_IO, "%s", strerror(e ? e : ECONNREFUSED));
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    return fd;
}

/* The first OpenSSL error's text (or fallback) into buf. */
static const char *ssl_err_text(char *buf, size_t cap, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, cap, "%s", fallback);
    else
        ERR_error_string_n(e, buf, cap);
    return buf;
}

/* 1 if name is an IPv4 or IPv6 address literal. */
static int is_ip(const char *name)
{
    unsigned char b[16];
    return inet_pton(AF_INET, name, b) == 1 || inet_pton(AF_INET6, name, b) == 1;
}

/* A client SSL_CTX from tls's files, or NULL with why in l->errstr. */
static SSL_CTX *make_ctx(struct redis_link *l, const struct redis_tls *tls)
{
    char e[160];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        fail(l, REDIS_ERR_OTHER, "TLS: cannot make a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = tls->ca[0] != '\0' ? SSL_CTX_load_verify_locations(ctx, tls->ca, NULL) == 1
                                : SSL_CTX_set_default_verify_paths(ctx) == 1;
    if (!ok) {
        fail(l, REDIS_ERR_OTHER, "TLS: cannot load the CA file %s: %s", tls->ca,
             ssl_err_text(e, sizeof(e), "unreadable"));
        goto bad;
    }
    if (tls->cert[0] != '\0') {
        if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert) != 1) {
            fail(l, REDIS_ERR_OTHER, "TLS: cannot load the client certificate %s: %s", tls->cert,
                 ssl_err_text(e, sizeof(e), "unreadable"));
            goto bad;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            /* no OpenSSL text: it could quote the key file's content */
            fail(l, REDIS_ERR_OTHER,
                 "TLS: cannot load the client key %s, or it does not match the certificate",
                 tls->key);
            goto bad;
        }
    }
    return ctx;
bad:
    SSL_CTX_free(ctx);
    return NULL;
}

/* The TLS handshake on l->fd, verifying the server as name. 0 or -1 (errstr set). */
static int handshake(struct redis_link *l, const struct redis_tls *tls, const char *host, int port)
{
    char e[160];
    ERR_clear_error();
    SSL_CTX *ctx = make_ctx(l, tls);
    if (ctx == NULL)
        return -1;
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (ssl == NULL || SSL_set_fd(ssl, l->fd) != 1) {
        SSL_free(ssl);
        return fail(l, REDIS_ERR_OTHER, "TLS: out of memory"), -1;
    }
    l->ssl = ssl;
    const char *name = tls->server_name[0] != '\0' ? tls->server_name : host;
    int named;
    if (is_ip(name)) {
        named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
    } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        named = SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
    }
    if (!named)
        return fail(l, REDIS_ERR_OTHER, "TLS: cannot verify the name %s", name), -1;
    if (SSL_connect(ssl) == 1)
        return 0;
    long vr = SSL_get_verify_result(ssl);
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
        fail(l, REDIS_ERR_IO,
             "TLS: the certificate of %s:%d does not name %s (connect by a name or address "
             "it holds, or set tls_name=)",
             host, port, name);
    else if (vr != X509_V_OK)
        fail(l, REDIS_ERR_IO,
             "TLS: the certificate of %s:%d is not trusted: %s (check ca=, the CA that "
             "signed the server's certificate)",
             host, port, X509_verify_cert_error_string(vr));
    else
        fail(l, REDIS_ERR_IO,
             "TLS handshake with %s:%d failed: %s (is it Redis's tls-port? a plain port "
             "takes redis://)",
             host, port, ssl_err_text(e, sizeof(e), "connection closed"));
    return -1;
}

ztb_err redis_link_open(const char *path, const char *host, int port, const struct redis_tls *tls,
                        unsigned timeout_ms, struct redis_link **out, char *err, size_t errcap)
{
    *out = NULL;
    struct redis_link *l = calloc(1, sizeof(*l));
    ZTB_ENSURE(l != NULL, ZTB_ERR_NOMEM);
    l->fd = -1;
    l->timeout_ms = timeout_ms;
    ztb_err rv = ZTB_ERR_UNAVAILABLE;
    l->reader = redisReaderCreate();
    if (l->reader == NULL) {
        rv = ZTB_ERR_NOMEM;
        fail(l, REDIS_ERR_OOM, "out of memory");
        goto bad;
    }
    l->fd = open_socket(l, path, host, port);
    if (l->fd < 0)
        goto bad;
    if (set_blocking(l->fd, 1) != 0 || redis_link_set_timeout(l, timeout_ms) != 0) {
        fail(l, REDIS_ERR_IO, "cannot set the timeout: %s", strerror(errno));
        goto bad;
    }
    if (tls != NULL && tls->on && path[0] == '\0' && handshake(l, tls, host, port) != 0) {
        if (l->err == REDIS_ERR_OTHER)
            rv = ZTB_ERR_INVALID_ARG; /* the files, not the server */
        goto bad;
    }
    l->err = 0;
    *out = l;
    return ZTB_OK;
bad:
    if (err != NULL && errcap > 0)
        snprintf(err, errcap, "%s", l->errstr);
    redis_link_free(l);
    return rv;
}

void redis_link_free(struct redis_link *l)
{
    if (l == NULL)
        return;
    /* no close_notify: Redis does not need one, and a write to a peer
     * that is gone could raise SIGPIPE in a host process */
    if (l->ssl != NULL)
        SSL_free(l->ssl);
    if (l->fd >= 0)
        close(l->fd);
    if (l->reader != NULL)
        redisReaderFree(l->reader);
    free(l->obuf);
    free(l);
}

/* Append n encoded bytes to the output buffer. */
static int queue(struct redis_link *l, const char *cmd, size_t n)
{
    if (l->olen + n > l->ocap) {
        size_t cap = l->ocap ? l->ocap : 256;
        while (cap < l->olen + n)
            cap *= 2;
        char *b = realloc(l->obuf, cap);
        if (b == NULL)
            return fail(l, REDIS_ERR_OOM, "out of memory");
        l->obuf = b;
        l->ocap = cap;
    }
    memcpy(l->obuf + l->olen, cmd, n);
    l->olen += n;
    return REDIS_OK;
}

int redis_link_append_argv(struct redis_link *l, int argc, const char **argv, const size_t *lens)
{
    if (l->err)
        return REDIS_ERR;
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0)
        return fail(l, REDIS_ERR_OOM, "cannot format a command");
    int rc = queue(l, cmd, (size_t)n);
    free(cmd);
    return rc;
}

int redis_link_append_raw(struct redis_link *l, const char *cmd, size_t len)
{
    if (l->err)
        return REDIS_ERR;
    return queue(l, cmd, len);
}

int redis_link_vappendf(struct redis_link *l, const char *fmt, va_list ap)
{
    if (l->err)
        return REDIS_ERR;
    char *cmd = NULL;
    int n = redisvFormatCommand(&cmd, fmt, ap);
    if (n < 0)
        return fail(l, REDIS_ERR_OTHER, "cannot format a command");
    int rc = queue(l, cmd, (size_t)n);
    free(cmd);
    return rc;
}

int redis_link_appendf(struct redis_link *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = redis_link_vappendf(l, fmt, ap);
    va_end(ap);
    return rc;
}

/* Note a failed socket or TLS call's reason (rc its return). */
static int io_fail(struct redis_link *l, int rc, int e, const char *what)
{
    if (l->ssl != NULL) {
        int se = SSL_get_error(l->ssl, rc);
        char t[160];
        if (se == SSL_ERROR_ZERO_RETURN || (se == SSL_ERROR_SYSCALL && e == 0))
            return fail(l, REDIS_ERR_EOF, "Server closed the connection");
        if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE ||
            (se == SSL_ERROR_SYSCALL && (e == EAGAIN || e == EWOULDBLOCK))) {
            l->timed_out = 1;
            errno = EAGAIN;
            return fail(l, REDIS_ERR_IO, "Resource temporarily unavailable");
        }
        if (se == SSL_ERROR_SYSCALL)
            return fail(l, REDIS_ERR_IO, "%s", strerror(e));
        return fail(l, REDIS_ERR_IO, "TLS %s: %s", what, ssl_err_text(t, sizeof(t), "error"));
    }
    if (rc == 0)
        return fail(l, REDIS_ERR_EOF, "Server closed the connection");
    if (e == EAGAIN || e == EWOULDBLOCK)
        l->timed_out = 1;
    fail(l, REDIS_ERR_IO, "%s", strerror(e));
    errno = e;
    return REDIS_ERR;
}

int redis_link_flush(struct redis_link *l)
{
    if (l->err)
        return REDIS_ERR;
    size_t off = 0;
    while (off < l->olen) {
        size_t n = l->olen - off;
        int rc;
        if (l->ssl != NULL) {
            ERR_clear_error();
            errno = 0;
            rc = SSL_write(l->ssl, l->obuf + off, (int)(n > 1 << 30 ? 1 << 30 : n));
        } else {
            ssize_t w = send(l->fd, l->obuf + off, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            rc = w < 0 ? -1 : (int)w;
            if (w == 0)
                rc = -1, errno = EPIPE;
        }
        if (rc <= 0)
            return io_fail(l, rc, errno, "write");
        off += (size_t)rc;
    }
    l->olen = 0;
    return REDIS_OK;
}

int redis_link_read(struct redis_link *l)
{
    if (l->err)
        return REDIS_ERR;
    char buf[READ_CHUNK];
    do {
        int rc;
        if (l->ssl != NULL) {
            ERR_clear_error();
            errno = 0;
            rc = SSL_read(l->ssl, buf, sizeof(buf));
        } else {
            ssize_t r;
            do
                r = recv(l->fd, buf, sizeof(buf), 0);
            while (r < 0 && errno == EINTR);
            rc = (int)r;
        }
        if (rc <= 0)
            return io_fail(l, rc, errno, "read");
        if (redisReaderFeed(l->reader, buf, (size_t)rc) != REDIS_OK)
            return fail(l, REDIS_ERR_PROTOCOL, "%s", l->reader->errstr);
    } while (l->ssl != NULL && SSL_pending(l->ssl) > 0);
    return REDIS_OK;
}

int redis_link_next_reply(struct redis_link *l, redisReply **reply)
{
    void *r = NULL;
    *reply = NULL;
    if (l->err)
        return REDIS_ERR;
    if (redisReaderGetReply(l->reader, &r) != REDIS_OK)
        return fail(l, REDIS_ERR_PROTOCOL, "%s", l->reader->errstr);
    *reply = r;
    return REDIS_OK;
}

int redis_link_get_reply(struct redis_link *l, redisReply **reply)
{
    *reply = NULL;
    if (redis_link_next_reply(l, reply) != REDIS_OK)
        return REDIS_ERR;
    if (*reply != NULL)
        return REDIS_OK;
    if (redis_link_flush(l) != REDIS_OK)
        return REDIS_ERR;
    while (*reply == NULL)
        if (redis_link_read(l) != REDIS_OK || redis_link_next_reply(l, reply) != REDIS_OK)
            return REDIS_ERR;
    return REDIS_OK;
}

redisReply *redis_link_command_argv(struct redis_link *l, int argc, const char **argv,
                                    const size_t *lens)
{
    redisReply *r = NULL;
    if (redis_link_append_argv(l, argc, argv, lens) != REDIS_OK ||
        redis_link_get_reply(l, &r) != REDIS_OK)
        return NULL;
    return r;
}

redisReply *redis_link_vcommandf(struct redis_link *l, const char *fmt, va_list ap)
{
    redisReply *r = NULL;
    if (redis_link_vappendf(l, fmt, ap) != REDIS_OK || redis_link_get_reply(l, &r) != REDIS_OK)
        return NULL;
    return r;
}

redisReply *redis_link_commandf(struct redis_link *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redis_link_vcommandf(l, fmt, ap);
    va_end(ap);
    return r;
}

int redis_link_idle_ok(struct redis_link *l)
{
    if (l->err)
        return 0;
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    if (poll(&p, 1, 0) == 0)
        return 1;
    if (l->ssl == NULL)
        return 0;
    /* TLS 1.3 servers send session tickets after the handshake: records
     * without data. Consume them without waiting; data or EOF is a loss. */
    char c;
    if (set_blocking(l->fd, 0) != 0)
        return 0;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_peek(l->ssl, &c, 1);
    int se = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(l->ssl, rc);
    int e = errno;
    if (set_blocking(l->fd, 1) != 0)
        return 0;
    return rc <= 0 && (se == SSL_ERROR_WANT_READ ||
                       (se == SSL_ERROR_SYSCALL && (e == EAGAIN || e == EWOULDBLOCK)));
}
