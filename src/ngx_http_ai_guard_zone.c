
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_guard_zone.h"


/* a full slab frees at most this many entries for one new entry */
#define NGX_HTTP_AI_GUARD_EVICT_TRIES  16


static ngx_int_t ngx_http_ai_guard_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_guard_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_ai_guard_node_t *ngx_http_ai_guard_zone_lookup(
    ngx_http_ai_guard_zone_t *zone, ngx_uint_t kind, uint32_t hash,
    u_char *key, size_t len);
static ngx_int_t ngx_http_ai_guard_zone_evict(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_evictable_pt evictable, ngx_log_t *log);


const ngx_uint_t  ngx_http_ai_guard_bucket_ms[NGX_HTTP_AI_GUARD_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000,
    (ngx_uint_t) -1
};


ngx_int_t
ngx_http_ai_guard_zone_add(ngx_conf_t *cf, ngx_http_ai_guard_zone_t *zone,
    ngx_str_t *name, size_t size)
{
    extern ngx_module_t  ngx_http_ai_guard_module;

    zone->shm_zone = ngx_shared_memory_add(cf, name, size,
                                           &ngx_http_ai_guard_module);
    if (zone->shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (zone->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", name);
        return NGX_ERROR;
    }

    zone->shm_zone->init = ngx_http_ai_guard_init_zone;
    zone->shm_zone->data = zone;

    return NGX_OK;
}


/* as ngx_http_limit_req_module: a reload adopts the zone, counters live */

static ngx_int_t
ngx_http_ai_guard_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_guard_zone_t  *ozone = data;

    size_t                     len;
    ngx_uint_t                 i;
    ngx_http_ai_guard_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;

        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;

        return NGX_OK;
    }

    zone->sh = ngx_slab_calloc(zone->shpool,
                               sizeof(ngx_http_ai_guard_shctx_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_ai_guard_rbtree_insert_value);

    for (i = 0; i < NGX_HTTP_AI_GUARD_ENTRY_KINDS; i++) {
        ngx_queue_init(&zone->sh->lru[i]);
    }

    len = sizeof(" in ai_guard zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in ai_guard zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* eviction makes room, and says so itself */
    zone->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_ai_guard_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_ai_guard_node_t   *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            n = (ngx_http_ai_guard_node_t *) node;
            t = (ngx_http_ai_guard_node_t *) temp;

            if (n->kind != t->kind) {
                p = (n->kind < t->kind) ? &temp->left : &temp->right;

            } else {
                p = (ngx_memn2cmp((u_char *) n->data + n->size,
                                  (u_char *) t->data + t->size,
                                  n->len, t->len)
                     < 0)
                    ? &temp->left : &temp->right;
            }
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_ai_guard_node_t *
ngx_http_ai_guard_zone_lookup(ngx_http_ai_guard_zone_t *zone,
    ngx_uint_t kind, uint32_t hash, u_char *key, size_t len)
{
    ngx_int_t                  rc;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_ai_guard_node_t  *n;

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        n = (ngx_http_ai_guard_node_t *) node;

        if (kind != n->kind) {
            node = (kind < n->kind) ? node->left : node->right;
            continue;
        }

        rc = ngx_memn2cmp(key, (u_char *) n->data + n->size, len, n->len);

        if (rc == 0) {
            return n;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* the caller holds the zone's mutex */

void *
ngx_http_ai_guard_zone_find(ngx_http_ai_guard_zone_t *zone, ngx_uint_t kind,
    u_char *key, size_t len)
{
    ngx_http_ai_guard_node_t  *n;

    n = ngx_http_ai_guard_zone_lookup(zone, kind, ngx_crc32_short(key, len),
                                      key, len);

    return n ? n->data : NULL;
}


/*
 * The entry of a key, created zeroed when there is none; the least
 * recently used entries make room when the slab is full.  NULL only when
 * even that fails (ALERT logged).  The caller holds the zone's mutex.
 */

void *
ngx_http_ai_guard_zone_get(ngx_http_ai_guard_zone_t *zone, ngx_uint_t kind,
    u_char *key, size_t len, size_t size,
    ngx_http_ai_guard_evictable_pt evictable, ngx_log_t *log)
{
    size_t                     n;
    uint32_t                   hash;
    ngx_uint_t                 i;
    ngx_http_ai_guard_node_t  *node;

    hash = ngx_crc32_short(key, len);

    node = ngx_http_ai_guard_zone_lookup(zone, kind, hash, key, len);

    if (node) {
        ngx_queue_remove(&node->queue);
        ngx_queue_insert_head(&zone->sh->lru[kind], &node->queue);

        return node->data;
    }

    size = ngx_align(size, sizeof(uint64_t));
    n = offsetof(ngx_http_ai_guard_node_t, data) + size + len;

    for (i = 0; /* void */; i++) {
        node = ngx_slab_alloc_locked(zone->shpool, n);
        if (node) {
            break;
        }

        if (i == NGX_HTTP_AI_GUARD_EVICT_TRIES
            || ngx_http_ai_guard_zone_evict(zone, evictable, log) != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "ai_guard: could not allocate an entry%s",
                          zone->shpool->log_ctx);
            return NULL;
        }
    }

    ngx_memzero(node->data, size);

    node->node.key = hash;
    node->kind = (uint16_t) kind;
    node->len = (uint16_t) len;
    node->size = (uint32_t) size;
    ngx_memcpy((u_char *) node->data + size, key, len);

    ngx_rbtree_insert(&zone->sh->rbtree, &node->node);
    ngx_queue_insert_head(&zone->sh->lru[kind], &node->queue);
    zone->sh->entries[kind]++;

    return node->data;
}


u_char *
ngx_http_ai_guard_zone_key(void *payload, size_t *len)
{
    ngx_http_ai_guard_node_t  *n;

    n = (ngx_http_ai_guard_node_t *)
            ((u_char *) payload - offsetof(ngx_http_ai_guard_node_t, data));

    *len = n->len;

    return (u_char *) n->data + n->size;
}


/*
 * Limiter entries go first (losing one only forgets a recent count), then
 * the oldest usage; metric series are bounded by count, never evicted.
 */

static ngx_int_t
ngx_http_ai_guard_zone_evict(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_evictable_pt evictable, ngx_log_t *log)
{
    ngx_uint_t                 kind, i;
    ngx_queue_t               *q, *lru;
    ngx_http_ai_guard_node_t  *n;

    static ngx_uint_t  order[] = {
        NGX_HTTP_AI_GUARD_ENTRY_LIMIT,
        NGX_HTTP_AI_GUARD_ENTRY_USAGE
    };

    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        kind = order[i];
        lru = &zone->sh->lru[kind];

        for (q = ngx_queue_last(lru); q != ngx_queue_sentinel(lru);
             q = ngx_queue_prev(q))
        {
            n = ngx_queue_data(q, ngx_http_ai_guard_node_t, queue);

            if (evictable && !evictable(kind, n->data)) {
                continue;
            }

            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "ai_guard: zone full, evicted the least recently "
                          "used %s entry \"%*s\"%s",
                          kind == NGX_HTTP_AI_GUARD_ENTRY_LIMIT
                          ? "limit" : "usage",
                          (size_t) n->len, (u_char *) n->data + n->size,
                          zone->shpool->log_ctx);

            ngx_queue_remove(q);
            ngx_rbtree_delete(&zone->sh->rbtree, &n->node);
            ngx_slab_free_locked(zone->shpool, n);

            zone->sh->entries[kind]--;
            zone->sh->evicted++;

            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}
