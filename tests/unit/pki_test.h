/*
 * pki_test.h - helpers shared by the pki unit tests (header-only): scratch
 * directories, running a command, and crafting compact JWS tokens from
 * arbitrary header/payload/signature bytes so each rejection can be tested
 * with exactly the input that should trigger it.
 */
#ifndef ZTB_TEST_PKI_TEST_H
#define ZTB_TEST_PKI_TEST_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64url.h"
#include "common/buf.h"

/* Remove everything under the directory dirfd (recursively), not dirfd itself. */
static inline void pkt_rm_under(int dirfd)
{
    DIR *d = fdopendir(dirfd);
    if (d == NULL) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd, e->d_name, 0) == 0)
            continue;
        int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (sub >= 0)
            pkt_rm_under(sub);
        unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

/* A fresh private (0700) scratch directory; the caller frees the path. */
static inline char *pkt_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/ztb-pki-test.XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

/* Remove a scratch directory and everything in it, then free the path. */
static inline void pkt_rmdir(char *dir)
{
    if (dir == NULL)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd >= 0)
        pkt_rm_under(fd);
    rmdir(dir);
    free(dir);
}

/* Write a file with the given mode (for crafted inputs). 0 on success. */
static inline int pkt_write(const char *path, const void *data, size_t n, mode_t mode)
{
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    int ok = fwrite(data, 1, n, f) == n;
    fclose(f);
    if (chmod(path, mode) != 0)
        return -1;
    return ok ? 0 : -1;
}

/* b64url(h) "." b64url(p) "." b64url(sig) into a static buffer. */
static inline const char *pkt_token(const char *h, const char *p, const void *sig, size_t siglen)
{
    static char store[65536];
    ztb_buf b;
    ztb_buf_init_fixed(&b, store, sizeof(store));
    ztb_b64url_encode_buf(&b, h, strlen(h));
    ztb_buf_append_byte(&b, '.');
    ztb_b64url_encode_buf(&b, p, strlen(p));
    ztb_buf_append_byte(&b, '.');
    ztb_b64url_encode_buf(&b, sig, siglen);
    return ztb_buf_error(&b) == ZTB_OK ? store : NULL;
}

/* Copy fmt into out with each "%s" replaced by arg (for crafted inputs). */
static inline const char *pkt_subst(char *out, size_t cap, const char *fmt, const char *arg)
{
    size_t o = 0, alen = strlen(arg);
    for (const char *p = fmt; *p != '\0' && o + 1 < cap; p++) {
        if (p[0] == '%' && p[1] == 's' && o + alen + 1 < cap) {
            memcpy(out + o, arg, alen);
            o += alen;
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}

#endif /* ZTB_TEST_PKI_TEST_H */
