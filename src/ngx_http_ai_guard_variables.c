
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_cache.h"
#include "ngx_http_ai_guard_ctx.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_variables.h"


static ngx_int_t ngx_http_ai_guard_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_decision_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_reason_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_model_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_cache_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_no_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_number_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_source_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_cost_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_genai_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_tps_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_jwt_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#define NGX_HTTP_AI_GUARD_VAR_PROMPT      0
#define NGX_HTTP_AI_GUARD_VAR_COMPLETION  1
#define NGX_HTTP_AI_GUARD_VAR_TOTAL       2
#define NGX_HTTP_AI_GUARD_VAR_CACHED      3
#define NGX_HTTP_AI_GUARD_VAR_TTFT        4
#define NGX_HTTP_AI_GUARD_VAR_ESTIMATED   5
#define NGX_HTTP_AI_GUARD_VAR_MAX_TOKENS  6
#define NGX_HTTP_AI_GUARD_VAR_REASONING   7
#define NGX_HTTP_AI_GUARD_VAR_CACHE_WRITE 8

/* the GenAI attributes of ngx_http_ai_guard_genai_variable() */
#define NGX_HTTP_AI_GUARD_VAR_RESPONSE_MODEL  0
#define NGX_HTTP_AI_GUARD_VAR_DIALECT         1
#define NGX_HTTP_AI_GUARD_VAR_OPERATION       2
#define NGX_HTTP_AI_GUARD_VAR_STREAM          3


static void ngx_http_ai_guard_variable_set(ngx_http_variable_value_t *v,
    u_char *data, size_t len);


static ngx_http_variable_t  ngx_http_ai_guard_vars[] = {

    { ngx_string("ai_guard_key_id"), NULL,
      ngx_http_ai_guard_key_variable,
      offsetof(ngx_http_ai_guard_key_t, id), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_tenant"), NULL,
      ngx_http_ai_guard_key_variable,
      offsetof(ngx_http_ai_guard_key_t, tenant), NGX_HTTP_VAR_NOCACHEABLE,
      0 },

    { ngx_string("ai_guard_tier"), NULL,
      ngx_http_ai_guard_key_variable,
      offsetof(ngx_http_ai_guard_key_t, tier), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_decision"), NULL,
      ngx_http_ai_guard_decision_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_reason"), NULL,
      ngx_http_ai_guard_reason_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_model"), NULL,
      ngx_http_ai_guard_model_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_cache_key"), NULL,
      ngx_http_ai_guard_cache_key_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_no_cache"), NULL,
      ngx_http_ai_guard_no_cache_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_prompt_tokens"), NULL,
      ngx_http_ai_guard_number_variable, NGX_HTTP_AI_GUARD_VAR_PROMPT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_completion_tokens"), NULL,
      ngx_http_ai_guard_number_variable, NGX_HTTP_AI_GUARD_VAR_COMPLETION,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_total_tokens"), NULL,
      ngx_http_ai_guard_number_variable, NGX_HTTP_AI_GUARD_VAR_TOTAL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_cached_tokens"), NULL,
      ngx_http_ai_guard_number_variable, NGX_HTTP_AI_GUARD_VAR_CACHED,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_reasoning_tokens"), NULL,
      ngx_http_ai_guard_number_variable, NGX_HTTP_AI_GUARD_VAR_REASONING,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_cache_write_tokens"), NULL,
      ngx_http_ai_guard_number_variable, NGX_HTTP_AI_GUARD_VAR_CACHE_WRITE,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_ttft_ms"), NULL,
      ngx_http_ai_guard_number_variable, NGX_HTTP_AI_GUARD_VAR_TTFT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_estimated_tokens"), NULL,
      ngx_http_ai_guard_number_variable, NGX_HTTP_AI_GUARD_VAR_ESTIMATED,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_usage_source"), NULL,
      ngx_http_ai_guard_source_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_cost_usd"), NULL,
      ngx_http_ai_guard_cost_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_max_tokens"), NULL,
      ngx_http_ai_guard_number_variable, NGX_HTTP_AI_GUARD_VAR_MAX_TOKENS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_output_tps"), NULL,
      ngx_http_ai_guard_tps_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_response_model"), NULL,
      ngx_http_ai_guard_genai_variable, NGX_HTTP_AI_GUARD_VAR_RESPONSE_MODEL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_dialect"), NULL,
      ngx_http_ai_guard_genai_variable, NGX_HTTP_AI_GUARD_VAR_DIALECT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_operation"), NULL,
      ngx_http_ai_guard_genai_variable, NGX_HTTP_AI_GUARD_VAR_OPERATION,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_stream"), NULL,
      ngx_http_ai_guard_genai_variable, NGX_HTTP_AI_GUARD_VAR_STREAM,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_guard_jwt_cache"), NULL,
      ngx_http_ai_guard_jwt_cache_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_ai_guard_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_ai_guard_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return ngx_http_ai_guard_request_id_init(cf);
}


static ngx_int_t
ngx_http_ai_guard_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_guard_ctx_t  *ctx;
    ngx_http_ai_guard_str_t  *s;

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL || ctx->key == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_http_ai_guard_str_t *) ((u_char *) ctx->key + data);

    ngx_http_ai_guard_variable_set(v, s->data, s->len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_decision_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_guard_ctx_t  *ctx;

    static ngx_str_t  decisions[] = {
        ngx_null_string,
        ngx_string("allow"),
        ngx_string("reject"),
        ngx_string("monitor")
    };

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL || ctx->decision == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_ai_guard_variable_set(v, decisions[ctx->decision].data,
                                   decisions[ctx->decision].len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_reason_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL || ctx->verdict.reason.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_ai_guard_variable_set(v, ctx->verdict.reason.data,
                                   ctx->verdict.reason.len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_model_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL || ctx->req.model_len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_ai_guard_variable_set(v, ctx->req.model, ctx->req.model_len);

    return NGX_OK;
}


/*
 * Never empty: the key of a request that may be served twice, else one no
 * other request has (src/ngx_http_ai_guard_cache.c).
 */

static ngx_int_t
ngx_http_ai_guard_cache_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  key;

    if (ngx_http_ai_guard_cache_key_value(r, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_variable_set(v, key.data, key.len);

    return NGX_OK;
}


/* "1" for proxy_no_cache and proxy_cache_bypass, "" when cacheable */

static ngx_int_t
ngx_http_ai_guard_no_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    if (ngx_http_ai_guard_cacheable(r)) {
        ngx_http_ai_guard_variable_set(v, (u_char *) "", 0);

    } else {
        ngx_http_ai_guard_variable_set(v, (u_char *) "1", 1);
    }

    return NGX_OK;
}


/* the usage variables are settled at the log phase, before access_log */

static ngx_int_t
ngx_http_ai_guard_number_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    int64_t                   n;
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL
        || (data == NGX_HTTP_AI_GUARD_VAR_ESTIMATED ? ctx->est_tokens == 0
            : data == NGX_HTTP_AI_GUARD_VAR_TTFT ? !ctx->first_token
            : data == NGX_HTTP_AI_GUARD_VAR_MAX_TOKENS
              ? !ctx->parsed || ctx->req.max_tokens < 0
            : !ctx->finished || !ctx->upstream))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_AI_GUARD_VAR_PROMPT:
        n = ctx->usage.input_tokens;
        break;

    case NGX_HTTP_AI_GUARD_VAR_COMPLETION:
        n = ctx->usage.output_tokens;
        break;

    case NGX_HTTP_AI_GUARD_VAR_TOTAL:
        n = ctx->usage.input_tokens + ctx->usage.output_tokens;
        break;

    case NGX_HTTP_AI_GUARD_VAR_CACHED:
        n = ctx->usage.cached_tokens;
        break;

    case NGX_HTTP_AI_GUARD_VAR_REASONING:
        n = ctx->usage.reasoning_tokens;
        break;

    case NGX_HTTP_AI_GUARD_VAR_CACHE_WRITE:
        n = ctx->usage.cache_write_tokens;
        break;

    case NGX_HTTP_AI_GUARD_VAR_TTFT:
        n = ctx->ttft_ms;
        break;

    case NGX_HTTP_AI_GUARD_VAR_MAX_TOKENS:
        n = ctx->req.max_tokens;
        break;

    default: /* NGX_HTTP_AI_GUARD_VAR_ESTIMATED */
        n = ctx->est_tokens;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_variable_set(v, p, ngx_sprintf(p, "%L", n) - p);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_source_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL || !ctx->finished || !ctx->upstream) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (ctx->estimated) {
        ngx_http_ai_guard_variable_set(v, (u_char *) "estimate",
                                       sizeof("estimate") - 1);

    } else {
        ngx_http_ai_guard_variable_set(v, (u_char *) "upstream",
                                       sizeof("upstream") - 1);
    }

    return NGX_OK;
}


/* exact: the integer ledger printed as a decimal, never a float */

static ngx_int_t
ngx_http_ai_guard_cost_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL || !ctx->finished || !ctx->upstream) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_HTTP_AI_GUARD_USD_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_variable_set(v, p,
                        ngx_http_ai_guard_usd_format(p, ctx->final_money) - p);

    return NGX_OK;
}


/*
 * What an OpenTelemetry GenAI span carries: gen_ai.response.model (the
 * upstream's model, at the log phase), gen_ai.provider.name (the dialect
 * the response was read in, at the log phase), gen_ai.operation.name (by
 * the request's path, from the access phase on) and whether the request
 * asked for a stream (from the access phase on).
 */

static ngx_int_t
ngx_http_ai_guard_genai_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    size_t                    len;
    ngx_str_t                *uri;
    ngx_uint_t                i;
    ngx_http_ai_guard_ctx_t  *ctx;

    static ngx_str_t  dialects[] = {
        ngx_null_string, ngx_string("openai"), ngx_string("anthropic"),
        ngx_string("gemini")
    };

    /* the path's ending, and the operation it is */

    static ngx_str_t  operations[][2] = {
        { ngx_string("/chat/completions"), ngx_string("chat") },
        { ngx_string("/messages"), ngx_string("chat") },
        { ngx_string("/responses"), ngx_string("chat") },
        { ngx_string("/completions"), ngx_string("text_completion") },
        { ngx_string("/embeddings"), ngx_string("embeddings") },
        { ngx_string(":generateContent"), ngx_string("generate_content") },
        { ngx_string(":streamGenerateContent"),
          ngx_string("generate_content") }
    };

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_AI_GUARD_VAR_RESPONSE_MODEL:

        if (!ctx->finished || !ctx->upstream || !ctx->response_model) {
            break;
        }

        ngx_http_ai_guard_variable_set(v, ctx->usage.model,
                                       ctx->usage.model_len);
        return NGX_OK;

    case NGX_HTTP_AI_GUARD_VAR_DIALECT:

        if (!ctx->finished || !ctx->upstream || ctx->usage.vendor == 0) {
            break;
        }

        ngx_http_ai_guard_variable_set(v,
                                       dialects[ctx->usage.vendor].data,
                                       dialects[ctx->usage.vendor].len);
        return NGX_OK;

    case NGX_HTTP_AI_GUARD_VAR_OPERATION:

        uri = &r->main->uri;

        for (i = 0; i < sizeof(operations) / sizeof(operations[0]); i++) {
            len = operations[i][0].len;

            if (uri->len >= len
                && ngx_strncmp(uri->data + uri->len - len,
                               operations[i][0].data, len)
                   == 0)
            {
                ngx_http_ai_guard_variable_set(v, operations[i][1].data,
                                               operations[i][1].len);
                return NGX_OK;
            }
        }

        break;

    default: /* NGX_HTTP_AI_GUARD_VAR_STREAM */

        if (!ctx->parsed) {
            break;
        }

        ngx_http_ai_guard_variable_set(v,
                                       (u_char *) (ctx->req.stream == 1
                                                   ? "1" : "0"),
                                       1);
        return NGX_OK;
    }

    v->not_found = 1;

    return NGX_OK;
}


/*
 * Output tokens a second, two decimals: of a stream, from its first token
 * to its end (the decoding rate); of any other answer, over the whole
 * request.  Only of the upstream's own counts, at the log phase.
 */

static ngx_int_t
ngx_http_ai_guard_tps_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    uint64_t                  ms, output, rate;
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL || !ctx->finished || !ctx->upstream || ctx->estimated) {
        v->not_found = 1;
        return NGX_OK;
    }

    output = (uint64_t) ngx_max(ctx->usage.output_tokens, 0);

    ms = ctx->response_ms;

    if (ctx->sse && ctx->first_token && ms > ctx->ttft_ms) {
        ms -= ctx->ttft_ms;
    }

    if (ms == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* hundredths of a token a second */

    rate = ngx_http_ai_guard_sat_mul(output, 100000) / ms;

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_variable_set(v, p,
                                   ngx_sprintf(p, "%uL.%02uL", rate / 100,
                                               rate % 100)
                                   - p);

    return NGX_OK;
}


static void
ngx_http_ai_guard_variable_set(ngx_http_variable_value_t *v, u_char *data,
    size_t len)
{
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = data;
}


/*
 * A bearer token's identity: "hit" from the worker's cache of verified
 * tokens, "miss" when its signature was checked by this request; what a
 * debug log line alone used to say (nginx's are --with-debug builds only)
 */

static ngx_int_t
ngx_http_ai_guard_jwt_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL || !(ctx->jwt_cached || ctx->jwt_verified)) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (ctx->jwt_cached) {
        ngx_http_ai_guard_variable_set(v, (u_char *) "hit",
                                       sizeof("hit") - 1);

    } else {
        ngx_http_ai_guard_variable_set(v, (u_char *) "miss",
                                       sizeof("miss") - 1);
    }

    return NGX_OK;
}
