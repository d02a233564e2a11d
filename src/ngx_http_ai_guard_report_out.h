
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REPORT_OUT_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REPORT_OUT_H_INCLUDED_


/*
 * The reports' output: a chain of buffers written as it goes.
 */

#include "ngx_http_ai_guard_common.h"


/*
 * Output written as it goes into a chain of buffers, each piece into room
 * reserved for it first: nothing is sized apart from its writing.  The
 * first failed allocation sticks, the rest of the writing is skipped.
 */

typedef struct {
    ngx_pool_t                    *pool;
    ngx_chain_t                   *out;
    ngx_chain_t                  **last;
    ngx_buf_t                     *buf;
    ngx_uint_t                     failed;
} ngx_http_ai_guard_out_t;


u_char *ngx_http_ai_guard_out_reserve(ngx_http_ai_guard_out_t *o, size_t n);
void ngx_http_ai_guard_out_text(ngx_http_ai_guard_out_t *o, char *text);
void ngx_http_ai_guard_out_printf(ngx_http_ai_guard_out_t *o, size_t max,
    const char *fmt, ...);
void ngx_http_ai_guard_out_json(ngx_http_ai_guard_out_t *o, ngx_str_t *s);
void ngx_http_ai_guard_out_csv(ngx_http_ai_guard_out_t *o, ngx_str_t *s);
void ngx_http_ai_guard_out_label(ngx_http_ai_guard_out_t *o, char *name,
    u_char *data, size_t len);
ngx_int_t ngx_http_ai_guard_out_send(ngx_http_request_t *r,
    ngx_http_ai_guard_out_t *o, char *type);


#endif /* _NGX_HTTP_AI_GUARD_REPORT_OUT_H_INCLUDED_ */
