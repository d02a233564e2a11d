
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

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


/*
 * The rows Redis holds for a report (an array of row pointers in the
 * request's pool, "day" still unset), or NULL: Redis did not answer.
 */

typedef void (*ngx_http_ai_guard_redis_usage_pt)(ngx_http_request_t *r,
    void *data, ngx_array_t *rows);


char *ngx_http_ai_guard_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_guard_redis_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_redis_up(void);
ngx_int_t ngx_http_ai_guard_redis_sync_send(ngx_pool_t *pool,
    ngx_http_ai_guard_redis_sync_t *items, ngx_uint_t n);
ngx_int_t ngx_http_ai_guard_redis_usage(ngx_http_request_t *r,
    uint32_t from, uint32_t to, ngx_str_t *tenant,
    ngx_http_ai_guard_redis_usage_pt handler, void *data);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_H_INCLUDED_ */
