
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_ERROR_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_ERROR_H_INCLUDED_


/*
 * Verdicts: what a check decided, turned into the client's error
 * (enforce mode) or a log line (monitor mode).
 */

#include "ngx_http_ai_guard_common.h"


/* the longest message a verdict makes of its own */
#define NGX_HTTP_AI_GUARD_MESSAGE_LEN  512

/* a name from the request in a message: printable, cut at 64 bytes */
#define NGX_HTTP_AI_GUARD_NAME_LEN     64


ngx_uint_t ngx_http_ai_guard_dialect(ngx_http_request_t *r);
void ngx_http_ai_guard_set_verdict(ngx_http_ai_guard_verdict_t *v,
    ngx_uint_t status, char *code, char *message);
ngx_int_t ngx_cdecl ngx_http_ai_guard_verdict_message(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v, const char *fmt, ...);
ngx_int_t ngx_http_ai_guard_send_error(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v);
ngx_int_t ngx_http_ai_guard_gateway_page(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t **ctxp);
ngx_int_t ngx_http_ai_guard_decide(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);


#endif /* _NGX_HTTP_AI_GUARD_ERROR_H_INCLUDED_ */
