/*
 * privdrop.c - give up root (see privdrop.h).
 *
 * Root never follows a path the service user controls. The state directory's
 * contents belong to the service user, who may change them at any moment
 * (and restart the broker to retry), so a recursive chown by path as root
 * can be steered through a directory swapped for a symlink into any
 * root-owned file. Instead:
 *
 * - the state directory itself is opened once with O_NOFOLLOW|O_DIRECTORY and
 *   everything else is done on that descriptor: if it is root's and empty
 *   (just created) it is handed over with fchown; if it already belongs to
 *   the service user it is kept as it is; anything else is refused;
 * - what lies below is only looked at, never changed: each directory is
 *   opened relative to its parent's descriptor with O_NOFOLLOW, each entry
 *   examined with fstatat(AT_SYMLINK_NOFOLLOW). An entry that does not
 *   belong to the service user stops the start with the path, the owner
 *   expected and the command that fixes it (the install step creates the
 *   tree as the service user; docs/broker.md).
 */
#define _GNU_SOURCE /* setgroups */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "broker/privdrop.h"
#include "common/log.h"
#include "common/secret.h"

/* Deeper than any tree the broker makes (keys/, audit/, redis/appendonlydir). */
#define STATE_DEPTH_MAX 8

struct owner {
    const char *user;
    uid_t uid;
    gid_t gid;
    const char *top; /* the state directory, for messages */
};

static void refuse_owner(const struct owner *o, const char *path, uid_t found, char *err,
                         size_t errcap)
{
    snprintf(err, errcap,
             "%s belongs to uid %u, not to the service user %s (uid %u): started as root, the "
             "broker changes no owner below its state directory (a tree %s controls); create "
             "it as %s, or with the broker stopped run: chown -hR %s: %s",
             path, (unsigned)found, o->user, (unsigned)o->uid, o->user, o->user, o->user, o->top);
}

/*
 * Check that every entry below the directory open at dirfd (named path in
 * messages) belongs to the service user. Reads only; never follows a
 * symlink. Entries that vanish or change type while being read are skipped:
 * nothing here acts on them. Consumes nothing: dirfd stays open.
 */
static ztb_err check_tree(const struct owner *o, int dirfd, const char *path, int depth, char *err,
                          size_t errcap)
{
    if (depth > STATE_DEPTH_MAX) {
        snprintf(err, errcap, "%s: nested deeper than %d levels below the state directory", path,
                 STATE_DEPTH_MAX);
        return ZTB_ERR_PERMISSION;
    }
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return ZTB_ERR_IO;
    }
    rewinddir(d);
    ztb_err rv = ZTB_OK;
    struct dirent *e;
    char sub[1024];
    while (rv == ZTB_OK && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone */
        if (st.st_uid != o->uid) {
            refuse_owner(o, sub, st.st_uid, err, errcap);
            rv = ZTB_ERR_PERMISSION;
            break;
        }
        if (!S_ISDIR(st.st_mode))
            continue;
        int child = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child < 0)
            continue; /* replaced since fstatat: whatever it is, it is not touched */
        if (fstat(child, &st) != 0 || st.st_uid != o->uid) {
            refuse_owner(o, sub, st.st_uid, err, errcap);
            rv = ZTB_ERR_PERMISSION;
        } else {
            rv = check_tree(o, child, sub, depth + 1, err, errcap);
        }
        close(child);
    }
    if (rv == ZTB_OK && errno != 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        rv = ZTB_ERR_IO;
    }
    closedir(d);
    return rv;
}

/* 1 if the directory open at dirfd has no entry but . and .., else 0. */
static int dir_empty(int dirfd)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    int empty = 1;
    struct dirent *e;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/*
 * Make the state directory the service user's without following any path
 * that user controls (see the top of this file).
 */
static ztb_err take_state_dir(const struct owner *o, char *err, size_t errcap)
{
    int fd = open(o->top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "state directory %s: %s (it must be a directory, not a symlink)",
                 o->top, strerror(errno));
        return ZTB_ERR_PERMISSION;
    }
    ztb_err rv = ZTB_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errcap, "state directory %s: %s", o->top, strerror(errno));
        rv = ZTB_ERR_IO;
    } else if (st.st_uid == o->uid) {
        rv = check_tree(o, fd, o->top, 1, err, errcap);
    } else if (st.st_uid == 0 && dir_empty(fd)) {
        if (fchown(fd, o->uid, o->gid) != 0) {
            snprintf(err, errcap, "chown %s to %s: %s", o->top, o->user, strerror(errno));
            rv = ZTB_ERR_PERMISSION;
        }
    } else {
        refuse_owner(o, o->top, st.st_uid, err, errcap);
        rv = ZTB_ERR_PERMISSION;
    }
    close(fd);
    return rv;
}

static gid_t keep_gids[PRIVDROP_KEEP_MAX];
static size_t keep_n;

void privdrop_keep_group(gid_t gid)
{
    if (keep_n < PRIVDROP_KEEP_MAX)
        keep_gids[keep_n++] = gid;
}

ztb_err privdrop(const char *user, const char *state_dir, char *err, size_t errcap)
{
    if (geteuid() != 0)
        return ZTB_OK;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        snprintf(err, errcap,
                 "running as root and user '%s' does not exist: create it (useradd --system "
                 "--no-create-home --shell /usr/sbin/nologin %s) or pass --user NAME",
                 user, user);
        return ZTB_ERR_NOT_FOUND;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errcap, "--user %s is root; ztb-broker does not run as root", user);
        return ZTB_ERR_PERMISSION;
    }
    struct owner o = {user, pw->pw_uid, pw->pw_gid, state_dir};
    ztb_err rv = take_state_dir(&o, err, errcap);
    if (rv != ZTB_OK)
        return rv;
    gid_t groups[1 + PRIVDROP_KEEP_MAX] = {o.gid};
    for (size_t i = 0; i < keep_n; i++)
        groups[1 + i] = keep_gids[i];
    if (setgroups(1 + keep_n, groups) != 0 || setgid(o.gid) != 0 || setuid(o.uid) != 0) {
        snprintf(err, errcap, "cannot switch to user %s: %s", user, strerror(errno));
        return ZTB_ERR_PERMISSION;
    }
    if (setuid(0) == 0 || geteuid() == 0) {
        snprintf(err, errcap, "root privileges could be regained; refusing to run");
        return ZTB_ERR_PERMISSION;
    }
    /* a change of uid resets dumpability to fs.suid_dumpable: set it again */
    if (ztb_no_core_dumps() != ZTB_OK) {
        snprintf(err, errcap, "cannot turn core dumps off: %s", strerror(errno));
        return ZTB_ERR_PERMISSION;
    }
    if (access(state_dir, R_OK | W_OK | X_OK) != 0) {
        snprintf(err, errcap,
                 "after dropping to user %s, the state dir %s is not accessible (%s): a parent "
                 "directory is probably not searchable by %s; choose a state dir %s can reach",
                 user, state_dir, strerror(errno), user, user);
        return ZTB_ERR_PERMISSION;
    }
    ztb_log(ZTB_LOG_INFO, "broker.privileges_dropped", ZTB_F_STR("user", user),
            ZTB_F_INT("uid", o.uid), ZTB_F_INT("gid", o.gid));
    return ZTB_OK;
}
