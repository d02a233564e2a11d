
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_DIRECTIVE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_DIRECTIVE_H_INCLUDED_


/*
 * The handlers of the ai_guard directives that are not owned by a
 * feature file, and the zones they declare.
 */

#include "ngx_http_ai_guard_common.h"


char *ngx_http_ai_guard(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_ai_guard_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_ai_guard_max_series(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_guard_add_zones(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf);
char *ngx_http_ai_guard_limit_by(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_guard_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_ai_guard_tier(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


#endif /* _NGX_HTTP_AI_GUARD_DIRECTIVE_H_INCLUDED_ */
