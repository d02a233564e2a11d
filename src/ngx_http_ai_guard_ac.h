
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_AC_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_AC_H_INCLUDED_


/*
 * A case-insensitive (ASCII) multi-literal scan: which groups of
 * literals occur in a text, in one pass.  The rules prefilter runs it
 * over the prompt texts so that only rules whose required literals all
 * occur run their regex.  Pure code: no nginx runtime, no allocation;
 * the automaton lives in one caller buffer of ngx_http_ai_guard_ac_size()
 * bytes, built at configuration and read-only afterwards.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


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


/* the buffer the automaton of these literals needs */
size_t ngx_http_ai_guard_ac_size(const ngx_http_ai_guard_lit_t *lits,
    size_t n);

/* builds it in buf; NULL when size is short of ngx_http_ai_guard_ac_size() */
ngx_http_ai_guard_ac_t *ngx_http_ai_guard_ac_build(void *buf, size_t size,
    const ngx_http_ai_guard_lit_t *lits, size_t n);

/*
 * Sets found[g] (ac->ngroups bytes) to 1 for every group g one of whose
 * literals occurs in p[0..len), the others to 0; returns how many do.
 */
size_t ngx_http_ai_guard_ac_scan(const ngx_http_ai_guard_ac_t *ac,
    const u_char *p, size_t len, u_char *found);


#endif /* _NGX_HTTP_AI_GUARD_AC_H_INCLUDED_ */
