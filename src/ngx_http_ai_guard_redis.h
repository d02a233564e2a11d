
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_


#include "ngx_http_ai_guard_common.h"


/*
 * The Redis layer as the rest of the module sees it: the ai_guard_redis
 * directive, the worker's start, and the types and entry points of its
 * parts.  ngx_http_ai_guard_redis.c puts the parts together: the transport
 * (src/ngx_http_ai_guard_redis_transport.c), below the owners of the
 * scripts, admissions (_redis_admit.c), the outbox (_redis_outbox.c) and
 * sync (_redis_sync.c), and the cluster report (_redis_report.c).
 */


char *ngx_http_ai_guard_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_guard_redis_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_redis_metrics(ngx_http_request_t *r,
    ngx_str_t *text);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_ */
