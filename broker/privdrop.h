/*
 * privdrop.h - run as an unprivileged user.
 *
 * Started as root, the broker binds its listening socket, makes sure its
 * state directory is the service user's (handing over only the directory
 * itself, through a descriptor, when it is root's and empty; refusing to
 * start when anything below belongs to someone else: root never follows a
 * path the service user controls), then gives up root for good
 * (supplementary groups, gid, uid) before it reads any key or parses any
 * request. Started as another user, nothing changes.
 */
#ifndef ZTB_BROKER_PRIVDROP_H
#define ZTB_BROKER_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

#include <ztb/error.h>

/*
 * Drop to user if running as root; the process is then not dumpable again
 * (a uid change resets that). Errors name what failed and how to fix it:
 * PERMISSION for a state directory that is not the user's.
 */
ztb_err privdrop(const char *user, const char *state_dir, char *err, size_t errcap);

/*
 * Keep gid as a supplementary group when privdrop drops root (at most
 * PRIVDROP_KEEP_MAX; more are ignored): the admin sockets' groups, so that
 * the broker can hand its sockets to them (chown to a group needs
 * membership). Call before privdrop.
 */
#define PRIVDROP_KEEP_MAX 2
void privdrop_keep_group(gid_t gid);

#endif /* ZTB_BROKER_PRIVDROP_H */
