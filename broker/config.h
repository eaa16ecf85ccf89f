/*
 * config.h - ztb-broker's configuration: defaults, config file, flags.
 *
 * Precedence: built-in defaults < config file (--config FILE) < flags. The
 * file is `key = value` lines with '#' comments; every key is also a flag
 * (`--key value` with '_' spelled '-'). Unknown keys, bad values and
 * duplicate keys are errors that name the file and line. See ztb-broker(8).
 */
#ifndef ZTB_BROKER_CONFIG_H
#define ZTB_BROKER_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/log.h"

#define BROKER_PATH_MAX        256
#define BROKER_REDIS_WAIT_AUTO UINT_MAX

struct broker_config {
    char listen_host[64];  /* listen address (default 127.0.0.1) */
    uint16_t listen_port;  /* 0: pick a free port (tests) */
    char metrics_host[64]; /* --metrics-listen: a separate /metrics listener; "" none */
    uint16_t metrics_port; /* its port (0: pick a free one) */
    char redis_url[512];   /* empty: start a private redis-server */
    char state_dir[BROKER_PATH_MAX];
    char admin_socket[BROKER_PATH_MAX];          /* default <state_dir>/admin.sock */
    char admin_group[64];                        /* "": admin socket 0600; else 0660, this group */
    char admin_readonly_socket[BROKER_PATH_MAX]; /* "": none; else the read-only role's socket */
    char admin_readonly_group[64];               /* its group (0660); required with it */
    char ready_file[BROKER_PATH_MAX];            /* written with the port once serving */
    int check_config;                            /* --check-config: check, report, exit */
    char redis_server[BROKER_PATH_MAX];          /* redis-server binary for the private one */
    char user[64];                               /* drop to this user when started as root */
    char trust_domain[128];                      /* SPIFFE trust domain, e.g. example.org */
    char issuer[256];                            /* token iss; default http://LISTEN */
    unsigned join_ttl_s;                         /* default join token life */
    char keys_dir[BROKER_PATH_MAX];              /* key store (and CA); default STATE_DIR/keys */
    char key_passphrase_file[BROKER_PATH_MAX];   /* key store encryption passphrase */
    char policy_file[BROKER_PATH_MAX];           /* policy document; unset: deny everything */
    char session_key_file[BROKER_PATH_MAX];      /* default KEYS_DIR/session.key */
    unsigned identity_ttl_s;                     /* identity document life */
    unsigned session_ttl_s;                      /* session credential life */
    char audit_replica[65];                      /* audit lines' replica id ("": host name) */
    unsigned audit_checkpoint_records;           /* signed checkpoint every N records */
    unsigned audit_checkpoint_s;                 /* ... or every this many seconds */
    size_t audit_max_bytes;                      /* rotate the log past this size; 0 never */
    char tls_cert_file[BROKER_PATH_MAX];         /* PEM: serve HTTPS (and accept mTLS) */
    char tls_key_file[BROKER_PATH_MAX];
    unsigned threads; /* 0: two per core */
    unsigned connection_limit;
    unsigned per_ip_connection_limit;
    unsigned connection_timeout_s;
    size_t max_body; /* bytes, default 16 KiB */
    unsigned redis_timeout_ms;
    unsigned redis_allow_eviction; /* 1: start on an evicting Redis, with a warning */
    /* WAIT after a revocation: replicas to confirm (BROKER_REDIS_WAIT_AUTO:
     * 1 with a Sentinel URL, else 0) and the wait's timeout */
    unsigned redis_wait_replicas;
    unsigned redis_wait_timeout_ms;
    unsigned drain_timeout_s;
    ztb_log_level log_level;
    ztb_log_format log_format;
    char access_log[8];             /* "on" (default) or "off": http.access lines */
    char log_target[16];            /* "stderr" (default), "syslog" or "journald" */
    char trusted_proxies[1024];     /* --trusted-proxy CIDR[,CIDR...] (repeatable: appended) */
    unsigned detect_window_s;       /* anomaly detectors: counting window */
    unsigned detect_denials;        /* policy denials per window that raise a signal; 0 off */
    unsigned detect_rate_limited;   /* 429s per window that raise a signal; 0 off */
    unsigned detect_new_audience_s; /* learning period before new audiences raise one; 0 off */
    unsigned baseline_learn_s;      /* an agent's baseline learning window; 0 none */
    unsigned baseline_rate_factor;  /* baseline_rate: this hour > factor x learned; 0 off */
    unsigned baseline_rate_min;     /* ... and at least this many tokens */
    unsigned shadow_ai_threshold;   /* unknown callers of one source that raise shadow_ai */
    unsigned signals_ip_rate;       /* POST /v1/signals per second per address; 0 off */
    unsigned signals_ip_burst;
    unsigned signals_source_rate; /* signals per second per source (all replicas); 0 off */
    unsigned signals_source_burst;
    char authorize_routes[BROKER_PATH_MAX]; /* GET /v1/authorize route table; unset: off */
    char ssf_config[BROKER_PATH_MAX];       /* SSF transmitters and receivers; unset: off */
    char authorize_method_header[64];       /* the original method (X-Original-Method) */
    char authorize_uri_header[64];          /* the original URI (X-Original-URI) */
    char approval_webhook[2049];            /* notify pending approvals here; "" off */
    unsigned approval_webhook_allow_http;   /* 1: http:// to a host not on loopback */
    unsigned approval_webhook_resolutions;  /* 1: also approved, denied, expired */
    unsigned approval_webhook_timeout_ms;   /* one delivery attempt */
    unsigned approval_webhook_attempts;     /* attempts before giving up */
    unsigned approval_webhook_backoff_ms;   /* delay before the first retry (doubles) */
};

/* Fill c with the defaults. */
void broker_config_defaults(struct broker_config *c);

/*
 * Apply argv (and the --config file it names, read first) over c. On error
 * writes a one-line message into err (errcap bytes) and returns INVALID_ARG.
 * Sets *exit_now to 1 for --help / --version after printing them.
 */
ztb_err broker_config_parse_args(struct broker_config *c, int argc, char **argv, int *exit_now,
                                 char *err, size_t errcap);

/* Parse a config file over c. Errors name path:line. */
ztb_err broker_config_load_file(struct broker_config *c, const char *path, char *err,
                                size_t errcap);

/* Set one key (file or flag spelling) from a string. */
ztb_err broker_config_set(struct broker_config *c, const char *key, const char *value, char *err,
                          size_t errcap);

/*
 * Check what no single option can: the combinations a start must refuse.
 * Today: a listener that is not loopback needs an explicit issuer (the
 * default, http(s)://HOST:PORT, would put the listening address, e.g.
 * 0.0.0.0, into every token's iss, and every gateway would refuse them).
 * On error writes the reason and the fix into err and returns INVALID_ARG.
 */
ztb_err broker_config_check(const struct broker_config *c, char *err, size_t errcap);

/* 1 if host (an IP literal or name, as in listen) is a loopback address:
 * 127.0.0.0/8, ::1 or "localhost". */
int broker_config_host_is_loopback(const char *host);

/* Print --help text. */
void broker_config_usage(void);

#endif /* ZTB_BROKER_CONFIG_H */
