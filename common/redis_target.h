/*
 * redis_target.h - where Redis is and how to open a connection to it: the
 * one parser of Redis URLs and the one connect-and-authenticate step, shared
 * by the broker (broker/store/redis_client.c) and libztb (sdk/src/redis_conn.c).
 *
 * URLs:
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
 *   redis://USER:PASSWORD@[IPV6]:PORT/DB    (an IPv6 address in brackets)
 *   unix:///PATH[?db=N]
 * USER and PASSWORD may be percent-encoded (%40 for '@', %3A for ':'). With
 * a USER the connection authenticates as that ACL user (AUTH USER PASSWORD);
 * with only a password (redis://:PASSWORD@HOST) as the default user. DB is
 * 0-15. rediss:// (TLS) is recognised and refused with a message: this
 * build speaks plain TCP and unix sockets only.
 *
 * The password is a secret: wiped by redis_target_wipe, never in a message
 * or a description.
 */
#ifndef ZTB_COMMON_REDIS_TARGET_H
#define ZTB_COMMON_REDIS_TARGET_H

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <ztb/error.h>

#define REDIS_TARGET_DEFAULT_PORT 6379

struct redis_target {
    char host[256]; /* TCP host (an IPv6 address without brackets), "" for a unix socket */
    int port;
    char path[108]; /* unix socket path */
    int db;
    char user[128];      /* ACL user; "" for the default user */
    char password[256];  /* secret: wiped by redis_target_wipe */
    unsigned timeout_ms; /* connect and command timeout */
};

/*
 * Parse url into t, with timeout_ms for connects and commands. On error
 * INVALID_ARG, t wiped, and a message in err naming what is wrong (never
 * the password).
 */
ztb_err redis_target_parse(const char *url, unsigned timeout_ms, struct redis_target *t, char *err,
                           size_t errcap);

/* Wipe the password. */
void redis_target_wipe(struct redis_target *t);

/* "unix:/path", "host:port" or "[v6]:port", with "user@" before it when an
 * ACL user is set; never the password. */
void redis_target_describe(const struct redis_target *t, char *out, size_t cap);

/*
 * Connect with t's timeout (also set for every later command), then AUTH
 * (as t's user, if any) and SELECT t's database. *out is the caller's
 * (redisFree). UNAVAILABLE if Redis cannot be reached or refuses AUTH or
 * SELECT; why (never the password) in err if errcap > 0. The caller handles
 * SIGPIPE unless its thread blocks it.
 */
ztb_err redis_target_connect(const struct redis_target *t, redisContext **out, char *err,
                             size_t errcap);

#endif /* ZTB_COMMON_REDIS_TARGET_H */
