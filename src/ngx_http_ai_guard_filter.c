
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_ctx.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_stream_usage.h"
#include "ngx_http_ai_guard_usage_module.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_filter.h"


static ngx_int_t ngx_http_ai_guard_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_guard_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_ai_guard_page_filter(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_http_ai_guard_openai_limits(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
static ngx_int_t ngx_http_ai_guard_anthropic_limits(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
static ngx_int_t ngx_http_ai_guard_openai_limit(ngx_http_request_t *r,
    ngx_str_t *names, u_char **buf, uint64_t *v);
static ngx_int_t ngx_http_ai_guard_add_limit(ngx_http_request_t *r,
    ngx_str_t *names, uint64_t limit, uint64_t remaining, uint64_t reset_ms);
static ngx_int_t ngx_http_ai_guard_add_header(ngx_http_request_t *r,
    ngx_str_t *name, u_char *value, size_t len);
static ngx_int_t ngx_http_ai_guard_add_number(ngx_http_request_t *r,
    ngx_str_t *name, uint64_t n);
static ngx_int_t ngx_http_ai_guard_add_rfc3339(ngx_http_request_t *r,
    ngx_str_t *name, uint64_t ms);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


/*
 * Anthropic's rate-limit headers, a limit each: requests, then tokens.
 * Our token limits count input and output tokens together, so the one
 * bucket is what each of -tokens-, -input-tokens- and -output-tokens-
 * allows: a request may spend all of it on either side.
 */

static ngx_str_t  ngx_http_ai_guard_anthropic_names[] = {
    ngx_string("anthropic-ratelimit-requests-limit"),
    ngx_string("anthropic-ratelimit-requests-remaining"),
    ngx_string("anthropic-ratelimit-requests-reset"),
    ngx_string("anthropic-ratelimit-tokens-limit"),
    ngx_string("anthropic-ratelimit-tokens-remaining"),
    ngx_string("anthropic-ratelimit-tokens-reset"),
    ngx_string("anthropic-ratelimit-input-tokens-limit"),
    ngx_string("anthropic-ratelimit-input-tokens-remaining"),
    ngx_string("anthropic-ratelimit-input-tokens-reset"),
    ngx_string("anthropic-ratelimit-output-tokens-limit"),
    ngx_string("anthropic-ratelimit-output-tokens-remaining"),
    ngx_string("anthropic-ratelimit-output-tokens-reset")
};


/* OpenAI's, a limit each: requests, then tokens */

static ngx_str_t  ngx_http_ai_guard_openai_names[] = {
    ngx_string("x-ratelimit-limit-requests"),
    ngx_string("x-ratelimit-remaining-requests"),
    ngx_string("x-ratelimit-reset-requests"),
    ngx_string("x-ratelimit-limit-tokens"),
    ngx_string("x-ratelimit-remaining-tokens"),
    ngx_string("x-ratelimit-reset-tokens")
};


static ngx_str_t  ngx_http_ai_guard_h_retry = ngx_string("retry-after");
static ngx_str_t  ngx_http_ai_guard_h_retry_ms =
    ngx_string("retry-after-ms");
static ngx_str_t  ngx_http_ai_guard_h_no_retry =
    ngx_string("x-should-retry");


ngx_int_t
ngx_http_ai_guard_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_guard_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_ai_guard_body_filter;

    return NGX_OK;
}


/*
 * Every guarded response, 200s, 429s and streams alike, carries the
 * rate-limit headers of the client's dialect, OpenAI's or Anthropic's,
 * so the clients built on their SDKs back off by themselves.
 */

static ngx_int_t
ngx_http_ai_guard_header_filter(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_ai_guard_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    /*
     * An "error_page ... = @fallback" cleared the module context: the
     * fallback's answer is still this request's, metered and billed to
     * its key, so the context is found through its pool cleanup and set
     * again for the body filter.
     */

    ctx = ngx_http_ai_guard_get_ctx(r);

    if (ngx_http_ai_guard_gateway_page(r, &ctx) == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ctx == NULL) {
        return ngx_http_next_header_filter(r);
    }

    ngx_http_set_ctx(r, ctx, ngx_http_ai_guard_module);

    if (ctx->decision != NGX_HTTP_AI_GUARD_REJECT
        && ngx_http_ai_guard_upstream_answered(r))
    {
        ngx_http_ai_guard_meter_start(r, ctx);
    }

    /* the usage chunk goes only out of a stream, which changes length */

    if (ctx->strip_usage) {
        if (ctx->sse) {
            ngx_http_clear_content_length(r);
            ngx_http_clear_accept_ranges(r);

        } else {
            ctx->strip_usage = 0;
        }
    }

    if (ngx_http_ai_guard_dialect(r) == NGX_HTTP_AI_GUARD_DIALECT_ANTHROPIC) {
        rc = ngx_http_ai_guard_anthropic_limits(r, ctx);

    } else {
        rc = ngx_http_ai_guard_openai_limits(r, ctx);
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


/*
 * Each buffer is read as it passes, in place: no copy, no buffering,
 * constant memory whatever the size of the response.  The first token is
 * timed on nginx's clock of the event that brought it: a stream's after
 * the buffer that made the meter see content, any other body's at its
 * first byte.
 */

static ngx_int_t
ngx_http_ai_guard_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    off_t                     size;
    uint64_t                  now;
    ngx_chain_t              *cl, *out;
    ngx_http_ai_guard_ctx_t  *ctx;

    if (r != r->main || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_guard_module);

    if (ctx && ctx->page) {
        return ngx_http_ai_guard_page_filter(r, ctx, in);
    }

    if (ctx == NULL || !ctx->upstream) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        size = ngx_buf_size(cl->buf);

        if (size == 0) {
            continue;
        }

        ctx->body_out += size;

        if (ctx->meter && ngx_buf_in_memory(cl->buf)) {
            ngx_http_ai_guard_usage_feed(ctx->meter, cl->buf->pos,
                                         cl->buf->last - cl->buf->pos);
        }

        if (!ctx->first_token
            && (!ctx->sse
                || ngx_http_ai_guard_usage_content(ctx->meter) != 0))
        {
            now = ngx_http_ai_guard_now();

            ctx->first_token = 1;
            ctx->ttft_ms = (now > ctx->start_ms) ? now - ctx->start_ms : 0;
        }
    }

    /* metered above as the upstream sent it, stripped for the client */

    if (ctx->strip_usage) {
        if (ngx_http_ai_guard_stream_usage_strip(r, ctx, in, &out) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_next_body_filter(r, out);
    }

    return ngx_http_next_body_filter(r, in);
}


/*
 * nginx's HTML page of a 502, 503 or 504 goes nowhere: the JSON error
 * the header filter made goes in its place, once, with the last buffer.
 */

static ngx_int_t
ngx_http_ai_guard_page_filter(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_chain_t  *cl, out;

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->page_sent) {
        return NGX_OK;
    }

    ctx->page_sent = 1;

    out.buf = ctx->page;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


/*
 * OpenAI's: durations in Go's style, and retry-after-ms that its SDKs read
 * before retry-after.
 */

static ngx_int_t
ngx_http_ai_guard_openai_limits(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    u_char      *buf;
    uint64_t     v[2][3];
    ngx_uint_t   i, has[2];

    has[0] = ctx->has_req_limit;
    has[1] = ctx->has_tok_limit;

    /* the values of both limits' headers in one allocation */

    if (has[0] || has[1]) {
        buf = ngx_pnalloc(r->pool, 2 * (2 * NGX_HTTP_AI_GUARD_UINT_LEN
                                        + NGX_HTTP_AI_GUARD_DURATION_LEN));
        if (buf == NULL) {
            return NGX_ERROR;
        }

        v[0][0] = ctx->req_limit;
        v[0][1] = ctx->req_remaining;
        v[0][2] = ctx->req_reset_ms;
        v[1][0] = ctx->tok_limit;
        v[1][1] = ctx->tok_remaining;
        v[1][2] = ctx->tok_reset_ms;

        for (i = 0; i < 2; i++) {
            if (has[i]
                && ngx_http_ai_guard_openai_limit(r,
                                      &ngx_http_ai_guard_openai_names[3 * i],
                                      &buf, v[i])
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    if (ctx->verdict.retry
        && (r->headers_out.status == NGX_HTTP_TOO_MANY_REQUESTS
            || r->headers_out.status == NGX_HTTP_SERVICE_UNAVAILABLE)
        && (ngx_http_ai_guard_add_number(r, &ngx_http_ai_guard_h_retry,
                          ngx_http_ai_guard_retry_after(ctx->verdict.retry_ms))
            != NGX_OK
            || ngx_http_ai_guard_add_number(r,
                                            &ngx_http_ai_guard_h_retry_ms,
                                            ctx->verdict.retry_ms)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A limit's three headers: v is the limit, what remains, and when it is
 * whole again; their values are written on at *buf.
 */

static ngx_int_t
ngx_http_ai_guard_openai_limit(ngx_http_request_t *r, ngx_str_t *names,
    u_char **buf, uint64_t *v)
{
    u_char  *p, *q;

    p = *buf;

    q = ngx_http_ai_guard_uint_format(p, v[0]);

    if (ngx_http_ai_guard_add_header(r, &names[0], p, q - p) != NGX_OK) {
        return NGX_ERROR;
    }

    p = q;
    q = ngx_http_ai_guard_uint_format(p, v[1]);

    if (ngx_http_ai_guard_add_header(r, &names[1], p, q - p) != NGX_OK) {
        return NGX_ERROR;
    }

    p = q;
    q = ngx_http_ai_guard_duration_format(p, v[2]);

    if (ngx_http_ai_guard_add_header(r, &names[2], p, q - p) != NGX_OK) {
        return NGX_ERROR;
    }

    *buf = q;

    return NGX_OK;
}


/*
 * Anthropic's: the time a limit is back whole as an RFC 3339 date, and
 * retry-after alone, in seconds, as its API sends them.
 */

static ngx_int_t
ngx_http_ai_guard_anthropic_limits(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_uint_t  i;

    if (ctx->has_req_limit
        && ngx_http_ai_guard_add_limit(r, ngx_http_ai_guard_anthropic_names,
                                       ctx->req_limit, ctx->req_remaining,
                                       ctx->req_reset_ms)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 3; ctx->has_tok_limit && i < 12; i += 3) {
        if (ngx_http_ai_guard_add_limit(r,
                                        &ngx_http_ai_guard_anthropic_names[i],
                                        ctx->tok_limit, ctx->tok_remaining,
                                        ctx->tok_reset_ms)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /*
     * Anthropic's SDK retries every 429 and waits whatever retry-after
     * says: a quota back tomorrow, or a request over a limit by itself,
     * would hold the client for hours or for nothing.  x-should-retry,
     * which the SDK obeys, tells it not to.
     */

    if (ctx->verdict.status == NGX_HTTP_TOO_MANY_REQUESTS
        && r->headers_out.status == NGX_HTTP_TOO_MANY_REQUESTS
        && (!ctx->verdict.retry
            || ngx_strcmp(ctx->verdict.code, "insufficient_quota") == 0)
        && ngx_http_ai_guard_add_header(r, &ngx_http_ai_guard_h_no_retry,
                                        (u_char *) "false",
                                        sizeof("false") - 1)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->verdict.retry
        && (r->headers_out.status == NGX_HTTP_TOO_MANY_REQUESTS
            || r->headers_out.status == NGX_HTTP_SERVICE_UNAVAILABLE))
    {
        return ngx_http_ai_guard_add_number(r, &ngx_http_ai_guard_h_retry,
                         ngx_http_ai_guard_retry_after(ctx->verdict.retry_ms));
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_add_limit(ngx_http_request_t *r, ngx_str_t *names,
    uint64_t limit, uint64_t remaining, uint64_t reset_ms)
{
    if (ngx_http_ai_guard_add_number(r, &names[0], limit) != NGX_OK
        || ngx_http_ai_guard_add_number(r, &names[1], remaining) != NGX_OK
        || ngx_http_ai_guard_add_rfc3339(r, &names[2], reset_ms) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_add_header(ngx_http_request_t *r, ngx_str_t *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *name;
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


/* cheaper than ngx_sprintf()'s "%uL" */

static ngx_int_t
ngx_http_ai_guard_add_number(ngx_http_request_t *r, ngx_str_t *name,
    uint64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_HTTP_AI_GUARD_UINT_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_ai_guard_add_header(r, name, p,
                                    ngx_http_ai_guard_uint_format(p, n) - p);
}


/* now and ms later, rounded up to the second: 2025-01-31T23:59:59Z */

static ngx_int_t
ngx_http_ai_guard_add_rfc3339(ngx_http_request_t *r, ngx_str_t *name,
    uint64_t ms)
{
    u_char      *p;
    ngx_tm_t     tm;
    ngx_time_t  *tp;

    p = ngx_pnalloc(r->pool, sizeof("1970-01-01T00:00:00Z") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    tp = ngx_timeofday();

    ngx_gmtime(tp->sec + (time_t) ((tp->msec + ms + 999) / 1000), &tm);

    (void) ngx_sprintf(p, "%4d-%02d-%02dT%02d:%02d:%02dZ",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);

    return ngx_http_ai_guard_add_header(r, name, p,
                                        sizeof("1970-01-01T00:00:00Z") - 1);
}
