
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_VSCAN_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_VSCAN_H_INCLUDED_


/*
 * The rules prefilter's vector scan: the same answer as the
 * Aho-Corasick DFA of ngx_http_ai_guard_ac.h (which groups of literals
 * occur in a text, ASCII case folded), 32 places at a time.  A bitmap of
 * hashes of the literals' first four bytes, looked up with AVX2 gathers,
 * marks the places where a literal may begin; each is checked exactly
 * against the literals that begin with its first three bytes.  Pure
 * code: no nginx runtime, no allocation; the tables live in one caller
 * buffer, built at configuration and read-only afterwards.  Only on
 * x86-64 with AVX2 and literals of three bytes or more, ASCII in their
 * first four; otherwise ngx_http_ai_guard_vscan_size() is 0 or
 * ngx_http_ai_guard_vscan_cpu() ..._NONE, and the DFA runs.
 */

#include "ngx_http_ai_guard_ac.h"


/* the vector code a scan runs, best last */
#define NGX_HTTP_AI_GUARD_VSCAN_NONE     0
#define NGX_HTTP_AI_GUARD_VSCAN_AVX2     1


typedef struct ngx_http_ai_guard_vscan_s  ngx_http_ai_guard_vscan_t;


/* the best vector code this CPU runs, ..._NONE when none */
int ngx_http_ai_guard_vscan_cpu(void);

/* the buffer the tables of these literals need; 0: the DFA must do */
size_t ngx_http_ai_guard_vscan_size(const ngx_http_ai_guard_lit_t *lits,
    size_t n);

/*
 * Builds the tables in buf for the vector code "impl" (at most what
 * ngx_http_ai_guard_vscan_cpu() says); NULL when size is short or impl
 * is not available.
 */
ngx_http_ai_guard_vscan_t *ngx_http_ai_guard_vscan_build(void *buf,
    size_t size, const ngx_http_ai_guard_lit_t *lits, size_t n, int impl);

/* as ngx_http_ai_guard_ac_scan(): found[g] for every group present */
size_t ngx_http_ai_guard_vscan_scan(const ngx_http_ai_guard_vscan_t *td,
    const u_char *p, size_t len, u_char *found);


#endif /* _NGX_HTTP_AI_GUARD_VSCAN_H_INCLUDED_ */
