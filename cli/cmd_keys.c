/*
 * cmd_keys.c - `ztbctl keys`: manage a signing key store directory.
 *
 *   ztbctl keys [--dir DIR] [--passphrase-file FILE] init|list|rotate|retire|prune|jwks
 *
 * Works on the files directly (pki/keystore.h), so it needs no broker; the
 * store's lock keeps it from racing a broker that rotates through its admin
 * API. A running broker picks up what this changes when it reloads the store
 * (docs/keys.md). Run it as the user the broker runs as: the store refuses
 * files owned by anyone else. Never prints key material.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/secret.h"
#include "pki/keyfile.h"
#include "pki/keystore.h"
#include "ztbctl.h"

#define DEFAULT_DIR "/var/lib/ztb/keys"

struct keys_args {
    const char *dir;
    const char *passfile;
    const char *cmd;
    const char *kid;
    int force;
    ztb_rotation_params params;
    int params_set;
};

static void keys_usage(FILE *out)
{
    fprintf(out,
            "usage: ztbctl keys [--dir DIR] [--passphrase-file FILE] COMMAND [ARGS]\n"
            "\n"
            "Manage the signing key store (files only; no broker needed).\n"
            "\n"
            "Commands:\n"
            "  init      create a key store with one active key\n"
            "            [--jwks-cache S] [--max-token-ttl S] [--skew S]  (seconds; defaults "
            "%d, %d, %d)\n"
            "  list      every key with its state, times, and whether the JWKS publishes it\n"
            "  rotate    publish a next key; run again once it has been published for the\n"
            "            JWKS cache period to make it active [--force: do not wait]\n"
            "  retire KID  retire a next or retiring key by hand\n"
            "            [--force: stop publishing it now; its tokens then fail]\n"
            "            (a KID may begin with '-': it is still taken as the KID)\n"
            "  prune     delete retired keys whose tokens have all expired, and leftovers\n"
            "  jwks      print the JWKS verifiers must know now\n"
            "\n"
            "Options:\n"
            "  --dir DIR               key store (default $ZTB_KEY_DIR or %s)\n"
            "  --passphrase-file FILE  passphrase for keys encrypted at rest (default\n"
            "                          $ZTB_PASSPHRASE_FILE); init with it encrypts the store\n"
            "\n"
            "See docs/keys.md for the rotation timeline.\n",
            ZTB_ROTATION_DEFAULT_JWKS_CACHE_S, ZTB_ROTATION_DEFAULT_MAX_TOKEN_TTL_S,
            ZTB_ROTATION_DEFAULT_SKEW_S, DEFAULT_DIR);
}

static int parse_seconds(const char *opt, const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0) {
        ztbctl_err("%s: not a number of seconds: '%s'", opt, s);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* Options may come before or after the command. Returns an exit code or -1 to go on. */
static int parse_args(int argc, char **argv, struct keys_args *a)
{
    memset(a, 0, sizeof(*a));
    ztb_rotation_params_default(&a->params);
    a->dir = getenv("ZTB_KEY_DIR");
    if (a->dir == NULL || a->dir[0] == '\0')
        a->dir = DEFAULT_DIR;
    a->passfile = getenv("ZTB_PASSPHRASE_FILE");
    if (a->passfile != NULL && a->passfile[0] == '\0')
        a->passfile = NULL;
    int rest = 0; /* after `--` every word is an argument */
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t *dur = NULL;
        if (!rest && strcmp(s, "--") == 0) {
            rest = 1;
            continue;
        } else if (rest || (s[0] == '-' && s[1] != '-' && s[1] != '\0' && strcmp(s, "-h") != 0)) {
            /* a KID is base64url and may begin with '-': a single-dash
             * word other than -h is a KID, never an option */
            if (a->cmd == NULL) {
                a->cmd = s;
            } else if (a->kid == NULL) {
                a->kid = s;
            } else {
                ztbctl_err("keys: unexpected argument '%s'", s);
                return ZTBCTL_EXIT_USAGE;
            }
            continue;
        } else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            keys_usage(stdout);
            return ZTBCTL_EXIT_OK;
        } else if (strcmp(s, "--force") == 0) {
            a->force = 1;
            continue;
        } else if (strcmp(s, "--dir") == 0 || strcmp(s, "--passphrase-file") == 0) {
            if (val == NULL) {
                ztbctl_err("keys: %s needs a value", s);
                return ZTBCTL_EXIT_USAGE;
            }
            if (s[2] == 'd')
                a->dir = val;
            else
                a->passfile = val;
            i++;
            continue;
        } else if (strcmp(s, "--jwks-cache") == 0) {
            dur = &a->params.jwks_cache_s;
        } else if (strcmp(s, "--max-token-ttl") == 0) {
            dur = &a->params.max_token_ttl_s;
        } else if (strcmp(s, "--skew") == 0) {
            dur = &a->params.skew_s;
        } else if (s[0] == '-') {
            ztbctl_err("keys: unknown option '%s' (see ztbctl keys --help)", s);
            return ZTBCTL_EXIT_USAGE;
        } else if (a->cmd == NULL) {
            a->cmd = s;
            continue;
        } else if (a->kid == NULL) {
            a->kid = s;
            continue;
        } else {
            ztbctl_err("keys: unexpected argument '%s'", s);
            return ZTBCTL_EXIT_USAGE;
        }
        if (val == NULL) {
            ztbctl_err("keys: %s needs a value", s);
            return ZTBCTL_EXIT_USAGE;
        }
        if (parse_seconds(s, val, dur) != 0)
            return ZTBCTL_EXIT_USAGE;
        a->params_set = 1;
        i++;
    }
    if (a->cmd == NULL) {
        keys_usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    return -1;
}

static int fail(const char *what, ztb_err rv)
{
    ztbctl_err("keys %s: %s (%s)", what, ztb_strerror(rv), ztb_err_name(rv));
    return ZTBCTL_EXIT_FAIL;
}

/* Open options: the passphrase read from its file, if any. */
struct pass {
    char *p;
    size_t n;
};

static ztb_err read_pass(const struct keys_args *a, struct pass *pw)
{
    pw->p = NULL;
    pw->n = 0;
    if (a->passfile == NULL)
        return ZTB_OK;
    return ztb_keyfile_read_passphrase(a->passfile, &pw->p, &pw->n);
}

static void drop_pass(struct pass *pw)
{
    if (pw->p != NULL)
        ztb_free_secret(pw->p, pw->n + 1);
    pw->p = NULL;
}

static int do_init(struct ztbctl *ctl, const struct keys_args *a, const struct pass *pw)
{
    ztb_keystore_opts o = {.passphrase = pw->p, .passphrase_len = pw->n, .params = &a->params};
    ztb_keystore *ks = NULL;
    ztb_err rv = ztb_keystore_init(a->dir, &o, (int64_t)time(NULL), &ks);
    if (rv != ZTB_OK)
        return fail("init", rv);
    const ztb_key_meta *m = ztb_keystore_meta(ks, 0);
    if (ctl->json) {
        json_t *j = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I}", "dir", a->dir, "active", m->kid,
                              "encrypted", ztb_keystore_encrypted(ks), "jwks_cache_s",
                              (json_int_t)a->params.jwks_cache_s, "max_token_ttl_s",
                              (json_int_t)a->params.max_token_ttl_s, "skew_s",
                              (json_int_t)a->params.skew_s);
        ztbctl_print_json(j);
    } else if (!ctl->quiet) {
        printf("initialised key store %s (%s)\nactive key: %s\n", a->dir,
               ztb_keystore_encrypted(ks) ? "encrypted" : "not encrypted", m->kid);
    }
    ztb_keystore_close(ks);
    return ZTBCTL_EXIT_OK;
}

/* One key of a list as JSON: the store's members, published, and absent times as null. */
static json_t *key_json(const ztb_key_meta *m, int64_t now)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:b}", "kid", m->kid, "alg", "ES256", "state",
                  ztb_key_state_name(m->state), "published", ztb_rotation_published(m, now));
    json_object_set_new(o, "created", ztbctl_json_time(m->created));
    json_object_set_new(o, "activated", ztbctl_json_time(m->activated));
    json_object_set_new(o, "deactivated", ztbctl_json_time(m->deactivated));
    json_object_set_new(o, "not_after", ztbctl_json_time(m->not_after));
    return o;
}

/*
 * Print a key list, from the files or from the broker, the same way: a
 * table KID STATE PUBLISHED CREATED ACTIVATED DEACTIVATED NOT_AFTER (RFC
 * 3339 UTC, "-" when absent; -o wide adds ALG), or with -o json the keys (an array, or
 * {"keys": [...]} when wrap is set, as the broker answers) with those
 * members, times in Unix seconds or null. Takes metas[0..n).
 */
static int print_keys(const struct ztbctl *ctl, const ztb_key_meta *metas, size_t n, int64_t now,
                      int wrap)
{
    if (ctl->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, key_json(&metas[i], now));
        ztbctl_print_json(wrap ? json_pack("{s:o}", "keys", arr) : arr);
        return ZTBCTL_EXIT_OK;
    }
    static const char *const hdr[] = {"KID",       "STATE",       "PUBLISHED", "CREATED",
                                      "ACTIVATED", "DEACTIVATED", "NOT_AFTER", "ALG"};
    struct ztbctl_table *t = ztbctl_table_new(8, hdr);
    ztbctl_table_wide_from(t, 7); /* -o wide: the algorithm too */
    for (size_t i = 0; i < n; i++) {
        const ztb_key_meta *m = &metas[i];
        char c[32], ac[32], d[32], na[32];
        ztbctl_fmt_time(m->created, c, sizeof(c));
        ztbctl_fmt_time(m->activated, ac, sizeof(ac));
        ztbctl_fmt_time(m->deactivated, d, sizeof(d));
        ztbctl_fmt_time(m->not_after, na, sizeof(na));
        const char *row[] = {m->kid,
                             ztb_key_state_name(m->state),
                             ztb_rotation_published(m, now) ? "yes" : "no",
                             c,
                             ac,
                             d,
                             na,
                             "ES256"};
        ztbctl_table_row(t, row);
    }
    ztbctl_table_print(t, stdout);
    ztbctl_table_free(t);
    return ZTBCTL_EXIT_OK;
}

static int do_list(struct ztbctl *ctl, ztb_keystore *ks)
{
    size_t n = ztb_keystore_count(ks);
    ztb_key_meta *metas = calloc(n ? n : 1, sizeof(*metas));
    if (metas == NULL) {
        ztbctl_err("out of memory");
        return ZTBCTL_EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++)
        metas[i] = *ztb_keystore_meta(ks, i);
    int rc = print_keys(ctl, metas, n, (int64_t)time(NULL), 0);
    free(metas);
    return rc;
}

/*
 * The broker's key list (the store's own JSON: kid, state and times) as
 * metas; 0, or -1 said why. *metas is the caller's to free.
 */
static int keys_from_broker(json_t *keys, ztb_key_meta **metas, size_t *n)
{
    *n = json_array_size(keys);
    *metas = calloc(*n ? *n : 1, sizeof(**metas));
    if (*metas == NULL) {
        ztbctl_err("out of memory");
        return -1;
    }
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        ztb_key_meta *m = &(*metas)[i];
        const char *kid = json_string_value(json_object_get(k, "kid"));
        const char *st = json_string_value(json_object_get(k, "state"));
        int found = 0;
        for (int s = ZTB_KEY_NEXT; st != NULL && s <= ZTB_KEY_RETIRED && !found; s++)
            if (strcmp(st, ztb_key_state_name((ztb_key_state)s)) == 0) {
                m->state = (ztb_key_state)s;
                found = 1;
            }
        if (kid == NULL || strlen(kid) >= sizeof(m->kid) || !found) {
            ztbctl_err("the broker's key list has an entry without a kid or a known state");
            free(*metas);
            *metas = NULL;
            return -1;
        }
        snprintf(m->kid, sizeof(m->kid), "%s", kid);
        m->created = (int64_t)json_integer_value(json_object_get(k, "created"));
        m->activated = (int64_t)json_integer_value(json_object_get(k, "activated"));
        m->deactivated = (int64_t)json_integer_value(json_object_get(k, "deactivated"));
        m->not_after = (int64_t)json_integer_value(json_object_get(k, "not_after"));
    }
    return 0;
}

static int do_rotate(struct ztbctl *ctl, ztb_keystore *ks, int force)
{
    int64_t now = (int64_t)time(NULL);
    ztb_rotate_result r;
    ztb_err rv = ztb_keystore_rotate(ks, now, force, &r);
    char when[32];
    ztbctl_fmt_time(r.promotable_at, when, sizeof(when));
    if (rv == ZTB_ERR_STATE && r.kid[0] != '\0') {
        ztbctl_err("keys rotate: next key %s has not been published for the JWKS cache period "
                   "yet; it can become active at %s (or use --force, which may fail tokens at "
                   "verifiers with an older cached JWKS)",
                   r.kid, when);
        return ZTBCTL_EXIT_FAIL;
    }
    if (rv != ZTB_OK)
        return fail("rotate", rv);
    if (ctl->json) {
        json_t *j = json_pack("{s:s, s:s, s:I}", "action",
                              r.action == ZTB_ROTATE_PUBLISHED ? "published" : "promoted", "kid",
                              r.kid, "promotable_at", (json_int_t)r.promotable_at);
        ztbctl_print_json(j);
    } else if (!ctl->quiet && r.action == ZTB_ROTATE_PUBLISHED) {
        printf("published next key %s\n"
               "it can become active at %s: run `ztbctl keys rotate` again then,\n"
               "or let the broker promote it\n",
               r.kid, when);
    } else if (!ctl->quiet) {
        printf("key %s is now active; the previous key stays published until its tokens "
               "expire\n",
               r.kid);
    }
    return ZTBCTL_EXIT_OK;
}

static int do_retire(struct ztbctl *ctl, ztb_keystore *ks, const char *kid, int force)
{
    if (kid == NULL) {
        ztbctl_err("keys retire: which KID? (see ztbctl keys list)");
        return ZTBCTL_EXIT_USAGE;
    }
    ztb_err rv = ztb_keystore_retire(ks, kid, (int64_t)time(NULL), force);
    if (rv == ZTB_ERR_STATE) {
        ztbctl_err("keys retire: %s is the active key; rotate first", kid);
        return ZTBCTL_EXIT_FAIL;
    }
    if (rv != ZTB_OK)
        return fail("retire", rv);
    if (ctl->json)
        ztbctl_print_json(json_pack("{s:s, s:b}", "retired", kid, "unpublished", force));
    else if (!ctl->quiet)
        printf("retired %s%s\n", kid, force ? " (no longer published)" : "");
    return ZTBCTL_EXIT_OK;
}

static int do_prune(struct ztbctl *ctl, ztb_keystore *ks)
{
    size_t removed = 0;
    ztb_err rv = ztb_keystore_prune(ks, (int64_t)time(NULL), &removed);
    if (rv != ZTB_OK)
        return fail("prune", rv);
    if (ctl->json)
        ztbctl_print_json(json_pack("{s:I}", "removed", (json_int_t)removed));
    else if (!ctl->quiet)
        printf("removed %zu key%s\n", removed, removed == 1 ? "" : "s");
    return ZTBCTL_EXIT_OK;
}

static int do_jwks(ztb_keystore *ks)
{
    ztb_buf b;
    ztb_buf_init(&b, 1 << 20);
    ztb_err rv = ztb_keystore_jwks(ks, (int64_t)time(NULL), &b);
    if (rv == ZTB_OK)
        printf("%s\n", ztb_buf_cstr(&b));
    ztb_buf_free(&b);
    return rv == ZTB_OK ? ZTBCTL_EXIT_OK : fail("jwks", rv);
}

/*
 * `ztbctl keys list|rotate --broker [--force]`: the same through the running
 * broker's admin API, which applies a rotation to its loaded key store at
 * once (the file commands are picked up by the broker within seconds).
 */
static int keys_via_broker(struct ztbctl *ctl, int argc, char **argv)
{
    const char *verb = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--broker") == 0)
            continue;
        if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else if (verb == NULL && argv[i][0] != '-')
            verb = argv[i];
        else {
            ztbctl_err("keys --broker: unexpected argument '%s'", argv[i]);
            return ZTBCTL_EXIT_USAGE;
        }
    }
    json_t *r = NULL;
    long status;
    if (verb != NULL && strcmp(verb, "list") == 0 && !force) {
        if (ztbctl_admin(ctl, "GET", "/v1/keys", NULL, &r, &status) != 0) {
            json_decref(r);
            return ZTBCTL_EXIT_FAIL;
        }
        ztb_key_meta *metas = NULL;
        size_t n = 0;
        int rc = keys_from_broker(json_object_get(r, "keys"), &metas, &n);
        json_decref(r);
        if (rc != 0)
            return ZTBCTL_EXIT_FAIL;
        rc = print_keys(ctl, metas, n, (int64_t)time(NULL), 1);
        free(metas);
        return rc;
    }
    if (verb != NULL && strcmp(verb, "rotate") == 0) {
        json_t *body = json_pack("{s:b}", "force", force);
        int rc = ztbctl_admin(ctl, "POST", "/v1/keys/rotate", body, &r, &status);
        json_decref(body);
        if (rc != 0) {
            json_decref(r);
            return ZTBCTL_EXIT_FAIL;
        }
        if (ctl->json) {
            ztbctl_print_json(r);
            return ZTBCTL_EXIT_OK;
        }
        if (!ctl->quiet)
            printf("%s %s\n", json_string_value(json_object_get(r, "action")),
                   json_string_value(json_object_get(r, "kid")));
        json_decref(r);
        return ZTBCTL_EXIT_OK;
    }
    ztbctl_err("keys --broker supports: list, rotate [--force]");
    return ZTBCTL_EXIT_USAGE;
}

int cmd_keys(struct ztbctl *ctl, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--broker") == 0)
            return keys_via_broker(ctl, argc, argv);
    struct keys_args a;
    int code = parse_args(argc, argv, &a);
    if (code >= 0)
        return code;
    static const char *const cmds[] = {"init", "list", "rotate", "retire", "prune", "jwks"};
    size_t c = 0;
    while (c < sizeof(cmds) / sizeof(cmds[0]) && strcmp(a.cmd, cmds[c]) != 0)
        c++;
    if (c == sizeof(cmds) / sizeof(cmds[0])) {
        ztbctl_err("keys: unknown command '%s' (see ztbctl keys --help)", a.cmd);
        return ZTBCTL_EXIT_USAGE;
    }
    if (a.kid != NULL && strcmp(a.cmd, "retire") != 0) {
        ztbctl_err("keys %s: unexpected argument '%s'", a.cmd, a.kid);
        return ZTBCTL_EXIT_USAGE;
    }
    if (a.params_set && strcmp(a.cmd, "init") != 0) {
        ztbctl_err("keys %s: durations are set at init (they live in the store)", a.cmd);
        return ZTBCTL_EXIT_USAGE;
    }

    struct pass pw;
    ztb_err rv = read_pass(&a, &pw);
    if (rv != ZTB_OK) {
        ztbctl_err("keys: passphrase file %s: %s (%s)", a.passfile, ztb_strerror(rv),
                   ztb_err_name(rv));
        return ZTBCTL_EXIT_FAIL;
    }
    if (strcmp(a.cmd, "init") == 0) {
        code = do_init(ctl, &a, &pw);
        drop_pass(&pw);
        return code;
    }
    ztb_keystore_opts o = {.passphrase = pw.p, .passphrase_len = pw.n};
    ztb_keystore *ks = NULL;
    rv = ztb_keystore_open(a.dir, &o, &ks);
    drop_pass(&pw); /* the store keeps its own copy */
    if (rv != ZTB_OK) {
        ztbctl_err("keys: cannot open key store %s: %s (%s)", a.dir, ztb_strerror(rv),
                   ztb_err_name(rv));
        return ZTBCTL_EXIT_FAIL;
    }
    if (strcmp(a.cmd, "list") == 0)
        code = do_list(ctl, ks);
    else if (strcmp(a.cmd, "rotate") == 0)
        code = do_rotate(ctl, ks, a.force);
    else if (strcmp(a.cmd, "retire") == 0)
        code = do_retire(ctl, ks, a.kid, a.force);
    else if (strcmp(a.cmd, "prune") == 0)
        code = do_prune(ctl, ks);
    else
        code = do_jwks(ks);
    ztb_keystore_close(ks);
    return code;
}
