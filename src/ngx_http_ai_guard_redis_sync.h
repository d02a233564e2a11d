
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_SYNC_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_SYNC_H_INCLUDED_


/*
 * sync=<interval>: every interval worker 0 adds the node's counts to the
 * cluster's counters in Redis and reads their totals back.
 */

#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_redis_sync_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_guard_redis_sync_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_redis_sync_send(ngx_pool_t *pool,
    ngx_http_ai_guard_redis_sync_t *items, ngx_uint_t n);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_SYNC_H_INCLUDED_ */
