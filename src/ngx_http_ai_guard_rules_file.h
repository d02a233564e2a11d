
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_RULES_FILE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_RULES_FILE_H_INCLUDED_


/*
 * The prompt rules file: one rule a line, "id regex", blank lines and
 * "#" comments skipped, ids of [A-Za-z0-9_.:-] up to 64 bytes and unique
 * in the file.  A pull parser over the caller's buffer: rules point into
 * it, nothing is copied or allocated, and the regex is not compiled here.
 *
 *     ngx_http_ai_guard_rules_init(&ps, buf, len);
 *     while ((rc = ngx_http_ai_guard_rules_next(&ps, &rule)) != DONE) ...
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


/* the longest rule id */
#define NGX_HTTP_AI_GUARD_RULE_ID_MAX    64

/* ngx_http_ai_guard_rules_next() results */
#define NGX_HTTP_AI_GUARD_RULES_OK       1
#define NGX_HTTP_AI_GUARD_RULES_DONE     0
#define NGX_HTTP_AI_GUARD_RULES_ERROR    (-1)

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


void ngx_http_ai_guard_rules_init(ngx_http_ai_guard_rules_parser_t *ps,
    const u_char *buf, size_t len);

/*
 * The next rule: NGX_HTTP_AI_GUARD_RULES_OK with "rule" set,
 * NGX_HTTP_AI_GUARD_RULES_DONE at the end of the buffer, or
 * NGX_HTTP_AI_GUARD_RULES_ERROR with ps->line and ps->err (a static
 * message) set; a caller may go on after an error to report the next one.
 */
int ngx_http_ai_guard_rules_next(ngx_http_ai_guard_rules_parser_t *ps,
    ngx_http_ai_guard_rule_t *rule);


#endif /* _NGX_HTTP_AI_GUARD_RULES_FILE_H_INCLUDED_ */
