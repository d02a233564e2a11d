
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_KEYS_MODULE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_KEYS_MODULE_H_INCLUDED_


/*
 * API keys: the key from the request, its digest looked up in the
 * keys file (src/ngx_http_ai_guard_keys.c), stripped before the upstream.
 */

#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_authenticate(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);
ngx_int_t ngx_http_ai_guard_load_keys(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf);


#endif /* _NGX_HTTP_AI_GUARD_KEYS_MODULE_H_INCLUDED_ */
