
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_keys_module.h"
#include "ngx_http_ai_guard_limit_module.h"
#include "ngx_http_ai_guard_limit_own.h"
#include "ngx_http_ai_guard_price.h"
#include "ngx_http_ai_guard_redis_admit.h"
#include "ngx_http_ai_guard_report_out.h"
#include "ngx_http_ai_guard_report_usage.h"
#include "ngx_http_ai_guard_store.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_report_self.h"


/* where what remains of a scope's limits is read from */
#define NGX_HTTP_AI_GUARD_SELF_NULL   0
#define NGX_HTTP_AI_GUARD_SELF_ZONE   1
#define NGX_HTTP_AI_GUARD_SELF_REDIS  2


static ngx_int_t ngx_http_ai_guard_self_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_guard_self_limits(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_out_t *o);
static ngx_int_t ngx_http_ai_guard_self_peek(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);
static void ngx_http_ai_guard_self_read(ngx_http_ai_guard_ctx_t *ctx);
static ngx_int_t ngx_http_ai_guard_self_answer(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
static ngx_uint_t ngx_http_ai_guard_self_scope(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_out_t *o,
    ngx_uint_t written, ngx_str_t *name, const uint64_t *limits,
    ngx_str_t *key, ngx_uint_t local);


char *
ngx_http_ai_guard_self_cmd(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_ai_guard_main_conf_t  *amcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_guard_self_handler;

    /* the zones are created even where no location has "ai_guard on" */
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_guard_module);
    amcf->enabled = 1;

    return NGX_CONF_OK;
}


/*
 * The client's own numbers, authenticated as "ai_guard on" does.  The
 * request's context is the pool's, never the module's slot: the log phase
 * finds nothing, so a self request is neither counted against a limit
 * nor billed nor metered.
 */

static ngx_int_t
ngx_http_ai_guard_self_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_ai_guard_ctx_t       *ctx;
    ngx_http_ai_guard_verdict_t    v;
    ngx_http_ai_guard_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_module);

    ngx_memzero(&v, sizeof(ngx_http_ai_guard_verdict_t));

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        ngx_http_ai_guard_set_verdict(&v, NGX_HTTP_NOT_ALLOWED,
                                      "method_not_allowed",
                                      "This method is not allowed here: "
                                      "ai_guard_self answers GET and "
                                      "HEAD.");
        return ngx_http_ai_guard_send_error(r, &v);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;

    rc = ngx_http_ai_guard_authenticate(r, alcf, ctx, &v);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (v.status) {
        /* monitor mode lets no one read numbers without a credential */
        ngx_log_error(alcf->log_level, r->connection->log, 0,
                      "ai_guard: self: rejected: %s", v.code);

        return ngx_http_ai_guard_send_error(r, &v);
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    /*
     * sync=strict: the tier's counters are Redis's, read first (taking
     * nothing); the answer is written when they are in
     */

    ctx->redis.rc = NGX_HTTP_AI_GUARD_REDIS_FAILED;

    rc = ngx_http_ai_guard_self_peek(r, alcf, ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_AGAIN) {
        r->main->count++;
        return NGX_DONE;
    }

    return ngx_http_ai_guard_self_answer(r, ctx);
}


/*
 * NGX_AGAIN: Redis is asked what remains of the tier's limits in the
 * request's scope, as the admission script finds them before it takes
 * a request's cost; NGX_DECLINED: nothing to ask, or Redis is away.
 */

static ngx_int_t
ngx_http_ai_guard_self_peek(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_http_ai_guard_tier_t       *tier;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    tier = ctx->key->tier_conf;

    if (amcf->redis == NULL || amcf->redis->lease || amcf->redis->sync
        || tier == NULL || !tier->has_limits)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_guard_scope_key(r, alcf, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the items' costs are sent, and not taken: the script only reads */

    ctx->nitems = ngx_http_ai_guard_limit_items(ctx, tier->limits,
                                                ctx->items);

    return ngx_http_ai_guard_redis_peek(r, ctx, ngx_http_ai_guard_self_read);
}


/* Redis's numbers are in, or did not come: the answer goes */

static void
ngx_http_ai_guard_self_read(ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_http_request_t  *r;

    r = ctx->request;

    ngx_http_finalize_request(r, ngx_http_ai_guard_self_answer(r, ctx));
    ngx_http_run_posted_requests(r->connection);
}


static ngx_int_t
ngx_http_ai_guard_self_answer(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_str_t                      s;
    ngx_http_ai_guard_out_t       *o;
    ngx_http_ai_guard_key_t       *key;
    ngx_http_ai_guard_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_module);

    key = ctx->key;

    /* in the pool: the answer is ended after Redis's rows, if waited for */

    o = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_out_t));
    if (o == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o->pool = r->pool;
    o->last = &o->out;

    ngx_http_ai_guard_out_text(o, "{\"key\":");
    s.data = (u_char *) key->id.data;
    s.len = key->id.len;
    ngx_http_ai_guard_out_json(o, &s);

    ngx_http_ai_guard_out_text(o, ",\"tenant\":");
    s.data = (u_char *) key->tenant.data;
    s.len = key->tenant.len;
    ngx_http_ai_guard_out_json(o, &s);

    ngx_http_ai_guard_out_text(o, ",\"tier\":");
    s.data = (u_char *) key->tier.data;
    s.len = key->tier.len;
    ngx_http_ai_guard_out_json(o, &s);

    ngx_http_ai_guard_out_text(o, ",\"limits\":[");

    if (ngx_http_ai_guard_self_limits(r, alcf, ctx, o) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_ai_guard_out_text(o, "],");

    /* the spend, the end of the answer, and its sending */

    return ngx_http_ai_guard_usage_self(r, o, key);
}


/*
 * Every limit of the key and what remains of it, by scope: its tier's,
 * its own and its tenant's (the admin API's), as the request's admission
 * has them.  The tier's counters are in the scope of ai_guard_limit_by,
 * the key's and the tenant's in theirs, which are the node's zone's
 * whatever sync= says.
 */

static ngx_int_t
ngx_http_ai_guard_self_limits(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_out_t *o)
{
    uint64_t                        tenant[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    ngx_str_t                       scope, name;
    ngx_uint_t                      n, s, local;
    const uint64_t                 *own[2];
    ngx_http_ai_guard_tier_t       *tier;
    ngx_http_ai_guard_main_conf_t  *amcf;

    static char  *names[2] = { "key", "tenant" };

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS].sh == NULL) {
        return NGX_ERROR;
    }

    tier = ctx->key->tier_conf;
    n = 0;

    if (tier && tier->has_limits) {
        if (ngx_http_ai_guard_scope_key(r, alcf, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        /*
         * With sync=strict the tier's counters are Redis's, read before;
         * with sync=lease they are Redis's less the slices the nodes
         * hold, which this handler does not ask for.  Without them it
         * says it does not know rather than the node's zone, which
         * counts nothing then.
         */

        local = (amcf->redis == NULL
                 || (!amcf->redis->lease && amcf->redis->sync))
                ? NGX_HTTP_AI_GUARD_SELF_ZONE
                : (ctx->redis.rc != NGX_HTTP_AI_GUARD_REDIS_FAILED)
                  ? NGX_HTTP_AI_GUARD_SELF_REDIS : NGX_HTTP_AI_GUARD_SELF_NULL;

        ngx_str_set(&name, "tier");
        n = ngx_http_ai_guard_self_scope(r, ctx, o, n, &name, tier->limits,
                                         &ctx->scope, local);
    }

    /* the key's and the tenant's: counted in the node's zone */

    own[NGX_HTTP_AI_GUARD_OWN_KEY] = ctx->key->limits;
    own[NGX_HTTP_AI_GUARD_OWN_TENANT] =
        (ngx_http_ai_guard_store_tenant(r, (ngx_str_t *) &ctx->key->tenant,
                                        tenant)
         == NGX_OK) ? tenant : NULL;

    for (s = 0; s < 2; s++) {
        if (own[s] == NULL) {
            continue;
        }

        if (ngx_http_ai_guard_limit_own_scope(r->pool, ctx->key, s, &scope)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        name.data = (u_char *) names[s];
        name.len = ngx_strlen(names[s]);

        n = ngx_http_ai_guard_self_scope(r, ctx, o, n, &name, own[s],
                                         &scope, NGX_HTTP_AI_GUARD_SELF_ZONE);
    }

    return NGX_OK;
}


/*
 * The limits of one scope and what remains of each: the arithmetic of
 * the x-ratelimit-* headers on the scope's counters, read under the
 * zone's mutex and never written.  A scope not in the zone has had no
 * request yet, or is fresh again: all of every limit remains.  "local":
 * the zone's, Redis's as read into ctx->redis (the items in the same
 * order), or not known: null.  Returns the number of limits written so
 * far.
 */

static ngx_uint_t
ngx_http_ai_guard_self_scope(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_out_t *o,
    ngx_uint_t written, ngx_str_t *name, const uint64_t *limits,
    ngx_str_t *key, ngx_uint_t local)
{
    u_char                          *e;
    u_char                           value[NGX_HTTP_AI_GUARD_USD_LEN];
    uint64_t                         now;
    ngx_uint_t                       i, n, budget;
    ngx_http_ai_guard_said_t         said;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_scope_t       *scope;
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_http_ai_guard_limit_item_t  *it;
    ngx_http_ai_guard_limit_item_t   items[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    ngx_memzero(items, sizeof(items));
    n = ngx_http_ai_guard_limit_items(ctx, limits, items);

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    scope = (local == NGX_HTTP_AI_GUARD_SELF_ZONE)
            ? ngx_http_ai_guard_zone_find(zone, key->data, key->len) : NULL;

    for (i = 0; i < n; i++) {
        it = &items[i];

        it->counter = scope ? &scope->counters[it->kind] : NULL;

        said.remaining[i] = ngx_http_ai_guard_limit_remaining(it, now);
        said.reset_ms[i] = ngx_http_ai_guard_limit_reset_ms(it, now);

        it->counter = NULL;

        if (local == NGX_HTTP_AI_GUARD_SELF_REDIS) {
            said.remaining[i] = ctx->redis.remaining[i];
            said.reset_ms[i] = ctx->redis.reset_ms[i];
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    for (i = 0; i < n; i++) {
        it = &items[i];

        ngx_http_ai_guard_out_printf(o, 64 + name->len,
                                     "%s{\"limit\":\"%s\",\"scope\":\"%V\",",
                                     (written + i) ? "," : "",
                                     ngx_http_ai_guard_limit_name(it->kind),
                                     name);

        budget = (it->kind == NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY
                  || it->kind == NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH);

        /* a budget is in pico-USD: dollars, as the metrics say it */

        if (budget) {
            e = ngx_http_ai_guard_usd_format(value, (int64_t) it->limit);
            ngx_http_ai_guard_out_printf(o, NGX_HTTP_AI_GUARD_USD_LEN + 16,
                                         "\"value_usd\":\"%*s\"",
                                         (size_t) (e - value), value);

        } else {
            ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 16,
                                         "\"value\":%uL", it->limit);
        }

        if (local == NGX_HTTP_AI_GUARD_SELF_NULL) {
            ngx_http_ai_guard_out_text(o, budget ? ",\"remaining_usd\":null"
                                                 : ",\"remaining\":null");
            ngx_http_ai_guard_out_text(o, ",\"reset_ms\":null}");
            continue;
        }

        if (budget) {
            e = ngx_http_ai_guard_usd_format(value,
                                             (int64_t) said.remaining[i]);
            ngx_http_ai_guard_out_printf(o, NGX_HTTP_AI_GUARD_USD_LEN + 24,
                                         ",\"remaining_usd\":\"%*s\"",
                                         (size_t) (e - value), value);

        } else {
            ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 16,
                                         ",\"remaining\":%uL",
                                         said.remaining[i]);
        }

        ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 16,
                                     ",\"reset_ms\":%uL}", said.reset_ms[i]);
    }

    return written + n;
}
