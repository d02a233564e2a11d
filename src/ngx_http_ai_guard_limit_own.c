
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * A key's own limits and its tenant's, reserved before its tier's: every
 * scope must admit a request.  The key's and the tenant's are reserved
 * first, under the zone's mutex, all of both or none; when the tier's
 * scope then refuses, their reservation is given back whole
 * (limit_untake()), so a refused request costs nothing in any.  Always
 * the node's zone, with or without ai_guard_redis: docs/limits.md says
 * what that means.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_str.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_limit_own.h"


static void ngx_http_ai_guard_limit_own_end(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t settle);
static void ngx_http_ai_guard_limit_own_hold(ngx_http_ai_guard_limit_own_t *own,
    uint64_t now, ngx_uint_t hold);
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
 * The name of a key's own scope in the limits zone, "K" and its id, or
 * of its tenant's, "T" and the tenant: no other key's, no other's.
 */

ngx_int_t
ngx_http_ai_guard_limit_own_scope(ngx_pool_t *pool,
    ngx_http_ai_guard_key_t *key, ngx_uint_t s, ngx_str_t *scope)
{
    u_char                   *p;
    ngx_http_ai_guard_str_t  *name;

    static u_char  kind[2] = { 'K', 'T' };

    name = (s == NGX_HTTP_AI_GUARD_OWN_KEY) ? &key->id : &key->tenant;

    p = ngx_pnalloc(pool, 1 + NGX_HTTP_AI_GUARD_PART_LEN(name->len));
    if (p == NULL) {
        return NGX_ERROR;
    }

    scope->data = p;
    *p++ = kind[s];
    p = ngx_http_ai_guard_part_write(p, name->data, name->len);
    scope->len = p - scope->data;

    return NGX_OK;
}


/*
 * The key's scope and its tenant's, whichever has limits: reserved at
 * once, all of both or nothing.  NGX_OK: admitted and reserved (or
 * refused in monitor mode, reserved all the same: own->rc says so);
 * NGX_DECLINED: refused, own->rc and own->res say by which limit;
 * NGX_BUSY: no room for an entry.
 */

ngx_int_t
ngx_http_ai_guard_limit_own_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    const uint64_t *tenant)
{
    uint64_t                        now;
    ngx_uint_t                      i, s, n;
    ngx_http_ai_guard_zone_t       *zone;
    ngx_http_ai_guard_limit_own_t  *own;
    ngx_http_ai_guard_main_conf_t  *amcf;

    own = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_limit_own_t));
    if (own == NULL) {
        return NGX_ERROR;
    }

    for (s = 0; s < 2; s++) {
        if ((s == NGX_HTTP_AI_GUARD_OWN_KEY ? ctx->key->limits : tenant)
            == NULL)
        {
            continue;
        }

        n = ngx_http_ai_guard_limit_items(ctx,
                                          s == NGX_HTTP_AI_GUARD_OWN_KEY
                                          ? ctx->key->limits : tenant,
                                          &own->items[own->n]);

        for (i = own->n; i < own->n + n; i++) {
            own->which[i] = (u_char) s;
        }

        own->n += n;

        if (ngx_http_ai_guard_limit_own_scope(r->pool, ctx->key, s,
                                              &own->scope[s])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ctx->own = own;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (s = 0; s < 2; s++) {
        if (own->scope[s].len == 0) {
            continue;
        }

        own->entry[s] = ngx_http_ai_guard_zone_get(zone, own->scope[s].data,
                                              own->scope[s].len,
                                              sizeof(ngx_http_ai_guard_scope_t),
                                              now, NULL);
        if (own->entry[s] == NULL) {
            break;
        }

        /* pinned: making room for the tenant's must not free the key's */
        own->entry[s]->held++;
    }

    for (i = 0; i < 2; i++) {
        if (own->entry[i]) {
            own->entry[i]->held--;
        }
    }

    if (s < 2) {
        zone->sh->refused++;
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_http_ai_guard_zone_alert(zone, r->connection->log,
                                     "the key's or tenant's own scope",
                                     own->scope[s].data, own->scope[s].len);
        own->entry[0] = NULL;
        own->entry[1] = NULL;
        return NGX_BUSY;
    }

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

    for (i = 0; i < own->n; i++) {
        own->remaining[i] = ngx_http_ai_guard_limit_remaining(&own->items[i],
                                                              now);
        own->reset_ms[i] = ngx_http_ai_guard_limit_reset_ms(&own->items[i],
                                                            now);
    }

    /* held until the settlement, which finds them here */

    if (own->reserved) {
        ngx_http_ai_guard_limit_own_hold(own, now, 1);

    } else {
        own->entry[0] = NULL;
        own->entry[1] = NULL;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard limit: key's and tenant's own, rc:%d kind:%s "
                   "scope:%ui reserved:%ui", own->rc,
                   ngx_http_ai_guard_limit_name(
                       own->items[own->res.index].kind),
                   (ngx_uint_t) own->which[own->res.index],
                   (ngx_uint_t) own->reserved);

    if (own->rc != NGX_HTTP_AI_GUARD_LIMIT_OK && !own->reserved) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the scope that refused: the key's own, or its tenant's */

ngx_uint_t
ngx_http_ai_guard_limit_own_which(ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_http_ai_guard_limit_own_t  *own;

    own = ctx->own;

    return own->which[own->res.index];
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

    } else {
        ngx_http_ai_guard_limit_untake(own->items, own->n, now);
    }

    ngx_http_ai_guard_limit_own_hold(own, now, 0);

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
    ngx_uint_t                       i, req, tok, unit, bit;
    ngx_http_ai_guard_limit_own_t   *own;
    ngx_http_ai_guard_limit_item_t  *it;

    own = ctx->own;

    if (own == NULL) {
        return;
    }

    /* of each scope its first request window, and its first token one */

    req = 0;
    tok = 0;

    for (i = 0; i < own->n; i++) {
        it = &own->items[i];
        unit = ngx_http_ai_guard_limit_unit(it->kind);
        bit = 1 << own->which[i];

        if (unit == 1 && !(req & bit)
            && it->kind != NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY)
        {
            req |= bit;

            if (!ctx->has_req_limit
                || own->remaining[i] < ctx->req_remaining)
            {
                ctx->has_req_limit = 1;
                ctx->req_limit = it->limit;
                ctx->req_remaining = own->remaining[i];
                ctx->req_reset_ms = own->reset_ms[i];
            }

        } else if (unit == 2 && !(tok & bit)) {
            tok |= bit;

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


/*
 * The entries are held while the reservation is (hold), and no more when
 * it ends; either way each is fresh no sooner than its counters.
 */

static void
ngx_http_ai_guard_limit_own_hold(ngx_http_ai_guard_limit_own_t *own,
    uint64_t now, ngx_uint_t hold)
{
    ngx_uint_t                  s;
    ngx_http_ai_guard_scope_t  *e;

    ngx_http_ai_guard_limit_own_bind(own, 1);

    for (s = 0; s < 2; s++) {
        e = own->entry[s];

        if (e == NULL) {
            continue;
        }

        e->fresh_at = ngx_max(e->fresh_at,
                              ngx_http_ai_guard_limit_fresh_at(own->items,
                                                               own->n, now));
        if (hold) {
            e->held++;

        } else {
            if (e->held) {
                e->held--;
            }

            own->entry[s] = NULL;
        }
    }

    ngx_http_ai_guard_limit_own_bind(own, 0);
}


/* the items' counters are the entry's while the mutex is held, only */

static void
ngx_http_ai_guard_limit_own_bind(ngx_http_ai_guard_limit_own_t *own,
    ngx_uint_t bind)
{
    ngx_uint_t                  i;
    ngx_http_ai_guard_scope_t  *e;

    for (i = 0; i < own->n; i++) {
        e = own->entry[own->which[i]];

        own->items[i].counter = (bind && e) ? &e->counters[own->items[i].kind]
                                            : NULL;
    }
}
