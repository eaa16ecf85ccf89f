/*
 * scope_summary.c - the out-of-scope summary (see scope_summary.h).
 *
 * How it works: a fixed table of agents, each with a fixed list of
 * (action, audience, rule) counts, under one mutex. scope_summary_note finds
 * the agent and the item by linear scans (only on a denial). When the
 * window ends, the table is copied out and emptied under the mutex, and the
 * records are written from the copy without it, so a denial never waits
 * for the audit log. The record's "by" member is a JSON array as text (the
 * audit line's fields are flat).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/audit/audit.h"
#include "broker/signals/scope_summary.h"
#include "common/log.h"

#define NAME_MAX_ 128 /* bytes kept of an agent, action, audience or rule */

struct ss_item {
    char action[NAME_MAX_ + 1], audience[NAME_MAX_ + 1], rule[NAME_MAX_ + 1];
    int64_t count;
};

struct ss_agent {
    char name[NAME_MAX_ + 1];
    int64_t requests, other; /* all of them; those not itemised */
    size_t n;
    struct ss_item item[SCOPE_SUMMARY_ITEMS];
};

struct ss_table {
    int64_t since; /* the window's start (Unix s) */
    size_t n;
    struct ss_agent agent[SCOPE_SUMMARY_AGENTS];
    struct ss_agent rest; /* "_other": agents that did not fit */
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ss_table g_t;
static unsigned g_window_s = 60;

void scope_summary_set_window(unsigned seconds)
{
    pthread_mutex_lock(&g_mu);
    if (seconds > 0)
        g_window_s = seconds;
    pthread_mutex_unlock(&g_mu);
}

static void copy(char *dst, const char *src)
{
    snprintf(dst, NAME_MAX_ + 1, "%s", src != NULL ? src : "");
}

/* Count one request in a (the item list, or "other"). */
static void count_item(struct ss_agent *a, const char *action, const char *audience,
                       const char *rule)
{
    a->requests++;
    for (size_t i = 0; i < a->n; i++) {
        struct ss_item *it = &a->item[i];
        if (strncmp(it->action, action, NAME_MAX_) == 0 &&
            strncmp(it->audience, audience, NAME_MAX_) == 0 &&
            strncmp(it->rule, rule, NAME_MAX_) == 0) {
            it->count++;
            return;
        }
    }
    if (a->n == SCOPE_SUMMARY_ITEMS) {
        a->other++;
        return;
    }
    struct ss_item *it = &a->item[a->n++];
    copy(it->action, action);
    copy(it->audience, audience);
    copy(it->rule, rule);
    it->count = 1;
}

void scope_summary_note(const char *agent, const char *action, const char *audience,
                        const char *rule)
{
    if (agent == NULL || agent[0] == '\0')
        return;
    const char *r = rule != NULL && rule[0] ? rule : "(default deny)";
    action = action != NULL ? action : "";
    audience = audience != NULL ? audience : "";
    pthread_mutex_lock(&g_mu);
    if (g_t.since == 0)
        g_t.since = (int64_t)time(NULL);
    struct ss_agent *a = NULL;
    for (size_t i = 0; i < g_t.n && a == NULL; i++)
        if (strncmp(g_t.agent[i].name, agent, NAME_MAX_) == 0)
            a = &g_t.agent[i];
    if (a == NULL && g_t.n < SCOPE_SUMMARY_AGENTS) {
        a = &g_t.agent[g_t.n++];
        memset(a, 0, sizeof(*a));
        copy(a->name, agent);
    }
    if (a == NULL) {
        a = &g_t.rest;
        copy(a->name, "_other");
    }
    count_item(a, action, audience, r);
    pthread_mutex_unlock(&g_mu);
}

/* Write one agent's record of the window [since, until). */
static void write_record(const struct ss_agent *a, int64_t since, int64_t until)
{
    json_t *by = json_array();
    for (size_t i = 0; i < a->n; i++)
        json_array_append_new(by,
                              json_pack("{s:s,s:s,s:s,s:I}", "action", a->item[i].action,
                                        "audience", a->item[i].audience, "rule", a->item[i].rule,
                                        "count", (json_int_t)a->item[i].count));
    char *text = json_dumps(by, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(by);
    char actor[NAME_MAX_ + 8];
    snprintf(actor, sizeof(actor), "agent:%s", a->name);
    ztb_err rv = audit("scope.summary", actor, 0, ZTB_F_STR("agent", a->name),
                       ZTB_F_INT("window_start", since), ZTB_F_INT("window_end", until),
                       ZTB_F_INT("requests", a->requests), ZTB_F_INT("distinct", (int64_t)a->n),
                       ZTB_F_INT("other", a->other), ZTB_F_STR("by", text ? text : "[]"));
    if (rv != ZTB_OK)
        ztb_log(ZTB_LOG_WARN, "scope.summary_failed", ZTB_F_STR("agent", a->name), ZTB_F_ERR(rv));
    free(text);
}

/* Take the table if due (force: always) and write its records. */
static unsigned flush(int force)
{
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&g_mu);
    if (g_t.since == 0 || (!force && now < g_t.since + (int64_t)g_window_s)) {
        pthread_mutex_unlock(&g_mu);
        return 0;
    }
    struct ss_table *t = malloc(sizeof(*t));
    if (t == NULL) { /* keep counting; try at the next tick */
        pthread_mutex_unlock(&g_mu);
        return 0;
    }
    *t = g_t;
    memset(&g_t, 0, sizeof(g_t));
    pthread_mutex_unlock(&g_mu);
    unsigned n = 0;
    for (size_t i = 0; i < t->n; i++, n++)
        write_record(&t->agent[i], t->since, now);
    if (t->rest.requests > 0) {
        write_record(&t->rest, t->since, now);
        n++;
    }
    free(t);
    return n;
}

void scope_summary_tick(void *ud)
{
    (void)ud;
    (void)flush(0);
}

unsigned scope_summary_flush(void)
{
    return flush(1);
}
