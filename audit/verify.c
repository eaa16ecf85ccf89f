/*
 * verify.c - prove an audit log's hash chain (see verify.h).
 *
 * One pass over the file with a fixed line buffer: each line is checked to
 * be whole (ends in a newline, no NUL byte, at most AUDIT_VERIFY_LINE_MAX
 * bytes), read for its seq and prev through chain.h, compared with what the
 * line before predicts, and hashed for the next. It stops at the first
 * break, which it names.
 *
 * audit_verify_files adds what makes truncation visible: the head must be
 * seq 1 from the genesis hash; the hashes of the last AUDIT_VERIFY_WINDOW
 * lines are kept in a ring so a checkpoint's hash is compared with the line
 * it names; a checkpoint line is read with jansson through the JSON gate
 * (the file is not trusted) and its JWS verified with the given keys over
 * the exact bytes audit_checkpoint_payload rebuilds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/chain.h"
#include "audit/verify.h"
#include "common/json_gate.h"
#include "pki/jws.h"

ztb_err audit_verify_file(const char *path, uint64_t *lines, uint64_t *bad_line, char *why,
                          size_t whycap)
{
    *lines = 0;
    *bad_line = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(why, whycap, "%s: %s", path, strerror(errno));
        return ZTB_ERR_IO;
    }
    char *line = malloc(AUDIT_VERIFY_LINE_MAX + 2);
    if (line == NULL) {
        fclose(f);
        return ZTB_ERR_NOMEM;
    }
    char prev[AUDIT_HASH_HEX + 1];
    memcpy(prev, audit_genesis, sizeof(prev));
    uint64_t n = 0, expect_seq = 0;
    ztb_err rv = ZTB_OK;
    while (fgets(line, AUDIT_VERIFY_LINE_MAX + 2, f) != NULL) {
        n++;
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            snprintf(why, whycap, feof(f) ? "last line is incomplete" : "line too long");
            rv = ZTB_ERR_MALFORMED;
            break;
        }
        len--; /* drop the newline */
        line[len] = '\0';
        if (strlen(line) != len) {
            snprintf(why, whycap, "line contains a NUL byte");
            rv = ZTB_ERR_MALFORMED;
            break;
        }
        uint64_t seq;
        char p[AUDIT_HASH_HEX + 1];
        if (audit_chain_seq(line, &seq) != ZTB_OK || audit_chain_prev(line, p) != ZTB_OK) {
            snprintf(why, whycap, "not an audit record (no seq or prev)");
            rv = ZTB_ERR_MALFORMED;
            break;
        }
        if (n == 1)
            expect_seq = seq; /* a rotated file starts where the last one ended */
        if (seq != expect_seq) {
            snprintf(why, whycap, "seq %llu where %llu was expected (a line removed or added)",
                     (unsigned long long)seq, (unsigned long long)expect_seq);
            rv = ZTB_ERR_SIGNATURE;
            break;
        }
        if (n > 1 && strcmp(p, prev) != 0) {
            snprintf(why, whycap, "prev hash does not match the line before (changed line %llu)",
                     (unsigned long long)(n - 1));
            rv = ZTB_ERR_SIGNATURE;
            break;
        }
        if (n == 1 && seq == 1 && strcmp(p, audit_genesis) != 0) {
            snprintf(why, whycap, "first record's prev is not the genesis hash");
            rv = ZTB_ERR_SIGNATURE;
            break;
        }
        audit_chain_hash(line, len, prev);
        expect_seq = seq + 1;
    }
    if (rv != ZTB_OK)
        *bad_line = n;
    else
        *lines = n;
    free(line);
    fclose(f);
    return rv;
}

/* ---- the whole log: head, replica, checkpoints, anchor ------------------- */

struct vstate {
    const struct audit_verify_opts *o;
    struct audit_verify_report *r;
    char (*ring)[AUDIT_HASH_HEX + 1]; /* the hash of line seq at ring[seq % WINDOW] */
    char prev[AUDIT_HASH_HEX + 1];    /* the hash of the last line */
    uint64_t expect_seq;              /* 0: no line yet */
    uint64_t cp_to;                   /* the last valid checkpoint's "to" */
    uint64_t anchor_seq;
    char anchor_hash[AUDIT_HASH_HEX + 1];
};

static int is_hex64(const char *s)
{
    if (s == NULL || strlen(s) != AUDIT_HASH_HEX)
        return 0;
    for (int i = 0; i < AUDIT_HASH_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* "SEQ:HASH" into v; 0 if it is not one. */
static int parse_anchor(const char *a, struct vstate *v)
{
    char *end;
    errno = 0;
    if (a[0] < '1' || a[0] > '9')
        return 0;
    unsigned long long s = strtoull(a, &end, 10);
    if (errno != 0 || *end != ':' || !is_hex64(end + 1))
        return 0;
    v->anchor_seq = s;
    memcpy(v->anchor_hash, end + 1, sizeof(v->anchor_hash));
    return 1;
}

/*
 * A checkpoint line (line, seq, its own hash): its members, its place (to
 * before it, not behind the last one, within the window), its hash against
 * the line it names, and, with keys, its signature over exactly
 * audit_checkpoint_payload. SIGNATURE (why) if anything is off; ZTB_OK
 * with *is_cp 0 if the line is no checkpoint at all.
 */
static ztb_err check_checkpoint(struct vstate *v, const char *line, size_t len, uint64_t seq,
                                const char *self, int *is_cp)
{
    struct audit_verify_report *r = v->r;
    *is_cp = 0;
    if (strstr(line, "\"event\":\"" AUDIT_CHECKPOINT_EVENT "\"") == NULL)
        return ZTB_OK;
    json_t *j = NULL;
    char jwhy[128];
    if (ztb_json_gate_load(line, len, AUDIT_VERIFY_LINE_MAX, ZTB_JSON_GATE_DEPTH, 0, &j, jwhy,
                           sizeof(jwhy)) != ZTB_OK ||
        !json_is_object(j)) {
        json_decref(j);
        snprintf(r->why, sizeof(r->why), "not a JSON record: %s", jwhy);
        return ZTB_ERR_MALFORMED;
    }
    const char *event = json_string_value(json_object_get(j, "event"));
    if (event == NULL || strcmp(event, AUDIT_CHECKPOINT_EVENT) != 0) {
        json_decref(j);
        return ZTB_OK; /* the text was somewhere else */
    }
    *is_cp = 1;
    json_t *jf = json_object_get(j, "from"), *jt = json_object_get(j, "to");
    const char *hash = json_string_value(json_object_get(j, "hash"));
    const char *jws = json_string_value(json_object_get(j, "jws"));
    ztb_err rv = ZTB_ERR_SIGNATURE;
    if (!json_is_integer(jf) || !json_is_integer(jt) || !is_hex64(hash) || jws == NULL ||
        json_integer_value(jf) < 1 || json_integer_value(jt) < json_integer_value(jf)) {
        snprintf(r->why, sizeof(r->why), "checkpoint (seq %llu) lacks from, to, hash or jws",
                 (unsigned long long)seq);
        goto out;
    }
    uint64_t from = (uint64_t)json_integer_value(jf), to = (uint64_t)json_integer_value(jt);
    if (to >= seq || to < v->cp_to || to < r->first_seq) {
        snprintf(r->why, sizeof(r->why),
                 "checkpoint (seq %llu) covers up to seq %llu, out of place (a moved line)",
                 (unsigned long long)seq, (unsigned long long)to);
        goto out;
    }
    if (seq - to >= AUDIT_VERIFY_WINDOW) {
        snprintf(r->why, sizeof(r->why), "checkpoint (seq %llu) names seq %llu, too far back",
                 (unsigned long long)seq, (unsigned long long)to);
        goto out;
    }
    if (strcmp(v->ring[to % AUDIT_VERIFY_WINDOW], hash) != 0) {
        snprintf(r->why, sizeof(r->why),
                 "checkpoint (seq %llu) does not match line seq %llu: changed after signing",
                 (unsigned long long)seq, (unsigned long long)to);
        goto out;
    }
    if (v->o->keys != NULL) {
        ztb_jws_header hdr;
        ztb_buf payload, want;
        ztb_buf_init(&payload, 1024);
        ztb_buf_init(&want, 1024);
        audit_checkpoint_payload(r->replica, from, to, hash, &want);
        ztb_err vr = ztb_jws_verify(v->o->keys, jws, strlen(jws), NULL, &hdr, &payload);
        int same = vr == ZTB_OK && payload.len == want.len &&
                   memcmp(payload.data, want.data, want.len) == 0;
        int typ_ok = vr == ZTB_OK && ztb_jws_header_typ_is(&hdr, AUDIT_CHECKPOINT_TYP);
        ztb_buf_free(&payload);
        ztb_buf_free(&want);
        if (vr != ZTB_OK) {
            snprintf(r->why, sizeof(r->why), "checkpoint (seq %llu): signature: %s",
                     (unsigned long long)seq, ztb_strerror(vr));
            goto out;
        }
        if (!typ_ok || !same) {
            snprintf(r->why, sizeof(r->why),
                     "checkpoint (seq %llu): the signature is for other contents (%s)",
                     (unsigned long long)seq, typ_ok ? "range, hash or replica" : "typ");
            goto out;
        }
        snprintf(r->checkpoint_kid, sizeof(r->checkpoint_kid), "%s", hdr.kid);
    } else {
        const char *kid = json_string_value(json_object_get(j, "kid"));
        snprintf(r->checkpoint_kid, sizeof(r->checkpoint_kid), "%s", kid ? kid : "");
    }
    v->cp_to = to;
    r->proven_to = to;
    r->checkpoint_at = seq;
    memcpy(r->checkpoint_hash, self, sizeof(r->checkpoint_hash));
    r->checkpoints++;
    rv = ZTB_OK;
out:
    json_decref(j);
    return rv;
}

/* One whole line (len bytes, NUL-terminated, no newline). */
static ztb_err check_line(struct vstate *v, const char *line, size_t len)
{
    struct audit_verify_report *r = v->r;
    uint64_t seq;
    char p[AUDIT_HASH_HEX + 1], replica[AUDIT_REPLICA_ID_MAX + 1];
    if (audit_chain_seq(line, &seq) != ZTB_OK || audit_chain_prev(line, p) != ZTB_OK ||
        audit_chain_replica(line, replica) != ZTB_OK) {
        snprintf(r->why, sizeof(r->why), "not an audit record (no seq, prev or valid replica)");
        return ZTB_ERR_MALFORMED;
    }
    if (v->expect_seq == 0) { /* the first line of the log */
        if (seq != 1 || strcmp(p, audit_genesis) != 0) {
            snprintf(r->why, sizeof(r->why),
                     "the log starts at seq %llu: records before it are missing (head "
                     "truncated; a rotated log is verified with its older files first)",
                     (unsigned long long)seq);
            return ZTB_ERR_TRUNCATED;
        }
        r->first_seq = seq;
        memcpy(r->replica, replica, sizeof(r->replica));
    } else {
        if (seq != v->expect_seq) {
            if (seq > v->expect_seq)
                snprintf(r->why, sizeof(r->why),
                         "seq %llu where %llu was expected: records %llu..%llu removed (or moved)",
                         (unsigned long long)seq, (unsigned long long)v->expect_seq,
                         (unsigned long long)v->expect_seq, (unsigned long long)seq - 1);
            else
                snprintf(r->why, sizeof(r->why),
                         "seq %llu where %llu was expected: a line inserted, repeated or moved",
                         (unsigned long long)seq, (unsigned long long)v->expect_seq);
            return ZTB_ERR_SIGNATURE;
        }
        if (strcmp(p, v->prev) != 0) {
            snprintf(r->why, sizeof(r->why),
                     "prev does not match the line before: seq %llu was changed, or this line "
                     "replaced",
                     (unsigned long long)seq - 1);
            return ZTB_ERR_SIGNATURE;
        }
        if (strcmp(replica, r->replica) != 0) {
            snprintf(r->why, sizeof(r->why), "replica \"%s\" in a chain of replica \"%s\"", replica,
                     r->replica);
            return ZTB_ERR_SIGNATURE;
        }
    }
    char self[AUDIT_HASH_HEX + 1];
    audit_chain_hash(line, len, self);
    memcpy(v->ring[seq % AUDIT_VERIFY_WINDOW], self, sizeof(self));
    int is_cp;
    ztb_err rv = check_checkpoint(v, line, len, seq, self, &is_cp);
    if (rv != ZTB_OK)
        return rv;
    if (v->anchor_seq != 0 && seq == v->anchor_seq) {
        if (strcmp(self, v->anchor_hash) != 0 || !is_cp) {
            snprintf(r->why, sizeof(r->why),
                     "seq %llu is not the anchored checkpoint: the log was changed or rewritten "
                     "up to it",
                     (unsigned long long)seq);
            return ZTB_ERR_SIGNATURE;
        }
        r->anchor_found = 1;
    }
    memcpy(v->prev, self, sizeof(v->prev));
    v->expect_seq = seq + 1;
    r->last_seq = seq;
    return ZTB_OK;
}

ztb_err audit_verify_files(const char *const *paths, size_t n, const struct audit_verify_opts *o,
                           struct audit_verify_report *r)
{
    memset(r, 0, sizeof(*r));
    static const struct audit_verify_opts none = {0};
    struct vstate v = {.o = o ? o : &none, .r = r};
    r->signatures_checked = v.o->keys != NULL;
    if (v.o->anchor != NULL && !parse_anchor(v.o->anchor, &v)) {
        snprintf(r->why, sizeof(r->why), "the anchor must be SEQ:HASH (64 hex digits)");
        return ZTB_ERR_INVALID_ARG;
    }
    v.ring = calloc(AUDIT_VERIFY_WINDOW, sizeof(*v.ring));
    char *line = malloc(AUDIT_VERIFY_LINE_MAX + 2);
    if (v.ring == NULL || line == NULL) {
        free(v.ring);
        free(line);
        return ZTB_ERR_NOMEM;
    }
    ztb_err rv = ZTB_OK;
    uint64_t ln = 0;
    size_t fi = 0;
    for (; fi < n && rv == ZTB_OK; fi++) {
        FILE *f = fopen(paths[fi], "r");
        ln = 0;
        if (f == NULL) {
            snprintf(r->why, sizeof(r->why), "%s: %s", paths[fi], strerror(errno));
            rv = ZTB_ERR_IO;
            break;
        }
        while (rv == ZTB_OK && fgets(line, AUDIT_VERIFY_LINE_MAX + 2, f) != NULL) {
            ln++;
            size_t len = strlen(line);
            if (len == 0 || line[len - 1] != '\n') {
                snprintf(r->why, sizeof(r->why),
                         feof(f) ? "last line is incomplete" : "line too long or has a NUL byte");
                rv = ZTB_ERR_MALFORMED;
                break;
            }
            line[--len] = '\0';
            if (strlen(line) != len) {
                snprintf(r->why, sizeof(r->why), "line contains a NUL byte");
                rv = ZTB_ERR_MALFORMED;
                break;
            }
            rv = check_line(&v, line, len);
            if (rv == ZTB_OK)
                r->records++;
        }
        fclose(f);
        if (rv != ZTB_OK)
            break;
    }
    if (rv != ZTB_OK) {
        r->bad_file = fi;
        r->bad_line = ln;
    } else if (v.anchor_seq != 0 && !r->anchor_found) {
        snprintf(r->why, sizeof(r->why),
                 "the log ends at seq %llu, before the anchor's seq %llu: its end was cut off",
                 (unsigned long long)r->last_seq, (unsigned long long)v.anchor_seq);
        r->bad_file = n > 0 ? n - 1 : 0;
        r->bad_line = ln + 1;
        rv = ZTB_ERR_TRUNCATED;
    }
    free(line);
    free(v.ring);
    return rv;
}
