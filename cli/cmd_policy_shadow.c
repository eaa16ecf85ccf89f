/*
 * cmd_policy_shadow.c - `ztbctl policy shadow`: run a candidate policy beside
 * the enforced one on live traffic, read what it would have changed, then
 * promote or clear it.
 *
 *   ztbctl policy shadow load FILE   the broker decides every token request
 *                                    with FILE too, and records differences
 *   ztbctl policy shadow report      differences by (enforced, candidate)
 *                                    outcome and rule, with examples
 *   ztbctl policy shadow promote     write the candidate to the broker's
 *                                    policy file and enforce it
 *   ztbctl policy shadow clear       stop shadowing
 *
 * promote writes the file here, as the operator (the broker runs as its
 * service user and its configuration directory is read-only to it): the
 * candidate replaces the policy file atomically with the old file's mode and
 * owner, and the broker then loads it, checks it is the candidate (digest)
 * and audits what changed rule by rule. A restart therefore keeps it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pki/keyfile.h"
#include "policy/policy.h"
#include "ztbctl.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: ztbctl policy shadow load FILE\n"
                 "       ztbctl policy shadow report\n"
                 "       ztbctl policy shadow promote\n"
                 "       ztbctl policy shadow clear\n"
                 "\n"
                 "load     the running broker decides every token request with FILE as well\n"
                 "         as with the enforced policy; only the enforced decision counts, and\n"
                 "         each decision FILE would have made differently is recorded (audit\n"
                 "         event policy.shadow_differs, metric\n"
                 "         ztb_policy_shadow_differences_total)\n"
                 "report   the differences so far, by enforced and candidate outcome and rule,\n"
                 "         most frequent first, with example requests\n"
                 "promote  write the candidate over the broker's policy file (keeping its mode\n"
                 "         and owner) and make the broker enforce it; the broker audits which\n"
                 "         rules were added, removed and changed (policy.promoted)\n"
                 "clear    stop evaluating the candidate\n"
                 "\n"
                 "Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 usage.\n");
}

/* The file's bytes (NUL-terminated) or NULL with the reason printed. */
static char *read_document(const char *file, size_t *len)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        ztbctl_err("%s: %s", file, strerror(errno));
        return NULL;
    }
    char *doc = malloc(POLICY_MAX_DOCUMENT + 1);
    size_t n = doc ? fread(doc, 1, POLICY_MAX_DOCUMENT + 1, f) : 0;
    int bad = doc == NULL || ferror(f);
    fclose(f);
    if (bad || n > POLICY_MAX_DOCUMENT) {
        ztbctl_err("%s: %s", file,
                   doc == NULL ? "out of memory"
                   : bad       ? "cannot be read"
                               : "larger than a policy may be (16 MiB)");
        free(doc);
        return NULL;
    }
    doc[n] = '\0';
    *len = n;
    return doc;
}

/* Print the broker's list of problems, one per line. */
static void print_problems(const json_t *r)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(r, "problems"), i, m)
    {
        fprintf(stderr, "  %s\n", json_string_value(m));
    }
}

static int load(struct ztbctl *ctl, const char *file)
{
    /* checked here first: the problems point into the operator's file */
    policy_diag d;
    policy_diag_init(&d);
    policy *p = NULL;
    ztb_err rv = policy_load_file(file, &p, &d);
    if (rv != ZTB_OK) {
        for (size_t i = 0; i < d.n; i++) {
            ztb_buf b;
            ztb_buf_init(&b, 1 << 12);
            policy_diag_format(&d.msgs[i], &b);
            fprintf(stderr, "%s:%s\n", file, ztb_buf_cstr(&b));
            ztb_buf_free(&b);
        }
        ztbctl_err("%s: refused (%s); nothing changed", file, ztb_strerror(rv));
        policy_diag_free(&d);
        return ZTBCTL_EXIT_FAIL;
    }
    policy_diag_free(&d);
    policy_unref(p);
    size_t n = 0;
    char *doc = read_document(file, &n);
    if (doc == NULL)
        return ZTBCTL_EXIT_FAIL;
    json_t *r = NULL;
    long status;
    int rc = ztbctl_admin_text(ctl, "PUT", "/v1/policy/shadow", doc, n, &r, &status);
    free(doc);
    if (rc != 0) {
        print_problems(r);
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(r);
        return ZTBCTL_EXIT_OK;
    }
    if (!ctl->quiet)
        printf("shadowing %s (digest %s, %lld rules): every token request is now decided by it "
               "too;\nsee `ztbctl policy shadow report`\n",
               file, json_string_value(json_object_get(r, "digest")),
               (long long)json_integer_value(json_object_get(r, "rules")));
    json_decref(r);
    return ZTBCTL_EXIT_OK;
}

static const char *side(const json_t *g, const char *which, char *out, size_t cap)
{
    const json_t *s = json_object_get(g, which);
    const char *rule = json_string_value(json_object_get(s, "rule"));
    snprintf(out, cap, "%s (%s)", json_string_value(json_object_get(s, "effect")),
             rule ? rule : "no rule");
    return out;
}

static int report(struct ztbctl *ctl)
{
    json_t *r = NULL;
    long status;
    if (ztbctl_admin(ctl, "GET", "/v1/policy/shadow", NULL, &r, &status) != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(r);
        return ZTBCTL_EXIT_OK;
    }
    printf("candidate  %s (%lld rules), loaded %s by %s\n"
           "decisions  %lld evaluated, %lld would differ\n",
           json_string_value(json_object_get(r, "digest")),
           (long long)json_integer_value(json_object_get(r, "rules")),
           json_string_value(json_object_get(r, "loaded_at")),
           json_string_value(json_object_get(r, "loaded_by")),
           (long long)json_integer_value(json_object_get(r, "evaluated")),
           (long long)json_integer_value(json_object_get(r, "differing")));
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(r, "groups"), i, g)
    {
        char a[128], b[128];
        printf("\n%6lld  %s -> %s  [%s]\n",
               (long long)json_integer_value(json_object_get(g, "count")),
               side(g, "enforced", a, sizeof(a)), side(g, "candidate", b, sizeof(b)),
               json_string_value(json_object_get(g, "kind")));
        size_t k;
        const json_t *e;
        json_array_foreach(json_object_get(g, "examples"), k, e)
        {
            const char *res = json_string_value(json_object_get(e, "resource"));
            printf("        e.g. %s %s on %s%s%s at %s\n",
                   json_string_value(json_object_get(e, "agent")),
                   json_string_value(json_object_get(e, "action")),
                   json_string_value(json_object_get(e, "audience")), res && res[0] ? " " : "",
                   res ? res : "", json_string_value(json_object_get(e, "at")));
        }
    }
    json_int_t dropped = json_integer_value(json_object_get(r, "groups_dropped"));
    if (dropped > 0)
        printf("\n%lld more differences in groups beyond the first 64 (not itemised)\n",
               (long long)dropped);
    json_decref(r);
    return ZTBCTL_EXIT_OK;
}

/*
 * Replace path with the n bytes at doc, atomically, keeping the old file's
 * mode and owner. 0, or -1 with the reason printed (naming the path, its
 * owner and what to do).
 */
int ztbctl_replace_policy_file(const char *path, const char *doc, size_t n)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        ztbctl_err("%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        ztbctl_err("%s is not a regular file (a symlink?): copy the candidate there yourself, "
                   "then run `ztbctl policy shadow promote` again",
                   path);
        return -1;
    }
    char dbuf[4096], fbuf[4096];
    snprintf(dbuf, sizeof(dbuf), "%s", path);
    snprintf(fbuf, sizeof(fbuf), "%s", path);
    const char *dir = dirname(dbuf), *name = basename(fbuf);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ztb_err rv =
        dfd < 0 ? ZTB_ERR_IO : ztb_keyfile_write_atomic(dfd, name, doc, n, st.st_mode & 07777);
    if (rv == ZTB_OK && fchownat(dfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 &&
        (geteuid() == 0 || errno != EPERM))
        rv = ZTB_ERR_IO;
    if (dfd >= 0)
        close(dfd);
    if (rv != ZTB_OK) {
        struct stat ds;
        int have = stat(dir, &ds) == 0;
        ztbctl_err("cannot replace %s (%s; the directory %s is owned by uid %ld, mode %03o): "
                   "run this as its owner (e.g. with sudo)",
                   path, ztb_strerror(rv), dir, have ? (long)ds.st_uid : -1L,
                   have ? (unsigned)(ds.st_mode & 0777) : 0u);
        return -1;
    }
    return 0;
}

static int promote(struct ztbctl *ctl)
{
    json_t *r = NULL;
    long status;
    if (ztbctl_admin(ctl, "GET", "/v1/policy/shadow/document", NULL, &r, &status) != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    const char *file = json_string_value(json_object_get(r, "policy_file"));
    const char *digest = json_string_value(json_object_get(r, "digest"));
    const json_t *docj = json_object_get(r, "document");
    if (file == NULL || digest == NULL || !json_is_string(docj)) {
        ztbctl_err("the broker's answer lacks the candidate");
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (file[0] == '\0') {
        ztbctl_err("the broker was started without --policy: there is no file to promote into");
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ztbctl_replace_policy_file(file, json_string_value(docj), json_string_length(docj)) != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    json_t *body = json_pack("{s:s}", "digest", digest);
    json_t *p = NULL;
    int rc = ztbctl_admin(ctl, "POST", "/v1/policy/shadow/promote", body, &p, &status);
    json_decref(body);
    if (rc != 0) {
        print_problems(p);
        json_decref(p);
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(p);
    } else if (!ctl->quiet) {
        printf("promoted: %s now holds the candidate (digest %s) and it is enforced\n", file,
               digest);
        const json_t *c = json_object_get(p, "changes");
        static const char *const keys[] = {"rules_added", "rules_removed", "rules_changed",
                                           "sections_changed"};
        for (size_t k = 0; k < 4; k++) {
            size_t i;
            const json_t *v;
            json_array_foreach(json_object_get(c, keys[k]), i, v)
            {
                printf("  %-17s %s\n", keys[k], json_string_value(v));
            }
        }
        json_decref(p);
    }
    json_decref(r);
    return ZTBCTL_EXIT_OK;
}

static int clear(struct ztbctl *ctl)
{
    json_t *r = NULL;
    long status;
    if (ztbctl_admin(ctl, "DELETE", "/v1/policy/shadow", NULL, &r, &status) != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json)
        ztbctl_print_json(r);
    else {
        if (!ctl->quiet)
            printf("cleared the candidate %s\n", json_string_value(json_object_get(r, "digest")));
        json_decref(r);
    }
    return ZTBCTL_EXIT_OK;
}

int cmd_policy_shadow(struct ztbctl *ctl, int argc, char **argv)
{
    if (argc < 2 || ztbctl_wants_help(argc, argv, 1)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZTBCTL_EXIT_USAGE : ZTBCTL_EXIT_OK;
    }
    if (strcmp(argv[1], "load") == 0 && argc == 3)
        return load(ctl, argv[2]);
    if (strcmp(argv[1], "report") == 0 && argc == 2)
        return report(ctl);
    if (strcmp(argv[1], "promote") == 0 && argc == 2)
        return promote(ctl);
    if (strcmp(argv[1], "clear") == 0 && argc == 2)
        return clear(ctl);
    ztbctl_err("policy shadow: unknown command or wrong arguments '%s' (load FILE, report, "
               "promote, clear)",
               argv[1]);
    return ZTBCTL_EXIT_USAGE;
}
