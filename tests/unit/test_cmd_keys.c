/*
 * test_cmd_keys.c - `ztbctl keys` end to end: the real binary on a scratch
 * key store, checking exit codes, what it prints (tables and --json) and
 * what it leaves on disk, through a whole rotation; and that `keys list`
 * prints the same columns and values from the files and from the broker.
 */
#define _GNU_SOURCE /* strcasestr, for admin_script.h */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/wait.h>

#include <jansson.h>

#include "admin_script.h"
#include "pki_test.h"

#include "pki/jwk.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static char *dir;
static char store[1024];
static char out[65536];

/* Run `ztbctl <args>` with ZTB_KEY_DIR=store; stdout into out; exit status. */
static int ztbctl(const char *args)
{
    const char *bd = getenv("ZTB_BUILD_DIR");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "ZTB_KEY_DIR='%s' ZTB_PASSPHRASE_FILE= '%s/bin/ztbctl' %s 2>/dev/null", store,
             bd ? bd : ".", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state)
{
    (void)state;
    dir = pkt_tmpdir();
    snprintf(store, sizeof(store), "%s/store", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pkt_rmdir(dir);
    return 0;
}

static json_t *json_out(void)
{
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    if (j == NULL)
        fail_msg("not JSON: %s", out);
    return j;
}

static void test_usage_errors(void **state)
{
    (void)state;
    assert_int_equal(ztbctl("keys --help"), 0);
    assert_non_null(strstr(out, "rotate"));
    assert_int_equal(ztbctl("keys"), 2);
    assert_int_equal(ztbctl("keys frobnicate"), 2);
    assert_int_equal(ztbctl("keys init --jwks-cache ten"), 2);
    assert_int_equal(ztbctl("keys init --jwks-cache -5"), 2);
    assert_int_equal(ztbctl("keys list --bogus"), 2);
    assert_int_equal(ztbctl("keys list extra"), 2);
    assert_int_equal(ztbctl("keys --dir"), 2);
    /* nothing was created by any of that */
    assert_int_not_equal(access(store, F_OK), 0);
    assert_int_equal(ztbctl("keys list"), 1); /* no store yet */
}

static void test_lifecycle(void **state)
{
    (void)state;
    assert_int_equal(ztbctl("keys init --jwks-cache 120 --max-token-ttl 600 --skew 30"), 0);
    assert_non_null(strstr(out, "active key: "));
    assert_int_equal(ztbctl("keys init"), 1); /* not twice */

    assert_int_equal(ztbctl("--json keys list"), 0);
    json_t *j = json_out();
    assert_int_equal(json_array_size(j), 1);
    char k0[64];
    snprintf(k0, sizeof(k0), "%s", json_string_value(json_object_get(json_array_get(j, 0), "kid")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "state")),
                        "active");
    json_decref(j);

    /* durations are stored, not passed later */
    assert_int_equal(ztbctl("keys rotate --skew 5"), 2);

    assert_int_equal(ztbctl("--json keys rotate"), 0);
    j = json_out();
    assert_string_equal(json_string_value(json_object_get(j, "action")), "published");
    char k1[64];
    snprintf(k1, sizeof(k1), "%s", json_string_value(json_object_get(j, "kid")));
    json_decref(j);
    /* too early to promote: refused, saying when */
    assert_int_equal(ztbctl("keys rotate"), 1);
    assert_int_equal(ztbctl("keys list"), 0);
    assert_non_null(strstr(out, k1));
    assert_non_null(strstr(out, "next"));
    assert_int_equal(ztbctl("keys rotate --force"), 0);
    assert_non_null(strstr(out, "is now active"));

    assert_int_equal(ztbctl("--json keys list"), 0);
    j = json_out();
    assert_int_equal(json_array_size(j), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *e = json_array_get(j, i);
        const char *kid = json_string_value(json_object_get(e, "kid"));
        const char *st = json_string_value(json_object_get(e, "state"));
        assert_string_equal(st, strcmp(kid, k0) == 0 ? "retiring" : "active");
        assert_true(json_is_true(json_object_get(e, "published")));
        if (strcmp(kid, k0) == 0)
            assert_int_equal(json_integer_value(json_object_get(e, "not_after")) -
                                 json_integer_value(json_object_get(e, "deactivated")),
                             600 + 30);
    }
    json_decref(j);

    /* the JWKS publishes both, and parses strictly */
    assert_int_equal(ztbctl("keys jwks"), 0);
    ztb_keyset *ks = NULL;
    assert_int_equal(ztb_jwks_parse(out, strlen(out), 0, &ks), ZTB_OK);
    assert_int_equal(ztb_keyset_count(ks), 2);
    assert_non_null(ztb_keyset_find(ks, k0, strlen(k0)));
    ztb_keyset_free(ks);

    /* the active key cannot be retired; the old one can, and --force unpublishes it */
    char args[256];
    snprintf(args, sizeof(args), "keys retire %s", k1);
    assert_int_equal(ztbctl(args), 1);
    assert_int_equal(ztbctl("keys retire"), 2);
    /* a KID may begin with '-' (base64url): taken as a KID, with or without
     * `--`, so an unknown one is "not found" (1), not a usage error (2) */
    assert_int_equal(ztbctl("keys retire -AbCdEfGh"), 1);
    assert_int_equal(ztbctl("keys retire -- -AbCdEfGh"), 1);
    assert_int_equal(ztbctl("keys retire --bogus"), 2);
    snprintf(args, sizeof(args), "keys retire %s --force", k0);
    assert_int_equal(ztbctl(args), 0);
    assert_int_equal(ztbctl("keys jwks"), 0);
    assert_null(strstr(out, k0));
    assert_int_equal(ztbctl("--json keys prune"), 0);
    j = json_out();
    assert_int_equal(json_integer_value(json_object_get(j, "removed")), 1);
    json_decref(j);
    char pem[1200];
    snprintf(pem, sizeof(pem), "%s/keys/%s.pem", store, k0);
    assert_int_not_equal(access(pem, F_OK), 0);
    assert_int_equal(ztbctl("keys list"), 0);
    assert_null(strstr(out, k0));
    /* nothing printed anywhere looks like key material */
    assert_null(strstr(out, "PRIVATE"));
}

/* 1 if s is an RFC 3339 UTC time as ztbctl prints it: YYYY-MM-DDTHH:MM:SSZ. */
static int rfc3339(const char *s)
{
    int y, mo, d, h, mi, se;
    char z = 0, end = 0;
    return strlen(s) == 20 &&
           sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%c", &y, &mo, &d, &h, &mi, &se, &z, &end) == 7 &&
           z == 'Z';
}

/* `keys list` from the files and `keys list --broker` from the broker's
 * answer (the store's JSON: integer times, 0 when absent, no "published")
 * print the same table and the same keys in JSON; times are RFC 3339 in
 * tables and null in JSON when absent. */
static void test_list_same_from_files_and_broker(void **state)
{
    (void)state;
    assert_int_equal(ztbctl("keys rotate"), 0); /* a next key: never activated */
    assert_int_equal(ztbctl("-o json keys list"), 0);
    json_t *files = json_out();
    assert_int_equal(json_array_size(files), 2);
    size_t i;
    json_t *k;
    int nulls = 0;
    json_array_foreach(files, i, k)
    {
        assert_true(json_is_boolean(json_object_get(k, "published")));
        assert_true(json_is_integer(json_object_get(k, "created")));
        nulls += json_is_null(json_object_get(k, "activated")) +
                 json_is_null(json_object_get(k, "deactivated"));
    }
    assert_true(nulls >= 3); /* next: neither; active: not deactivated */
    assert_int_equal(ztbctl("keys list"), 0);
    char table[8192];
    snprintf(table, sizeof(table), "%s", out);
    assert_true(strncmp(table, "KID ", 4) == 0);
    assert_non_null(strstr(table, "  STATE  "));
    assert_non_null(strstr(table, "  PUBLISHED  CREATED "));
    assert_non_null(strstr(table, "  ACTIVATED "));
    assert_non_null(strstr(table, "  DEACTIVATED "));
    assert_non_null(strstr(table, "  NOT_AFTER\n"));
    /* every time cell is RFC 3339 or "-" */
    char *save = NULL, copy[8192];
    snprintf(copy, sizeof(copy), "%s", strchr(table, '\n') + 1);
    int times = 0;
    for (char *w = strtok_r(copy, " \n", &save); w != NULL; w = strtok_r(NULL, " \n", &save))
        if (strchr(w, ':') != NULL) {
            assert_true(rfc3339(w));
            times++;
        }
    assert_true(times >= 3);
    /* -o wide adds the algorithm; -o name gives the kids alone */
    assert_int_equal(ztbctl("keys list -o wide"), 0);
    assert_non_null(strstr(out, "  NOT_AFTER  "));
    assert_non_null(strstr(out, "  ALG\n"));
    assert_non_null(strstr(out, "  ES256\n"));
    assert_null(strstr(table, "ALG"));
    assert_int_equal(ztbctl("keys list -o name --no-headers"), 0);
    assert_null(strstr(out, "KID"));
    assert_null(strstr(out, " "));
    assert_int_equal(strlen(out), 2 * (ZTB_KID_LEN + 1));

    /* the broker's answer for the same store */
    json_t *keys = json_deep_copy(files);
    json_array_foreach(keys, i, k)
    {
        json_object_del(k, "published");
        const char *tn[] = {"created", "activated", "deactivated", "not_after"};
        for (size_t t = 0; t < 4; t++)
            if (json_is_null(json_object_get(k, tn[t])))
                json_object_set_new(k, tn[t], json_integer(0));
    }
    json_t *answer_json = json_pack("{s:o}", "keys", keys);
    char *body = json_dumps(answer_json, JSON_COMPACT);
    json_decref(answer_json);
    static char answer[16384];
    snprintf(answer, sizeof(answer), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    free(body);
    char args[256];
    struct server *s = server_start(answer, 0);
    snprintf(args, sizeof(args), "--socket %s keys list --broker", s->path);
    assert_int_equal(ztbctl(args), 0);
    server_stop(s);
    assert_string_equal(out, table);
    s = server_start(answer, 0);
    snprintf(args, sizeof(args), "--socket %s keys list --broker -o json", s->path);
    assert_int_equal(ztbctl(args), 0);
    server_stop(s);
    json_t *broker = json_out();
    if (!json_equal(json_object_get(broker, "keys"), files))
        fail_msg("keys list --broker -o json differs from the files': %s", out);
    json_decref(broker);
    json_decref(files);
}

static void test_encrypted(void **state)
{
    (void)state;
    char pf[1024], enc_store[1024], args[4096];
    snprintf(pf, sizeof(pf), "%s/pass", dir);
    snprintf(enc_store, sizeof(enc_store), "%s/enc", dir);
    assert_int_equal(pkt_write(pf, "s3cret pass\n", 12, 0600), 0);
    snprintf(args, sizeof(args), "keys --dir %s --passphrase-file %s init", enc_store, pf);
    assert_int_equal(ztbctl(args), 0);
    assert_non_null(strstr(out, "(encrypted)"));
    snprintf(args, sizeof(args), "keys --dir %s list", enc_store);
    assert_int_equal(ztbctl(args), 1); /* no passphrase */
    snprintf(args, sizeof(args), "keys list --dir %s --passphrase-file %s", enc_store, pf);
    assert_int_equal(ztbctl(args), 0);
    /* a passphrase file others can read is refused */
    assert_int_equal(chmod(pf, 0644), 0);
    assert_int_equal(ztbctl(args), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_list_same_from_files_and_broker),
        cmocka_unit_test(test_encrypted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
