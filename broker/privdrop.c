/*
 * privdrop.c - give up root (see privdrop.h).
 */
#define _GNU_SOURCE /* nftw and setgroups */
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "broker/privdrop.h"
#include "common/log.h"

static uid_t g_uid;
static gid_t g_gid;

static int chown_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    /* lchown: a symlink planted in the state dir must not redirect this */
    if (lchown(path, g_uid, g_gid) != 0)
        return -1;
    return 0;
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
    g_uid = pw->pw_uid;
    g_gid = pw->pw_gid;
    if (nftw(state_dir, chown_one, 16, FTW_PHYS) != 0) {
        snprintf(err, errcap, "chown %s to %s: %s", state_dir, user, strerror(errno));
        return ZTB_ERR_PERMISSION;
    }
    if (setgroups(1, &g_gid) != 0 || setgid(g_gid) != 0 || setuid(g_uid) != 0) {
        snprintf(err, errcap, "cannot switch to user %s: %s", user, strerror(errno));
        return ZTB_ERR_PERMISSION;
    }
    if (setuid(0) == 0 || geteuid() == 0) {
        snprintf(err, errcap, "root privileges could be regained; refusing to run");
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
            ZTB_F_INT("uid", g_uid), ZTB_F_INT("gid", g_gid));
    return ZTB_OK;
}
