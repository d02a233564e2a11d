
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_budget.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_price_module.h"
#include "ngx_http_ai_guard_redis_admit.h"
#include "ngx_http_ai_guard_redis_lease.h"
#include "ngx_http_ai_guard_redis_outbox.h"
#include "ngx_http_ai_guard_store.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_limit_own.h"
#include "ngx_http_ai_guard_limit_sync.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_limit_module.h"


/* completion tokens reserved when neither the request nor its tier caps */
#define NGX_HTTP_AI_GUARD_DEFAULT_OUTPUT    1024

/*
 * A value scope's value is cut here: two long values of one tenant may
 * share a scope, never two tenants' values.
 */
#define NGX_HTTP_AI_GUARD_SCOPE_VALUE_MAX   256

/* the retry hints of refusals for want of room */
#define NGX_HTTP_AI_GUARD_FULL_RETRY_MS     10000
#define NGX_HTTP_AI_GUARD_MAX_RETRY_MS      60000

#define NGX_HTTP_AI_GUARD_SCOPE_FULL        1
#define NGX_HTTP_AI_GUARD_SCOPE_MAX         2



/* an "n" entry: the value scopes of a tenant that hold an entry */

typedef struct {
    uint64_t                       values;
} ngx_http_ai_guard_scope_count_t;


static ngx_int_t ngx_http_ai_guard_limiter_tier(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v, ngx_http_ai_guard_tier_t *tier);
static ngx_int_t ngx_http_ai_guard_limiter_done(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v, ngx_int_t rc);
static ngx_int_t ngx_http_ai_guard_limiter_local(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);
static ngx_http_ai_guard_scope_t *ngx_http_ai_guard_scope_get(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_loc_conf_t *alcf,
    ngx_http_ai_guard_ctx_t *ctx, size_t size, uint64_t now,
    ngx_uint_t *why);
static ngx_int_t ngx_http_ai_guard_limiter_refuse(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v, ngx_uint_t why);
static ngx_int_t ngx_http_ai_guard_limiter_redis(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_limiter_lease(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_limiter_verdict(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v, int rc,
    ngx_http_ai_guard_limit_item_t *it, uint64_t retry_ms, ngx_uint_t own);
static ngx_int_t ngx_http_ai_guard_limit_message(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v, int rc,
    ngx_http_ai_guard_limit_item_t *it, uint64_t retry_ms, ngx_uint_t own);
static u_char *ngx_http_ai_guard_dollars(u_char *buf, int64_t pico);
static ngx_int_t ngx_http_ai_guard_limiter_unavailable(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);
static void ngx_http_ai_guard_scope_fresh(ngx_http_ai_guard_scope_t *scope,
    ngx_http_ai_guard_limit_item_t *items, ngx_uint_t n, uint64_t now);
static ngx_int_t ngx_http_ai_guard_limiter_fresh(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_node_t *node,
    uint64_t now);
static void ngx_http_ai_guard_limiter_free(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_node_t *node);
static void ngx_http_ai_guard_limit_headers(ngx_http_ai_guard_ctx_t *ctx,
    uint64_t now, ngx_http_ai_guard_redis_reply_t *res);
static void ngx_http_ai_guard_budgets(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_scope_t *scope, uint64_t now, ngx_uint_t *crossed);
static void ngx_http_ai_guard_budgets_strict(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t leased);




static ngx_str_t  ngx_http_ai_guard_dash = ngx_string("-");


/* the limits zone's policy, registered where the zone is made */

void
ngx_http_ai_guard_limiter_zone(ngx_http_ai_guard_main_conf_t *amcf)
{
    ngx_http_ai_guard_zone_t  *zone;

    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    zone->fresh = ngx_http_ai_guard_limiter_fresh;
    zone->free = ngx_http_ai_guard_limiter_free;
    zone->data = amcf;
    zone->lru = 1;
}


ngx_int_t
ngx_http_ai_guard_limiter_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v)
{
    ngx_int_t                       rc;
    uint64_t                        out, *tenant;
    uint64_t                        limits[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    ngx_http_ai_guard_tier_t       *tier;
    ngx_http_ai_guard_limit_own_t  *own;

    if (ctx->redis_wait) {
        /* sync=strict: resumed by the reply, or woken up before it */

        if (!ctx->redis_done) {
            return NGX_AGAIN;
        }

        ctx->redis_wait = 0;

        rc = ctx->lease_wait ? ngx_http_ai_guard_limiter_lease(r, alcf, ctx, v)
                             : ngx_http_ai_guard_limiter_redis(r, alcf, ctx, v);

        return ngx_http_ai_guard_limiter_done(r, alcf, ctx, v, rc);
    }

    tier = ctx->key ? ctx->key->tier_conf : NULL;

    /*
     * The estimate: the prompt, plus the completion the request may ask
     * for, else what its tier caps it at, else a default; times n.  The
     * client chooses both numbers: the product saturates, and then no
     * token limit can hold it.
     */

    ctx->est_input = ctx->req.estimate;
    ctx->est_tokens = ngx_http_ai_guard_limit_estimate(ctx->req.estimate,
                          ctx->req.max_tokens, ctx->req.n,
                          tier ? tier->max_tokens : -1,
                          NGX_HTTP_AI_GUARD_DEFAULT_OUTPUT, &out);
    ctx->est_money = ngx_http_ai_guard_price_of(r, ctx->req.model,
                                                ctx->req.model_len,
                                                ctx->req.estimate, out, 0, 0);

    /*
     * The key's own limits and its tenant's first: key within tenant
     * within tier, each must admit
     */

    tenant = NULL;

    if (ctx->key
        && ngx_http_ai_guard_store_tenant(r, (ngx_str_t *) &ctx->key->tenant,
                                          limits)
           == NGX_OK)
    {
        tenant = limits;
    }

    if (ctx->key && (ctx->key->limits || tenant)) {
        rc = ngx_http_ai_guard_limit_own_reserve(r, alcf, ctx, tenant);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_BUSY) {
            return ngx_http_ai_guard_limiter_refuse(r, alcf, ctx, v,
                                                  NGX_HTTP_AI_GUARD_SCOPE_FULL);
        }

        if (rc == NGX_DECLINED) {
            own = ctx->own;
            ngx_http_ai_guard_limit_own_headers(ctx);

            return ngx_http_ai_guard_limiter_verdict(r, ctx, v, own->rc,
                                 &own->items[own->res.index],
                                 own->res.retry_ms,
                                 1 + ngx_http_ai_guard_limit_own_which(ctx));
        }
    }

    if (tier == NULL || !tier->has_limits) {
        return ngx_http_ai_guard_limiter_done(r, alcf, ctx, v, NGX_OK);
    }

    rc = ngx_http_ai_guard_limiter_tier(r, alcf, ctx, v, tier);

    return ngx_http_ai_guard_limiter_done(r, alcf, ctx, v, rc);
}


/* the tier's limits, in the scope of ai_guard_limit_by */

static ngx_int_t
ngx_http_ai_guard_limiter_tier(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v, ngx_http_ai_guard_tier_t *tier)
{
    ngx_int_t                       rc;
    ngx_http_ai_guard_main_conf_t  *amcf;

    if (ngx_http_ai_guard_scope_key(r, alcf, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->nitems = ngx_http_ai_guard_limit_items(ctx, tier->limits,
                                                ctx->items);

    ctx->said = ngx_palloc(r->pool, sizeof(ngx_http_ai_guard_said_t));
    if (ctx->said == NULL) {
        return NGX_ERROR;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->redis && amcf->redis->lease) {
        return ngx_http_ai_guard_limiter_lease(r, alcf, ctx, v);
    }

    if (amcf->redis && amcf->redis->sync == 0) {

        /* sync=strict: one round trip decides, cluster-wide */

        rc = ngx_http_ai_guard_redis_reserve(r, alcf, ctx);

        if (rc != NGX_DECLINED) {
            return rc;
        }

        return ngx_http_ai_guard_limiter_unavailable(r, alcf, ctx, v);
    }

    return ngx_http_ai_guard_limiter_local(r, alcf, ctx, v);
}


/*
 * The tier's scope decided (rc, not NGX_AGAIN): when it refused, the
 * key's own reservation goes back, as the request costs nothing; the
 * headers tell the tightest of both.  In monitor mode a request the
 * key's limits refused went on, reserved: that is its verdict.
 */

static ngx_int_t
ngx_http_ai_guard_limiter_done(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v, ngx_int_t rc)
{
    ngx_http_ai_guard_limit_own_t  *own;

    own = ctx->own;

    if (own == NULL || rc == NGX_AGAIN || rc == NGX_ERROR) {
        return rc;
    }

    if (rc == NGX_DECLINED && alcf->mode != NGX_HTTP_AI_GUARD_MODE_MONITOR) {
        ngx_http_ai_guard_limit_own_untake(r, ctx);
    }

    ngx_http_ai_guard_limit_own_headers(ctx);

    if (rc == NGX_OK && own->rc != NGX_HTTP_AI_GUARD_LIMIT_OK) {
        return ngx_http_ai_guard_limiter_verdict(r, ctx, v, own->rc,
                                 &own->items[own->res.index],
                                 own->res.retry_ms,
                                 1 + ngx_http_ai_guard_limit_own_which(ctx));
    }

    return rc;
}


/* the zone decides: without Redis, with sync=<interval>, or fail=open */

static ngx_int_t
ngx_http_ai_guard_limiter_local(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v)
{
    int                                rc;
    size_t                             size;
    uint64_t                           now;
    ngx_uint_t                         i, n, why;
    ngx_http_ai_guard_zone_t          *zone;
    ngx_http_ai_guard_scope_t         *scope;
    ngx_http_ai_guard_main_conf_t     *amcf;
    ngx_http_ai_guard_scope_sync_t    *ss;
    ngx_http_ai_guard_limit_result_t   res;

    n = ctx->nitems;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    size = (amcf->redis && amcf->redis->sync)
           ? sizeof(ngx_http_ai_guard_scope_sync_t)
           : sizeof(ngx_http_ai_guard_scope_t);

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    scope = ngx_http_ai_guard_scope_get(zone, alcf, ctx, size, now, &why);

    if (scope == NULL) {
        if (why == NGX_HTTP_AI_GUARD_SCOPE_FULL) {
            /* refused for want of room; a tenant at its max= is not */
            zone->sh->refused++;
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        return ngx_http_ai_guard_limiter_refuse(r, alcf, ctx, v, why);
    }

    for (i = 0; i < n; i++) {
        ctx->items[i].counter = &scope->counters[ctx->items[i].kind];
    }

    rc = ngx_http_ai_guard_limit_reserve(ctx->items, n, now, &res);

    if (rc != NGX_HTTP_AI_GUARD_LIMIT_OK
        && alcf->mode == NGX_HTTP_AI_GUARD_MODE_MONITOR)
    {
        /* monitor mode: the request goes on, and so it is counted */
        ngx_http_ai_guard_limit_take(ctx->items, n);
        ctx->reserved = 1;
    }

    if (rc == NGX_HTTP_AI_GUARD_LIMIT_OK) {
        ctx->reserved = 1;
    }

    if (ctx->reserved) {
        /*
         * Held, the entry is not freed until the settlement (the zone
         * frees only entries that are fresh and held by none): the
         * settlement finds it here, without a second lookup.
         */
        scope->held++;
        ctx->scope_entry = scope;
        ngx_http_ai_guard_scope_fresh(scope, ctx->items, n, now);

        for (i = 0; i < n; i++) {
            if (ngx_http_ai_guard_limit_unit(ctx->items[i].kind) == 3) {
                ngx_http_ai_guard_budget_hold(
                    &scope->budget[ngx_http_ai_guard_budget_index(
                                                       ctx->items[i].kind)],
                    ctx->items[i].window, ctx->items[i].cost);
            }
        }
    }

    ss = ngx_http_ai_guard_scope_sync(amcf, scope);

    if (ss) {
        ss->used = now;

        if (ctx->reserved) {
            ngx_http_ai_guard_sync_count(ss, ctx->items, n, now, 0, 0, 0);
        }
    }

    ngx_http_ai_guard_limit_headers(ctx, now, NULL);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    for (i = 0; i < n; i++) {
        ctx->items[i].counter = NULL;
    }

    ngx_log_debug7(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard limit: %*s rc:%d kind:%s retry:%uLms "
                   "tokens:%uL reserved:%ui",
                   ngx_min(ctx->scope.len, 64), ctx->scope.data, rc,
                   ngx_http_ai_guard_limit_name(ctx->items[res.index].kind),
                   res.retry_ms, ctx->est_tokens, (ngx_uint_t) ctx->reserved);

    return ngx_http_ai_guard_limiter_verdict(r, ctx, v, rc,
                                             &ctx->items[res.index],
                                             res.retry_ms, 0);
}


/*
 * The scope's entry.  A value scope is the client's choice: a new one is
 * first counted against its tenant's max=, so that one tenant's values
 * cannot take another tenant's room.  NULL: refused, "why" says for what.
 */

static ngx_http_ai_guard_scope_t *
ngx_http_ai_guard_scope_get(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    size_t size, uint64_t now, ngx_uint_t *why)
{
    u_char                           *key, *last;
    size_t                            len;
    ngx_uint_t                        created;
    const u_char                     *tenant, *end;
    ngx_http_ai_guard_scope_t        *scope;
    ngx_http_ai_guard_scope_count_t  *count;

    key = ctx->scope.data;
    len = ctx->scope.len;

    *why = NGX_HTTP_AI_GUARD_SCOPE_FULL;

    if (key[0] != 'v' || ngx_http_ai_guard_zone_find(zone, key, len)) {
        return ngx_http_ai_guard_zone_get(zone, key, len, size, now, NULL);
    }

    /* "n" and the tenant's part of the "v" key: the tenant's count */

    last = key + len;
    end = ngx_http_ai_guard_part_read(key + 1, last, &tenant, &len);
    if (end == NULL) {
        return NULL;
    }

    key[0] = 'n';

    count = ngx_http_ai_guard_zone_get(zone, key, end - key,
                                       sizeof(ngx_http_ai_guard_scope_count_t),
                                       now, NULL);
    key[0] = 'v';

    if (count == NULL) {
        return NULL;
    }

    if (count->values >= alcf->limit_by_max) {
        *why = NGX_HTTP_AI_GUARD_SCOPE_MAX;
        return NULL;
    }

    /* counted first: a count of 0 is fresh, and making room may free it */

    count->values++;

    scope = ngx_http_ai_guard_zone_get(zone, key, last - key, size, now,
                                       &created);

    if (scope == NULL || !created) {
        count->values--;
    }

    return scope;
}


/*
 * No entry for a new scope: the zone is full of entries with state, or
 * the tenant has all the value scopes it may have.  Existing scopes keep
 * theirs; this one is refused before the upstream.
 */

static ngx_int_t
ngx_http_ai_guard_limiter_refuse(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v, ngx_uint_t why)
{
    ngx_http_ai_guard_main_conf_t  *amcf;

    ctx->nitems = 0;

    if (why == NGX_HTTP_AI_GUARD_SCOPE_MAX) {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_TOO_MANY_REQUESTS,
                                      "rate_limit_exceeded", NULL);
        ngx_str_set(&v->reason, "limit_by_max");

        v->message.data = ngx_pnalloc(r->pool, 160);
        if (v->message.data == NULL) {
            return NGX_ERROR;
        }

        v->message.len = ngx_snprintf(v->message.data, 160,
                                      "This API key's tenant already has "
                                      "the %ui distinct rate limit scopes it "
                                      "may have; please retry later.",
                                      alcf->limit_by_max)
                         - v->message.data;

        v->retry_ms = NGX_HTTP_AI_GUARD_MAX_RETRY_MS;
        v->retry = 1;

        return NGX_DECLINED;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (ctx->scope.len) {
        /* the key's own scope, before it, was told where it was made */
        ngx_http_ai_guard_zone_alert(
                                &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS],
                                r->connection->log, "the scope",
                                ctx->scope.data, ctx->scope.len);
    }

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "limiter_unavailable",
                                  "The rate limiter has no room for a new "
                                  "client now; please retry later.");
    ngx_str_set(&v->reason, "zone_full");

    v->retry_ms = NGX_HTTP_AI_GUARD_FULL_RETRY_MS;
    v->retry = 1;

    return NGX_DECLINED;
}


/* sync=strict: what the admission script answered */

static ngx_int_t
ngx_http_ai_guard_limiter_redis(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v)
{
    ngx_http_ai_guard_redis_reply_t  *res;

    res = &ctx->redis;

    if (res->rc == NGX_HTTP_AI_GUARD_REDIS_FAILED) {
        return ngx_http_ai_guard_limiter_unavailable(r, alcf, ctx, v);
    }

    if ((res->rc == NGX_HTTP_AI_GUARD_LIMIT_OK
         || alcf->mode == NGX_HTTP_AI_GUARD_MODE_MONITOR)
        && !ctx->leased)
    {
        /* taken in Redis: settled through the outbox */
        ctx->redis_reserved = 1;
    }

    ngx_http_ai_guard_limit_headers(ctx, 0, res);

    return ngx_http_ai_guard_limiter_verdict(r, ctx, v, (int) res->rc,
                                             &ctx->items[res->index],
                                             res->retry_ms, 0);
}


/* sync=lease: the node's slices decide, or one round trip */

static ngx_int_t
ngx_http_ai_guard_limiter_lease(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_guard_redis_lease_reserve(r, alcf, ctx);

    if (rc == NGX_OK && !ctx->redis_wait) {
        return ngx_http_ai_guard_limiter_redis(r, alcf, ctx, v);
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_ai_guard_limiter_unavailable(r, alcf, ctx, v);
    }

    return rc;
}


/* Redis is not there (or too slow): fail=open decides in the zone */

static ngx_int_t
ngx_http_ai_guard_limiter_unavailable(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v)
{
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (!amcf->redis->fail_closed) {
        return ngx_http_ai_guard_limiter_local(r, alcf, ctx, v);
    }

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "limiter_unavailable",
                                  "The rate limiter is unavailable; please "
                                  "retry shortly.");
    v->retry_ms = 1000;
    v->retry = 1;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_guard_limiter_verdict(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v, int rc,
    ngx_http_ai_guard_limit_item_t *it, uint64_t retry_ms, ngx_uint_t own)
{
    ngx_http_ai_guard_limit_kind_e  kind;

    if (rc == NGX_HTTP_AI_GUARD_LIMIT_OK) {
        return NGX_OK;
    }

    kind = it->kind;

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_TOO_MANY_REQUESTS,
                          (char *) ngx_http_ai_guard_limit_code(kind),
                          NULL);

    v->reason.data = (u_char *) ngx_http_ai_guard_limit_name(kind);
    v->reason.len = ngx_strlen(v->reason.data);

    if (rc != NGX_HTTP_AI_GUARD_LIMIT_NEVER) {
        v->retry_ms = retry_ms;
        v->retry = 1;
    }

    if (ngx_http_ai_guard_limit_message(r, ctx, v, rc, it, retry_ms, own)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_DECLINED;
}


/*
 * What a person reads in a refusal: which limit of which tier, its value
 * (money in dollars, not the ledger's pico-USD), and when to retry.
 */

static ngx_int_t
ngx_http_ai_guard_limit_message(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v, int rc,
    ngx_http_ai_guard_limit_item_t *it, uint64_t retry_ms, ngx_uint_t own)
{
    char                      *money;
    u_char                     limit[64], cost[64], wait[64], *l, *c, *w;
    u_char                     buf[NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD + 32];
    ngx_str_t                  whose;
    ngx_http_ai_guard_tier_t  *t;

    static char  *what[] = {
        "", "requests per minute", "requests per hour", "requests per day",
        "tokens per minute", "tokens per hour", "tokens per day",
        "tokens per month", "requests in flight", "daily budget",
        "monthly budget"
    };

    /* whose limit it is: its tier's, the key's own or its tenant's */

    t = (ctx->key && ctx->key->tier_conf) ? ctx->key->tier_conf : NULL;

    if (own == 1 + NGX_HTTP_AI_GUARD_OWN_KEY) {
        ngx_str_set(&whose, "this API key's own limits");

    } else if (own == 1 + NGX_HTTP_AI_GUARD_OWN_TENANT) {
        whose.data = buf;
        whose.len = ngx_snprintf(buf, sizeof(buf),
                                 "this API key's tenant \"%V\"",
                                 &ctx->key->tenant)
                    - buf;

    } else {
        whose.data = buf;
        whose.len = ngx_snprintf(buf, sizeof(buf),
                                 "this API key's tier \"%V\"",
                                 t ? &t->name : &ngx_http_ai_guard_dash)
                    - buf;
    }

    if (it->kind == NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY
        || it->kind == NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH)
    {
        money = "$";
        l = ngx_http_ai_guard_dollars(limit, (int64_t) it->limit);
        c = ngx_http_ai_guard_dollars(cost, (int64_t) it->cost);

    } else {
        money = "";
        l = ngx_sprintf(limit, "%uL", it->limit);
        c = ngx_sprintf(cost, "%uL", it->cost);
    }

    if (rc == NGX_HTTP_AI_GUARD_LIMIT_NEVER) {
        return ngx_http_ai_guard_verdict_message(r, v,
                   "This request alone, an estimated %s%*s%s with its "
                   "max_tokens, exceeds the %s (%V) of %V, %s%*s%s: ask for "
                   "fewer tokens with max_tokens.",
                   money, c - cost, cost, *money ? "" : " tokens",
                   what[it->kind], &v->reason, &whose, money, l - limit,
                   limit, *money ? "" : " tokens");
    }

    w = ngx_http_ai_guard_duration_format(wait, retry_ms);

    if (it->kind == NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY) {
        return ngx_http_ai_guard_verdict_message(r, v,
                   "Too many requests in flight (concurrency) for %V: the "
                   "limit is %*s. Please try again when one has finished.",
                   &whose, l - limit, limit);
    }

    if (*money) {
        return ngx_http_ai_guard_verdict_message(r, v,
                   "The %s of %V, $%*s, is spent (%V); it renews at %s. "
                   "Please try again in %*s.",
                   what[it->kind], &whose, l - limit, limit, &v->reason,
                   it->kind == NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY
                   ? "00:00 UTC" : "00:00 UTC on the 1st of the month",
                   w - wait, wait);
    }

    return ngx_http_ai_guard_verdict_message(r, v,
               "%s reached for %s (%V) of %V: the limit is %*s. Please try "
               "again in %*s.",
               ngx_strcmp(v->code, "insufficient_quota") == 0
               ? "Quota" : "Rate limit", what[it->kind], &v->reason, &whose,
               l - limit, limit, w - wait, wait);
}


/*
 * Dollars as a person reads them: the ledger's exact decimal, trailing
 * zeros cut down to cents ("5.00", "0.0003").
 */

static u_char *
ngx_http_ai_guard_dollars(u_char *buf, int64_t pico)
{
    u_char  *p, *dot;

    p = ngx_http_ai_guard_usd_format(buf, pico);

    dot = ngx_strlchr(buf, p, '.');

    if (dot == NULL) {
        return p;
    }

    while (p > dot + 3 && p[-1] == '0') {
        p--;
    }

    return p;
}


/*
 * Correct the reservation to what the request really used; runs once, at
 * the log phase or, on any path that skips it, from the pool cleanup.
 * With Redis, the usage and a reservation taken there go to the outbox.
 * A reserved scope is held, so its entry is still there, where the
 * reservation left its address.
 */

void
ngx_http_ai_guard_limiter_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    uint64_t                         now;
    ngx_uint_t                       i, strict, leased, crossed[2];
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_scope_t       *scope;
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_http_ai_guard_scope_sync_t  *ss;

    ngx_http_ai_guard_limit_own_settle(r, ctx);

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    strict = ctx->redis_reserved;
    leased = ctx->leased;

    if (amcf->redis) {
        ngx_http_ai_guard_redis_lease_settle(r, ctx);
        ngx_http_ai_guard_redis_settle(r, ctx);
    }

    if (!ctx->reserved) {
        if (strict || leased) {
            ngx_http_ai_guard_budgets_strict(r, ctx, leased && !strict);
        }

        return;
    }

    ctx->reserved = 0;

    now = ngx_http_ai_guard_now();
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    crossed[0] = 0;
    crossed[1] = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    scope = ctx->scope_entry;
    ctx->scope_entry = NULL;

    if (scope) {
        for (i = 0; i < ctx->nitems; i++) {
            ctx->items[i].counter = &scope->counters[ctx->items[i].kind];
        }

        ngx_http_ai_guard_limit_settle(ctx->items, ctx->nitems, now,
                                       ctx->final_tokens,
                                       (uint64_t) ngx_max(ctx->final_money,
                                                          0));

        ngx_http_ai_guard_scope_fresh(scope, ctx->items, ctx->nitems, now);

        ngx_http_ai_guard_budgets(ctx, scope, now, crossed);

        if (scope->held) {
            scope->held--;
        }

        ss = ngx_http_ai_guard_scope_sync(amcf, scope);

        if (ss) {
            ngx_http_ai_guard_sync_count(ss, ctx->items, ctx->nitems, now, 1,
                                         ctx->final_tokens,
                                         ctx->final_money);
        }

        for (i = 0; i < ctx->nitems; i++) {
            ctx->items[i].counter = NULL;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    for (i = 0; i < 2; i++) {
        if (crossed[i]) {
            ngx_http_ai_guard_budget_alert(r, ctx, i, crossed[i]);
        }
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard settle: %*s tokens:%uL of %uL reserved",
                   ngx_min(ctx->scope.len, 64), ctx->scope.data,
                   ctx->final_tokens, ctx->est_tokens);
}


/*
 * The scope's budgets as the settlement left them (spent, plus what the
 * requests in flight reserved): noted for their gauges, and the
 * thresholds they crossed taken, under the zone's mutex.  An entry that
 * remembers an alert outlives the alert's window.
 */

static void
ngx_http_ai_guard_budgets(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_scope_t *scope, uint64_t now, ngx_uint_t *crossed)
{
    uint64_t                           until;
    ngx_uint_t                         i, b;
    ngx_http_ai_guard_limit_item_t    *it;
    ngx_http_ai_guard_budget_state_t  *state;

    for (i = 0; i < ctx->nitems; i++) {
        it = &ctx->items[i];

        if (ngx_http_ai_guard_limit_unit(it->kind) != 3) {
            continue;
        }

        b = ngx_http_ai_guard_budget_index(it->kind);
        state = &scope->budget[b];

        ngx_http_ai_guard_budget_release(state, it->window, it->cost);

        if (it->counter->stamp != it->window) {
            continue;
        }

        /* spent: the counter, less what the requests in flight hold */

        ngx_http_ai_guard_budget_note(ctx, it->kind,
                              it->counter->level
                              - ngx_min(it->counter->level, state->held),
                              it->limit, it->window);

        crossed[b] = ngx_http_ai_guard_budget_crossed(ctx, b, state, now,
                                                      &until);

        if (crossed[b] && until > scope->fresh_at) {
            scope->fresh_at = until;
        }
    }
}


/*
 * sync=strict: the cluster's level of each budget is Redis's, as its
 * admission answered (the limit less what remained, this request's
 * reservation in it) and corrected by this request's real cost.
 * sync=lease ("leased"): the level the lease's settlement left in
 * ctx->redis.spent, from the node's slice and Redis's counter at the
 * slice's last call (src/ngx_http_ai_guard_redis_lease.c).  The
 * zone keeps only the alerts' state, in the scope's entry, made when a
 * threshold may be crossed; a zone with no room for it leaves Redis to
 * say which node alerts.
 */

static void
ngx_http_ai_guard_budgets_strict(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t leased)
{
    uint64_t                         level, until, now;
    ngx_uint_t                       i, b, crossed[2], watched;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_scope_t       *scope;
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_http_ai_guard_limit_item_t  *it;
    ngx_http_ai_guard_budget_state_t  none[2];

    watched = 0;

    for (i = 0; i < ctx->nitems; i++) {
        it = &ctx->items[i];

        if (ngx_http_ai_guard_limit_unit(it->kind) != 3) {
            continue;
        }

        if (leased) {
            level = ctx->redis.spent[i];

        } else {
            level = it->limit - ngx_min(ctx->redis.remaining[i], it->limit);
            level = level - ngx_min(level, it->cost);
            level = ngx_http_ai_guard_sat_add(level,
                                   (uint64_t) ngx_max(ctx->final_money, 0));
        }

        ngx_http_ai_guard_budget_note(ctx, it->kind, level, it->limit,
                                      it->window);

        watched |= ngx_http_ai_guard_budget_watched(ctx,
                                    ngx_http_ai_guard_budget_index(it->kind));
    }

    if (!watched) {
        return;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    now = ngx_http_ai_guard_now();

    ngx_memzero(none, sizeof(none));

    ngx_shmtx_lock(&zone->shpool->mutex);

    scope = ngx_http_ai_guard_zone_get(zone, ctx->scope.data, ctx->scope.len,
                                       sizeof(ngx_http_ai_guard_scope_t),
                                       now, NULL);

    for (b = 0; b < 2; b++) {
        crossed[b] = ngx_http_ai_guard_budget_crossed(ctx, b,
                                      scope ? &scope->budget[b] : &none[b],
                                      now, &until);

        if (scope && crossed[b] && until > scope->fresh_at) {
            scope->fresh_at = until;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    for (b = 0; b < 2; b++) {
        if (crossed[b]) {
            ngx_http_ai_guard_budget_alert(r, ctx, b, crossed[b]);
        }
    }
}


/*
 * When the scope is the same as a fresh one again: each counter drained
 * (a bucket) or its window over (a quota); the latest of them, and of
 * what was known before, since counters of other tiers may share it.
 */

static void
ngx_http_ai_guard_scope_fresh(ngx_http_ai_guard_scope_t *scope,
    ngx_http_ai_guard_limit_item_t *items, ngx_uint_t n, uint64_t now)
{
    uint64_t  t;

    t = ngx_http_ai_guard_limit_fresh_at(items, n, now);

    if (t > scope->fresh_at) {
        scope->fresh_at = t;
    }
}


/* the limits zone's policy: may this entry go, losing nothing */

static ngx_int_t
ngx_http_ai_guard_limiter_fresh(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_node_t *node, uint64_t now)
{
    u_char                           *key;
    ngx_uint_t                        k;
    ngx_http_ai_guard_scope_t        *scope;
    ngx_http_ai_guard_scope_sync_t   *ss;
    ngx_http_ai_guard_scope_count_t  *count;

    key = (u_char *) node->data + node->size;

    if (node->len && key[0] == 'n') {
        count = (ngx_http_ai_guard_scope_count_t *) node->data;
        return count->values == 0;
    }

    scope = (ngx_http_ai_guard_scope_t *) node->data;

    if (scope->held
        || scope->counters[NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY].level
        || now < scope->fresh_at)
    {
        return 0;
    }

    if (node->size >= sizeof(ngx_http_ai_guard_scope_sync_t)) {
        ss = (ngx_http_ai_guard_scope_sync_t *) scope;

        for (k = 0; k < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; k++) {
            if (ss->pending[k] || ss->sent[k]) {
                return 0;
            }
        }
    }

    return 1;
}


/* a value scope that goes is no longer counted against its tenant */

static void
ngx_http_ai_guard_limiter_free(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_node_t *node)
{
    u_char                           *key, nkey[NGX_HTTP_AI_GUARD_PART_LEN(
                                          NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD)
                                          + 1];
    size_t                            len;
    const u_char                     *tenant, *end;
    ngx_http_ai_guard_scope_count_t  *count;

    key = (u_char *) node->data + node->size;

    if (node->len == 0 || key[0] != 'v') {
        return;
    }

    end = ngx_http_ai_guard_part_read(key + 1, key + node->len, &tenant,
                                      &len);

    if (end == NULL || (size_t) (end - key) > sizeof(nkey)) {
        return;
    }

    ngx_memcpy(nkey, key, end - key);
    nkey[0] = 'n';

    count = ngx_http_ai_guard_zone_find(zone, nkey, end - key);

    if (count && count->values) {
        count->values--;
    }
}




/*
 * The scope's key: "k" and the key's id, "t" and the tenant, "v", the
 * tenant and the value (a value is the client's: one tenant's "alice" is
 * not another's), or "g" and the value with "global".
 */

ngx_int_t
ngx_http_ai_guard_scope_key(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    u_char                   *p;
    ngx_str_t                 value;
    ngx_http_ai_guard_str_t  *id;

    ngx_str_null(&value);

    if (alcf->limit_by == NGX_HTTP_AI_GUARD_LIMIT_BY_VALUE) {
        if (ngx_http_complex_value(r, alcf->limit_by_value, &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        value.len = ngx_min(value.len, NGX_HTTP_AI_GUARD_SCOPE_VALUE_MAX);
    }

    id = (alcf->limit_by == NGX_HTTP_AI_GUARD_LIMIT_BY_KEY)
         ? &ctx->key->id : &ctx->key->tenant;

    p = ngx_pnalloc(r->pool, 1 + NGX_HTTP_AI_GUARD_PART_LEN(id->len)
                             + NGX_HTTP_AI_GUARD_PART_LEN(value.len));
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->scope.data = p;

    switch (alcf->limit_by) {

    case NGX_HTTP_AI_GUARD_LIMIT_BY_KEY:
        *p++ = 'k';
        p = ngx_http_ai_guard_part_write(p, id->data, id->len);
        break;

    case NGX_HTTP_AI_GUARD_LIMIT_BY_TENANT:
        *p++ = 't';
        p = ngx_http_ai_guard_part_write(p, id->data, id->len);
        break;

    default: /* NGX_HTTP_AI_GUARD_LIMIT_BY_VALUE */

        if (alcf->limit_by_global) {
            *p++ = 'g';

        } else {
            *p++ = 'v';
            p = ngx_http_ai_guard_part_write(p, id->data, id->len);
        }

        p = ngx_http_ai_guard_part_write(p, value.data, value.len);
    }

    ctx->scope.len = p - ctx->scope.data;

    return NGX_OK;
}


/*
 * What remains of every limit, and when all of it is back: OpenAI's
 * x-ratelimit-* headers speak of requests and tokens, the shortest window
 * of each the tier limits; the tenant's gauge of every limit.
 */

static void
ngx_http_ai_guard_limit_headers(ngx_http_ai_guard_ctx_t *ctx, uint64_t now,
    ngx_http_ai_guard_redis_reply_t *res)
{
    ngx_uint_t                       i, unit;
    ngx_http_ai_guard_said_t        *said;
    ngx_http_ai_guard_limit_item_t  *it;

    /* sync=strict: Redis's counters answered; else the zone's */

    said = ctx->said;
    said->at = res ? ngx_http_ai_guard_now() : now;
    ctx->has_remaining = 1;

    for (i = 0; i < ctx->nitems; i++) {
        it = &ctx->items[i];

        if (res) {
            said->remaining[i] = res->remaining[i];
            said->reset_ms[i] = res->reset_ms[i];

        } else {
            said->remaining[i] = ngx_http_ai_guard_limit_remaining(it, now);
            said->reset_ms[i] = ngx_http_ai_guard_limit_reset_ms(it, now);
        }

        unit = ngx_http_ai_guard_limit_unit(it->kind);

        if (unit == 1 && !ctx->has_req_limit
            && it->kind != NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY)
        {
            ctx->has_req_limit = 1;
            ctx->req_limit = it->limit;
            ctx->req_remaining = said->remaining[i];
            ctx->req_reset_ms = said->reset_ms[i];

        } else if (unit == 2 && !ctx->has_tok_limit) {
            ctx->has_tok_limit = 1;
            ctx->tok_limit = it->limit;
            ctx->tok_remaining = said->remaining[i];
            ctx->tok_reset_ms = said->reset_ms[i];
        }
    }
}

