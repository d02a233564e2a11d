
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_ADMIT_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_ADMIT_H_INCLUDED_


/*
 * sync=strict admissions: one EVALSHA a request checks and takes all of
 * its limits in Redis.  ngx_http_ai_guard_redis_reserve(), which the
 * limiter calls, takes the request's ctx, a type of the umbrella header,
 * and is declared there.
 */

#include "ngx_http_ai_guard_common.h"


typedef void (*ngx_http_ai_guard_redis_peek_pt)(ngx_http_ai_guard_ctx_t *ctx);


ngx_int_t ngx_http_ai_guard_redis_admit_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_guard_redis_admit_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_redis_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);
ngx_int_t ngx_http_ai_guard_redis_wait(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_redis_resume(ngx_http_ai_guard_ctx_t *ctx);
ngx_int_t ngx_http_ai_guard_redis_peek(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_redis_peek_pt done);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_ADMIT_H_INCLUDED_ */
