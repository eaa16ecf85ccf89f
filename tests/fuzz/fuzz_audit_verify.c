/*
 * fuzz_audit_verify.c - the audit chain's readers and the file verifier on
 * arbitrary bytes. Checks, beyond memory safety: a prev read is 64
 * lowercase hex digits; a file accepted has one record per newline and no
 * bad line; a file refused names its bad line (within the file) and why.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    if (line == NULL)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    uint64_t seq;
    char prev[AUDIT_HASH_HEX + 1];
    (void)audit_chain_seq(line, &seq);
    if (audit_chain_prev(line, prev) == ZTB_OK &&
        (strlen(prev) != AUDIT_HASH_HEX || strspn(prev, "0123456789abcdef") != AUDIT_HASH_HEX))
        abort();
    free(line);

    int fd = memfd_create("audit", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64], why[256] = "";
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    uint64_t lines = 0, bad = 0, newlines = 0;
    for (size_t i = 0; i < size; i++)
        newlines += data[i] == '\n';
    ztb_err rv = audit_verify_file(path, &lines, &bad, why, sizeof(why));
    if (rv == ZTB_OK && (bad != 0 || lines != newlines))
        abort();
    if (rv != ZTB_OK && rv != ZTB_ERR_IO && rv != ZTB_ERR_NOMEM &&
        (lines != 0 || bad == 0 || bad > newlines + 1 || why[0] == '\0'))
        abort();
    /* the whole-log check (head, replica, checkpoint lines through the JSON
     * gate): whatever it says, it names a place and never reads past it */
    const char *paths[] = {path};
    const struct audit_verify_opts o = {.anchor = "1:" /* malformed: refused */};
    struct audit_verify_report r;
    if (audit_verify_files(paths, 1, &o, &r) != ZTB_ERR_INVALID_ARG)
        abort();
    rv = audit_verify_files(paths, 1, NULL, &r);
    if (rv == ZTB_OK && (r.records != newlines || r.proven_to > r.last_seq))
        abort();
    if (rv != ZTB_OK && rv != ZTB_ERR_IO && rv != ZTB_ERR_NOMEM &&
        (r.why[0] == '\0' || r.bad_line == 0 || r.bad_line > newlines + 1))
        abort();
    close(fd);
    return 0;
}
