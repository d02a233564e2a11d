
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_rules_module.h"
#include "ngx_http_ai_guard_request_module.h"


static ngx_http_request_body_filter_pt  ngx_http_next_request_body_filter;


static void ngx_http_ai_guard_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_guard_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_ai_guard_feed(ngx_http_ai_guard_ctx_t *ctx, u_char *p,
    size_t len);
static ngx_int_t ngx_http_ai_guard_feed_read_body(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
static void ngx_http_ai_guard_path_model(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
static ngx_int_t ngx_http_ai_guard_check_model(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_too_large(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_globs_match(ngx_str_t *globs, ngx_uint_t n,
    u_char *s, size_t len);


ngx_int_t
ngx_http_ai_guard_request_body_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_ai_guard_request_body_filter;

    return NGX_OK;
}


/*
 * NGX_OK: the body is all there (another module read it), the checks go
 * on; NGX_DONE: it is being read, the phases run again when it is in; or
 * a status, or NGX_DONE after a refusal.
 */

ngx_int_t
ngx_http_ai_guard_read_body(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_int_t                     rc;
    ngx_http_ai_guard_tier_t     *tier;
    ngx_http_ai_guard_verdict_t   v;

    tier = ctx->key ? ctx->key->tier_conf : NULL;

    ctx->max_body = (tier && tier->max_body) ? tier->max_body
                                              : alcf->max_body;

    if (r->headers_in.content_length_n > (off_t) ctx->max_body) {

        /* refused before a byte of the body is read */

        if (ngx_http_ai_guard_too_large(r, ctx, &v) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_ai_guard_decide(r, alcf, ctx, &v);
        if (rc != NGX_DECLINED) {
            return rc;
        }

        ctx->max_body = NGX_MAX_SIZE_T_VALUE;
    }

    ctx->parser = ngx_http_ai_guard_request_create(
                      alcf->cache_key != NGX_HTTP_AI_GUARD_CACHE_OFF,
                      ngx_http_ai_guard_prompt_text, ctx);
    if (ctx->parser == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->request_body) {
        /* another module read the body in an earlier phase */

        if (ngx_http_ai_guard_feed_read_body(r, ctx) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->body_done = 1;

        return NGX_OK;
    }

    ctx->reading_body = 1;

    /*
     * As ngx_http_mirror_module does: read the body, then run the phases
     * again from this handler.  The request body filter below feeds the
     * parser as the buffers arrive, before any of them goes to a file.
     */

    rc = ngx_http_read_client_request_body(r, ngx_http_ai_guard_body_handler);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static void
ngx_http_ai_guard_body_handler(ngx_http_request_t *r)
{
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_guard_module);

    ctx->body_done = 1;
    ctx->reading_body = 0;

    r->preserve_body = 1;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


static ngx_int_t
ngx_http_ai_guard_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in)
{
    ngx_chain_t              *cl;
    ngx_http_ai_guard_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_request_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_guard_module);

    if (ctx != NULL && ctx->reading_body) {

        /* the buffers are only looked at: nginx stores them as usual */

        for (cl = in; cl; cl = cl->next) {
            if (!cl->buf->in_file) {
                ngx_http_ai_guard_feed(ctx, cl->buf->pos,
                                       cl->buf->last - cl->buf->pos);
            }
        }
    }

    return ngx_http_next_request_body_filter(r, in);
}


static void
ngx_http_ai_guard_feed(ngx_http_ai_guard_ctx_t *ctx, u_char *p, size_t len)
{
    if (ctx->too_large || len == 0) {
        return;
    }

    ctx->body_bytes += len;

    if (ctx->body_bytes > (off_t) ctx->max_body) {
        /* a chunked body over the limit: no more parsing */
        ctx->too_large = 1;
        return;
    }

    (void) ngx_http_ai_guard_request_feed(ctx->parser, p, len);
}


static ngx_int_t
ngx_http_ai_guard_feed_read_body(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    off_t         offset;
    u_char       *buf;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    buf = NULL;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            ngx_http_ai_guard_feed(ctx, b->pos, b->last - b->pos);
            continue;
        }

        if (buf == NULL) {
            buf = ngx_palloc(r->pool, 16384);
            if (buf == NULL) {
                return NGX_ERROR;
            }
        }

        for (offset = b->file_pos; offset < b->file_last; offset += n) {
            n = ngx_read_file(b->file, buf,
                              ngx_min(16384, b->file_last - offset), offset);
            if (n <= 0) {
                return NGX_ERROR;
            }

            ngx_http_ai_guard_feed(ctx, buf, n);
        }
    }

    return NGX_OK;
}


/* the body's own checks, in the order of the error contract */

ngx_int_t
ngx_http_ai_guard_check(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_int_t                     rc;
    ngx_http_ai_guard_tier_t     *tier;
    ngx_http_ai_guard_verdict_t   v;

    ngx_memzero(&v, sizeof(ngx_http_ai_guard_verdict_t));

    if (ctx->too_large) {
        if (ngx_http_ai_guard_too_large(r, ctx, &v) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_ai_guard_decide(r, alcf, ctx, &v);
    }

    rc = ngx_http_ai_guard_request_finish(ctx->parser, &ctx->req);

    if (rc == NGX_HTTP_AI_GUARD_REQ_NOMEM
        || rc == NGX_HTTP_AI_GUARD_REQ_ABORTED)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_HTTP_AI_GUARD_REQ_OK) {
        ngx_http_ai_guard_set_verdict(&v, NGX_HTTP_BAD_REQUEST,
                         "invalid_json",
                         (char *) ngx_http_ai_guard_request_error(ctx->parser));

        if (ngx_http_ai_guard_request_error_param(ctx->parser)) {
            v.param.data = (u_char *)
                           ngx_http_ai_guard_request_error_param(ctx->parser);
            v.param.len = ngx_strlen(v.param.data);
        }

        /* nothing else can be judged of a body that is not JSON */
        return ngx_http_ai_guard_decide(r, alcf, ctx, &v);
    }

    ngx_http_ai_guard_path_model(r, ctx);

    rc = ngx_http_ai_guard_check_model(r, ctx, &v);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc) {
        rc = ngx_http_ai_guard_decide(r, alcf, ctx, &v);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    tier = ctx->key ? ctx->key->tier_conf : NULL;

    if (tier && tier->max_tokens >= 0
        && ctx->req.max_tokens > tier->max_tokens)
    {
        ngx_http_ai_guard_set_verdict(&v, NGX_HTTP_BAD_REQUEST,
                                      "max_tokens_exceeded", NULL);
        ngx_str_set(&v.param, "max_tokens");

        if (ngx_http_ai_guard_verdict_message(r, &v,
                                  "max_tokens %L is over the limit of %L "
                                  "of this API key's tier \"%V\": ask for "
                                  "at most %L.", ctx->req.max_tokens,
                                  tier->max_tokens, &tier->name,
                                  tier->max_tokens)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_ai_guard_decide(r, alcf, ctx, &v);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return NGX_DECLINED;
}


/*
 * A Gemini call names its model in the path, and the path's is the model
 * the upstream runs: it is the one checked, limited and priced, whatever
 * a "model" in the body says.
 */

static void
ngx_http_ai_guard_path_model(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    int            rc;
    size_t         len;
    const u_char  *model;

    rc = ngx_http_ai_guard_request_path_model(r->uri.data, r->uri.len,
                                              NGX_HTTP_AI_GUARD_REQ_MODEL_LEN,
                                              &model, &len);
    if (rc == 0) {
        return;
    }

    ngx_memcpy(ctx->req.model, model, len);
    ctx->req.model[len] = '\0';
    ctx->req.model_len = len;

    if (rc == 2) {
        ctx->req.stream = 1;
    }
}


static ngx_int_t
ngx_http_ai_guard_check_model(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v)
{
    u_char                     name[NGX_HTTP_AI_GUARD_NAME_LEN];
    u_char                     allowed[256], *model, *p, *q, *last;
    size_t                     len;
    ngx_int_t                  rc;
    ngx_str_t                 *globs;
    ngx_uint_t                 i, n;
    ngx_http_ai_guard_key_t   *key;
    ngx_http_ai_guard_tier_t  *tier;

    key = ctx->key;
    tier = key ? key->tier_conf : NULL;

    model = ctx->req.model;
    len = ctx->req.model_len;

    if (tier && tier->models
        && !ngx_http_ai_guard_globs_match(tier->models->elts,
                                          tier->models->nelts, model, len))
    {
        globs = tier->models->elts;
        n = tier->models->nelts;
        goto denied;
    }

    if (key && key->has_models
        && !ngx_http_ai_guard_globs_match((ngx_str_t *) key->models,
                                          key->nmodels, model, len))
    {
        globs = (ngx_str_t *) key->models;
        n = key->nmodels;
        goto denied;
    }

    return 0;

denied:

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_FORBIDDEN, "model_not_allowed",
                                  NULL);
    ngx_str_set(&v->param, "model");

    /* the globs that refused it, the tier's or the key's own */

    p = allowed;
    last = allowed + sizeof(allowed);

    for (i = 0; i < n && p < last; i++) {
        p = ngx_slprintf(p, last, "%s%V", i ? ", " : "", &globs[i]);
    }

    if (n == 0) {
        p = ngx_slprintf(p, last, "none");
    }

    if (len == 0) {
        rc = ngx_http_ai_guard_verdict_message(r, v,
                                "The request names no model, and this API "
                                "key may use only some: name one of %*s.",
                                p - allowed, allowed);

    } else {
        q = ngx_http_ai_guard_printable(name, NGX_HTTP_AI_GUARD_NAME_LEN,
                                        model, len);

        rc = ngx_http_ai_guard_verdict_message(r, v,
                                "This API key may not use the model "
                                "\"%*s%s\": use one of %*s.", q - name,
                                name, (q - name < (ssize_t) len) ? "..." : "",
                                p - allowed, allowed);
    }

    return (rc == NGX_OK) ? 1 : NGX_ERROR;
}


/* the limit the body went over: the tier's, else the location's */

static ngx_int_t
ngx_http_ai_guard_too_large(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v)
{
    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "request_too_large", NULL);

    return ngx_http_ai_guard_verdict_message(r, v,
                                "The request body is larger than this API "
                                "accepts, %uz bytes: send a smaller one.",
                                ctx->max_body);
}


static ngx_int_t
ngx_http_ai_guard_globs_match(ngx_str_t *globs, ngx_uint_t n, u_char *s,
    size_t len)
{
    ngx_uint_t  i;

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_ai_guard_glob_match(globs[i].data, globs[i].len, s, len))
        {
            return 1;
        }
    }

    return 0;
}
