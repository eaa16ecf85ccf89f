/*
 * test_eval.c - the decision table.
 *
 * Each case is a request and the decision it must get: effect, reason, the
 * deciding rule, and where it matters the obligations. Cases run against the
 * fleet example (examples/policy/fleet.json) and an edge-case policy (EDGE
 * below): precedence, globs, conditions, combination, empty and very long
 * names, unicode and control characters, numeric edge values. Then every
 * case runs again against the same documents with rules, groups and anomaly
 * responses shuffled: the decisions must not change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy_fixtures.h"

/* 2025-06-02 00:00 UTC was a Monday. */
#define MON   1748822400LL
#define H     3600LL
#define D     86400LL
#define WED10 (MON + 2 * D + 10 * H)

enum { ANY = -1 };

struct dcase {
    const char *name;
    const char *agent, *action, *audience, *resource;
    int64_t now; /* 0: Wednesday 10:00 UTC */
    const char *act;
    const char *ip; /* NULL: unknown */
    const char *ad; /* authorization_details JSON, or NULL */
    policy_effect effect;
    policy_reason reason;
    const char *rule;   /* deciding rule, NULL for none */
    int ttl;            /* ANY to skip */
    int binding;        /* ANY to skip */
    int single_use;     /* ANY to skip */
    const char *detail; /* substring of detail, or NULL to skip */
};

#define PAY    "https://payments.internal"
#define CRM    "https://crm.internal"
#define TIX    "https://tickets.internal"
#define IN     "10.20.1.2"
#define AMT(x) "[{\"type\": \"payment\", \"amount\": " x "}]"

#define ALLOW(r, t, b, s) POLICY_ALLOW, POLICY_REASON_ALLOWED, r, t, b, s, NULL
#define APPROVAL(r)       POLICY_APPROVAL_REQUIRED, POLICY_REASON_ALLOWED, r, ANY, ANY, ANY, NULL
#define DENYR(r)          POLICY_DENY, POLICY_REASON_DENY_RULE, r, ANY, ANY, ANY, NULL
#define COND(r, d)        POLICY_DENY, POLICY_REASON_CONDITION, r, ANY, ANY, ANY, d
#define NOMATCH           POLICY_DENY, POLICY_REASON_NO_MATCH, NULL, ANY, ANY, ANY, NULL
#define BAD(d)            POLICY_DENY, POLICY_REASON_BAD_REQUEST, NULL, ANY, ANY, ANY, d
#define CONFLICT(r)       POLICY_DENY, POLICY_REASON_CONFLICT, r, ANY, ANY, ANY, NULL

static char long_name[200], long_res[5000], long_res_ok[5000], long_svc[80], long_svc_ok[80];

static const struct dcase fleet_cases[] = {
    /* payments: refunds by amount, network, resource */
    {"small refund", "billing-bot", "payments:refund", PAY, "orders/1234", 0, NULL, IN, AMT("20"),
     ALLOW("refund-small", 60, POLICY_BINDING_DPOP, 1)},
    {"refund at the limit", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     AMT("50"), ALLOW("refund-small", 60, POLICY_BINDING_DPOP, 1)},
    {"refund zero", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN, AMT("0"),
     ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund tiny real", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     AMT("1e-300"), ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund just under", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     AMT("49.999999999"), ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund in the gap", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     AMT("50.005"), COND("refund-large", "limits[0]")},
    {"refund needs approval", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     AMT("51"), APPROVAL("refund-large")},
    {"refund approval top", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     AMT("4999.99"), APPROVAL("refund-large")},
    {"refund huge", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN, AMT("5000"),
     DENYR("deny-huge-refunds")},
    {"refund very huge", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN, AMT("1e6"),
     DENYR("deny-huge-refunds")},
    {"refund without amount", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN, NULL,
     DENYR("deny-huge-refunds")},
    {"refund amount as string", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     "[{\"type\": \"payment\", \"amount\": \"20\"}]", DENYR("deny-huge-refunds")},
    {"refund other type only", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     "[{\"type\": \"note\", \"amount\": 20}]", DENYR("deny-huge-refunds")},
    {"refund two small entries", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     "[{\"type\": \"payment\", \"amount\": 20}, {\"type\": \"payment\", \"amount\": 30}]",
     ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund small and medium entries", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL,
     IN, "[{\"type\": \"payment\", \"amount\": 20}, {\"type\": \"payment\", \"amount\": 70}]",
     COND("refund-large", "limits[0]")},
    {"refund one entry huge", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     "[{\"type\": \"payment\", \"amount\": 20}, {\"type\": \"payment\", \"amount\": 6000}]",
     DENYR("deny-huge-refunds")},
    {"refund details as one object", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     "{\"type\": \"payment\", \"amount\": 10}", ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund from outside", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL,
     "192.168.1.1", AMT("20"), COND("refund-large", "source_ip")},
    {"refund source unknown", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, NULL,
     AMT("20"), COND("refund-large", NULL)},
    {"refund over IPv6", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, "fd00:20::5",
     AMT("20"), ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund v4-mapped", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL,
     "::ffff:10.20.3.4", AMT("20"), ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund other IPv6", "billing-bot", "payments:refund", PAY, "orders/1", 0, NULL, "fd00:21::5",
     AMT("20"), COND("refund-large", "source_ip")},
    {"refund disputed", "billing-bot", "payments:refund", PAY, "orders/disputed/9", 0, NULL, IN,
     AMT("20"), DENYR("deny-disputed-orders")},
    {"refund nested resource", "billing-bot", "payments:refund", PAY, "orders/1/items", 0, NULL, IN,
     AMT("20"), NOMATCH},
    {"refund empty segment", "billing-bot", "payments:refund", PAY, "orders/", 0, NULL, IN,
     AMT("20"), ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund unicode resource", "billing-bot", "payments:refund", PAY, "orders/\xc3\xb1", 0, NULL,
     IN, AMT("20"), ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund by pattern member", "refund-agent-7", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     AMT("20"), ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund by SPIFFE ID", "spiffe://acme.example/agent/refund-agent-7", "payments:refund", PAY,
     "orders/1", 0, NULL, IN, AMT("20"), ALLOW("refund-small", ANY, ANY, ANY)},
    {"refund by foreign SPIFFE ID", "spiffe://evil.example/agent/refund-agent-7", "payments:refund",
     PAY, "orders/1", 0, NULL, IN, AMT("20"), BAD("trust domain")},
    {"SPIFFE ID without agent path", "spiffe://acme.example/refund-agent-7", "payments:refund", PAY,
     "orders/1", 0, NULL, IN, AMT("20"), BAD("trust domain")},
    {"pattern needs the dash", "refund-agent", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     AMT("20"), NOMATCH},
    {"support cannot refund", "support-bot-01", "payments:refund", PAY, "orders/1", 0, NULL, IN,
     AMT("20"), NOMATCH},
    {"read invoices", "billing-bot", "payments:read", PAY, "invoices/2024/7", 0, NULL, NULL, NULL,
     ALLOW("payments-read", 120, POLICY_BINDING_NONE, 0)},
    {"list orders", "billing-bot", "payments:list", PAY, "orders/x", 0, NULL, NULL, NULL,
     ALLOW("payments-read", 120, ANY, ANY)},
    {"read on the wrong audience", "billing-bot", "payments:read", CRM, "orders/x", 0, NULL, NULL,
     NULL, NOMATCH},
    {"update disputed", "billing-bot", "payments:update", PAY, "orders/disputed/1", 0, NULL, NULL,
     NULL, DENYR("deny-disputed-orders")},
    {"update not granted", "billing-bot", "payments:update", PAY, "orders/1", 0, NULL, NULL, NULL,
     NOMATCH},
    /* CRM */
    {"support reads CRM", "support-bot-02", "crm:read", CRM, "contacts/1", 0, NULL, NULL, NULL,
     ALLOW("support-crm-read", 300, POLICY_BINDING_NONE, 0)},
    {"sales searches CRM", "sales-assistant", "crm:search", CRM, "accounts/x", 0, NULL, NULL, NULL,
     ALLOW("support-crm-read", 300, ANY, ANY)},
    {"leads not granted", "triage-bot", "crm:read", CRM, "leads/1", 0, NULL, NULL, NULL, NOMATCH},
    {"delete denied", "support-bot-01", "crm:delete", CRM, "contacts/1", 0, NULL, NULL, NULL,
     DENYR("deny-crm-delete")},
    {"delete-all denied", "support-bot-01", "crm:deleteAll", CRM, "contacts", 0, NULL, NULL, NULL,
     DENYR("deny-crm-delete")},
    {"purge denied", "sales-assistant", "crm:purge", CRM, "", 0, NULL, NULL, NULL,
     DENYR("deny-crm-delete")},
    {"update with delegation", "sales-assistant", "crm:update", CRM, "contacts/1", 0,
     "spiffe://acme.example/user/alice", NULL, NULL,
     ALLOW("sales-crm-update", 120, POLICY_BINDING_MTLS, 0)},
    {"update without delegation", "sales-assistant", "crm:update", CRM, "contacts/1", 0, NULL, NULL,
     NULL, COND("sales-crm-update", "act in")},
    {"update for an agent", "sales-assistant", "crm:update", CRM, "contacts/1", 0,
     "spiffe://acme.example/agent/x", NULL, NULL, COND("sales-crm-update", "act in")},
    {"update on saturday", "sales-assistant", "crm:update", CRM, "contacts/1", MON + 5 * D + 10 * H,
     "spiffe://acme.example/user/alice", NULL, NULL, COND("sales-crm-update", "time_windows")},
    {"update 19:59 local", "sales-assistant", "crm:update", CRM, "contacts/1",
     MON + 2 * D + 18 * H + 59 * 60, "spiffe://acme.example/user/a", NULL, NULL,
     ALLOW("sales-crm-update", ANY, ANY, ANY)},
    {"update 20:00 local", "sales-assistant", "crm:update", CRM, "contacts/1", MON + 2 * D + 19 * H,
     "spiffe://acme.example/user/a", NULL, NULL, COND("sales-crm-update", "time_windows")},
    {"update 06:59 local", "sales-assistant", "crm:update", CRM, "contacts/1",
     MON + 2 * D + 5 * H + 59 * 60, "spiffe://acme.example/user/a", NULL, NULL,
     COND("sales-crm-update", "time_windows")},
    {"update 07:00 local", "sales-assistant", "crm:update", CRM, "contacts/1", MON + 2 * D + 6 * H,
     "spiffe://acme.example/user/a", NULL, NULL, ALLOW("sales-crm-update", ANY, ANY, ANY)},
    {"export needs approval", "sales-assistant", "crm:export", CRM, "reports/q2", 0, NULL, NULL,
     NULL, APPROVAL("crm-export")},
    {"export nested report", "sales-assistant", "crm:export", CRM, "reports/q2/raw", 0, NULL, NULL,
     NULL, NOMATCH},
    /* tickets */
    {"create ticket", "support-bot-03", "tickets:create", TIX, "tickets/55", 0, NULL, NULL, NULL,
     ALLOW("tickets-work", 180, ANY, ANY)},
    {"comment in queue", "support-bot-03", "tickets:comment", TIX, "queues/support/x/y", 0, NULL,
     NULL, NULL, ALLOW("tickets-work", ANY, ANY, ANY)},
    {"close delegated", "triage-bot", "tickets:close", TIX, "tickets/1", 0,
     "spiffe://acme.example/user/bob", NULL, NULL, ALLOW("tickets-close-delegated", 60, ANY, 0)},
    {"close not delegated", "triage-bot", "tickets:close", TIX, "tickets/1", 0, NULL, NULL, NULL,
     COND("tickets-close-delegated", "delegation required")},
    {"sales has no tickets", "sales-assistant", "tickets:read", TIX, "tickets/1", 0, NULL, NULL,
     NULL, NOMATCH},
    {"billing has no tickets", "billing-bot", "tickets:read", TIX, "tickets/1", 0, NULL, NULL, NULL,
     NOMATCH},
    /* malformed requests */
    {"empty agent", "", "payments:read", PAY, "orders/1", 0, NULL, NULL, NULL, BAD("agent")},
    {"null agent", NULL, "payments:read", PAY, "orders/1", 0, NULL, NULL, NULL, BAD("agent")},
    {"agent with space", "billing bot", "payments:read", PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("agent")},
    {"agent with newline", "billing-bot\n", "payments:read", PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("agent")},
    {"agent unicode", "billing-b\xc3\xb6t", "payments:read", PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("agent")},
    {"agent dot", ".", "payments:read", PAY, "orders/1", 0, NULL, NULL, NULL, BAD("agent")},
    {"agent dotdot", "..", "payments:read", PAY, "orders/1", 0, NULL, NULL, NULL, BAD("agent")},
    {"agent too long", long_name, "payments:read", PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("agent")},
    {"agent case differs", "Billing-Bot", "payments:read", PAY, "orders/1", 0, NULL, NULL, NULL,
     NOMATCH},
    {"action without colon", "billing-bot", "payments", PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("action")},
    {"action two colons", "billing-bot", "payments:read:x", PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("action")},
    {"action empty service", "billing-bot", ":read", PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("action")},
    {"action empty verb", "billing-bot", "payments:", PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("action")},
    {"action with space", "billing-bot", "pay ments:read", PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("action")},
    {"action with star", "billing-bot", "payments:*", PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("action")},
    {"action null", "billing-bot", NULL, PAY, "orders/1", 0, NULL, NULL, NULL, BAD("action")},
    {"action service too long", "billing-bot", long_svc, PAY, "orders/1", 0, NULL, NULL, NULL,
     BAD("action")},
    {"action case differs", "billing-bot", "Payments:read", PAY, "orders/1", 0, NULL, NULL, NULL,
     NOMATCH},
    {"audience empty", "billing-bot", "payments:read", "", "orders/1", 0, NULL, NULL, NULL,
     BAD("audience")},
    {"audience null", "billing-bot", "payments:read", NULL, "orders/1", 0, NULL, NULL, NULL,
     BAD("audience")},
    {"audience escape", "billing-bot", "payments:read", "https://pay\x1b[0m", "orders/1", 0, NULL,
     NULL, NULL, BAD("audience")},
    {"audience unicode", "billing-bot", "payments:read", PAY "\xc3\xa9", "orders/1", 0, NULL, NULL,
     NULL, NOMATCH},
    {"resource newline", "billing-bot", "payments:read", PAY, "orders/1\nx", 0, NULL, NULL, NULL,
     BAD("resource")},
    {"resource bad UTF-8", "billing-bot", "payments:read", PAY, "orders/\xc0\xaf", 0, NULL, NULL,
     NULL, BAD("resource")},
    {"resource C1 control", "billing-bot", "payments:read", PAY, "orders/\xc2\x85", 0, NULL, NULL,
     NULL, BAD("resource")},
    {"resource null", "billing-bot", "payments:read", PAY, NULL, 0, NULL, NULL, NULL, NOMATCH},
    {"resource too long", "billing-bot", "payments:read", PAY, long_res, 0, NULL, NULL, NULL,
     BAD("resource")},
    {"resource longest", "billing-bot", "payments:read", PAY, long_res_ok, 0, NULL, NULL, NULL,
     ALLOW("payments-read", ANY, ANY, ANY)},
    {"act empty", "triage-bot", "tickets:close", TIX, "tickets/1", 0, "", NULL, NULL, BAD("act")},
    {"act control", "triage-bot", "tickets:close", TIX, "tickets/1", 0, "user\x07", NULL, NULL,
     BAD("act")},
};

static const char *EDGE =
    "{\"version\": 1, \"trust_domain\": \"example.org\", " FX_SETTINGS ","
    "\"groups\": {\"ops\": {\"members\": [\"x\", \"y\"]}},"
    "\"rules\": ["
    "{\"id\": \"e-allow-a\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": [\"svc:*\"],"
    " \"audiences\": [\"aud\"], \"resources\": [\"**\"], \"obligations\": {\"ttl\": 100,"
    " \"rate_limits\": {\"per_agent\": {\"rate\": 100, \"burst\": 10, \"period\": 60}}}},"
    "{\"id\": \"e-allow-b\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": "
    "[\"svc:write\"], \"audiences\": [\"aud\"], \"resources\": [\"docs/*\"], \"obligations\":"
    " {\"ttl\": 30, \"single_use\": true, \"binding\": \"any\", \"rate_limits\": {\"per_action\":"
    " {\"rate\": 5, \"burst\": 5, \"period\": 1}}}},"
    "{\"id\": \"e-allow-c\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": "
    "[\"svc:write\"], \"audiences\": [\"aud\"], \"resources\": [\"docs/secret*\"],"
    " \"obligations\": {\"binding\": \"dpop\"}},"
    "{\"id\": \"e-allow-d\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": "
    "[\"svc:write\"], \"audiences\": [\"aud\"], \"resources\": [\"docs/secret-mtls\"],"
    " \"obligations\": {\"binding\": \"mtls\"}},"
    "{\"id\": \"e-deny-future\", \"effect\": \"deny\", \"agents\": [\"group:ops\"], \"actions\":"
    " [\"svc:*\"], \"audiences\": [\"aud\"], \"resources\": [\"**\"], \"conditions\":"
    " {\"not_before\": \"2030-01-01T00:00:00Z\"}},"
    "{\"id\": \"e-appr-1\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": [\"appr:go\"],"
    " \"audiences\": [\"aud\"], \"resources\": [\"**\"], \"obligations\": {\"approval_required\":"
    " {\"group\": \"g1\", \"approvers\": 2}}},"
    "{\"id\": \"e-appr-2\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": [\"appr:go\"],"
    " \"audiences\": [\"aud\"], \"resources\": [\"special/*\"], \"obligations\":"
    " {\"approval_required\": {\"group\": \"g1\", \"approvers\": 3}}},"
    "{\"id\": \"e-appr-3\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": [\"appr:go\"],"
    " \"audiences\": [\"aud\"], \"resources\": [\"special/other-*\"], \"obligations\":"
    " {\"approval_required\": {\"group\": \"g2\", \"approvers\": 1}}},"
    "{\"id\": \"e-lim\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": [\"lim:pay\"],"
    " \"audiences\": [\"aud\"], \"resources\": [\"**\"], \"conditions\": {\"limits\": [{\"path\":"
    " \"a.b.c\", \"min\": -9007199254740992, \"max\": 9007199254740992}]}},"
    "{\"id\": \"e-lim-frac\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\":"
    " [\"lim:frac\"], \"audiences\": [\"aud\"], \"resources\": [\"**\"], \"conditions\":"
    " {\"limits\": [{\"path\": \"v\", \"min\": 0.1, \"max\": 0.3}]}},"
    "{\"id\": \"e-expire\", \"effect\": \"allow\", \"agents\": [\"y\"], \"actions\": "
    "[\"svc:read\"],"
    " \"audiences\": [\"aud\"], \"resources\": [\"**\"], \"conditions\": {\"not_after\":"
    " \"2026-01-01T00:00:00Z\"}},"
    "{\"id\": \"e-star-aud\", \"effect\": \"allow\", \"agents\": [\"y\"], \"actions\":"
    " [\"svc:list\"], \"audiences\": [\"https://*.internal\"], \"resources\": [\"*\"]},"
    "{\"id\": \"e-any-agent\", \"effect\": \"allow\", \"agents\": [\"*\"], \"actions\":"
    " [\"pub:read\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]},"
    "{\"id\": \"e-deny-unicode\", \"effect\": \"deny\", \"agents\": [\"*\"], \"actions\":"
    " [\"pub:read\"], \"audiences\": [\"**\"], \"resources\": [\"secret/\\u00e9t\\u00e9/**\"]},"
    "{\"id\": \"e-night\", \"effect\": \"allow\", \"agents\": [\"y\"], \"actions\": "
    "[\"night:run\"],"
    " \"audiences\": [\"aud\"], \"resources\": [\"**\"], \"conditions\": {\"time_windows\":"
    " [{\"days\": [\"fri\"], \"start\": \"22:00\", \"end\": \"06:00\"}]}},"
    "{\"id\": \"e-deny-offnet\", \"effect\": \"deny\", \"agents\": [\"y\"], \"actions\":"
    " [\"net:*\"], \"audiences\": [\"aud\"], \"resources\": [\"**\"], \"conditions\":"
    " {\"source_ip\": [\"192.0.2.0/24\"]}},"
    "{\"id\": \"e-allow-net\", \"effect\": \"allow\", \"agents\": [\"y\"], \"actions\":"
    " [\"net:*\"], \"audiences\": [\"aud\"], \"resources\": [\"**\"]}"
    "]}";

#define LIM(v) "{\"a\": {\"b\": {\"c\": " v "}}}"
#define FRI    (MON + 4 * D)

static const struct dcase edge_cases[] = {
    {"one allow", "x", "svc:read", "aud", "doc", 0, NULL, NULL, NULL,
     ALLOW("e-allow-a", 100, POLICY_BINDING_NONE, 0)},
    {"two allows combine", "x", "svc:write", "aud", "docs/1", 0, NULL, NULL, NULL,
     ALLOW("e-allow-a", 30, POLICY_BINDING_ANY, 1)},
    {"three allows combine", "x", "svc:write", "aud", "docs/secret-1", 0, NULL, NULL, NULL,
     ALLOW("e-allow-a", 30, POLICY_BINDING_DPOP, 1)},
    {"binding conflict", "x", "svc:write", "aud", "docs/secret-mtls", 0, NULL, NULL, NULL,
     CONFLICT("e-allow-c")},
    {"only the broad rule", "x", "svc:write", "aud", "docs/a/b", 0, NULL, NULL, NULL,
     ALLOW("e-allow-a", 100, POLICY_BINDING_NONE, 0)},
    {"deny from 2030", "x", "svc:write", "aud", "docs/1", 1893456000LL, NULL, NULL, NULL,
     DENYR("e-deny-future")},
    {"allow until 2030", "x", "svc:write", "aud", "docs/1", 1893456000LL - 1, NULL, NULL, NULL,
     ALLOW("e-allow-a", ANY, ANY, ANY)},
    {"group member without allow", "y", "svc:write", "aud", "docs/1", 0, NULL, NULL, NULL, NOMATCH},
    {"approval", "x", "appr:go", "aud", "any", 0, NULL, NULL, NULL, APPROVAL("e-appr-1")},
    {"approval count combines", "x", "appr:go", "aud", "special/1", 0, NULL, NULL, NULL,
     APPROVAL("e-appr-1")},
    {"approval group conflict", "x", "appr:go", "aud", "special/other-1", 0, NULL, NULL, NULL,
     CONFLICT("e-appr-1")},
    {"limit +2^53", "x", "lim:pay", "aud", "r", 0, NULL, NULL, LIM("9007199254740992"),
     ALLOW("e-lim", ANY, ANY, ANY)},
    {"limit +2^53+1", "x", "lim:pay", "aud", "r", 0, NULL, NULL, LIM("9007199254740993"),
     COND("e-lim", "a.b.c")},
    {"limit -2^53", "x", "lim:pay", "aud", "r", 0, NULL, NULL, LIM("-9007199254740992"),
     ALLOW("e-lim", ANY, ANY, ANY)},
    {"limit -2^53-1", "x", "lim:pay", "aud", "r", 0, NULL, NULL, LIM("-9007199254740993"),
     COND("e-lim", "a.b.c")},
    {"limit int64 max", "x", "lim:pay", "aud", "r", 0, NULL, NULL, LIM("9223372036854775807"),
     COND("e-lim", "a.b.c")},
    {"limit 1e308", "x", "lim:pay", "aud", "r", 0, NULL, NULL, LIM("1e308"),
     COND("e-lim", "a.b.c")},
    {"limit -0.0", "x", "lim:pay", "aud", "r", 0, NULL, NULL, LIM("-0.0"),
     ALLOW("e-lim", ANY, ANY, ANY)},
    {"limit path missing", "x", "lim:pay", "aud", "r", 0, NULL, NULL, "{\"a\": {\"b\": {}}}",
     COND("e-lim", "a.b.c")},
    {"limit path through number", "x", "lim:pay", "aud", "r", 0, NULL, NULL, "{\"a\": {\"b\": 5}}",
     COND("e-lim", "a.b.c")},
    {"limit string", "x", "lim:pay", "aud", "r", 0, NULL, NULL, LIM("\"5\""),
     COND("e-lim", "a.b.c")},
    {"limit no details", "x", "lim:pay", "aud", "r", 0, NULL, NULL, NULL, COND("e-lim", "a.b.c")},
    {"frac low edge", "x", "lim:frac", "aud", "r", 0, NULL, NULL, "{\"v\": 0.1}",
     ALLOW("e-lim-frac", ANY, ANY, ANY)},
    {"frac high edge", "x", "lim:frac", "aud", "r", 0, NULL, NULL, "{\"v\": 0.3}",
     ALLOW("e-lim-frac", ANY, ANY, ANY)},
    {"frac just above", "x", "lim:frac", "aud", "r", 0, NULL, NULL, "{\"v\": 0.30000000000000004}",
     COND("e-lim-frac", "v")},
    {"frac just below", "x", "lim:frac", "aud", "r", 0, NULL, NULL, "{\"v\": 0.09999999999999999}",
     COND("e-lim-frac", "v")},
    {"frac integer zero", "x", "lim:frac", "aud", "r", 0, NULL, NULL, "{\"v\": 0}",
     COND("e-lim-frac", "v")},
    {"expiry last second", "y", "svc:read", "aud", "r", 1767225599LL, NULL, NULL, NULL,
     ALLOW("e-expire", ANY, ANY, ANY)},
    {"expiry instant", "y", "svc:read", "aud", "r", 1767225600LL, NULL, NULL, NULL,
     ALLOW("e-expire", ANY, ANY, ANY)},
    {"expired", "y", "svc:read", "aud", "r", 1767225601LL, NULL, NULL, NULL,
     COND("e-expire", "not_after")},
    {"audience pattern", "y", "svc:list", "https://payments.internal", "x", 0, NULL, NULL, NULL,
     ALLOW("e-star-aud", ANY, ANY, ANY)},
    {"audience pattern stays in segment", "y", "svc:list", "https://a/b.internal", "x", 0, NULL,
     NULL, NULL, NOMATCH},
    {"resource star stays in segment", "y", "svc:list", "https://a.internal", "a/b", 0, NULL, NULL,
     NULL, NOMATCH},
    {"any agent", "zzz", "pub:read", "anything", "a/b/c", 0, NULL, NULL, NULL,
     ALLOW("e-any-agent", ANY, ANY, ANY)},
    {"any agent, empty resource", "zzz", "pub:read", "anything", "", 0, NULL, NULL, NULL,
     ALLOW("e-any-agent", ANY, ANY, ANY)},
    {"any agent, longest name", long_name + 1, "pub:read", "a", "r", 0, NULL, NULL, NULL,
     ALLOW("e-any-agent", ANY, ANY, ANY)},
    {"longest service", "zzz", long_svc_ok, "a", "r", 0, NULL, NULL, NULL, NOMATCH},
    {"unicode deny (NFC)", "zzz", "pub:read", "a", "secret/\xc3\xa9t\xc3\xa9/x", 0, NULL, NULL,
     NULL, DENYR("e-deny-unicode")},
    {"unicode other bytes (NFD)", "zzz", "pub:read", "a", "secret/e\xcc\x81te\xcc\x81/x", 0, NULL,
     NULL, NULL, ALLOW("e-any-agent", ANY, ANY, ANY)},
    {"ascii lookalike", "zzz", "pub:read", "a", "secret/ete/x", 0, NULL, NULL, NULL,
     ALLOW("e-any-agent", ANY, ANY, ANY)},
    {"night window friday", "y", "night:run", "aud", "r", FRI + 23 * H, NULL, NULL, NULL,
     ALLOW("e-night", ANY, ANY, ANY)},
    {"night window saturday morning", "y", "night:run", "aud", "r", FRI + D + 3 * H, NULL, NULL,
     NULL, ALLOW("e-night", ANY, ANY, ANY)},
    {"night window over", "y", "night:run", "aud", "r", FRI + D + 6 * H, NULL, NULL, NULL,
     COND("e-night", "time_windows")},
    {"night window not yet", "y", "night:run", "aud", "r", FRI + 21 * H + 59 * 60, NULL, NULL, NULL,
     COND("e-night", "time_windows")},
    {"night window thursday", "y", "night:run", "aud", "r", FRI - D + 23 * H, NULL, NULL, NULL,
     COND("e-night", "time_windows")},
    {"net from inside", "y", "net:ping", "aud", "r", 0, NULL, "10.0.0.1", NULL,
     ALLOW("e-allow-net", ANY, ANY, ANY)},
    {"net from denied range", "y", "net:ping", "aud", "r", 0, NULL, "192.0.2.5", NULL,
     DENYR("e-deny-offnet")},
    {"net from mapped denied", "y", "net:ping", "aud", "r", 0, NULL, "::ffff:192.0.2.5", NULL,
     DENYR("e-deny-offnet")},
    {"net source unknown: deny when unsure", "y", "net:ping", "aud", "r", 0, NULL, NULL, NULL,
     DENYR("e-deny-offnet")},
    {"net over IPv6", "y", "net:ping", "aud", "r", 0, NULL, "2001:db8::1", NULL,
     ALLOW("e-allow-net", ANY, ANY, ANY)},
    {"far past", "y", "net:ping", "aud", "r", -4000000000LL, NULL, "10.0.0.1", NULL,
     ALLOW("e-allow-net", ANY, ANY, ANY)},
    {"far future", "y", "net:ping", "aud", "r", 253402300799LL, NULL, "10.0.0.1", NULL,
     ALLOW("e-allow-net", ANY, ANY, ANY)},
};

static void init_long_strings(void)
{
    memset(long_name, 'a', 129);
    long_name[129] = '\0'; /* 129: too long; long_name + 1 is the 128 maximum */
    memcpy(long_res, "invoices/", 9);
    memset(long_res + 9, 'x', 4097 - 9);
    long_res[4097] = '\0';
    memcpy(long_res_ok, "invoices/", 9);
    memset(long_res_ok + 9, 'x', 4096 - 9);
    long_res_ok[4096] = '\0';
    memset(long_svc, 's', 65);
    strcpy(long_svc + 65, ":read");
    memset(long_svc_ok, 's', 64);
    strcpy(long_svc_ok + 64, ":read");
}

static void run_case(const policy *p, const struct dcase *c, policy_decision *d)
{
    policy_request r = {.agent = c->agent,
                        .action = c->action,
                        .audience = c->audience,
                        .resource = c->resource,
                        .ctx = {.now = c->now ? c->now : WED10, .act = c->act}};
    if (c->ip != NULL && policy_ip_parse(c->ip, &r.ctx.source) != ZTB_OK)
        fail_msg("%s: bad test address", c->name);
    json_t *ad = c->ad ? fx_json(c->ad) : NULL;
    r.ctx.authorization_details = ad;
    assert_int_equal(policy_eval(p, &r, d), ZTB_OK);
    json_decref(ad);
}

static void check_case(const policy *p, const struct dcase *c)
{
    policy_decision d;
    run_case(p, c, &d);
    ztb_buf b;
    ztb_buf_init(&b, 8192);
    policy_decision_describe(&d, &b);
    const char *got = ztb_buf_cstr(&b);
    if (d.effect != c->effect || d.reason != c->reason)
        fail_msg("%s: got %s", c->name, got);
    if ((c->rule == NULL) != (d.rule == NULL) || (c->rule && strcmp(c->rule, d.rule) != 0))
        fail_msg("%s: rule %s, want %s (%s)", c->name, d.rule ? d.rule : "-",
                 c->rule ? c->rule : "-", got);
    if (c->detail != NULL && (d.detail == NULL || strstr(d.detail, c->detail) == NULL))
        fail_msg("%s: detail '%s' lacks '%s'", c->name, d.detail ? d.detail : "-", c->detail);
    if (c->ttl != ANY && (int)d.ob.ttl != c->ttl)
        fail_msg("%s: ttl %u want %d", c->name, d.ob.ttl, c->ttl);
    if (c->binding != ANY && d.ob.binding != c->binding)
        fail_msg("%s: binding %d want %d", c->name, d.ob.binding, c->binding);
    if (c->single_use != ANY && d.ob.single_use != c->single_use)
        fail_msg("%s: single_use %d want %d", c->name, d.ob.single_use, c->single_use);
    /* invariants of every decision */
    if (d.effect == POLICY_DENY) {
        assert_int_equal(d.ob.ttl, 0);
        assert_int_equal(d.n_matched, 0);
    } else {
        assert_true(d.ob.ttl >= 1 && d.ob.ttl <= policy_max_ttl(p));
        assert_true(d.n_matched >= 1);
        assert_string_equal(d.matched[0], d.effect == POLICY_ALLOW ? d.rule : d.matched[0]);
        assert_true(d.ob.per_agent.rate > 0 && d.ob.per_action.rate > 0);
        assert_int_equal(d.effect == POLICY_APPROVAL_REQUIRED, d.ob.approvers > 0);
    }
    ztb_buf_free(&b);
}

static policy *load_fleet(void)
{
    char path[4096];
    policy *p = NULL;
    assert_int_equal(
        policy_load_file(fx_src(path, sizeof(path), "examples/policy/fleet.json"), &p, NULL),
        ZTB_OK);
    return p;
}

static void test_fleet_table(void **state)
{
    (void)state;
    policy *p = load_fleet();
    for (size_t i = 0; i < sizeof(fleet_cases) / sizeof(fleet_cases[0]); i++)
        check_case(p, &fleet_cases[i]);
    policy_unref(p);
}

static void test_edge_table(void **state)
{
    (void)state;
    policy *p = fx_load(EDGE);
    assert_non_null(p);
    for (size_t i = 0; i < sizeof(edge_cases) / sizeof(edge_cases[0]); i++)
        check_case(p, &edge_cases[i]);
    policy_unref(p);
}

static void test_table_size(void **state)
{
    (void)state;
    size_t n =
        sizeof(fleet_cases) / sizeof(fleet_cases[0]) + sizeof(edge_cases) / sizeof(edge_cases[0]);
    assert_true(n >= 100);
}

/* Specific obligations of combined rules, field by field. */
static void test_combination_details(void **state)
{
    (void)state;
    policy *p = fx_load(EDGE);
    assert_non_null(p);
    policy_decision d;
    run_case(p, &edge_cases[2], &d); /* docs/secret-1: a, b, c */
    assert_int_equal(d.n_matched, 3);
    assert_string_equal(d.matched[0], "e-allow-a");
    assert_string_equal(d.matched[1], "e-allow-b");
    assert_string_equal(d.matched[2], "e-allow-c");
    /* per_agent: a's 100/60 beats the default 600/60 */
    assert_int_equal(d.ob.per_agent.rate, 100);
    assert_int_equal(d.ob.per_agent.period, 60);
    /* per_action: b's 5/s is looser than the default 2/s that a carries: default wins */
    assert_int_equal(d.ob.per_action.rate, 120);
    assert_int_equal(d.ob.per_action.period, 60);
    run_case(p, &edge_cases[9], &d); /* approval counts combine to the max */
    assert_string_equal(d.ob.approval_group, "g1");
    assert_int_equal(d.ob.approvers, 3);
    run_case(p, &edge_cases[10], &d);
    assert_string_equal(d.rule, "e-appr-1");
    assert_string_equal(d.other_rule, "e-appr-3");
    assert_non_null(strstr(d.detail, "approver groups"));
    run_case(p, &edge_cases[3], &d);
    assert_string_equal(d.other_rule, "e-allow-d");
    assert_non_null(strstr(d.detail, "DPoP"));
    policy_unref(p);
    /* fleet: the per_action rate a rule sets is carried */
    p = load_fleet();
    run_case(p, &fleet_cases[0], &d);
    assert_int_equal(d.ob.per_action.rate, 10);
    assert_int_equal(d.ob.per_action.burst, 5);
    assert_int_equal(d.ob.per_agent.rate, 600);
    run_case(p, &fleet_cases[6], &d);
    assert_string_equal(d.ob.approval_group, "finance-approvers");
    assert_int_equal(d.ob.approvers, 2);
    assert_int_equal(d.ob.binding, POLICY_BINDING_DPOP);
    run_case(p, &fleet_cases[10], &d); /* deny on a missing amount says why */
    assert_int_equal(d.detail_unknown, 1);
    assert_non_null(strstr(d.detail, "amount"));
    policy_unref(p);
}

/* ---- file order must not matter ----------------------------------------- */

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

static void shuffle_array(json_t *a, unsigned *seed)
{
    size_t n = json_array_size(a);
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd(seed) % i;
        json_t *x = json_incref(json_array_get(a, i - 1));
        json_t *y = json_incref(json_array_get(a, j));
        json_array_set_new(a, i - 1, y);
        json_array_set_new(a, j, x);
    }
}

/* The same document with rules, group order, member order and responses shuffled. */
static char *shuffled(const char *doc, unsigned seed)
{
    json_t *j = fx_json(doc);
    shuffle_array(json_object_get(j, "rules"), &seed);
    if (json_object_get(j, "anomaly_responses"))
        shuffle_array(json_object_get(j, "anomaly_responses"), &seed);
    json_t *groups = json_object_get(j, "groups");
    json_t *ng = json_object();
    const char **keys = calloc(json_object_size(groups) + 1, sizeof(char *));
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(groups, key, v)
    {
        keys[k++] = key;
        shuffle_array(json_object_get(v, "members"), &seed);
        json_t *members = json_object_get(v, "members");
        (void)members;
    }
    for (size_t i = k; i > 1; i--) {
        size_t x = rnd(&seed) % i;
        const char *t = keys[i - 1];
        keys[i - 1] = keys[x];
        keys[x] = t;
    }
    for (size_t i = 0; i < k; i++)
        json_object_set(ng, keys[i], json_object_get(groups, keys[i]));
    json_object_set_new(j, "groups", ng);
    /* also shuffle each rule's lists */
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(j, "rules"), i, r)
    {
        static const char *lists[] = {"agents", "actions", "audiences", "resources"};
        for (size_t l = 0; l < 4; l++)
            shuffle_array(json_object_get(r, lists[l]), &seed);
    }
    char *s = json_dumps(j, JSON_COMPACT);
    free(keys);
    json_decref(j);
    return s;
}

static void same_decision(const policy_decision *a, const policy_decision *b, const char *name)
{
#define SAME_STR(x, y) ((x) == (y) || ((x) && (y) && strcmp((x), (y)) == 0))
    if (a->effect != b->effect || a->reason != b->reason || !SAME_STR(a->rule, b->rule) ||
        !SAME_STR(a->other_rule, b->other_rule) || !SAME_STR(a->detail, b->detail) ||
        a->detail_unknown != b->detail_unknown || a->n_matched != b->n_matched ||
        a->ob.ttl != b->ob.ttl || a->ob.single_use != b->ob.single_use ||
        a->ob.binding != b->ob.binding || a->ob.approvers != b->ob.approvers ||
        !SAME_STR(a->ob.approval_group, b->ob.approval_group) ||
        memcmp(&a->ob.per_agent, &b->ob.per_agent, sizeof(policy_rate)) != 0 ||
        memcmp(&a->ob.per_action, &b->ob.per_action, sizeof(policy_rate)) != 0)
        fail_msg("%s: decision changed with the file order", name);
    for (uint32_t i = 0; i < a->n_matched && i < POLICY_MAX_MATCHED; i++)
        if (!SAME_STR(a->matched[i], b->matched[i]))
            fail_msg("%s: matched list changed with the file order", name);
#undef SAME_STR
}

static void check_order_independent(const char *doc, const struct dcase *cases, size_t n)
{
    policy *base = fx_load(doc);
    assert_non_null(base);
    for (unsigned seed = 1; seed <= 12; seed++) {
        char *s = shuffled(doc, seed);
        policy *p = fx_load(s);
        assert_non_null(p);
        assert_string_not_equal(policy_digest(p), policy_digest(base));
        for (size_t i = 0; i < n; i++) {
            policy_decision a, b;
            run_case(base, &cases[i], &a);
            run_case(p, &cases[i], &b);
            same_decision(&a, &b, cases[i].name);
        }
        policy_unref(p);
        free(s);
    }
    policy_unref(base);
}

static void test_file_order_does_not_matter(void **state)
{
    (void)state;
    char path[4096];
    FILE *f = fopen(fx_src(path, sizeof(path), "examples/policy/fleet.json"), "rb");
    assert_non_null(f);
    static char fleet[1 << 16];
    size_t n = fread(fleet, 1, sizeof(fleet) - 1, f);
    fclose(f);
    fleet[n] = '\0';
    check_order_independent(fleet, fleet_cases, sizeof(fleet_cases) / sizeof(fleet_cases[0]));
    check_order_independent(EDGE, edge_cases, sizeof(edge_cases) / sizeof(edge_cases[0]));
}

/* The broker's own actions (ztb:introspect, ztb:consume) are granted only
 * by a rule that names them: a broad "*" rule written for an agent's work
 * must not let it introspect or burn everyone's tokens. */
static void test_reserved_service_only_by_name(void **state)
{
    (void)state;
    static const char *doc =
        "{\"version\": 1, \"trust_domain\": \"example.org\", " FX_SETTINGS ","
        "\"rules\": ["
        "{\"id\": \"wide\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": [\"*\"],"
        " \"audiences\": [\"**\"], \"resources\": [\"**\"]},"
        "{\"id\": \"z-glob\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": "
        "[\"z*:*\", \"ztb:*\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]},"
        "{\"id\": \"gate\", \"effect\": \"allow\", \"agents\": [\"gw\"], \"actions\": "
        "[\"ztb:introspect\"], \"audiences\": [\"aud\"], \"resources\": [\"**\"]}]}";
    policy *p = NULL;
    assert_int_equal(policy_load(doc, strlen(doc), &p, NULL), ZTB_OK);
    const struct {
        const char *agent, *action;
        policy_effect want;
    } cases[] = {
        {"x", "svc:read", POLICY_ALLOW},        {"x", "zeta:read", POLICY_ALLOW},
        {"x", "ztb:introspect", POLICY_DENY},   {"x", "ztb:consume", POLICY_DENY},
        {"gw", "ztb:introspect", POLICY_ALLOW}, {"gw", "ztb:consume", POLICY_DENY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        policy_request r = {.agent = cases[i].agent,
                            .action = cases[i].action,
                            .audience = "aud",
                            .resource = "",
                            .ctx = {.now = WED10}};
        policy_decision d;
        assert_int_equal(policy_eval(p, &r, &d), ZTB_OK);
        if (d.effect != cases[i].want)
            fail_msg("%s %s: effect %d, want %d", cases[i].agent, cases[i].action, (int)d.effect,
                     (int)cases[i].want);
    }
    policy_unref(p);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    policy *p = fx_load(EDGE);
    policy_request r = {.agent = "x", .action = "svc:read", .audience = "aud", .resource = "r"};
    policy_decision d;
    assert_int_equal(policy_eval(NULL, &r, &d), ZTB_ERR_INVALID_ARG);
    assert_int_equal(d.effect, POLICY_DENY); /* even then, out says deny */
    assert_int_equal(policy_eval(p, NULL, &d), ZTB_ERR_INVALID_ARG);
    assert_int_equal(policy_eval(p, &r, NULL), ZTB_ERR_INVALID_ARG);
    policy_unref(p);
}

int main(void)
{
    init_long_strings();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_size),
        cmocka_unit_test(test_fleet_table),
        cmocka_unit_test(test_edge_table),
        cmocka_unit_test(test_combination_details),
        cmocka_unit_test(test_file_order_does_not_matter),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_reserved_service_only_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
