/*
 * audit_ocsf.c - ztb audit records as OCSF 1.1.0 events (see audit_ocsf.h).
 *
 * One table says which class and activity each event is (exact names
 * first, then a prefix), the outcome (the event's last part) says the
 * status, and the record's members are moved to their OCSF places; what
 * is left goes to unmapped under its own name. The table is the SIEM
 * field reference's source: docs/audit.md, "OCSF mapping", lists it.
 */
#define _DEFAULT_SOURCE /* timegm */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/audit_ocsf.h"

enum {
    CLASS_DETECTION_FINDING = 2004,
    CLASS_AUTHENTICATION = 3002,
    CLASS_AUTHORIZE_SESSION = 3003,
    CLASS_API_ACTIVITY = 6003,
};

struct map {
    const char *event; /* exact, or a prefix ending in '.' */
    int class_uid;
    int activity_id;
};

/* Activities: 3002 1 Logon, 3 Authentication Ticket; 3003 1 Assign
 * Privileges; 2004 1 Create, 2 Update; 6003 1 Create, 2 Read, 3 Update,
 * 4 Delete, 99 Other. */
static const struct map maps[] = {
    {"token.issued", CLASS_AUTHORIZE_SESSION, 1},
    {"token.denied", CLASS_AUTHORIZE_SESSION, 1},
    {"auth.session_created", CLASS_AUTHENTICATION, 1},
    {"auth.session_refused", CLASS_AUTHENTICATION, 1},
    {"enroll.", CLASS_AUTHENTICATION, 3},
    {"signal.received", CLASS_DETECTION_FINDING, 1},
    {"signal.refused", CLASS_API_ACTIVITY, 1},
    {"signal.", CLASS_DETECTION_FINDING, 2},
    {"approval.requested", CLASS_API_ACTIVITY, 1},
    {"approval.", CLASS_API_ACTIVITY, 3},
    {"revocation.applied", CLASS_API_ACTIVITY, 1},
    {"revocation.failed", CLASS_API_ACTIVITY, 1},
    {"revocation.lifted", CLASS_API_ACTIVITY, 4},
    {"introspect.", CLASS_API_ACTIVITY, 2},
    {"revoke.", CLASS_API_ACTIVITY, 4},
    {"policy.", CLASS_API_ACTIVITY, 3},
    {"admin.", CLASS_API_ACTIVITY, 3},
};

/* Members moved to an OCSF place (the rest go to unmapped). */
static const char *const mapped[] = {
    "seq",    "ts",     "replica",  "event",      "actor", "agent",    "action", "audience", "jti",
    "reason", "signal", "severity", "confidence", "peer",  "approval", "type",   "source"};

static const char *str(json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}

/* The digits ts[at..at+n) as a number, or -1 if any is not a digit. */
static int digits(const char *ts, size_t at, size_t n)
{
    int v = 0;
    for (size_t i = at; i < at + n; i++) {
        if (ts[i] < '0' || ts[i] > '9')
            return -1;
        v = v * 10 + (ts[i] - '0');
    }
    return v;
}

long long audit_ocsf_time_ms(const char *ts)
{
    /* YYYY-MM-DDTHH:MM:SS.mmmZ, exactly */
    if (ts == NULL || strlen(ts) != 24 || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' ||
        ts[13] != ':' || ts[16] != ':' || ts[19] != '.' || ts[23] != 'Z')
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int f[7] = {digits(ts, 0, 4),  digits(ts, 5, 2),  digits(ts, 8, 2), digits(ts, 11, 2),
                digits(ts, 14, 2), digits(ts, 17, 2), digits(ts, 20, 3)};
    for (size_t i = 0; i < 7; i++)
        if (f[i] < 0)
            return -1;
    tm.tm_year = f[0] - 1900;
    tm.tm_mon = f[1] - 1;
    tm.tm_mday = f[2];
    tm.tm_hour = f[3];
    tm.tm_min = f[4];
    tm.tm_sec = f[5];
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (long long)t * 1000 + f[6];
}

/* The class and activity of event. */
static void classify(const char *event, int *class_uid, int *activity_id)
{
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        size_t n = strlen(maps[i].event);
        int prefix = maps[i].event[n - 1] == '.';
        if (prefix ? strncmp(event, maps[i].event, n) == 0 : strcmp(event, maps[i].event) == 0) {
            *class_uid = maps[i].class_uid;
            *activity_id = maps[i].activity_id;
            break;
        }
    }
    if (*class_uid != CLASS_API_ACTIVITY || *activity_id != 3 || strncmp(event, "admin.", 6) != 0)
        return;
    /* administration: what the verb says */
    const char *verb = strrchr(event, '_');
    if (verb && (!strcmp(verb, "_added") || !strcmp(verb, "_created")))
        *activity_id = 1;
    else if (verb && !strcmp(verb, "_removed"))
        *activity_id = 4;
}

/* 1 if the outcome (event's last part) is a failure. */
static int failed(const char *event)
{
    const char *o = strrchr(event, '.');
    o = o ? o + 1 : event;
    return strstr(o, "denied") || strstr(o, "refused") || strstr(o, "failed") ||
           strstr(o, "ignored") || strstr(o, "rejected") || strstr(o, "lost");
}

/* OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical. */
static int severity_of(json_t *rec, const char *event, int class_uid)
{
    const char *s = str(rec, "severity");
    if (class_uid == CLASS_DETECTION_FINDING && s != NULL)
        return !strcmp(s, "critical") ? 5 : !strcmp(s, "high") ? 4 : !strcmp(s, "medium") ? 3 : 2;
    if (!strcmp(event, "revocation.applied") || !strcmp(event, "revocation.failed") ||
        !strcmp(event, "audit.records_lost") || !strcmp(event, "audit.partial_line_removed"))
        return 4;
    return failed(event) ? 3 : 1;
}

/* actor "agent:N" | "operator:N" | "source:N" | "broker" as an OCSF actor. */
static json_t *actor_of(const char *actor)
{
    json_t *a = json_object();
    if (actor == NULL)
        return a;
    const char *colon = strchr(actor, ':');
    if (colon == NULL) {
        json_object_set_new(a, "app_name",
                            json_string(strcmp(actor, "broker") == 0 ? "ztb-broker" : actor));
        return a;
    }
    const char *name = colon + 1;
    if (strncmp(actor, "source:", 7) == 0) {
        json_object_set_new(a, "app_name", json_string(name));
        return a;
    }
    int op = strncmp(actor, "operator:", 9) == 0;
    json_object_set_new(a, "user",
                        json_pack("{s:s,s:s,s:i}", "name", name, "type", op ? "Admin" : "Other",
                                  "type_id", op ? 2 : 99));
    return a;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v != NULL)
        json_object_set_new(o, k, json_string(v));
}

static void add_resource(json_t *list, const char *type, const char *key, const char *v)
{
    if (v != NULL && v[0] != '\0')
        json_array_append_new(list, json_pack("{s:s,s:s}", "type", type, key, v));
}

json_t *audit_ocsf_map(json_t *rec)
{
    const char *event = str(rec, "event");
    json_t *jseq = json_object_get(rec, "seq");
    if (!json_is_object(rec) || event == NULL || !json_is_integer(jseq))
        return NULL;
    int class_uid = CLASS_API_ACTIVITY, activity_id = 99;
    classify(event, &class_uid, &activity_id);
    int fail = failed(event);
    const char *replica = str(rec, "replica");
    long long seq = (long long)json_integer_value(jseq);
    long long ms = audit_ocsf_time_ms(str(rec, "ts"));
    char uid[128];
    snprintf(uid, sizeof(uid), "%s/%lld", replica && replica[0] ? replica : "-", seq);

    json_t *o = json_object();
    json_object_set_new(o, "category_uid", json_integer(class_uid / 1000));
    json_object_set_new(o, "class_uid", json_integer(class_uid));
    json_object_set_new(o, "activity_id", json_integer(activity_id));
    json_object_set_new(o, "type_uid", json_integer((json_int_t)class_uid * 100 + activity_id));
    json_object_set_new(o, "severity_id", json_integer(severity_of(rec, event, class_uid)));
    json_object_set_new(o, "status_id", json_integer(fail ? 2 : 1));
    json_object_set_new(o, "status", json_string(fail ? "Failure" : "Success"));
    set_str(o, "status_detail", str(rec, "reason"));
    if (ms >= 0)
        json_object_set_new(o, "time", json_integer(ms));
    json_object_set_new(o, "message", json_string(event));
    json_object_set_new(o, "actor", actor_of(str(rec, "actor")));
    json_t *meta = json_pack("{s:s,s:{s:s,s:s},s:s,s:I,s:s,s:s}", "version", AUDIT_OCSF_VERSION,
                             "product", "name", "ztb", "vendor_name", "ztb", "uid", uid, "sequence",
                             (json_int_t)seq, "event_code", event, "log_name", "ztb audit");
    set_str(meta, "original_time", str(rec, "ts"));
    json_object_set_new(o, "metadata", meta);
    const char *peer = str(rec, "peer");
    if (peer != NULL)
        json_object_set_new(o, "src_endpoint", json_pack("{s:s}", "ip", peer));

    const char *agent = str(rec, "agent");
    const char *actor = str(rec, "actor");
    if (agent == NULL && actor != NULL && strncmp(actor, "agent:", 6) == 0)
        agent = actor + 6;
    switch (class_uid) {
    case CLASS_AUTHORIZE_SESSION:
    case CLASS_AUTHENTICATION: {
        json_object_set_new(
            o, "user",
            json_pack("{s:s,s:s,s:i}", "name", agent ? agent : "", "type", "Other", "type_id", 99));
        if (class_uid == CLASS_AUTHORIZE_SESSION && str(rec, "action") != NULL)
            json_object_set_new(o, "privileges", json_pack("[s]", str(rec, "action")));
        if (str(rec, "audience") != NULL)
            json_object_set_new(o, "dst_endpoint",
                                json_pack("{s:s}", "svc_name", str(rec, "audience")));
        if (str(rec, "jti") != NULL)
            json_object_set_new(o, "session", json_pack("{s:s}", "uid", str(rec, "jti")));
        break;
    }
    case CLASS_DETECTION_FINDING: {
        json_t *fi = json_object();
        set_str(fi, "uid", str(rec, "signal"));
        set_str(fi, "title", str(rec, "type") ? str(rec, "type") : event);
        if (str(rec, "type") != NULL)
            json_object_set_new(fi, "types", json_pack("[s]", str(rec, "type")));
        if (str(rec, "source") != NULL)
            json_object_set_new(fi, "product_uid", json_string(str(rec, "source")));
        json_object_set_new(o, "finding_info", fi);
        json_t *c = json_object_get(rec, "confidence");
        if (json_is_number(c)) {
            double v = json_number_value(c);
            double pct = v <= 1.0 ? v * 100.0 : v;
            int score = pct <= 0.0 ? 0 : pct >= 100.0 ? 100 : (int)(pct + 0.5);
            json_object_set_new(o, "confidence_score", json_integer(score));
            json_object_set_new(o, "confidence_id",
                                json_integer(score < 34   ? 1
                                             : score < 67 ? 2
                                                          : 3));
        }
        if (agent != NULL)
            json_object_set_new(o, "resources",
                                json_pack("[{s:s,s:s}]", "type", "agent", "name", agent));
        break;
    }
    default: {
        json_t *api =
            json_pack("{s:s,s:{s:s}}", "operation", event, "service", "name", "ztb-broker");
        json_object_set_new(o, "api", api);
        json_t *res = json_array();
        add_resource(res, "agent", "name", agent);
        add_resource(res, "approval", "uid", str(rec, "approval"));
        add_resource(res, "token", "uid", str(rec, "jti"));
        add_resource(res, "signal", "uid", str(rec, "signal"));
        add_resource(res, "action", "name", str(rec, "action"));
        add_resource(res, "audience", "name", str(rec, "audience"));
        if (json_array_size(res) > 0)
            json_object_set_new(o, "resources", res);
        else
            json_decref(res);
        break;
    }
    }

    json_t *un = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(rec, k, v)
    {
        int is_mapped = 0;
        for (size_t i = 0; i < sizeof(mapped) / sizeof(mapped[0]) && !is_mapped; i++)
            is_mapped = strcmp(k, mapped[i]) == 0;
        /* type and source have an OCSF place only in a finding */
        if (is_mapped && class_uid != CLASS_DETECTION_FINDING &&
            (!strcmp(k, "type") || !strcmp(k, "source") || !strcmp(k, "severity") ||
             !strcmp(k, "confidence")))
            is_mapped = 0;
        /* action and audience are placed in the classes that have them */
        if (is_mapped && class_uid == CLASS_DETECTION_FINDING &&
            (!strcmp(k, "action") || !strcmp(k, "audience") || !strcmp(k, "jti") ||
             !strcmp(k, "approval")))
            is_mapped = 0;
        if (is_mapped && class_uid == CLASS_AUTHENTICATION && !strcmp(k, "action"))
            is_mapped = 0;
        if (is_mapped &&
            (class_uid == CLASS_AUTHENTICATION || class_uid == CLASS_AUTHORIZE_SESSION) &&
            (!strcmp(k, "approval") || !strcmp(k, "signal")))
            is_mapped = 0;
        if (!is_mapped)
            json_object_set(un, k, v);
    }
    if (json_object_size(un) > 0)
        json_object_set_new(o, "unmapped", un);
    else
        json_decref(un);
    return o;
}
