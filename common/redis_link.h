/*
 * redis_link.h - one connection to one Redis server: the socket (TCP, unix,
 * or TLS over TCP with OpenSSL) that ztb owns, with hiredis used only as the
 * RESP codec (redisFormatCommand* to encode, redisReader to parse).
 *
 * Shared by the broker (broker/store/redis_client.c, broker/check_config.c)
 * and libztb (sdk/src/redis_conn.c, sdk/src/revfeed.c) through
 * common/redis_target.c, which opens links (connect, TLS handshake, AUTH,
 * SELECT, Sentinel discovery). Debian 12's hiredis 0.14 has no TLS; owning
 * the socket is what lets every topology run over TLS with the same code.
 *
 * The socket is blocking with SO_RCVTIMEO/SO_SNDTIMEO set to the timeout,
 * as hiredis's blocking contexts are: a command blocks at most about the
 * timeout per read or write, and a timeout is an I/O error with
 * `timed_out` set. After any error the link is unusable (err != 0, a
 * message in errstr, never a credential): the caller frees it.
 *
 * Pub/sub and pipelines use the lower layer: redis_link_append*() queues
 * encoded commands, redis_link_flush() writes them, redis_link_read() reads
 * once from the socket (and everything TLS has already decrypted) into the
 * reader, redis_link_next_reply() takes a reply from what was read.
 *
 * What it must never do: write a password or a command's arguments into
 * errstr; hand out a reply that was not parsed whole by hiredis's reader.
 */
#ifndef ZTB_COMMON_REDIS_LINK_H
#define ZTB_COMMON_REDIS_LINK_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <ztb/error.h>

/* TLS settings of a rediss:// target (paths and names, no secrets). */
struct redis_tls {
    int on;                /* 1 for rediss:// */
    char ca[256];          /* CA file (PEM); "" for the system's trust store */
    char cert[256];        /* client certificate (PEM), "" for none */
    char key[256];         /* its private key (PEM), required with cert */
    char server_name[256]; /* name to verify instead of the host ("" : the host) */
};

struct redis_link {
    int fd;
    void *ssl; /* SSL *, NULL for a plain connection */
    redisReader *reader;
    char *obuf; /* encoded commands not yet written */
    size_t olen, ocap;
    int err;          /* 0, or a hiredis REDIS_ERR_* code (IO, EOF, PROTOCOL, OTHER) */
    int timed_out;    /* err is an I/O timeout */
    char errstr[192]; /* why err is set */
    unsigned timeout_ms;
};

/*
 * Connect to path (a unix socket) if it is not empty, else to host:port over
 * TCP, within timeout_ms (also every later read and write), with TLS if
 * tls->on (TLS 1.2 or later, the server's certificate verified against
 * tls->ca and its name against tls->server_name or host: a DNS name through
 * SNI and X509_VERIFY_PARAM_set1_host, an IP address against the
 * certificate's IP SANs). *out is the caller's (redis_link_free), NULL on
 * failure; why (never a secret) in err (errcap bytes) if err is not NULL.
 * UNAVAILABLE if the server cannot be reached or the handshake fails,
 * INVALID_ARG if the TLS files cannot be loaded, NOMEM.
 */
ztb_err redis_link_open(const char *path, const char *host, int port, const struct redis_tls *tls,
                        unsigned timeout_ms, struct redis_link **out, char *err, size_t errcap);

/* Close and free; l may be NULL. */
void redis_link_free(struct redis_link *l);

/* Change the read/write timeout (e.g. for WAIT, which blocks). 0 on success. */
int redis_link_set_timeout(struct redis_link *l, unsigned timeout_ms);

/* Queue one command for the next flush: binary-safe argv (lens may be NULL
 * for NUL-terminated arguments), or hiredis printf-style (%s, %b, %d...).
 * REDIS_OK or REDIS_ERR (out of memory or a bad format; err set). */
int redis_link_append_argv(struct redis_link *l, int argc, const char **argv, const size_t *lens);
int redis_link_appendf(struct redis_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int redis_link_vappendf(struct redis_link *l, const char *fmt, va_list ap);
/* Queue a command already encoded in RESP (len bytes, copied). */
int redis_link_append_raw(struct redis_link *l, const char *cmd, size_t len);

/* Write everything queued. REDIS_OK or REDIS_ERR (err set). */
int redis_link_flush(struct redis_link *l);

/* Read once from the socket into the reader (blocks up to the timeout if
 * nothing is there), then whatever TLS has already decrypted. REDIS_OK or
 * REDIS_ERR (err set: EOF, I/O, timeout). */
int redis_link_read(struct redis_link *l);

/* A whole reply already read, into *reply (NULL if none is complete yet;
 * the caller frees it with freeReplyObject). REDIS_OK, or REDIS_ERR on a
 * protocol error (err set). */
int redis_link_next_reply(struct redis_link *l, redisReply **reply);

/* Flush, then read until one reply is complete. REDIS_OK with *reply the
 * caller's, or REDIS_ERR (err set, *reply NULL). */
int redis_link_get_reply(struct redis_link *l, redisReply **reply);

/* One command and its reply (caller frees; may be an error reply), or NULL
 * if it failed in transport (err set). */
redisReply *redis_link_command_argv(struct redis_link *l, int argc, const char **argv,
                                    const size_t *lens);
redisReply *redis_link_commandf(struct redis_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
redisReply *redis_link_vcommandf(struct redis_link *l, const char *fmt, va_list ap);

/*
 * 1 if an idle link still looks usable: nothing to read and no hangup, or
 * (TLS) only TLS records that carry no data (a TLS 1.3 session ticket),
 * which are consumed. 0 if the server closed it or sent something unasked.
 */
int redis_link_idle_ok(struct redis_link *l);

#endif /* ZTB_COMMON_REDIS_LINK_H */
