
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard.h"


static ngx_int_t ngx_http_ai_guard_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_guard_add_header(ngx_http_request_t *r,
    char *name, u_char *value, size_t len);
static ngx_int_t ngx_http_ai_guard_add_number(ngx_http_request_t *r,
    char *name, uint64_t n);
static ngx_int_t ngx_http_ai_guard_add_duration(ngx_http_request_t *r,
    char *name, uint64_t ms);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


ngx_int_t
ngx_http_ai_guard_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_guard_header_filter;

    return NGX_OK;
}


/*
 * Every guarded response, 200s, 429s and streams alike, carries OpenAI's
 * rate-limit headers, so the clients built on its SDKs back off by
 * themselves.
 */

static ngx_int_t
ngx_http_ai_guard_header_filter(ngx_http_request_t *r)
{
    ngx_http_ai_guard_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_guard_module);

    if (ctx == NULL) {
        return ngx_http_next_header_filter(r);
    }

    if (ctx->has_req_limit
        && (ngx_http_ai_guard_add_number(r, "x-ratelimit-limit-requests",
                                         ctx->req_limit)
            != NGX_OK
            || ngx_http_ai_guard_add_number(r,
                                            "x-ratelimit-remaining-requests",
                                            ctx->req_remaining)
               != NGX_OK
            || ngx_http_ai_guard_add_duration(r,
                                              "x-ratelimit-reset-requests",
                                              ctx->req_reset_ms)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ctx->has_tok_limit
        && (ngx_http_ai_guard_add_number(r, "x-ratelimit-limit-tokens",
                                         ctx->tok_limit)
            != NGX_OK
            || ngx_http_ai_guard_add_number(r,
                                            "x-ratelimit-remaining-tokens",
                                            ctx->tok_remaining)
               != NGX_OK
            || ngx_http_ai_guard_add_duration(r, "x-ratelimit-reset-tokens",
                                              ctx->tok_reset_ms)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ctx->verdict.retry
        && r->headers_out.status == NGX_HTTP_TOO_MANY_REQUESTS
        && (ngx_http_ai_guard_add_number(r, "retry-after",
                          ngx_http_ai_guard_retry_after(ctx->verdict.retry_ms))
            != NGX_OK
            || ngx_http_ai_guard_add_number(r, "retry-after-ms",
                                            ctx->verdict.retry_ms)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_ai_guard_add_header(ngx_http_request_t *r, char *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_add_number(ngx_http_request_t *r, char *name, uint64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_ai_guard_add_header(r, name, p,
                                        ngx_sprintf(p, "%uL", n) - p);
}


static ngx_int_t
ngx_http_ai_guard_add_duration(ngx_http_request_t *r, char *name,
    uint64_t ms)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_HTTP_AI_GUARD_DURATION_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_ai_guard_add_header(r, name, p,
                                ngx_http_ai_guard_duration_format(p, ms) - p);
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
    ngx_uint_t  status;

    if (!ctx->reserved) {
        return;
    }

    status = r->headers_out.status;

    /*
     * Until the meter reads the upstream's own usage, a request that
     * succeeded is charged its estimate; one that failed (an error
     * status, a timeout, a client gone) costs its tenant nothing.
     */

    if (status >= NGX_HTTP_OK && status < NGX_HTTP_BAD_REQUEST
        && !r->connection->error)
    {
        ctx->final_tokens = ctx->est_tokens;
        ctx->final_money = ctx->est_money;

    } else {
        ctx->final_tokens = 0;
        ctx->final_money = 0;
    }

    ngx_http_ai_guard_limiter_settle(r, ctx);
}
