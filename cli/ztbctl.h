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

struct ztbctl {
    const char *socket_path; /* admin API unix socket */
    int json;                /* --json: machine-readable output */
    int quiet;               /* --quiet: errors only */
};

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
 * Add rows of ncols strings (copied), then print and free.
 */
struct ztbctl_table;
struct ztbctl_table *ztbctl_table_new(int ncols, const char *const *headers);
void ztbctl_table_row(struct ztbctl_table *t, const char *const *cells);
void ztbctl_table_print(struct ztbctl_table *t, FILE *out);
void ztbctl_table_free(struct ztbctl_table *t);

/* A Unix time as "YYYY-MM-DD HH:MM:SSZ" (UTC). */
void ztbctl_fmt_time(int64_t t, char *out, size_t cap);

/*
 * GET path from the admin API and take the array under key. With --json it
 * is printed and *arr is NULL; otherwise *arr is a new reference for the
 * caller to print as a table (and decref). Returns the exit status.
 */
int ztbctl_get_list(struct ztbctl *ctl, const char *path, const char *key, json_t **arr);

/* Print j as indented JSON followed by a newline, then decref it. */
void ztbctl_print_json(json_t *j);

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

/* Command groups (one per cmd_*.c file). */
int cmd_keys(struct ztbctl *ctl, int argc, char **argv);
int cmd_ca(struct ztbctl *ctl, int argc, char **argv);
int cmd_policy(struct ztbctl *ctl, int argc, char **argv);
int cmd_audit(struct ztbctl *ctl, int argc, char **argv);
int cmd_agent(struct ztbctl *ctl, int argc, char **argv);
int cmd_revoke(struct ztbctl *ctl, int argc, char **argv);
int cmd_quarantine(struct ztbctl *ctl, int argc, char **argv);
int cmd_release(struct ztbctl *ctl, int argc, char **argv);
int cmd_signals(struct ztbctl *ctl, int argc, char **argv);
int cmd_approvals(struct ztbctl *ctl, int argc, char **argv);
int cmd_approvers(struct ztbctl *ctl, int argc, char **argv);

#endif /* ZTBCTL_H */
