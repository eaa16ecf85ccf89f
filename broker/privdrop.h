/*
 * privdrop.h - run as an unprivileged user.
 *
 * Started as root, the broker binds its listening socket, hands its state
 * directory to the service user (chown, not following symlinks), then gives
 * up root for good (supplementary groups, gid, uid) before it reads any key
 * or parses any request. Started as another user, nothing changes.
 */
#ifndef ZTB_BROKER_PRIVDROP_H
#define ZTB_BROKER_PRIVDROP_H

#include <stddef.h>

#include <ztb/error.h>

/* Drop to user if running as root. Errors name what failed and how to fix it. */
ztb_err privdrop(const char *user, const char *state_dir, char *err, size_t errcap);

#endif /* ZTB_BROKER_PRIVDROP_H */
