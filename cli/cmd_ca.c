/*
 * cmd_ca.c - `ztbctl ca`: create and inspect the agent CA of a key store.
 *
 *   ztbctl ca [--dir DIR] [--passphrase-file FILE] init --trust-domain DOMAIN
 *             [--validity-days N] [--root-cert FILE --root-key FILE
 *             [--root-passphrase-file FILE]]
 *   ztbctl ca [--dir DIR] [--passphrase-file FILE] show [--pem]
 *
 * The CA lives in <dir>/ca/ beside the signing keys (pki/ca.h) and its key is
 * encrypted with the same passphrase as the store's keys. With --root-cert
 * and --root-key, the CA is an intermediate signed by the operator's root;
 * the root key is read once and never written anywhere. Never prints key
 * material.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/secret.h"
#include "pki/ca.h"
#include "pki/key.h"
#include "pki/keyfile.h"
#include "ztbctl.h"

#define DEFAULT_DIR "/var/lib/ztb/keys"

struct ca_args {
    const char *dir;
    const char *passfile;
    const char *cmd;
    const char *trust_domain;
    const char *root_cert;
    const char *root_key;
    const char *root_passfile;
    long validity_days;
    int pem;
};

static void ca_usage(FILE *out)
{
    fprintf(out,
            "usage: ztbctl ca [--dir DIR] [--passphrase-file FILE] COMMAND [ARGS]\n"
            "\n"
            "Manage the agent CA that issues identity documents (X.509, SPIFFE IDs).\n"
            "\n"
            "Commands:\n"
            "  init --trust-domain DOMAIN [--validity-days N]\n"
            "       a self-signed root CA (default 3650 days), or with\n"
            "       --root-cert FILE --root-key FILE [--root-passphrase-file FILE]\n"
            "       an intermediate signed by your root (default 365 days); the root\n"
            "       key is used once and not stored\n"
            "  show [--pem]  trust domain, kind, subject, issuer, validity, fingerprint;\n"
            "       --pem also prints the CA and root certificates\n"
            "\n"
            "Options:\n"
            "  --dir DIR               key store directory (default $ZTB_KEY_DIR or %s);\n"
            "                          the CA is kept in DIR/ca/\n"
            "  --passphrase-file FILE  encrypts the CA key at init (default\n"
            "                          $ZTB_PASSPHRASE_FILE); show needs no passphrase\n",
            DEFAULT_DIR);
}

static int parse_args(int argc, char **argv, struct ca_args *a)
{
    memset(a, 0, sizeof(*a));
    a->dir = getenv("ZTB_KEY_DIR");
    if (a->dir == NULL || a->dir[0] == '\0')
        a->dir = DEFAULT_DIR;
    a->passfile = getenv("ZTB_PASSPHRASE_FILE");
    if (a->passfile != NULL && a->passfile[0] == '\0')
        a->passfile = NULL;
    const struct {
        const char *name;
        const char **dst;
    } valued[] = {
        {"--dir", &a->dir},
        {"--passphrase-file", &a->passfile},
        {"--trust-domain", &a->trust_domain},
        {"--root-cert", &a->root_cert},
        {"--root-key", &a->root_key},
        {"--root-passphrase-file", &a->root_passfile},
    };
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            ca_usage(stdout);
            return ZTBCTL_EXIT_OK;
        }
        if (strcmp(s, "--pem") == 0) {
            a->pem = 1;
            continue;
        }
        if (strcmp(s, "--validity-days") == 0) {
            char *end = NULL;
            errno = 0;
            a->validity_days = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || errno != 0 || *end != '\0' || a->validity_days <= 0 ||
                a->validity_days > 30 * 366) {
                ztbctl_err("ca: --validity-days needs a number of days (1..10980)");
                return ZTBCTL_EXIT_USAGE;
            }
            i++;
            continue;
        }
        size_t v = 0;
        while (v < sizeof(valued) / sizeof(valued[0]) && strcmp(s, valued[v].name) != 0)
            v++;
        if (v < sizeof(valued) / sizeof(valued[0])) {
            if (i + 1 >= argc) {
                ztbctl_err("ca: %s needs a value", s);
                return ZTBCTL_EXIT_USAGE;
            }
            *valued[v].dst = argv[++i];
            continue;
        }
        if (s[0] == '-' || a->cmd != NULL) {
            ztbctl_err("ca: unexpected argument '%s' (see ztbctl ca --help)", s);
            return ZTBCTL_EXIT_USAGE;
        }
        a->cmd = s;
    }
    if (a->cmd == NULL) {
        ca_usage(stderr);
        return ZTBCTL_EXIT_USAGE;
    }
    return -1;
}

static int fail(const char *what, const char *detail, ztb_err rv)
{
    ztbctl_err("ca %s%s%s: %s (%s)", what, detail ? ": " : "", detail ? detail : "",
               ztb_strerror(rv), ztb_err_name(rv));
    return ZTBCTL_EXIT_FAIL;
}

static void iso_time(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int do_init(struct ztbctl *ctl, const struct ca_args *a)
{
    if (a->trust_domain == NULL) {
        ztbctl_err("ca init: --trust-domain is required");
        return ZTBCTL_EXIT_USAGE;
    }
    if ((a->root_cert == NULL) != (a->root_key == NULL)) {
        ztbctl_err("ca init: --root-cert and --root-key go together");
        return ZTBCTL_EXIT_USAGE;
    }
    int code = ZTBCTL_EXIT_FAIL;
    ztb_err rv = ZTB_OK;
    char *pass = NULL, *rpass = NULL;
    size_t passlen = 0, rpasslen = 0;
    ztb_buf rcert, rkey;
    ztb_buf_init(&rcert, ZTB_CA_CERT_MAX);
    ztb_buf_init_secret(&rkey, ZTB_KEY_PEM_MAX);
    ztb_ca *ca = NULL;

    if (a->passfile != NULL &&
        (rv = ztb_keyfile_read_passphrase(a->passfile, &pass, &passlen)) != ZTB_OK) {
        code = fail("init", a->passfile, rv);
        goto out;
    }
    ztb_ca_opts o = {.trust_domain = a->trust_domain,
                     .validity_s = (int64_t)a->validity_days * 86400};
    if (a->root_cert != NULL) {
        if ((rv = ztb_keyfile_read(AT_FDCWD, a->root_cert, ZTB_CA_CERT_MAX, ZTB_KEYFILE_PUBLIC,
                                   &rcert)) != ZTB_OK) {
            code = fail("init", a->root_cert, rv);
            goto out;
        }
        if ((rv = ztb_keyfile_read(AT_FDCWD, a->root_key, ZTB_KEY_PEM_MAX, ZTB_KEYFILE_SECRET,
                                   &rkey)) != ZTB_OK) {
            code = fail("init", a->root_key, rv);
            goto out;
        }
        if (a->root_passfile != NULL &&
            (rv = ztb_keyfile_read_passphrase(a->root_passfile, &rpass, &rpasslen)) != ZTB_OK) {
            code = fail("init", a->root_passfile, rv);
            goto out;
        }
        o.root_cert_pem = (const char *)rcert.data;
        o.root_cert_len = rcert.len;
        o.root_key_pem = (const char *)rkey.data;
        o.root_key_len = rkey.len;
        o.root_pass = rpass;
        o.root_pass_len = rpasslen;
    }
    if ((rv = ztb_ca_create(&o, (int64_t)time(NULL), &ca)) != ZTB_OK) {
        code = fail("init", NULL, rv);
        goto out;
    }
    if ((rv = ztb_ca_save(ca, a->dir, pass, passlen)) != ZTB_OK) {
        code = fail("init", a->dir, rv);
        goto out;
    }
    ztb_ca_info info;
    if ((rv = ztb_ca_get_info(ca, &info)) != ZTB_OK) {
        code = fail("init", NULL, rv);
        goto out;
    }
    char na[32];
    iso_time(info.not_after, na, sizeof(na));
    if (ctl->json)
        ztbctl_print_json(json_pack("{s:s, s:s, s:s, s:s, s:b}", "trust_domain", info.trust_domain,
                                    "kind", info.is_root ? "root" : "intermediate", "not_after", na,
                                    "fingerprint_sha256", info.fingerprint, "encrypted",
                                    passlen > 0));
    else if (!ctl->quiet)
        printf("created %s agent CA for trust domain %s in %s/ca (valid until %s)\n"
               "fingerprint (SHA-256): %s\n",
               info.is_root ? "root" : "intermediate", info.trust_domain, a->dir, na,
               info.fingerprint);
    code = ZTBCTL_EXIT_OK;
out:
    ztb_ca_free(ca);
    if (pass != NULL)
        ztb_free_secret(pass, passlen + 1);
    if (rpass != NULL)
        ztb_free_secret(rpass, rpasslen + 1);
    ztb_buf_free(&rcert);
    ztb_buf_free(&rkey);
    return code;
}

static int do_show(struct ztbctl *ctl, const struct ca_args *a)
{
    /* showing needs no secret: the key (and its passphrase) stay untouched */
    ztb_ca *ca = NULL;
    ztb_err rv = ztb_ca_load_public(a->dir, &ca);
    if (rv != ZTB_OK)
        return fail("show", a->dir, rv);
    ztb_ca_info info;
    ztb_buf cert, root;
    ztb_buf_init(&cert, ZTB_CA_CERT_MAX);
    ztb_buf_init(&root, ZTB_CA_CERT_MAX);
    rv = ztb_ca_get_info(ca, &info);
    if (rv == ZTB_OK)
        rv = ztb_ca_cert_pem(ca, &cert);
    if (rv == ZTB_OK)
        rv = ztb_ca_root_pem(ca, &root);
    ztb_ca_free(ca);
    if (rv != ZTB_OK) {
        ztb_buf_free(&cert);
        ztb_buf_free(&root);
        return fail("show", NULL, rv);
    }
    char nb[32], na[32];
    iso_time(info.not_before, nb, sizeof(nb));
    iso_time(info.not_after, na, sizeof(na));
    int expired = (int64_t)time(NULL) >= info.not_after;
    if (ctl->json) {
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "trust_domain", info.trust_domain,
                      "kind", info.is_root ? "root" : "intermediate", "subject", info.subject,
                      "issuer", info.issuer, "not_before", nb, "not_after", na,
                      "fingerprint_sha256", info.fingerprint, "expired", expired);
        if (a->pem) {
            json_object_set_new(j, "certificate_pem", json_string(ztb_buf_cstr(&cert)));
            json_object_set_new(j, "root_pem", json_string(ztb_buf_cstr(&root)));
        }
        ztbctl_print_json(j);
    } else {
        printf("trust domain:  %s\n"
               "kind:          %s\n"
               "subject:       %s\n"
               "issuer:        %s\n"
               "not before:    %s\n"
               "not after:     %s%s\n"
               "SHA-256:       %s\n",
               info.trust_domain, info.is_root ? "root (self-signed)" : "intermediate",
               info.subject, info.issuer, nb, na, expired ? "  (EXPIRED)" : "", info.fingerprint);
        if (a->pem)
            printf("\n%s%s", ztb_buf_cstr(&cert), info.is_root ? "" : ztb_buf_cstr(&root));
    }
    ztb_buf_free(&cert);
    ztb_buf_free(&root);
    return ZTBCTL_EXIT_OK;
}

int cmd_ca(struct ztbctl *ctl, int argc, char **argv)
{
    struct ca_args a;
    int code = parse_args(argc, argv, &a);
    if (code >= 0)
        return code;
    if (strcmp(a.cmd, "init") == 0)
        return do_init(ctl, &a);
    if (strcmp(a.cmd, "show") == 0)
        return do_show(ctl, &a);
    ztbctl_err("ca: unknown command '%s' (see ztbctl ca --help)", a.cmd);
    return ZTBCTL_EXIT_USAGE;
}
