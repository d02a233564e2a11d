
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard.h"


#define NGX_HTTP_AI_GUARD_MAX_LABEL  256


static void ngx_http_ai_guard_record_series(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    u_char type, ngx_str_t *tenant, ngx_str_t *model);
static void ngx_http_ai_guard_record_usage(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    ngx_str_t *tenant, ngx_str_t *model, uint32_t day);
static void ngx_http_ai_guard_purge_usage(ngx_http_ai_guard_zone_t *zone,
    uint32_t oldest);
static void ngx_http_ai_guard_observe(ngx_http_ai_guard_histogram_t *h,
    uint64_t ms);


static u_char  ngx_http_ai_guard_decisions[] = "-arm";


/*
 * Into the zone, under one hold of its mutex: the request in the metric
 * series and, when it reached the upstream, its usage for the reports.
 */

void
ngx_http_ai_guard_record(ngx_http_request_t *r, ngx_http_ai_guard_ctx_t *ctx)
{
    uint32_t                        day;
    ngx_str_t                       tenant, model;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->zone.sh == NULL) {
        return;
    }

    if (ctx->key) {
        tenant.data = ctx->key->tenant.data;
        tenant.len = ctx->key->tenant.len;

    } else {
        ngx_str_set(&tenant, "unknown");
    }

    if (ctx->upstream && ctx->usage.model_len) {
        model.data = ctx->usage.model;
        model.len = ctx->usage.model_len;

    } else {
        model.data = ctx->req.model;
        model.len = ctx->req.model_len;
    }

    day = ngx_time() / 86400;

    ngx_shmtx_lock(&amcf->zone.shpool->mutex);

    ngx_http_ai_guard_record_series(r, &amcf->zone, ctx,
                                    NGX_HTTP_AI_GUARD_SERIES_REQUESTS,
                                    &tenant, &model);

    if (ctx->upstream) {
        ngx_http_ai_guard_record_series(r, &amcf->zone, ctx,
                                        NGX_HTTP_AI_GUARD_SERIES_TOKENS,
                                        &tenant, &model);

        if (ctx->key) {
            ngx_http_ai_guard_record_usage(r, &amcf->zone, ctx, &tenant,
                                           &model, day);
        }

        ngx_http_ai_guard_observe(&amcf->zone.sh->upstream_time,
                                  ctx->response_ms);

        if (ctx->meter && ctx->first_byte
            && r->headers_out.content_type.len >= 17
            && ngx_strncasecmp(r->headers_out.content_type.data,
                               (u_char *) "text/event-stream", 17)
               == 0)
        {
            ngx_http_ai_guard_observe(&amcf->zone.sh->ttft, ctx->ttft_ms);
        }
    }

    ngx_shmtx_unlock(&amcf->zone.shpool->mutex);
}


/* a gauge, updated on every request: an atomic add, not the mutex */

void
ngx_http_ai_guard_in_flight(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_int_t delta)
{
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->zone.sh == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&amcf->zone.sh->in_flight,
                                (ngx_atomic_int_t) delta);

    ctx->in_flight = (delta > 0);

    if (delta > 0) {
        ctx->start_ms = ngx_http_ai_guard_now();
    }
}


static void
ngx_http_ai_guard_record_series(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    u_char type, ngx_str_t *tenant, ngx_str_t *model)
{
    u_char                          *p, key[4 * NGX_HTTP_AI_GUARD_MAX_LABEL];
    ngx_str_t                        reason, t, m;
    ngx_http_ai_guard_series_t      *s;
    ngx_http_ai_guard_main_conf_t   *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    t = *tenant;
    m = *model;

    if (type == NGX_HTTP_AI_GUARD_SERIES_REQUESTS) {
        reason = ctx->verdict.reason;

    } else {
        ngx_str_null(&reason);
    }

    for ( ;; ) {
        t.len = ngx_min(t.len, NGX_HTTP_AI_GUARD_MAX_LABEL);
        m.len = ngx_min(m.len, NGX_HTTP_AI_GUARD_MAX_LABEL);
        reason.len = ngx_min(reason.len, NGX_HTTP_AI_GUARD_MAX_LABEL);

        p = key;
        *p++ = type;
        *p++ = ngx_http_ai_guard_decisions[ctx->decision];
        p = ngx_cpymem(p, t.data, t.len);
        p = ngx_cpymem(p, m.data, m.len);
        p = ngx_cpymem(p, reason.data, reason.len);

        s = ngx_http_ai_guard_zone_find(zone,
                                        NGX_HTTP_AI_GUARD_ENTRY_SERIES,
                                        key, p - key);
        if (s) {
            break;
        }

        if (zone->sh->entries[NGX_HTTP_AI_GUARD_ENTRY_SERIES]
            >= amcf->max_series
            && !(t.len == 5 && ngx_strncmp(t.data, "other", 5) == 0))
        {
            /* the bound on label sets: the rest folds into "other" */
            ngx_str_set(&t, "other");
            ngx_str_set(&m, "other");
            continue;
        }

        s = ngx_http_ai_guard_zone_get(zone, NGX_HTTP_AI_GUARD_ENTRY_SERIES,
                                       key, p - key,
                                       sizeof(ngx_http_ai_guard_series_t),
                                       ngx_http_ai_guard_evictable,
                                       r->connection->log);
        if (s == NULL) {
            return;
        }

        s->type = type;
        s->decision = key[1];
        s->tenant_len = t.len;
        s->model_len = m.len;
        s->reason_len = reason.len;

        break;
    }

    s->requests++;

    if (type == NGX_HTTP_AI_GUARD_SERIES_TOKENS) {
        s->input += ctx->usage.input_tokens;
        s->output += ctx->usage.output_tokens;
        s->cached += ctx->usage.cached_tokens;
        s->estimated += ctx->estimated;
        s->cost = ngx_http_ai_guard_pico_add(s->cost, ctx->final_money);
    }
}


static void
ngx_http_ai_guard_record_usage(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    ngx_str_t *tenant, ngx_str_t *model, uint32_t day)
{
    u_char                            *p, *key;
    size_t                             len;
    ngx_uint_t                         created;
    ngx_http_ai_guard_key_t           *k;
    ngx_http_ai_guard_usage_entry_t   *u;
    ngx_http_ai_guard_main_conf_t     *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    k = ctx->key;

    len = sizeof(uint32_t) + tenant->len + k->id.len + model->len
          + k->stripe_customer.len;

    key = ngx_pnalloc(r->pool, len);
    if (key == NULL) {
        return;
    }

    p = ngx_cpymem(key, &day, sizeof(uint32_t));
    p = ngx_cpymem(p, tenant->data, tenant->len);
    p = ngx_cpymem(p, k->id.data, k->id.len);
    p = ngx_cpymem(p, model->data, model->len);
    p = ngx_cpymem(p, k->stripe_customer.data, k->stripe_customer.len);

    created = zone->sh->entries[NGX_HTTP_AI_GUARD_ENTRY_USAGE];

    u = ngx_http_ai_guard_zone_get(zone, NGX_HTTP_AI_GUARD_ENTRY_USAGE,
                                   key, len,
                                   sizeof(ngx_http_ai_guard_usage_entry_t),
                                   ngx_http_ai_guard_evictable,
                                   r->connection->log);
    if (u == NULL) {
        return;
    }

    if (u->requests == 0) {
        u->day = day;
        u->tenant_len = tenant->len;
        u->key_len = k->id.len;
        u->model_len = model->len;
        u->customer_len = k->stripe_customer.len;
    }

    u->requests++;
    u->input += ctx->usage.input_tokens;
    u->output += ctx->usage.output_tokens;
    u->cached += ctx->usage.cached_tokens;
    u->estimated += ctx->estimated;
    u->cost = ngx_http_ai_guard_pico_add(u->cost, ctx->final_money);

    if (zone->sh->entries[NGX_HTTP_AI_GUARD_ENTRY_USAGE] != created) {
        /* a new entry: a good moment to let the oldest days go */
        ngx_http_ai_guard_purge_usage(zone, day - amcf->usage_days);
    }
}


/* usage of days before "oldest"; the LRU's tail holds the oldest days */

static void
ngx_http_ai_guard_purge_usage(ngx_http_ai_guard_zone_t *zone,
    uint32_t oldest)
{
    ngx_queue_t                      *q, *lru;
    ngx_http_ai_guard_node_t         *n;
    ngx_http_ai_guard_usage_entry_t  *u;

    lru = &zone->sh->lru[NGX_HTTP_AI_GUARD_ENTRY_USAGE];

    while (!ngx_queue_empty(lru)) {
        q = ngx_queue_last(lru);
        n = ngx_queue_data(q, ngx_http_ai_guard_node_t, queue);
        u = (ngx_http_ai_guard_usage_entry_t *) n->data;

        if (u->day >= oldest) {
            return;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&zone->sh->rbtree, &n->node);
        ngx_slab_free_locked(zone->shpool, n);
        zone->sh->entries[NGX_HTTP_AI_GUARD_ENTRY_USAGE]--;
    }
}


static void
ngx_http_ai_guard_observe(ngx_http_ai_guard_histogram_t *h, uint64_t ms)
{
    ngx_uint_t  i;

    for (i = 0; ms > ngx_http_ai_guard_bucket_ms[i]; i++) {
        /* void */
    }

    h->count[i]++;
    h->sum_ms += ms;
    h->total++;
}
