/*
 * keyfile.c - atomic, permission-checked key file I/O (see keyfile.h).
 *
 * Writes: openat(O_CREAT|O_EXCL|O_NOFOLLOW, mode) a random temporary name,
 * fchmod to the exact mode (the umask may have narrowed it, never widened),
 * write everything, fsync, then renameat (replace) or linkat (create only),
 * then fsync the directory so the new name itself is durable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/guard.h"
#include "common/secret.h"
#include "pki/keyfile.h"

void (*ztb_keyfile_fault_hook)(const char *step) = NULL;

void ztb_keyfile_fault_point(const char *step)
{
    if (ztb_keyfile_fault_hook != NULL)
        ztb_keyfile_fault_hook(step);
}

static ztb_err errno_to_err(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR: return ZTB_ERR_NOT_FOUND;
    case EACCES:
    case EPERM:
    case ELOOP: return ZTB_ERR_PERMISSION;
    case EEXIST: return ZTB_ERR_EXISTS;
    case ENOMEM: return ZTB_ERR_NOMEM;
    default: return ZTB_ERR_IO;
    }
}

/* A directory we keep keys in must be ours and not writable by anyone else. */
static ztb_err check_dir_fd(int fd)
{
    struct stat st;
    ZTB_ENSURE(fstat(fd, &st) == 0, ZTB_ERR_IO);
    ZTB_ENSURE(S_ISDIR(st.st_mode), ZTB_ERR_NOT_FOUND);
    ZTB_ENSURE(st.st_uid == geteuid(), ZTB_ERR_PERMISSION);
    ZTB_ENSURE((st.st_mode & 022) == 0, ZTB_ERR_PERMISSION);
    return ZTB_OK;
}

ztb_err ztb_keyfile_open_dir(const char *dir, int *fd)
{
    return ztb_keyfile_open_dir_at(AT_FDCWD, dir, fd);
}

ztb_err ztb_keyfile_open_dir_at(int dirfd, const char *dir, int *fd)
{
    ZTB_ENSURE(dir != NULL && fd != NULL, ZTB_ERR_INVALID_ARG);
    int d = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d < 0) {
        int e = errno;
        struct stat st;
        /* Linux reports a symlink under O_DIRECTORY|O_NOFOLLOW as ENOTDIR */
        if (fstatat(dirfd, dir, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            return ZTB_ERR_PERMISSION;
        return errno_to_err(e);
    }
    ztb_err rv = check_dir_fd(d);
    if (rv != ZTB_OK) {
        close(d);
        return rv;
    }
    *fd = d;
    return ZTB_OK;
}

ztb_err ztb_keyfile_make_dir(int dirfd, const char *name, int *fd)
{
    ZTB_ENSURE(name != NULL && fd != NULL, ZTB_ERR_INVALID_ARG);
    if (mkdirat(dirfd, name, 0700) != 0 && errno != EEXIST)
        return errno_to_err(errno);
    ZTB_GUARD(ztb_keyfile_open_dir_at(dirfd, name, fd));
    if (dirfd != AT_FDCWD) {
        ztb_err rv = ztb_keyfile_sync_dir(dirfd); /* make the new name durable */
        if (rv != ZTB_OK) {
            close(*fd);
            *fd = -1;
            return rv;
        }
    }
    return ZTB_OK;
}

ztb_err ztb_keyfile_sync_dir(int dirfd)
{
    ZTB_ENSURE(fsync(dirfd) == 0, ZTB_ERR_IO);
    return ZTB_OK;
}

static int plain_name(const char *name)
{
    return name != NULL && name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0 && strlen(name) < 200;
}

static ztb_err write_all(int fd, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        ZTB_ENSURE(w > 0, ZTB_ERR_IO);
        p += w;
        n -= (size_t)w;
    }
    return ZTB_OK;
}

/*
 * Write data to a new temporary file in dirfd and fsync it. On success
 * tmp holds its name; on error nothing is left behind.
 */
static ztb_err write_temp(int dirfd, const char *name, const void *data, size_t n, mode_t mode,
                          char *tmp, size_t tmp_cap)
{
    ztb_err rv = ZTB_OK;
    int fd = -1;
    unsigned char rnd[8];
    ZTB_GUARD(ztb_random(rnd, sizeof(rnd)));
    int k = snprintf(tmp, tmp_cap, ".%s.tmp.%02x%02x%02x%02x%02x%02x%02x%02x", name, rnd[0], rnd[1],
                     rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    ZTB_ENSURE(k > 0 && (size_t)k < tmp_cap, ZTB_ERR_INVALID_ARG);

    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
    if (fd < 0)
        return errno_to_err(errno);
    ZTB_CHECK(rv, fchmod(fd, mode & 0777) == 0, ZTB_ERR_IO);
    ZTB_TRY(rv, write_all(fd, data, n));
    ztb_keyfile_fault_point("tmp-written");
    ZTB_CHECK(rv, fsync(fd) == 0, ZTB_ERR_IO);
    ztb_keyfile_fault_point("tmp-synced");
out:
    if (fd >= 0 && close(fd) != 0 && rv == ZTB_OK)
        rv = ZTB_ERR_IO;
    if (rv != ZTB_OK)
        unlinkat(dirfd, tmp, 0);
    return rv;
}

ztb_err ztb_keyfile_write_atomic(int dirfd, const char *name, const void *data, size_t n,
                                 mode_t mode)
{
    ZTB_ENSURE(plain_name(name), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(data != NULL || n == 0, ZTB_ERR_INVALID_ARG);
    char tmp[256];
    ZTB_GUARD(write_temp(dirfd, name, data, n, mode, tmp, sizeof(tmp)));
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        ztb_err rv = errno_to_err(errno);
        unlinkat(dirfd, tmp, 0);
        return rv;
    }
    ztb_keyfile_fault_point("renamed");
    ZTB_GUARD(ztb_keyfile_sync_dir(dirfd));
    ztb_keyfile_fault_point("dir-synced");
    return ZTB_OK;
}

ztb_err ztb_keyfile_write_new(int dirfd, const char *name, const void *data, size_t n, mode_t mode)
{
    ZTB_ENSURE(plain_name(name), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(data != NULL || n == 0, ZTB_ERR_INVALID_ARG);
    char tmp[256];
    ZTB_GUARD(write_temp(dirfd, name, data, n, mode, tmp, sizeof(tmp)));
    int linked = linkat(dirfd, tmp, dirfd, name, 0);
    int e = errno;
    unlinkat(dirfd, tmp, 0);
    if (linked != 0)
        return errno_to_err(e);
    ztb_keyfile_fault_point("renamed");
    ZTB_GUARD(ztb_keyfile_sync_dir(dirfd));
    ztb_keyfile_fault_point("dir-synced");
    return ZTB_OK;
}

ztb_err ztb_keyfile_read(int dirfd, const char *name, size_t max, ztb_keyfile_check check,
                         ztb_buf *out)
{
    ZTB_ENSURE(name != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ztb_err rv = ZTB_OK;
    uint8_t chunk[4096]; /* may hold secret bytes: wiped at out */
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno_to_err(errno);
    memset(chunk, 0, sizeof(chunk));
    struct stat st;
    ZTB_CHECK(rv, fstat(fd, &st) == 0, ZTB_ERR_IO);
    ZTB_CHECK(rv, S_ISREG(st.st_mode), ZTB_ERR_PERMISSION);
    ZTB_CHECK(rv, st.st_uid == geteuid(), ZTB_ERR_PERMISSION);
    ZTB_CHECK(rv, (st.st_mode & 022) == 0, ZTB_ERR_PERMISSION);
    if (check == ZTB_KEYFILE_SECRET)
        ZTB_CHECK(rv, (st.st_mode & 077) == 0, ZTB_ERR_PERMISSION);
    ZTB_CHECK(rv, st.st_size >= 0 && (uint64_t)st.st_size <= max, ZTB_ERR_TOO_LARGE);
    size_t total = 0;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        ZTB_CHECK(rv, r >= 0, ZTB_ERR_IO);
        if (r == 0)
            break;
        /* the file may have grown since fstat: the cap still holds */
        ZTB_CHECK(rv, (size_t)r <= max - total, ZTB_ERR_TOO_LARGE);
        total += (size_t)r;
        ZTB_TRY(rv, ztb_buf_append(out, chunk, (size_t)r));
    }
out:
    ztb_wipe(chunk, sizeof(chunk));
    close(fd);
    return rv;
}

ztb_err ztb_keyfile_read_passphrase(const char *path, char **out, size_t *len)
{
    ZTB_ENSURE(path != NULL && out != NULL && len != NULL, ZTB_ERR_INVALID_ARG);
    ztb_buf b;
    ztb_buf_init_secret(&b, ZTB_PASSPHRASE_MAX + 2);
    ztb_err rv = ztb_keyfile_read(AT_FDCWD, path, ZTB_PASSPHRASE_MAX + 2, ZTB_KEYFILE_SECRET, &b);
    if (rv == ZTB_ERR_TOO_LARGE)
        rv = ZTB_ERR_PASSPHRASE;
    if (rv != ZTB_OK)
        goto out;
    size_t n = b.len;
    if (n > 0 && b.data[n - 1] == '\n')
        n--;
    if (n > 0 && b.data[n - 1] == '\r')
        n--;
    ZTB_CHECK(rv, n > 0 && n <= ZTB_PASSPHRASE_MAX, ZTB_ERR_PASSPHRASE);
    ZTB_CHECK(rv, memchr(b.data, '\0', n) == NULL, ZTB_ERR_PASSPHRASE);
    ztb_buf_truncate(&b, n);
    *out = ztb_buf_steal(&b, len);
    ZTB_CHECK(rv, *out != NULL, ZTB_ERR_NOMEM);
out:
    ztb_buf_free(&b);
    return rv;
}

ztb_err ztb_keyfile_remove(int dirfd, const char *name)
{
    ZTB_ENSURE(plain_name(name), ZTB_ERR_INVALID_ARG);
    if (unlinkat(dirfd, name, 0) != 0) {
        if (errno == ENOENT)
            return ZTB_OK;
        return errno_to_err(errno);
    }
    return ztb_keyfile_sync_dir(dirfd);
}

size_t ztb_keyfile_remove_temps(int dirfd)
{
    int d = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return 0;
    DIR *dir = fdopendir(d);
    if (dir == NULL) {
        close(d);
        return 0;
    }
    size_t removed = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp.") != NULL &&
            unlinkat(dirfd, e->d_name, 0) == 0)
            removed++;
    }
    closedir(dir);
    if (removed > 0)
        (void)ztb_keyfile_sync_dir(dirfd);
    return removed;
}
