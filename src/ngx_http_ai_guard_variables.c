
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard.h"


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

    return NGX_OK;
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

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = s->data;

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

    v->len = decisions[ctx->decision].len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = decisions[ctx->decision].data;

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

    v->len = ctx->verdict.reason.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = ctx->verdict.reason.data;

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

    v->len = ctx->req.model_len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = ctx->req.model;

    return NGX_OK;
}


/* empty, and so no caching, unless the request may be served twice */

static ngx_int_t
ngx_http_ai_guard_cache_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_ai_guard_get_ctx(r->main);

    if (ctx == NULL || !ctx->has_cache_key) {
        v->len = 0;
        v->valid = 1;
        v->no_cacheable = 0;
        v->not_found = 0;
        v->data = (u_char *) "";
        return NGX_OK;
    }

    v->len = sizeof(ctx->cache_key);
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = ctx->cache_key;

    return NGX_OK;
}
