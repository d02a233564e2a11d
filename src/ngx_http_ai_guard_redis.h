
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_


#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_redis_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_redis_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
ngx_int_t ngx_http_ai_guard_redis_metrics(ngx_http_request_t *r,
    ngx_str_t *text);
char *ngx_http_ai_guard_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_guard_redis_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_redis_up(void);
ngx_int_t ngx_http_ai_guard_redis_sync_send(ngx_pool_t *pool,
    ngx_http_ai_guard_redis_sync_t *items, ngx_uint_t n);
ngx_int_t ngx_http_ai_guard_redis_usage(ngx_http_request_t *r,
    uint32_t from, uint32_t to, ngx_str_t *tenant,
    ngx_http_ai_guard_redis_usage_pt handler, void *data);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_ */
