/*
 * cmd_agent.c - `ztbctl agent ...`: register agents, issue join tokens,
 * disable and enable them, through the broker's admin API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztbctl.h"
#include "pki/spiffe.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ztbctl agent add NAME [--owner WHO] [--description TEXT] [--ttl SECONDS]\n"
            "                                                register NAME, print a join token\n"
            "       ztbctl agent list                        all agents\n"
            "       ztbctl agent inventory                   every agent: owner, description,\n"
            "                                                rules naming it, audiences, last\n"
            "                                                seen, tokens in the last day,\n"
            "                                                identity expiry, status; and the\n"
            "                                                unknown clients gateways refused\n"
            "       ztbctl agent show NAME                   one agent: status, generation,\n"
            "                                                its identity document (serial,\n"
            "                                                expiry), last seen, tokens issued\n"
            "                                                and refused in the last hour\n"
            "       ztbctl agent disable NAME                issue nothing more to NAME\n"
            "       ztbctl agent enable NAME                 resume issuing to NAME\n"
            "       ztbctl agent delete NAME                 revoke all it holds and delete it\n"
            "                                                (its generations are never reused)\n"
            "       ztbctl agent join-token NAME [--ttl S]   a new one-time join token\n"
            "       ztbctl agent baseline NAME               what NAME did while learning, and\n"
            "                                                what is new since (-o json: all)\n"
            "       ztbctl agent baseline NAME --relearn [--for SECONDS]\n"
            "                                                forget it and learn again\n"
            "\n"
            "Names: 1-63 of a-z 0-9 . _ - starting with a letter or digit; the agent's\n"
            "identity is spiffe://TRUST_DOMAIN/agent/NAME. A join token is shown once,\n"
            "is stored only as a hash, and enrolls the agent once before it expires.\n");
}

static const char *yesno(json_t *o, const char *k)
{
    return json_is_true(json_object_get(o, k)) ? "yes" : "no";
}

static void print_agents(json_t *arr)
{
    static const char *const hdr[] = {"NAME",     "STATUS",  "GEN",      "QUARANTINED",
                                      "APPROVAL", "CREATED", "SPIFFE ID"};
    struct ztbctl_table *t = ztbctl_table_new(7, hdr);
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        char gen[24], created[32];
        snprintf(gen, sizeof(gen), "%lld",
                 (long long)json_integer_value(json_object_get(a, "generation")));
        ztbctl_fmt_time((int64_t)json_integer_value(json_object_get(a, "created")), created,
                        sizeof(created));
        const char *cells[] = {json_string_value(json_object_get(a, "name")),
                               json_string_value(json_object_get(a, "status")),
                               gen,
                               yesno(a, "quarantined"),
                               yesno(a, "approval_required"),
                               created,
                               json_string_value(json_object_get(a, "spiffe_id"))};
        ztbctl_table_row(t, cells);
    }
    ztbctl_table_print(t, stdout);
    ztbctl_table_free(t);
}

/* A Unix time member of o for people: RFC 3339 UTC, or none. */
static void time_cell(json_t *o, const char *k, const char *none, char *out, size_t cap)
{
    json_t *v = json_object_get(o, k);
    if (json_is_integer(v) && json_integer_value(v) > 0)
        ztbctl_fmt_time((int64_t)json_integer_value(v), out, cap);
    else
        snprintf(out, cap, "%s", none);
}

/* String member k of o, or dflt. */
static const char *str_or(json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : dflt;
}

/* `agent show` for people: one "FIELD  value" line each (a two-column
 * table, so --no-headers and -o name apply); then decref r. */
static void print_agent(const struct ztbctl *ctl, json_t *r)
{
    if (ctl->output == ZTBCTL_OUT_NAME) {
        printf("%s\n", json_string_value(json_object_get(r, "name")));
        json_decref(r);
        return;
    }
    char gen[24], created[32], expires[32], cur[8];
    snprintf(gen, sizeof(gen), "%lld",
             (long long)json_integer_value(json_object_get(r, "generation")));
    time_cell(r, "created", "-", created, sizeof(created));
    time_cell(r, "identity_expires", "none", expires, sizeof(expires));
    snprintf(cur, sizeof(cur), "%s", yesno(r, "identity_current"));
    char last[32], day[24], hour[24], denied[24];
    time_cell(r, "last_seen", "never", last, sizeof(last));
    snprintf(day, sizeof(day), "%lld",
             (long long)json_integer_value(json_object_get(r, "tokens_last_day")));
    snprintf(hour, sizeof(hour), "%lld",
             (long long)json_integer_value(json_object_get(r, "tokens_last_hour")));
    snprintf(denied, sizeof(denied), "%lld",
             (long long)json_integer_value(json_object_get(r, "denied_last_hour")));
    const char *x5t = json_string_value(json_object_get(r, "identity_x5t"));
    static const char *const hdr[] = {"FIELD", "VALUE"};
    const char *rows[][2] = {
        {"name", json_string_value(json_object_get(r, "name"))},
        {"spiffe_id", json_string_value(json_object_get(r, "spiffe_id"))},
        {"status", json_string_value(json_object_get(r, "status"))},
        {"generation", gen},
        {"quarantined", yesno(r, "quarantined")},
        {"approval_required", yesno(r, "approval_required")},
        {"created", created},
        {"identity_current", cur},
        {"identity_x5t#S256", x5t ? x5t : "none"},
        {"identity_serial", str_or(r, "identity_serial", "none")},
        {"identity_expires", expires},
        {"owner", str_or(r, "owner", "-")},
        {"description", str_or(r, "description", "-")},
        {"last_seen", last},
        {"tokens_last_day", day},
        {"tokens_last_hour", hour},
        {"denied_last_hour", denied},
    };
    struct ztbctl_table *t = ztbctl_table_new(2, hdr);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ztbctl_table_row(t, rows[i]);
    ztbctl_table_print(t, stdout);
    ztbctl_table_free(t);
    json_decref(r);
}

/* A --ttl value: 1..7 days in seconds, or -1. */
static long ttl_value(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < 1 || n > 7 * 86400)
        return -1;
    return n;
}

static void print_join(json_t *r)
{
    printf("join token (shown once, valid %llds): %s\n",
           (long long)json_integer_value(json_object_get(r, "join_token_expires_in")),
           json_string_value(json_object_get(r, "join_token")));
}

/* The members of array arr joined by ',' into out ("-" if none). */
static void join_cell(json_t *arr, char *out, size_t cap)
{
    size_t i, used = 0;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        int n = snprintf(out + used, cap - used, "%s%s", used ? "," : "", s ? s : "?");
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
    if (used == 0)
        snprintf(out, cap, "-");
}

/* `agent inventory`: every agent, then the unknown clients. */
static int inventory(struct ztbctl *ctl)
{
    json_t *r = NULL;
    long status;
    if (ztbctl_admin(ctl, "GET", "/v1/inventory", NULL, &r, &status) != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(r);
        return ZTBCTL_EXIT_OK;
    }
    static const char *const hdr[] = {"NAME",      "OWNER",     "DESCRIPTION", "RULES",
                                      "AUDIENCES", "LAST SEEN", "TOKENS/DAY",  "IDENTITY EXPIRES",
                                      "STATUS"};
    struct ztbctl_table *t = ztbctl_table_new(9, hdr);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(r, "agents"), i, a)
    {
        char rules[256], auds[256], last[32], day[24], exp[32];
        join_cell(json_object_get(a, "rules"), rules, sizeof(rules));
        join_cell(json_object_get(a, "audiences"), auds, sizeof(auds));
        time_cell(a, "last_seen", "never", last, sizeof(last));
        time_cell(a, "identity_expires", "none", exp, sizeof(exp));
        snprintf(day, sizeof(day), "%lld",
                 (long long)json_integer_value(json_object_get(a, "tokens_last_day")));
        const char *st = json_is_true(json_object_get(a, "quarantined")) ? "quarantined"
                                                                         : str_or(a, "status", "?");
        const char *cells[] = {str_or(a, "name", "?"),
                               str_or(a, "owner", "-"),
                               str_or(a, "description", "-"),
                               rules,
                               auds,
                               last,
                               day,
                               exp,
                               st};
        ztbctl_table_row(t, cells);
    }
    ztbctl_table_print(t, stdout);
    ztbctl_table_free(t);
    json_t *unknown = json_object_get(r, "unknown_clients");
    if (json_array_size(unknown) > 0) {
        printf("\nunknown AI clients (refused at gateways):\n");
        static const char *const uh[] = {"SOURCE", "REASON", "REFUSED", "LAST SEEN"};
        t = ztbctl_table_new(4, uh);
        json_array_foreach(unknown, i, a)
        {
            char n[24], last[32];
            snprintf(n, sizeof(n), "%lld",
                     (long long)json_integer_value(json_object_get(a, "count")));
            time_cell(a, "last_seen", "-", last, sizeof(last));
            const char *cells[] = {str_or(a, "source", "?"), str_or(a, "reason", "?"), n, last};
            ztbctl_table_row(t, cells);
        }
        ztbctl_table_print(t, stdout);
        ztbctl_table_free(t);
    }
    json_decref(r);
    return ZTBCTL_EXIT_OK;
}

/* The values of one kind of a baseline as table rows. */
static void baseline_rows(struct ztbctl_table *t, const char *kind, json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char when[40];
        json_t *first = json_object_get(v, "first_seen");
        time_cell(v, first ? "first_seen" : "learned_at", "-", when, sizeof(when));
        const char *cells[] = {kind, json_string_value(json_object_get(v, "value")),
                               first ? "new after learning" : "learned", when};
        ztbctl_table_row(t, cells);
    }
}

/* `agent baseline NAME [--relearn [--for S]]`: args are what follows NAME. */
static int baseline(struct ztbctl *ctl, const char *name, int argc, char **argv)
{
    int relearn = 0;
    long learn = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--relearn") == 0) {
            relearn = 1;
        } else if (strcmp(argv[i], "--for") == 0 && i + 1 < argc) {
            char *end;
            learn = strtol(argv[++i], &end, 10);
            if (*end != '\0' || learn < 1 || learn > 366L * 86400) {
                ztbctl_err("--for takes 1..31622400 seconds");
                return ZTBCTL_EXIT_USAGE;
            }
        } else {
            ztbctl_err("agent baseline: unknown argument '%s' (see ztbctl agent --help)", argv[i]);
            return ZTBCTL_EXIT_USAGE;
        }
    }
    if (learn > 0 && !relearn) {
        ztbctl_err("--for goes with --relearn");
        return ZTBCTL_EXIT_USAGE;
    }
    char path[256];
    snprintf(path, sizeof(path), "/v1/agents/%s/baseline", name);
    json_t *r = NULL, *body = NULL;
    long status;
    if (relearn) {
        body = json_pack("{s:b}", "relearn", 1);
        if (learn > 0)
            json_object_set_new(body, "for", json_integer(learn));
    }
    int rc = ztbctl_admin(ctl, relearn ? "POST" : "GET", path, body, &r, &status);
    json_decref(body);
    if (rc != 0) {
        json_decref(r);
        return ZTBCTL_EXIT_FAIL;
    }
    if (ctl->json) {
        ztbctl_print_json(r);
        return ZTBCTL_EXIT_OK;
    }
    char since[40], until[40], last[40];
    time_cell(r, "learning_since", "-", since, sizeof(since));
    time_cell(r, "learning_until", "-", until, sizeof(until));
    time_cell(r, "last_seen", "never", last, sizeof(last));
    printf("agent %s: %s (learning %s .. %s), %lld tokens learned over %lld day(s); "
           "last seen %s, %lld tokens in the last day\n",
           name, json_string_value(json_object_get(r, "phase")), since, until,
           (long long)json_integer_value(json_object_get(r, "tokens_learned")),
           (long long)json_integer_value(json_object_get(r, "days")), last,
           (long long)json_integer_value(json_object_get(r, "tokens_last_day")));
    static const char *const hdr[] = {"KIND", "VALUE", "BASELINE", "SINCE"};
    struct ztbctl_table *t = ztbctl_table_new(4, hdr);
    baseline_rows(t, "action", json_object_get(r, "actions"));
    baseline_rows(t, "audience", json_object_get(r, "audiences"));
    baseline_rows(t, "resource_prefix", json_object_get(r, "resource_prefixes"));
    json_t *hours = json_object_get(r, "hours");
    for (size_t h = 0; h < json_array_size(hours); h++) {
        long long n = (long long)json_integer_value(json_array_get(hours, h));
        if (n == 0)
            continue;
        char hour[32], tokens[48];
        snprintf(hour, sizeof(hour), "%02zu:00Z", h);
        snprintf(tokens, sizeof(tokens), "%lld tokens learned", n);
        const char *cells[] = {"hour", hour, tokens, "-"};
        ztbctl_table_row(t, cells);
    }
    ztbctl_table_print(t, stdout);
    ztbctl_table_free(t);
    json_decref(r);
    return ZTBCTL_EXIT_OK;
}

int cmd_agent(struct ztbctl *ctl, int argc, char **argv)
{
    if (argc < 2 || ztbctl_wants_help(argc, argv, 1)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZTBCTL_EXIT_USAGE : ZTBCTL_EXIT_OK;
    }
    const char *verb = argv[1];
    json_t *r = NULL;
    long status;
    char path[256];
    if (strcmp(verb, "list") == 0 && argc == 2) {
        if (ztbctl_admin(ctl, "GET", "/v1/agents", NULL, &r, &status) != 0)
            goto fail;
        if (ctl->json)
            ztbctl_print_json(json_incref(json_object_get(r, "agents")));
        else
            print_agents(json_object_get(r, "agents"));
        json_decref(r);
        return ZTBCTL_EXIT_OK;
    }
    if (strcmp(verb, "inventory") == 0 && argc == 2)
        return inventory(ctl);
    if (strcmp(verb, "list") == 0 || strcmp(verb, "inventory") == 0) {
        ztbctl_err(argv[2][0] == '-' ? "agent %s: unknown option '%s' (see ztbctl agent --help)"
                                     : "agent %s takes no argument: '%s' (see ztbctl agent --help)",
                   verb, argv[2]);
        return ZTBCTL_EXIT_USAGE;
    }
    if (argc < 3) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    const char *name = argv[2];
    if (!ztb_agent_name_ok(name)) {
        ztbctl_err("invalid agent name '%s' (1-63 of a-z 0-9 . _ - starting with a letter or "
                   "digit)",
                   name);
        return ZTBCTL_EXIT_USAGE;
    }
    if (strcmp(verb, "add") == 0 || strcmp(verb, "join-token") == 0) {
        /* options in any order; --owner and --description for add only */
        const char *owner = NULL, *description = NULL;
        long ttl = 0;
        for (int i = 3; i < argc; i++) {
            int is_ttl = strcmp(argv[i], "--ttl") == 0;
            int is_meta = verb[0] == 'a' && (strcmp(argv[i], "--owner") == 0 ||
                                             strcmp(argv[i], "--description") == 0);
            if (!is_ttl && !is_meta) {
                ztbctl_err("agent %s: unknown argument '%s' (agent %s NAME%s [--ttl S]; see "
                           "ztbctl agent --help)",
                           verb, argv[i], verb,
                           verb[0] == 'a' ? " [--owner X] [--description Y]" : "");
                return ZTBCTL_EXIT_USAGE;
            }
            if (i + 1 >= argc) {
                ztbctl_err("agent %s: %s needs a value", verb, argv[i]);
                return ZTBCTL_EXIT_USAGE;
            }
            const char *v = argv[++i];
            if (is_ttl && (ttl = ttl_value(v)) < 0) {
                ztbctl_err("--ttl takes 1..604800 seconds (got '%s')", v);
                return ZTBCTL_EXIT_USAGE;
            }
            if (is_meta &&
                !ztbctl_utf8_arg(verb[0] == 'a' ? "agent add" : "agent join-token", argv[i - 1], v))
                return ZTBCTL_EXIT_USAGE;
            if (strcmp(argv[i - 1], "--owner") == 0)
                owner = v;
            else if (strcmp(argv[i - 1], "--description") == 0)
                description = v;
        }
        json_t *body = json_object();
        if (ttl > 0)
            json_object_set_new(body, "ttl", json_integer(ttl));
        if (owner != NULL)
            json_object_set_new(body, "owner", json_string(owner));
        if (description != NULL)
            json_object_set_new(body, "description", json_string(description));
        int rc;
        if (verb[0] == 'a') {
            json_object_set_new(body, "name", json_string(name));
            rc = ztbctl_admin(ctl, "POST", "/v1/agents", body, &r, &status);
        } else {
            snprintf(path, sizeof(path), "/v1/agents/%s/join-tokens", name);
            rc = ztbctl_admin(ctl, "POST", path, body, &r, &status);
        }
        json_decref(body);
        if (rc != 0)
            goto fail;
        if (ctl->json) {
            ztbctl_print_json(r);
        } else {
            if (verb[0] == 'a')
                printf("agent %s added: %s\n", name,
                       json_string_value(json_object_get(r, "spiffe_id")));
            print_join(r);
            json_decref(r);
        }
        return ZTBCTL_EXIT_OK;
    }
    if (strcmp(verb, "baseline") == 0)
        return baseline(ctl, name, argc - 3, argv + 3);
    if (argc != 3) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    if (strcmp(verb, "show") == 0) {
        snprintf(path, sizeof(path), "/v1/agents/%s", name);
        if (ztbctl_admin(ctl, "GET", path, NULL, &r, &status) != 0)
            goto fail;
        if (ctl->json)
            ztbctl_print_json(r);
        else
            print_agent(ctl, r);
        return ZTBCTL_EXIT_OK;
    } else if (strcmp(verb, "delete") == 0) {
        snprintf(path, sizeof(path), "/v1/agents/%s", name);
        if (ztbctl_admin(ctl, "DELETE", path, NULL, &r, &status) != 0)
            goto fail;
        if (ctl->json) {
            ztbctl_print_json(r); /* frees r */
            return ZTBCTL_EXIT_OK;
        }
        printf("deleted %s (generation %lld retired: its tokens and identities stay invalid)\n",
               name, (long long)json_integer_value(json_object_get(r, "retired_generation")));
        json_decref(r);
        return ZTBCTL_EXIT_OK;
    } else if (strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0) {
        snprintf(path, sizeof(path), "/v1/agents/%s/%s", name, verb);
        if (ztbctl_admin(ctl, "POST", path, NULL, &r, &status) != 0)
            goto fail;
    } else {
        ztbctl_err("unknown agent command '%s' (see ztbctl agent --help)", verb);
        return ZTBCTL_EXIT_USAGE;
    }
    if (ctl->json) {
        ztbctl_print_json(r);
    } else {
        json_t *arr = json_array();
        json_array_append_new(arr, r);
        print_agents(arr);
        json_decref(arr);
    }
    return ZTBCTL_EXIT_OK;
fail:
    json_decref(r);
    return ZTBCTL_EXIT_FAIL;
}
