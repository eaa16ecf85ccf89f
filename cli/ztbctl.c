/*
 * ztbctl.c - the operators' tool: global options and command dispatch.
 *
 *   ztbctl [--socket PATH] [-o json|wide|name] [--no-headers] [--quiet] COMMAND [ARGS...]
 *
 * Commands that manage a running broker talk to its admin API over a unix
 * socket (file permissions are the access control). Commands that work on
 * files (keys, ca, policy check/explain) need no broker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/secret.h"
#include "ztbctl.h"

#ifndef ZTB_VERSION
#define ZTB_VERSION "unknown"
#endif

#define DEFAULT_SOCKET "/var/lib/ztb/admin.sock"

static const struct ztbctl_cmd commands[] = {
    {"agent", "register agents, join tokens, disable / enable, inventory, baselines", cmd_agent},
    {"revoke", "revoke a token, an agent's tokens, an audience, a signing key", cmd_revoke},
    {"quarantine", "issue no new tokens to an agent", cmd_quarantine},
    {"release", "lift an agent's quarantine and approval requirement", cmd_release},
    {"signals", "anomaly signals, their sources, responses awaiting an operator", cmd_signals},
    {"approvals", "token requests waiting for a human: list, show, approve, deny, watch",
     cmd_approvals},
    {"approvers", "approver groups: list, add, remove", cmd_approvers},
    {"keys", "manage the signing key store (init, list, rotate, retire, prune)", cmd_keys},
    {"ca", "manage the agent CA (init, show)", cmd_ca},
    {"policy", "check a policy file, explain a decision", cmd_policy},
    {"audit", "verify the audit log's hash chain", cmd_audit},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ztbctl [--socket PATH] [-o json|wide|name] [--no-headers] [--quiet] "
                 "COMMAND [ARGS...]\n"
                 "       (the options may also follow the command: ztbctl agent list --json)\n"
                 "\n"
                 "Operate a ztb credential broker.\n"
                 "\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Options:\n"
            "  --socket PATH  admin API socket (default $ZTB_ADMIN_SOCKET or %s)\n"
            "  -o, --output FORMAT\n"
            "                 json (as --json), wide (tables with their extra columns),\n"
            "                 name (the first column only, one per line), table (default)\n"
            "  --json         print JSON instead of tables\n"
            "  --no-headers   tables without their header row\n"
            "  --quiet        print errors only\n"
            "  --version      print the version\n"
            "  -h, --help     this help; `ztbctl COMMAND --help` for a command\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error, 3 a revocation, quarantine\n"
            "or release is in effect but its audit record is pending or lost. See ztbctl(1).\n",
            DEFAULT_SOCKET);
}

/*
 * One global option at argv[i], if it is one: applied to ctl, and the
 * number of arguments it took (1 or 2) returned; 0 if argv[i] is not a
 * global option, -1 (said why) for -o with an unknown format. --version and --help are not taken
 * here (a command has its own --help).
 */
static int global_option(struct ztbctl *ctl, int argc, char **argv, int i)
{
    if (strcmp(argv[i], "--json") == 0) {
        ctl->json = 1;
        ctl->output = ZTBCTL_OUT_JSON;
        return 1;
    }
    if (strcmp(argv[i], "--no-headers") == 0) {
        ctl->no_headers = 1;
        return 1;
    }
    const char *fmt = NULL;
    int took = 0;
    if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc) {
        fmt = argv[i + 1];
        took = 2;
    } else if (strncmp(argv[i], "--output=", 9) == 0) {
        fmt = argv[i] + 9;
        took = 1;
    } else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2] != '\0') {
        fmt = argv[i] + 2; /* -ojson */
        took = 1;
    }
    if (fmt != NULL) {
        if (!ztbctl_output_parse(fmt, &ctl->output)) {
            ztbctl_err("-o takes json, wide, name or table (got '%s')", fmt);
            return -1;
        }
        ctl->json = ctl->output == ZTBCTL_OUT_JSON;
        return took;
    }
    if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
        ctl->quiet = 1;
        return 1;
    }
    if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
        ctl->socket_path = argv[i + 1];
        return 2;
    }
    if (strncmp(argv[i], "--socket=", 9) == 0) {
        ctl->socket_path = argv[i] + 9;
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct ztbctl ctl = {0};
    /* ztbctl reads passphrases and key files and carries join tokens */
    if (ztb_no_core_dumps() != ZTB_OK) {
        ztbctl_err("cannot turn core dumps off: %s", strerror(errno));
        return ZTBCTL_EXIT_FAIL;
    }
    /* ... and the broker's answers carry them: JSON is wiped when freed */
    ztb_json_wipe_on_free();
    ctl.socket_path = getenv("ZTB_ADMIN_SOCKET");
    if (ctl.socket_path == NULL || ctl.socket_path[0] == '\0')
        ctl.socket_path = DEFAULT_SOCKET;

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        int took = global_option(&ctl, argc, argv, i);
        if (took < 0)
            return ZTBCTL_EXIT_USAGE;
        if (took > 0) {
            i += took - 1;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("ztbctl %s\n", ZTB_VERSION);
            return ZTBCTL_EXIT_OK;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return ZTBCTL_EXIT_OK;
        } else {
            ztbctl_err("unknown option '%s' (see ztbctl --help)", argv[i]);
            return ZTBCTL_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    /* global options may also follow the command (`ztbctl agent list
     * --json`), up to a `--`: taken out before the command sees its
     * arguments */
    char **args = calloc((size_t)(argc - i) + 1, sizeof(*args));
    if (args == NULL) {
        ztbctl_err("out of memory");
        return ZTBCTL_EXIT_FAIL;
    }
    int n = 0, rest = 0;
    args[n++] = argv[i];
    for (int j = i + 1; j < argc; j++) {
        int took = rest ? 0 : global_option(&ctl, argc, argv, j);
        if (took < 0) {
            free(args);
            return ZTBCTL_EXIT_USAGE;
        }
        if (took > 0) {
            j += took - 1;
            continue;
        }
        rest |= strcmp(argv[j], "--") == 0;
        args[n++] = argv[j];
    }
    args[n] = NULL;
    ztbctl_output_set(&ctl);
    for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
        if (strcmp(args[0], commands[c].name) == 0) {
            int rc = commands[c].fn(&ctl, n, args);
            free(args);
            return rc;
        }
    free(args);
    ztbctl_err("unknown command '%s' (see ztbctl --help)", argv[i]);
    return ZTBCTL_EXIT_USAGE;
}
