/*
 * test_audit_verify.c - the verifier accepts a whole chain and names the
 * first line of every kind of break: a changed, removed or added line, a
 * wrong genesis, a line that is not a record, too long, cut short or with a
 * NUL byte, a file that cannot be read. audit_verify_files on logs with
 * signed checkpoints: what a signature proves, and every kind of tampering
 * and truncation at both ends, with its place (an edit, a re-chained edit,
 * a removed, inserted or moved line, a forged or re-signed checkpoint, a
 * line of another replica, a cut head, a cut end against an anchor).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/chain.h"
#include "audit/verify.h"
#include "pki/jwk.h"
#include "pki/jws.h"
#include "pki/key.h"
#include "pki/keyset.h"

static char g_path[64];

/* A chain of n records starting at seq first (prev of the first: first_prev). */
static size_t make_chain(char *out, size_t cap, uint64_t first, int n, const char *first_prev)
{
    char prev[AUDIT_HASH_HEX + 1];
    snprintf(prev, sizeof(prev), "%s", first_prev);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        char *line = out + len;
        int w = snprintf(line, cap - len,
                         "{\"seq\":%llu,\"ts\":\"2026-12-03T18:00:00.000Z\",\"prev\":\"%s\","
                         "\"event\":\"e%d\",\"actor\":\"broker\"}",
                         (unsigned long long)(first + (uint64_t)i), prev, i);
        assert_true(w > 0 && (size_t)w + 1 < cap - len);
        audit_chain_hash(line, (size_t)w, prev);
        line[w] = '\n';
        len += (size_t)w + 1;
    }
    out[len] = '\0';
    return len;
}

static void put(const void *s, size_t n)
{
    FILE *f = fopen(g_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    fclose(f);
}

static ztb_err verify(uint64_t *lines, uint64_t *bad, char *why)
{
    why[0] = '\0';
    return audit_verify_file(g_path, lines, bad, why, 256);
}

/* The start of line k (1-based) of s. */
static char *line_at(char *s, int k)
{
    for (int i = 1; i < k; i++)
        s = strchr(s, '\n') + 1;
    return s;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_path, sizeof(g_path), "/tmp/ztb-test-audit-verify.XXXXXX");
    int fd = mkstemp(g_path);
    assert_true(fd >= 0);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_path);
    return 0;
}

static void test_whole_chains(void **state)
{
    (void)state;
    char s[8192], why[256];
    uint64_t lines = 9, bad = 9;
    put("", 0);
    assert_int_equal(verify(&lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 0);
    assert_int_equal(bad, 0);

    size_t n = make_chain(s, sizeof(s), 1, 12, audit_genesis);
    put(s, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 12);
    assert_int_equal(bad, 0);

    /* a rotated file starts where the last one ended, from any link */
    n = make_chain(s, sizeof(s), 500, 3,
                   "1111111111111111111111111111111111111111111111111111111111111111");
    put(s, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 3);
}

static void test_tampering(void **state)
{
    (void)state;
    char s[8192], t[8192], why[256];
    uint64_t lines, bad;
    size_t n = make_chain(s, sizeof(s), 1, 8, audit_genesis);

    /* one byte of line 3 changed: the break shows at line 4 */
    memcpy(t, s, n + 1);
    char *e = strstr(line_at(t, 3), "\"e2\"");
    e[1] = 'E';
    put(t, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_SIGNATURE);
    assert_int_equal(bad, 4);
    assert_int_equal(lines, 0);
    assert_non_null(strstr(why, "prev hash"));
    assert_non_null(strstr(why, "changed line 3"));

    /* the last line changed: nothing after it to show it (see verify.h) */
    memcpy(t, s, n + 1);
    e = strstr(line_at(t, 8), "\"e7\"");
    e[1] = 'E';
    put(t, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_OK);

    /* line 5 removed: seq jumps */
    memcpy(t, s, n + 1);
    char *l5 = line_at(t, 5), *l6 = line_at(t, 6);
    memmove(l5, l6, strlen(l6) + 1);
    put(t, strlen(t));
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_SIGNATURE);
    assert_int_equal(bad, 5);
    assert_non_null(strstr(why, "seq 6 where 5 was expected"));

    /* line 2 repeated */
    memcpy(t, s, n + 1);
    char *l2 = line_at(t, 2), *l3 = line_at(t, 3);
    size_t l2len = (size_t)(l3 - l2);
    memmove(l3 + l2len, l3, strlen(l3) + 1);
    memcpy(l3, l2, l2len);
    put(t, strlen(t));
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_SIGNATURE);
    assert_int_equal(bad, 3);

    /* a chain from seq 1 must start at the genesis link */
    n = make_chain(t, sizeof(t), 1, 3,
                   "1111111111111111111111111111111111111111111111111111111111111111");
    put(t, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_SIGNATURE);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(why, "genesis"));
}

static void test_malformed_files(void **state)
{
    (void)state;
    char s[8192], t[8192], why[256];
    uint64_t lines, bad;
    size_t n = make_chain(s, sizeof(s), 1, 4, audit_genesis);

    /* cut short (a crash mid-write, or truncated without the newline) */
    put(s, n - 5);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(bad, 4);
    assert_string_equal(why, "last line is incomplete");

    /* a NUL byte inside line 2 */
    memcpy(t, s, n + 1);
    line_at(t, 2)[10] = '\0';
    put(t, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(bad, 2);
    assert_true(why[0] != '\0'); /* (fgets stops the line's length at the NUL) */

    /* not a record */
    put("hello\n", 6);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(why, "not an audit record"));
    memcpy(t, s, n + 1);
    memcpy(strstr(line_at(t, 3), "\"prev\""), "\"Prev\"", 6);
    put(t, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(bad, 3);

    /* a line longer than the verifier reads */
    char *big = malloc(AUDIT_VERIFY_LINE_MAX + 100);
    assert_non_null(big);
    memset(big, 'x', AUDIT_VERIFY_LINE_MAX + 99);
    big[AUDIT_VERIFY_LINE_MAX + 99] = '\n';
    put(big, AUDIT_VERIFY_LINE_MAX + 100);
    free(big);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(bad, 1);
    assert_string_equal(why, "line too long");

    /* no file */
    assert_int_equal(audit_verify_file("/nonexistent/audit.log", &lines, &bad, why, sizeof(why)),
                     ZTB_ERR_IO);
    assert_int_equal(bad, 0);
    assert_non_null(strstr(why, "/nonexistent/audit.log"));
}

/* ---- logs with signed checkpoints ---------------------------------------- */

#define LOG_MAX 128

struct log {
    char *line[LOG_MAX]; /* without newlines, owned */
    int n;
};

static void log_free(struct log *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->line[i]);
    l->n = 0;
}

static void log_put(const struct log *l)
{
    FILE *f = fopen(g_path, "wb");
    assert_non_null(f);
    for (int i = 0; i < l->n; i++)
        fprintf(f, "%s\n", l->line[i]);
    fclose(f);
}

/* A checkpoint's members for to/hash, signed by k (a JWS of the payload). */
static void checkpoint_members(char *out, size_t cap, const ztb_key *k, const char *replica,
                               uint64_t from, uint64_t to, const char *hash)
{
    ztb_buf payload, jws;
    ztb_buf_init(&payload, 1024);
    ztb_buf_init(&jws, 4096);
    audit_checkpoint_payload(replica, from, to, hash, &payload);
    const ztb_jws_sign_opts o = {.typ = AUDIT_CHECKPOINT_TYP};
    assert_int_equal(ztb_jws_sign(k, &o, payload.data, payload.len, &jws), ZTB_OK);
    snprintf(out, cap,
             "\"event\":\"audit.checkpoint\",\"actor\":\"broker\",\"from\":%llu,\"to\":%llu,"
             "\"hash\":\"%s\",\"kid\":\"%s\",\"jws\":\"%s\"",
             (unsigned long long)from, (unsigned long long)to, hash, ztb_key_kid(k),
             ztb_buf_cstr(&jws));
    ztb_buf_free(&payload);
    ztb_buf_free(&jws);
}

/*
 * A log of n lines of replica r1, as the writer makes it: every cp_every-th
 * line is a checkpoint over the line before it, signed by k.
 */
static void make_log(struct log *l, int n, int cp_every, const ztb_key *k)
{
    char prev[AUDIT_HASH_HEX + 1], last_hash[AUDIT_HASH_HEX + 1] = "";
    memcpy(prev, audit_genesis, sizeof(prev));
    uint64_t covered = 0;
    l->n = 0;
    for (int i = 1; i <= n; i++) {
        char body[2048];
        if (cp_every > 0 && i % cp_every == 0) {
            checkpoint_members(body, sizeof(body), k, "r1", covered + 1, (uint64_t)i - 1,
                               last_hash);
            covered = (uint64_t)i - 1;
        } else {
            snprintf(body, sizeof(body),
                     "\"event\":\"token.issued\",\"actor\":\"agent:a\",\"i\":%d", i);
        }
        char *line = malloc(4096);
        int w = snprintf(line, 4096,
                         "{\"seq\":%d,\"ts\":\"2026-12-03T18:00:00.000Z\",\"prev\":\"%s\","
                         "\"replica\":\"r1\",%s}",
                         i, prev, body);
        assert_true(w > 0 && w < 4096);
        audit_chain_hash(line, (size_t)w, prev);
        memcpy(last_hash, prev, sizeof(prev));
        l->line[l->n++] = line;
    }
}

/* Recompute every prev from line k on (what someone who edits a line and
 * wants the chain to hold does; only the signatures stop them). */
static void rechain(struct log *l, int from_index)
{
    char prev[AUDIT_HASH_HEX + 1];
    for (int i = from_index; i < l->n; i++) {
        if (i == 0)
            memcpy(prev, audit_genesis, sizeof(prev));
        else
            audit_chain_hash(l->line[i - 1], strlen(l->line[i - 1]), prev);
        char *p = strstr(l->line[i], "\"prev\":\"") + 8;
        memcpy(p, prev, AUDIT_HASH_HEX);
    }
}

static void remove_at(struct log *l, int i)
{
    free(l->line[i]);
    memmove(&l->line[i], &l->line[i + 1], sizeof(char *) * (size_t)(l->n - i - 1));
    l->n--;
}

struct keys {
    ztb_key *k, *other;
    ztb_keyset *ks, *other_ks;
};

static void keys_make(struct keys *t)
{
    assert_int_equal(ztb_key_generate(&t->k), ZTB_OK);
    assert_int_equal(ztb_key_generate(&t->other), ZTB_OK);
    const char *kid = ztb_key_kid(t->k), *okid = ztb_key_kid(t->other);
    assert_int_equal(ztb_keyset_new(&t->k, &kid, 1, &t->ks), ZTB_OK);
    assert_int_equal(ztb_keyset_new(&t->other, &okid, 1, &t->other_ks), ZTB_OK);
}

static void keys_free(struct keys *t)
{
    ztb_keyset_free(t->ks);
    ztb_keyset_free(t->other_ks);
    ztb_key_free(t->k);
    ztb_key_free(t->other);
}

static ztb_err vfiles(const ztb_keyset *ks, const char *anchor, struct audit_verify_report *r)
{
    const char *paths[] = {g_path};
    const struct audit_verify_opts o = {.keys = ks, .anchor = anchor};
    return audit_verify_files(paths, 1, &o, r);
}

/* The anchor of the checkpoint line at index i. */
static void anchor_of(const struct log *l, int i, char *out, size_t cap)
{
    char h[AUDIT_HASH_HEX + 1];
    audit_chain_hash(l->line[i], strlen(l->line[i]), h);
    snprintf(out, cap, "%d:%s", i + 1, h);
}

static void test_checkpoints_prove_a_range(void **state)
{
    (void)state;
    struct keys t;
    keys_make(&t);
    struct log l;
    struct audit_verify_report r;
    make_log(&l, 55, 10, t.k);
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_OK);
    assert_int_equal(r.records, 55);
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(r.last_seq, 55);
    assert_int_equal(r.checkpoints, 5);
    assert_int_equal(r.proven_to, 49);
    assert_int_equal(r.checkpoint_at, 50);
    assert_string_equal(r.replica, "r1");
    assert_string_equal(r.checkpoint_kid, ztb_key_kid(t.k));
    assert_true(r.signatures_checked);
    char a[128], want[128];
    anchor_of(&l, 49, want, sizeof(want));
    snprintf(a, sizeof(a), "%llu:%s", (unsigned long long)r.checkpoint_at, r.checkpoint_hash);
    assert_string_equal(a, want);
    /* with the anchor kept earlier */
    assert_int_equal(vfiles(t.ks, a, &r), ZTB_OK);
    assert_true(r.anchor_found);
    /* without keys the places and hashes are checked, not the signatures */
    assert_int_equal(vfiles(NULL, NULL, &r), ZTB_OK);
    assert_false(r.signatures_checked);
    assert_int_equal(r.proven_to, 49);

    /* the last line, after the last checkpoint, is only chained: an edit
     * there is not visible (the report says up to where it is proven) */
    char *e = strstr(l.line[54], "\"i\":55");
    e[5] = '6';
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_OK);
    assert_int_equal(r.proven_to, 49);
    assert_int_equal(r.last_seq, 55);
    log_free(&l);
    keys_free(&t);
}

static void test_checkpoint_tampering(void **state)
{
    (void)state;
    struct keys t;
    keys_make(&t);
    struct log l;
    struct audit_verify_report r;

    /* an edited line: the next line's prev shows it */
    make_log(&l, 40, 10, t.k);
    strstr(l.line[14], "\"i\":15")[5] = '7';
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 16);
    assert_non_null(strstr(r.why, "seq 15 was changed"));
    assert_int_equal(r.proven_to, 9); /* what was proven before the break */

    /* the same edit, the chain recomputed after it: the checkpoint over
     * line 19 no longer matches it */
    rechain(&l, 15);
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 20);
    assert_non_null(strstr(r.why, "does not match line seq 19"));
    log_free(&l);

    /* ... and a checkpoint forged to match it, signed by another key */
    make_log(&l, 40, 10, t.k);
    strstr(l.line[14], "\"i\":15")[5] = '7';
    rechain(&l, 15);
    {
        char h[AUDIT_HASH_HEX + 1], members[2048], *line = l.line[19];
        audit_chain_hash(l.line[18], strlen(l.line[18]), h);
        checkpoint_members(members, sizeof(members), t.other, "r1", 10, 19, h);
        char *ev = strstr(line, "\"event\"");
        snprintf(ev, 4096 - (size_t)(ev - line), "%s}", members);
        rechain(&l, 20);
    }
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 20);
    assert_non_null(strstr(r.why, "signature"));
    /* the forger's own key would pass it: the JWKS is what decides */
    assert_int_equal(vfiles(t.other_ks, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 10); /* the genuine first checkpoint fails there */
    log_free(&l);

    /* a checkpoint's signature changed */
    make_log(&l, 40, 10, t.k);
    char *jws = strstr(l.line[29], "\"jws\":\"");
    char *last = strrchr(jws, '"') - 2;
    *last = *last == 'A' ? 'B' : 'A';
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 30);
    log_free(&l);

    /* a checkpoint whose "to" was moved (its signature is for 29) */
    make_log(&l, 40, 10, t.k);
    char *to = strstr(l.line[29], "\"to\":29");
    to[6] = '8';
    char h28[AUDIT_HASH_HEX + 1];
    audit_chain_hash(l.line[27], strlen(l.line[27]), h28);
    memcpy(strstr(l.line[29], "\"hash\":\"") + 8, h28, AUDIT_HASH_HEX);
    rechain(&l, 30);
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 30);
    assert_non_null(strstr(r.why, "other contents"));
    log_free(&l);

    /* a line removed */
    make_log(&l, 40, 10, t.k);
    remove_at(&l, 24);
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 25);
    assert_non_null(strstr(r.why, "records 25..25 removed"));

    /* a line inserted (an old line replayed) */
    log_free(&l);
    make_log(&l, 40, 10, t.k);
    free(l.line[39]);
    l.line[39] = strdup(l.line[4]);
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 40);
    assert_non_null(strstr(r.why, "inserted"));
    log_free(&l);

    /* two lines swapped */
    make_log(&l, 40, 10, t.k);
    char *tmp = l.line[32];
    l.line[32] = l.line[33];
    l.line[33] = tmp;
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 33);
    log_free(&l);

    /* a line of another replica's chain, chained in */
    make_log(&l, 40, 10, t.k);
    memcpy(strstr(l.line[34], "\"replica\":\"r1\"") + 11, "r2", 2);
    rechain(&l, 35);
    log_put(&l);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 35);
    assert_non_null(strstr(r.why, "replica"));
    log_free(&l);
    keys_free(&t);
}

static void test_truncation_at_both_ends(void **state)
{
    (void)state;
    struct keys t;
    keys_make(&t);
    struct log l;
    struct audit_verify_report r;
    make_log(&l, 60, 10, t.k);
    char anchor[128];
    anchor_of(&l, 49, anchor, sizeof(anchor)); /* the checkpoint at seq 50 */

    /* `tail -n 10`: the head is missing */
    struct log tail = {.n = 0};
    for (int i = 50; i < 60; i++)
        tail.line[tail.n++] = strdup(l.line[i]);
    log_put(&tail);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_ERR_TRUNCATED);
    assert_int_equal(r.bad_line, 1);
    assert_non_null(strstr(r.why, "starts at seq 51"));
    log_free(&tail);

    /* `head -n 20`: proven up to 19 only; against the anchor, cut */
    struct log head = {.n = 0};
    for (int i = 0; i < 20; i++)
        head.line[head.n++] = strdup(l.line[i]);
    log_put(&head);
    assert_int_equal(vfiles(t.ks, NULL, &r), ZTB_OK);
    assert_int_equal(r.proven_to, 19);
    assert_int_equal(r.last_seq, 20);
    assert_int_equal(vfiles(t.ks, anchor, &r), ZTB_ERR_TRUNCATED);
    assert_non_null(strstr(r.why, "ends at seq 20, before the anchor's seq 50"));
    log_free(&head);

    /* a log rewritten before the anchor: its line at that seq differs */
    strstr(l.line[12], "\"i\":13")[5] = '4';
    rechain(&l, 13);
    log_put(&l);
    const char *paths[] = {g_path};
    const struct audit_verify_opts nokeys = {.anchor = anchor};
    assert_int_equal(audit_verify_files(paths, 1, &nokeys, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_line, 20); /* the checkpoint over 19 stops it first */

    /* a malformed anchor is a usage error */
    assert_int_equal(vfiles(t.ks, "50:xyz", &r), ZTB_ERR_INVALID_ARG);
    log_free(&l);

    /* the files of a rotated log verify as one chain, oldest first */
    make_log(&l, 30, 10, t.k);
    char p1[80], p2[80];
    snprintf(p1, sizeof(p1), "%s.1", g_path);
    snprintf(p2, sizeof(p2), "%s.2", g_path);
    FILE *f1 = fopen(p1, "w"), *f2 = fopen(p2, "w");
    for (int i = 0; i < 30; i++)
        fprintf(i < 15 ? f1 : f2, "%s\n", l.line[i]);
    fclose(f1);
    fclose(f2);
    const char *two[] = {p1, p2};
    const struct audit_verify_opts o = {.keys = t.ks};
    assert_int_equal(audit_verify_files(two, 2, &o, &r), ZTB_OK);
    assert_int_equal(r.last_seq, 30);
    assert_int_equal(r.proven_to, 29);
    const char *second_only[] = {p2};
    assert_int_equal(audit_verify_files(second_only, 1, &o, &r), ZTB_ERR_TRUNCATED);
    unlink(p1);
    unlink(p2);
    log_free(&l);
    keys_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_chains),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_checkpoints_prove_a_range),
        cmocka_unit_test(test_checkpoint_tampering),
        cmocka_unit_test(test_truncation_at_both_ends),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
