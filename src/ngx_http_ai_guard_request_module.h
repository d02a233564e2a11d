
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REQUEST_MODULE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REQUEST_MODULE_H_INCLUDED_


/*
 * The request body: read from the access phase, parsed as it arrives
 * (src/ngx_http_ai_guard_request.c), and its own checks.
 */

#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_request_body_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_guard_read_body(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);
ngx_int_t ngx_http_ai_guard_check(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);


#endif /* _NGX_HTTP_AI_GUARD_REQUEST_MODULE_H_INCLUDED_ */
