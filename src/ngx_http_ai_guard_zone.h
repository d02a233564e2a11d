
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_ZONE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* what an entry holds; each kind has an LRU queue of its own */

#define NGX_HTTP_AI_GUARD_ENTRY_LIMIT   0
#define NGX_HTTP_AI_GUARD_ENTRY_USAGE   1
#define NGX_HTTP_AI_GUARD_ENTRY_SERIES  2
#define NGX_HTTP_AI_GUARD_ENTRY_KINDS   3

#define NGX_HTTP_AI_GUARD_ZONE_SIZE     (10 * 1024 * 1024)


typedef struct {
    ngx_rbtree_node_t              node;      /* node.key: hash */
    ngx_queue_t                    queue;
    uint16_t                       kind;
    uint16_t                       len;       /* of the key */
    uint32_t                       size;      /* of the payload */
    uint64_t                       data[1];   /* payload, then key */
} ngx_http_ai_guard_node_t;


/*
 * Usage: one entry a tenant, key, model and UTC day.  The entry's key is
 * the day (a uint32_t in host order), then four strings one after another
 * (tenant, key id, model, the key's Stripe customer); the lengths here
 * split it.
 */

typedef struct {
    uint32_t                       day;       /* days since 1970-01-01 */
    uint16_t                       tenant_len;
    uint16_t                       key_len;
    uint16_t                       model_len;
    uint16_t                       customer_len;
    uint64_t                       requests;  /* reached the upstream */
    uint64_t                       input;     /* all prompt tokens */
    uint64_t                       output;
    uint64_t                       cached;    /* part of input */
    uint64_t                       estimated; /* requests on the estimate */
    int64_t                        cost;      /* pico-USD */
} ngx_http_ai_guard_usage_entry_t;


/*
 * Metric series.  'R': requests by tenant, model, decision and reason;
 * 'T': tokens and cost by tenant and model.  The entry's key is the type
 * byte, then the strings; the lengths here split it.
 */

#define NGX_HTTP_AI_GUARD_SERIES_REQUESTS  'R'
#define NGX_HTTP_AI_GUARD_SERIES_TOKENS    'T'

typedef struct {
    u_char                         type;
    u_char                         decision;  /* 'R': allow/reject/.. */
    uint16_t                       tenant_len;
    uint16_t                       model_len;
    uint16_t                       reason_len;
    uint64_t                       requests;
    uint64_t                       input;
    uint64_t                       output;
    uint64_t                       cached;
    uint64_t                       estimated;
    int64_t                        cost;      /* pico-USD */
} ngx_http_ai_guard_series_t;


/* upper bounds in ms; the last bucket is +Inf */
#define NGX_HTTP_AI_GUARD_BUCKETS  12

typedef struct {
    uint64_t                       count[NGX_HTTP_AI_GUARD_BUCKETS];
    uint64_t                       sum_ms;
    uint64_t                       total;
} ngx_http_ai_guard_histogram_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    lru[NGX_HTTP_AI_GUARD_ENTRY_KINDS];
    ngx_uint_t                     entries[NGX_HTTP_AI_GUARD_ENTRY_KINDS];
    ngx_uint_t                     evicted;
    ngx_atomic_t                   in_flight;
    ngx_http_ai_guard_histogram_t  upstream_time;
    ngx_http_ai_guard_histogram_t  ttft;
} ngx_http_ai_guard_shctx_t;


extern const ngx_uint_t  ngx_http_ai_guard_bucket_ms[NGX_HTTP_AI_GUARD_BUCKETS];


typedef struct {
    ngx_http_ai_guard_shctx_t     *sh;
    ngx_slab_pool_t               *shpool;
    ngx_shm_zone_t                *shm_zone;
} ngx_http_ai_guard_zone_t;


/* may the LRU evict this entry now (no request holds a part of it) */
typedef ngx_int_t (*ngx_http_ai_guard_evictable_pt)(ngx_uint_t kind,
    void *payload);


ngx_int_t ngx_http_ai_guard_zone_add(ngx_conf_t *cf,
    ngx_http_ai_guard_zone_t *zone, ngx_str_t *name, size_t size);

void *ngx_http_ai_guard_zone_find(ngx_http_ai_guard_zone_t *zone,
    ngx_uint_t kind, u_char *key, size_t len);
void *ngx_http_ai_guard_zone_get(ngx_http_ai_guard_zone_t *zone,
    ngx_uint_t kind, u_char *key, size_t len, size_t size,
    ngx_http_ai_guard_evictable_pt evictable, ngx_log_t *log);
u_char *ngx_http_ai_guard_zone_key(void *payload, size_t *len);


#endif /* _NGX_HTTP_AI_GUARD_ZONE_H_INCLUDED_ */
