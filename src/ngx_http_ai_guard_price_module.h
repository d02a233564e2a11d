
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_PRICE_MODULE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_PRICE_MODULE_H_INCLUDED_


/*
 * ai_guard_price: the price of a model (src/ngx_http_ai_guard_price.c).
 */

#include "ngx_http_ai_guard_common.h"


int64_t ngx_http_ai_guard_price_of(ngx_http_request_t *r, u_char *model,
    size_t len, uint64_t input, uint64_t output, uint64_t cached,
    uint64_t cache_write);
ngx_http_ai_guard_price_t *ngx_http_ai_guard_price_find(ngx_http_request_t *r,
    u_char *model, size_t len);
void ngx_http_ai_guard_price_init(ngx_http_ai_guard_main_conf_t *amcf);
char *ngx_http_ai_guard_price(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


#endif /* _NGX_HTTP_AI_GUARD_PRICE_MODULE_H_INCLUDED_ */
