
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_ZONE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_ai_guard_pii.h"


/*
 * The shared memory of ai_guard is three zones (docs/state.md), so that
 * one kind of entry never takes the room of another: the limiter's
 * scopes, the ledger of billed usage, the metric series.  Each is an
 * rbtree of entries keyed by bytes, and a queue: least recently used
 * first out for the limits, creation order (day order) for the others.
 * Only this file touches the tree and the queue; what may be freed, and
 * when, is the policy of the part's owner, registered once here.
 */

#define NGX_HTTP_AI_GUARD_PART_LIMITS   0
#define NGX_HTTP_AI_GUARD_PART_LEDGER   1
#define NGX_HTTP_AI_GUARD_PART_SERIES   2
#define NGX_HTTP_AI_GUARD_PARTS         3

#define NGX_HTTP_AI_GUARD_ZONE_SIZE     (10 * 1024 * 1024)
#define NGX_HTTP_AI_GUARD_PART_MIN      (32 * 1024)


typedef struct ngx_http_ai_guard_zone_s  ngx_http_ai_guard_zone_t;


typedef struct {
    ngx_rbtree_node_t              node;      /* node.key: its key's hash */
    ngx_queue_t                    queue;
    uint32_t                       size;      /* of the payload */
    uint32_t                       len;       /* of the key */
    uint64_t                       data[1];   /* payload, then key */
} ngx_http_ai_guard_node_t;


/*
 * The layout of the zones and their keys: a zone of another version (an
 * upgraded module's reload) is not adopted nor copied.
 */
#define NGX_HTTP_AI_GUARD_ZONE_VERSION  5


typedef struct {
    ngx_uint_t                     version;
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    queue;
    ngx_uint_t                     entries;
    uint64_t                       freed;     /* expired or purged */
    uint64_t                       refused;   /* requests: no room */
    uint64_t                       dropped;   /* counts: no room */

    /*
     * The cycles that made, adopted or copied the zone: a worker that
     * finds it grew since its start knows a reload's workers have it
     */
    ngx_uint_t                     cycles;

    /* the series zone's: its histogram entries, the in-flight gauge */
    ngx_uint_t                     histograms;
    ngx_atomic_t                   in_flight;
    /* spans "ai_guard_pii_action redact" replaced, by detector */
    ngx_atomic_t                   redacted[NGX_HTTP_AI_GUARD_PII_DETECTORS];
} ngx_http_ai_guard_shctx_t;


/*
 * The policy of a zone.  "fresh": may the entry go now, losing nothing
 * (NULL: entries are never freed but by their owner).  "free": the entry
 * is about to go; the owner updates what refers to it.  Both run under
 * the zone's mutex.
 */

typedef ngx_int_t (*ngx_http_ai_guard_zone_fresh_pt)(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_node_t *node,
    uint64_t now);
typedef void (*ngx_http_ai_guard_zone_free_pt)(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_node_t *node);

/* a walk's visitor: NGX_OK goes on, anything else stops and is returned */
typedef ngx_int_t (*ngx_http_ai_guard_zone_walk_pt)(
    ngx_http_ai_guard_node_t *node, void *data);


struct ngx_http_ai_guard_zone_s {
    ngx_http_ai_guard_shctx_t       *sh;
    ngx_slab_pool_t                 *shpool;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_ai_guard_zone_fresh_pt  fresh;
    ngx_http_ai_guard_zone_free_pt   free;
    void                            *data;     /* the owner's */
    void                            *owned;    /* its entry, cached */
    time_t                           alerted;  /* worker-local */
    unsigned                         lru:1;    /* a hit moves to the head */
};


ngx_int_t ngx_http_ai_guard_zone_foreign(ngx_shm_zone_t *shm_zone,
    char *what, char *change);
ngx_int_t ngx_http_ai_guard_zone_add(ngx_conf_t *cf,
    ngx_http_ai_guard_zone_t *zone, ngx_str_t *name, size_t size);

void *ngx_http_ai_guard_zone_find(ngx_http_ai_guard_zone_t *zone,
    u_char *key, size_t len);
void *ngx_http_ai_guard_zone_get(ngx_http_ai_guard_zone_t *zone,
    u_char *key, size_t len, size_t size, uint64_t now,
    ngx_uint_t *created);
void ngx_http_ai_guard_zone_free(ngx_http_ai_guard_zone_t *zone,
    void *payload);
ngx_uint_t ngx_http_ai_guard_zone_expire(ngx_http_ai_guard_zone_t *zone,
    uint64_t now, ngx_uint_t n, ngx_uint_t scan);
ngx_int_t ngx_http_ai_guard_zone_walk(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_zone_walk_pt visit, void *data);

ngx_int_t ngx_http_ai_guard_zone_walk_on(ngx_http_ai_guard_zone_t *zone,
    void *mark, ngx_uint_t restart, ngx_uint_t max,
    ngx_http_ai_guard_zone_walk_pt visit, void *data);
void ngx_http_ai_guard_zone_alert(ngx_http_ai_guard_zone_t *zone,
    ngx_log_t *log, const char *what, u_char *key, size_t len);

ngx_http_ai_guard_node_t *ngx_http_ai_guard_zone_node(void *payload);
u_char *ngx_http_ai_guard_zone_key(void *payload, size_t *len);
size_t ngx_http_ai_guard_zone_used(ngx_http_ai_guard_zone_t *zone);


#endif /* _NGX_HTTP_AI_GUARD_ZONE_H_INCLUDED_ */
