
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_jlog.h"
#include "ngx_http_ai_guard_ledger_journal.h"
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
static ngx_uint_t ngx_http_ai_guard_ledger_replay(
    ngx_http_ai_guard_zone_t *zone, const ngx_http_ai_guard_batch_rec_t *rec,
    uint64_t requests, uint64_t now);
static void ngx_http_ai_guard_ledger_compact(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_ljournal_t *lj, ngx_log_t *log);
static ngx_int_t ngx_http_ai_guard_ledger_row_frame(
    ngx_http_ai_guard_node_t *node, void *data);
static void ngx_http_ai_guard_ledger_timer(ngx_event_t *ev);


#define NGX_HTTP_AI_GUARD_LEDGER_JOURNAL_MS  100

/* worker 0's: the journal's fsync=batch and its snapshots */
static ngx_event_t  ngx_http_ai_guard_ledger_journal_ev;


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
    u_char                           *key;
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

    /* on disk as the row gains it, under the same mutex as the snapshot */

    if (amcf->journal) {
        key = ngx_http_ai_guard_zone_key(u, &len);
        ngx_http_ai_guard_ljournal_settle(amcf->journal, r->connection->log,
                                          ctx, key, len);
    }

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

    /* begun, and nothing billed: its estimate no longer counts */

    if (amcf->journal && ctx->begun) {
        ngx_http_ai_guard_ljournal_end(amcf->journal, r->connection->log,
                                       ctx);
    }

    return NGX_OK;
}


/*
 * An admitted request with a row, before the upstream can have it: with
 * ai_guard_journal, its estimate is journaled as begun, under its row's
 * key (copied under the mutex: a row goes only days later, yet its
 * bytes are the zone's).
 */

void
ngx_http_ai_guard_ledger_begin(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    u_char                          buf[NGX_HTTP_AI_GUARD_LEDGER_KEY], *key;
    size_t                          len;
    ngx_http_ai_guard_zone_t       *zone;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->journal == NULL || ctx->key == NULL || !ctx->has_row
        || ctx->begun)
    {
        return;
    }

    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER];

    ngx_shmtx_lock(&zone->shpool->mutex);

    key = ngx_http_ai_guard_zone_key(ctx->row, &len);
    ngx_memcpy(buf, key, len);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_ai_guard_ljournal_begin(amcf->journal, r->connection->log, ctx,
                                     buf, len);
}


/*
 * At a start (the module's init, by the master, before any worker):
 * when this cycle made the journal's zone and the ledger is empty, the
 * journal's snapshot and tail are replayed into the ledger, and the
 * requests begun and never settled are counted on their estimate.
 * Either way the journal is then rewritten from the ledger, so that
 * the files and the zone agree from here on; a crash during the
 * rewrite leaves the old file, whole, which replays to the same rows.
 * A reload adopts both zones and does nothing here.
 */

ngx_int_t
ngx_http_ai_guard_ledger_restore(ngx_cycle_t *cycle)
{
    u_char                           *buf;
    size_t                            i;
    uint64_t                          now;
    ngx_uint_t                        lost, level;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_http_ai_guard_ljournal_t     *lj;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_jlog_replay_t   rp;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_guard_module);

    if (amcf == NULL || amcf->journal == NULL || ngx_test_config) {
        return NGX_OK;
    }

    lj = amcf->journal;
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER];

    if (zone->sh == NULL || !ngx_http_ai_guard_ljournal_fresh(lj)) {
        return NGX_OK;
    }

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    buf = NULL;

    if (zone->sh->entries == 0) {
        buf = ngx_http_ai_guard_ljournal_load(lj, cycle->log, &rp);
    }

    if (buf) {
        lost = 0;

        for (i = 0; i < rp.nrows; i++) {
            lost += ngx_http_ai_guard_ledger_replay(zone, &rp.rows[i]->rec,
                                                    rp.rows[i]->requests,
                                                    now);
        }

        for (i = 0; i < rp.nrecs; i++) {
            lost += ngx_http_ai_guard_ledger_replay(zone, rp.recs[i],
                                                    rp.recs[i]->usage, now);
        }

        for (i = 0; i < rp.nbegun; i++) {
            lost += ngx_http_ai_guard_ledger_replay(zone, rp.begun[i], 1,
                                                    now);
        }

        level = lost ? NGX_LOG_ALERT : NGX_LOG_NOTICE;

        ngx_log_error(level, cycle->log, 0,
                      "ai_guard: journal \"%V\": %uz rows, %uz settled "
                      "requests and %uz requests admitted but never "
                      "settled (counted on their estimate) taken back "
                      "into the ledger, %ui that found no room in it lost",
                      ngx_http_ai_guard_ljournal_path(lj), rp.nrows,
                      rp.nrecs, rp.nbegun, lost);

        ngx_free(rp.rows);
        ngx_free(rp.recs);
        ngx_free(rp.begun);
        ngx_free(buf);
    }

    ngx_http_ai_guard_ledger_compact(zone, lj, cycle->log);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


/*
 * Under the mutex: a journal's record into the row its scope names, as
 * "requests" requests; the model noted as the tenant's that day, so the
 * models' bound holds across the restart.  1: it was lost (no room, or
 * not a row's key).
 */

static ngx_uint_t
ngx_http_ai_guard_ledger_replay(ngx_http_ai_guard_zone_t *zone,
    const ngx_http_ai_guard_batch_rec_t *rec, uint64_t requests,
    uint64_t now)
{
    u_char                            buf[NGX_HTTP_AI_GUARD_LEDGER_KEY];
    size_t                            len, n;
    uint32_t                          day;
    ngx_str_t                         tenant, model, label;
    ngx_uint_t                        i;
    const u_char                     *key, *p, *last, *s[4];
    ngx_http_ai_guard_usage_entry_t  *u;

    key = (const u_char *) (rec + 1)
          + rec->nitems * sizeof(ngx_http_ai_guard_batch_item_t)
          + rec->tenant_len + rec->key_len + rec->model_len
          + rec->customer_len;
    len = rec->scope_len;
    last = key + len;

    if (len <= NGX_HTTP_AI_GUARD_LEDGER_HEAD || len > sizeof(buf)
        || key[0] != NGX_HTTP_AI_GUARD_LEDGER_ROW)
    {
        return 1;
    }

    p = key + NGX_HTTP_AI_GUARD_LEDGER_HEAD;

    for (i = 0; i < 4; i++) {
        p = ngx_http_ai_guard_part_read(p, last, &s[i], &n);

        if (p == NULL) {
            return 1;
        }

        if (i == 0) {
            tenant.data = (u_char *) s[i];
            tenant.len = n;

        } else if (i == 2) {
            model.data = (u_char *) s[i];
            model.len = n;
        }
    }

    if (p != last) {
        return 1;
    }

    ngx_memcpy(&day, key + 1, sizeof(uint32_t));

    if (model.len
        && !(model.len == sizeof(NGX_HTTP_AI_GUARD_OTHER) - 1
             && ngx_memcmp(model.data, NGX_HTTP_AI_GUARD_OTHER, model.len)
                == 0))
    {
        (void) ngx_http_ai_guard_ledger_label(zone, buf, day, &tenant,
                                              &model, now, NGX_MAX_INT_T_VALUE,
                                              &label);
    }

    ngx_memcpy(buf, key, len);

    u = ngx_http_ai_guard_zone_get(zone, buf, len,
                                   sizeof(ngx_http_ai_guard_usage_entry_t),
                                   now, NULL);
    if (u == NULL) {
        return 1;
    }

    u->requests = ngx_http_ai_guard_sat_add(u->requests, requests);
    u->input = ngx_http_ai_guard_sat_add(u->input, rec->input);
    u->output = ngx_http_ai_guard_sat_add(u->output, rec->output);
    u->cached = ngx_http_ai_guard_sat_add(u->cached, rec->cached);
    u->estimated = ngx_http_ai_guard_sat_add(u->estimated, rec->estimated);
    u->cost = ngx_http_ai_guard_pico_add(u->cost, rec->cost);
    u->reasoning = ngx_http_ai_guard_sat_add(u->reasoning, rec->reasoning);
    u->cache_write = ngx_http_ai_guard_sat_add(u->cache_write,
                                               rec->cache_write);

    return 0;
}


/* the rows as U frames, gathered by a walk of the zone */

typedef struct {
    u_char                           *p;      /* NULL: only counted */
    size_t                            size;
} ngx_http_ai_guard_ledger_frames_t;


/*
 * Under the ledger's mutex: its rows become the journal's snapshot.  Two
 * walks, one to size the buffer and one to fill it, with nothing
 * changed between them.
 */

static void
ngx_http_ai_guard_ledger_compact(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_ljournal_t *lj, ngx_log_t *log)
{
    u_char                             *buf;
    ngx_http_ai_guard_ledger_frames_t   f;

    f.p = NULL;
    f.size = 0;

    (void) ngx_http_ai_guard_zone_walk(zone,
                                       ngx_http_ai_guard_ledger_row_frame,
                                       &f);

    buf = ngx_alloc(f.size + 1, log);
    if (buf == NULL) {
        return;
    }

    f.p = buf;
    f.size = 0;

    (void) ngx_http_ai_guard_zone_walk(zone,
                                       ngx_http_ai_guard_ledger_row_frame,
                                       &f);

    ngx_http_ai_guard_ljournal_snapshot(lj, log, buf, f.size);

    ngx_free(buf);
}


static ngx_int_t
ngx_http_ai_guard_ledger_row_frame(ngx_http_ai_guard_node_t *node,
    void *data)
{
    ngx_http_ai_guard_ledger_frames_t *f = data;

    u_char                           *key;
    size_t                            len;
    uint64_t                          buf[(sizeof(ngx_http_ai_guard_jlog_row_t)
                                           + NGX_HTTP_AI_GUARD_LEDGER_KEY)
                                          / sizeof(uint64_t) + 1];
    ngx_http_ai_guard_jlog_row_t     *row;
    ngx_http_ai_guard_usage_entry_t  *u;

    key = (u_char *) node->data + node->size;

    if (node->len == 0 || key[0] != NGX_HTTP_AI_GUARD_LEDGER_ROW) {
        return NGX_OK;
    }

    len = sizeof(ngx_http_ai_guard_jlog_row_t) + node->len;

    if (f->p == NULL) {
        f->size += ngx_http_ai_guard_jlog_size(len);
        return NGX_OK;
    }

    u = (ngx_http_ai_guard_usage_entry_t *) node->data;
    row = (ngx_http_ai_guard_jlog_row_t *) buf;

    ngx_memzero(row, sizeof(ngx_http_ai_guard_jlog_row_t));

    row->requests = u->requests;
    row->rec.usage = 1;
    row->rec.input = u->input;
    row->rec.output = u->output;
    row->rec.cached = u->cached;
    row->rec.estimated = u->estimated;
    row->rec.cost = u->cost;
    row->rec.reasoning = u->reasoning;
    row->rec.cache_write = u->cache_write;
    row->rec.scope_len = (uint16_t) node->len;

    ngx_memcpy((u_char *) (row + 1), key, node->len);

    f->size += ngx_http_ai_guard_jlog_frame(f->p + f->size,
                                            NGX_HTTP_AI_GUARD_JLOG_ROW, row,
                                            len);
    return NGX_OK;
}


/* worker 0 keeps the journal: fsync=batch each 100 ms, and snapshots */

ngx_int_t
ngx_http_ai_guard_ledger_init_process(ngx_cycle_t *cycle)
{
    ngx_event_t                    *ev;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_guard_module);

    if (amcf->journal == NULL || ngx_worker != 0) {
        return NGX_OK;
    }

    ev = &ngx_http_ai_guard_ledger_journal_ev;

    ev->handler = ngx_http_ai_guard_ledger_timer;
    ev->log = cycle->log;
    ev->data = amcf;
    ev->cancelable = 1;

    ngx_add_timer(ev, NGX_HTTP_AI_GUARD_LEDGER_JOURNAL_MS);

    return NGX_OK;
}


/*
 * A snapshot when the tail has grown past the snapshot and 1 MB (or a
 * write failed): the ledger's mutex is held while the rows are copied
 * and written to the page cache, a few milliseconds for 10,000 rows,
 * once every megabyte of requests (about 5,000), never on a request.
 */

static void
ngx_http_ai_guard_ledger_timer(ngx_event_t *ev)
{
    ngx_http_ai_guard_zone_t       *zone;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_ai_guard_ljournal_sync(amcf->journal, ev->log);

    if (ngx_http_ai_guard_ljournal_due(amcf->journal)) {
        zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER];

        ngx_shmtx_lock(&zone->shpool->mutex);
        ngx_http_ai_guard_ledger_compact(zone, amcf->journal, ev->log);
        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    ngx_add_timer(ev, NGX_HTTP_AI_GUARD_LEDGER_JOURNAL_MS);
}
