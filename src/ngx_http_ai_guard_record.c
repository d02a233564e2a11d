
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard.h"
#include "ngx_http_ai_guard_record.h"


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
static u_char *ngx_http_ai_guard_ledger_buf(ngx_http_request_t *r,
    ngx_http_ai_guard_key_t *k);
static ngx_http_ai_guard_usage_entry_t *ngx_http_ai_guard_record_usage(
    ngx_http_request_t *r, ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_ctx_t *ctx, u_char *buf, uint32_t day,
    ngx_str_t *model, uint64_t now);
static void ngx_http_ai_guard_record_series(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    u_char type, ngx_str_t *tenant, ngx_str_t *model, uint64_t now);
static void ngx_http_ai_guard_observe(ngx_http_ai_guard_histogram_t *h,
    uint64_t ms);


static u_char  ngx_http_ai_guard_decisions[] = "-arm";


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
    u_char                           *buf;
    size_t                            len;
    uint32_t                          day;
    uint64_t                          now;
    ngx_str_t                         tenant, model, label;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_usage_entry_t  *u;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER];

    buf = ngx_http_ai_guard_ledger_buf(r, ctx->key);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    now = ngx_http_ai_guard_now();
    day = (uint32_t) (now / NGX_HTTP_AI_GUARD_DAY_MS);

    tenant.data = ctx->key->tenant.data;
    tenant.len = ctx->key->tenant.len;
    model.data = ctx->req.model;
    model.len = ctx->req.model_len;

    u = NULL;
    len = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (ngx_http_ai_guard_ledger_label(zone, buf, day, &tenant, &model, now,
                                       amcf->usage_max_models, &label)
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


/* room for the longest ledger key of the key's strings */

static u_char *
ngx_http_ai_guard_ledger_buf(ngx_http_request_t *r,
    ngx_http_ai_guard_key_t *k)
{
    return ngx_pnalloc(r->pool, NGX_HTTP_AI_GUARD_LEDGER_HEAD
                       + NGX_HTTP_AI_GUARD_PART_LEN(k->tenant.len)
                       + NGX_HTTP_AI_GUARD_PART_LEN(k->id.len)
                       + NGX_HTTP_AI_GUARD_PART_LEN(
                             NGX_HTTP_AI_GUARD_REQ_MODEL_LEN + 1)
                       + NGX_HTTP_AI_GUARD_PART_LEN(
                             k->stripe_customer.len));
}


/*
 * At the end of the request: its usage into its ledger row when it
 * reached the upstream, and the request into the metric series.  The
 * ledger and the series are two zones, locked one after the other.
 */

void
ngx_http_ai_guard_record(ngx_http_request_t *r, ngx_http_ai_guard_ctx_t *ctx)
{
    u_char                           *buf;
    uint32_t                          day;
    uint64_t                          now;
    ngx_str_t                         tenant, model, label;
    ngx_http_ai_guard_zone_t         *ledger, *series;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_usage_entry_t  *u;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    ledger = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER];
    series = &amcf->zones[NGX_HTTP_AI_GUARD_PART_SERIES];

    if (ledger->sh == NULL || series->sh == NULL) {
        return;
    }

    if (ctx->upstream && ctx->usage.model_len) {
        model.data = ctx->usage.model;
        model.len = ctx->usage.model_len;

    } else {
        model.data = ctx->req.model;
        model.len = ctx->req.model_len;
    }

    now = ngx_http_ai_guard_now();
    day = (uint32_t) (now / NGX_HTTP_AI_GUARD_DAY_MS);

    /* a model no client may multiply: "other" unless the ledger knows it */

    if (model.len) {
        ngx_str_set(&label, NGX_HTTP_AI_GUARD_OTHER);

    } else {
        ngx_str_null(&label);
    }

    if (ctx->key) {
        tenant.data = ctx->key->tenant.data;
        tenant.len = ctx->key->tenant.len;

        buf = ngx_http_ai_guard_ledger_buf(r, ctx->key);
        if (buf == NULL) {
            return;
        }

        u = NULL;

        ngx_shmtx_lock(&ledger->shpool->mutex);

        if (ctx->upstream) {
            u = ngx_http_ai_guard_record_usage(r, ledger, ctx, buf, day,
                                               &model, now);
            if (u) {
                label = ctx->label;
            }

        } else if (model.len
                   && ngx_http_ai_guard_ledger_used(ledger, buf, day, &tenant,
                                                    &model))
        {
            label = model;
        }

        ngx_shmtx_unlock(&ledger->shpool->mutex);

        if (ctx->upstream && u == NULL) {
            ngx_http_ai_guard_zone_alert(ledger, r->connection->log,
                                         "the usage of key", ctx->key->id.data,
                                         ctx->key->id.len);
        }

    } else {
        ngx_str_set(&tenant, "unknown");
    }

    ngx_shmtx_lock(&series->shpool->mutex);

    ngx_http_ai_guard_record_series(r, series, ctx,
                                    NGX_HTTP_AI_GUARD_SERIES_REQUESTS,
                                    &tenant, &label, now);

    if (ctx->upstream) {
        ngx_http_ai_guard_record_series(r, series, ctx,
                                        NGX_HTTP_AI_GUARD_SERIES_TOKENS,
                                        &tenant, &label, now);

        if (amcf->prices.nelts
            && ngx_http_ai_guard_price_find(r, model.data, model.len)
               == &amcf->price_max)
        {
            ngx_http_ai_guard_record_series(r, series, ctx,
                                            NGX_HTTP_AI_GUARD_SERIES_UNPRICED,
                                            &tenant, NULL, now);
        }

        ngx_http_ai_guard_observe(&series->sh->upstream_time,
                                  ctx->response_ms);

        if (ctx->meter && ctx->first_byte
            && r->headers_out.content_type.len >= 17
            && ngx_strncasecmp(r->headers_out.content_type.data,
                               (u_char *) "text/event-stream", 17)
               == 0)
        {
            ngx_http_ai_guard_observe(&series->sh->ttft, ctx->ttft_ms);
        }
    }

    ngx_shmtx_unlock(&series->shpool->mutex);
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

    u->requests++;
    u->input = ngx_http_ai_guard_sat_add(u->input, ctx->usage.input_tokens);
    u->output = ngx_http_ai_guard_sat_add(u->output,
                                          ctx->usage.output_tokens);
    u->cached = ngx_http_ai_guard_sat_add(u->cached,
                                          ctx->usage.cached_tokens);
    u->estimated += ctx->estimated;
    u->cost = ngx_http_ai_guard_pico_add(u->cost, ctx->final_money);

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard record: key \"%V\" model \"%V\" in:%uL out:%uL "
                   "cached:%uL estimated:%ui", &ctx->key->id, &ctx->label,
                   ctx->usage.input_tokens, ctx->usage.output_tokens,
                   ctx->usage.cached_tokens, (ngx_uint_t) ctx->estimated);

    return u;
}


/*
 * A series' key: its type, the decision, and the labels, each cut to its
 * bound.  buf holds NGX_HTTP_AI_GUARD_SERIES_KEY bytes.
 */

size_t
ngx_http_ai_guard_series_key(u_char *buf, u_char type, u_char decision,
    ngx_str_t *tenant, ngx_str_t *model, ngx_str_t *reason)
{
    u_char  *p;

    p = buf;
    *p++ = type;
    *p++ = decision;

    p = ngx_http_ai_guard_part_write(p, tenant->data,
                          ngx_min(tenant->len, NGX_HTTP_AI_GUARD_LABEL_TENANT));
    p = ngx_http_ai_guard_part_write(p, model->data,
                          ngx_min(model->len, NGX_HTTP_AI_GUARD_LABEL_MODEL));
    p = ngx_http_ai_guard_part_write(p, reason->data,
                          ngx_min(reason->len, NGX_HTTP_AI_GUARD_LABEL_REASON));

    return p - buf;
}


/* a series key read back; NGX_ERROR when it is not one */

ngx_int_t
ngx_http_ai_guard_series_labels(u_char *key, size_t len,
    ngx_http_ai_guard_labels_t *labels)
{
    const u_char  *p, *last, *s;

    if (len < 2) {
        return NGX_ERROR;
    }

    labels->type = key[0];
    labels->decision = key[1];

    p = key + 2;
    last = key + len;

    p = ngx_http_ai_guard_part_read(p, last, &s, &labels->tenant.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    labels->tenant.data = (u_char *) s;

    p = ngx_http_ai_guard_part_read(p, last, &s, &labels->model.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    labels->model.data = (u_char *) s;

    p = ngx_http_ai_guard_part_read(p, last, &s, &labels->reason.len);
    if (p == NULL || p != last) {
        return NGX_ERROR;
    }

    labels->reason.data = (u_char *) s;

    return NGX_OK;
}


/*
 * Past ai_guard_metrics_max_series a new label set folds into tenant and
 * model "other"; the series zone is sized for that many at nginx -t, so
 * only the "other" ones past it may find no room (then counted, dropped).
 */

static void
ngx_http_ai_guard_record_series(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    u_char type, ngx_str_t *tenant, ngx_str_t *model, uint64_t now)
{
    u_char                          key[NGX_HTTP_AI_GUARD_SERIES_KEY];
    size_t                          len;
    ngx_str_t                       reason, none, t, m;
    ngx_uint_t                      folded;
    ngx_http_ai_guard_series_t     *s;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    ngx_str_null(&none);

    t = *tenant;
    m = model ? *model : none;
    reason = (type == NGX_HTTP_AI_GUARD_SERIES_REQUESTS) ? ctx->verdict.reason
                                                         : none;

    for (folded = 0; /* void */; folded = 1) {

        len = ngx_http_ai_guard_series_key(key, type,
                              (type == NGX_HTTP_AI_GUARD_SERIES_UNPRICED)
                              ? '-'
                              : ngx_http_ai_guard_decisions[ctx->decision],
                              &t, &m, &reason);

        s = ngx_http_ai_guard_zone_find(zone, key, len);
        if (s) {
            break;
        }

        if (!folded && zone->sh->entries >= amcf->max_series) {
            ngx_str_set(&t, NGX_HTTP_AI_GUARD_OTHER);

            if (model) {
                ngx_str_set(&m, NGX_HTTP_AI_GUARD_OTHER);
            }

            continue;
        }

        s = ngx_http_ai_guard_zone_get(zone, key, len,
                                       sizeof(ngx_http_ai_guard_series_t),
                                       now, NULL);
        if (s == NULL) {
            zone->sh->dropped++;
            return;
        }

        break;
    }

    s->requests++;

    if (type == NGX_HTTP_AI_GUARD_SERIES_TOKENS) {
        s->input = ngx_http_ai_guard_sat_add(s->input,
                                             ctx->usage.input_tokens);
        s->output = ngx_http_ai_guard_sat_add(s->output,
                                              ctx->usage.output_tokens);
        s->cached = ngx_http_ai_guard_sat_add(s->cached,
                                              ctx->usage.cached_tokens);
        s->estimated += ctx->estimated;
        s->cost = ngx_http_ai_guard_pico_add(s->cost, ctx->final_money);
    }
}


/* a gauge, updated on every request: an atomic add, not the mutex */

void
ngx_http_ai_guard_in_flight(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_int_t delta)
{
    ngx_http_ai_guard_zone_t       *zone;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_SERIES];

    if (zone->sh == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&zone->sh->in_flight,
                                (ngx_atomic_int_t) delta);

    ctx->in_flight = (delta > 0);

    if (delta > 0) {
        ctx->start_ms = ngx_http_ai_guard_now();
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
