/*
 * load.c - parse and validate a policy document into the model (see load.h).
 *
 * The document is parsed by jansson with duplicate keys refused, then walked
 * field by field. Every object's keys are checked against the fields it may
 * have (an unknown field is an error, with a suggestion when it looks like a
 * typo), every value's type and range is checked, and every pattern is
 * compiled. The walk goes on after a problem so one run reports as many as
 * possible. Strings are copied into the policy's arena; the JSON tree is
 * released before returning.
 *
 * This file reads the document and walks its top level; each section has
 * its own file: load_settings.c, load_groups.c, load_rules.c (with
 * load_conditions.c), load_responses.c, load_agents.c for agent references,
 * load_fields.c for the helpers every section uses (load_internal.h).
 *
 * What this file must never do: accept a document with any problem, or let
 * the order of the document change the result (rules are re-sorted into
 * canonical order here; groups and responses are sorted too).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/guard.h"
#include "common/utf8.h"
#include "policy/compile.h"
#include "policy/load.h"
#include "policy/load_internal.h"
#include "policy/model.h"
#include "policy/overlap.h"
#include "policy/policy.h"

/* ---- the document ------------------------------------------------------- */

static void parse_doc(struct ld *L, json_t *root)
{
    static const char *const keys[] = {"version", "description", "trust_domain",      "settings",
                                       "groups",  "rules",       "anomaly_responses", NULL};
    policy *p = L->p;
    if (!json_is_object(root)) {
        load_fail(L, NULL, NULL, "the document must be a JSON object");
        return;
    }
    load_check_keys(L, root, "document", NULL, keys);
    json_t *ver = json_object_get(root, "version");
    if (ver == NULL)
        load_fail(L, "document", "version", "missing (required; this engine reads version 1)");
    else if (!json_is_integer(ver) || json_integer_value(ver) != 1)
        load_fail(L, "document", "version", "must be 1 (the only version this engine reads)");
    p->description = load_copy(L, load_get_str(L, root, "description", "document", NULL, 4096, 0));
    const char *td = load_get_str(L, root, "trust_domain", "document", NULL, 255, 1);
    if (td != NULL && !load_valid_trust_domain(td, strlen(td))) {
        char q[QCAP];
        load_fail(L, "document", "trust_domain",
                  "%s: a trust domain is lowercase letters, digits, '.', '-' and '_'",
                  load_quote(q, td));
    } else if (td != NULL) {
        p->trust_domain = load_copy(L, td);
        p->spiffe_prefix = ztb_arena_printf(L->a, "spiffe://%s/agent/", td);
        p->spiffe_prefix_len = p->spiffe_prefix ? (uint32_t)strlen(p->spiffe_prefix) : 0;
    }
    json_t *s = load_get(L, root, "settings", "document", NULL, 1);
    if (s != NULL)
        load_parse_settings(L, s);
    json_t *g = json_object_get(root, "groups");
    if (g != NULL)
        load_parse_groups(L, g);
    else
        policy_strmap_init(&p->group_map, L->a, 0);
    json_t *r = load_get(L, root, "rules", "document", NULL, 1);
    if (r != NULL)
        load_parse_rules(L, r);
    else
        policy_strmap_init(&p->rule_map, L->a, 0);
    json_t *a = json_object_get(root, "anomaly_responses");
    if (a != NULL)
        load_parse_responses(L, a);
}

static void digest_hex(const void *doc, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    out[0] = '\0';
    if (EVP_Digest(doc, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return;
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

ztb_err policy_load(const void *doc, size_t len, policy **out, policy_diag *diag)
{
    ztb_err rv = ZTB_OK;
    policy_diag local;
    policy_diag *d = diag;
    json_t *root = NULL;
    policy *p = NULL;
    if (d == NULL) {
        policy_diag_init(&local);
        d = &local;
    }
    ZTB_CHECK(rv, out != NULL && (doc != NULL || len == 0), ZTB_ERR_INVALID_ARG);
    *out = NULL;
    if (len > POLICY_MAX_DOC) {
        policy_diag_add(d, 0, 0, "document", NULL, "is %zu bytes; at most %u are allowed", len,
                        POLICY_MAX_DOC);
        rv = ZTB_ERR_TOO_LARGE;
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(doc ? doc : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        policy_diag_add(d, jerr.line > 0 ? (uint32_t)jerr.line : 1,
                        jerr.column > 0 ? (uint32_t)jerr.column : 1, NULL, NULL, "%s", jerr.text);
        rv = ZTB_ERR_JSON;
        goto out;
    }
    p = policy_alloc();
    ZTB_CHECK(rv, p != NULL, ZTB_ERR_NOMEM);
    struct ld L = {.p = p, .a = &p->arena, .d = d};
    parse_doc(&L, root);
    ZTB_TRY(rv, ztb_arena_error(&p->arena));
    ZTB_CHECK(rv, L.errors == 0, ZTB_ERR_POLICY);
    /* canonical order: deny rules first, then by id; groups and responses by name/id */
    if (p->n_rules > 1)
        qsort(p->rules, p->n_rules, sizeof(struct policy_rule), load_cmp_rule);
    if (p->n_responses > 1) /* responses is NULL when there are none */
        qsort(p->responses, p->n_responses, sizeof(struct policy_response_rule), load_cmp_response);
    for (uint32_t i = 0; i < p->n_rules; i++) {
        p->rules[i].index = i;
        if (p->rules[i].effect == POLICY_DENY)
            p->n_deny = i + 1;
    }
    ZTB_TRY(rv, policy_strmap_init(&p->rule_map, &p->arena, p->n_rules));
    for (uint32_t i = 0; i < p->n_rules; i++)
        ZTB_TRY(rv,
                policy_strmap_put(&p->rule_map, p->rules[i].id, strlen(p->rules[i].id), i, NULL));
    ZTB_TRY(rv, policy_compile(p));
    if (policy_overlap_check(p, d) != 0) {
        rv = ZTB_ERR_POLICY;
        goto out;
    }
    ZTB_TRY(rv, ztb_arena_error(&p->arena));
    digest_hex(doc ? doc : "", len, p->digest);
    p->doc = malloc(len + 1);
    if (p->doc == NULL) {
        rv = ZTB_ERR_NOMEM;
        goto out;
    }
    if (len > 0)
        memcpy(p->doc, doc, len);
    p->doc[len] = '\0';
    p->doc_len = len;
    *out = p;
    p = NULL;
out:
    if (rv == ZTB_ERR_NOMEM || rv == ZTB_ERR_TOO_LARGE) {
        if (policy_diag_count(d) == 0)
            policy_diag_add(d, 0, 0, "document", NULL, "%s", ztb_strerror(rv));
    }
    policy_unref(p);
    json_decref(root);
    if (d == &local)
        policy_diag_free(&local);
    return rv;
}

ztb_err policy_load_file(const char *path_, policy **out, policy_diag *diag)
{
    ztb_err rv = ZTB_OK;
    int fd = -1;
    char *buf = NULL;
    policy_diag local;
    policy_diag *d = diag;
    if (d == NULL) {
        policy_diag_init(&local);
        d = &local;
    }
    ZTB_CHECK(rv, path_ != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    *out = NULL;
    fd = open(path_, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        policy_diag_add(d, 0, 0, "file", NULL, "cannot read %s: %s", path_, strerror(errno));
        rv = ZTB_ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        policy_diag_add(d, 0, 0, "file", NULL, "cannot read %s: not a regular file", path_);
        rv = ZTB_ERR_IO;
        goto out;
    }
    /* whoever may write the file decides what every agent may do: a file
     * any local user can write is refused (its group's write is the
     * operators' choice) */
    if (st.st_mode & S_IWOTH) {
        policy_diag_add(d, 0, 0, "file", NULL,
                        "%s is writable by every user (mode %04o): chmod o-w %s", path_,
                        (unsigned)(st.st_mode & 07777), path_);
        rv = ZTB_ERR_PERMISSION;
        goto out;
    }
    if ((uint64_t)st.st_size > POLICY_MAX_DOC) {
        policy_diag_add(d, 0, 0, "file", NULL, "%s is %lld bytes; at most %u are allowed", path_,
                        (long long)st.st_size, POLICY_MAX_DOC);
        rv = ZTB_ERR_TOO_LARGE;
        goto out;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    buf = malloc(cap);
    ZTB_CHECK(rv, buf != NULL, ZTB_ERR_NOMEM);
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            policy_diag_add(d, 0, 0, "file", NULL, "cannot read %s: %s", path_, strerror(errno));
            rv = ZTB_ERR_IO;
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) { /* the file grew while we read it */
            policy_diag_add(d, 0, 0, "file", NULL, "%s changed while being read", path_);
            rv = ZTB_ERR_IO;
            goto out;
        }
    }
    rv = policy_load(buf, len, out, d);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    if (d == &local)
        policy_diag_free(&local);
    return rv;
}
