
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


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    lru[NGX_HTTP_AI_GUARD_ENTRY_KINDS];
    ngx_uint_t                     entries[NGX_HTTP_AI_GUARD_ENTRY_KINDS];
    ngx_uint_t                     evicted;
    ngx_atomic_t                   in_flight;
} ngx_http_ai_guard_shctx_t;


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
