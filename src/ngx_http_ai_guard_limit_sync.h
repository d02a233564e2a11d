
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_LIMIT_SYNC_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_LIMIT_SYNC_H_INCLUDED_


/* ai_guard_redis sync=<interval>: the limits zone's counts and Redis */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_limit_module.h"


/*
 * With ai_guard_redis sync=<interval>, an entry carries what the node
 * counted since its last sync (units: requests, tokens, pico-USD, slots),
 * what is on its way to Redis, the limits, and when it was last used.
 */

typedef struct {
    ngx_http_ai_guard_scope_t      scope;
    int64_t                        pending[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    int64_t                        sent[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    uint64_t                       limit[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    uint64_t                       used;
    uint64_t                       syncing;   /* the sync a delta is in */
} ngx_http_ai_guard_scope_sync_t;


ngx_http_ai_guard_scope_sync_t *ngx_http_ai_guard_scope_sync(
    ngx_http_ai_guard_main_conf_t *amcf, void *scope);
void ngx_http_ai_guard_sync_count(ngx_http_ai_guard_scope_sync_t *ss,
    ngx_http_ai_guard_limit_item_t *items, ngx_uint_t n, uint64_t now,
    ngx_uint_t settle, uint64_t tokens, int64_t money);
ngx_int_t ngx_http_ai_guard_limiter_sync(ngx_http_ai_guard_main_conf_t *amcf,
    ngx_log_t *log, ngx_http_ai_guard_redis_sync_pt send);
void ngx_http_ai_guard_limiter_synced(ngx_http_ai_guard_main_conf_t *amcf,
    ngx_pool_t *pool, uint64_t *totals, ngx_uint_t n, uint64_t redis_now);


#endif /* _NGX_HTTP_AI_GUARD_LIMIT_SYNC_H_INCLUDED_ */
