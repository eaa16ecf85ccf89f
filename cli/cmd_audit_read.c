/*
 * cmd_audit_read.c - reading the audit trail: `ztbctl audit tail` (the last
 * records, filtered, and --follow) and `ztbctl audit export --format
 * syslog|ocsf` (RFC 5424 lines, or OCSF 1.1.0 JSON events, one per line,
 * for a SIEM; the OCSF mapping is cli/audit_ocsf.c).
 *
 * Works on the file (read access to STATE_DIR/audit is the access control),
 * needs no broker. Each line is read whole (at most AUDIT_VERIFY_LINE_MAX
 * bytes) and parsed through the JSON gate: the file is not trusted, and a
 * line that is not a record (too long, a NUL byte, not JSON) is skipped with
 * a warning, never half printed, and the lines after it are still read.
 * What a record's strings hold is printed with control characters escaped:
 * a record must not drive the terminal or split a syslog line.
 * Reading proves nothing: `ztbctl audit verify` does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/verify.h"
#include "cli/audit_ocsf.h"
#include "common/json_gate.h"
#include "ztbctl.h"

#define TAIL_MAX 100000

struct filter {
    const char *agent, *action, *outcome, *event;
};

/* A record's outcome: the last part of its event ("issued", "denied",
 * "refused", "applied", ...). */
static const char *outcome_of(const char *event)
{
    const char *dot = strrchr(event, '.');
    return dot ? dot + 1 : event;
}

static const char *str_member(json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}

/* Print s with the C0 and C1 control characters (and DEL) as \xNN: what a
 * record holds reaches the terminal as text. Returns the bytes printed. */
static size_t put_text(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            w += (size_t)printf("\\x%02x", *p);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) { /* U+0080..U+009F */
            w += (size_t)printf("\\u%04x", p[1]);
            p++;
        } else {
            putchar(*p);
            w++;
        }
    }
    return w;
}

/* Print s as a syslog header field: printable US-ASCII but space, each
 * other byte as '_', at most max; "-" if empty (RFC 5424 NILVALUE). */
static void put_token(const char *s, size_t max)
{
    size_t m = 0;
    for (const char *p = s ? s : ""; *p && m < max; p++, m++)
        putchar(*p > 32 && *p < 127 ? *p : '_');
    if (m == 0)
        putchar('-');
}

/* 1 if the record j passes f. */
static int matches(json_t *j, const struct filter *f)
{
    const char *event = str_member(j, "event");
    if (event == NULL)
        return 0;
    if (f->event && strcmp(event, f->event) != 0)
        return 0;
    if (f->outcome && strcmp(outcome_of(event), f->outcome) != 0)
        return 0;
    if (f->action &&
        (str_member(j, "action") == NULL || strcmp(str_member(j, "action"), f->action) != 0))
        return 0;
    if (f->agent) {
        const char *agent = str_member(j, "agent");
        const char *actor = str_member(j, "actor");
        char want[300];
        snprintf(want, sizeof(want), "agent:%s", f->agent);
        if (!(agent && strcmp(agent, f->agent) == 0) && !(actor && strcmp(actor, want) == 0))
            return 0;
    }
    return 1;
}

/* Parse line[0..n) (no newline) as a record; NULL if it is not one. */
static json_t *parse(const char *line, size_t n)
{
    json_t *j = NULL;
    if (ztb_json_gate_load(line, n, AUDIT_VERIFY_LINE_MAX, ZTB_JSON_GATE_DEPTH, 0, &j, NULL, 0) !=
            ZTB_OK ||
        !json_is_object(j) || !json_is_integer(json_object_get(j, "seq"))) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* For people: ts seq event actor, then the other members as k=v. */
static void print_human(json_t *j)
{
    put_text(str_member(j, "ts") ? str_member(j, "ts") : "-");
    printf(" %6lld ", (long long)json_integer_value(json_object_get(j, "seq")));
    for (size_t w = put_text(str_member(j, "event")); w < 28; w++)
        putchar(' ');
    putchar(' ');
    put_text(str_member(j, "actor") ? str_member(j, "actor") : "-");
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (!strcmp(k, "seq") || !strcmp(k, "ts") || !strcmp(k, "prev") || !strcmp(k, "event") ||
            !strcmp(k, "actor") || !strcmp(k, "replica") || !strcmp(k, "jws"))
            continue;
        putchar(' ');
        put_text(k);
        putchar('=');
        if (json_is_string(v)) {
            put_text(json_string_value(v));
        } else {
            char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            put_text(t ? t : "?");
            free(t);
        }
    }
    printf("\n");
}

/* One record as an RFC 5424 syslog line (facility authpriv, 10): severity
 * warning (4) for refusals, denials and revocations, notice (5) otherwise;
 * HOSTNAME the replica, APP-NAME ztb-broker, MSGID the event, structured
 * data ztb@32473 with seq and actor, MSG the record itself. */
static void print_syslog(json_t *j, const char *line)
{
    const char *event = str_member(j, "event");
    const char *o = outcome_of(event);
    int warn = !strcmp(o, "denied") || !strcmp(o, "refused") ||
               !strncmp(event, "revocation.", 11) || !strncmp(event, "audit.", 6);
    printf("<%d>1 ", 10 * 8 + (warn ? 4 : 5));
    put_token(str_member(j, "ts"), 64); /* TIMESTAMP */
    putchar(' ');
    put_token(str_member(j, "replica"), 255); /* HOSTNAME */
    printf(" ztb-broker - ");
    put_token(event, 32); /* MSGID: 1..32 printable US-ASCII (events are [a-z._]) */
    printf(" [ztb@32473 seq=\"%lld\" actor=\"",
           (long long)json_integer_value(json_object_get(j, "seq")));
    for (const unsigned char *p =
             (const unsigned char *)(str_member(j, "actor") ? str_member(j, "actor") : "");
         *p; p++) {
        if (*p < 0x20 || *p == 0x7f) { /* one record, one line */
            printf("\\x%02x", *p);
            continue;
        }
        if (*p == '"' || *p == '\\' || *p == ']')
            putchar('\\');
        putchar(*p);
    }
    printf("\"] %s\n", line);
}

/* One record as one OCSF event (a JSON line). */
static void print_ocsf(json_t *j)
{
    json_t *o = audit_ocsf_map(j);
    char *t = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (t != NULL)
        printf("%s\n", t);
    else
        ztbctl_err("cannot map a record to OCSF");
    free(t);
    json_decref(o);
}

enum mode { MODE_TAIL, MODE_SYSLOG, MODE_OCSF };

/* Parse line (n bytes), saying on stderr why a line is skipped; NULL then. */
static json_t *parse_or_warn(const char *line, size_t n)
{
    if (n > AUDIT_VERIFY_LINE_MAX) {
        ztbctl_err("skipping a line longer than %d bytes: not an audit record",
                   AUDIT_VERIFY_LINE_MAX);
        return NULL;
    }
    json_t *j = parse(line, n);
    if (j == NULL)
        ztbctl_err("skipping a line that is not an audit record");
    return j;
}

/* Emit the record line (n bytes) if it passes f. */
static void emit(struct ztbctl *ctl, enum mode mode, const struct filter *f, const char *line,
                 size_t n)
{
    json_t *j = parse_or_warn(line, n);
    if (j == NULL)
        return;
    if (matches(j, f)) {
        if (mode == MODE_SYSLOG)
            print_syslog(j, line);
        else if (mode == MODE_OCSF)
            print_ocsf(j);
        else if (ctl->json)
            printf("%s\n", line);
        else
            print_human(j);
    }
    json_decref(j);
}

/* Read the next whole line from f: 1 with its length (without the newline)
 * in *len and its first cap - 1 bytes NUL-terminated in line (a longer line
 * is consumed whole: *len > cap - 1 says it did not fit; a NUL byte in it is
 * kept, *len counts past it); 0 at the end, where a partial last line (being
 * written) is left for later: *back says how far to rewind. */
static int next_line(FILE *f, char *line, size_t cap, size_t *len, long *back)
{
    size_t n = 0;
    long got = 0;
    int c;
    *back = 0;
    while ((c = getc(f)) != EOF) {
        got++;
        if (c == '\n') {
            line[n < cap ? n : cap - 1] = '\0';
            *len = n;
            return 1;
        }
        if (n < cap - 1)
            line[n] = (char)c;
        n++;
    }
    *back = got;
    return 0;
}

int cmd_audit_read(struct ztbctl *ctl, int argc, char **argv, int export)
{
    struct filter flt = {0};
    const char *path = NULL, *format = NULL;
    long count = export ? -1 : 10;
    int follow = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a == NULL)
            return ZTBCTL_EXIT_USAGE;
        if (!strcmp(a, "--follow") || !strcmp(a, "-f"))
            follow = 1;
        else if (!strcmp(a, "--agent") && v)
            flt.agent = argv[++i];
        else if (!strcmp(a, "--action") && v)
            flt.action = argv[++i];
        else if (!strcmp(a, "--outcome") && v)
            flt.outcome = argv[++i];
        else if (!strcmp(a, "--event") && v)
            flt.event = argv[++i];
        else if (!strcmp(a, "--format") && v)
            format = argv[++i];
        else if (!strcmp(a, "-n") && v && !export) {
            char *end;
            const char *s = argv[++i];
            count = strtol(s, &end, 10);
            if (end == s || *end != '\0' || count < 0 || count > TAIL_MAX)
                return ZTBCTL_EXIT_USAGE;
        } else if (a[0] != '-' && path == NULL)
            path = a;
        else
            return ZTBCTL_EXIT_USAGE;
    }
    if (path == NULL || (export && (format == NULL || (strcmp(format, "syslog") != 0 &&
                                                       strcmp(format, "ocsf") != 0))))
        return ZTBCTL_EXIT_USAGE;
    enum mode mode = !export ? MODE_TAIL : strcmp(format, "ocsf") == 0 ? MODE_OCSF : MODE_SYSLOG;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        ztbctl_err("%s: %s", path, strerror(errno));
        return ZTBCTL_EXIT_FAIL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        ztbctl_err("%s is a directory: give the log file in it (%s/audit.log)", path, path);
        fclose(f);
        return ZTBCTL_EXIT_FAIL;
    }
    char *line = malloc(AUDIT_VERIFY_LINE_MAX + 2);
    if (line == NULL) {
        fclose(f);
        return ZTBCTL_EXIT_FAIL;
    }
    long back;
    size_t n;
    if (count < 0) { /* export: everything that matches */
        while (next_line(f, line, AUDIT_VERIFY_LINE_MAX + 2, &n, &back))
            emit(ctl, mode, &flt, line, n);
    } else {
        /* tail: the last count matching records, kept in a ring */
        char **ring = calloc((size_t)count + 1, sizeof(char *));
        size_t head = 0, held = 0;
        while (ring && next_line(f, line, AUDIT_VERIFY_LINE_MAX + 2, &n, &back)) {
            json_t *j = parse_or_warn(line, n);
            int keep = j != NULL && matches(j, &flt);
            json_decref(j);
            if (!keep || count == 0)
                continue;
            size_t slot = (head + held) % (size_t)count;
            if (held == (size_t)count) {
                free(ring[head]);
                slot = head;
                head = (head + 1) % (size_t)count;
            } else {
                held++;
            }
            ring[slot] = strdup(line);
        }
        for (size_t k = 0; ring && k < held; k++) {
            char *l = ring[(head + k) % (size_t)count];
            if (l) /* a record: no NUL in it */
                emit(ctl, mode, &flt, l, strlen(l));
            free(l);
        }
        free(ring);
    }
    if (ferror(f)) {
        ztbctl_err("%s: cannot read: %s", path, strerror(errno));
        free(line);
        fclose(f);
        return ZTBCTL_EXIT_FAIL;
    }
    fflush(stdout);
    /* --follow: wait for more lines; after a rotation, read the new file */
    while (follow && !ferror(stdout)) { /* until killed, or nobody reads */
        if (back > 0)
            fseek(f, -back, SEEK_CUR);
        clearerr(f);
        if (next_line(f, line, AUDIT_VERIFY_LINE_MAX + 2, &n, &back)) {
            emit(ctl, mode, &flt, line, n);
            fflush(stdout);
            continue;
        }
        struct stat now, cur;
        if (fstat(fileno(f), &cur) == 0 && cur.st_size < ftello(f)) {
            /* truncated in place (logrotate's copytruncate): what is
             * written now starts at 0 */
            ztbctl_err("%s: file truncated; reading it from its start", path);
            fseeko(f, 0, SEEK_SET);
            back = 0;
            continue;
        }
        if (stat(path, &now) == 0 && fstat(fileno(f), &cur) == 0 &&
            (now.st_ino != cur.st_ino || now.st_dev != cur.st_dev) && back == 0) {
            FILE *nf = fopen(path, "r"); /* rotated: the rest is in the new file */
            if (nf != NULL) {
                fclose(f);
                f = nf;
                continue;
            }
        }
        usleep(200000);
    }
    free(line);
    fclose(f);
    return ZTBCTL_EXIT_OK;
}
