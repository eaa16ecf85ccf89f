/*
 * model.h - the in-memory form of a loaded policy (internal to policy/).
 *
 * load.c fills it from the document, overlap.c checks it, compile.c adds the
 * lookup tables, eval.c and explain.c read it. Everything in it lives in the
 * policy's arena and is immutable once policy_load returns, which is what
 * lets any number of threads evaluate without locks. Rules are stored in
 * canonical order (deny rules first, then by id), never in file order, so no
 * result can depend on how the file was arranged.
 */
#ifndef ZTB_POLICY_MODEL_H
#define ZTB_POLICY_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "policy/cond.h"
#include "policy/glob.h"
#include "policy/load.h"
#include "policy/strmap.h"
#include "policy/types.h"

/* Limits on what a document may hold (docs/policy.md lists them). */
#define POLICY_MAX_DOC       POLICY_MAX_DOCUMENT /* bytes of JSON (load.h) */
#define POLICY_MAX_ARENA     (256u << 20)
#define POLICY_MAX_RULES     10000
#define POLICY_MAX_GROUPS    1024
#define POLICY_GROUP_WORDS   (POLICY_MAX_GROUPS / 64)
#define POLICY_MAX_MEMBERS   1000000 /* group members, all groups together */
#define POLICY_MAX_LIST      256     /* entries in one list of a rule */
#define POLICY_MAX_RESPONSES 1000
#define POLICY_MAX_ID        64   /* rule / group / response ids */
#define POLICY_MAX_NAME      128  /* agent names */
#define POLICY_MAX_INPUT     4096 /* bytes of one request string */
#define POLICY_MAX_TTL_LIMIT 86400
#define POLICY_MAX_APPROVERS 10
/* approval_required.expires_in: how long a pending approval waits, seconds */
#define POLICY_APPROVAL_TTL_MIN 10
#define POLICY_APPROVAL_TTL_MAX 86400
/* the wait of a rule that sets no expires_in (docs/policy.md; the broker's
 * APPROVAL_DEFAULT_TTL is defined as this) */
#define POLICY_APPROVAL_TTL_DEFAULT 900

/* Agents a rule (or group, or anomaly response) names. */
struct policy_agentset {
    uint8_t any;      /* "*": every agent */
    uint32_t n_names; /* exact agent names, as agent indexes, sorted */
    const uint32_t *names;
    const char *const *name_text; /* the exact names (resolved by compile.c) */
    uint32_t n_groups;            /* referenced groups, as group indexes, sorted */
    const uint32_t *groups;
    const uint64_t *group_mask; /* the same as a bitset of group_words words */
    uint32_t n_globs;           /* name patterns */
    const policy_glob *globs;
    uint32_t n_text; /* the entries as written, normalised, sorted */
    const char *const *text;
};

struct policy_action_pat {
    const char *text; /* "payments:refund", "payments:*", "*" */
    policy_glob service;
    policy_glob verb;
    uint32_t literal_len; /* both parts literal: strlen(text), compared whole; else 0 */
};

/* Which obligations a rule set itself (the others come from settings). */
#define POLICY_OB_TTL        0x01
#define POLICY_OB_SINGLE_USE 0x02
#define POLICY_OB_BINDING    0x04
#define POLICY_OB_PER_AGENT  0x08
#define POLICY_OB_PER_ACTION 0x10
#define POLICY_OB_APPROVAL   0x20

struct policy_rule {
    const char *id;
    const char *description; /* NULL if none */
    uint32_t index;          /* position in canonical order */
    uint32_t doc_index;      /* position in the document's rules array */
    uint8_t effect;          /* POLICY_ALLOW or POLICY_DENY */
    struct policy_agentset agents;
    uint32_t n_actions, n_audiences, n_resources;
    const struct policy_action_pat *actions;
    const policy_glob *audiences;
    const policy_glob *resources;
    struct policy_conditions cond;
    policy_obligations ob; /* allow: effective obligations (defaults applied) */
    uint32_t ob_explicit;  /* POLICY_OB_* set by the rule itself */
    const char *match_key; /* canonical text of what it matches, for overlap checks */
    uint64_t agent_bloom;  /* see struct policy_cand */
};

struct policy_group {
    const char *name;
    const char *description;
    uint32_t index;
    uint32_t n_members; /* as written, normalised */
    const char *const *members;
    uint32_t n_globs; /* the pattern members */
    const policy_glob *globs;
};

struct policy_agent {
    const char *name;
    uint32_t len;
    const uint64_t *groups; /* group_words words: groups naming this agent exactly */
};

/* Rules that may apply to one (audience, service) key, ascending rule index. */
struct policy_rulelist {
    uint32_t n;
    const uint32_t *idx;
};

/*
 * One candidate of a pre-merged list: the rule, whether it is there because
 * of an exact audience (then its audience matches by construction), and a
 * 64-bit summary of the groups its agents name (bit g % 64 for group g; all
 * ones when it names agents or patterns directly, or "*"): an agent none of
 * whose groups hit the summary cannot match, without reading the rule.
 */
struct policy_cand {
    uint32_t rule;
    uint32_t audience_known;
    uint64_t agent_bloom;
};

struct policy_candlist {
    uint32_t n;
    const struct policy_cand *c;
};

struct policy_bucket {
    policy_strmap services;              /* exact service -> index into lists */
    const struct policy_rulelist *lists; /* per exact service */
    struct policy_rulelist any_service;  /* rules whose service pattern is not literal */
    /* exact buckets: per exact service, the merge of this bucket's two lists
     * and the wild bucket's two for that service (NULL if not precomputed) */
    const struct policy_candlist *merged;
};

struct policy_response_rule {
    const char *id;
    const char *description;
    uint32_t n_signals;
    const char *const *signals; /* signal types; "*" for any */
    struct policy_agentset agents;
    uint8_t all_agents; /* no "agents" field: applies to every agent */
    uint8_t min_severity;
    double min_confidence;
    uint8_t response; /* enum policy_response_kind */
    uint32_t independent_signals;
    uint32_t window;
    uint8_t operator_confirmation;
};

struct policy {
    atomic_uint refs;
    ztb_arena arena;
    char digest[65]; /* SHA-256 of the document, hex */
    char *doc;       /* the document as loaded (malloc'd, NUL-terminated) */
    size_t doc_len;
    const char *trust_domain;
    const char *spiffe_prefix; /* "spiffe://<td>/agent/" */
    uint32_t spiffe_prefix_len;
    const char *description;

    /* settings */
    uint32_t max_ttl;
    uint32_t default_ttl;
    uint8_t default_binding;
    policy_rate default_per_agent;
    policy_rate default_per_action;

    uint32_t n_groups;
    struct policy_group *groups; /* sorted by name */
    uint32_t group_words;        /* words in every group bitset (>= 1) */
    policy_strmap group_map;     /* name -> index */
    uint32_t n_glob_groups;      /* groups with pattern members */
    const uint32_t *glob_groups;
    const uint64_t *no_groups; /* an all-zero bitset */

    uint32_t n_agents; /* every agent named exactly anywhere */
    struct policy_agent *agents;
    policy_strmap agent_map; /* name -> index */

    uint32_t n_rules;
    struct policy_rule *rules; /* canonical order */
    uint32_t n_deny;           /* rules[0..n_deny) are the deny rules */
    policy_strmap rule_map;    /* id -> index */

    /* the index: exact audience -> bucket; non-literal audiences in wild */
    policy_strmap audience_map;
    struct policy_bucket *buckets;
    uint32_t n_buckets;
    struct policy_bucket wild;

    uint32_t n_responses;
    struct policy_response_rule *responses; /* sorted by id */
};

/* A new empty policy with one reference (policy.c), or NULL. */
policy *policy_alloc(void);

/* Most candidate entries pre-merged in one policy (beyond it: merged per request). */
#define POLICY_MAX_MERGED (4u << 20)

/* 1 if bit i of a group bitset is set. */
static inline int policy_bit(const uint64_t *bits, uint32_t i)
{
    return (int)((bits[i / 64] >> (i % 64)) & 1);
}

#endif /* ZTB_POLICY_MODEL_H */
