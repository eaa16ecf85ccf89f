/*
 * cmd_audit.c - `ztbctl audit verify FILE`: prove the audit log's hash chain.
 *
 * Works on a file (a copy is fine); needs no broker. Exit 0 and a line count
 * if every line chains to the one before; exit 1 and the first broken line
 * otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "audit/verify.h"
#include "ztbctl.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: ztbctl audit verify FILE\n"
                 "\n"
                 "Check that every line of the audit log FILE carries the SHA-256 of the line\n"
                 "before it and that sequence numbers have no gap. Prints the number of\n"
                 "records, or the first line where the chain breaks (exit 1).\n");
}

int cmd_audit(struct ztbctl *ctl, int argc, char **argv)
{
    if (ztbctl_wants_help(argc, argv, 1)) {
        usage(stdout);
        return ZTBCTL_EXIT_OK;
    }
    if (argc != 3 || strcmp(argv[1], "verify") != 0) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    uint64_t lines = 0, bad = 0;
    char why[256] = "";
    ztb_err rv = audit_verify_file(argv[2], &lines, &bad, why, sizeof(why));
    if (ctl->json) {
        json_t *j = json_pack("{s:b,s:I}", "valid", rv == ZTB_OK, "records", (json_int_t)lines);
        if (rv != ZTB_OK) {
            json_object_set_new(j, "bad_line", json_integer((json_int_t)bad));
            json_object_set_new(j, "reason", json_string(why));
        }
        ztbctl_print_json(j);
    } else if (rv == ZTB_OK) {
        if (!ctl->quiet)
            printf("%s: chain intact, %llu records\n", argv[2], (unsigned long long)lines);
    } else if (bad > 0) {
        ztbctl_err("%s: chain broken at line %llu: %s", argv[2], (unsigned long long)bad, why);
    } else {
        ztbctl_err("%s", why);
    }
    return rv == ZTB_OK ? ZTBCTL_EXIT_OK : ZTBCTL_EXIT_FAIL;
}
