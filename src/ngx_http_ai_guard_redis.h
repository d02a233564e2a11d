
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_guard_limit.h"


/* the limits a request reserves in one round trip: one item a kind */
#define NGX_HTTP_AI_GUARD_REDIS_ITEMS  NGX_HTTP_AI_GUARD_LIMIT_NKINDS


typedef struct ngx_http_ai_guard_redis_cmd_s  ngx_http_ai_guard_redis_cmd_t;
typedef struct ngx_http_ai_guard_redis_sh_s   ngx_http_ai_guard_redis_sh_t;


typedef struct {
    ngx_str_t                      addr;        /* as configured */
    u_char                        *host;        /* IP or unix path, NUL */
    int                            port;        /* 0: a unix socket */
    ngx_str_t                      password;
    ngx_int_t                      db;
    ngx_msec_t                     timeout;
    ngx_msec_t                     sync;        /* 0: sync=strict */
    ngx_uint_t                     fail_closed;
    ngx_str_t                      prefix;
    size_t                         outbox;

    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_ai_guard_redis_sh_t  *sh;
} ngx_http_ai_guard_redis_conf_t;


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


/* a counter of sync=<interval>: what the node counted since the last sync */

typedef struct {
    ngx_str_t                      scope;
    ngx_uint_t                     kind;
    uint64_t                       limit;
    int64_t                        delta;       /* units */
    uint64_t                       window;      /* quotas */
} ngx_http_ai_guard_redis_sync_t;

typedef ngx_int_t (*ngx_http_ai_guard_redis_sync_pt)(ngx_pool_t *pool,
    ngx_http_ai_guard_redis_sync_t *items, ngx_uint_t n);


char *ngx_http_ai_guard_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_guard_redis_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_redis_up(void);
ngx_int_t ngx_http_ai_guard_redis_sync_send(ngx_pool_t *pool,
    ngx_http_ai_guard_redis_sync_t *items, ngx_uint_t n);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_ */
