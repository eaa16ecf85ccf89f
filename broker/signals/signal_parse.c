/*
 * signal_parse.c - read an anomaly signal (see signal_parse.h).
 *
 * How it works: the text is bounded and its nesting depth checked before
 * jansson sees it (duplicate names refused), then every member is checked
 * against a fixed list, by type and range, into fixed-size fields. The
 * evidence is re-serialised compactly after credential-looking strings were
 * replaced, so what gets stored is exactly what was checked.
 *
 * Must never: write past a field (every copy is bounded), keep a pointer
 * into the parsed JSON after returning, or let a credential in the evidence
 * through to the store or the audit log.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "broker/signals/signal_parse.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "common/json_gate.h"
#include "common/json_reader.h"
#include "common/log.h"
#include "pki/spiffe.h"
#include "policy/policy.h"

#define DEPTH_MAX 12

__attribute__((format(printf, 3, 4))) static ztb_err fail(char *why, size_t cap, const char *fmt,
                                                          ...)
{
    if (cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return ZTB_ERR_MALFORMED;
}

int signal_type_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n > SIGNAL_TYPE_MAX)
        return 0;
    if (!((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= '0' && t[0] <= '9')))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* Refuse members of o not in allowed (NULL-terminated). */
static ztb_err only(json_t *o, const char *const *allowed, const char *where, char *why, size_t cap)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL; a++)
            ok |= strcmp(*a, k) == 0;
        if (!ok)
            return fail(why, cap, "unknown member '%.64s' in %s", k, where);
    }
    return ZTB_OK;
}

/* A bounded id string member (optional): copied into out (STORE_ID_MAX + 1). */
static ztb_err id_member(json_t *o, const char *name, const char *where, char *out, char *why,
                         size_t cap)
{
    json_t *v = json_object_get(o, name);
    out[0] = '\0';
    if (v == NULL)
        return ZTB_OK;
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) != json_string_length(v) || !store_id_ok(s))
        return fail(why, cap, "%s.%s must be 1..%d printable characters without spaces", where,
                    name, STORE_ID_MAX);
    memcpy(out, s, strlen(s) + 1);
    return ZTB_OK;
}

/* An optional integer time member: 0 if absent. */
static ztb_err time_member(json_t *o, const char *name, const char *where, int64_t *out, char *why,
                           size_t cap)
{
    json_t *v = json_object_get(o, name);
    *out = 0;
    if (v == NULL)
        return ZTB_OK;
    if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
        json_integer_value(v) > 32503680000LL) /* year 3000 */
        return fail(why, cap, "%s.%s must be a positive integer (Unix seconds)", where, name);
    *out = (int64_t)json_integer_value(v);
    return ZTB_OK;
}

static ztb_err parse_subject(json_t *sub, const struct signal_parse_opts *o, struct signal *s,
                             char *why, size_t cap)
{
    static const char *const allowed[] = {"agent", "jti", "exp", "audience", "kid", NULL};
    if (!json_is_object(sub))
        return fail(why, cap, "subject must be an object naming agent, jti, audience or kid");
    ZTB_GUARD(only(sub, allowed, "subject", why, cap));
    json_t *a = json_object_get(sub, "agent");
    if (a != NULL) {
        const char *v = json_string_value(a);
        if (v == NULL || strlen(v) != json_string_length(a))
            return fail(why, cap, "subject.agent must be a string");
        char name[ZTB_AGENT_NAME_MAX + 1];
        if (strncmp(v, "spiffe://", 9) == 0) {
            if (ztb_spiffe_parse_agent(v, strlen(v), o->trust_domain, name, sizeof(name)) != ZTB_OK)
                return fail(why, cap, "subject.agent is not an agent SPIFFE ID of trust domain %s",
                            o->trust_domain);
            v = name;
        }
        if (!store_agent_name_ok(v))
            return fail(why, cap, "subject.agent is not a valid agent name");
        memcpy(s->agent, v, strlen(v) + 1);
    }
    ZTB_GUARD(id_member(sub, "jti", "subject", s->jti, why, cap));
    ZTB_GUARD(id_member(sub, "audience", "subject", s->audience, why, cap));
    ZTB_GUARD(id_member(sub, "kid", "subject", s->kid, why, cap));
    ZTB_GUARD(time_member(sub, "exp", "subject", &s->jti_exp, why, cap));
    if (s->jti_exp != 0 && s->jti[0] == '\0')
        return fail(why, cap, "subject.exp is the expiry of subject.jti: give both");
    if (!s->agent[0] && !s->jti[0] && !s->audience[0] && !s->kid[0])
        return fail(why, cap, "subject must name at least one of agent, jti, audience, kid");
    return ZTB_OK;
}

/* Replace credential-looking strings (by value, or by the member's name). */
static void scrub(json_t *v, int depth)
{
    if (depth > DEPTH_MAX)
        return;
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, m)
        {
            if (json_is_string(m) &&
                (ztb_log_key_is_secret(k) || ztb_log_value_is_secret(json_string_value(m))))
                json_object_set_new(v, k, json_string("[redacted]"));
            else
                scrub(m, depth + 1);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            if (json_is_string(m) && ztb_log_value_is_secret(json_string_value(m)))
                json_array_set_new(v, i, json_string("[redacted]"));
            else
                scrub(m, depth + 1);
        }
    }
}

static ztb_err parse_event(const char *name, json_t *ev, const struct signal_parse_opts *o,
                           struct signal *s, char *why, size_t cap)
{
    static const char *const allowed[] = {"subject",  "severity",        "confidence",
                                          "evidence", "event_timestamp", NULL};
    const char *type = name;
    if (strncmp(name, SIGNAL_URI_PREFIX, strlen(SIGNAL_URI_PREFIX)) == 0)
        type = name + strlen(SIGNAL_URI_PREFIX);
    if (!signal_type_ok(type))
        return fail(
            why, cap,
            "event type must be a signal type (1..64 of a-z 0-9 _ . : -) or " SIGNAL_URI_PREFIX
            "<type>");
    memcpy(s->type, type, strlen(type) + 1);
    if (!json_is_object(ev))
        return fail(why, cap, "the event must be an object");
    ZTB_GUARD(only(ev, allowed, "the event", why, cap));
    ZTB_GUARD(parse_subject(json_object_get(ev, "subject"), o, s, why, cap));
    const char *sev = json_string_value(json_object_get(ev, "severity"));
    if (sev == NULL || policy_severity_parse(sev, &s->severity) != ZTB_OK)
        return fail(why, cap, "severity must be one of low, medium, high, critical");
    json_t *c = json_object_get(ev, "confidence");
    double conf = json_is_number(c) ? json_number_value(c) : -1.0;
    if (!json_is_number(c) || isnan(conf) || conf < 0.0 || conf > 1.0)
        return fail(why, cap, "confidence must be a number from 0 to 1");
    s->confidence = conf;
    ZTB_GUARD(time_member(ev, "event_timestamp", "the event", &s->event_time, why, cap));
    json_t *e = json_object_get(ev, "evidence");
    if (e != NULL) {
        scrub(e, 0);
        char *text = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        size_t tl = text ? strlen(text) : 0;
        if (text == NULL || tl > SIGNAL_EVIDENCE_MAX) {
            free(text);
            return fail(why, cap, "evidence is larger than %d bytes (compact JSON)",
                        SIGNAL_EVIDENCE_MAX);
        }
        memcpy(s->evidence, text, tl + 1);
        free(text);
    }
    return ZTB_OK;
}

static ztb_err parse_claims(json_t *j, const struct signal_parse_opts *o, struct signal *s,
                            char *why, size_t cap)
{
    static const char *const allowed[] = {"iss", "aud", "iat", "jti", "events", "toe", "txn", NULL};
    ZTB_GUARD(only(j, allowed, "the signal", why, cap));
    json_t *iss = json_object_get(j, "iss");
    if (iss != NULL || o->signed_set) {
        const char *v = json_string_value(iss);
        if (v == NULL)
            return fail(why, cap, "iss must be the source's name");
        if (o->source == NULL || strcmp(v, o->source) != 0) {
            fail(why, cap, "iss is not the authenticated source's name");
            return ZTB_ERR_ISSUER;
        }
    }
    json_t *aud = json_object_get(j, "aud");
    if (aud != NULL || o->signed_set) {
        int ok = json_is_string(aud) && o->issuer && strcmp(json_string_value(aud), o->issuer) == 0;
        for (size_t i = 0; i < json_array_size(aud); i++) {
            const char *a = json_string_value(json_array_get(aud, i));
            ok |= a != NULL && o->issuer != NULL && strcmp(a, o->issuer) == 0;
        }
        if (!ok) {
            fail(why, cap, "aud must name this broker (%s)", o->issuer ? o->issuer : "");
            return ZTB_ERR_AUDIENCE;
        }
    }
    ZTB_GUARD(time_member(j, "iat", "the signal", &s->iat, why, cap));
    if (o->signed_set) {
        if (s->iat == 0)
            return fail(why, cap, "a signed SET needs iat");
        if (s->iat < o->now - SIGNAL_MAX_AGE || s->iat > o->now + SIGNAL_MAX_AGE) {
            fail(why, cap, "iat is more than %d seconds away from now", SIGNAL_MAX_AGE);
            return ZTB_ERR_IAT;
        }
    }
    json_t *jti = json_object_get(j, "jti");
    if (jti == NULL)
        return fail(why, cap, "jti (the signal's unique id) is required");
    ZTB_GUARD(id_member(j, "jti", "the signal", s->source_jti, why, cap));
    json_t *t = json_object_get(j, "toe");
    if (t != NULL && !json_is_integer(t))
        return fail(why, cap, "toe must be an integer");
    t = json_object_get(j, "txn");
    if (t != NULL && !json_is_string(t))
        return fail(why, cap, "txn must be a string");
    json_t *events = json_object_get(j, "events");
    if (!json_is_object(events) || json_object_size(events) != 1)
        return fail(why, cap, "events must be an object with exactly one event");
    void *it = json_object_iter(events);
    return parse_event(json_object_iter_key(it), json_object_iter_value(it), o, s, why, cap);
}

/* Clear everything the parser fills (id and source are the caller's). */
static void clear_parsed(struct signal *s)
{
    char id[sizeof(s->id)], source[sizeof(s->source)];
    memcpy(id, s->id, sizeof(id));
    memcpy(source, s->source, sizeof(source));
    memset(s, 0, sizeof(*s));
    memcpy(s->id, id, sizeof(id));
    memcpy(s->source, source, sizeof(source));
}

ztb_err signal_parse(const char *json, size_t n, const struct signal_parse_opts *o,
                     struct signal *s, char *why, size_t whycap)
{
    clear_parsed(s);
    if (whycap > 0)
        why[0] = '\0';
    if (json == NULL || o == NULL)
        return ZTB_ERR_INVALID_ARG;
    if (n > SIGNAL_BODY_MAX) {
        fail(why, whycap, "a signal is at most %d bytes", SIGNAL_BODY_MAX);
        return ZTB_ERR_TOO_LARGE;
    }
    json_t *j = NULL;
    char gate_why[200];
    if (ztb_json_gate_load(json, n, SIGNAL_BODY_MAX, DEPTH_MAX, 0, &j, gate_why,
                           sizeof(gate_why)) != ZTB_OK) {
        fail(why, whycap, "%s", gate_why);
        return ZTB_ERR_JSON;
    }
    if (!json_is_object(j)) {
        fail(why, whycap, "a signal is a JSON object");
        json_decref(j);
        return ZTB_ERR_JSON;
    }
    ztb_err rv = parse_claims(j, o, s, why, whycap);
    json_decref(j);
    if (rv != ZTB_OK)
        clear_parsed(s); /* nothing half-filled survives a refusal */
    return rv;
}

/* The string iss of a SET's claims into v[cap] (*has = 1 if it was a string
 * that fit), every other member skipped: strict JSON or an error. */
static ztb_err read_iss(const uint8_t *json, size_t n, char *v, size_t cap, int *has)
{
    struct jr r;
    jr_init_limits(&r, json, n, DEPTH_MAX, JR_NAMES, JR_ARENA - 1);
    *has = 0;
    ZTB_GUARD(jr_enter_object(&r));
    for (;;) {
        ztb_span name;
        int more;
        ZTB_GUARD(jr_next_member(&r, &name, &more));
        if (!more)
            break;
        if (ztb_span_eq_str(name, "iss") && jr_peek(&r) == JR_STRING) {
            ztb_err rv = jr_read_string(&r, v, cap, NULL);
            if (rv != ZTB_ERR_TOO_LARGE) { /* too long to be a source name */
                ZTB_GUARD(rv);
                *has = 1;
            }
        } else {
            ZTB_GUARD(jr_skip(&r));
        }
    }
    return jr_finish(&r);
}

ztb_err signal_set_peek_iss(const char *jws, size_t n, char iss[STORE_SOURCE_MAX + 1])
{
    iss[0] = '\0';
    ZTB_ENSURE(jws != NULL && n <= SIGNAL_BODY_MAX, ZTB_ERR_TOO_LARGE);
    const char *d1 = memchr(jws, '.', n);
    ZTB_ENSURE(d1 != NULL, ZTB_ERR_JWS_FORMAT);
    const char *p = d1 + 1;
    const char *d2 = memchr(p, '.', n - (size_t)(p - jws));
    ZTB_ENSURE(d2 != NULL, ZTB_ERR_JWS_FORMAT);
    uint8_t payload[SIGNAL_BODY_MAX];
    size_t len;
    ZTB_GUARD(ztb_b64url_decode(p, (size_t)(d2 - p), payload, sizeof(payload), &len));
    /* not yet authenticated: the strict reader, not jansson */
    char v[STORE_SOURCE_MAX + 1];
    int has_iss = 0;
    ZTB_ENSURE(read_iss(payload, len, v, sizeof(v), &has_iss) == ZTB_OK, ZTB_ERR_JSON);
    ZTB_ENSURE(has_iss && store_source_name_ok(v), ZTB_ERR_CLAIMS);
    snprintf(iss, STORE_SOURCE_MAX + 1, "%s", v);
    return ZTB_OK;
}
