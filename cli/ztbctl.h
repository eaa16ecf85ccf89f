/*
 * ztbctl.h - shared pieces of the operators' tool.
 *
 * ztbctl is a thin front end: each command group lives in cmd_<group>.c and
 * is registered in the table in ztbctl.c. Commands print tables for people by
 * default and JSON with --json. Exit status: 0 success, 1 the operation
 * failed, 2 usage error.
 */
#ifndef ZTBCTL_H
#define ZTBCTL_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define ZTBCTL_EXIT_OK    0
#define ZTBCTL_EXIT_FAIL  1
#define ZTBCTL_EXIT_USAGE 2
/* done (a revocation is in effect), but its audit record is pending or lost */
#define ZTBCTL_EXIT_PENDING 3

/* -o FORMAT: how lists and objects are printed. */
enum ztbctl_output {
    ZTBCTL_OUT_TABLE = 0, /* the default: a table for people */
    ZTBCTL_OUT_WIDE,      /* -o wide: the table with its extra columns */
    ZTBCTL_OUT_JSON,      /* -o json, --json: JSON */
    ZTBCTL_OUT_NAME,      /* -o name: the first column only, no header (for xargs) */
};

struct ztbctl {
    const char *socket_path;   /* admin API unix socket */
    int json;                  /* --json or -o json: machine-readable output */
    int quiet;                 /* --quiet: errors only */
    enum ztbctl_output output; /* -o FORMAT */
    int no_headers;            /* --no-headers: tables without their header row */
};

/*
 * Parse a -o/--output value into *out; 0 if it is not one of json, wide,
 * name, table.
 */
int ztbctl_output_parse(const char *v, enum ztbctl_output *out);

/* Apply ctl's output mode and --no-headers to every table printed after. */
void ztbctl_output_set(const struct ztbctl *ctl);

/* A command group: `ztbctl NAME ...` runs fn with argv[0] == NAME. */
struct ztbctl_cmd {
    const char *name;
    const char *summary;
    int (*fn)(struct ztbctl *ctl, int argc, char **argv);
};

/* Print "ztbctl: " + message to stderr. */
void ztbctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A small table printer: columns sized to their widest cell, header in caps.
 * Add rows of ncols strings (copied), then print and free. What is printed
 * follows ztbctl_output_set: columns from ztbctl_table_wide_from on only
 * with -o wide, the first column alone with -o name, no header row with
 * --no-headers or -o name.
 */
struct ztbctl_table;
struct ztbctl_table *ztbctl_table_new(int ncols, const char *const *headers);
/* Columns col.. are extra: shown only with -o wide. */
void ztbctl_table_wide_from(struct ztbctl_table *t, int col);
void ztbctl_table_row(struct ztbctl_table *t, const char *const *cells);
void ztbctl_table_print(struct ztbctl_table *t, FILE *out);
void ztbctl_table_free(struct ztbctl_table *t);

/* A Unix time as RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SSZ"; "-" when absent (t <= 0). */
void ztbctl_fmt_time(int64_t t, char *out, size_t cap);

/*
 * GET path from the admin API and take the array under key. With --json it
 * is printed and *arr is NULL; otherwise *arr is a new reference for the
 * caller to print as a table (and decref). Returns the exit status.
 */
int ztbctl_get_list(struct ztbctl *ctl, const char *path, const char *key, json_t **arr);

/*
 * Print j as indented JSON followed by a newline, then decref it. Reals are
 * printed as typed (0.9, not 0.90000000000000002: 15 significant digits,
 * which every decimal of up to 15 digits survives).
 */
void ztbctl_print_json(json_t *j);

/* Flags for json_dumps that print reals as typed (see ztbctl_print_json). */
#define ZTBCTL_JSON_FLAGS (JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15))

/*
 * A Unix time for JSON output: the number, or null when absent (t <= 0),
 * as a new reference.
 */
json_t *ztbctl_json_time(int64_t t);

/*
 * Why path cannot be used by this user, for an error message: "permission
 * denied: DIR is owned by USER:GROUP mode 0750 and you are uid N", "no such
 * file: PATH", or "" when nothing is wrong with it. Writes into out.
 */
void ztbctl_path_problem(const char *path, int want_write, char *out, size_t cap);

/* Agent names are checked with ztb_agent_name_ok (pki/spiffe.h), the
 * broker's own rule, before anything is sent. */

/*
 * 1 if v, the value of option opt of command cmd, is UTF-8; else 0, said
 * ("agent add: the value of --owner is not UTF-8"). A value sent as a JSON
 * string must pass: jansson makes no string of other bytes, and the member
 * would be left out of the request without a word.
 */
int ztbctl_utf8_arg(const char *cmd, const char *opt, const char *v);

/* 1 if argv has "-h" or "--help" at position i or later. */
int ztbctl_wants_help(int argc, char **argv, int from);

/*
 * Call the broker's admin API: method, path, optional JSON body. On success
 * (HTTP < 400) returns 0 with *out the parsed JSON answer (caller decrefs).
 * On failure prints why (unreachable socket, the broker's error) and
 * returns -1; *out may hold the error body.
 */
int ztbctl_admin(struct ztbctl *ctl, const char *method, const char *path, json_t *body,
                 json_t **out, long *status);

/* Same, with a JSON document as text (len bytes) for the body, sent as is. */
int ztbctl_admin_text(struct ztbctl *ctl, const char *method, const char *path, const char *text,
                      size_t len, json_t **out, long *status);

/* `ztbctl policy shadow ...` (cmd_policy_shadow.c), argv[0] is "shadow"; and the
 * atomic replacement of the policy file it promotes into (0, or -1 said). */
int ztbctl_replace_policy_file(const char *path, const char *doc, size_t n);
int cmd_policy_shadow(struct ztbctl *ctl, int argc, char **argv);

/* Command groups (one per cmd_*.c file). */
int cmd_keys(struct ztbctl *ctl, int argc, char **argv);
int cmd_ca(struct ztbctl *ctl, int argc, char **argv);
int cmd_policy(struct ztbctl *ctl, int argc, char **argv);
int cmd_audit(struct ztbctl *ctl, int argc, char **argv);
/* `audit tail` (export 0) and `audit export` (export 1), cmd_audit_read.c:
 * returns the exit status (USAGE without printing the usage). */
int cmd_audit_read(struct ztbctl *ctl, int argc, char **argv, int export);
int cmd_agent(struct ztbctl *ctl, int argc, char **argv);
int cmd_revoke(struct ztbctl *ctl, int argc, char **argv);
int cmd_quarantine(struct ztbctl *ctl, int argc, char **argv);
int cmd_release(struct ztbctl *ctl, int argc, char **argv);
int cmd_signals(struct ztbctl *ctl, int argc, char **argv);
int cmd_approvals(struct ztbctl *ctl, int argc, char **argv);
int cmd_approvers(struct ztbctl *ctl, int argc, char **argv);

#endif /* ZTBCTL_H */
