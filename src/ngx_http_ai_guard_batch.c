
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_limit.h"
#include "ngx_http_ai_guard_price.h"
#include "ngx_http_ai_guard_batch.h"


static void ngx_http_ai_guard_batch_add_usage(ngx_http_ai_guard_batch_t *b,
    const ngx_http_ai_guard_batch_rec_t *rec);
static void ngx_http_ai_guard_batch_add_items(ngx_http_ai_guard_batch_t *b,
    const ngx_http_ai_guard_batch_rec_t *rec);
static int ngx_http_ai_guard_batch_str_eq(
    const ngx_http_ai_guard_batch_str_t *a,
    const ngx_http_ai_guard_batch_str_t *b);
static int64_t ngx_http_ai_guard_batch_delta_add(int64_t a, int64_t b);


size_t
ngx_http_ai_guard_batch_rec_size(const ngx_http_ai_guard_batch_rec_t *rec)
{
    return sizeof(ngx_http_ai_guard_batch_rec_t)
           + rec->nitems * sizeof(ngx_http_ai_guard_batch_item_t)
           + rec->tenant_len + rec->key_len + rec->model_len
           + rec->customer_len + rec->scope_len;
}


void
ngx_http_ai_guard_batch_count(const ngx_http_ai_guard_batch_rec_t **recs,
    size_t n, size_t *nusage, size_t *ncorr)
{
    size_t  i;

    *nusage = 0;
    *ncorr = 0;

    for (i = 0; i < n; i++) {
        *nusage += recs[i]->usage ? 1 : 0;
        *ncorr += recs[i]->nitems;
    }
}


/*
 * A batch is at most a few hundred records of a few tenants: a search
 * from the newest row back finds a busy tenant's row at once, and needs
 * no memory but the caller's arrays.
 */

void
ngx_http_ai_guard_batch_aggregate(ngx_http_ai_guard_batch_t *b,
    const ngx_http_ai_guard_batch_rec_t **recs, size_t n)
{
    size_t  i, j;

    b->nusage = 0;
    b->ncorr = 0;

    for (i = 0; i < n; i++) {
        if (recs[i]->usage) {
            ngx_http_ai_guard_batch_add_usage(b, recs[i]);
        }

        ngx_http_ai_guard_batch_add_items(b, recs[i]);
    }

    /* corrections that cancel out leave the counter as it is */

    for (i = 0, j = 0; i < b->ncorr; i++) {
        if (b->corr[i].delta != 0) {
            b->corr[j++] = b->corr[i];
        }
    }

    b->ncorr = j;
}


static void
ngx_http_ai_guard_batch_add_usage(ngx_http_ai_guard_batch_t *b,
    const ngx_http_ai_guard_batch_rec_t *rec)
{
    size_t                            j;
    const u_char                     *p;
    ngx_http_ai_guard_batch_usage_t  *u, ut;

    p = (const u_char *) (rec + 1)
        + rec->nitems * sizeof(ngx_http_ai_guard_batch_item_t);

    ut.day = rec->day;
    ut.tenant.data = p;
    ut.tenant.len = rec->tenant_len;
    ut.key.data = ut.tenant.data + ut.tenant.len;
    ut.key.len = rec->key_len;
    ut.model.data = ut.key.data + ut.key.len;
    ut.model.len = rec->model_len;
    ut.customer.data = ut.model.data + ut.model.len;
    ut.customer.len = rec->customer_len;

    for (j = b->nusage; j > 0; j--) {
        u = &b->usage[j - 1];

        if (u->day == ut.day
            && ngx_http_ai_guard_batch_str_eq(&u->tenant, &ut.tenant)
            && ngx_http_ai_guard_batch_str_eq(&u->key, &ut.key)
            && ngx_http_ai_guard_batch_str_eq(&u->model, &ut.model)
            && ngx_http_ai_guard_batch_str_eq(&u->customer, &ut.customer))
        {
            break;
        }
    }

    if (j == 0) {
        ut.requests = 0;
        ut.input = 0;
        ut.output = 0;
        ut.cached = 0;
        ut.estimated = 0;
        ut.cost = 0;
        ut.reasoning = 0;
        ut.cache_write = 0;

        b->usage[b->nusage++] = ut;
        j = b->nusage;
    }

    u = &b->usage[j - 1];

    u->requests = ngx_http_ai_guard_sat_add(u->requests, 1);
    u->input = ngx_http_ai_guard_sat_add(u->input, rec->input);
    u->output = ngx_http_ai_guard_sat_add(u->output, rec->output);
    u->cached = ngx_http_ai_guard_sat_add(u->cached, rec->cached);
    u->estimated = ngx_http_ai_guard_sat_add(u->estimated, rec->estimated);
    u->cost = ngx_http_ai_guard_pico_add(u->cost, rec->cost);
    u->reasoning = ngx_http_ai_guard_sat_add(u->reasoning, rec->reasoning);
    u->cache_write = ngx_http_ai_guard_sat_add(u->cache_write,
                                               rec->cache_write);
}


static void
ngx_http_ai_guard_batch_add_items(ngx_http_ai_guard_batch_t *b,
    const ngx_http_ai_guard_batch_rec_t *rec)
{
    size_t                                 j, k;
    ngx_http_ai_guard_batch_str_t          scope;
    ngx_http_ai_guard_batch_corr_t        *c;
    const ngx_http_ai_guard_batch_item_t  *it;

    it = (const ngx_http_ai_guard_batch_item_t *) (rec + 1);

    scope.data = (const u_char *) (it + rec->nitems) + rec->tenant_len
                 + rec->key_len + rec->model_len + rec->customer_len;
    scope.len = rec->scope_len;

    for (k = 0; k < rec->nitems; k++) {

        for (j = b->ncorr; j > 0; j--) {
            c = &b->corr[j - 1];

            if (c->kind == it[k].kind && c->limit == it[k].limit
                && c->window == it[k].window
                && ngx_http_ai_guard_batch_str_eq(&c->scope, &scope))
            {
                break;
            }
        }

        if (j == 0) {
            c = &b->corr[b->ncorr++];

            c->scope = scope;
            c->kind = it[k].kind;
            c->limit = it[k].limit;
            c->window = it[k].window;
            c->delta = 0;

            j = b->ncorr;
        }

        c = &b->corr[j - 1];
        c->delta = ngx_http_ai_guard_batch_delta_add(c->delta, it[k].delta);
    }
}


static int
ngx_http_ai_guard_batch_str_eq(const ngx_http_ai_guard_batch_str_t *a,
    const ngx_http_ai_guard_batch_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}


/* a delta stays within what sat_delta() gives: -INT64_MAX to INT64_MAX */

static int64_t
ngx_http_ai_guard_batch_delta_add(int64_t a, int64_t b)
{
    int64_t  r;

    if (__builtin_add_overflow(a, b, &r)) {
        return (b > 0) ? INT64_MAX : -INT64_MAX;
    }

    return (r < -INT64_MAX) ? -INT64_MAX : r;
}
