
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_keys_module.h"
#include "ngx_http_ai_guard_limit_module.h"
#include "ngx_http_ai_guard_price.h"
#include "ngx_http_ai_guard_report_out.h"
#include "ngx_http_ai_guard_report_usage.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_report_self.h"


static ngx_int_t ngx_http_ai_guard_self_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_guard_self_limits(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_out_t *o);


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
    ngx_str_t                      s;
    ngx_http_ai_guard_out_t       *o;
    ngx_http_ai_guard_ctx_t       *ctx;
    ngx_http_ai_guard_key_t       *key;
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
 * Every limit of the key's tier and what remains of it: the arithmetic of
 * the x-ratelimit-* headers on the scope's counters, read under the
 * zone's mutex and never written.  A scope not in the zone has had no
 * request yet, or is fresh again: all of every limit remains.
 */

static ngx_int_t
ngx_http_ai_guard_self_limits(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_out_t *o)
{
    u_char                           *e;
    u_char                            value[NGX_HTTP_AI_GUARD_USD_LEN];
    uint64_t                          now;
    ngx_uint_t                        i, n, local, budget;
    ngx_http_ai_guard_said_t          said;
    ngx_http_ai_guard_tier_t         *tier;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_http_ai_guard_scope_t        *scope;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_limit_item_t   *it;

    tier = ctx->key->tier_conf;

    if (tier == NULL || !tier->has_limits) {
        return NGX_OK;
    }

    if (ngx_http_ai_guard_scope_key(r, alcf, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        if (tier->limits[i]) {
            it = &ctx->items[n++];
            ngx_memzero(it, sizeof(ngx_http_ai_guard_limit_item_t));
            it->kind = i;
            it->limit = tier->limits[i];
        }
    }

    /*
     * With sync=strict or lease the headers are Redis's numbers, which
     * this handler does not ask for: it says it does not know rather
     * than the node's zone, which counts nothing then.
     */

    local = (amcf->redis == NULL
             || (!amcf->redis->lease && amcf->redis->sync));

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    scope = local ? ngx_http_ai_guard_zone_find(zone, ctx->scope.data,
                                                ctx->scope.len)
                  : NULL;

    for (i = 0; i < n; i++) {
        it = &ctx->items[i];

        it->counter = scope ? &scope->counters[it->kind] : NULL;

        said.remaining[i] = ngx_http_ai_guard_limit_remaining(it, now);
        said.reset_ms[i] = ngx_http_ai_guard_limit_reset_ms(it, now);

        it->counter = NULL;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    for (i = 0; i < n; i++) {
        it = &ctx->items[i];

        ngx_http_ai_guard_out_printf(o, 64, "%s{\"limit\":\"%s\",",
                                     i ? "," : "",
                                     ngx_http_ai_guard_limit_name(it->kind));

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

        if (!local) {
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

    return NGX_OK;
}
