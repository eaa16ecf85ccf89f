/*
 * cmd_approvals.c - `ztbctl approvals ...` and `ztbctl approvers ...`:
 * list, show, approve and deny the token requests waiting for a human, watch
 * them arrive, and manage approver groups.
 *
 * The broker records the approver by the admin socket peer's user name;
 * run under sudo, ztbctl passes SUDO_USER, which the broker accepts from
 * root only.
 *
 * Must never: send a sudo_user when not running as root under sudo.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ztbctl.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ztbctl approvals list                      recent approvals, newest first\n"
            "       ztbctl approvals show ID                   one approval\n"
            "       ztbctl approvals approve ID                approve it (as you)\n"
            "       ztbctl approvals deny ID [--reason TEXT]   deny it; the agent sees the reason\n"
            "       ztbctl approvals watch [--interval S]      print approvals as they arrive and\n"
            "                                                  change, until interrupted\n"
            "       ztbctl approvers list [GROUP]              approver groups and members\n"
            "       ztbctl approvers add GROUP USER\n"
            "       ztbctl approvers remove GROUP USER\n"
            "\n"
            "A token request a policy rule marks approval_required waits for the number of\n"
            "distinct approvers the rule names, each a member of its approver group. You\n"
            "are recorded by your user name (under sudo, the invoking user). See\n"
            "docs/policy.md and docs/protocol.md (Approvals).\n");
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && s[0] ? s : "-";
}

/* "alice,bob" from the approved_by array. */
static void names_text(json_t *arr, char *out, size_t cap)
{
    size_t i, used = 0;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        if (used >= cap)
            break;
        int n = snprintf(out + used, cap - used, "%s%s", used ? "," : "", json_string_value(v));
        used += n > 0 ? (size_t)n : 0;
    }
    if (out[0] == '\0')
        snprintf(out, cap, "-");
}

static void row_of(json_t *a, struct ztbctl_table *t)
{
    char expires[32], votes[160], need[16];
    ztbctl_fmt_time((int64_t)json_integer_value(json_object_get(a, "expires")), expires,
                    sizeof(expires));
    names_text(json_object_get(a, "approved_by"), votes, sizeof(votes));
    snprintf(need, sizeof(need), "%lld",
             (long long)json_integer_value(json_object_get(a, "approvers_needed")));
    const char *cells[] = {str(a, "id"),
                           str(a, "status"),
                           str(a, "agent"),
                           str(a, "action"),
                           str(a, "resource"),
                           str(a, "group"),
                           need,
                           votes,
                           expires};
    ztbctl_table_row(t, cells);
}

static const char *const list_hdr[] = {"ID",    "STATUS", "AGENT",       "ACTION", "RESOURCE",
                                       "GROUP", "NEED",   "APPROVED_BY", "EXPIRES"};

static int approvals_list(struct ztbctl *ctl)
{
    json_t *arr = NULL;
    int rc = ztbctl_get_list(ctl, "/v1/approvals", "approvals", &arr);
    if (arr == NULL)
        return rc;
    struct ztbctl_table *t = ztbctl_table_new(9, list_hdr);
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        row_of(a, t);
    }
    ztbctl_table_print(t, stdout);
    ztbctl_table_free(t);
    json_decref(arr);
    return ZTBCTL_EXIT_OK;
}

/* 1 if id looks like an approval id (safe in a path). */
static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < 5 || n > 39 || strncmp(id, "apr_", 4) != 0)
        return 0;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static void show(json_t *a)
{
    char created[32], expires[32], votes[160];
    ztbctl_fmt_time((int64_t)json_integer_value(json_object_get(a, "created")), created,
                    sizeof(created));
    ztbctl_fmt_time((int64_t)json_integer_value(json_object_get(a, "expires")), expires,
                    sizeof(expires));
    names_text(json_object_get(a, "approved_by"), votes, sizeof(votes));
    printf("approval      %s\n"
           "status        %s\n"
           "agent         %s (generation %lld)\n"
           "action        %s\n"
           "audience      %s\n"
           "resource      %s\n"
           "details       %s\n"
           "binding       %s\n"
           "rule          %s\n"
           "group         %s (%lld approver(s) needed)\n"
           "approved by   %s\n",
           str(a, "id"), str(a, "status"), str(a, "agent"),
           (long long)json_integer_value(json_object_get(a, "generation")), str(a, "action"),
           str(a, "audience"), str(a, "resource"), str(a, "authorization_details"),
           str(a, "binding"), str(a, "rule"), str(a, "group"),
           (long long)json_integer_value(json_object_get(a, "approvers_needed")), votes);
    if (json_object_get(a, "denied_by") != NULL)
        printf("denied by     %s: %s\n", str(a, "denied_by"), str(a, "reason"));
    if (json_object_get(a, "jti") != NULL)
        printf("token jti     %s\n", str(a, "jti"));
    printf("created       %s\nexpires       %s\n", created, expires);
}

static int approvals_show(struct ztbctl *ctl, const char *id)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/approvals/%s", id);
    json_t *out = NULL;
    long status = 0;
    if (ztbctl_admin(ctl, "GET", path, NULL, &out, &status) != 0) {
        json_decref(out);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json)
        ztbctl_print_json(out);
    else {
        show(out);
        json_decref(out);
    }
    return ZTBCTL_EXIT_OK;
}

static int approvals_decide(struct ztbctl *ctl, const char *id, int approve, const char *reason)
{
    char path[112];
    snprintf(path, sizeof(path), "/v1/approvals/%s/%s", id, approve ? "approve" : "deny");
    json_t *body = json_object();
    if (reason != NULL)
        json_object_set_new(body, "reason", json_string(reason));
    /* under sudo the broker sees root: name the invoking user (root only) */
    const char *sudo_user = getenv("SUDO_USER");
    if (geteuid() == 0 && getuid() == 0 && sudo_user != NULL && sudo_user[0] != '\0')
        json_object_set_new(body, "sudo_user", json_string(sudo_user));
    json_t *out = NULL;
    long status = 0;
    int rc = ztbctl_admin(ctl, "POST", path, body, &out, &status);
    json_decref(body);
    if (rc != 0) {
        json_decref(out);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(out);
        return ZTBCTL_EXIT_OK;
    }
    const char *st = str(out, "status");
    if (!ctl->quiet) {
        if (strcmp(st, "pending") == 0)
            printf("%s: approval recorded; waiting for %lld approver(s) in all\n", id,
                   (long long)json_integer_value(json_object_get(out, "approvers_needed")));
        else
            printf("%s: %s\n", id, st);
    }
    json_decref(out);
    return ZTBCTL_EXIT_OK;
}

static volatile sig_atomic_t stop_watch;
static void on_signal(int sig)
{
    (void)sig;
    stop_watch = 1;
}

/* Poll the list; print every approval whose status is new to us. */
static int approvals_watch(struct ztbctl *ctl, unsigned interval)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    json_t *seen = json_object(); /* id -> last status printed */
    int first = 1, rc = ZTBCTL_EXIT_OK;
    while (!stop_watch) {
        json_t *out = NULL;
        long status = 0;
        if (ztbctl_admin(ctl, "GET", "/v1/approvals", NULL, &out, &status) != 0) {
            json_decref(out);
            rc = ZTBCTL_EXIT_FAIL;
            break;
        }
        json_t *arr = json_object_get(out, "approvals");
        for (size_t i = json_array_size(arr); i-- > 0;) { /* oldest first */
            json_t *a = json_array_get(arr, i);
            const char *id = str(a, "id"), *st = str(a, "status");
            const char *was = json_string_value(json_object_get(seen, id));
            if (was != NULL && strcmp(was, st) == 0)
                continue;
            json_object_set_new(seen, id, json_string(st));
            if (first && strcmp(st, "pending") != 0)
                continue; /* history: only what still waits */
            if (ctl->json) {
                char *line = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
                if (line != NULL)
                    printf("%s\n", line);
                free(line);
            } else {
                char when[32];
                ztbctl_fmt_time((int64_t)time(NULL), when, sizeof(when));
                printf("%s %s %-8s agent=%s action=%s audience=%s resource=%s group=%s\n", when, id,
                       st, str(a, "agent"), str(a, "action"), str(a, "audience"),
                       str(a, "resource"), str(a, "group"));
            }
        }
        fflush(stdout);
        json_decref(out);
        first = 0;
        for (unsigned s = 0; s < interval * 10 && !stop_watch; s++)
            usleep(100000);
    }
    json_decref(seen);
    return rc;
}

int cmd_approvals(struct ztbctl *ctl, int argc, char **argv)
{
    if (argc < 2 || ztbctl_wants_help(argc, argv, 1)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZTBCTL_EXIT_USAGE : ZTBCTL_EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "list") == 0 && argc == 2)
        return approvals_list(ctl);
    if (strcmp(sub, "watch") == 0) {
        unsigned interval = 2;
        if (argc == 4 && strcmp(argv[2], "--interval") == 0) {
            char *end;
            long v = strtol(argv[3], &end, 10);
            if (*end != '\0' || v < 1 || v > 3600) {
                ztbctl_err("--interval takes 1..3600 seconds");
                return ZTBCTL_EXIT_USAGE;
            }
            interval = (unsigned)v;
        } else if (argc != 2) {
            usage(stderr);
            return ZTBCTL_EXIT_USAGE;
        }
        return approvals_watch(ctl, interval);
    }
    int is_show = strcmp(sub, "show") == 0, is_approve = strcmp(sub, "approve") == 0,
        is_deny = strcmp(sub, "deny") == 0;
    if (!(is_show || is_approve || is_deny) || argc < 3) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    const char *id = argv[2];
    if (!id_ok(id)) {
        ztbctl_err("'%s' is not an approval id (apr_...; see ztbctl approvals list)", id);
        return ZTBCTL_EXIT_USAGE;
    }
    const char *reason = NULL;
    for (int i = 3; i < argc; i++) {
        if (is_deny && strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
            reason = argv[++i];
            if (!ztbctl_utf8_arg("approvals deny", "--reason", reason))
                return ZTBCTL_EXIT_USAGE;
        } else {
            usage(stderr);
            return ZTBCTL_EXIT_USAGE;
        }
    }
    if (is_show)
        return approvals_show(ctl, id);
    return approvals_decide(ctl, id, is_approve, reason);
}

/* 1 if s is a user or group name as the broker accepts it. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 && s[0] != '-' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int cmd_approvers(struct ztbctl *ctl, int argc, char **argv)
{
    if (argc < 2 || ztbctl_wants_help(argc, argv, 1)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZTBCTL_EXIT_USAGE : ZTBCTL_EXIT_OK;
    }
    const char *sub = argv[1];
    for (int i = 2; i < argc; i++)
        if (!name_ok(argv[i])) {
            ztbctl_err("'%s' is not a group or user name (A-Z a-z 0-9 . _ -)", argv[i]);
            return ZTBCTL_EXIT_USAGE;
        }
    char path[160];
    json_t *out = NULL;
    long status = 0;
    if (strcmp(sub, "list") == 0 && argc <= 3) {
        if (argc == 3)
            snprintf(path, sizeof(path), "/v1/approvers/%s", argv[2]);
        else
            snprintf(path, sizeof(path), "/v1/approvers");
        if (ztbctl_admin(ctl, "GET", path, NULL, &out, &status) != 0) {
            json_decref(out);
            return ZTBCTL_EXIT_FAIL;
        }
        if (ctl->json) {
            ztbctl_print_json(out);
            return ZTBCTL_EXIT_OK;
        }
        json_t *groups = json_object_get(out, "groups");
        if (groups == NULL) {
            groups = json_pack("{s:O}", argv[2], json_object_get(out, "users"));
            json_decref(out);
            out = groups;
            groups = out;
        }
        const char *g;
        json_t *users;
        json_object_foreach(groups, g, users)
        {
            char names[1024];
            names_text(users, names, sizeof(names));
            printf("%s: %s\n", g, names);
        }
        json_decref(out);
        return ZTBCTL_EXIT_OK;
    }
    int add = strcmp(sub, "add") == 0;
    if ((!add && strcmp(sub, "remove") != 0) || argc != 4) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "/v1/approvers/%s/%s", argv[2], add ? "add" : "remove");
    json_t *body = json_pack("{s:s}", "user", argv[3]);
    int rc = ztbctl_admin(ctl, "POST", path, body, &out, &status);
    json_decref(body);
    if (rc != 0) {
        json_decref(out);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(out);
        return ZTBCTL_EXIT_OK;
    }
    if (!ctl->quiet)
        printf("%s %s %s%s\n", argv[3], add ? "added to" : "removed from", argv[2],
               json_is_true(json_object_get(out, "changed")) ? "" : " (no change)");
    json_decref(out);
    return ZTBCTL_EXIT_OK;
}
