/*
 * reload.h - replace the policy in force (SIGHUP, the admin API, start-up).
 *
 * The new document is loaded and checked completely before it is swapped
 * in (policy/holder.h), so a bad file changes nothing: its problems are
 * returned and logged, and the old policy stays in force. Every attempt is
 * audited with the document's digest.
 */
#ifndef ZTB_BROKER_RELOAD_H
#define ZTB_BROKER_RELOAD_H

#include <jansson.h>
#include <ztb/error.h>

struct broker;

/*
 * Reload b's configured policy file into b's policy holder. On success *digest_out (may be NULL)
 * gets a copy of the new document's SHA-256 hex (65 bytes). On failure
 * *problems (may be NULL) is a new JSON array of messages ("line:col: ..."
 * or "rule \"x\": ..."), which the caller decrefs. STATE if no policy file
 * is configured.
 */
ztb_err broker_policy_reload(struct broker *b, const char *actor, char digest_out[65],
                             json_t **problems);

#endif /* ZTB_BROKER_RELOAD_H */
