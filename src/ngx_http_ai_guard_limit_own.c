
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * A key's own limits, reserved before its tier's: the key's scope and the
 * tier's must both admit a request.  The key's is reserved first, under
 * the zone's mutex, all of its limits or none; when the tier's scope then
 * refuses, the key's reservation is given back whole (limit_untake()), so
 * a refused request costs nothing in either.  Always the node's zone,
 * with or without ai_guard_redis: docs/limits.md says what that means.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_str.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_limit_own.h"


static void ngx_http_ai_guard_limit_own_end(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t settle);
static void ngx_http_ai_guard_limit_own_bind(ngx_http_ai_guard_limit_own_t *own,
    ngx_uint_t bind);


/*
 * The items of a request for the limits given (by kind, 0: none): what
 * each costs, a request, its token estimate or its estimated price.
 */

ngx_uint_t
ngx_http_ai_guard_limit_items(ngx_http_ai_guard_ctx_t *ctx,
    const uint64_t *limits, ngx_http_ai_guard_limit_item_t *items)
{
    ngx_uint_t                       i, n;
    ngx_http_ai_guard_limit_item_t  *it;

    n = 0;

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        if (limits[i] == 0) {
            continue;
        }

        it = &items[n++];

        it->kind = i;
        it->limit = limits[i];
        it->window = 0;
        it->counter = NULL;

        switch (ngx_http_ai_guard_limit_unit(i)) {

        case 1:
            it->cost = 1;
            break;

        case 2:
            it->cost = ctx->est_tokens;
            break;

        default:
            it->cost = (uint64_t) ngx_max(ctx->est_money, 0);
        }
    }

    return n;
}


/*
 * NGX_OK: admitted and reserved (or refused in monitor mode, reserved
 * all the same: own->rc says so); NGX_DECLINED: refused, own->rc and
 * own->res say by which limit; NGX_BUSY: no room for the key's entry.
 */

ngx_int_t
ngx_http_ai_guard_limit_own_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    u_char                         *p;
    uint64_t                        now;
    ngx_uint_t                      i;
    ngx_http_ai_guard_zone_t       *zone;
    ngx_http_ai_guard_scope_t      *entry;
    ngx_http_ai_guard_limit_own_t  *own;
    ngx_http_ai_guard_main_conf_t  *amcf;

    own = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_limit_own_t));
    if (own == NULL) {
        return NGX_ERROR;
    }

    own->n = ngx_http_ai_guard_limit_items(ctx, ctx->key->limits,
                                           own->items);

    /* "K" and the id: no other key's scope, nor any limit_by scope */

    p = ngx_pnalloc(r->pool, 1 + NGX_HTTP_AI_GUARD_PART_LEN(
                                                     ctx->key->id.len));
    if (p == NULL) {
        return NGX_ERROR;
    }

    own->scope.data = p;
    *p++ = 'K';
    p = ngx_http_ai_guard_part_write(p, ctx->key->id.data, ctx->key->id.len);
    own->scope.len = p - own->scope.data;

    ctx->own = own;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    entry = ngx_http_ai_guard_zone_get(zone, own->scope.data, own->scope.len,
                                       sizeof(ngx_http_ai_guard_scope_t),
                                       now, NULL);
    if (entry == NULL) {
        zone->sh->refused++;
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_http_ai_guard_zone_alert(zone, r->connection->log,
                                     "the key's own scope", own->scope.data,
                                     own->scope.len);
        return NGX_BUSY;
    }

    own->entry = entry;
    ngx_http_ai_guard_limit_own_bind(own, 1);

    own->rc = ngx_http_ai_guard_limit_reserve(own->items, own->n, now,
                                              &own->res);

    if (own->rc != NGX_HTTP_AI_GUARD_LIMIT_OK
        && alcf->mode == NGX_HTTP_AI_GUARD_MODE_MONITOR)
    {
        ngx_http_ai_guard_limit_take(own->items, own->n);
        own->reserved = 1;
    }

    if (own->rc == NGX_HTTP_AI_GUARD_LIMIT_OK) {
        own->reserved = 1;
    }

    if (own->reserved) {
        /* held until the settlement, which finds it here */
        entry->held++;
        entry->fresh_at = ngx_max(entry->fresh_at,
                                  ngx_http_ai_guard_limit_fresh_at(
                                      own->items, own->n, now));
    }

    for (i = 0; i < own->n; i++) {
        own->remaining[i] = ngx_http_ai_guard_limit_remaining(&own->items[i],
                                                              now);
        own->reset_ms[i] = ngx_http_ai_guard_limit_reset_ms(&own->items[i],
                                                            now);
    }

    ngx_http_ai_guard_limit_own_bind(own, 0);

    if (!own->reserved) {
        own->entry = NULL;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard limit: key's own %*s rc:%d kind:%s",
                   ngx_min(own->scope.len, 64),
                   own->scope.data, own->rc,
                   ngx_http_ai_guard_limit_name(
                       own->items[own->res.index].kind));

    if (own->rc != NGX_HTTP_AI_GUARD_LIMIT_OK && !own->reserved) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the tier's scope refused: the key's reservation goes back whole */

void
ngx_http_ai_guard_limit_own_untake(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_http_ai_guard_limit_own_end(r, ctx, 0);
}


/* the request's real usage, as the tier's scope settles it */

void
ngx_http_ai_guard_limit_own_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_http_ai_guard_limit_own_end(r, ctx, 1);
}


/* a reservation ends: settled, or given back; the entry is held no more */

static void
ngx_http_ai_guard_limit_own_end(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t settle)
{
    uint64_t                        now;
    ngx_http_ai_guard_zone_t       *zone;
    ngx_http_ai_guard_limit_own_t  *own;
    ngx_http_ai_guard_main_conf_t  *amcf;

    own = ctx->own;

    if (own == NULL || !own->reserved) {
        return;
    }

    own->reserved = 0;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_ai_guard_limit_own_bind(own, 1);

    if (settle) {
        ngx_http_ai_guard_limit_settle(own->items, own->n, now,
                                       ctx->final_tokens,
                                       (uint64_t) ngx_max(ctx->final_money,
                                                          0));
        own->entry->fresh_at = ngx_max(own->entry->fresh_at,
                                       ngx_http_ai_guard_limit_fresh_at(
                                           own->items, own->n, now));

    } else {
        ngx_http_ai_guard_limit_untake(own->items, own->n, now);
    }

    ngx_http_ai_guard_limit_own_bind(own, 0);

    if (own->entry->held) {
        own->entry->held--;
    }

    own->entry = NULL;

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/*
 * The x-ratelimit-* headers tell the tightest scope: of the request
 * window and of the token window, the one with the least left, the
 * tier's when they are even.
 */

void
ngx_http_ai_guard_limit_own_headers(ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_uint_t                       i, req, tok, unit;
    ngx_http_ai_guard_limit_own_t   *own;
    ngx_http_ai_guard_limit_item_t  *it;

    own = ctx->own;

    if (own == NULL) {
        return;
    }

    req = 0;
    tok = 0;

    for (i = 0; i < own->n; i++) {
        it = &own->items[i];
        unit = ngx_http_ai_guard_limit_unit(it->kind);

        if (unit == 1 && !req
            && it->kind != NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY)
        {
            req = 1;

            if (!ctx->has_req_limit
                || own->remaining[i] < ctx->req_remaining)
            {
                ctx->has_req_limit = 1;
                ctx->req_limit = it->limit;
                ctx->req_remaining = own->remaining[i];
                ctx->req_reset_ms = own->reset_ms[i];
            }

        } else if (unit == 2 && !tok) {
            tok = 1;

            if (!ctx->has_tok_limit
                || own->remaining[i] < ctx->tok_remaining)
            {
                ctx->has_tok_limit = 1;
                ctx->tok_limit = it->limit;
                ctx->tok_remaining = own->remaining[i];
                ctx->tok_reset_ms = own->reset_ms[i];
            }
        }
    }
}


/* the items' counters are the entry's while the mutex is held, only */

static void
ngx_http_ai_guard_limit_own_bind(ngx_http_ai_guard_limit_own_t *own,
    ngx_uint_t bind)
{
    ngx_uint_t  i;

    for (i = 0; i < own->n; i++) {
        own->items[i].counter = bind
                                ? &own->entry->counters[own->items[i].kind]
                                : NULL;
    }
}
