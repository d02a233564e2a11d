
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_LITERALS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_LITERALS_H_INCLUDED_


/*
 * The required literals of a regex, for the rules prefilter: words that
 * every match must contain, read from the regex source by a conservative
 * walk that gives up (no literal: the regex always runs) on anything it
 * does not understand.  Pure code: no nginx runtime, no allocation.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


/* requirements of a regex, alternatives a requirement, and their size */
#define NGX_HTTP_AI_GUARD_LIT_SETS       8
#define NGX_HTTP_AI_GUARD_LIT_ALTS       16
#define NGX_HTTP_AI_GUARD_LIT_LEN        32
#define NGX_HTTP_AI_GUARD_LIT_MIN        3


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


/* the best single requirement of a regex; returns lits->n */
int ngx_http_ai_guard_regex_literals(const u_char *re, size_t len,
    ngx_http_ai_guard_literals_t *lits);

/*
 * Up to "max" requirements of a regex, all of which a match meets, best
 * first; returns how many, 0 when nothing could be proven.
 */
size_t ngx_http_ai_guard_regex_requires(const u_char *re, size_t len,
    ngx_http_ai_guard_literals_t *sets, size_t max);

/*
 * How selective a requirement is: the length of its shortest literal, a
 * word common in prompts counting as 0.
 */
size_t ngx_http_ai_guard_lit_rank(const ngx_http_ai_guard_literals_t *lits);


#endif /* _NGX_HTTP_AI_GUARD_LITERALS_H_INCLUDED_ */
