
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_JWT_MODULE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_JWT_MODULE_H_INCLUDED_


/*
 * ngx_http_ai_guard_jwt_module: OAuth/JWT bearer tokens as credentials.
 * The module owns the ai_guard_jwt* directives; the verification itself
 * is the pure code of ngx_http_ai_guard_jwt.c.  The API-key code calls in
 * here when a location accepts tokens and the credential looks like one.
 */


#include "ngx_http_ai_guard_common.h"


/* 1 if the location of r accepts tokens ("ai_guard_jwt on") */
ngx_uint_t ngx_http_ai_guard_jwt_on(ngx_http_request_t *r);

/* 1 if s is shaped like a JWS: "eyJ..." and three base64url parts */
ngx_uint_t ngx_http_ai_guard_jwt_is_token(ngx_str_t *s);

/*
 * Verifies the token and, on success, sets ctx->key to an identity built
 * from its claims (r->pool) and returns NGX_OK; a rejected token fills v
 * and returns NGX_DECLINED; NGX_ERROR on an internal failure.
 */
ngx_int_t ngx_http_ai_guard_jwt_authenticate(ngx_http_request_t *r,
    ngx_str_t *token, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);


extern ngx_module_t  ngx_http_ai_guard_jwt_module;


#endif /* _NGX_HTTP_AI_GUARD_JWT_MODULE_H_INCLUDED_ */
