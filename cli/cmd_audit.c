/*
 * cmd_audit.c - `ztbctl audit verify FILE... [--jwks JWKS] [--anchor SEQ:HASH]`
 * and `ztbctl audit anchor FILE... [--jwks JWKS]`: prove the audit log
 * (`audit tail` and `audit export` are in cmd_audit_read.c).
 *
 * Works on files (copies are fine); needs no broker. verify checks the hash
 * chain from seq 1, the replica id, and the signed checkpoints (with the
 * broker's JWKS, their signatures too), and says which records a signature
 * proves; exit 0 only if nothing is wrong, 1 with the first problem and its
 * place otherwise. anchor prints the latest valid checkpoint as SEQ:HASH, to
 * be kept away from the host and given back to verify --anchor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/verify.h"
#include "pki/jwk.h"
#include "ztbctl.h"

#define MAX_FILES 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ztbctl audit verify FILE... [--jwks JWKS_FILE] [--anchor SEQ:HASH]\n"
            "       ztbctl audit anchor FILE... [--jwks JWKS_FILE]\n"
            "       ztbctl audit tail FILE [-n N] [--follow] [--agent A] [--action X]\n"
            "                              [--outcome O] [--event E]\n"
            "       ztbctl audit export FILE --format syslog|ocsf [--agent A] [--action X] ...\n"
            "\n"
            "verify: check that the audit log starts at seq 1, that every line carries the\n"
            "SHA-256 of the line before it with no gap in the sequence, that every line is\n"
            "of the same replica, and that each signed checkpoint matches the line it names\n"
            "and (with --jwks, the broker's /.well-known/jwks.json or an archived copy that\n"
            "still has the key) is signed by the broker. Prints the records proven by a\n"
            "signature and those after the last checkpoint, or the first problem and where\n"
            "it is (exit 1). FILEs are one log's files, oldest first.\n"
            "--anchor SEQ:HASH: a checkpoint printed earlier by `ztbctl audit anchor` and\n"
            "kept elsewhere: the log must still hold it (a cut end is found).\n"
            "\n"
            "anchor: verify, then print the latest checkpoint as SEQ:HASH.\n"
            "\n"
            "tail: the last N (10) records that match, for people (--json: the lines\n"
            "as written); --follow waits for more, across a rotation (the file renamed)\n"
            "or a truncation (copytruncate). --outcome is the\n"
            "last part of the event (issued, denied, refused, applied, ...); --agent\n"
            "matches the record's agent or an agent:NAME actor.\n"
            "export: every matching record as an RFC 5424 syslog line (facility\n"
            "authpriv, MSGID the event, the record as the message), or (ocsf) as one\n"
            "OCSF 1.1.0 JSON event per line (docs/audit.md, \"OCSF mapping\").\n"
            "tail and export prove nothing: verify does.\n");
}

/* The keys of a JWKS file into *ks. Returns 0, or prints why and 1. */
static int load_jwks(const char *path, ztb_keyset **ks)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        ztbctl_err("%s: cannot open", path);
        return 1;
    }
    char *buf = malloc(ZTB_JWKS_MAX + 1);
    size_t n = buf ? fread(buf, 1, ZTB_JWKS_MAX + 1, f) : 0;
    fclose(f);
    ztb_err rv = buf == NULL ? ZTB_ERR_NOMEM : n > ZTB_JWKS_MAX ? ZTB_ERR_TOO_LARGE : ZTB_OK;
    if (rv == ZTB_OK)
        rv = ztb_jwks_parse(buf, n, 0, ks);
    free(buf);
    if (rv != ZTB_OK) {
        ztbctl_err("%s: not a usable JWKS: %s", path, ztb_strerror(rv));
        return 1;
    }
    return 0;
}

static void print_json(const char *const *files, ztb_err rv, const struct audit_verify_report *r)
{
    json_t *j = json_pack("{s:b,s:I,s:I,s:I,s:s,s:I,s:I,s:b}", "valid", rv == ZTB_OK, "records",
                          (json_int_t)r->records, "first_seq", (json_int_t)r->first_seq, "last_seq",
                          (json_int_t)r->last_seq, "replica", r->replica, "checkpoints",
                          (json_int_t)r->checkpoints, "proven_to", (json_int_t)r->proven_to,
                          "signatures_checked", r->signatures_checked);
    if (r->checkpoints > 0) {
        char text[AUDIT_HASH_HEX + 32];
        snprintf(text, sizeof(text), "%llu:%s", (unsigned long long)r->checkpoint_at,
                 r->checkpoint_hash);
        json_object_set_new(j, "anchor", json_string(text));
    }
    if (rv != ZTB_OK) {
        json_object_set_new(j, "file", json_string(files[r->bad_file]));
        json_object_set_new(j, "bad_line", json_integer((json_int_t)r->bad_line));
        json_object_set_new(j, "reason", json_string(r->why));
    }
    ztbctl_print_json(j);
}

static void print_text(const struct ztbctl *ctl, const char *const *files, size_t nfiles,
                       ztb_err rv, const struct audit_verify_report *r)
{
    if (rv != ZTB_OK) {
        if (r->bad_line > 0)
            ztbctl_err("%s: line %llu: %s", files[r->bad_file], (unsigned long long)r->bad_line,
                       r->why);
        else
            ztbctl_err("%s", r->why);
        if (r->records > 0)
            ztbctl_err("records before it (seq %llu..%llu) chain correctly; proven by a "
                       "signature: %s%llu",
                       (unsigned long long)r->first_seq, (unsigned long long)r->last_seq,
                       r->proven_to ? "1.." : "none", (unsigned long long)r->proven_to);
        return;
    }
    if (ctl->quiet)
        return;
    printf("%s%s: chain intact from seq 1 to %llu (%llu records, replica \"%s\")\n", files[0],
           nfiles > 1 ? " ..." : "", (unsigned long long)r->last_seq,
           (unsigned long long)r->records, r->replica);
    if (r->checkpoints == 0) {
        printf("not proven: no signed checkpoint; records may have been cut off the end\n");
        return;
    }
    printf("proven: seq 1..%llu by the checkpoint at seq %llu (kid %s)%s\n",
           (unsigned long long)r->proven_to, (unsigned long long)r->checkpoint_at,
           r->checkpoint_kid,
           r->signatures_checked ? "" : " - signatures NOT checked: pass --jwks");
    uint64_t from = r->proven_to + 1;
    if (from == r->checkpoint_at) /* the checkpoint line itself carries the signature */
        from++;
    if (r->last_seq >= from)
        printf("after the last checkpoint: seq %llu..%llu (chained, not yet signed; a cut "
               "there shows only against a later anchor)\n",
               (unsigned long long)from, (unsigned long long)r->last_seq);
    else
        printf("the log ends with this checkpoint: every record is proven\n");
    if (r->anchor_found)
        printf("anchor found: the log holds the anchored checkpoint\n");
}

int cmd_audit(struct ztbctl *ctl, int argc, char **argv)
{
    if (ztbctl_wants_help(argc, argv, 1)) {
        usage(stdout);
        return ZTBCTL_EXIT_OK;
    }
    if (argc >= 3 && (strcmp(argv[1], "tail") == 0 || strcmp(argv[1], "export") == 0)) {
        int rc = cmd_audit_read(ctl, argc, argv, strcmp(argv[1], "export") == 0);
        if (rc == ZTBCTL_EXIT_USAGE)
            usage(stderr);
        return rc;
    }
    if (argc < 3 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "anchor") != 0)) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    int anchor_cmd = strcmp(argv[1], "anchor") == 0;
    const char *files[MAX_FILES];
    size_t nfiles = 0;
    const char *jwks = NULL, *anchor = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--jwks") == 0 && i + 1 < argc) {
            jwks = argv[++i];
        } else if (!anchor_cmd && strcmp(argv[i], "--anchor") == 0 && i + 1 < argc) {
            anchor = argv[++i];
        } else if (argv[i][0] == '-' || nfiles == MAX_FILES) {
            usage(stderr);
            return ZTBCTL_EXIT_USAGE;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (nfiles == 0) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    ztb_keyset *ks = NULL;
    if (jwks != NULL && load_jwks(jwks, &ks) != 0)
        return ZTBCTL_EXIT_FAIL;
    const struct audit_verify_opts o = {.keys = ks, .anchor = anchor};
    struct audit_verify_report r;
    ztb_err rv = audit_verify_files(files, nfiles, &o, &r);
    ztb_keyset_free(ks);
    if (rv == ZTB_ERR_INVALID_ARG) {
        ztbctl_err("%s", r.why);
        return ZTBCTL_EXIT_USAGE;
    }
    if (anchor_cmd) {
        if (rv != ZTB_OK) {
            print_text(ctl, files, nfiles, rv, &r);
            return ZTBCTL_EXIT_FAIL;
        }
        if (r.checkpoints == 0) {
            ztbctl_err("no signed checkpoint in the log yet");
            return ZTBCTL_EXIT_FAIL;
        }
        char text[AUDIT_HASH_HEX + 32];
        snprintf(text, sizeof(text), "%llu:%s", (unsigned long long)r.checkpoint_at,
                 r.checkpoint_hash);
        if (ctl->json)
            ztbctl_print_json(json_pack("{s:s,s:I,s:s}", "anchor", text, "proven_to",
                                        (json_int_t)r.proven_to, "replica", r.replica));
        else
            printf("%s\n", text);
        return ZTBCTL_EXIT_OK;
    }
    if (ctl->json)
        print_json(files, rv, &r);
    else
        print_text(ctl, files, nfiles, rv, &r);
    return rv == ZTB_OK ? ZTBCTL_EXIT_OK : ZTBCTL_EXIT_FAIL;
}
