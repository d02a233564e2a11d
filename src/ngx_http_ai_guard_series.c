
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

/* the dialect of a histogram entry, by the meter's vendor */
static u_char  ngx_http_ai_guard_dialects[] = "uoag";


/*
 * The bucket bounds of the GenAI histograms: OpenTelemetry's advice for
 * gen_ai.server.request.duration (also the upstream's first byte),
 * gen_ai.server.time_to_first_token, gen_ai.server.time_per_output_token
 * and gen_ai.client.token.usage, in the unit each is kept in.
 */

static const uint64_t  ngx_http_ai_guard_duration_ms[] = {
    10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480, 40960,
    81920
};

static const uint64_t  ngx_http_ai_guard_ttft_ms[] = {
    1, 5, 10, 20, 40, 60, 80, 100, 250, 500, 750, 1000, 2500, 5000, 7500,
    10000
};

static const uint64_t  ngx_http_ai_guard_tpot_us[] = {
    10000, 25000, 50000, 75000, 100000, 150000, 200000, 300000, 400000,
    500000, 750000, 1000000, 2500000
};

static const uint64_t  ngx_http_ai_guard_tokens[] = {
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
    16777216, 67108864
};


#define ngx_http_ai_guard_nelts(a)  (sizeof(a) / sizeof(a[0]))

const ngx_http_ai_guard_histo_family_t
    ngx_http_ai_guard_histo_families[NGX_HTTP_AI_GUARD_HISTOS] =
{
    { "gen_ai_server_request_duration_seconds",
      "Time from the request's start to the end of its response, as the "
      "client sees it, of the requests that reached the upstream.",
      NULL, ngx_http_ai_guard_duration_ms,
      ngx_http_ai_guard_nelts(ngx_http_ai_guard_duration_ms), 3, 0 },

    { "ai_guard_upstream_first_byte_seconds",
      "Time from the connection to the upstream to the end of its "
      "response header ($upstream_header_time).",
      NULL, ngx_http_ai_guard_duration_ms,
      ngx_http_ai_guard_nelts(ngx_http_ai_guard_duration_ms), 3, 16 },

    { "gen_ai_server_time_to_first_token_seconds",
      "Time from the request's start to the first content of a streamed "
      "response.",
      NULL, ngx_http_ai_guard_ttft_ms,
      ngx_http_ai_guard_nelts(ngx_http_ai_guard_ttft_ms), 3, 32 },

    { "gen_ai_server_time_per_output_token_seconds",
      "Time per output token of a streamed response after its first "
      "token.",
      NULL, ngx_http_ai_guard_tpot_us,
      ngx_http_ai_guard_nelts(ngx_http_ai_guard_tpot_us), 6, 50 },

    { "gen_ai_client_token_usage",
      "Tokens a request used, as the upstream reported them, by type.",
      "input", ngx_http_ai_guard_tokens,
      ngx_http_ai_guard_nelts(ngx_http_ai_guard_tokens), 0, 65 },

    { "gen_ai_client_token_usage",
      "Tokens a request used, as the upstream reported them, by type.",
      "output", ngx_http_ai_guard_tokens,
      ngx_http_ai_guard_nelts(ngx_http_ai_guard_tokens), 0, 81 }
};


static void ngx_http_ai_guard_record_series(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx, u_char type,
    ngx_str_t *tenant, ngx_str_t *model, uint64_t now);
static void ngx_http_ai_guard_record_histo(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    ngx_str_t *tenant, ngx_str_t *model, uint64_t now);
static void *ngx_http_ai_guard_series_fold(ngx_http_ai_guard_zone_t *zone,
    ngx_uint_t bound, ngx_http_ai_guard_labels_t *l, ngx_uint_t fold_model,
    size_t size, uint64_t now);
static void *ngx_http_ai_guard_series_get(ngx_http_ai_guard_zone_t *zone,
    ngx_uint_t bound, ngx_uint_t histo, u_char *key, size_t len,
    size_t size, uint64_t now);
static void ngx_http_ai_guard_record_limits(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    ngx_str_t *tenant, uint64_t now);
static void ngx_http_ai_guard_alerts_zero(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_main_conf_t *amcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_str_t *tenant, ngx_str_t *id, u_char period, uint64_t now);
static void ngx_http_ai_guard_observe(ngx_http_ai_guard_histo_t *h,
    ngx_uint_t family, uint64_t v);


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

        ngx_http_ai_guard_record_histo(r, series, ctx, &tenant, &label, now);
    }

    /* a tenant's own limits: a key's or a value's have no gauge */

    if (ctx->has_remaining && ctx->scope.data[0] == 't') {
        ngx_http_ai_guard_record_limits(r, series, ctx, &tenant, now);
    }

    ngx_shmtx_unlock(&series->shpool->mutex);
}


/*
 * ai_guard_metrics_max_histograms not set: a tenth of max_series, fewer
 * when the zone has no room for them (a series= part sized before there
 * were histograms, a small zone), so that no default fails nginx -t.  A
 * value that is set is held to, and nginx -t says when it does not fit.
 */

void
ngx_http_ai_guard_series_fit(ngx_http_ai_guard_main_conf_t *amcf)
{
    size_t       need, fixed, *size;
    ngx_uint_t   h, unset;

    if (amcf->max_histograms != NGX_CONF_UNSET_UINT) {
        return;
    }

    size = amcf->part_size;

    for (h = ngx_max(amcf->max_series / 10, 1); h > 0; h--) {
        amcf->max_histograms = h;

        need = ngx_http_ai_guard_series_need(amcf);

        if (size[NGX_HTTP_AI_GUARD_PART_SERIES]) {
            if (need <= size[NGX_HTTP_AI_GUARD_PART_SERIES]) {
                return;
            }

            continue;
        }

        need = ngx_max(need, NGX_HTTP_AI_GUARD_PART_MIN);
        fixed = need + size[NGX_HTTP_AI_GUARD_PART_LIMITS]
                + size[NGX_HTTP_AI_GUARD_PART_LEDGER];
        unset = (size[NGX_HTTP_AI_GUARD_PART_LIMITS] == 0)
                + (size[NGX_HTTP_AI_GUARD_PART_LEDGER] == 0);

        if (fixed <= amcf->zone_size
            && (unset == 0
                || (amcf->zone_size - fixed) / unset
                   >= NGX_HTTP_AI_GUARD_PART_MIN))
        {
            return;
        }
    }

    amcf->max_histograms = 0;
}


/*
 * The series part's size at nginx -t: the bounded series in 512-byte
 * slots, eight a page; the histogram entries in 2 KB slots, two a page,
 * and the three folded ones (one a dialect); a page for each smaller
 * slot size (the folded series among them) and the zone's own; each page
 * with its descriptor; the pool's header and alignment.
 */

size_t
ngx_http_ai_guard_series_need(ngx_http_ai_guard_main_conf_t *amcf)
{
    ngx_uint_t  n, h, pages;

    n = ngx_pagesize / NGX_HTTP_AI_GUARD_SERIES_BYTES;
    h = ngx_pagesize / NGX_HTTP_AI_GUARD_HISTO_BYTES;

    pages = (amcf->max_series + n - 1) / n + 4;

    if (amcf->max_histograms) {
        pages += (amcf->max_histograms + 3 + h - 1) / h + 1;
    }

    return pages * (ngx_pagesize + sizeof(ngx_slab_page_t))
           + 2 * ngx_pagesize;
}


/*
 * A series' key: its type, its byte, and the labels, each cut to its
 * bound.  buf holds NGX_HTTP_AI_GUARD_SERIES_KEY bytes.
 */

size_t
ngx_http_ai_guard_series_key(u_char *buf, u_char type, u_char decision,
    ngx_str_t *tenant, ngx_str_t *model, ngx_str_t *code, ngx_str_t *reason)
{
    u_char  *p;

    p = buf;
    *p++ = type;
    *p++ = decision;

    p = ngx_http_ai_guard_part_write(p, tenant->data,
                          ngx_min(tenant->len, NGX_HTTP_AI_GUARD_LABEL_TENANT));
    p = ngx_http_ai_guard_part_write(p, model->data,
                          ngx_min(model->len, NGX_HTTP_AI_GUARD_LABEL_MODEL));
    p = ngx_http_ai_guard_part_write(p, code->data,
                          ngx_min(code->len, NGX_HTTP_AI_GUARD_LABEL_CODE));
    p = ngx_http_ai_guard_part_write(p, reason->data,
                          ngx_min(reason->len, NGX_HTTP_AI_GUARD_LABEL_REASON));

    return p - buf;
}


/* a series key read back; NGX_ERROR when it is not one */

ngx_int_t
ngx_http_ai_guard_series_labels(u_char *key, size_t len,
    ngx_http_ai_guard_labels_t *labels)
{
    ngx_str_t     *part[4];
    ngx_uint_t     i;
    const u_char  *p, *last, *s;

    if (len < 2) {
        return NGX_ERROR;
    }

    labels->type = key[0];
    labels->decision = key[1];

    part[0] = &labels->tenant;
    part[1] = &labels->model;
    part[2] = &labels->code;
    part[3] = &labels->reason;

    p = key + 2;
    last = key + len;

    for (i = 0; i < 4; i++) {
        p = ngx_http_ai_guard_part_read(p, last, &s, &part[i]->len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        part[i]->data = (u_char *) s;
    }

    return (p == last) ? NGX_OK : NGX_ERROR;
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
    ngx_http_ai_guard_series_t     *s;
    ngx_http_ai_guard_labels_t      l;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    l.type = type;
    l.decision = (type == NGX_HTTP_AI_GUARD_SERIES_UNPRICED)
                 ? '-' : ngx_http_ai_guard_decisions[ctx->decision];
    l.tenant = *tenant;
    ngx_str_null(&l.model);
    ngx_str_null(&l.code);
    ngx_str_null(&l.reason);

    if (model) {
        l.model = *model;
    }

    if (type == NGX_HTTP_AI_GUARD_SERIES_REQUESTS) {
        l.reason = ctx->verdict.reason;

        if (ctx->verdict.code) {
            l.code.data = (u_char *) ctx->verdict.code;
            l.code.len = ngx_strlen(ctx->verdict.code);
        }
    }

    s = ngx_http_ai_guard_series_fold(zone, amcf->max_series, &l,
                                      model != NULL,
                                      sizeof(ngx_http_ai_guard_series_t),
                                      now);
    if (s == NULL) {
        return;
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
        s->reasoning = ngx_http_ai_guard_sat_add(s->reasoning,
                                               ctx->usage.reasoning_tokens);
        s->cache_write = ngx_http_ai_guard_sat_add(s->cache_write,
                                             ctx->usage.cache_write_tokens);
    }
}


/*
 * The entry of a label set, under "bound" series of their kind, else
 * folded into tenant "other" (and model "other" with "fold_model"), on
 * top of the bound; NULL, counted as dropped, when even that finds no
 * room.  The labels are changed as they are folded.  Under the zone's
 * mutex.
 */

static void *
ngx_http_ai_guard_series_fold(ngx_http_ai_guard_zone_t *zone,
    ngx_uint_t bound, ngx_http_ai_guard_labels_t *l, ngx_uint_t fold_model,
    size_t size, uint64_t now)
{
    u_char      key[NGX_HTTP_AI_GUARD_SERIES_KEY];
    void       *s;
    size_t      len;
    ngx_uint_t  folded;

    for (folded = 0; /* void */; folded = 1) {

        len = ngx_http_ai_guard_series_key(key, l->type, l->decision,
                                           &l->tenant, &l->model, &l->code,
                                           &l->reason);

        s = ngx_http_ai_guard_series_get(zone, folded ? 0 : bound, 0, key,
                                         len, size, now);
        if (s) {
            return s;
        }

        if (folded || zone->sh->entries - zone->sh->histograms < bound) {
            zone->sh->dropped++;
            return NULL;
        }

        ngx_str_set(&l->tenant, NGX_HTTP_AI_GUARD_OTHER);

        if (fold_model) {
            ngx_str_set(&l->model, NGX_HTTP_AI_GUARD_OTHER);
        }
    }
}


/*
 * The entry of a key, made when the bound allows it: "bound" series of
 * their kind may be made (0: no bound, a folded one), "histo" says which
 * kind.  NULL: past the bound, or no room.  Under the zone's mutex.
 */

static void *
ngx_http_ai_guard_series_get(ngx_http_ai_guard_zone_t *zone,
    ngx_uint_t bound, ngx_uint_t histo, u_char *key, size_t len,
    size_t size, uint64_t now)
{
    void        *s;
    ngx_uint_t   n, created;

    s = ngx_http_ai_guard_zone_find(zone, key, len);
    if (s) {
        return s;
    }

    n = histo ? zone->sh->histograms
              : zone->sh->entries - zone->sh->histograms;

    if (bound && n >= bound) {
        return NULL;
    }

    s = ngx_http_ai_guard_zone_get(zone, key, len, size, now, &created);

    if (s && created && histo) {
        zone->sh->histograms++;
    }

    return s;
}


/*
 * The GenAI histograms of a request that reached the upstream, by
 * tenant, model label and dialect; past ai_guard_metrics_max_histograms
 * under tenant and model "other" (one entry a dialect, on top).
 */

static void
ngx_http_ai_guard_record_histo(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    ngx_str_t *tenant, ngx_str_t *model, uint64_t now)
{
    u_char                          key[NGX_HTTP_AI_GUARD_SERIES_KEY];
    size_t                          len;
    uint64_t                        input, output;
    ngx_str_t                       none, t, m;
    ngx_uint_t                      folded;
    ngx_http_ai_guard_histo_t      *h;
    ngx_http_upstream_state_t      *state;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->max_histograms == 0) {
        return;
    }

    ngx_str_null(&none);

    t = *tenant;
    m = *model;

    for (folded = 0; /* void */; folded = 1) {

        len = ngx_http_ai_guard_series_key(key, NGX_HTTP_AI_GUARD_SERIES_HISTO,
                                  ngx_http_ai_guard_dialects[ctx->usage.vendor],
                                  &t, &m, &none, &none);

        h = ngx_http_ai_guard_series_get(zone,
                                         folded ? 0 : amcf->max_histograms,
                                         1, key, len,
                                         sizeof(ngx_http_ai_guard_histo_t),
                                         now);
        if (h) {
            break;
        }

        if (folded || zone->sh->histograms < amcf->max_histograms) {
            zone->sh->dropped++;
            return;
        }

        ngx_str_set(&t, NGX_HTTP_AI_GUARD_OTHER);
        ngx_str_set(&m, NGX_HTTP_AI_GUARD_OTHER);
    }

    ngx_http_ai_guard_observe(h, NGX_HTTP_AI_GUARD_HISTO_DURATION,
                              ctx->response_ms);

    /* 0: never answered; 1xx and 2xx; 3xx; 4xx; 5xx */

    h->status[ctx->upstream_status < 100 ? 0
              : ngx_min(ngx_max(ctx->upstream_status / 100, 2), 5) - 1]++;

    /* the last try's header time: the upstream that answered */

    if (r->upstream_states && r->upstream_states->nelts) {
        state = r->upstream_states->elts;
        state += r->upstream_states->nelts - 1;

        if (state->header_time != (ngx_msec_t) -1 && state->status) {
            ngx_http_ai_guard_observe(h, NGX_HTTP_AI_GUARD_HISTO_FIRST_BYTE,
                                      state->header_time);
        }
    }

    /* a stream's first content, whether or not it reports its usage */

    if (ctx->sse && ctx->first_token) {
        ngx_http_ai_guard_observe(h, NGX_HTTP_AI_GUARD_HISTO_TTFT,
                                  ctx->ttft_ms);
    }

    /* the counts are the upstream's own, never the estimate */

    if (ctx->estimated) {
        return;
    }

    input = (uint64_t) ngx_max(ctx->usage.input_tokens, 0);
    output = (uint64_t) ngx_max(ctx->usage.output_tokens, 0);

    ngx_http_ai_guard_observe(h, NGX_HTTP_AI_GUARD_HISTO_INPUT, input);
    ngx_http_ai_guard_observe(h, NGX_HTTP_AI_GUARD_HISTO_OUTPUT, output);

    /* what each token after a stream's first took, in microseconds */

    if (ctx->sse && ctx->first_token && output >= 2
        && ctx->response_ms >= ctx->ttft_ms)
    {
        ngx_http_ai_guard_observe(h, NGX_HTTP_AI_GUARD_HISTO_TPOT,
                                  (ctx->response_ms - ctx->ttft_ms) * 1000
                                  / (output - 1));
    }
}


/*
 * What the tenant's limits had left as this request's admission found
 * them, the numbers of its x-ratelimit-remaining-* headers; past
 * ai_guard_metrics_max_series under tenant "other".
 */

static void
ngx_http_ai_guard_record_limits(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_ctx_t *ctx,
    ngx_str_t *tenant, uint64_t now)
{
    ngx_uint_t                          i;
    ngx_http_ai_guard_said_t           *said;
    ngx_http_ai_guard_labels_t          labels;
    ngx_http_ai_guard_main_conf_t      *amcf;
    ngx_http_ai_guard_remaining_t      *g;
    ngx_http_ai_guard_limits_series_t  *l;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    ngx_memzero(&labels, sizeof(ngx_http_ai_guard_labels_t));

    labels.type = NGX_HTTP_AI_GUARD_SERIES_LIMITS;
    labels.decision = '-';
    labels.tenant = *tenant;

    l = ngx_http_ai_guard_series_fold(zone, amcf->max_series, &labels, 0,
                                     sizeof(ngx_http_ai_guard_limits_series_t),
                                     now);
    if (l == NULL) {
        return;
    }

    said = ctx->said;

    if (said->at < l->stamp) {
        return;
    }

    l->stamp = said->at;

    for (i = 0; i < ctx->nitems; i++) {
        if (ctx->items[i].kind == NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY) {
            continue;
        }

        g = &l->kinds[ctx->items[i].kind - 1];

        g->limit = ctx->items[i].limit;
        g->remaining = said->remaining[i];
        g->full_at = ngx_http_ai_guard_sat_add(said->at, said->reset_ms[i]);
    }
}


/*
 * A budget's gauge: the scope's (a tenant's, or a key's with
 * "ai_guard_limit_by key") pico-USD used in the window, as its last
 * settlement left it.  Bounded with the series; past the bound the gauge
 * is not made (and counted as dropped): a budget is never "other".
 */

void
ngx_http_ai_guard_record_budget(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    u_char                              key[NGX_HTTP_AI_GUARD_SERIES_KEY];
    size_t                              len;
    uint64_t                            now;
    ngx_str_t                           none, tenant, id;
    ngx_uint_t                          i;
    ngx_http_ai_guard_zone_t           *zone;
    ngx_http_ai_guard_main_conf_t      *amcf;
    ngx_http_ai_guard_budget_note_t    *note;
    ngx_http_ai_guard_budget_series_t  *b;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_SERIES];

    if (zone->sh == NULL || ctx->key == NULL) {
        return;
    }

    ngx_str_null(&none);
    ngx_str_null(&id);

    tenant.data = ctx->key->tenant.data;
    tenant.len = ctx->key->tenant.len;

    if (ctx->scope.len && ctx->scope.data[0] == 'k') {
        id.data = ctx->key->id.data;
        id.len = ctx->key->id.len;
    }

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (i = 0; i < 2; i++) {
        note = &ctx->budget[i];

        if (note->period == 0) {
            continue;
        }

        len = ngx_http_ai_guard_series_key(key, NGX_HTTP_AI_GUARD_SERIES_BUDGET,
                                           note->period, &tenant, &id, &none,
                                           &none);

        b = ngx_http_ai_guard_series_get(zone, amcf->max_series, 0, key, len,
                                     sizeof(ngx_http_ai_guard_budget_series_t),
                                     now);
        if (b == NULL) {
            zone->sh->dropped++;
            continue;
        }

        /*
         * A new gauge: its alerts' counters start at 0 now, so that the
         * crossing of a threshold is an increase Prometheus sees (a
         * counter born at 1 is no increase).
         */

        if (b->limit == 0) {
            ngx_http_ai_guard_alerts_zero(zone, amcf, ctx, &tenant, &id,
                                          note->period, now);
        }

        /* a settlement of the window before (at midnight) is late news */

        if (note->window < b->window) {
            continue;
        }

        b->used = note->used;
        b->limit = note->limit;
        b->window = note->window;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* under the bound only: a count of 0 is never folded into "other" */

static void
ngx_http_ai_guard_alerts_zero(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_main_conf_t *amcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_str_t *tenant, ngx_str_t *id, u_char period, uint64_t now)
{
    u_char                     key[NGX_HTTP_AI_GUARD_SERIES_KEY];
    u_char                     pct[NGX_INT_T_LEN];
    size_t                     len;
    ngx_str_t                  none, threshold;
    ngx_uint_t                 i;
    ngx_http_ai_guard_tier_t  *tier;

    tier = ctx->key->tier_conf;

    if (tier == NULL) {
        return;
    }

    ngx_str_null(&none);

    for (i = 0; i < tier->budget_alerts; i++) {
        threshold.data = pct;
        threshold.len = ngx_sprintf(pct, "%ui", tier->budget_alert[i]) - pct;

        len = ngx_http_ai_guard_series_key(key, NGX_HTTP_AI_GUARD_SERIES_ALERTS,
                                           period, tenant, id, &none,
                                           &threshold);

        (void) ngx_http_ai_guard_series_get(zone, amcf->max_series, 0, key,
                                            len,
                                            sizeof(ngx_http_ai_guard_series_t),
                                            now);
    }
}


/*
 * An alert of a budget's threshold, counted where it was decided: by the
 * worker that crossed it, or with Redis by the node Redis said first.
 * Called without a request, as Redis's reply comes.
 */

void
ngx_http_ai_guard_series_alert(ngx_http_ai_guard_main_conf_t *amcf,
    ngx_str_t *tenant, ngx_str_t *key, u_char period, ngx_uint_t percent)
{
    u_char                       pct[NGX_INT_T_LEN];
    ngx_http_ai_guard_zone_t    *zone;
    ngx_http_ai_guard_series_t  *s;
    ngx_http_ai_guard_labels_t   l;

    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_SERIES];

    if (zone->sh == NULL) {
        return;
    }

    l.type = NGX_HTTP_AI_GUARD_SERIES_ALERTS;
    l.decision = period;
    l.tenant = *tenant;
    l.model = *key;
    ngx_str_null(&l.code);
    l.reason.data = pct;
    l.reason.len = ngx_sprintf(pct, "%ui", percent) - pct;

    ngx_shmtx_lock(&zone->shpool->mutex);

    s = ngx_http_ai_guard_series_fold(zone, amcf->max_series, &l,
                                      key->len != 0,
                                      sizeof(ngx_http_ai_guard_series_t),
                                      ngx_http_ai_guard_now());
    if (s) {
        s->requests++;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
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
}


static void
ngx_http_ai_guard_observe(ngx_http_ai_guard_histo_t *h, ngx_uint_t family,
    uint64_t v)
{
    uint64_t                                *w;
    ngx_uint_t                               i;
    const ngx_http_ai_guard_histo_family_t  *f;

    f = &ngx_http_ai_guard_histo_families[family];
    w = &h->words[f->offset];

    for (i = 0; i < f->nbounds && v > f->bounds[i]; i++) {
        /* void */
    }

    w[i]++;
    w[f->nbounds + 1] = ngx_http_ai_guard_sat_add(w[f->nbounds + 1], v);
}
