
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_limit_module.h"
#include "ngx_http_ai_guard_series.h"
#include "ngx_http_ai_guard_usage_module.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_ctx.h"


static void ngx_http_ai_guard_cleanup(void *data);


ngx_http_ai_guard_ctx_t *
ngx_http_ai_guard_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_guard_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        /* an internal redirect clears module contexts; the cleanup stays */

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_ai_guard_cleanup) {
                ctx = cln->data;
                break;
            }
        }
    }

    return ctx;
}


ngx_http_ai_guard_ctx_t *
ngx_http_ai_guard_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_ai_guard_ctx_t  *ctx;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_ai_guard_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;

    ngx_memzero(ctx, sizeof(ngx_http_ai_guard_ctx_t));

    ctx->request = r;
    ctx->start_ms = (uint64_t) r->start_sec * 1000 + r->start_msec;

    cln->handler = ngx_http_ai_guard_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_ai_guard_module);

    return ctx;
}


/*
 * The request is over on every path (normal end, client abort, upstream
 * error, timeout): what the request holds is given back here.
 */

static void
ngx_http_ai_guard_cleanup(void *data)
{
    ngx_http_ai_guard_ctx_t  *ctx = data;

    /* a path that skipped the log phase still settles and is counted */
    ngx_http_ai_guard_finish(ctx->request, ctx);

    if (ctx->parser) {
        ngx_http_ai_guard_request_free(ctx->parser);
        ctx->parser = NULL;
    }
}


/*
 * The log phase, first of its handlers so that access_log sees the
 * variables: the request's real usage settles its reservation.
 */

ngx_int_t
ngx_http_ai_guard_log_handler(ngx_http_request_t *r)
{
    ngx_http_ai_guard_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_ai_guard_get_ctx(r);

    if (ctx != NULL) {
        ngx_http_ai_guard_finish(r, ctx);
    }

    return NGX_OK;
}


void
ngx_http_ai_guard_finish(ngx_http_request_t *r, ngx_http_ai_guard_ctx_t *ctx)
{
    uint64_t  now;

    if (ctx->finished) {
        return;
    }

    ctx->finished = 1;

    /* nginx's clock is the wall's: it may step back */

    now = ngx_http_ai_guard_now();
    ctx->response_ms = (now > ctx->start_ms) ? now - ctx->start_ms : 0;

    if (!ctx->upstream
        && ctx->decision != NGX_HTTP_AI_GUARD_REJECT
        && ngx_http_ai_guard_upstream_sent(r))
    {
        /*
         * The upstream has the request, though no answer of its came
         * through: a timeout, a reset, a client gone before the header.
         * The provider bills it all the same.
         */
        ctx->upstream = 1;
    }

    if (ctx->upstream) {
        ngx_http_ai_guard_meter_final(r, ctx);
    }

    ngx_http_ai_guard_record(r, ctx);

    ngx_http_ai_guard_limiter_settle(r, ctx);

    /* what the settlement left of the scope's budgets, for their gauges */

    if (ctx->budget[0].period || ctx->budget[1].period) {
        ngx_http_ai_guard_record_budget(r, ctx);
    }

    if (ctx->in_flight) {
        ngx_http_ai_guard_in_flight(r, ctx, -1);
    }
}
