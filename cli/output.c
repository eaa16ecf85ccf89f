/*
 * output.c - how ztbctl prints: errors, tables, JSON.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztbctl.h"

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
    size_t nrows; /* including the header row */
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
    size_t *w = calloc((size_t)t->ncols, sizeof(size_t));
    if (w == NULL)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            size_t l = strlen(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            if (c == t->ncols - 1) {
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
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
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
    time_t ts = (time_t)t;
    struct tm tm;
    gmtime_r(&ts, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%SZ", &tm);
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
