
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_LEASE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_LEASE_H_INCLUDED_


/*
 * sync=lease: a node takes slices of each limit's allowance from Redis,
 * one script call a slice, and admits from them in shared memory
 * (docs/redis.md).  ngx_http_ai_guard_redis_lease_reserve() answers in
 * the request's ctx->redis as a strict admission does, so the limiter
 * decides the same way after it.
 */

#include "ngx_http_ai_guard_common.h"


/* a slice is at most the limit divided by this */
#define NGX_HTTP_AI_GUARD_LEASE_PARTS    8

/* a slice's lifetime, unless lease= says */
#define NGX_HTTP_AI_GUARD_LEASE_TTL      20000

/* the zone of a node's slices */
#define NGX_HTTP_AI_GUARD_LEASE_ZONE     (1024 * 1024)


ngx_int_t ngx_http_ai_guard_redis_lease_init(ngx_conf_t *cf,
    ngx_http_ai_guard_redis_conf_t *rcf);
ngx_int_t ngx_http_ai_guard_redis_lease_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_redis_lease_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_redis_lease_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_LEASE_H_INCLUDED_ */
