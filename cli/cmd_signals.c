/*
 * cmd_signals.c - `ztbctl signals ...`: recent anomaly signals and what
 * became of them, the sources allowed to send them, and the responses
 * waiting for an operator.
 *
 * Must never: print a source secret anywhere but the answer to `source add`
 * (once), or send a JWK file that is not a public key (the broker checks
 * too; the private part of a JWK never leaves this machine).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztbctl.h"
#include "pki/spiffe.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: ztbctl signals list [--limit N] [--agent NAME]   recent signals, newest first\n"
        "       ztbctl signals show ID                  one signal, every field\n"
        "       ztbctl signals source add NAME [--jwk FILE | --agent AGENT]\n"
        "       ztbctl signals source list\n"
        "       ztbctl signals source remove NAME\n"
        "       ztbctl signals pending                  responses waiting for an operator\n"
        "       ztbctl signals confirm ACTION_ID [--reason TEXT]   apply one (its signals:\n"
        "                                               confirmed)\n"
        "       ztbctl signals reject|dismiss ACTION_ID [--reason TEXT]   drop one (its\n"
        "                                               signals: false positives)\n"
        "       ztbctl signals confirm|reject|dismiss SIGNAL_ID [--reason TEXT]   an\n"
        "                                               analyst's verdict (reject and dismiss:\n"
        "                                               a false positive)\n"
        "       ztbctl signals stats                    precision, false positives, confidence\n"
        "                                               calibration, escalations, time to\n"
        "                                               containment, per source and detector\n"
        "       ztbctl signals mode SOURCE observe|enforce\n"
        "       ztbctl signals mode --detector TYPE observe|enforce\n"
        "       ztbctl signals modes                    what is in observe mode\n"
        "\n"
        "A source authenticates POST /v1/signals with the secret `source add` prints\n"
        "once (Authorization: Bearer ztbsrc_...), with SETs signed by the key in\n"
        "--jwk (application/secevent+jwt, iss = NAME), or, with --agent, as that\n"
        "enrolled identity (a gateway). See docs/signals.md.\n"
        "\n"
        "Observe mode: a source's signals (or one of the broker's own detectors,\n"
        "by the signal type it raises) are recorded and their responses computed\n"
        "but not applied; `signals list` shows what they would have done. New\n"
        "sources and detectors start in enforce mode; every change is audited.\n");
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

/* "agent=x jti=y" from a subject object. */
static void subject_text(json_t *sub, char *out, size_t cap)
{
    static const char *const keys[] = {"agent", "jti", "audience", "kid"};
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 4; i++) {
        const char *v = json_string_value(json_object_get(sub, keys[i]));
        if (v != NULL && used < cap) {
            int n = snprintf(out + used, cap - used, "%s%s=%s", used ? " " : "", keys[i], v);
            used += n > 0 ? (size_t)n : 0;
        }
    }
}

/* "quarantine:applied revoke_all:pending_signals(1/2)". */
static void responses_text(json_t *arr, char *out, size_t cap)
{
    size_t used = 0, i;
    json_t *r;
    out[0] = '\0';
    json_array_foreach(arr, i, r)
    {
        if (used >= cap)
            break;
        char extra[192] = "";
        if (json_is_integer(json_object_get(r, "need")) &&
            strcmp(str(r, "status"), "pending_signals") == 0)
            snprintf(extra, sizeof(extra), "(%lld/%lld)",
                     (long long)json_integer_value(json_object_get(r, "have")),
                     (long long)json_integer_value(json_object_get(r, "need")));
        else if (json_is_string(json_object_get(r, "would")))
            snprintf(extra, sizeof(extra), "(would %s)", str(r, "would"));
        else if (json_is_string(json_object_get(r, "action")))
            snprintf(extra, sizeof(extra), "(%s)", str(r, "action"));
        int n = snprintf(out + used, cap - used, "%s%s:%s%s", used ? " " : "", str(r, "response"),
                         str(r, "status"), extra);
        used += n > 0 ? (size_t)n : 0;
    }
    if (out[0] == '\0')
        snprintf(out, cap, "none");
}

/* 1 if name is a source name (the agent name rule, as the broker's
 * store_source_name_ok); else 0, said. */
static int source_name_ok(const char *name)
{
    if (ztb_agent_name_ok(name))
        return 1;
    ztbctl_err("invalid source name '%s' (1-63 of a-z 0-9 . _ - starting with a letter or digit)",
               name);
    return 0;
}

static int signals_list(struct ztbctl *ctl, int argc, char **argv)
{
    char path[256] = "/v1/signals";
    long limit = 0;
    const char *agent = NULL;
    for (int i = 2; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--limit") == 0) {
            char *end;
            limit = strtol(argv[++i], &end, 10);
            if (*end != '\0' || limit < 1 || limit > 1000) {
                ztbctl_err("--limit takes 1..1000");
                return ZTBCTL_EXIT_USAGE;
            }
        } else if (i + 1 < argc && strcmp(argv[i], "--agent") == 0) {
            agent = argv[++i];
            if (!ztb_agent_name_ok(agent)) {
                ztbctl_err("invalid agent name '%s' (1-63 of a-z 0-9 . _ - starting with a "
                           "letter or digit)",
                           agent);
                return ZTBCTL_EXIT_USAGE;
            }
        } else {
            usage(stderr);
            return ZTBCTL_EXIT_USAGE;
        }
    }
    snprintf(path, sizeof(path), "/v1/signals?limit=%ld%s%s", limit ? limit : 50,
             agent ? "&agent=" : "", agent ? agent : "");
    json_t *arr = NULL;
    int rc = ztbctl_get_list(ctl, path, "signals", &arr);
    if (arr == NULL)
        return rc;
    static const char *const hdr[] = {"RECEIVED", "ID",   "SOURCE",  "TYPE",
                                      "SEVERITY", "CONF", "SUBJECT", "RESPONSES"};
    struct ztbctl_table *t = ztbctl_table_new(8, hdr);
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s)
    {
        char when[32], conf[16], subject[512], resp[512];
        ztbctl_fmt_time((int64_t)json_integer_value(json_object_get(s, "received")), when,
                        sizeof(when));
        snprintf(conf, sizeof(conf), "%.2f", json_number_value(json_object_get(s, "confidence")));
        subject_text(json_object_get(s, "subject"), subject, sizeof(subject));
        responses_text(json_object_get(s, "responses"), resp, sizeof(resp));
        const char *cells[] = {
            when,    str(s, "id"), str(s, "source"), str(s, "type"), str(s, "severity"), conf,
            subject, resp};
        ztbctl_table_row(t, cells);
    }
    ztbctl_table_print(t, stdout);
    ztbctl_table_free(t);
    json_decref(arr);
    return ZTBCTL_EXIT_OK;
}

/* The JWK in path as a JSON object (public members only); NULL on error. */
static json_t *read_jwk(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(j)) {
        ztbctl_err("%s: not a JSON object (%s)", path, j ? "" : e.text);
        json_decref(j);
        return NULL;
    }
    if (json_object_get(j, "d") != NULL) {
        ztbctl_err("%s holds a private key (\"d\"): give the transmitter's public JWK", path);
        json_decref(j);
        return NULL;
    }
    return j;
}

static int source_cmd(struct ztbctl *ctl, int argc, char **argv)
{
    if (argc < 3) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    const char *verb = argv[2];
    json_t *r = NULL;
    long status;
    if (strcmp(verb, "list") == 0 && argc == 3) {
        json_t *arr = NULL;
        int rc = ztbctl_get_list(ctl, "/v1/signal-sources", "sources", &arr);
        if (arr == NULL)
            return rc;
        static const char *const hdr[] = {"NAME", "KIND", "AGENT", "SET KEY", "CREATED"};
        struct ztbctl_table *t = ztbctl_table_new(5, hdr);
        size_t i;
        json_t *s;
        json_array_foreach(arr, i, s)
        {
            char when[32];
            ztbctl_fmt_time((int64_t)json_integer_value(json_object_get(s, "created")), when,
                            sizeof(when));
            const char *cells[] = {str(s, "name"), str(s, "kind"), str(s, "agent"),
                                   json_is_true(json_object_get(s, "has_jwk")) ? "yes" : "no",
                                   when};
            ztbctl_table_row(t, cells);
        }
        ztbctl_table_print(t, stdout);
        ztbctl_table_free(t);
        json_decref(arr);
        return ZTBCTL_EXIT_OK;
    }
    if (argc < 4) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    const char *name = argv[3];
    if (!source_name_ok(name))
        return ZTBCTL_EXIT_USAGE;
    if (strcmp(verb, "remove") == 0 && argc == 4) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/signal-sources/%s", name);
        if (ztbctl_admin(ctl, "DELETE", path, NULL, &r, &status) != 0) {
            json_decref(r);
            return ZTBCTL_EXIT_FAIL;
        }
        if (ctl->json)
            ztbctl_print_json(r);
        else {
            printf("source %s removed: its credentials no longer work\n", name);
            json_decref(r);
        }
        return ZTBCTL_EXIT_OK;
    }
    if (strcmp(verb, "add") != 0) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    json_t *body = json_pack("{s:s}", "name", name);
    for (int i = 4; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--jwk") == 0) {
            json_t *jwk = read_jwk(argv[++i]);
            if (jwk == NULL) {
                json_decref(body);
                return ZTBCTL_EXIT_FAIL;
            }
            json_object_set_new(body, "jwk", jwk);
        } else if (i + 1 < argc && strcmp(argv[i], "--agent") == 0) {
            const char *agent = argv[++i];
            if (!ztb_agent_name_ok(agent)) {
                /* left out, it would make a source with a secret instead */
                ztbctl_err("invalid agent name '%s' (1-63 of a-z 0-9 . _ - starting with a "
                           "letter or digit)",
                           agent);
                json_decref(body);
                return ZTBCTL_EXIT_USAGE;
            }
            json_object_set_new(body, "agent", json_string(agent));
        } else {
            json_decref(body);
            usage(stderr);
            return ZTBCTL_EXIT_USAGE;
        }
    }
    int rc = ztbctl_admin(ctl, "POST", "/v1/signal-sources", body, &r, &status);
    json_decref(body);
    if (rc != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(r);
        return ZTBCTL_EXIT_OK;
    }
    const char *secret = json_string_value(json_object_get(r, "secret"));
    const char *agent = json_string_value(json_object_get(r, "agent"));
    printf("signal source %s added\n", name);
    if (agent != NULL)
        printf("it authenticates as the enrolled agent %s (session credential or client "
               "assertion)\n",
               agent);
    if (secret != NULL)
        printf("secret (shown once; send it as Authorization: Bearer): %s\n", secret);
    if (json_is_true(json_object_get(r, "has_jwk")))
        printf("signed SETs (application/secevent+jwt) with iss \"%s\" are checked with the "
               "given key\n",
               name);
    json_decref(r);
    return ZTBCTL_EXIT_OK;
}

static int pending(struct ztbctl *ctl)
{
    json_t *arr = NULL;
    int rc = ztbctl_get_list(ctl, "/v1/signal-actions", "actions", &arr);
    if (arr == NULL)
        return rc;
    static const char *const hdr[] = {"ID",    "STATUS",  "RESPONSE", "TARGET",
                                      "ENTRY", "SIGNALS", "CREATED"};
    struct ztbctl_table *t = ztbctl_table_new(7, hdr);
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        char when[32], target[320];
        ztbctl_fmt_time((int64_t)json_integer_value(json_object_get(a, "created")), when,
                        sizeof(when));
        snprintf(target, sizeof(target), "%s=%s", str(a, "target_kind"), str(a, "target"));
        const char *cells[] = {str(a, "id"), str(a, "status"), str(a, "response"),
                               target,       str(a, "entry"),  str(a, "signals"),
                               when};
        ztbctl_table_row(t, cells);
    }
    ztbctl_table_print(t, stdout);
    ztbctl_table_free(t);
    json_decref(arr);
    return ZTBCTL_EXIT_OK;
}

static int decide(struct ztbctl *ctl, const char *id, int confirm, const char *reason)
{
    size_t n = strlen(id);
    if (n == 0 || n > 39 ||
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n) {
        /* it goes into the URL path: no '.', '/', '%', space, ... */
        ztbctl_err("invalid signal or action id '%s' (sig_... or act_...; see ztbctl signals "
                   "list and ztbctl signals pending)",
                   id);
        return ZTBCTL_EXIT_USAGE;
    }
    if (reason != NULL && !ztbctl_utf8_arg(confirm ? "signals confirm" : "signals reject|dismiss",
                                           "--reason", reason))
        return ZTBCTL_EXIT_USAGE;
    int is_signal = strncmp(id, "sig_", 4) == 0;
    char path[128];
    if (is_signal)
        snprintf(path, sizeof(path), "/v1/signals/%s/outcome", id);
    else
        snprintf(path, sizeof(path), "/v1/signal-actions/%s/%s", id,
                 confirm ? "confirm" : "reject");
    json_t *body = json_object();
    if (is_signal)
        json_object_set_new(body, "outcome", json_string(confirm ? "confirmed" : "false_positive"));
    if (reason != NULL)
        json_object_set_new(body, "reason", json_string(reason));
    json_t *r = NULL;
    long status;
    int rc = ztbctl_admin(ctl, "POST", path, json_object_size(body) ? body : NULL, &r, &status);
    json_decref(body);
    if (rc != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(r);
        return ZTBCTL_EXIT_OK;
    }
    if (is_signal)
        printf("signal %s marked %s\n", id, confirm ? "confirmed" : "a false positive");
    else if (confirm)
        printf("action %s applied: %s %s\n", id, str(r, "response"), str(r, "target"));
    else
        printf("action %s rejected: nothing was applied\n", id);
    json_decref(r);
    return ZTBCTL_EXIT_OK;
}

static void print_ratio(const json_t *v)
{
    if (json_is_number(v))
        printf("  %6.2f", json_number_value(v));
    else
        printf("  %6s", "-");
}

static int stats_cmd(struct ztbctl *ctl)
{
    json_t *r = NULL;
    long status;
    if (ztbctl_admin(ctl, "GET", "/v1/signal-stats", NULL, &r, &status) != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(r);
        return ZTBCTL_EXIT_OK;
    }
    printf("%-32s %7s %7s %6s %8s %8s %8s %8s %8s %8s\n", "SOURCE", "SIGNALS", "ESCAL", "JUDGED",
           "PRECISN", "FP_RATE", "BRIER", "CAL_GAP", "CONT_P50", "CONT_P95");
    const char *k;
    json_t *v;
    json_t *all = json_object();
    json_object_update(all, json_object_get(r, "by"));
    json_object_set(all, "(all)", json_object_get(r, "total"));
    json_object_foreach(all, k, v)
    {
        printf("%-32s %7lld %7lld %6lld", k,
               (long long)json_integer_value(json_object_get(v, "signals")),
               (long long)json_integer_value(json_object_get(v, "escalations")),
               (long long)json_integer_value(json_object_get(v, "judged")));
        print_ratio(json_object_get(v, "precision"));
        print_ratio(json_object_get(v, "false_positive_rate"));
        print_ratio(json_object_get(v, "brier"));
        /* the largest |observed rate - mean confidence| over judged buckets */
        double gap = -1;
        size_t i;
        const json_t *b;
        json_array_foreach(json_object_get(v, "calibration"), i, b)
        {
            const json_t *o = json_object_get(b, "observed_rate");
            if (json_is_number(o)) {
                double d =
                    json_number_value(o) - json_number_value(json_object_get(b, "mean_confidence"));
                d = d < 0 ? -d : d;
                gap = d > gap ? d : gap;
            }
        }
        if (gap >= 0)
            printf("  %6.2f", gap);
        else
            printf("  %6s", "-");
        const json_t *c = json_object_get(v, "containment_s");
        if (json_is_number(json_object_get(c, "p50")))
            printf("  %7.0fs  %7.0fs\n", json_number_value(json_object_get(c, "p50")),
                   json_number_value(json_object_get(c, "p95")));
        else
            printf("  %8s  %8s\n", "-", "-");
    }
    json_decref(all);
    json_decref(r);
    return ZTBCTL_EXIT_OK;
}

/* `signals mode [--detector] WHO observe|enforce` */
static int mode_cmd(struct ztbctl *ctl, int argc, char **argv)
{
    int det = argc == 5 && strcmp(argv[2], "--detector") == 0;
    if (argc != (det ? 5 : 4)) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    const char *who = argv[det ? 3 : 2], *mode = argv[det ? 4 : 3];
    if (strcmp(mode, "observe") != 0 && strcmp(mode, "enforce") != 0) {
        ztbctl_err("signals mode: the mode is observe or enforce (got '%s')", mode);
        return ZTBCTL_EXIT_USAGE;
    }
    if (det ? !ztbctl_utf8_arg("signals mode", "--detector", who) : !source_name_ok(who))
        return ZTBCTL_EXIT_USAGE;
    json_t *body = json_pack("{s:s,s:s}", det ? "detector" : "source", who, "mode", mode);
    json_t *r = NULL;
    long status;
    int rc = ztbctl_admin(ctl, "POST", "/v1/signal-modes", body, &r, &status);
    json_decref(body);
    if (rc != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json)
        ztbctl_print_json(r);
    else {
        if (!ctl->quiet)
            printf("%s %s: %s\n", det ? "detector" : "source", who,
                   strcmp(mode, "observe") == 0
                       ? "observe mode (signals recorded, responses computed, none applied)"
                       : "enforce mode (responses applied)");
        json_decref(r);
    }
    return ZTBCTL_EXIT_OK;
}

static int modes_cmd(struct ztbctl *ctl)
{
    json_t *r = NULL;
    long status;
    if (ztbctl_admin(ctl, "GET", "/v1/signal-modes", NULL, &r, &status) != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(r);
        return ZTBCTL_EXIT_OK;
    }
    const char *k;
    json_t *v;
    size_t n = 0;
    json_object_foreach(json_object_get(r, "observe"), k, v)
    {
        printf("%-40s %s\n", k, json_string_value(v));
        n++;
    }
    if (n == 0 && !ctl->quiet)
        printf("every source and detector is in enforce mode\n");
    json_decref(r);
    return ZTBCTL_EXIT_OK;
}

/*
 * `signals show ID`: one signal from the broker's recent list (the newest
 * 1000), whole: JSON with -o json, otherwise one FIELD VALUE line per
 * member (objects and arrays as compact JSON). 1 if it is not there.
 */
static int signals_show(struct ztbctl *ctl, const char *id)
{
    if (strlen(id) > 128 || strpbrk(id, "/?&#% ") != NULL) {
        ztbctl_err("invalid signal id '%s'", id);
        return ZTBCTL_EXIT_USAGE;
    }
    json_t *r = NULL;
    long status;
    if (ztbctl_admin(ctl, "GET", "/v1/signals?limit=1000", NULL, &r, &status) != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    json_t *found = NULL, *s;
    size_t i;
    json_array_foreach(json_object_get(r, "signals"), i, s)
    {
        const char *sid = json_string_value(json_object_get(s, "id"));
        if (sid != NULL && strcmp(sid, id) == 0) {
            found = json_incref(s);
            break;
        }
    }
    json_decref(r);
    if (found == NULL) {
        ztbctl_err("no signal %s among the broker's 1000 most recent (ztbctl signals list)", id);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(found);
        return ZTBCTL_EXIT_OK;
    }
    if (ctl->output == ZTBCTL_OUT_NAME) {
        printf("%s\n", id);
        json_decref(found);
        return ZTBCTL_EXIT_OK;
    }
    static const char *const hdr[] = {"FIELD", "VALUE"};
    struct ztbctl_table *t = ztbctl_table_new(2, hdr);
    const char *k;
    json_t *v;
    json_object_foreach(found, k, v)
    {
        char when[32];
        char *text = NULL;
        const char *cell = when;
        if (strcmp(k, "received") == 0 && json_is_integer(v))
            ztbctl_fmt_time((int64_t)json_integer_value(v), when, sizeof(when));
        else if (json_is_string(v))
            cell = json_string_value(v);
        else
            cell = text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS |
                                            JSON_REAL_PRECISION(15));
        const char *row[] = {k, cell};
        ztbctl_table_row(t, row);
        free(text);
    }
    ztbctl_table_print(t, stdout);
    ztbctl_table_free(t);
    json_decref(found);
    return ZTBCTL_EXIT_OK;
}

int cmd_signals(struct ztbctl *ctl, int argc, char **argv)
{
    if (argc < 2 || ztbctl_wants_help(argc, argv, 1)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZTBCTL_EXIT_USAGE : ZTBCTL_EXIT_OK;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "list") == 0)
        return signals_list(ctl, argc, argv);
    if (strcmp(verb, "source") == 0 || strcmp(verb, "sources") == 0)
        return source_cmd(ctl, argc, argv);
    if (strcmp(verb, "show") == 0 && argc == 3)
        return signals_show(ctl, argv[2]);
    if (strcmp(verb, "pending") == 0 && argc == 2)
        return pending(ctl);
    if (strcmp(verb, "confirm") == 0 || strcmp(verb, "reject") == 0 ||
        strcmp(verb, "dismiss") == 0) {
        const char *reason = NULL;
        if (argc == 5 && strcmp(argv[3], "--reason") == 0)
            reason = argv[4];
        else if (argc == 4 && strncmp(argv[3], "--reason=", 9) == 0)
            reason = argv[3] + 9;
        else if (argc != 3) {
            usage(stderr);
            return ZTBCTL_EXIT_USAGE;
        }
        return decide(ctl, argv[2], verb[0] == 'c', reason);
    }
    if (strcmp(verb, "stats") == 0 && argc == 2)
        return stats_cmd(ctl);
    if (strcmp(verb, "mode") == 0)
        return mode_cmd(ctl, argc, argv);
    if (strcmp(verb, "modes") == 0 && argc == 2)
        return modes_cmd(ctl);
    if (strcmp(verb, "show") == 0 || strcmp(verb, "pending") == 0 || strcmp(verb, "stats") == 0 ||
        strcmp(verb, "modes") == 0) /* a known command, with the wrong arguments */
        ztbctl_err("signals %s: %s (see ztbctl signals --help)", verb,
                   verb[1] == 'h' ? "takes one signal id" : "takes no argument");
    else
        ztbctl_err("unknown signals command '%s' (see ztbctl signals --help)", verb);
    return ZTBCTL_EXIT_USAGE;
}
