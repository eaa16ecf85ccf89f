/*
 * load_internal.h - what the files of the policy loader share (load.c and
 * load_*.c): the walk's state, and the functions one section's parser
 * calls in another's file.
 *
 * Must never be included outside policy/load*.c: everything else loads a
 * policy through load.h.
 */
#ifndef ZTB_POLICY_LOAD_INTERNAL_H
#define ZTB_POLICY_LOAD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "policy/diag.h"
#include "policy/glob.h"
#include "policy/model.h"

#define QCAP 96 /* room for a quoted, escaped, cut value */
#define WCAP 160

struct ld {
    policy *p;
    ztb_arena *a;
    policy_diag *d;
    int errors;
};

enum aref_kind { AREF_ANY, AREF_NAME, AREF_GLOB, AREF_GROUP };

struct aref {
    enum aref_kind kind;
    const char *norm; /* "*", "name", "pat*", "group:x" (arena) */
    policy_glob glob;
    uint32_t group;
};

/* load_fields.c */

__attribute__((format(printf, 4, 5))) void load_fail(struct ld *L, const char *where,
                                                     const char *field, const char *fmt, ...);
const char *load_quote(char *buf, const char *s);
const char *load_path(char *buf, size_t cap, const char *prefix, const char *key);
const char *load_suggest(const char *s, const char *const *list);
int load_in_list(const char *s, const char *const *list);
void load_check_keys(struct ld *L, json_t *obj, const char *where, const char *prefix,
                     const char *const *allowed);
json_t *load_get(struct ld *L, json_t *obj, const char *key, const char *where, const char *prefix,
                 int required);
int load_get_u32(struct ld *L, json_t *obj, const char *key, const char *where, const char *prefix,
                 uint32_t lo, uint32_t hi, int required, uint32_t *out);
int load_get_bool(struct ld *L, json_t *obj, const char *key, const char *where, const char *prefix,
                  uint8_t *out);
const char *load_get_str(struct ld *L, json_t *obj, const char *key, const char *where,
                         const char *prefix, size_t maxlen, int required);
char *load_copy(struct ld *L, const char *s);
int load_valid_id(const char *s, size_t n);
int load_valid_name(const char *s, size_t n, size_t max, int star);
int load_cmp_str(const void *a, const void *b);
int load_cmp_u32(const void *a, const void *b);
json_t *load_want_list(struct ld *L, json_t *v, const char *where, const char *field, size_t max);
int load_seen_before(const char *const *seen, size_t n, const char *s);

/* load_agents.c */

int load_agent_ref(struct ld *L, const char *s, const char *where, const char *field,
                   int allow_group, struct aref *r);
void load_parse_agentset(struct ld *L, json_t *v, const char *where, const char *field,
                         struct policy_agentset *out);

/* load_settings.c */

void load_parse_rate(struct ld *L, json_t *v, const char *where, const char *field,
                     policy_rate *out);
int load_parse_binding(struct ld *L, json_t *obj, const char *key, const char *where,
                       const char *prefix, uint8_t *out);
void load_parse_settings(struct ld *L, json_t *s);
int load_valid_trust_domain(const char *s, size_t n);

/* load_groups.c */

void load_parse_groups(struct ld *L, json_t *g);

/* load_rules.c */

void load_parse_patterns(struct ld *L, json_t *v, const char *where, const char *field,
                         const policy_glob **out, uint32_t *nout);
int load_cmp_rule(const void *a, const void *b);
void load_parse_rules(struct ld *L, json_t *v);

/* load_conditions.c */

void load_parse_conditions(struct ld *L, json_t *v, const char *where, struct policy_conditions *c);

/* load_responses.c */

int load_cmp_response(const void *a, const void *b);
void load_parse_responses(struct ld *L, json_t *v);

#endif /* ZTB_POLICY_LOAD_INTERNAL_H */
