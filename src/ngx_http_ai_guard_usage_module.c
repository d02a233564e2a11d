
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_price_module.h"
#include "ngx_http_ai_guard_usage_module.h"


#define NGX_HTTP_AI_GUARD_METER_JSON  0
#define NGX_HTTP_AI_GUARD_METER_SSE   1

#define NGX_HTTP_AI_GUARD_MAX_UINT64  ((uint64_t) -1)

/* an estimate is held to the parser's bound on an upstream's count */
#define NGX_HTTP_AI_GUARD_MAX_COUNT                                           \
    ((uint64_t) NGX_HTTP_AI_GUARD_USAGE_MAX_TOKENS)


/* a warning a worker, not one a request */
static ngx_uint_t  ngx_http_ai_guard_encoding_warned;


static ngx_int_t ngx_http_ai_guard_meter_type(ngx_str_t *type);


/*
 * The response is the upstream's own answer: it read the request and its
 * header was read whole.  Not one nginx makes about it (its 502 or 504,
 * where the upstream's status is 0 or its header incomplete), nor a
 * cached copy (never sent).  Nor an interim 1xx: nginx 1.22 forwards one
 * as if it were the answer, with the real answer inside its body where no
 * parser can read it, so such a request settles as one never answered.
 */

ngx_uint_t
ngx_http_ai_guard_upstream_answered(ngx_http_request_t *r)
{
    ngx_uint_t            status;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    if (u == NULL
        || !u->request_sent
        || u->state == NULL
        || u->state->header_time == (ngx_msec_t) -1)
    {
        return 0;
    }

    status = u->headers_in.status_n;

    return status >= NGX_HTTP_OK
           || status == NGX_HTTP_SWITCHING_PROTOCOLS;
}


/*
 * nginx sent the request to an upstream: bytes of it went out on a
 * connection, in the last try or an earlier one (proxy_next_upstream, a
 * proxied error_page).  Each try's count is kept in its state when the
 * try ends; a try not ended yet has it on its connection.  request_sent
 * alone is not enough: it is set before the first write, which may fail.
 */

ngx_uint_t
ngx_http_ai_guard_upstream_sent(ngx_http_request_t *r)
{
    ngx_uint_t                  i;
    ngx_http_upstream_t        *u;
    ngx_http_upstream_state_t  *state;

    u = r->upstream;

    if (u && u->request_sent && u->peer.connection
        && u->peer.connection->sent > 0)
    {
        return 1;
    }

    if (r->upstream_states == NULL) {
        return 0;
    }

    state = r->upstream_states->elts;

    for (i = 0; i < r->upstream_states->nelts; i++) {
        if (state[i].bytes_sent > 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * Pick the parser the response's Content-Type asks for.  A body the meter
 * cannot read (compressed, another type) is settled on the estimate.
 */

void
ngx_http_ai_guard_meter_start(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_int_t         type;
    ngx_table_elt_t  *enc;

    ctx->upstream = 1;
    ctx->upstream_status = r->upstream->headers_in.status_n;

    enc = r->headers_out.content_encoding;

    if (enc && enc->value.len
        && !(enc->value.len == 8
             && ngx_strncasecmp(enc->value.data, (u_char *) "identity", 8)
                == 0))
    {
        if (!ngx_http_ai_guard_encoding_warned) {
            ngx_http_ai_guard_encoding_warned = 1;

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai_guard: the upstream answered with "
                          "\"Content-Encoding: %V\", which the meter "
                          "cannot read: usage is estimated; clear it with "
                          "\"proxy_set_header Accept-Encoding \"\"\"",
                          &enc->value);
        }

        return;
    }

    type = ngx_http_ai_guard_meter_type(&r->headers_out.content_type);

    if (type == NGX_DECLINED) {
        return;
    }

    ctx->meter = ngx_palloc(r->pool,
                            sizeof(ngx_http_ai_guard_usage_parser_t));
    if (ctx->meter == NULL) {
        return;
    }

    ngx_http_ai_guard_usage_init(ctx->meter,
                                 type == NGX_HTTP_AI_GUARD_METER_SSE);

    ctx->sse = (type == NGX_HTTP_AI_GUARD_METER_SSE);

    /* buffers the upstream wrote to temp files come back in memory */
    r->filter_need_in_memory = 1;
}


/*
 * The media type alone decides, in any case and without its parameters
 * ("text/event-stream;charset=UTF-8"): "text/event-stream" is a stream,
 * a type with "json" in it a JSON body.  A body without a Content-Type
 * is tried as JSON, as RFC 9110 lets a recipient examine the data: one
 * that is not JSON stops the parser at its first byte.
 */

static ngx_int_t
ngx_http_ai_guard_meter_type(ngx_str_t *type)
{
    u_char  *p;
    size_t   i, len;

    if (type->len == 0) {
        return NGX_HTTP_AI_GUARD_METER_JSON;
    }

    p = type->data;

    for (len = 0; len < type->len; len++) {
        if (p[len] == ';' || p[len] == ' ' || p[len] == '\t') {
            break;
        }
    }

    if (len == sizeof("text/event-stream") - 1
        && ngx_strncasecmp(p, (u_char *) "text/event-stream", len) == 0)
    {
        return NGX_HTTP_AI_GUARD_METER_SSE;
    }

    /* a 'j' first: setting bit 5 folds a letter's case and nothing else's */

    for (i = 0; i + sizeof("json") - 1 <= len; i++) {
        if ((p[i] | 0x20) == 'j'
            && ngx_strncasecmp(&p[i + 1], (u_char *) "son",
                               sizeof("son") - 1)
               == 0)
        {
            return NGX_HTTP_AI_GUARD_METER_JSON;
        }
    }

    return NGX_DECLINED;
}


/*
 * One meaning for every vendor (the parser normalizes).  Without usage in
 * the response, the estimate: an answer the upstream never gave costs
 * the whole reservation (the provider may have done all the work); an
 * error status costs nothing (providers do not bill their errors); else
 * the prompt's estimate plus the output seen at four bytes a token.
 */

void
ngx_http_ai_guard_meter_final(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    uint64_t                    input, output;
    ngx_http_ai_guard_usage_t  *u;

    u = &ctx->usage;

    if (ctx->meter) {
        ngx_http_ai_guard_usage_finish(ctx->meter, u);
    }

    if (!u->found && u->model_len == 0 && ctx->req.model_len == 0) {

        /*
         * Not inference: no model asked for or answering, no usage
         * (GET /v1/models, a file upload).  Nothing to bill: no usage
         * row, no meter event, no tokens; the request is still counted
         * in ai_guard_requests_total, as one that was not billed.
         */

        ctx->upstream = 0;
        ctx->final_tokens = 0;
        ctx->final_money = 0;

        return;
    }

    if (!u->found) {
        ctx->estimated = 1;

        if (ctx->upstream_status == 0) {
            input = ctx->est_input;
            output = ctx->est_tokens > ctx->est_input
                     ? ctx->est_tokens - ctx->est_input : 0;

        } else if (ctx->upstream_status >= NGX_HTTP_BAD_REQUEST) {
            input = 0;
            output = 0;

        } else {
            /*
             * the generated text the parser saw; all the bytes of a body
             * of no declared type, which may be anything
             */

            output = (ctx->meter && r->headers_out.content_type.len)
                     ? u->content_bytes : (uint64_t) ctx->body_out;

            input = ctx->est_input;
            output = output / 4 + (output % 4 != 0);
        }

        u->input_tokens = (int64_t) ngx_min(input,
                                            NGX_HTTP_AI_GUARD_MAX_COUNT);
        u->output_tokens = (int64_t) ngx_min(output,
                                             NGX_HTTP_AI_GUARD_MAX_COUNT);
        u->cached_tokens = 0;
        u->cache_write_tokens = 0;
        u->reasoning_tokens = 0;
    }

    ctx->response_model = (u->model_len != 0);

    if (u->model_len == 0 && ctx->req.model_len) {
        u->model_len = ngx_min(ctx->req.model_len, sizeof(u->model));
        ngx_memcpy(u->model, ctx->req.model, u->model_len);
    }

    /* the counts come from the upstream's JSON: the sum saturates */

    input = (uint64_t) ngx_max(u->input_tokens, 0);
    output = (uint64_t) ngx_max(u->output_tokens, 0);

    ctx->final_tokens = (input > NGX_HTTP_AI_GUARD_MAX_UINT64 - output)
                        ? NGX_HTTP_AI_GUARD_MAX_UINT64 : input + output;

    ctx->final_money = ngx_http_ai_guard_price_of(r, u->model, u->model_len,
                                                  u->input_tokens,
                                                  u->output_tokens,
                                                  u->cached_tokens,
                                                  u->cache_write_tokens);
}
