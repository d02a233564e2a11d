
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_OUTBOX_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_OUTBOX_H_INCLUDED_


/*
 * The usage outbox: settled requests queue in shared memory and go to
 * Redis in idempotent batches.  With a journal, an admitted request is
 * journaled as begun (ngx_http_ai_guard_redis_begin(), at the end of the
 * access phase) and its settlement ends it
 * (ngx_http_ai_guard_redis_settle(), which the limiter calls).
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_batch.h"


ngx_int_t ngx_http_ai_guard_redis_outbox_init(ngx_conf_t *cf,
    ngx_http_ai_guard_redis_conf_t *rcf);
ngx_int_t ngx_http_ai_guard_redis_outbox_init_process(ngx_cycle_t *cycle);
void ngx_http_ai_guard_redis_begin(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_redis_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_redis_release(ngx_http_ai_guard_redis_conf_t *rcf,
    ngx_log_t *log, ngx_str_t *scope, ngx_http_ai_guard_batch_item_t *items,
    ngx_uint_t n);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_OUTBOX_H_INCLUDED_ */
