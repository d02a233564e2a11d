
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REWRITE_MODULE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REWRITE_MODULE_H_INCLUDED_


/*
 * The request body as the upstream will get it: read whole (from memory
 * or the temp file), and replaced by its rewrite (rewrite.c's edits),
 * with the length the upstream is told and the canonical form the cache
 * key is made of following it.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_rewrite.h"


/* the body, in one piece: in place when it is one memory buffer */
ngx_int_t ngx_http_ai_guard_body_whole(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_str_t *body);

/* the body with the edits (in order) is what the upstream gets */
ngx_int_t ngx_http_ai_guard_body_rewrite(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_str_t *body, ngx_http_ai_guard_rewrite_edit_t *e, ngx_uint_t n);


#endif /* _NGX_HTTP_AI_GUARD_REWRITE_MODULE_H_INCLUDED_ */
