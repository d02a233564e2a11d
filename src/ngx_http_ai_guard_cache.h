
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_CACHE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_CACHE_H_INCLUDED_


/*
 * $ai_guard_cache_key and $ai_guard_no_cache: a key a cacheable
 * request shares with its equals, and only with them.
 */

#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_cache_key(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);
ngx_http_ai_guard_ctx_t *ngx_http_ai_guard_cacheable(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_guard_cache_key_value(ngx_http_request_t *r,
    ngx_str_t *key);


#endif /* _NGX_HTTP_AI_GUARD_CACHE_H_INCLUDED_ */
