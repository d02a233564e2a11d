
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_ledger.h"
#include "ngx_http_ai_guard_price_module.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_series.h"


static u_char  ngx_http_ai_guard_decisions[] = "-arm";


static void ngx_http_ai_guard_record_series(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx, u_char type,
    ngx_str_t *tenant, ngx_str_t *model, uint64_t now);
static void ngx_http_ai_guard_observe(ngx_http_ai_guard_histogram_t *h,
    uint64_t ms);


/*
 * At the end of the request: its usage into its ledger row when it
 * reached the upstream, and the request into the metric series.  The
 * ledger and the series are two zones, locked one after the other.
 */

void
ngx_http_ai_guard_record(ngx_http_request_t *r, ngx_http_ai_guard_ctx_t *ctx)
{
    uint64_t                        now;
    ngx_str_t                       tenant, model, label;
    ngx_http_ai_guard_zone_t       *series;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    series = &amcf->zones[NGX_HTTP_AI_GUARD_PART_SERIES];

    if (series->sh == NULL) {
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

    if (ctx->key) {
        tenant.data = ctx->key->tenant.data;
        tenant.len = ctx->key->tenant.len;

        if (ngx_http_ai_guard_ledger_record(r, ctx, &model, now, &label)
            != NGX_OK)
        {
            return;
        }

    } else {
        /* a model no client may multiply: "other", or none */

        ngx_str_set(&tenant, "unknown");

        if (model.len) {
            ngx_str_set(&label, NGX_HTTP_AI_GUARD_OTHER);

        } else {
            ngx_str_null(&label);
        }
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
