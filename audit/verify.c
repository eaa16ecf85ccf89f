/*
 * verify.c - prove an audit log's hash chain (see verify.h).
 *
 * One pass over the file with a fixed line buffer: each line is checked to
 * be whole (ends in a newline, no NUL byte, at most AUDIT_VERIFY_LINE_MAX
 * bytes), read for its seq and prev through chain.h, compared with what the
 * line before predicts, and hashed for the next. It stops at the first
 * break, which it names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"
#include "audit/verify.h"

ztb_err audit_verify_file(const char *path, uint64_t *lines, uint64_t *bad_line, char *why,
                          size_t whycap)
{
    *lines = 0;
    *bad_line = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(why, whycap, "%s: %s", path, strerror(errno));
        return ZTB_ERR_IO;
    }
    char *line = malloc(AUDIT_VERIFY_LINE_MAX + 2);
    if (line == NULL) {
        fclose(f);
        return ZTB_ERR_NOMEM;
    }
    char prev[AUDIT_HASH_HEX + 1];
    memcpy(prev, audit_genesis, sizeof(prev));
    uint64_t n = 0, expect_seq = 0;
    ztb_err rv = ZTB_OK;
    while (fgets(line, AUDIT_VERIFY_LINE_MAX + 2, f) != NULL) {
        n++;
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            snprintf(why, whycap, feof(f) ? "last line is incomplete" : "line too long");
            rv = ZTB_ERR_MALFORMED;
            break;
        }
        len--; /* drop the newline */
        line[len] = '\0';
        if (strlen(line) != len) {
            snprintf(why, whycap, "line contains a NUL byte");
            rv = ZTB_ERR_MALFORMED;
            break;
        }
        uint64_t seq;
        char p[AUDIT_HASH_HEX + 1];
        if (audit_chain_seq(line, &seq) != ZTB_OK || audit_chain_prev(line, p) != ZTB_OK) {
            snprintf(why, whycap, "not an audit record (no seq or prev)");
            rv = ZTB_ERR_MALFORMED;
            break;
        }
        if (n == 1)
            expect_seq = seq; /* a rotated file starts where the last one ended */
        if (seq != expect_seq) {
            snprintf(why, whycap, "seq %llu where %llu was expected (a line removed or added)",
                     (unsigned long long)seq, (unsigned long long)expect_seq);
            rv = ZTB_ERR_SIGNATURE;
            break;
        }
        if (n > 1 && strcmp(p, prev) != 0) {
            snprintf(why, whycap, "prev hash does not match the line before (changed line %llu)",
                     (unsigned long long)(n - 1));
            rv = ZTB_ERR_SIGNATURE;
            break;
        }
        if (n == 1 && seq == 1 && strcmp(p, audit_genesis) != 0) {
            snprintf(why, whycap, "first record's prev is not the genesis hash");
            rv = ZTB_ERR_SIGNATURE;
            break;
        }
        audit_chain_hash(line, len, prev);
        expect_seq = seq + 1;
    }
    if (rv != ZTB_OK)
        *bad_line = n;
    else
        *lines = n;
    free(line);
    fclose(f);
    return rv;
}
