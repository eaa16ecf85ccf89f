/*
 * ssf_config.c - the SSF configuration file (see ssf.h): transmitters ztb
 * trusts, receivers it pushes to.
 *
 * How it works: the operator's file goes through the jansson gate, each
 * member is checked (unknown members refused, so a typo never means
 * "absent"), each transmitter's JWKS file is parsed with ztb_jwks_parse
 * (P-256 keys by kid; the algorithm is the key's). The result is immutable.
 *
 * Must never: accept an http(s) URL it cannot use, a receiver asking for an
 * event ztb does not send, or keep an authorization value unwiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "broker/http/push_client.h"
#include "broker/signals/signals.h"
#include "broker/ssf/ssf.h"
#include "broker/ssf/ssf_jwks.h"
#include "common/json_gate.h"
#include "common/secret.h"
#include "pki/jwk.h"

#define SSF_CONFIG_MAX (256 * 1024)
#define SSF_SIDE_MAX   64 /* transmitters, receivers */
#define SSF_SUBJECTS   4096

static const struct {
    unsigned ev;
    const char *uri;
} events[] = {
    {SSF_EV_SESSION_REVOKED, SSF_EVENT_SESSION_REVOKED},
    {SSF_EV_CREDENTIAL_CHANGE, SSF_EVENT_CREDENTIAL_CHANGE},
    {SSF_EV_TOKEN_CLAIMS, SSF_EVENT_TOKEN_CLAIMS},
    {SSF_EV_QUARANTINED, SSF_EVENT_QUARANTINED},
    {SSF_EV_APPROVAL_REQUIRED, SSF_EVENT_APPROVAL_REQUIRED},
    {SSF_EV_AUDIENCE_KILLED, SSF_EVENT_AUDIENCE_KILLED},
    {SSF_EV_KEY_TAINTED, SSF_EVENT_KEY_TAINTED},
};

const char *ssf_event_uri(unsigned ev)
{
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (events[i].ev == ev)
            return events[i].uri;
    return NULL;
}

unsigned ssf_event_of(const char *uri, size_t n)
{
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (strlen(events[i].uri) == n && memcmp(events[i].uri, uri, n) == 0)
            return events[i].ev;
    return 0;
}

/* Read the whole file at path (at most max bytes) into a new buffer. A
 * configuration holds receivers' authorization values: ssf_config_load
 * wipes what it read, and a refused file is wiped here. */
static ztb_err read_file(const char *path, size_t max, char **out, size_t *len, mode_t *mode,
                         char *why, size_t cap)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(why, cap, "%s: %s", path, strerror(errno));
        return ZTB_ERR_IO;
    }
    struct stat st;
    *mode = fstat(fd, &st) == 0 ? st.st_mode : 0;
    char *buf = malloc(max + 1);
    size_t n = 0;
    ssize_t r = 0;
    while (buf != NULL && n <= max && (r = read(fd, buf + n, max + 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    if (buf == NULL)
        return ZTB_ERR_NOMEM;
    if (r < 0 || n > max) {
        snprintf(why, cap, "%s: %s", path, r < 0 ? "read failed" : "file too large");
        ztb_free_secret(buf, max + 1);
        return r < 0 ? ZTB_ERR_IO : ZTB_ERR_TOO_LARGE;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return ZTB_OK;
}

/* Only the members in allowed (NULL-terminated) may appear in o. */
static int members_ok(json_t *o, const char *const *allowed, const char *what, char *why,
                      size_t cap)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        (void)v;
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(k, allowed[i]) == 0;
        if (!ok) {
            snprintf(why, cap, "%s: unknown member \"%.60s\"", what, k);
            return 0;
        }
    }
    return 1;
}

/* Copy the string member name of o into out (cap); required or not. */
static int str_member(json_t *o, const char *name, int required, char *out, size_t cap,
                      const char *what, char *why, size_t whycap)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL) {
        if (required)
            snprintf(why, whycap, "%s: \"%s\" is required", what, name);
        return !required;
    }
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0' || strlen(s) >= cap || strlen(s) != json_string_length(v)) {
        snprintf(why, whycap, "%s: \"%s\" must be a non-empty string under %zu bytes", what, name,
                 cap);
        return 0;
    }
    memcpy(out, s, strlen(s) + 1);
    return 1;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

static ztb_err load_transmitter(json_t *o, size_t i, const char *our_issuer,
                                struct ssf_transmitter *t, char *why, size_t cap)
{
    char what[48];
    snprintf(what, sizeof(what), "transmitters[%zu]", i);
    static const char *const allowed[] = {"name",     "issuer",   "jwks_file",  "jwks", "jwks_uri",
                                          "audience", "subjects", "confidence", NULL};
    if (!json_is_object(o)) {
        snprintf(why, cap, "%s must be an object", what);
        return ZTB_ERR_MALFORMED;
    }
    if (!members_ok(o, allowed, what, why, cap) ||
        !str_member(o, "name", 1, t->name, sizeof(t->name), what, why, cap) ||
        !str_member(o, "issuer", 1, t->issuer, sizeof(t->issuer), what, why, cap) ||
        !str_member(o, "audience", 0, t->audience, sizeof(t->audience), what, why, cap))
        return ZTB_ERR_MALFORMED;
    if (!store_source_name_ok(t->name) || !printable(t->issuer) || !printable(t->audience)) {
        snprintf(why, cap, "%s: name must be a source name (a-z 0-9 . _ -), issuer printable",
                 what);
        return ZTB_ERR_MALFORMED;
    }
    if (strcmp(t->name, SIGNALS_BROKER_SOURCE) == 0) {
        /* its signals would pass for the detectors' own (as for ztbctl) */
        snprintf(why, cap, "%s: the name %s is the broker's detectors' own", what,
                 SIGNALS_BROKER_SOURCE);
        return ZTB_ERR_MALFORMED;
    }
    if (t->audience[0] == '\0')
        snprintf(t->audience, sizeof(t->audience), "%s", our_issuer ? our_issuer : "");
    t->confidence = 1.0;
    json_t *c = json_object_get(o, "confidence");
    if (c != NULL) {
        if (!json_is_number(c) || json_number_value(c) < 0 || json_number_value(c) > 1) {
            snprintf(why, cap, "%s: confidence must be a number from 0 to 1", what);
            return ZTB_ERR_MALFORMED;
        }
        t->confidence = json_number_value(c);
    }
    /* the keys: a JWKS file, or the JWKS inline */
    json_t *file = json_object_get(o, "jwks_file");
    json_t *inl = json_object_get(o, "jwks");
    json_t *uri = json_object_get(o, "jwks_uri");
    char *text = NULL;
    size_t len = 0;
    ztb_err rv;
    if ((file != NULL) + (inl != NULL) + (uri != NULL) != 1) {
        snprintf(why, cap, "%s: exactly one of jwks_file, jwks and jwks_uri is required", what);
        return ZTB_ERR_MALFORMED;
    }
    if (uri != NULL) {
        /* fetched later (ssf_jwks.h): https, or http to loopback only */
        char uerr[256];
        const char *u = json_string_value(uri);
        if (u == NULL || push_url_check(u, 0, uerr, sizeof(uerr)) != ZTB_OK) {
            snprintf(why, cap, "%s: jwks_uri: %s", what, u == NULL ? "must be a URL" : uerr);
            return ZTB_ERR_MALFORMED;
        }
        rv = ssf_jwks_new(u, &t->remote);
        if (rv != ZTB_OK) {
            snprintf(why, cap, "%s: jwks_uri: %s", what, ztb_strerror(rv));
            return rv;
        }
    } else if (file != NULL) {
        if (!json_is_string(file)) {
            snprintf(why, cap, "%s: jwks_file must be a path", what);
            return ZTB_ERR_MALFORMED;
        }
        mode_t mode;
        rv = read_file(json_string_value(file), ZTB_JWKS_MAX, &text, &len, &mode, why, cap);
        if (rv != ZTB_OK)
            return rv;
    } else {
        text = json_dumps(inl, JSON_COMPACT);
        if (text == NULL)
            return ZTB_ERR_NOMEM;
        len = strlen(text);
    }
    rv = t->remote != NULL ? ZTB_OK : ztb_jwks_parse(text, len, 0, &t->keys);
    free(text);
    if (rv != ZTB_OK) {
        snprintf(why, cap, "%s: its JWKS has no usable P-256 signing key (%s)", what,
                 ztb_strerror(rv));
        return rv;
    }
    json_t *subs = json_object_get(o, "subjects");
    if (subs == NULL)
        return ZTB_OK;
    if (!json_is_object(subs) || json_object_size(subs) > SSF_SUBJECTS) {
        snprintf(why, cap, "%s: subjects must be an object of at most %d \"format:value\": agent",
                 what, SSF_SUBJECTS);
        return ZTB_ERR_MALFORMED;
    }
    t->subjects = calloc(json_object_size(subs) + 1, sizeof(*t->subjects));
    if (t->subjects == NULL)
        return ZTB_ERR_NOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(subs, k, v)
    {
        const char *agent = json_string_value(v);
        const char *colon = strchr(k, ':');
        if (colon == NULL || colon == k || strlen(k) > SSF_SUBJECT_MAX || !printable(k) ||
            agent == NULL || !store_agent_name_ok(agent)) {
            snprintf(why, cap,
                     "%s: subjects entry \"%.60s\" must be \"format:value\" -> an agent name", what,
                     k);
            return ZTB_ERR_MALFORMED;
        }
        struct ssf_subject *s = &t->subjects[t->nsubjects++];
        snprintf(s->key, sizeof(s->key), "%s", k);
        snprintf(s->agent, sizeof(s->agent), "%s", agent);
    }
    return ZTB_OK;
}

static ztb_err load_receiver(json_t *o, size_t i, struct ssf_receiver *r, char *why, size_t cap)
{
    char what[48];
    snprintf(what, sizeof(what), "receivers[%zu]", i);
    static const char *const allowed[] = {"name",     "endpoint_url",     "authorization_header",
                                          "audience", "events_requested", NULL};
    if (!json_is_object(o)) {
        snprintf(why, cap, "%s must be an object", what);
        return ZTB_ERR_MALFORMED;
    }
    if (!members_ok(o, allowed, what, why, cap) ||
        !str_member(o, "name", 1, r->name, sizeof(r->name), what, why, cap) ||
        !str_member(o, "endpoint_url", 1, r->url, sizeof(r->url), what, why, cap) ||
        !str_member(o, "audience", 0, r->audience, sizeof(r->audience), what, why, cap))
        return ZTB_ERR_MALFORMED;
    if (!store_source_name_ok(r->name) || !printable(r->audience)) {
        snprintf(why, cap, "%s: name must be a-z 0-9 . _ -", what);
        return ZTB_ERR_MALFORMED;
    }
    char uerr[256];
    if (push_url_check(r->url, 0, uerr, sizeof(uerr)) != ZTB_OK) {
        snprintf(why, cap, "%s: endpoint_url: %s", what, uerr);
        return ZTB_ERR_MALFORMED;
    }
    if (r->audience[0] == '\0')
        snprintf(r->audience, sizeof(r->audience), "%s", r->url);
    json_t *a = json_object_get(o, "authorization_header");
    if (a != NULL) {
        const char *s = json_string_value(a);
        if (s == NULL || s[0] == '\0' || strlen(s) > 4096 || !printable(s)) {
            snprintf(why, cap, "%s: authorization_header must be the header's printable value",
                     what);
            return ZTB_ERR_MALFORMED;
        }
        r->authorization = strdup(s);
        if (r->authorization == NULL)
            return ZTB_ERR_NOMEM;
    }
    json_t *ev = json_object_get(o, "events_requested");
    if (ev == NULL) {
        r->events = SSF_EV_SENT;
        return ZTB_OK;
    }
    size_t k;
    json_t *v;
    if (!json_is_array(ev)) {
        snprintf(why, cap, "%s: events_requested must be an array of event type URIs", what);
        return ZTB_ERR_MALFORMED;
    }
    json_array_foreach(ev, k, v)
    {
        const char *s = json_string_value(v);
        unsigned bit = s ? ssf_event_of(s, strlen(s)) : 0;
        if ((bit & SSF_EV_SENT) == 0) {
            snprintf(why, cap, "%s: ztb does not send event type \"%.100s\"", what,
                     s ? s : "(not a string)");
            return ZTB_ERR_MALFORMED;
        }
        r->events |= bit;
    }
    return ZTB_OK;
}

/* The "streams" member into c->streams. */
static ztb_err load_streams(json_t *o, struct ssf_streams_config *c, char *why, size_t cap)
{
    static const char *const allowed[] = {"audience",    "max_per_receiver",
                                          "max_streams", "min_verification_interval",
                                          "push_hosts",  NULL};
    if (!json_is_object(o)) {
        snprintf(why, cap, "streams must be an object (its members may all be left out)");
        return ZTB_ERR_MALFORMED;
    }
    if (!members_ok(o, allowed, "streams", why, cap) ||
        !str_member(o, "audience", 0, c->audience, sizeof(c->audience), "streams", why, cap))
        return ZTB_ERR_MALFORMED;
    if (c->audience[0] == '\0')
        snprintf(c->audience, sizeof(c->audience), "ztb-ssf");
    if (!printable(c->audience)) {
        snprintf(why, cap, "streams: audience must be printable");
        return ZTB_ERR_MALFORMED;
    }
    const struct {
        const char *name;
        unsigned *to, def, min, max;
    } nums[] = {{"max_per_receiver", &c->max_per_receiver, 4, 1, 64},
                {"max_streams", &c->max_streams, 1024, 1, 4096},
                {"min_verification_interval", &c->min_verification_interval, 10, 1, 86400}};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        json_t *v = json_object_get(o, nums[i].name);
        *nums[i].to = nums[i].def;
        if (v == NULL)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < nums[i].min ||
            json_integer_value(v) > nums[i].max) {
            snprintf(why, cap, "streams: %s must be an integer from %u to %u", nums[i].name,
                     nums[i].min, nums[i].max);
            return ZTB_ERR_MALFORMED;
        }
        *nums[i].to = (unsigned)json_integer_value(v);
    }
    /* where receivers may point the broker: without it any agent granted
     * ztb:ssf could make it POST to any host it reaches */
    json_t *hosts = json_object_get(o, "push_hosts");
    if (!json_is_array(hosts) || json_array_size(hosts) > SSF_PUSH_HOSTS_MAX) {
        snprintf(why, cap,
                 "streams: push_hosts is required: a list of at most %d hosts receivers may "
                 "have the broker push to, e.g. [\"siem.example.com\", \"*.soc.example.com\"]",
                 SSF_PUSH_HOSTS_MAX);
        return ZTB_ERR_MALFORMED;
    }
    size_t i;
    json_t *h;
    json_array_foreach(hosts, i, h)
    {
        const char *v = json_string_value(h);
        size_t n = v ? strlen(v) : 0;
        int ok = n > 0 && n < SSF_PUSH_HOST_MAX;
        for (size_t k = 0; ok && k < n; k++) {
            unsigned char ch = (unsigned char)v[k];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '-' || ch == ':' || (ch == '*' && k == 0 && v[1] == '.');
        }
        if (!ok) {
            snprintf(why, cap,
                     "streams: push_hosts[%zu] must be a host name or address (no port, no "
                     "scheme), or *.domain",
                     i);
            return ZTB_ERR_MALFORMED;
        }
        memcpy(c->push_hosts[c->n_push_hosts++], v, n + 1);
    }
    c->enabled = 1;
    return ZTB_OK;
}

int ssf_streams_push_host_ok(const struct ssf_streams_config *c, const char *url)
{
    char host[SSF_PUSH_HOST_MAX];
    if (!push_url_host(url, host, sizeof(host)))
        return 0;
    size_t hn = strlen(host);
    for (unsigned i = 0; i < c->n_push_hosts; i++) {
        const char *p = c->push_hosts[i];
        if (p[0] == '*') { /* "*.example.com": a name under it, not the domain itself */
            size_t sn = strlen(p + 1);
            if (hn > sn && strcasecmp(host + hn - sn, p + 1) == 0)
                return 1;
        } else if (strcasecmp(host, p) == 0) {
            return 1;
        }
    }
    return 0;
}

ztb_err ssf_config_parse(const char *text, size_t n, const char *our_issuer,
                         struct ssf_config **out, char *why, size_t cap)
{
    *out = NULL;
    json_t *doc = NULL;
    char jwhy[160];
    ztb_err rv = ztb_json_gate_load(text, n, SSF_CONFIG_MAX, ZTB_JSON_GATE_DEPTH, 0, &doc, jwhy,
                                    sizeof(jwhy));
    if (rv != ZTB_OK) {
        snprintf(why, cap, "%s", jwhy);
        return rv;
    }
    static const char *const allowed[] = {"transmitters", "receivers", "streams", NULL};
    struct ssf_config *c = calloc(1, sizeof(*c));
    rv = ZTB_ERR_MALFORMED;
    if (c == NULL) {
        rv = ZTB_ERR_NOMEM;
        goto out;
    }
    if (!json_is_object(doc)) {
        snprintf(why, cap, "the SSF configuration must be a JSON object");
        goto out;
    }
    if (!members_ok(doc, allowed, "the SSF configuration", why, cap))
        goto out;
    json_t *tx = json_object_get(doc, "transmitters");
    json_t *rx = json_object_get(doc, "receivers");
    if ((tx != NULL && (!json_is_array(tx) || json_array_size(tx) > SSF_SIDE_MAX)) ||
        (rx != NULL && (!json_is_array(rx) || json_array_size(rx) > SSF_SIDE_MAX))) {
        snprintf(why, cap, "transmitters and receivers must be arrays of at most %d", SSF_SIDE_MAX);
        goto out;
    }
    c->tx = calloc(json_array_size(tx) + 1, sizeof(*c->tx));
    c->rx = calloc(json_array_size(rx) + 1, sizeof(*c->rx));
    if (c->tx == NULL || c->rx == NULL) {
        rv = ZTB_ERR_NOMEM;
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(tx, i, v)
    {
        rv = load_transmitter(v, i, our_issuer, &c->tx[c->ntx++], why, cap);
        if (rv != ZTB_OK)
            goto out;
        for (size_t j = 0; j + 1 < c->ntx; j++)
            if (strcmp(c->tx[j].issuer, c->tx[i].issuer) == 0 ||
                strcmp(c->tx[j].name, c->tx[i].name) == 0) {
                snprintf(why, cap, "transmitters[%zu]: name or issuer used twice", i);
                rv = ZTB_ERR_EXISTS;
                goto out;
            }
    }
    json_array_foreach(rx, i, v)
    {
        rv = load_receiver(v, i, &c->rx[c->nrx++], why, cap);
        if (rv != ZTB_OK)
            goto out;
    }
    json_t *st = json_object_get(doc, "streams");
    if (st != NULL && (rv = load_streams(st, &c->streams, why, cap)) != ZTB_OK)
        goto out;
    rv = ZTB_OK;
out:
    json_decref(doc);
    if (rv != ZTB_OK) {
        ssf_config_free(c);
        c = NULL;
    }
    *out = c;
    return rv;
}

ztb_err ssf_config_load(const char *path, const char *our_issuer, struct ssf_config **out,
                        char *why, size_t cap)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    mode_t mode = 0;
    ztb_err rv = read_file(path, SSF_CONFIG_MAX, &text, &len, &mode, why, cap);
    if (rv != ZTB_OK)
        return rv;
    rv = ssf_config_parse(text, len, our_issuer, out, why, cap);
    ztb_free_secret(text, len); /* it holds the receivers' authorization values */
    /* ... which every local user must not be able to read */
    const struct ssf_config *c = rv == ZTB_OK && (mode & S_IROTH) ? *out : NULL;
    const char *holder = NULL;
    for (size_t i = 0; c != NULL && holder == NULL && i < c->nrx; i++)
        if (c->rx[i].authorization != NULL)
            holder = c->rx[i].name;
    if (holder != NULL) {
        snprintf(why, cap,
                 "%s may be read by every local user (mode %03o) and holds receiver \"%s\"'s "
                 "authorization_header: chmod o-r it (e.g. 0640, group of the broker's user)",
                 path, (unsigned)(mode & 0777), holder);
        ssf_config_free(*out);
        *out = NULL;
        rv = ZTB_ERR_INVALID_ARG;
    }
    return rv;
}

void ssf_config_free(struct ssf_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->ntx; i++) {
        ztb_keyset_free(c->tx[i].keys);
        ssf_jwks_free(c->tx[i].remote);
        free(c->tx[i].subjects);
    }
    for (size_t i = 0; i < c->nrx; i++)
        ztb_free_secret_str(c->rx[i].authorization);
    free(c->tx);
    free(c->rx);
    free(c);
}

void ssf_config_fetch_keys(const struct ssf_config *c)
{
    for (size_t i = 0; c != NULL && i < c->ntx; i++)
        ssf_jwks_start(c->tx[i].remote, c->tx[i].name);
}

const struct ssf_transmitter *ssf_transmitter_by_issuer(const struct ssf_config *c, const char *iss)
{
    for (size_t i = 0; c != NULL && i < c->ntx; i++)
        if (strcmp(c->tx[i].issuer, iss) == 0)
            return &c->tx[i];
    return NULL;
}

const char *ssf_subject_lookup(const struct ssf_transmitter *t, const char *key)
{
    for (size_t i = 0; i < t->nsubjects; i++)
        if (strcmp(t->subjects[i].key, key) == 0)
            return t->subjects[i].agent;
    return NULL;
}
