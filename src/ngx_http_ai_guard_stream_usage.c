
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_rewrite_module.h"
#include "ngx_http_ai_guard_stream_usage.h"


/* an event longer than this is not held: it goes on as it is */
#define NGX_HTTP_AI_GUARD_HOLD  8192


static ngx_int_t ngx_http_ai_guard_strip_buf(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_buf_t *b, ngx_chain_t ***ll);
static ngx_int_t ngx_http_ai_guard_strip_emit(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_buf_t *b, ngx_chain_t ***ll);
static ngx_int_t ngx_http_ai_guard_strip_held(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_chain_t ***ll);
static ngx_int_t ngx_http_ai_guard_strip_link(ngx_http_request_t *r,
    ngx_buf_t *b, ngx_chain_t ***ll);


/*
 * Chat completions and completions take stream_options; the Responses
 * API and Anthropic's messages report usage in every stream and refuse
 * the field, so they are left alone.
 */

ngx_int_t
ngx_http_ai_guard_stream_usage_inject(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    u_char                            buf[64];
    ngx_int_t                         rc;
    ngx_str_t                         body;
    ngx_http_ai_guard_rewrite_edit_t  e;

    if (alcf->stream_usage != NGX_HTTP_AI_GUARD_STREAM_USAGE_INJECT
        || ctx->req.stream != 1
        || ctx->req.include_usage == 1
        || !((r->uri.len >= sizeof("/completions") - 1
              && ngx_strncmp(r->uri.data + r->uri.len
                             - (sizeof("/completions") - 1),
                             "/completions", sizeof("/completions") - 1)
                 == 0)))
    {
        return NGX_OK;
    }

    if (ngx_http_ai_guard_body_whole(r, ctx, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_ai_guard_rewrite_member(body.data, body.len,
                                          "stream_options", "include_usage",
                                          "true", buf, &e);
    if (rc != 0) {
        /* a stream_options that is not an object: the upstream says so */
        return NGX_OK;
    }

    if (ngx_http_ai_guard_body_rewrite(r, alcf, ctx, &body, &e, 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->strip_usage = 1;
    ngx_http_ai_guard_sse_cut_init(&ctx->cut);

    return NGX_OK;
}


/*
 * The buffers are edited in place (an event dropped is the bytes after
 * it moved over it) and passed on in links of our own: the upstream's
 * chain is its own to recycle.  Only an event that spans buffers is
 * copied, into a hold of at most NGX_HTTP_AI_GUARD_HOLD bytes, until its
 * end shows whether it goes on.
 */

ngx_int_t
ngx_http_ai_guard_stream_usage_strip(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_chain_t *in, ngx_chain_t **out)
{
    unsigned       lic;
    ngx_buf_t     *b;
    ngx_chain_t   *cl, **ll;

    if (ctx->hold == NULL) {
        ctx->hold = ngx_pnalloc(r->pool, NGX_HTTP_AI_GUARD_HOLD);
        if (ctx->hold == NULL) {
            return NGX_ERROR;
        }
    }

    *out = NULL;
    ll = out;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)
            && ngx_http_ai_guard_strip_buf(r, ctx, b, &ll) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (!b->last_buf || ctx->hold_len == 0) {
            if (ngx_http_ai_guard_strip_emit(r, ctx, b, &ll) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        /*
         * The stream ended inside an event: it goes as it came, last.  The
         * end moves to a buffer of our own, after the event: b keeps the
         * bytes it has, if any (nginx's own last buffer has none, and
         * without its flag it would be a zero-size buffer, which the
         * writer refuses when no chunked encoding drops it: HTTP/1.0 and
         * HTTP/2 clients lost the stream's end).
         */

        lic = b->last_in_chain;
        b->last_buf = 0;
        b->last_in_chain = 0;

        if ((ngx_buf_size(b)
             && ngx_http_ai_guard_strip_emit(r, ctx, b, &ll) != NGX_OK)
            || ngx_http_ai_guard_strip_held(r, ctx, &ll) != NGX_OK)
        {
            return NGX_ERROR;
        }

        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->last_buf = 1;
        b->last_in_chain = lic;

        if (ngx_http_ai_guard_strip_emit(r, ctx, b, &ll) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_strip_buf(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_buf_t *b, ngx_chain_t ***ll)
{
    int      ended, drop;
    u_char  *p, *w, *last;
    size_t   n;

    p = b->pos;
    w = b->pos;
    last = b->last;

    while (p < last) {
        n = ngx_http_ai_guard_sse_cut(&ctx->cut, p, last - p, &ended);

        if (ctx->strip_pass) {
            w = ngx_movemem(w, p, n);
            p += n;
            ctx->strip_pass = !ended;
            continue;
        }

        if (ctx->hold_len + n > NGX_HTTP_AI_GUARD_HOLD) {

            /* too long for a usage chunk: the event goes as it is */

            if (ctx->hold_len
                && ngx_http_ai_guard_strip_held(r, ctx, ll) != NGX_OK)
            {
                return NGX_ERROR;
            }

            w = ngx_movemem(w, p, n);
            p += n;
            ctx->strip_pass = !ended;
            continue;
        }

        if (!ended || ctx->hold_len) {
            ngx_memcpy(ctx->hold + ctx->hold_len, p, n);
            ctx->hold_len += n;
            p += n;

            if (!ended) {
                continue;
            }

            drop = ngx_http_ai_guard_sse_usage_event(ctx->hold,
                                                     ctx->hold_len);

            if (drop) {
                ctx->hold_len = 0;

            } else if (ngx_http_ai_guard_strip_held(r, ctx, ll) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (!ngx_http_ai_guard_sse_usage_event(p, n)) {
            w = ngx_movemem(w, p, n);
        }

        p += n;
    }

    b->last = w;

    return NGX_OK;
}


/*
 * The held event goes out before what remains of the buffer (an event
 * held began in an earlier buffer, or is the last of this one), in a
 * buffer of our own: one that went out whole is used again.
 */

static ngx_int_t
ngx_http_ai_guard_strip_held(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_chain_t ***ll)
{
    ngx_buf_t    *h;
    ngx_chain_t  *cl;

    for (cl = ctx->held; cl; cl = cl->next) {
        if (cl->buf->pos == cl->buf->last) {
            break;
        }
    }

    if (cl == NULL) {
        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = ngx_create_temp_buf(r->pool, NGX_HTTP_AI_GUARD_HOLD);
        if (cl->buf == NULL) {
            return NGX_ERROR;
        }

        cl->next = ctx->held;
        ctx->held = cl;
    }

    h = cl->buf;
    h->pos = h->start;
    h->last = ngx_cpymem(h->start, ctx->hold, ctx->hold_len);

    ctx->hold_len = 0;

    return ngx_http_ai_guard_strip_link(r, h, ll);
}


/*
 * What is left of the upstream's buffer, in a link of our own; a buffer
 * left empty goes as a special one when it carried a flush or the end.
 */

static ngx_int_t
ngx_http_ai_guard_strip_emit(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_buf_t *b, ngx_chain_t ***ll)
{
    ngx_buf_t  *s;

    s = b;

    if (ngx_buf_in_memory(b) && b->pos == b->last) {
        if (!b->flush && !b->last_buf && !b->last_in_chain && !b->sync) {
            return NGX_OK;
        }

        s = ngx_calloc_buf(r->pool);
        if (s == NULL) {
            return NGX_ERROR;
        }

        s->flush = b->flush;
        s->last_buf = b->last_buf;
        s->last_in_chain = b->last_in_chain;
        s->sync = b->sync;
    }

    return ngx_http_ai_guard_strip_link(r, s, ll);
}


/* b at the end of the chain being built */

static ngx_int_t
ngx_http_ai_guard_strip_link(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_chain_t ***ll)
{
    ngx_chain_t  *cl;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    **ll = cl;
    *ll = &cl->next;

    return NGX_OK;
}
