
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_STORE_REDIS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_STORE_REDIS_H_INCLUDED_


/*
 * The key store across nodes (docs/admin.md, "Across nodes"): each change
 * the admin API makes goes to Redis as the journal's line, and worker 0 of
 * each node applies the other nodes' lines.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_store.h"


ngx_int_t ngx_http_ai_guard_store_redis_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_guard_store_redis_init_process(ngx_cycle_t *cycle);
void ngx_http_ai_guard_store_publish(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info, ngx_uint_t deleted);


#endif /* _NGX_HTTP_AI_GUARD_STORE_REDIS_H_INCLUDED_ */
