
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_UTIL_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_UTIL_H_INCLUDED_


/*
 * Small helpers of the glue: the time, SHA-256, tiers, strings,
 * $request_id.
 */

#include "ngx_http_ai_guard_common.h"


/* $request_id: 128 bits in hex */
#define NGX_HTTP_AI_GUARD_ID_LEN  32


uint64_t ngx_http_ai_guard_now(void);
ngx_int_t ngx_http_ai_guard_init_digest(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_digest(ngx_str_t *parts, ngx_uint_t n,
    u_char *digest);
ngx_uint_t ngx_http_ai_guard_str_eq(ngx_str_t *a, ngx_str_t *b);
ngx_http_ai_guard_tier_t *ngx_http_ai_guard_tier_find(
    ngx_http_ai_guard_main_conf_t *amcf, u_char *name, size_t len);
ngx_int_t ngx_http_ai_guard_request_id_init(ngx_conf_t *cf);
u_char *ngx_http_ai_guard_request_id(ngx_http_request_t *r);


#endif /* _NGX_HTTP_AI_GUARD_UTIL_H_INCLUDED_ */
