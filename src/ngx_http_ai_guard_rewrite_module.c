
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_rewrite_module.h"


static ngx_int_t ngx_http_ai_guard_body_canonical(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, u_char *p, size_t len);


/*
 * The body was read whole before the access checks went on, in memory
 * or in the temp file client_body_in_file_only or a large body put it
 * in; it is at most max_body bytes (ai_guard_max_body, or the tier's).
 */

ngx_int_t
ngx_http_ai_guard_body_whole(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_str_t *body)
{
    off_t         offset;
    u_char       *p;
    size_t        len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        ngx_str_null(body);
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    len = 0;

    for ( /* void */ ; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    body->data = ngx_pnalloc(r->pool, len);
    if (body->data == NULL) {
        return NGX_ERROR;
    }

    p = body->data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        for (offset = b->file_pos; offset < b->file_last; offset += n) {
            n = ngx_read_file(b->file, p, b->file_last - offset, offset);
            if (n <= 0) {
                return NGX_ERROR;
            }

            p += n;
        }
    }

    body->len = p - body->data;

    return NGX_OK;
}


/*
 * One memory buffer replaces the body's chain (a temp file stays where
 * it is, unused, until the request ends).  The proxy module tells the
 * upstream the length from content_length_n, and sends a chunked body
 * as chunked only while it is still being read: a rewritten body never
 * is, so it goes with a Content-Length.
 */

ngx_int_t
ngx_http_ai_guard_body_rewrite(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_str_t *body, ngx_http_ai_guard_rewrite_edit_t *e, ngx_uint_t n)
{
    u_char       *p;
    size_t        len;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    len = ngx_http_ai_guard_rewrite_len(body->len, e, n);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_guard_rewrite_apply(body->data, body->len, e, n, p) != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai_guard: body edits out of order");
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->start = p;
    b->pos = p;
    b->last = p + len;
    b->end = b->last;
    b->temporary = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    r->request_body->bufs = cl;
    r->request_body->buf = b;

    r->headers_in.content_length_n = len;
    r->headers_in.chunked = 0;

    if (r->headers_in.content_length) {
        r->headers_in.content_length->value.data =
                                          ngx_pnalloc(r->pool, NGX_OFF_T_LEN);
        if (r->headers_in.content_length->value.data == NULL) {
            return NGX_ERROR;
        }

        r->headers_in.content_length->value.len =
                 ngx_sprintf(r->headers_in.content_length->value.data, "%uz",
                             len)
                 - r->headers_in.content_length->value.data;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard rewrite: %uz bytes, now %uz", body->len, len);

    if (alcf->cache_key != NGX_HTTP_AI_GUARD_CACHE_OFF) {
        return ngx_http_ai_guard_body_canonical(r, ctx, p, len);
    }

    return NGX_OK;
}


/* the cache key is made of what the upstream gets: parsed again */

static ngx_int_t
ngx_http_ai_guard_body_canonical(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, u_char *p, size_t len)
{
    ngx_http_ai_guard_request_t          req;
    ngx_http_ai_guard_request_parser_t  *rp;

    rp = ngx_http_ai_guard_request_create(1, NULL, NULL);
    if (rp == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_ai_guard_request_feed(rp, p, len);

    if (ngx_http_ai_guard_request_finish(rp, &req)
        != NGX_HTTP_AI_GUARD_REQ_OK)
    {
        ngx_http_ai_guard_request_free(rp);

        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai_guard: the rewritten body does not parse");
        return NGX_ERROR;
    }

    ngx_http_ai_guard_request_free(ctx->parser);
    ctx->parser = rp;

    return NGX_OK;
}
