
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_RULES_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_RULES_H_INCLUDED_


/*
 * Prompt rules and PII detectors over decoded prompt text: the rules file
 * parser, the required-literal prefilter (literal extraction from a regex
 * source and a case-insensitive Aho-Corasick scan over many literals) and
 * hand-written linear PII scanners.  Pure code: no nginx runtime, no
 * allocation; buffers come from the caller.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


/* PII detectors, as the bits of an "ai_guard_pii" mask */
#define NGX_HTTP_AI_GUARD_PII_EMAIL      0x01
#define NGX_HTTP_AI_GUARD_PII_CARD       0x02
#define NGX_HTTP_AI_GUARD_PII_SSN        0x04
#define NGX_HTTP_AI_GUARD_PII_PHONE      0x08
#define NGX_HTTP_AI_GUARD_PII_IPV4       0x10
#define NGX_HTTP_AI_GUARD_PII_SECRET     0x20
#define NGX_HTTP_AI_GUARD_PII_ALL        0x3f

/* rules file: the longest rule id */
#define NGX_HTTP_AI_GUARD_RULE_ID_MAX    64

/* ngx_http_ai_guard_rules_next() results */
#define NGX_HTTP_AI_GUARD_RULES_OK       1
#define NGX_HTTP_AI_GUARD_RULES_DONE     0
#define NGX_HTTP_AI_GUARD_RULES_ERROR    (-1)

/* prefilter: alternatives a rule's requirement may have, and their size */
#define NGX_HTTP_AI_GUARD_LIT_SETS       8
#define NGX_HTTP_AI_GUARD_LIT_ALTS       16
#define NGX_HTTP_AI_GUARD_LIT_LEN        32
#define NGX_HTTP_AI_GUARD_LIT_MIN        3

/* the bloom filter the rules parser keeps of the ids it has seen */
#define NGX_HTTP_AI_GUARD_RULES_BLOOM    1024


typedef struct {
    const u_char                       *start;
    const u_char                       *pos;
    const u_char                       *end;
    size_t                              line;
    const char                         *err;
    uint32_t                            bloom[NGX_HTTP_AI_GUARD_RULES_BLOOM
                                              / 32];
} ngx_http_ai_guard_rules_parser_t;


typedef struct {
    size_t                              line;
    const u_char                       *id;
    size_t                              id_len;
    const u_char                       *regex;
    size_t                              regex_len;
} ngx_http_ai_guard_rule_t;


/*
 * What every match of a regex must contain: at least one of "n" lowercase
 * ASCII literals (n == 1 for a plain required word).  n == 0: nothing
 * could be proven, the regex must always run.
 */
typedef struct {
    size_t                              n;
    size_t                              len[NGX_HTTP_AI_GUARD_LIT_ALTS];
    u_char                              data[NGX_HTTP_AI_GUARD_LIT_ALTS]
                                            [NGX_HTTP_AI_GUARD_LIT_LEN];
} ngx_http_ai_guard_literals_t;


/* a literal to look for, and the group (a rule's requirement) it serves */
typedef struct {
    const u_char                       *data;
    size_t                              len;
    uint32_t                            group;
} ngx_http_ai_guard_lit_t;


/*
 * A case-insensitive Aho-Corasick automaton in one caller buffer, as a
 * DFA: a row of "width" entries a state, one per byte class and, last,
 * the state's first output; entries hold row offsets, and the states
 * with an output are numbered after all others, so the scan's inner loop
 * is a load and a compare a byte.
 */
typedef struct {
    uint32_t                            nstates;
    uint32_t                            width;
    uint32_t                            limit;
    uint32_t                            nlits;
    uint32_t                            ngroups;
    uint32_t                           *next;
    uint32_t                           *dict;
    uint32_t                           *out;
    uint32_t                           *same;
    uint32_t                           *group;
    u_char                              cls[256];
} ngx_http_ai_guard_ac_t;


unsigned ngx_http_ai_guard_pii_bit(const u_char *name, size_t len);
const char *ngx_http_ai_guard_pii_name(unsigned bit);
unsigned ngx_http_ai_guard_pii_scan(const u_char *p, size_t len,
    unsigned mask, size_t *off);

void ngx_http_ai_guard_rules_init(ngx_http_ai_guard_rules_parser_t *ps,
    const u_char *buf, size_t len);
int ngx_http_ai_guard_rules_next(ngx_http_ai_guard_rules_parser_t *ps,
    ngx_http_ai_guard_rule_t *rule);

int ngx_http_ai_guard_regex_literals(const u_char *re, size_t len,
    ngx_http_ai_guard_literals_t *lits);
size_t ngx_http_ai_guard_regex_requires(const u_char *re, size_t len,
    ngx_http_ai_guard_literals_t *sets, size_t max);
size_t ngx_http_ai_guard_lit_rank(const ngx_http_ai_guard_literals_t *lits);

size_t ngx_http_ai_guard_ac_size(const ngx_http_ai_guard_lit_t *lits,
    size_t n);
ngx_http_ai_guard_ac_t *ngx_http_ai_guard_ac_build(void *buf, size_t size,
    const ngx_http_ai_guard_lit_t *lits, size_t n);
size_t ngx_http_ai_guard_ac_scan(const ngx_http_ai_guard_ac_t *ac,
    const u_char *p, size_t len, u_char *found);


#endif /* _NGX_HTTP_AI_GUARD_RULES_H_INCLUDED_ */
