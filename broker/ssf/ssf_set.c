/*
 * ssf_set.c - read a transmitter's Security Event Token (see ssf_set.h).
 *
 * How it works: before the signature is checked only iss is read, by the
 * strict pull reader over the base64url-decoded payload (never jansson).
 * After it verified, the claims go through the jansson gate and are read
 * member by member; the one event's type picks what it means, and the
 * subject is resolved to an agent (SPIFFE ID, or the transmitter's table)
 * or to a token of ours (jwt_id with our issuer).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "broker/ssf/ssf_set.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "common/json_gate.h"
#include "common/json_reader.h"
#include "pki/spiffe.h"

static ztb_err read_iss(const uint8_t *json, size_t n, char *v, size_t cap, int *has)
{
    struct jr r;
    jr_init(&r, json, n);
    *has = 0;
    ZTB_GUARD(jr_enter_object(&r));
    for (;;) {
        ztb_span name;
        int more;
        ZTB_GUARD(jr_next_member(&r, &name, &more));
        if (!more)
            break;
        if (ztb_span_eq_str(name, "iss") && jr_peek(&r) == JR_STRING) {
            ZTB_GUARD(jr_read_string(&r, v, cap, NULL));
            *has = 1;
        } else {
            ZTB_GUARD(jr_skip(&r));
        }
    }
    return jr_finish(&r);
}

ztb_err ssf_set_peek_iss(const char *jws, size_t n, char *iss, size_t cap)
{
    ZTB_ENSURE(cap > 0, ZTB_ERR_INVALID_ARG);
    iss[0] = '\0';
    ZTB_ENSURE(jws != NULL && n <= SSF_SET_MAX, ZTB_ERR_TOO_LARGE);
    const char *d1 = memchr(jws, '.', n);
    ZTB_ENSURE(d1 != NULL, ZTB_ERR_JWS_FORMAT);
    const char *p = d1 + 1;
    const char *d2 = memchr(p, '.', n - (size_t)(p - jws));
    ZTB_ENSURE(d2 != NULL, ZTB_ERR_JWS_FORMAT);
    uint8_t payload[SSF_SET_MAX];
    size_t len;
    ZTB_GUARD(ztb_b64url_decode(p, (size_t)(d2 - p), payload, sizeof(payload), &len));
    int has = 0;
    ZTB_ENSURE(read_iss(payload, len, iss, cap, &has) == ZTB_OK, ZTB_ERR_JSON);
    ZTB_ENSURE(has && iss[0] != '\0', ZTB_ERR_CLAIMS);
    return ZTB_OK;
}

static ztb_err fail(char *why, size_t cap, ztb_err rv, const char *msg)
{
    snprintf(why, cap, "%s", msg);
    return rv;
}

static int aud_names(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *v;
    if (!json_is_array(aud))
        return 0;
    json_array_foreach(aud, i, v) if (json_is_string(v) &&
                                      strcmp(json_string_value(v), want) == 0) return 1;
    return 0;
}

/* A string member of o, or NULL when absent or not a non-empty string. */
static const char *str_of(json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s != NULL && s[0] != '\0' && strlen(s) == json_string_length(json_object_get(o, name))
               ? s
               : NULL;
}

/*
 * Resolve one simple subject identifier (not complex) into out. 1 when it
 * named an agent or a token of ours, 0 when it is well formed but unknown,
 * -1 when it is malformed (why set).
 */
static int resolve_simple(json_t *sid, const struct ssf_set_opts *o, struct ssf_set *out, char *why,
                          size_t cap)
{
    const char *fmt = str_of(sid, "format");
    if (!json_is_object(sid) || fmt == NULL) {
        snprintf(why, cap, "a subject identifier is an object with a format (RFC 9493)");
        return -1;
    }
    const char *value = NULL;
    char iss_sub[SSF_SUBJECT_MAX + 1];
    if (strcmp(fmt, "jwt_id") == 0) {
        const char *iss = str_of(sid, "iss");
        const char *jti = str_of(sid, "jti");
        if (iss == NULL || jti == NULL) {
            snprintf(why, cap, "a jwt_id subject has iss and jti");
            return -1;
        }
        if (strcmp(iss, o->our_issuer) != 0 || !store_id_ok(jti))
            return 0;
        snprintf(out->token_jti, sizeof(out->token_jti), "%s", jti);
        snprintf(out->subject, sizeof(out->subject), "jwt_id:%s", jti);
        return 1;
    }
    if (strcmp(fmt, "uri") == 0) {
        value = str_of(sid, "uri");
        char name[ZTB_AGENT_NAME_MAX + 1];
        if (value != NULL && strncmp(value, "spiffe://", 9) == 0 &&
            ztb_spiffe_parse_agent(value, strlen(value), o->trust_domain, name, sizeof(name)) ==
                ZTB_OK &&
            strlen(name) < sizeof(out->agent) && store_agent_name_ok(name)) {
            memcpy(out->agent, name, strlen(name) + 1);
            snprintf(out->subject, sizeof(out->subject), "uri:%s", value);
            return 1;
        }
    } else if (strcmp(fmt, "opaque") == 0) {
        value = str_of(sid, "id");
    } else if (strcmp(fmt, "email") == 0) {
        value = str_of(sid, "email");
    } else if (strcmp(fmt, "phone_number") == 0) {
        value = str_of(sid, "phone_number");
    } else if (strcmp(fmt, "account") == 0) {
        value = str_of(sid, "uri");
    } else if (strcmp(fmt, "did") == 0) {
        value = str_of(sid, "url");
    } else if (strcmp(fmt, "iss_sub") == 0) {
        const char *iss = str_of(sid, "iss");
        const char *sub = str_of(sid, "sub");
        if (iss != NULL && sub != NULL) {
            snprintf(iss_sub, sizeof(iss_sub), "%s|%s", iss, sub);
            value = iss_sub;
        }
    } else {
        return 0; /* a format ztb cannot map (aliases, saml_assertion_id, ...) */
    }
    if (value == NULL) {
        snprintf(why, cap, "a subject of format %.32s lacks its member (RFC 9493)", fmt);
        return -1;
    }
    char key[SSF_SUBJECT_MAX + 40];
    snprintf(key, sizeof(key), "%s:%s", fmt, value);
    const char *agent = strlen(key) <= SSF_SUBJECT_MAX ? ssf_subject_lookup(o->t, key) : NULL;
    if (agent == NULL)
        return 0;
    snprintf(out->agent, sizeof(out->agent), "%s", agent);
    /* found: key is at most SSF_SUBJECT_MAX bytes (checked above) */
    _Static_assert(sizeof(out->subject) > SSF_SUBJECT_MAX, "subject holds a whole key");
    memcpy(out->subject, key, strlen(key) + 1);
    return 1;
}

static int resolve(json_t *sid, const struct ssf_set_opts *o, struct ssf_set *out, char *why,
                   size_t cap)
{
    const char *fmt = str_of(sid, "format");
    if (fmt == NULL || strcmp(fmt, "complex") != 0)
        return resolve_simple(sid, o, out, why, cap);
    static const char *const members[] = {"user",   "session",  "application", "device",
                                          "tenant", "org_unit", "group"};
    int found = 0;
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        json_t *m = json_object_get(sid, members[i]);
        if (m == NULL)
            continue;
        struct ssf_set tmp;
        memset(&tmp, 0, sizeof(tmp));
        int r = resolve_simple(m, o, &tmp, why, cap);
        if (r < 0)
            return -1;
        if (r == 0)
            continue;
        if (tmp.token_jti[0] && !out->token_jti[0])
            memcpy(out->token_jti, tmp.token_jti, sizeof(out->token_jti));
        if (tmp.agent[0] && !out->agent[0])
            memcpy(out->agent, tmp.agent, sizeof(out->agent));
        if (!out->subject[0])
            memcpy(out->subject, tmp.subject, sizeof(out->subject));
        found = 1;
    }
    return found;
}

static void read_reason(json_t *ev, struct ssf_set *out)
{
    const char *ie = str_of(ev, "initiating_entity");
    if (ie != NULL && (strcmp(ie, "admin") == 0 || strcmp(ie, "user") == 0 ||
                       strcmp(ie, "policy") == 0 || strcmp(ie, "system") == 0))
        snprintf(out->initiating_entity, sizeof(out->initiating_entity), "%s", ie);
    json_t *ra = json_object_get(ev, "reason_admin");
    const char *text = json_string_value(ra); /* CAEP drafts: a string */
    if (json_is_object(ra)) {
        text = str_of(ra, "en");
        if (text == NULL) {
            const char *k;
            json_t *v;
            json_object_foreach(ra, k, v)
            {
                (void)k;
                text = json_string_value(v);
                break;
            }
        }
    }
    if (text != NULL)
        for (size_t i = 0, j = 0; text[i] && j + 1 < sizeof(out->reason); i++)
            if ((unsigned char)text[i] >= 0x20 && text[i] != 0x7f)
                out->reason[j++] = text[i], out->reason[j] = '\0';
}

ztb_err ssf_set_read(const char *json, size_t n, const struct ssf_set_opts *o, struct ssf_set *out,
                     char *why, size_t cap)
{
    memset(out, 0, sizeof(*out));
    json_t *c = NULL;
    ztb_err rv = ztb_json_gate_load(json, n, SSF_SET_MAX, ZTB_JSON_GATE_DEPTH, 0, &c, why, cap);
    if (rv != ZTB_OK)
        return rv;
    rv = ZTB_ERR_CLAIMS;
    if (!json_is_object(c)) {
        fail(why, cap, rv, "the SET's claims must be a JSON object");
        goto out;
    }
    const char *iss = str_of(c, "iss");
    if (iss == NULL || strcmp(iss, o->t->issuer) != 0) {
        rv = fail(why, cap, ZTB_ERR_ISSUER, "iss is not the transmitter's issuer");
        goto out;
    }
    if (!aud_names(json_object_get(c, "aud"), o->t->audience)) {
        rv = fail(why, cap, ZTB_ERR_AUDIENCE, "aud does not name this receiver's audience");
        goto out;
    }
    json_t *iat = json_object_get(c, "iat");
    if (!json_is_integer(iat)) {
        rv = fail(why, cap, ZTB_ERR_IAT, "iat (an integer NumericDate) is required");
        goto out;
    }
    out->iat = (int64_t)json_integer_value(iat);
    if (out->iat < o->now - o->max_age || out->iat > o->now + o->max_age) {
        snprintf(why, cap, "iat is more than %lld s from now", (long long)o->max_age);
        rv = ZTB_ERR_IAT;
        goto out;
    }
    json_t *exp = json_object_get(c, "exp");
    if (exp != NULL && (!json_is_integer(exp) || json_integer_value(exp) < o->now)) {
        rv = fail(why, cap, ZTB_ERR_EXPIRED, "the SET has expired");
        goto out;
    }
    const char *jti = str_of(c, "jti");
    if (jti == NULL || !store_id_ok(jti)) {
        fail(why, cap, rv, "jti is required: 1..256 printable characters without spaces");
        goto out;
    }
    snprintf(out->jti, sizeof(out->jti), "%s", jti);
    json_t *events = json_object_get(c, "events");
    if (!json_is_object(events) || json_object_size(events) != 1) {
        fail(why, cap, rv, "events must hold exactly one event (SSF 1.0)");
        goto out;
    }
    const char *uri = NULL;
    json_t *ev = NULL;
    json_object_foreach(events, uri, ev) break;
    if (!json_is_object(ev)) {
        fail(why, cap, rv, "the event must be a JSON object");
        goto out;
    }
    out->event = ssf_event_of(uri, strlen(uri)) & SSF_EV_RECEIVED;
    if (out->event == 0) {
        snprintf(why, cap,
                 "event type %.120s is not one ztb receives (CAEP session-revoked, "
                 "credential-change, token-claims-change)",
                 uri);
        rv = ZTB_ERR_UNSUPPORTED;
        goto out;
    }
    json_t *ts = json_object_get(ev, "event_timestamp");
    if (ts != NULL) {
        if (!json_is_integer(ts) || json_integer_value(ts) < 0) {
            fail(why, cap, rv, "event_timestamp must be a NumericDate");
            goto out;
        }
        out->event_time = (int64_t)json_integer_value(ts);
    }
    read_reason(ev, out);
    json_t *sid = json_object_get(c, "sub_id");
    if (sid == NULL)
        sid = json_object_get(ev, "subject");
    if (sid == NULL) {
        fail(why, cap, rv, "the SET names no subject (sub_id)");
        goto out;
    }
    int r = resolve(sid, o, out, why, cap);
    if (r < 0)
        goto out;
    if (r == 0) {
        rv = fail(why, cap, ZTB_ERR_NOT_FOUND,
                  "the subject names no agent of this broker (a SPIFFE ID of its trust domain, "
                  "a jwt_id of its tokens, or an entry of the transmitter's subjects table)");
        goto out;
    }
    rv = ZTB_OK;
out:
    json_decref(c);
    return rv;
}
