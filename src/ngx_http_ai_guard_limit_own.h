
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_LIMIT_OWN_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_LIMIT_OWN_H_INCLUDED_


/*
 * A key's own limits and its tenant's (docs/limits.md, "A key's own
 * limits"): set through the admin API on top of its tier's, counted in
 * scopes of their own in the limits zone, "K" and the key's id, "T" and
 * the tenant, which no other key, nor another tenant, reaches.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_limit_module.h"


/* the scopes: the key's own limits, then its tenant's */
#define NGX_HTTP_AI_GUARD_OWN_KEY      0
#define NGX_HTTP_AI_GUARD_OWN_TENANT   1
#define NGX_HTTP_AI_GUARD_OWN_ITEMS    (2 * NGX_HTTP_AI_GUARD_LIMIT_NKINDS)


typedef struct {
    ngx_http_ai_guard_limit_item_t    items[NGX_HTTP_AI_GUARD_OWN_ITEMS];
    u_char                            which[NGX_HTTP_AI_GUARD_OWN_ITEMS];
    ngx_uint_t                        n;
    ngx_str_t                         scope[2];
    ngx_http_ai_guard_scope_t        *entry[2];  /* held: never freed */
    int                               rc;        /* its reservation's */
    ngx_http_ai_guard_limit_result_t  res;
    uint64_t                          remaining[NGX_HTTP_AI_GUARD_OWN_ITEMS];
    uint64_t                          reset_ms[NGX_HTTP_AI_GUARD_OWN_ITEMS];
    unsigned                          reserved:1;
} ngx_http_ai_guard_limit_own_t;


ngx_uint_t ngx_http_ai_guard_limit_items(ngx_http_ai_guard_ctx_t *ctx,
    const uint64_t *limits, ngx_http_ai_guard_limit_item_t *items);
ngx_int_t ngx_http_ai_guard_limit_own_scope(ngx_pool_t *pool,
    ngx_http_ai_guard_key_t *key, ngx_uint_t s, ngx_str_t *scope);
ngx_int_t ngx_http_ai_guard_limit_own_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    const uint64_t *tenant);
void ngx_http_ai_guard_limit_own_untake(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_limit_own_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_limit_own_headers(ngx_http_ai_guard_ctx_t *ctx);
ngx_uint_t ngx_http_ai_guard_limit_own_which(ngx_http_ai_guard_ctx_t *ctx);


#endif /* _NGX_HTTP_AI_GUARD_LIMIT_OWN_H_INCLUDED_ */
