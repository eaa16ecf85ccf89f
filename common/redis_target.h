/*
 * redis_target.h - where Redis is and how to open a connection to it: the
 * one parser of Redis URLs and the one connect-and-authenticate step, shared
 * by the broker (broker/store/redis_client.c) and libztb (sdk/src/redis_conn.c).
 *
 * URLs:
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
 *   redis://USER:PASSWORD@[IPV6]:PORT/DB    (an IPv6 address in brackets)
 *   unix:///PATH[?db=N]
 *   redis+sentinel://[[USER]:PASSWORD@]SENTINEL[:PORT][,SENTINEL[:PORT]...]/MASTER[/DB]
 *                    [?sentinel_username=U&sentinel_password=P]
 *   redis+cluster://[[USER]:PASSWORD@]NODE[:PORT][,NODE[:PORT]...][/0]
 * The Sentinel form names up to REDIS_TARGET_MAX_SENTINELS sentinels
 * (default port 26379, IPv6 in brackets) and the master's name as the
 * sentinels know it; the master is found through them at every connect
 * (SENTINEL GET-MASTER-ADDR-BY-NAME) and checked with ROLE, so a connection
 * is never made to a replica. USER and PASSWORD authenticate to the master;
 * the sentinels take their own, in sentinel_username/sentinel_password
 * (sentinels without a password: omit them). The same form as Python's
 * redis+sentinel:// URLs (redis-sentinel-url, prefect-redis, redisvl).
 * The Cluster form names up to REDIS_TARGET_MAX_SEEDS seed nodes (default
 * port 6379, IPv6 in brackets) from which the slot map is read
 * (common/redis_cluster.h routes each command to its slot's master); the
 * database can only be 0. rediss+cluster:// takes the TLS options below.
 * USER and PASSWORD may be percent-encoded (%40 for '@', %3A for ':'). With
 * a USER the connection authenticates as that ACL user (AUTH USER PASSWORD);
 * with only a password (redis://:PASSWORD@HOST) as the default user. DB is
 * 0-15.
 *
 * TLS: rediss:// and rediss+sentinel:// take the forms above over TLS 1.2+
 * (common/redis_link.c), with options in the query:
 *   ca=PATH        CA file (PEM) the server's certificate must chain to
 *                  (default: the system's trust store)
 *   cert=PATH      client certificate (PEM), for servers with tls-auth-clients
 *   key=PATH       its private key (PEM); cert and key go together
 *   tls_name=NAME  the name (or IP address) the server's certificate must
 *                  hold, if not the host in the URL (e.g. for masters that
 *                  sentinels name by address)
 * The server's certificate is always verified, name included; there is no
 * option to skip that. With rediss+sentinel:// the sentinels and the master
 * are all reached over TLS with the same settings. Paths are percent-decoded.
 *
 * The password is a secret: wiped by redis_target_wipe, never in a message
 * or a description.
 */
#ifndef ZTB_COMMON_REDIS_TARGET_H
#define ZTB_COMMON_REDIS_TARGET_H

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <ztb/error.h>

#include "common/redis_link.h"

#define REDIS_TARGET_DEFAULT_PORT    6379
#define REDIS_TARGET_SENTINEL_PORT   26379
#define REDIS_TARGET_MAX_SENTINELS   8
#define REDIS_TARGET_MASTER_NAME_MAX 128
#define REDIS_TARGET_MAX_SEEDS       8

struct redis_sentinel_addr {
    char host[256]; /* an IPv6 address without brackets */
    int port;
};

struct redis_target {
    char host[256]; /* TCP host (an IPv6 address without brackets), "" for a unix socket */
    int port;
    char path[108]; /* unix socket path */
    int db;
    char user[128];      /* ACL user; "" for the default user */
    char password[256];  /* secret: wiped by redis_target_wipe */
    unsigned timeout_ms; /* connect and command timeout */
    /* Sentinel form: nsentinels > 0, the sentinels, the master's name and
     * the sentinels' own credentials (secret: wiped by redis_target_wipe).
     * host/port are then unused: the master is found at connect. */
    size_t nsentinels;
    struct redis_sentinel_addr sentinels[REDIS_TARGET_MAX_SENTINELS];
    char master_name[REDIS_TARGET_MASTER_NAME_MAX];
    char sentinel_user[128];
    char sentinel_password[256];
    struct redis_tls tls; /* rediss://: tls.on and its files */
    /* Cluster form: nseeds > 0, the seed nodes the slot map is first read
     * from (common/redis_cluster.h); host/port are then unused. */
    size_t nseeds;
    struct redis_sentinel_addr seeds[REDIS_TARGET_MAX_SEEDS];
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
 * ACL user is set, or "sentinel:MASTER@host:port,..." for the Sentinel form,
 * with "tls:" before it for rediss://; never a password. */
void redis_target_describe(const struct redis_target *t, char *out, size_t cap);

/*
 * Connect with t's timeout (also set for every later command), over TLS
 * for rediss://, then AUTH (as t's user, if any) and SELECT t's database;
 * with neither, a PING proves the server speaks RESP (a TLS port reached
 * with redis:// fails here, with a message saying so). *out is the
 * caller's (redis_link_free). UNAVAILABLE if Redis cannot be reached or
 * refuses the handshake, AUTH or SELECT; why (never the password) in err if
 * errcap > 0. The caller handles SIGPIPE unless its thread blocks it.
 */
ztb_err redis_target_connect(const struct redis_target *t, struct redis_link **out, char *err,
                             size_t errcap);

/*
 * For the Sentinel form: with the master's address that a sentinel gave,
 * the connect above also checks ROLE (the connection is refused unless the
 * server says "master") and tries the next sentinel when one is down, does
 * not know the master, or names a server that is not (or no longer) the
 * master. Where it found the master ("host:port") goes to where (cap
 * bytes) if where is not NULL.
 */
ztb_err redis_target_connect_at(const struct redis_target *t, struct redis_link **out, char *where,
                                size_t wherecap, char *err, size_t errcap);

/*
 * A connection to sentinel i of t (0 <= i < t->nsentinels), authenticated
 * with the sentinels' credentials (over TLS for rediss+sentinel://): for
 * subscribing to +switch-master. *out is the caller's (redis_link_free);
 * UNAVAILABLE and why in err as above.
 */
ztb_err redis_target_connect_sentinel(const struct redis_target *t, size_t i,
                                      struct redis_link **out, char *err, size_t errcap);

/*
 * A connection to host:port with t's credentials, TLS settings and timeout,
 * database 0: a node of a Cluster target. As redis_target_connect otherwise.
 */
ztb_err redis_target_connect_node(const struct redis_target *t, const char *host, int port,
                                  struct redis_link **out, char *err, size_t errcap);

/*
 * What a Redis error reply or a failed command means, for counting
 * (ztb_redis_errors_total{kind}) and for deciding to find the master again.
 * Stable names: see redis_error_kind_name.
 */
enum redis_error_kind {
    REDIS_EK_NONE = 0,   /* not an error */
    REDIS_EK_CONNECTION, /* connection refused, reset or closed */
    REDIS_EK_TIMEOUT,    /* no answer within the timeout */
    REDIS_EK_READONLY,   /* a replica: the master moved (failover) */
    REDIS_EK_MASTERDOWN, /* a replica that lost its master */
    REDIS_EK_LOADING,    /* loading its data set after a restart */
    REDIS_EK_NOAUTH,     /* NOAUTH/WRONGPASS: credentials missing or refused */
    REDIS_EK_NOPERM,     /* the ACL user lacks a command or key */
    REDIS_EK_NOREPLICAS, /* min-replicas-to-write not met */
    REDIS_EK_OOM,        /* maxmemory reached with noeviction */
    REDIS_EK_CROSSSLOT,  /* Cluster: keys in different slots */
    REDIS_EK_MOVED,      /* Cluster: the slot is on another node */
    REDIS_EK_ASK,        /* Cluster: the slot is migrating */
    REDIS_EK_TRYAGAIN,   /* Cluster: retry during resharding */
    REDIS_EK_CLUSTERDOWN,
    REDIS_EK_BUSY,     /* a script runs too long */
    REDIS_EK_NOSCRIPT, /* EVALSHA of an unknown script (normal: EVAL follows) */
    REDIS_EK_OTHER,    /* any other error reply */
    REDIS_EK_N
};

/* The kind of a reply (REDIS_EK_NONE unless it is an error reply); for a
 * NULL reply (the command failed in transport) the kind of c's error. */
enum redis_error_kind redis_error_kind_of(const struct redis_link *c, const redisReply *r);

/* Its name for metrics and logs ("readonly", "connection", ...). */
const char *redis_error_kind_name(enum redis_error_kind k);

/* 1 if an error of kind k means this connection is to the wrong server or
 * a server that cannot serve writes now (a failover, a restart): find the
 * master again rather than retry on it. */
int redis_error_kind_reresolve(enum redis_error_kind k);

#endif /* ZTB_COMMON_REDIS_TARGET_H */
