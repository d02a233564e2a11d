
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_guard_keys.h"


#define NGX_HTTP_AI_GUARD_ALLOW     1
#define NGX_HTTP_AI_GUARD_REJECT    2
#define NGX_HTTP_AI_GUARD_MONITOR   3

#define NGX_HTTP_AI_GUARD_MAX_KEY   512


typedef struct {
    ngx_str_t                      name;
} ngx_http_ai_guard_tier_t;


typedef struct {
    ngx_str_t                      keys_file;
    ngx_http_ai_guard_keys_t      *keys;
    ngx_array_t                    tiers;     /* ngx_http_ai_guard_tier_t */
    ngx_uint_t                     enabled;   /* "ai_guard on" was seen */
} ngx_http_ai_guard_main_conf_t;


typedef struct {
    ngx_flag_t                     enable;
    ngx_str_t                      key_header;  /* empty: the default */
    ngx_uint_t                     log_level;
} ngx_http_ai_guard_loc_conf_t;


typedef struct {
    ngx_http_ai_guard_key_t       *key;
    ngx_str_t                      reason;
    ngx_uint_t                     decision;
} ngx_http_ai_guard_ctx_t;


ngx_http_ai_guard_ctx_t *ngx_http_ai_guard_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_guard_access_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_guard_init_digest(ngx_cycle_t *cycle);

ngx_int_t ngx_http_ai_guard_send_error(ngx_http_request_t *r,
    ngx_uint_t status, char *code, ngx_str_t *message);

ngx_int_t ngx_http_ai_guard_add_variables(ngx_conf_t *cf);


extern ngx_module_t  ngx_http_ai_guard_module;


#endif /* _NGX_HTTP_AI_GUARD_H_INCLUDED_ */
