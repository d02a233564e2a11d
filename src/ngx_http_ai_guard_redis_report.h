
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_REPORT_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_REPORT_H_INCLUDED_


/*
 * The cluster's usage report: the usage hashes of a range of days, read
 * from Redis for ai_guard_usage.
 */

#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_redis_usage(ngx_http_request_t *r,
    uint32_t from, uint32_t to, ngx_str_t *tenant,
    ngx_http_ai_guard_redis_usage_pt handler, void *data);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_REPORT_H_INCLUDED_ */
