
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_CONF_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_CONF_H_INCLUDED_


/*
 * Configuration messages.  Every mistake is an EMERG that names the
 * directive, the bad value and what is allowed, "in file:line" as nginx
 * prints it: at parse time through ngx_conf_log_error(), and for checks
 * that can only run once the http block is read (a keys file naming a
 * tier, a budget without prices) at the line of the directive, which was
 * noted when it was read.  The setters here replace nginx's stock slots
 * where those say only "invalid value".
 */

#include "ngx_http_ai_guard_common.h"


/* what ngx_http_ai_guard_set_num() takes as cmd->post */
typedef struct {
    ngx_int_t                      min;
    ngx_int_t                      max;
} ngx_http_ai_guard_num_bounds_t;


void ngx_http_ai_guard_where(ngx_conf_t *cf, ngx_http_ai_guard_where_t *w);
void ngx_cdecl ngx_http_ai_guard_conf_error(ngx_conf_t *cf,
    ngx_http_ai_guard_where_t *w, ngx_err_t err, const char *fmt, ...);
u_char *ngx_http_ai_guard_conf_list(ngx_conf_t *cf, void *names,
    ngx_uint_t n, size_t size, char *quote);
u_char *ngx_http_ai_guard_conf_tiers(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf);

char *ngx_http_ai_guard_set_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_guard_set_size(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_guard_set_num(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_guard_set_header_name(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_ai_guard_open_error(ngx_conf_t *cf,
    ngx_http_ai_guard_where_t *w, char *directive, ngx_str_t *value,
    ngx_str_t *name, ngx_err_t err);


#endif /* _NGX_HTTP_AI_GUARD_CONF_H_INCLUDED_ */
