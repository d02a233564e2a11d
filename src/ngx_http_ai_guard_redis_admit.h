
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

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_guard_limit.h"


/* the limits a request reserves in one round trip: one item a kind */
#define NGX_HTTP_AI_GUARD_REDIS_ITEMS  NGX_HTTP_AI_GUARD_LIMIT_NKINDS


/*
 * What the admission script answered, in the order of the request's
 * limit items; rc is NGX_HTTP_AI_GUARD_LIMIT_OK / _WAIT / _NEVER, or
 * NGX_HTTP_AI_GUARD_REDIS_FAILED when no answer came in time.
 */

#define NGX_HTTP_AI_GUARD_REDIS_FAILED  -1

typedef struct {
    ngx_int_t                      rc;
    ngx_uint_t                     index;
    uint64_t                       retry_ms;
    uint64_t                       remaining[NGX_HTTP_AI_GUARD_REDIS_ITEMS];
    uint64_t                       reset_ms[NGX_HTTP_AI_GUARD_REDIS_ITEMS];
} ngx_http_ai_guard_redis_reply_t;


ngx_int_t ngx_http_ai_guard_redis_admit_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_ADMIT_H_INCLUDED_ */
