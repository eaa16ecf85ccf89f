/*
 * ssf_stream.c - an SSF event stream's requests, record and configuration
 * (see ssf_stream.h).
 *
 * How it works: a request is applied to a copy of the stream, member by
 * member, and the copy replaces the stream only when every member passed;
 * the stored record is the same fields in JSON (owner and authorization
 * included), read back through the jansson gate.
 *
 * Must never: let a request set a transmitter-supplied member (the owner,
 * aud, status are ours), or write an authorization value anywhere but the
 * record.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/http/push_client.h"
#include "broker/ssf/ssf_stream.h"
#include "common/json_gate.h"
#include "common/secret.h"

#define SSF_REQUEST_MAX    (32 * 1024)
#define SSF_EVENTS_MAX     64
#define SSF_AUTH_VALUE_MAX 4096

static const char *const status_names[] = {"enabled", "paused", "disabled"};

const char *ssf_stream_status_name(enum ssf_stream_status s)
{
    return (unsigned)s < 3 ? status_names[s] : "disabled";
}

int ssf_stream_status_of(const char *name)
{
    for (int i = 0; name != NULL && i < 3; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* A string member that is one line of printable text under cap bytes. */
static const char *text_member(json_t *v, size_t cap)
{
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) != json_string_length(v) || strlen(s) >= cap || !printable(s))
        return NULL;
    return s;
}

/* Write the problem into why; MALFORMED. */
__attribute__((format(printf, 3, 4))) static ztb_err bad(char *why, size_t cap, const char *fmt,
                                                         ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return ZTB_ERR_MALFORMED;
}

/* delivery {method, endpoint_url, authorization_header} into t. */
static ztb_err read_delivery(json_t *d, struct ssf_stream *t, char *why, size_t cap)
{
    if (!json_is_object(d))
        return bad(why, cap, "%s", "delivery must be an object {method, endpoint_url, ...}");
    const char *k;
    json_t *v;
    json_object_foreach(d, k, v)
    {
        if (strcmp(k, "method") != 0 && strcmp(k, "endpoint_url") != 0 &&
            strcmp(k, "authorization_header") != 0)
            return bad(why, cap, "delivery: unknown member \"%.60s\"", k);
    }
    const char *m = json_string_value(json_object_get(d, "method"));
    if (m == NULL || strcmp(m, SSF_DELIVERY_PUSH) != 0)
        return bad(why, cap,
                   "delivery.method must be \"%s\" (push, RFC 8935): ztb does not serve poll",
                   SSF_DELIVERY_PUSH);
    const char *url = text_member(json_object_get(d, "endpoint_url"), sizeof(t->url));
    if (url == NULL)
        return bad(why, cap, "%s", "delivery.endpoint_url is required: the URL SETs are pushed to");
    char uerr[256];
    if (push_url_check(url, 0, uerr, sizeof(uerr)) != ZTB_OK) {
        snprintf(why, cap, "delivery.endpoint_url: %s", uerr);
        return ZTB_ERR_MALFORMED;
    }
    snprintf(t->url, sizeof(t->url), "%s", url);
    ztb_free_secret_str(t->authorization);
    t->authorization = NULL;
    json_t *a = json_object_get(d, "authorization_header");
    if (a != NULL) {
        const char *s = text_member(a, SSF_AUTH_VALUE_MAX);
        if (s == NULL || s[0] == '\0')
            return bad(why, cap, "%s",
                       "delivery.authorization_header must be the header's printable value");
        if ((t->authorization = strdup(s)) == NULL)
            return ZTB_ERR_NOMEM;
    }
    return ZTB_OK;
}

static ztb_err read_events(json_t *ev, unsigned *mask, char *why, size_t cap)
{
    if (!json_is_array(ev) || json_array_size(ev) > SSF_EVENTS_MAX)
        return bad(why, cap, "%s",
                   "events_requested must be an array of at most 64 event type URIs");
    size_t i;
    json_t *v;
    unsigned m = 0;
    json_array_foreach(ev, i, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL || strlen(s) > 512)
            return bad(why, cap, "%s", "events_requested must hold event type URIs (strings)");
        /* one ztb does not send is simply not delivered (SSF 1.0 §8.1.1:
         * events_delivered is the intersection) */
        m |= ssf_event_of(s, strlen(s)) & SSF_EV_SENT;
    }
    *mask = m;
    return ZTB_OK;
}

ztb_err ssf_stream_apply(struct ssf_stream *s, json_t *body, enum ssf_stream_op op, char *why,
                         size_t cap)
{
    if (!json_is_object(body))
        return bad(why, cap, "%s", "the request body must be a JSON object");
    static const char *const known[] = {"stream_id",
                                        "iss",
                                        "aud",
                                        "events_supported",
                                        "events_requested",
                                        "events_delivered",
                                        "delivery",
                                        "min_verification_interval",
                                        "inactivity_timeout",
                                        "description",
                                        NULL};
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        int ok = 0;
        for (size_t i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok)
            return bad(why, cap, "unknown member \"%.60s\" (SSF 1.0 stream configuration)", k);
    }
    json_t *sid = json_object_get(body, "stream_id");
    if (op != SSF_OP_CREATE) {
        const char *id = json_string_value(sid);
        if (id == NULL || strcmp(id, s->id) != 0)
            return bad(why, cap, "%s", "stream_id is required and must name the stream");
    }
    struct ssf_stream t = *s;
    t.authorization = NULL;
    if (op != SSF_OP_UPDATE) {
        t.events = 0;
        t.url[0] = '\0';
        t.description[0] = '\0';
    } else if (s->authorization != NULL && (t.authorization = strdup(s->authorization)) == NULL) {
        return ZTB_ERR_NOMEM;
    }
    ztb_err rv = ZTB_OK;
    json_t *ev = json_object_get(body, "events_requested");
    if (ev != NULL)
        rv = read_events(ev, &t.events, why, cap);
    json_t *d = json_object_get(body, "delivery");
    if (rv == ZTB_OK && d != NULL)
        rv = read_delivery(d, &t, why, cap);
    else if (rv == ZTB_OK && op != SSF_OP_UPDATE)
        rv = bad(why, cap,
                 "delivery is required: {\"method\": \"%s\", \"endpoint_url\": \"https://...\"}",
                 SSF_DELIVERY_PUSH);
    json_t *desc = json_object_get(body, "description");
    if (rv == ZTB_OK && desc != NULL) {
        const char *dt = text_member(desc, sizeof(t.description));
        if (dt == NULL)
            rv = bad(why, cap, "description must be printable text under %d bytes",
                     SSF_DESCRIPTION_MAX);
        else
            snprintf(t.description, sizeof(t.description), "%s", dt);
    }
    if (rv != ZTB_OK) {
        ztb_free_secret_str(t.authorization);
        return rv;
    }
    ztb_free_secret_str(s->authorization);
    *s = t;
    return ZTB_OK;
}

ztb_err ssf_stream_apply_text(struct ssf_stream *s, const char *text, size_t n,
                              enum ssf_stream_op op, char *why, size_t cap)
{
    json_t *doc = NULL;
    ztb_err rv =
        ztb_json_gate_load(text, n, SSF_REQUEST_MAX, ZTB_JSON_GATE_DEPTH, 0, &doc, why, cap);
    if (rv != ZTB_OK)
        return rv;
    rv = ssf_stream_apply(s, doc, op, why, cap);
    json_decref(doc);
    return rv;
}

/* The event type URIs of mask, as a new array. */
static json_t *event_list(unsigned mask)
{
    json_t *a = json_array();
    for (unsigned bit = 1; a != NULL && bit != 0 && bit <= SSF_EV_KEY_TAINTED; bit <<= 1)
        if (mask & bit)
            json_array_append_new(a, json_string(ssf_event_uri(bit)));
    return a;
}

/* Wipe jansson's own copy of a secret string value before it is freed
 * (json_string_value is the value's buffer; NULL or a non-string: no-op). */
static void wipe_string(json_t *v)
{
    if (!json_is_string(v))
        return;
    const char *cv = json_string_value(v);
    char *w;
    memcpy(&w, &cv, sizeof(w)); /* jansson's buffer is its own, and writable */
    ztb_wipe(w, json_string_length(v));
}

char *ssf_stream_record(const struct ssf_stream *s)
{
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:I}", "id", s->id, "owner", s->owner, "aud", s->aud,
        "events", (json_int_t)s->events, "url", s->url, "description", s->description, "status",
        ssf_stream_status_name(s->status), "reason", s->reason, "created", (json_int_t)s->created);
    if (j != NULL && s->authorization != NULL)
        json_object_set_new(j, "authorization", json_string(s->authorization));
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    wipe_string(json_object_get(j, "authorization"));
    json_decref(j);
    return text;
}

/* Copy string member name of o into out (cap), required; 0 if it does not fit. */
static int copy_member(json_t *o, const char *name, char *out, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, name));
    if (v == NULL || strlen(v) >= cap)
        return 0;
    memcpy(out, v, strlen(v) + 1);
    return 1;
}

ztb_err ssf_stream_from_record(const char *text, size_t n, struct ssf_stream *s)
{
    memset(s, 0, sizeof(*s));
    json_t *j = NULL;
    char why[128];
    ztb_err rv = ztb_json_gate_load(text, n, STORE_SSF_RECORD_MAX, ZTB_JSON_GATE_DEPTH, 0, &j, why,
                                    sizeof(why));
    if (rv != ZTB_OK)
        return ZTB_ERR_MALFORMED;
    int st = ssf_stream_status_of(json_string_value(json_object_get(j, "status")));
    json_t *ev = json_object_get(j, "events");
    json_t *cr = json_object_get(j, "created");
    json_t *a = json_object_get(j, "authorization");
    rv = ZTB_ERR_MALFORMED;
    if (copy_member(j, "id", s->id, sizeof(s->id)) &&
        copy_member(j, "owner", s->owner, sizeof(s->owner)) &&
        copy_member(j, "aud", s->aud, sizeof(s->aud)) &&
        copy_member(j, "url", s->url, sizeof(s->url)) &&
        copy_member(j, "description", s->description, sizeof(s->description)) &&
        copy_member(j, "reason", s->reason, sizeof(s->reason)) && st >= 0 && json_is_integer(ev) &&
        json_is_integer(cr) && (a == NULL || json_is_string(a))) {
        s->status = (enum ssf_stream_status)st;
        s->events = (unsigned)json_integer_value(ev) & SSF_EV_SENT;
        s->created = json_integer_value(cr);
        rv = ZTB_OK;
        if (a != NULL && (s->authorization = strdup(json_string_value(a))) == NULL)
            rv = ZTB_ERR_NOMEM;
    }
    wipe_string(a);
    json_decref(j);
    if (rv != ZTB_OK)
        ssf_stream_clear(s);
    return rv;
}

json_t *ssf_stream_config_json(const struct ssf_stream *s, const char *issuer,
                               unsigned min_verification_interval)
{
    return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:{s:s,s:s},s:i,s:s}", "stream_id", s->id, "iss",
                     issuer, "aud", s->aud, "events_supported", event_list(SSF_EV_SENT),
                     "events_requested", event_list(s->events), "events_delivered",
                     event_list(s->events & SSF_EV_SENT), "delivery", "method", SSF_DELIVERY_PUSH,
                     "endpoint_url", s->url, "min_verification_interval",
                     (int)min_verification_interval, "description", s->description);
}

void ssf_stream_clear(struct ssf_stream *s)
{
    ztb_free_secret_str(s->authorization);
    s->authorization = NULL;
}
