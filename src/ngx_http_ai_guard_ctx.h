
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_CTX_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_CTX_H_INCLUDED_


/*
 * A request's context: made at its first access check, found again
 * after an internal redirect, finished once (log phase or pool cleanup).
 */

#include "ngx_http_ai_guard_common.h"


ngx_http_ai_guard_ctx_t *ngx_http_ai_guard_get_ctx(ngx_http_request_t *r);
ngx_http_ai_guard_ctx_t *ngx_http_ai_guard_create_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_guard_log_handler(ngx_http_request_t *r);
void ngx_http_ai_guard_finish(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);


#endif /* _NGX_HTTP_AI_GUARD_CTX_H_INCLUDED_ */
