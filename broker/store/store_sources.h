/*
 * store_sources.h - the registered signal sources in Redis.
 *
 * Keys:
 *
 *   ztb:{src}:all                  SET  names of registered signal sources
 *   ztb:{src}:id:<name>            HASH name, secret (SHA-256 hex of the bearer
 *                                  secret), jwk (transmitter key), agent, created
 *   ztb:{src}:sec:<sha256 hex>     STR  source name, by secret hash
 *   ztb:{src}:agent:<agent>        STR  source name of an enrolled identity
 *
 * Every function returns UNAVAILABLE when Redis cannot answer (callers fail
 * closed with 503); nothing here changes state half-way.
 */
#ifndef ZTB_BROKER_STORE_SOURCES_H
#define ZTB_BROKER_STORE_SOURCES_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

struct json_t;

#define STORE_SOURCE_MAX        64 /* source names: like agent names */
#define STORE_SOURCE_SECRET_LEN 50 /* "ztbsrc_" + 43 base64url characters */

/* 1 if name is a valid source name (the agent-name alphabet). */
int store_source_name_ok(const char *name);

/*
 * Register a signal source. With agent set, the source is that enrolled
 * identity (it authenticates as the agent; no secret). Otherwise a fresh
 * bearer secret is written into secret (only its SHA-256 is stored; the
 * caller shows it once and wipes it). jwk (may be NULL): the public key of
 * its signed SETs. EXISTS if the name (or the agent) is taken.
 */
ztb_err store_source_add(const char *name, const char *jwk, const char *agent, int64_t now,
                         char secret[STORE_SOURCE_SECRET_LEN + 1]);

/* Remove a source (its secret stops working at once). NOT_FOUND if unknown. */
ztb_err store_source_remove(const char *name);

/* All sources as a new JSON array of {name, kind, agent, has_jwk, created}. */
ztb_err store_source_list(struct json_t **out);

/* The source a bearer secret belongs to. NOT_FOUND if none. */
ztb_err store_source_by_secret(const char *secret, char name[STORE_SOURCE_MAX + 1]);

/* The source registered for an enrolled agent. NOT_FOUND if none. */
ztb_err store_source_by_agent(const char *agent, char name[STORE_SOURCE_MAX + 1]);

/* A source's transmitter JWK (text into jwk, cap bytes). NOT_FOUND if the
 * source is unknown or has no key. */
ztb_err store_source_jwk(const char *name, char *jwk, size_t cap);

#endif /* ZTB_BROKER_STORE_SOURCES_H */
