/*
 * keyfile.h - reading and writing the files that hold keys, safely.
 *
 * Every file pki/ writes (private keys, the key store manifest, CA material)
 * goes through ztb_keyfile_write_atomic(): a temporary file is created next to
 * the target with O_CREAT|O_EXCL|O_NOFOLLOW and the final mode, written,
 * fsync'ed, renamed over the target, and the directory is fsync'ed. A crash at
 * any point leaves either the old file or the new one, never a mix, and never
 * a file with looser permissions than asked for. Files are named relative to
 * an open directory descriptor, so a path component swapped for a symlink
 * between checks cannot redirect a write.
 *
 * Reads use O_NOFOLLOW, refuse anything but a regular file, cap the size, and
 * (for secrets) refuse files that are not owned by the effective user or that
 * group or others can read or write.
 *
 * This code must never follow a symlink for a key file, never create a key
 * file with a mode wider than asked, and never leave a partially written file
 * under the final name.
 */
#ifndef ZTB_PKI_KEYFILE_H
#define ZTB_PKI_KEYFILE_H

#include <stddef.h>
#include <sys/types.h>

#include <ztb/error.h>

#include "common/buf.h"

/* Largest passphrase accepted from a file, in bytes. */
#define ZTB_PASSPHRASE_MAX 1024

/* How ztb_keyfile_read checks the file it opened. */
typedef enum ztb_keyfile_check {
    ZTB_KEYFILE_PUBLIC = 0, /* owned by the effective user, not writable by group/other */
    ZTB_KEYFILE_SECRET = 1, /* also: no access at all for group/other (0600 or 0400) */
} ztb_keyfile_check;

/*
 * Test-only fault injection. When set, called with a short step name at each
 * point where a crash would leave a different state on disk ("tmp-written",
 * "tmp-synced", "renamed", "dir-synced", and the key store's own steps). The
 * crash tests install a hook that kills the process at the N-th call. NULL in
 * production; set it before starting threads.
 */
extern void (*ztb_keyfile_fault_hook)(const char *step);

/* Call the fault hook if one is installed. */
void ztb_keyfile_fault_point(const char *step);

/*
 * Open dir (which must already exist) as a directory without following a
 * final symlink. On success *fd is the descriptor, which the caller closes.
 * NOT_FOUND, PERMISSION (not ours, or writable by group/other) or IO.
 */
ztb_err ztb_keyfile_open_dir(const char *dir, int *fd);

/* The same for directory `name` relative to dirfd (AT_FDCWD: a path). */
ztb_err ztb_keyfile_open_dir_at(int dirfd, const char *name, int *fd);

/*
 * Create directory `name` under dirfd (dirfd may be AT_FDCWD and name a path)
 * with mode 0700 if it does not exist, then open it as ztb_keyfile_open_dir
 * does. An existing directory must pass the same ownership check.
 */
ztb_err ztb_keyfile_make_dir(int dirfd, const char *name, int *fd);

/*
 * Atomically replace (or create) file `name` in the directory dirfd with the
 * n bytes at data, with exactly `mode` (e.g. 0600). `name` must be a plain
 * file name (no '/'). The data is on disk when this returns ZTB_OK. On error
 * the target is unchanged and no temporary file is left behind (unless the
 * process dies first: temporary files are named ".<name>.tmp.<random>" and
 * ztb_keyfile_remove_temps() deletes them).
 */
ztb_err ztb_keyfile_write_atomic(int dirfd, const char *name, const void *data, size_t n,
                                 mode_t mode);

/*
 * Like write_atomic, but fails with EXISTS if `name` already exists (the
 * final link is made with linkat, which never replaces).
 */
ztb_err ztb_keyfile_write_new(int dirfd, const char *name, const void *data, size_t n, mode_t mode);

/*
 * Read file `name` in dirfd (AT_FDCWD and a path are fine) into out, which
 * the caller initialised (use a secret buffer for secrets). At most max bytes
 * (TOO_LARGE beyond). NOT_FOUND if missing; PERMISSION if it is a symlink,
 * not a regular file, or fails `check`; IO otherwise.
 */
ztb_err ztb_keyfile_read(int dirfd, const char *name, size_t max, ztb_keyfile_check check,
                         ztb_buf *out);

/*
 * Read a passphrase from the file at path: a SECRET file whose content is
 * the passphrase, with one trailing "\n" or "\r\n" removed. *out is a
 * NUL-terminated secret the caller frees with ztb_free_secret(*out, *len + 1).
 * PASSPHRASE if the file is empty (after the newline) or holds a NUL byte.
 */
ztb_err ztb_keyfile_read_passphrase(const char *path, char **out, size_t *len);

/* Unlink `name` in dirfd and fsync the directory. A missing file is ZTB_OK. */
ztb_err ztb_keyfile_remove(int dirfd, const char *name);

/* Delete leftover ".*.tmp.*" files in dirfd. Returns how many were removed. */
size_t ztb_keyfile_remove_temps(int dirfd);

/* fsync the directory dirfd (after a rename or unlink). */
ztb_err ztb_keyfile_sync_dir(int dirfd);

#endif /* ZTB_PKI_KEYFILE_H */
