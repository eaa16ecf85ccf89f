/*
 * output.c - how ztbctl prints: errors, tables, JSON, and what is wrong with
 * a path it cannot use.
 *
 * The output mode (-o, --no-headers) is set once by main before any command
 * runs (ztbctl_output_set) and read by the table printer.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/utf8.h"
#include "ztbctl.h"

static struct {
    enum ztbctl_output mode;
    int no_headers;
} out_cfg;

int ztbctl_output_parse(const char *v, enum ztbctl_output *out)
{
    static const struct {
        const char *name;
        enum ztbctl_output mode;
    } modes[] = {{"table", ZTBCTL_OUT_TABLE},
                 {"wide", ZTBCTL_OUT_WIDE},
                 {"json", ZTBCTL_OUT_JSON},
                 {"name", ZTBCTL_OUT_NAME}};
    for (size_t i = 0; v != NULL && i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(v, modes[i].name) == 0) {
            *out = modes[i].mode;
            return 1;
        }
    return 0;
}

void ztbctl_output_set(const struct ztbctl *ctl)
{
    out_cfg.mode = ctl->output;
    out_cfg.no_headers = ctl->no_headers;
}

void ztbctl_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ztbctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

struct ztbctl_table {
    int ncols;
    int wide_from; /* first column shown only with -o wide; 0: none */
    size_t nrows;  /* including the header row */
    size_t cap;
    char **cells; /* nrows * ncols */
};

static char *dup_cell(const char *s)
{
    char *d = strdup(s ? s : "-");
    if (d == NULL) {
        fputs("ztbctl: out of memory\n", stderr);
        exit(ZTBCTL_EXIT_FAIL);
    }
    /* keep the table one line per row whatever the cell holds */
    for (char *p = d; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return d;
}

struct ztbctl_table *ztbctl_table_new(int ncols, const char *const *headers)
{
    struct ztbctl_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    ztbctl_table_row(t, headers);
    return t;
}

void ztbctl_table_wide_from(struct ztbctl_table *t, int col)
{
    if (t != NULL && col > 0 && col < t->ncols)
        t->wide_from = col;
}

void ztbctl_table_row(struct ztbctl_table *t, const char *const *cells)
{
    if (t == NULL)
        return;
    if (t->nrows == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        char **n = realloc(t->cells, ncap * (size_t)t->ncols * sizeof(char *));
        if (n == NULL) {
            fputs("ztbctl: out of memory\n", stderr);
            exit(ZTBCTL_EXIT_FAIL);
        }
        t->cells = n;
        t->cap = ncap;
    }
    for (int c = 0; c < t->ncols; c++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = dup_cell(cells[c]);
    t->nrows++;
}

void ztbctl_table_print(struct ztbctl_table *t, FILE *out)
{
    if (t == NULL)
        return;
    int shown = t->ncols;
    if (out_cfg.mode == ZTBCTL_OUT_NAME)
        shown = 1;
    else if (out_cfg.mode != ZTBCTL_OUT_WIDE && t->wide_from > 0)
        shown = t->wide_from;
    size_t first = out_cfg.no_headers || out_cfg.mode == ZTBCTL_OUT_NAME ? 1 : 0;
    size_t *w = calloc((size_t)t->ncols, sizeof(size_t));
    if (w == NULL)
        return;
    for (size_t r = first; r < t->nrows; r++)
        for (int c = 0; c < shown; c++) {
            size_t l = strlen(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = first; r < t->nrows; r++) {
        for (int c = 0; c < shown; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            if (c == shown - 1) {
                fputs(s, out);
            } else {
                fprintf(out, "%-*s  ", (int)w[c], s);
            }
        }
        fputc('\n', out);
    }
    free(w);
}

void ztbctl_table_free(struct ztbctl_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

void ztbctl_print_json(json_t *j)
{
    char *s = json_dumps(j, ZTBCTL_JSON_FLAGS);
    if (s != NULL) {
        puts(s);
        free(s);
    }
    json_decref(j);
}

int ztbctl_wants_help(int argc, char **argv, int from)
{
    for (int i = from; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

void ztbctl_fmt_time(int64_t t, char *out, size_t cap)
{
    if (cap == 0)
        return;
    time_t ts = (time_t)t;
    struct tm tm;
    if (t <= 0 || gmtime_r(&ts, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "-");
}

int ztbctl_get_list(struct ztbctl *ctl, const char *path, const char *key, json_t **arr)
{
    *arr = NULL;
    json_t *r = NULL;
    long status;
    if (ztbctl_admin(ctl, "GET", path, NULL, &r, &status) != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    json_t *a = json_incref(json_object_get(r, key));
    json_decref(r);
    if (!json_is_array(a)) {
        json_decref(a);
        ztbctl_err("the broker's answer has no '%s' list", key);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json)
        ztbctl_print_json(a);
    else
        *arr = a;
    return ZTBCTL_EXIT_OK;
}

json_t *ztbctl_json_time(int64_t t)
{
    return t > 0 ? json_integer((json_int_t)t) : json_null();
}

/* "name" for a uid or gid, or its number when it has none. */
static void owner_names(const struct stat *st, char *out, size_t cap)
{
    char u[32], g[32];
    const struct passwd *pw = getpwuid(st->st_uid);
    const struct group *gr = getgrgid(st->st_gid);
    if (pw != NULL)
        snprintf(u, sizeof(u), "%s", pw->pw_name);
    else
        snprintf(u, sizeof(u), "%lu", (unsigned long)st->st_uid);
    if (gr != NULL)
        snprintf(g, sizeof(g), "%s", gr->gr_name);
    else
        snprintf(g, sizeof(g), "%lu", (unsigned long)st->st_gid);
    snprintf(out, cap, "%s:%s", u, g);
}

/* The permission problem with p (mode wanted by access(2)), or 0. */
static int denied(const char *p, int amode, char *out, size_t cap)
{
    if (access(p, amode) == 0 || errno != EACCES)
        return 0;
    struct stat st;
    char owner[72] = "?";
    unsigned mode = 0;
    if (stat(p, &st) == 0) {
        owner_names(&st, owner, sizeof(owner));
        mode = (unsigned)st.st_mode & 07777;
    }
    const struct passwd *me = getpwuid(geteuid());
    snprintf(out, cap,
             "permission denied on %s (owned by %s, mode %04o; you are %s, uid %lu): run as its "
             "owner or a member of its group, or with sudo",
             p, owner, mode, me ? me->pw_name : "?", (unsigned long)geteuid());
    return 1;
}

void ztbctl_path_problem(const char *path, int want_write, char *out, size_t cap)
{
    if (cap == 0)
        return;
    out[0] = '\0';
    char dir[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(dir)) {
        snprintf(out, cap, "unusable path");
        return;
    }
    memcpy(dir, path, len + 1);
    /* each directory on the way must be searchable */
    for (char *p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        struct stat st;
        int found = stat(dir, &st) == 0;
        if (!found && errno == ENOENT) {
            snprintf(out, cap, "no such directory: %s", dir);
            return;
        }
        if (found && denied(dir, X_OK, out, cap))
            return;
        *p = '/';
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            snprintf(out, cap, "no such file: %s", path);
        else if (errno == EACCES)
            (void)denied(path, F_OK, out, cap);
        return;
    }
    (void)denied(path, R_OK | (want_write ? W_OK : 0), out, cap);
}

int ztbctl_utf8_arg(const char *cmd, const char *opt, const char *v)
{
    if (ztb_utf8_valid(v, strlen(v)))
        return 1;
    ztbctl_err("%s: the value of %s is not UTF-8", cmd, opt);
    return 0;
}
