
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_UTIL_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_UTIL_H_INCLUDED_


/*
 * Small helpers of the glue: the time, SHA-256, tiers, strings.
 */

#include "ngx_http_ai_guard_common.h"


uint64_t ngx_http_ai_guard_now(void);
ngx_int_t ngx_http_ai_guard_init_digest(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_digest(ngx_str_t *parts, ngx_uint_t n,
    u_char *digest);
ngx_uint_t ngx_http_ai_guard_str_eq(ngx_str_t *a, ngx_str_t *b);
ngx_http_ai_guard_tier_t *ngx_http_ai_guard_tier_find(
    ngx_http_ai_guard_main_conf_t *amcf, u_char *name, size_t len);


#endif /* _NGX_HTTP_AI_GUARD_UTIL_H_INCLUDED_ */
