/*
 * cmd_revoke.c - `ztbctl revoke ...`, `ztbctl quarantine AGENT` and
 * `ztbctl release AGENT`: revocation by hand, through the broker's admin
 * API (which applies, announces and audits it like any other revocation).
 *
 * Must never: take a token on the command line (it would land in shell
 * history and `ps`): a whole token is read from a file or stdin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztbctl.h"
#include "common/secret.h"
#include "pki/spiffe.h"

#define TOKEN_FILE_MAX 8192
/* Longer than any jti the broker writes (22 characters) or accepts: an
 * argument this long is a whole token pasted by mistake. */
#define JTI_ARG_MAX 128

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ztbctl revoke token JTI [--exp UNIX_TIME] [--reason TEXT]\n"
            "       ztbctl revoke token - [--reason TEXT]        the whole token from stdin\n"
            "       ztbctl revoke token --token-file FILE|- [--reason TEXT]\n"
            "       ztbctl revoke agent NAME [--reason TEXT]     tokens, sessions, identity die\n"
            "       ztbctl revoke audience AUD [--lift] [--reason TEXT]\n"
            "       ztbctl revoke key KID [--reason TEXT]        taint a signing key, rotate away\n"
            "       ztbctl revoke list                           live revocations\n"
            "       ztbctl quarantine AGENT [--reason TEXT]      no new tokens for AGENT\n"
            "       ztbctl release AGENT                         lift quarantine and approval\n"
            "\n"
            "Every revocation is written to Redis, announced on ztb:revocations to every\n"
            "verifier and broker, and recorded durably in the audit log; ztbctl reports\n"
            "success only for what the broker confirms it stored. A token revoked by JTI\n"
            "stays revoked for the longest token life (--exp is kept in the audit line,\n"
            "never believed); with --token-file the broker verifies the token and keeps\n"
            "the revocation until its exp.\n");
}

/* An expiry for people: "until lifted" for 0. */
static void fmt_until(int64_t t, char *out, size_t cap)
{
    if (t <= 0)
        snprintf(out, cap, "until lifted");
    else
        ztbctl_fmt_time(t, out, cap);
}

/* Options after the positional arguments; 0 on a usage error. */
struct opts {
    const char *reason, *exp, *token_file;
    int lift;
};

static int parse_opts(int argc, char **argv, int from, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = from; i < argc; i++) {
        if (strcmp(argv[i], "--lift") == 0) {
            o->lift = 1;
        } else if (i + 1 < argc && strcmp(argv[i], "--reason") == 0) {
            o->reason = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--exp") == 0) {
            o->exp = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--token-file") == 0) {
            o->token_file = argv[++i];
        } else {
            ztbctl_err("unexpected argument '%s'", argv[i]);
            return 0;
        }
    }
    return 1;
}

/* A whole token from path ("-": stdin), trailing whitespace cut; NULL on error. */
static char *read_token(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        ztbctl_err("cannot open %s", path);
        return NULL;
    }
    char *buf = calloc(1, TOKEN_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, TOKEN_FILE_MAX + 1, f) : 0;
    if (f != stdin)
        fclose(f);
    if (buf == NULL || n == 0 || n > TOKEN_FILE_MAX) {
        ztbctl_err("%s: expected one token of at most %d bytes", path, TOKEN_FILE_MAX);
        ztb_free_secret(buf, buf ? TOKEN_FILE_MAX + 1 : 0);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/*
 * 1 if the broker's answer names what it revoked and whether it stored it:
 * success is never reported for a revocation the broker did not confirm.
 */
static int confirms(json_t *r)
{
    return json_is_string(json_object_get(r, "type")) && json_is_string(json_object_get(r, "id")) &&
           json_is_boolean(json_object_get(r, "changed"));
}

/*
 * The exit status for an answer that confirms the revocation: OK if its
 * audit record is written; otherwise the revocation is in effect but its
 * record is pending in the broker's memory (or lost): say so on stderr
 * and return ZTBCTL_EXIT_PENDING.
 */
static int audit_record_status(json_t *r)
{
    const char *rec = json_string_value(json_object_get(r, "audit_record"));
    if (rec == NULL || strcmp(rec, "written") == 0)
        return ZTBCTL_EXIT_OK;
    if (strcmp(rec, "pending") == 0)
        ztbctl_err("in effect, but its audit record is pending: the broker cannot write its "
                   "audit log now (disk full?) and keeps the record in memory until it can; "
                   "see ztb_audit_pending_records");
    else
        ztbctl_err("in effect, but its audit record was LOST: the broker's audit log cannot be "
                   "written and its queue of pending records is full; record it by hand");
    return ZTBCTL_EXIT_PENDING;
}

/* Print what the broker says it stored (r confirms it). */
static void print_result(json_t *r)
{
    const char *type = json_string_value(json_object_get(r, "type"));
    const char *id = json_string_value(json_object_get(r, "id"));
    int changed = json_is_true(json_object_get(r, "changed"));
    int lift = json_is_true(json_object_get(r, "lift"));
    char until[40];
    fmt_until((int64_t)json_integer_value(json_object_get(r, "exp")), until, sizeof(until));
    if (lift)
        printf("audience %s enabled again%s\n", id, changed ? "" : " (it was not disabled)");
    else if (strcmp(type, "agent") == 0)
        printf("agent %s: every token, session and identity document it holds is revoked "
               "(generation now %lld), announced until %s; it needs a new join token "
               "(ztbctl agent join-token %s) to come back\n",
               id, (long long)json_integer_value(json_object_get(r, "gen")), until, id);
    else if (strcmp(type, "audience") == 0)
        printf("audience %s disabled %s%s\n", id, until, changed ? "" : " (it already was)");
    else if (strcmp(type, "key") == 0)
        printf("key %s tainted until %s\n", id, until);
    else if (changed)
        printf("token %s revoked until %s\n", id, until);
    else /* the broker verified the token's exp and it has passed */
        printf("token %s expired at %s (verified by the broker): no verifier accepts it, "
               "nothing to do\n",
               id, until);
    const char *kid = json_string_value(json_object_get(r, "new_kid"));
    const char *detail = json_string_value(json_object_get(r, "detail"));
    if (kid != NULL)
        printf("tokens are now signed by %s\n", kid);
    if (detail != NULL && strcmp(type, "key") == 0)
        printf("%s\n", detail);
}

static int revoke_list(struct ztbctl *ctl)
{
    json_t *arr = NULL;
    int rc = ztbctl_get_list(ctl, "/v1/revocations", "revocations", &arr);
    if (arr == NULL)
        return rc;
    static const char *const hdr[] = {"TYPE", "ID", "GEN", "UNTIL"};
    struct ztbctl_table *t = ztbctl_table_new(4, hdr);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        char gen[24] = "-", until[40];
        if (json_is_integer(json_object_get(e, "gen")))
            snprintf(gen, sizeof(gen), "%lld",
                     (long long)json_integer_value(json_object_get(e, "gen")));
        fmt_until((int64_t)json_integer_value(json_object_get(e, "exp")), until, sizeof(until));
        const char *cells[] = {json_string_value(json_object_get(e, "type")),
                               json_string_value(json_object_get(e, "id")), gen, until};
        ztbctl_table_row(t, cells);
    }
    ztbctl_table_print(t, stdout);
    ztbctl_table_free(t);
    json_decref(arr);
    return ZTBCTL_EXIT_OK;
}

int cmd_revoke(struct ztbctl *ctl, int argc, char **argv)
{
    if (argc < 2 || ztbctl_wants_help(argc, argv, 1)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZTBCTL_EXIT_USAGE : ZTBCTL_EXIT_OK;
    }
    const char *what = argv[1];
    if (strcmp(what, "list") == 0 && argc == 2)
        return revoke_list(ctl);
    static const char *const types[][2] = {
        {"token", "jti"}, {"agent", "agent"}, {"audience", "audience"}, {"key", "key"}};
    const char *type = NULL;
    for (size_t i = 0; i < 4; i++)
        if (strcmp(what, types[i][0]) == 0)
            type = types[i][1];
    if (type == NULL) {
        ztbctl_err("unknown revoke target '%s' (token, agent, audience, key, list)", what);
        return ZTBCTL_EXIT_USAGE;
    }
    struct opts o;
    /* a jti may start with '-' (base64url): only our option names are options */
    int has_id = argc >= 3 && strcmp(argv[2], "--exp") != 0 && strcmp(argv[2], "--reason") != 0 &&
                 strcmp(argv[2], "--token-file") != 0 && strcmp(argv[2], "--lift") != 0;
    if (!parse_opts(argc, argv, has_id ? 3 : 2, &o))
        return ZTBCTL_EXIT_USAGE;
    if (has_id && strcmp(type, "jti") == 0 && strcmp(argv[2], "-") == 0) {
        /* `revoke token -`: the whole token from stdin, as --token-file - */
        if (o.token_file != NULL) {
            usage(stderr);
            return ZTBCTL_EXIT_USAGE;
        }
        has_id = 0;
        o.token_file = "-";
    }
    if (has_id && strcmp(type, "jti") == 0 &&
        (strlen(argv[2]) > JTI_ARG_MAX || strchr(argv[2], '.') != NULL)) {
        /* a whole token on the command line: it is in the shell's history
         * and ps already; say how to pass it next time */
        ztbctl_err("'%.12s...' (%zu bytes) is not a jti but looks like a whole token: pass a token "
                   "on stdin (ztbctl revoke token - < FILE) so it stays out of shell history "
                   "and ps, or give its jti",
                   argv[2], strlen(argv[2]));
        return ZTBCTL_EXIT_USAGE;
    }
    if (has_id == (o.token_file != NULL) || (o.token_file && strcmp(type, "jti") != 0) ||
        (o.exp && strcmp(type, "jti") != 0) || (o.lift && strcmp(type, "audience") != 0)) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    if (has_id && strcmp(type, "agent") == 0 && !ztb_agent_name_ok(argv[2])) {
        ztbctl_err("invalid agent name '%s' (1-63 of a-z 0-9 . _ - starting with a letter or "
                   "digit)",
                   argv[2]);
        return ZTBCTL_EXIT_USAGE;
    }
    if ((has_id && !ztbctl_utf8_arg("revoke", what, argv[2])) ||
        (o.reason && !ztbctl_utf8_arg("revoke", "--reason", o.reason)))
        return ZTBCTL_EXIT_USAGE;
    json_t *body = json_pack("{s:s}", "type", type);
    if (has_id)
        json_object_set_new(body, "id", json_string(argv[2]));
    if (o.reason)
        json_object_set_new(body, "reason", json_string(o.reason));
    if (o.lift)
        json_object_set_new(body, "lift", json_true());
    if (o.exp) {
        char *end;
        long long e = strtoll(o.exp, &end, 10);
        if (*end != '\0' || e <= 0) {
            ztbctl_err("--exp takes a Unix time");
            json_decref(body);
            return ZTBCTL_EXIT_USAGE;
        }
        json_object_set_new(body, "exp", json_integer(e));
    }
    if (o.token_file) {
        char *tok = read_token(o.token_file);
        if (tok == NULL) {
            json_decref(body);
            return ZTBCTL_EXIT_FAIL;
        }
        json_object_set_new(body, "token", json_string(tok));
        /* the whole buffer: the cut trailing bytes were zeroed already, and
         * a memset before free may be optimised away */
        ztb_free_secret(tok, TOKEN_FILE_MAX + 1);
    }
    json_t *r = NULL;
    long status;
    int rc = ztbctl_admin(ctl, "POST", "/v1/revocations", body, &r, &status);
    json_decref(body);
    if (rc != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (!confirms(r)) {
        ztbctl_err("the broker's answer does not confirm the revocation: it is not done");
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        int arc = audit_record_status(r);
        ztbctl_print_json(r);
        return arc;
    }
    print_result(r);
    int arc = audit_record_status(r);
    json_decref(r);
    return arc;
}

/* `ztbctl quarantine AGENT` and `ztbctl release AGENT`. */
static int quarantine_or_release(struct ztbctl *ctl, int argc, char **argv, int release)
{
    if (argc < 2 || ztbctl_wants_help(argc, argv, 1)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZTBCTL_EXIT_USAGE : ZTBCTL_EXIT_OK;
    }
    struct opts o;
    if (!parse_opts(argc, argv, 2, &o) || o.lift || o.exp || o.token_file ||
        (release && o.reason)) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    if (!ztb_agent_name_ok(argv[1])) {
        ztbctl_err("invalid agent name '%s' (1-63 of a-z 0-9 . _ - starting with a letter or "
                   "digit)",
                   argv[1]);
        return ZTBCTL_EXIT_USAGE;
    }
    if (o.reason && !ztbctl_utf8_arg(release ? "release" : "quarantine", "--reason", o.reason))
        return ZTBCTL_EXIT_USAGE;
    json_t *body = json_pack("{s:s}", "agent", argv[1]);
    if (o.reason)
        json_object_set_new(body, "reason", json_string(o.reason));
    json_t *r = NULL;
    long status;
    int rc =
        ztbctl_admin(ctl, "POST", release ? "/v1/release" : "/v1/quarantine", body, &r, &status);
    json_decref(body);
    if (rc != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    int arc = audit_record_status(r);
    if (ctl->json) {
        ztbctl_print_json(r);
        return arc;
    }
    const char *name = json_string_value(json_object_get(r, "agent"));
    if (name == NULL) /* printed with %s below: never NULL */
        name = argv[1];
    int changed = json_is_true(json_object_get(r, "changed"));
    if (release)
        printf("agent %s released%s: tokens are issued again as policy allows\n", name,
               changed ? "" : " (it was neither quarantined nor under approval)");
    else
        printf("agent %s quarantined%s: no new tokens (tokens it holds live on; "
               "`ztbctl revoke agent %s` ends them)\n",
               name, changed ? "" : " (already)", name);
    json_decref(r);
    return arc;
}

int cmd_quarantine(struct ztbctl *ctl, int argc, char **argv)
{
    return quarantine_or_release(ctl, argc, argv, 0);
}

int cmd_release(struct ztbctl *ctl, int argc, char **argv)
{
    return quarantine_or_release(ctl, argc, argv, 1);
}
