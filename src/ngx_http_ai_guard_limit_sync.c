
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * ai_guard_redis sync=<interval>: what a node's limits zone counted
 * between two syncs, sent to Redis by worker 0, and the cluster's totals
 * it gets back.  Apart from the limiter (limit_module.c), which only
 * counts into it, since it has state of its own: the sync on the wire.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_limit_sync.h"


static ngx_int_t ngx_http_ai_guard_sync_collect(ngx_http_ai_guard_node_t *node,
    void *data);


/* sync=<interval>: the counters of the sync on the wire, worker-local */

typedef struct {
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_pool_t                      *pool;
    ngx_http_ai_guard_redis_sync_t  *items;
    ngx_uint_t                       n;
    ngx_uint_t                       max;
    uint64_t                         horizon;
} ngx_http_ai_guard_sync_walk_t;


static ngx_http_ai_guard_redis_sync_t  *ngx_http_ai_guard_sync_items;
static ngx_uint_t                       ngx_http_ai_guard_sync_n;
static uint64_t                         ngx_http_ai_guard_sync_id;


/* the sync part of a limiter entry, when it has one */

ngx_http_ai_guard_scope_sync_t *
ngx_http_ai_guard_scope_sync(ngx_http_ai_guard_main_conf_t *amcf,
    void *scope)
{
    ngx_http_ai_guard_node_t  *node;

    if (amcf->redis == NULL || amcf->redis->sync == 0) {
        return NULL;
    }

    node = ngx_http_ai_guard_zone_node(scope);

    /* an entry made before the reload that turned sync on is too small */

    if (node->size < sizeof(ngx_http_ai_guard_scope_sync_t)) {
        return NULL;
    }

    return scope;
}


/*
 * What the node counts, in units, as the arithmetic of limit.c does: a
 * reservation takes each cost; a settlement adds the difference to the
 * real usage and gives the concurrency slot back.
 */

void
ngx_http_ai_guard_sync_count(ngx_http_ai_guard_scope_sync_t *ss,
    ngx_http_ai_guard_limit_item_t *items, ngx_uint_t n, uint64_t now,
    ngx_uint_t settle, uint64_t tokens, int64_t money)
{
    ngx_uint_t                       i, k;
    ngx_http_ai_guard_limit_item_t  *it;

    for (i = 0; i < n; i++) {
        it = &items[i];
        k = it->kind;

        ss->limit[k] = it->limit;

        /* a monitored request's cost may be any size: all saturates */

        if (!settle) {
            ss->pending[k] = ngx_http_ai_guard_pico_add(ss->pending[k],
                                 ngx_http_ai_guard_sat_delta(it->cost, 0));
            continue;
        }

        switch (ngx_http_ai_guard_limit_unit(k)) {

        case 2:
            ss->pending[k] = ngx_http_ai_guard_pico_add(ss->pending[k],
                                 ngx_http_ai_guard_sat_delta(tokens,
                                                             it->cost));
            break;

        case 3:
            ss->pending[k] = ngx_http_ai_guard_pico_add(ss->pending[k],
                                 ngx_http_ai_guard_sat_delta(
                                     (uint64_t) ngx_max(money, 0),
                                     it->cost));
            break;

        default:
            if (k == NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY) {
                ss->pending[k] = ngx_http_ai_guard_pico_add(ss->pending[k],
                                     -ngx_http_ai_guard_sat_delta(it->cost,
                                                                  0));
            }
        }
    }
}


/*
 * sync=<interval>, worker 0: the entries used in the last minute send
 * what they counted; NGX_DECLINED: nothing to send.
 */

ngx_int_t
ngx_http_ai_guard_limiter_sync(ngx_http_ai_guard_main_conf_t *amcf,
    ngx_log_t *log, ngx_http_ai_guard_redis_sync_pt send)
{
    uint64_t                        now;
    ngx_uint_t                      n;
    ngx_pool_t                     *pool;
    ngx_http_ai_guard_zone_t       *zone;
    ngx_http_ai_guard_sync_walk_t   w;

    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    if (zone->sh == NULL) {
        return NGX_DECLINED;
    }

    pool = ngx_create_pool(16384, log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    w.amcf = amcf;
    w.pool = pool;
    w.n = 0;
    w.max = 1024;

    w.items = ngx_palloc(pool,
                         w.max * sizeof(ngx_http_ai_guard_redis_sync_t));
    if (w.items == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    now = ngx_http_ai_guard_now();

    /* a scope used in the last minute keeps pulling the others' counts */
    w.horizon = now - ngx_min(now, NGX_HTTP_AI_GUARD_MINUTE_MS);

    ngx_http_ai_guard_sync_id++;

    /*
     * The whole queue: entries that may not go are moved to its head when
     * the zone makes room, so its order is not the order of use.
     */

    ngx_shmtx_lock(&zone->shpool->mutex);

    (void) ngx_http_ai_guard_zone_walk(zone, ngx_http_ai_guard_sync_collect,
                                       &w);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    n = w.n;

    ngx_http_ai_guard_sync_items = w.items;
    ngx_http_ai_guard_sync_n = n;

    if (n && send(pool, w.items, n) == NGX_OK) {
        return NGX_OK;
    }

    /* nothing sent: the deltas go back */
    ngx_http_ai_guard_limiter_synced(amcf, pool, NULL, 0, 0);
    ngx_destroy_pool(pool);

    return n ? NGX_ERROR : NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_guard_sync_collect(ngx_http_ai_guard_node_t *node, void *data)
{
    ngx_http_ai_guard_sync_walk_t *w = data;

    u_char                          *key;
    size_t                           len;
    ngx_uint_t                       k;
    ngx_http_ai_guard_redis_sync_t  *it;
    ngx_http_ai_guard_scope_sync_t  *ss;

    ss = ngx_http_ai_guard_scope_sync(w->amcf, node->data);

    if (ss == NULL || ss->used < w->horizon) {
        return NGX_OK;
    }

    if (w->n + NGX_HTTP_AI_GUARD_LIMIT_NKINDS > w->max) {
        return NGX_DONE;
    }

    key = ngx_http_ai_guard_zone_key(node->data, &len);

    for (k = 1; k < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; k++) {
        if (ss->limit[k] == 0) {
            continue;
        }

        it = &w->items[w->n];

        it->scope.data = ngx_pnalloc(w->pool, len);
        if (it->scope.data == NULL) {
            return NGX_ERROR;
        }

        w->n++;

        ngx_memcpy(it->scope.data, key, len);
        it->scope.len = len;
        it->kind = k;
        it->limit = ss->limit[k];
        it->delta = ss->pending[k];
        it->window = ss->scope.counters[k].stamp;

        ss->sent[k] = ss->pending[k];
        ss->pending[k] = 0;
        ss->syncing = ngx_http_ai_guard_sync_id;
    }

    return NGX_OK;
}


/*
 * The cluster's totals are in (or, with n == 0, the sync failed): each
 * counter becomes the cluster's level plus what the node counted since
 * the sync left.
 */

void
ngx_http_ai_guard_limiter_synced(ngx_http_ai_guard_main_conf_t *amcf,
    ngx_pool_t *pool, uint64_t *totals, ngx_uint_t n, uint64_t redis_now)
{
    void                            *scope;
    uint64_t                         now, period, fresh;
    ngx_uint_t                       i, k;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_scope_sync_t  *ss;
    ngx_http_ai_guard_redis_sync_t  *it;
    ngx_http_ai_guard_limit_item_t   item;

    now = ngx_http_ai_guard_now();
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (i = 0; i < ngx_http_ai_guard_sync_n; i++) {
        it = &ngx_http_ai_guard_sync_items[i];
        k = it->kind;

        scope = ngx_http_ai_guard_zone_find(zone, it->scope.data,
                                            it->scope.len);
        if (scope == NULL) {
            continue;
        }

        ss = ngx_http_ai_guard_scope_sync(amcf, scope);

        if (ss == NULL || ss->syncing != ngx_http_ai_guard_sync_id) {
            continue;
        }

        if (n != ngx_http_ai_guard_sync_n) {
            ss->pending[k] += ss->sent[k];
            ss->sent[k] = 0;
            continue;
        }

        ss->sent[k] = 0;

        switch (k) {

        case NGX_HTTP_AI_GUARD_LIMIT_RPM:
        case NGX_HTTP_AI_GUARD_LIMIT_TPM:
            period = NGX_HTTP_AI_GUARD_MINUTE_MS;
            break;

        case NGX_HTTP_AI_GUARD_LIMIT_RPH:
        case NGX_HTTP_AI_GUARD_LIMIT_TPH:
            period = NGX_HTTP_AI_GUARD_HOUR_MS;
            break;

        default:
            period = 0;
        }

        if (period) {
            ss->scope.counters[k].level = totals[i]
                                    + (uint64_t) ngx_max(ss->pending[k], 0)
                                      * period;
            ss->scope.counters[k].stamp = ngx_max(now,
                                                  ss->scope.counters[k].stamp);

        } else if (k == NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY
                   || ss->scope.counters[k].stamp == it->window)
        {
            ss->scope.counters[k].level = totals[i]
                                    + (uint64_t) ngx_max(ss->pending[k], 0);
        }

        /* the cluster's counts hold the entry as the node's own would */

        item.counter = &ss->scope.counters[k];
        item.limit = it->limit;
        item.kind = k;

        fresh = ngx_http_ai_guard_limit_fresh_at(&item, 1, now);

        if (fresh > ss->scope.fresh_at) {
            ss->scope.fresh_at = fresh;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_ai_guard_sync_n = 0;

    (void) redis_now;
    (void) pool;
}
