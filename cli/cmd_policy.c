/*
 * cmd_policy.c - `ztbctl policy`: check a policy file, explain a decision.
 *
 *   ztbctl policy check FILE
 *   ztbctl policy explain FILE --agent A --action S:V --audience AUD
 *                              [--resource R] [--context JSON|@FILE]
 *   ztbctl policy signals FILE --signal TYPE --severity S [--confidence C]
 *                              [--agent A]
 *
 * These work on files and need no broker: an operator checks a policy before
 * installing it, and asks "what can this agent do?" of the exact file the
 * broker would load (the same loader and evaluator). Problems are printed one
 * per line as FILE:LINE:COLUMN: or FILE: RULE: FIELD: so editors can jump to
 * them. With --json every command prints one JSON object instead.
 *
 * Must never: evaluate with anything but the broker's own loader and
 * evaluator, or print request text with raw control characters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy.h"
#include "ztbctl.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ztbctl policy check FILE\n"
            "       ztbctl policy explain FILE --agent A --action SERVICE:VERB --audience AUD\n"
            "                             [--resource R] [--context JSON|@FILE]\n"
            "       ztbctl policy signals FILE --signal TYPE --severity LEVEL\n"
            "                             [--confidence 0..1] [--agent A]\n"
            "       ztbctl policy diff OLD NEW\n"
            "       ztbctl policy reload\n"
            "       ztbctl policy shadow load FILE|report|promote|clear\n"
            "\n"
            "check    load FILE as the broker would; print its problems or a summary\n"
            "explain  the decision for one request and why: the rule that decided, why\n"
            "         the others did not apply, and where each obligation comes from\n"
            "signals  the anomaly responses FILE asks for when such a signal arrives\n"
            "diff     which rules OLD -> NEW adds, removes and changes, and which other\n"
            "         sections change (key order and spacing are no change)\n"
            "reload   make the running broker load its policy file again (admin API);\n"
            "         a refused file leaves the old policy in force\n"
            "shadow   run a candidate policy beside the enforced one on live traffic,\n"
            "         report what it would decide differently, promote or clear it\n"
            "         (ztbctl policy shadow --help)\n"
            "\n"
            "--context is a JSON object with any of:\n"
            "  \"time\": \"2025-06-04T10:00:00Z\" or Unix seconds (default: now)\n"
            "  \"act\": the subject the agent acts for (delegation)\n"
            "  \"act_restricted\": true if the subject token's may_act named the agent\n"
            "  \"source_ip\": \"10.20.1.2\"\n"
            "  \"authorization_details\": [{\"type\": \"payment\", \"amount\": 20}]\n"
            "\n"
            "Exit status: 0 the file loads (check) or the question was answered (explain,\n"
            "signals; whatever the decision), 1 the file is refused, 2 usage error.\n");
}

/* Print the load problems to stderr (or into a JSON array). */
static void print_problems(const char *file, const policy_diag *d, json_t *arr)
{
    ztb_buf b;
    ztb_buf_init(&b, 1 << 16);
    for (size_t i = 0; i < d->n; i++) {
        const policy_diag_msg *m = &d->msgs[i];
        if (arr != NULL) {
            json_t *o = json_object();
            if (m->line > 0) {
                json_object_set_new(o, "line", json_integer(m->line));
                json_object_set_new(o, "column", json_integer(m->column));
            }
            if (m->where != NULL)
                json_object_set_new(o, "where", json_string(m->where));
            if (m->field != NULL)
                json_object_set_new(o, "field", json_string(m->field));
            json_object_set_new(o, "message", json_string(m->text));
            json_array_append_new(arr, o);
            continue;
        }
        ztb_buf_reset(&b);
        policy_diag_format(m, &b);
        fprintf(stderr, "%s:%s%s\n", file, m->line > 0 ? "" : " ", ztb_buf_cstr(&b));
    }
    if (arr == NULL && d->dropped > 0)
        fprintf(stderr, "%s: ... and %zu more problems\n", file, d->dropped);
    ztb_buf_free(&b);
}

/* Load file; on failure print why and return NULL. */
static policy *load(struct ztbctl *ctl, const char *file)
{
    policy_diag d;
    policy_diag_init(&d);
    policy *p = NULL;
    ztb_err e = policy_load_file(file, &p, &d);
    if (e != ZTB_OK) {
        if (ctl->json) {
            json_t *arr = json_array();
            print_problems(file, &d, arr);
            ztbctl_print_json(json_pack("{s:b, s:s, s:s, s:i, s:o}", "ok", 0, "file", file, "error",
                                        ztb_err_name(e), "problems",
                                        (json_int_t)policy_diag_count(&d), "messages", arr));
        } else {
            print_problems(file, &d, NULL);
            ztbctl_err("%s: refused (%zu problem%s)", file, policy_diag_count(&d),
                       policy_diag_count(&d) == 1 ? "" : "s");
        }
    }
    policy_diag_free(&d);
    return p;
}

static int check(struct ztbctl *ctl, int argc, char **argv)
{
    if (argc != 3) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    const char *file = argv[2];
    policy *p = load(ctl, file);
    if (p == NULL)
        return ZTBCTL_EXIT_FAIL;
    if (ctl->json) {
        ztbctl_print_json(json_pack(
            "{s:b, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i}", "ok", 1, "file", file, "digest",
            policy_digest(p), "trust_domain", policy_trust_domain(p), "rules",
            (json_int_t)policy_rule_count(p), "groups", (json_int_t)policy_group_count(p), "agents",
            (json_int_t)policy_agent_count(p), "anomaly_responses",
            (json_int_t)policy_response_count(p), "max_ttl", (json_int_t)policy_max_ttl(p)));
    } else if (!ctl->quiet) {
        printf("%s: OK\n"
               "  sha256             %s\n"
               "  trust domain       %s\n"
               "  rules              %zu\n"
               "  groups             %zu\n"
               "  agents named       %zu\n"
               "  anomaly responses  %zu\n"
               "  max_ttl            %u s\n",
               file, policy_digest(p), policy_trust_domain(p), policy_rule_count(p),
               policy_group_count(p), policy_agent_count(p), policy_response_count(p),
               policy_max_ttl(p));
    }
    policy_unref(p);
    return ZTBCTL_EXIT_OK;
}

/* The value of --name (as "--name V" or "--name=V") at argv[*i], advancing *i. */
static int opt(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *out = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] == '\0' && *i + 1 < argc) {
        *out = argv[++*i];
        return 1;
    }
    return 0;
}

/* Read --context (inline JSON, or @FILE). NULL after printing why. */
static json_t *read_context(const char *arg)
{
    json_error_t e;
    json_t *j = arg[0] == '@' ? json_load_file(arg + 1, JSON_REJECT_DUPLICATES, &e)
                              : json_loads(arg, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        ztbctl_err("--context: %d:%d: %s", e.line, e.column, e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        ztbctl_err("--context must be a JSON object");
        json_decref(j);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, "time") != 0 && strcmp(k, "act") != 0 && strcmp(k, "act_restricted") != 0 &&
            strcmp(k, "source_ip") != 0 && strcmp(k, "authorization_details") != 0) {
            ztbctl_err("--context: unknown field \"%s\" (time, act, act_restricted, source_ip, "
                       "authorization_details)",
                       k);
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

/* Fill ctx from the --context object; 0 after printing why on a bad value. */
static int apply_context(json_t *c, policy_context *ctx)
{
    ctx->now = (int64_t)time(NULL);
    if (c == NULL)
        return 1;
    json_t *t = json_object_get(c, "time");
    if (json_is_integer(t)) {
        ctx->now = json_integer_value(t);
    } else if (json_is_string(t)) {
        if (policy_parse_time(json_string_value(t), &ctx->now) != ZTB_OK) {
            ztbctl_err("--context: time must be \"YYYY-MM-DDTHH:MM:SSZ\" or Unix seconds");
            return 0;
        }
    } else if (t != NULL) {
        ztbctl_err("--context: time must be \"YYYY-MM-DDTHH:MM:SSZ\" or Unix seconds");
        return 0;
    }
    json_t *act = json_object_get(c, "act");
    if (act != NULL && !json_is_string(act)) {
        ztbctl_err("--context: act must be a string");
        return 0;
    }
    ctx->act = json_string_value(act);
    json_t *ar = json_object_get(c, "act_restricted");
    if (ar != NULL && !json_is_boolean(ar)) {
        ztbctl_err("--context: act_restricted must be true or false");
        return 0;
    }
    ctx->act_restricted = json_is_true(ar);
    json_t *ip = json_object_get(c, "source_ip");
    if (ip != NULL && policy_ip_parse(json_string_value(ip), &ctx->source) != ZTB_OK) {
        ztbctl_err("--context: source_ip must be an IPv4 or IPv6 address");
        return 0;
    }
    ctx->authorization_details = json_object_get(c, "authorization_details");
    return 1;
}

static int explain(struct ztbctl *ctl, int argc, char **argv)
{
    const char *file = NULL, *agent = NULL, *action = NULL, *audience = NULL, *resource = "",
               *context = NULL;
    for (int i = 2; i < argc; i++) {
        if (opt(argc, argv, &i, "--agent", &agent) || opt(argc, argv, &i, "--action", &action) ||
            opt(argc, argv, &i, "--audience", &audience) ||
            opt(argc, argv, &i, "--resource", &resource) ||
            opt(argc, argv, &i, "--context", &context))
            continue;
        if (argv[i][0] == '-' || file != NULL) {
            ztbctl_err("policy explain: unexpected argument '%s'", argv[i]);
            usage(stderr);
            return ZTBCTL_EXIT_USAGE;
        }
        file = argv[i];
    }
    if (file == NULL || agent == NULL || action == NULL || audience == NULL) {
        ztbctl_err("policy explain needs FILE, --agent, --action and --audience");
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    json_t *c = context ? read_context(context) : NULL;
    if (context != NULL && c == NULL)
        return ZTBCTL_EXIT_USAGE;
    policy_request req = {
        .agent = agent, .action = action, .audience = audience, .resource = resource};
    if (!apply_context(c, &req.ctx)) {
        json_decref(c);
        return ZTBCTL_EXIT_USAGE;
    }
    policy *p = load(ctl, file);
    if (p == NULL) {
        json_decref(c);
        return ZTBCTL_EXIT_FAIL;
    }
    json_t *ex = NULL;
    ztb_err e = policy_explain(p, &req, &ex);
    int rc = ZTBCTL_EXIT_OK;
    if (e != ZTB_OK) {
        ztbctl_err("explain: %s", ztb_strerror(e));
        rc = ZTBCTL_EXIT_FAIL;
    } else if (ctl->json) {
        ztbctl_print_json(ex);
        ex = NULL;
    } else {
        ztb_buf b;
        ztb_buf_init(&b, 1 << 22);
        policy_explain_text(ex, &b);
        fputs(ztb_buf_cstr(&b), stdout);
        ztb_buf_free(&b);
    }
    json_decref(ex);
    json_decref(c);
    policy_unref(p);
    return rc;
}

static int signals(struct ztbctl *ctl, int argc, char **argv)
{
    const char *file = NULL, *agent = NULL, *signal = NULL, *sev = NULL, *conf = "1";
    for (int i = 2; i < argc; i++) {
        if (opt(argc, argv, &i, "--agent", &agent) || opt(argc, argv, &i, "--signal", &signal) ||
            opt(argc, argv, &i, "--severity", &sev) || opt(argc, argv, &i, "--confidence", &conf))
            continue;
        if (argv[i][0] == '-' || file != NULL) {
            ztbctl_err("policy signals: unexpected argument '%s'", argv[i]);
            usage(stderr);
            return ZTBCTL_EXIT_USAGE;
        }
        file = argv[i];
    }
    policy_severity severity;
    char *end = NULL;
    errno = 0;
    double confidence = strtod(conf, &end);
    if (file == NULL || signal == NULL || sev == NULL ||
        policy_severity_parse(sev, &severity) != ZTB_OK || errno != 0 || *end != '\0' ||
        !(confidence >= 0 && confidence <= 1)) {
        ztbctl_err("policy signals needs FILE, --signal TYPE, --severity "
                   "low|medium|high|critical and a --confidence from 0 to 1");
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    policy *p = load(ctl, file);
    if (p == NULL)
        return ZTBCTL_EXIT_FAIL;
    policy_signal_response r[64];
    size_t n = 0;
    ztb_err e = policy_signal_responses(p, agent, signal, severity, confidence, r, 64, &n);
    if (e != ZTB_OK && e != ZTB_ERR_TOO_LARGE) {
        ztbctl_err("signals: %s (check --agent and --signal)", ztb_strerror(e));
        policy_unref(p);
        return ZTBCTL_EXIT_USAGE;
    }
    if (n > 64)
        n = 64;
    if (ctl->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:i, s:b}", "id", r[i].id,
                                                 "response", policy_response_name(r[i].response),
                                                 "independent_signals",
                                                 (json_int_t)r[i].independent_signals, "window",
                                                 (json_int_t)r[i].window, "operator_confirmation",
                                                 r[i].operator_confirmation));
        ztbctl_print_json(json_pack("{s:s, s:o}", "signal", signal, "responses", arr));
    } else if (n == 0) {
        printf("no anomaly response applies\n");
    } else {
        static const char *const head[] = {"RESPONSE", "ENTRY", "NEEDS"};
        struct ztbctl_table *t = ztbctl_table_new(3, head);
        for (size_t i = 0; i < n; i++) {
            char needs[96];
            if (r[i].independent_signals > 1)
                snprintf(needs, sizeof(needs), "%u independent signals in %u s%s",
                         r[i].independent_signals, r[i].window,
                         r[i].operator_confirmation ? " + an operator" : "");
            else
                snprintf(needs, sizeof(needs), "%s",
                         r[i].operator_confirmation ? "an operator's confirmation" : "-");
            const char *cells[3] = {policy_response_name(r[i].response), r[i].id, needs};
            ztbctl_table_row(t, cells);
        }
        ztbctl_table_print(t, stdout);
        ztbctl_table_free(t);
    }
    policy_unref(p);
    return ZTBCTL_EXIT_OK;
}

/* Which rules and sections differ between two files. */
static int diff(struct ztbctl *ctl, int argc, char **argv)
{
    if (argc != 4) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    policy *a = load(ctl, argv[2]);
    policy *b = a ? load(ctl, argv[3]) : NULL;
    json_t *d = NULL;
    int rc = ZTBCTL_EXIT_FAIL;
    if (b != NULL && policy_diff(a, b, &d) != ZTB_OK)
        ztbctl_err("out of memory");
    if (d != NULL && ctl->json) {
        ztbctl_print_json(json_incref(d));
        rc = ZTBCTL_EXIT_OK;
    } else if (d != NULL) {
        static const char *const keys[] = {"rules_added", "rules_removed", "rules_changed",
                                           "sections_changed"};
        size_t shown = 0;
        for (size_t k = 0; k < 4; k++) {
            size_t i;
            const json_t *v;
            json_array_foreach(json_object_get(d, keys[k]), i, v)
            {
                printf("%-17s %s\n", keys[k], json_string_value(v));
                shown++;
            }
        }
        if (shown == 0 && !ctl->quiet)
            printf("no change in rules or sections\n");
        rc = ZTBCTL_EXIT_OK;
    }
    json_decref(d);
    policy_unref(a);
    policy_unref(b);
    return rc;
}

/* Ask the running broker to reload its policy file. */
static int reload(struct ztbctl *ctl)
{
    json_t *r = NULL;
    long status;
    int rc = ztbctl_admin(ctl, "POST", "/v1/policy/reload", NULL, &r, &status);
    if (rc != 0) {
        /* the broker's list of problems, one per line */
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(r, "problems"), i, m)
        {
            fprintf(stderr, "  %s\n", json_string_value(m));
        }
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json)
        ztbctl_print_json(r);
    else {
        if (!ctl->quiet)
            printf("policy reloaded (digest %s)\n",
                   json_string_value(json_object_get(r, "digest")));
        json_decref(r);
    }
    return ZTBCTL_EXIT_OK;
}

int cmd_policy(struct ztbctl *ctl, int argc, char **argv)
{
    if (argc < 2 || ztbctl_wants_help(argc, argv, 1)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZTBCTL_EXIT_USAGE : ZTBCTL_EXIT_OK;
    }
    if (strcmp(argv[1], "check") == 0)
        return check(ctl, argc, argv);
    if (strcmp(argv[1], "explain") == 0)
        return explain(ctl, argc, argv);
    if (strcmp(argv[1], "signals") == 0)
        return signals(ctl, argc, argv);
    if (strcmp(argv[1], "reload") == 0 && argc == 2)
        return reload(ctl);
    if (strcmp(argv[1], "shadow") == 0)
        return cmd_policy_shadow(ctl, argc - 1, argv + 1);
    if (strcmp(argv[1], "diff") == 0)
        return diff(ctl, argc, argv);
    ztbctl_err("policy: unknown command '%s' (check, explain, signals, diff, reload, shadow)",
               argv[1]);
    return ZTBCTL_EXIT_USAGE;
}
