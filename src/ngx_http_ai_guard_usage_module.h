
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_USAGE_MODULE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_USAGE_MODULE_H_INCLUDED_


/*
 * The meter: which parser reads a response, what a request used
 * (src/ngx_http_ai_guard_usage.c), what it is billed when no usage came.
 */

#include "ngx_http_ai_guard_common.h"


ngx_uint_t ngx_http_ai_guard_upstream_answered(ngx_http_request_t *r);
ngx_uint_t ngx_http_ai_guard_upstream_sent(ngx_http_request_t *r);
void ngx_http_ai_guard_meter_start(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_meter_final(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);


#endif /* _NGX_HTTP_AI_GUARD_USAGE_MODULE_H_INCLUDED_ */
