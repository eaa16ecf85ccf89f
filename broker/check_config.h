/*
 * check_config.h - `ztb-broker --check-config`: would a start with this
 * configuration succeed, and if not, what is wrong with it?
 *
 * Checks, in the order a start meets them: the options (broker_config_check),
 * the state directory, the TLS files, the service user (dropped to when run
 * as root, as a start does, so file ownership is checked as the broker will
 * see it), the policy (loaded and compiled, its trust domain against
 * --trust-domain), the key store (an active signing key; the agent CA) and
 * Redis (PING at --redis, or the redis-server binary for a private one).
 * Creates and changes nothing.
 */
#ifndef ZTB_BROKER_CHECK_CONFIG_H
#define ZTB_BROKER_CHECK_CONFIG_H

#include <stdio.h>

#include "broker/config.h"

/*
 * Run every check on cfg and print one line per check to out: "ok   WHAT:
 * detail" or "FAIL WHAT: the problem and its fix". Returns the exit status
 * of --check-config: 0 when nothing failed, 1 otherwise. May drop root
 * privileges for good (to cfg->user), so the caller exits afterwards.
 */
int broker_check_config(struct broker_config *cfg, FILE *out);

#endif /* ZTB_BROKER_CHECK_CONFIG_H */
