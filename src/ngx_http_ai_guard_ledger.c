
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_ledger.h"


static ngx_int_t ngx_http_ai_guard_ledger_fresh(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_node_t *node, uint64_t now);
static ngx_int_t ngx_http_ai_guard_ledger_label(ngx_http_ai_guard_zone_t *zone,
    u_char *buf, uint32_t day, ngx_str_t *tenant, ngx_str_t *model,
    uint64_t now, ngx_uint_t max, ngx_str_t *label);
static ngx_uint_t ngx_http_ai_guard_ledger_used(ngx_http_ai_guard_zone_t *zone,
    u_char *buf, uint32_t day, ngx_str_t *tenant, ngx_str_t *model);
static size_t ngx_http_ai_guard_ledger_key(u_char *buf, u_char type,
    uint32_t day, ngx_str_t *parts, ngx_uint_t n);
static size_t ngx_http_ai_guard_row_key(u_char *buf, uint32_t day,
    ngx_http_ai_guard_key_t *k, ngx_str_t *label);
static ngx_http_ai_guard_usage_entry_t *ngx_http_ai_guard_record_usage(
    ngx_http_request_t *r, ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_ctx_t *ctx, u_char *buf, uint32_t day,
    ngx_str_t *model, uint64_t now);


/* the ledger zone's policy: an entry goes when its day is too old */

void
ngx_http_ai_guard_ledger_zone(ngx_http_ai_guard_main_conf_t *amcf)
{
    ngx_http_ai_guard_zone_t  *zone;

    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER];

    zone->fresh = ngx_http_ai_guard_ledger_fresh;
    zone->data = amcf;
    zone->lru = 0;
}


static ngx_int_t
ngx_http_ai_guard_ledger_fresh(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_node_t *node, uint64_t now)
{
    u_char                         *key;
    uint32_t                        day;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = zone->data;

    if (node->len < NGX_HTTP_AI_GUARD_LEDGER_HEAD) {
        return 1;
    }

    key = (u_char *) node->data + node->size;
    ngx_memcpy(&day, key + 1, sizeof(uint32_t));

    return (uint64_t) day + amcf->usage_days
           < now / NGX_HTTP_AI_GUARD_DAY_MS;
}


/*
 * Before the upstream: the row the request will be billed to, made now,
 * so that a request is never sent that could not be billed.  NGX_DECLINED
 * with the verdict: the ledger is full.
 */

ngx_int_t
ngx_http_ai_guard_ledger_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v)
{
    u_char                            buf[NGX_HTTP_AI_GUARD_LEDGER_KEY];
    size_t                            len;
    uint32_t                          day;
    uint64_t                          now;
    ngx_str_t                         tenant, model, label;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_usage_entry_t  *u;

    if (ctx->req.model_len == 0) {
        /*
         * A request that names no model is billed only if its answer has
         * usage (docs/metering.md): its row, if any, is made then.
         */
        return NGX_OK;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER];

    now = ngx_http_ai_guard_now();
    day = (uint32_t) (now / NGX_HTTP_AI_GUARD_DAY_MS);

    tenant.data = ctx->key->tenant.data;
    tenant.len = ctx->key->tenant.len;
    model.data = ctx->req.model;
    model.len = ctx->req.model_len;

    label = model;

    ngx_shmtx_lock(&zone->shpool->mutex);

    /* the common case: the key has used the model today, its row is there */

    len = ngx_http_ai_guard_row_key(buf, day, ctx->key, &model);
    u = ngx_http_ai_guard_zone_find(zone, buf, len);

    if (u == NULL
        && ngx_http_ai_guard_ledger_label(zone, buf, day, &tenant, &model,
                                          now, amcf->usage_max_models, &label)
           == NGX_OK)
    {
        len = ngx_http_ai_guard_row_key(buf, day, ctx->key, &label);

        u = ngx_http_ai_guard_zone_get(zone, buf, len,
                                       sizeof(ngx_http_ai_guard_usage_entry_t),
                                       now, NULL);
    }

    if (u == NULL) {
        zone->sh->refused++;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (u) {
        ctx->has_row = 1;
        ctx->row = u;
        ctx->row_day = day;
        ctx->label = label;
        return NGX_OK;
    }

    ngx_http_ai_guard_zone_alert(zone, r->connection->log, "the usage row",
                                 buf, len);

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "limiter_unavailable",
                                  "The usage ledger has no room to bill "
                                  "this request, so it was not sent; "
                                  "please retry later.");
    ngx_str_set(&v->reason, "ledger_full");

    v->retry_ms = 10000;
    v->retry = 1;

    return NGX_DECLINED;
}


/*
 * The label a model's usage is recorded under: the model itself while
 * the tenant has used fewer than "max" models that day, else "other".
 * NGX_DECLINED: no room to note a new model.  Under the ledger's mutex.
 */

static ngx_int_t
ngx_http_ai_guard_ledger_label(ngx_http_ai_guard_zone_t *zone, u_char *buf,
    uint32_t day, ngx_str_t *tenant, ngx_str_t *model, uint64_t now,
    ngx_uint_t max, ngx_str_t *label)
{
    size_t     len;
    uint64_t  *count;
    ngx_str_t  parts[2];

    *label = *model;

    if (model->len == 0
        || ngx_http_ai_guard_ledger_used(zone, buf, day, tenant, model))
    {
        return NGX_OK;
    }

    parts[0] = *tenant;

    len = ngx_http_ai_guard_ledger_key(buf, NGX_HTTP_AI_GUARD_LEDGER_COUNT,
                                       day, parts, 1);

    count = ngx_http_ai_guard_zone_get(zone, buf, len, sizeof(uint64_t), now,
                                       NULL);
    if (count == NULL) {
        return NGX_DECLINED;
    }

    if (*count >= max) {
        ngx_str_set(label, NGX_HTTP_AI_GUARD_OTHER);
        return NGX_OK;
    }

    parts[1] = *model;

    len = ngx_http_ai_guard_ledger_key(buf, NGX_HTTP_AI_GUARD_LEDGER_MODEL,
                                       day, parts, 2);

    if (ngx_http_ai_guard_zone_get(zone, buf, len, 0, now, NULL) == NULL) {
        return NGX_DECLINED;
    }

    (*count)++;

    return NGX_OK;
}


/* has the tenant used the model that day */

static ngx_uint_t
ngx_http_ai_guard_ledger_used(ngx_http_ai_guard_zone_t *zone, u_char *buf,
    uint32_t day, ngx_str_t *tenant, ngx_str_t *model)
{
    size_t     len;
    ngx_str_t  parts[2];

    parts[0] = *tenant;
    parts[1] = *model;

    len = ngx_http_ai_guard_ledger_key(buf, NGX_HTTP_AI_GUARD_LEDGER_MODEL,
                                       day, parts, 2);

    return ngx_http_ai_guard_zone_find(zone, buf, len) != NULL;
}


static size_t
ngx_http_ai_guard_ledger_key(u_char *buf, u_char type, uint32_t day,
    ngx_str_t *parts, ngx_uint_t n)
{
    u_char      *p;
    ngx_uint_t   i;

    p = buf;
    *p++ = type;
    p = ngx_cpymem(p, &day, sizeof(uint32_t));

    for (i = 0; i < n; i++) {
        p = ngx_http_ai_guard_part_write(p, parts[i].data, parts[i].len);
    }

    return p - buf;
}


static size_t
ngx_http_ai_guard_row_key(u_char *buf, uint32_t day,
    ngx_http_ai_guard_key_t *k, ngx_str_t *label)
{
    ngx_str_t  parts[4];

    parts[0].data = k->tenant.data;
    parts[0].len = k->tenant.len;
    parts[1].data = k->id.data;
    parts[1].len = k->id.len;
    parts[2] = *label;
    parts[3].data = k->stripe_customer.data;
    parts[3].len = k->stripe_customer.len;

    return ngx_http_ai_guard_ledger_key(buf, NGX_HTTP_AI_GUARD_LEDGER_ROW,
                                        day, parts, 4);
}


/*
 * The usage goes to the row of the model the upstream named, when it can
 * have one, else to the row reserved before the upstream: the tokens are
 * never lost, at worst the label is the request's.  NULL: no row at all
 * (monitor mode passed a request the ledger had no room for); counted.
 */

static ngx_http_ai_guard_usage_entry_t *
ngx_http_ai_guard_record_usage(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    u_char *buf, uint32_t day, ngx_str_t *model, uint64_t now)
{
    size_t                            len;
    ngx_str_t                         tenant, label;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_usage_entry_t  *u;

    amcf = zone->data;

    tenant.data = ctx->key->tenant.data;
    tenant.len = ctx->key->tenant.len;

    u = NULL;

    /*
     * The row reserved before the upstream, when the upstream named the
     * request's own model the same day: rows go only days later, so it is
     * still there.
     */

    if (ctx->has_row && ctx->row_day == day
        && model->len == ctx->req.model_len
        && ngx_memcmp(model->data, ctx->req.model, model->len) == 0)
    {
        u = ctx->row;
        goto found;
    }

    if (ngx_http_ai_guard_ledger_label(zone, buf, day, &tenant, model, now,
                                       amcf->usage_max_models, &label)
        == NGX_OK)
    {
        len = ngx_http_ai_guard_row_key(buf, day, ctx->key, &label);

        u = ngx_http_ai_guard_zone_get(zone, buf, len,
                                       sizeof(ngx_http_ai_guard_usage_entry_t),
                                       now, NULL);
        if (u) {
            ctx->label = label;
        }
    }

    if (u == NULL && ctx->has_row) {
        len = ngx_http_ai_guard_row_key(buf, ctx->row_day, ctx->key,
                                        &ctx->label);

        u = ngx_http_ai_guard_zone_find(zone, buf, len);
    }

    if (u == NULL) {
        zone->sh->dropped++;
        return NULL;
    }

found:

    u->requests++;
    u->input = ngx_http_ai_guard_sat_add(u->input, ctx->usage.input_tokens);
    u->output = ngx_http_ai_guard_sat_add(u->output,
                                          ctx->usage.output_tokens);
    u->cached = ngx_http_ai_guard_sat_add(u->cached,
                                          ctx->usage.cached_tokens);
    u->estimated += ctx->estimated;
    u->cost = ngx_http_ai_guard_pico_add(u->cost, ctx->final_money);
    u->reasoning = ngx_http_ai_guard_sat_add(u->reasoning,
                                             ctx->usage.reasoning_tokens);
    u->cache_write = ngx_http_ai_guard_sat_add(u->cache_write,
                                           ctx->usage.cache_write_tokens);

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard record: key \"%V\" model \"%V\" in:%uL out:%uL "
                   "cached:%uL estimated:%ui", &ctx->key->id, &ctx->label,
                   ctx->usage.input_tokens, ctx->usage.output_tokens,
                   ctx->usage.cached_tokens, (ngx_uint_t) ctx->estimated);

    return u;
}


/*
 * At the end of a request with a key: its usage into its row when it
 * reached the upstream.  *label is the model label of its series: the
 * row's, else (refused before the upstream) the model when the tenant
 * used it today, else "other"; empty when the request names none.
 */

ngx_int_t
ngx_http_ai_guard_ledger_record(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_str_t *model, uint64_t now,
    ngx_str_t *label)
{
    u_char                            buf[NGX_HTTP_AI_GUARD_LEDGER_KEY];
    uint32_t                          day;
    ngx_str_t                         tenant;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_usage_entry_t  *u;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER];

    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    if (model->len) {
        ngx_str_set(label, NGX_HTTP_AI_GUARD_OTHER);

    } else {
        ngx_str_null(label);
    }

    tenant.data = ctx->key->tenant.data;
    tenant.len = ctx->key->tenant.len;
    day = (uint32_t) (now / NGX_HTTP_AI_GUARD_DAY_MS);

    u = NULL;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (ctx->upstream) {
        u = ngx_http_ai_guard_record_usage(r, zone, ctx, buf, day, model,
                                           now);
        if (u) {
            *label = ctx->label;
        }

    } else if (model->len
               && ngx_http_ai_guard_ledger_used(zone, buf, day, &tenant,
                                                model))
    {
        *label = *model;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (ctx->upstream && u == NULL) {
        ngx_http_ai_guard_zone_alert(zone, r->connection->log,
                                     "the usage of key", ctx->key->id.data,
                                     ctx->key->id.len);
    }

    return NGX_OK;
}
