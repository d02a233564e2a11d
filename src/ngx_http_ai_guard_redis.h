
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_guard_redis_admit.h"
#include "ngx_http_ai_guard_redis_sync.h"
#include "ngx_http_ai_guard_redis_report.h"


/*
 * The Redis layer as the rest of the module sees it: the ai_guard_redis
 * directive, the worker's start, and the types and entry points of its
 * parts.  ngx_http_ai_guard_redis.c puts the parts together: the transport
 * (src/ngx_http_ai_guard_redis_transport.c), below the owners of the
 * scripts, admissions (_redis_admit.c), the outbox (_redis_outbox.c) and
 * sync (_redis_sync.c), and the cluster report (_redis_report.c).
 */


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

    /* the scripts' Lua, as their owners registered them (ngx_str_t) */
    ngx_array_t                   *scripts;

    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_ai_guard_redis_sh_t  *sh;
} ngx_http_ai_guard_redis_conf_t;


/* "YYYY-MM-DD" */
#define NGX_HTTP_AI_GUARD_DATE_LEN     10


typedef struct {
    uint64_t                       requests;
    uint64_t                       input;
    uint64_t                       output;
    uint64_t                       cached;
    uint64_t                       estimated;
    int64_t                        cost;        /* pico-USD */
} ngx_http_ai_guard_totals_t;


/*
 * A row of the usage report: a usage entry of a tenant, key, model and
 * day, copied out of the local zone or read from Redis's usage hashes.
 */

typedef struct {
    ngx_str_t                      tenant;
    ngx_str_t                      key;
    ngx_str_t                      model;
    ngx_str_t                      customer;
    ngx_str_t                      label;       /* what it is grouped by */
    uint32_t                       day;
    u_char                         date[NGX_HTTP_AI_GUARD_DATE_LEN];
    ngx_http_ai_guard_totals_t     totals;
} ngx_http_ai_guard_row_t;


char *ngx_http_ai_guard_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_guard_redis_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_redis_up(void);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_ */
