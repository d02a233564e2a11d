
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_RULES_MODULE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_RULES_MODULE_H_INCLUDED_


/*
 * Prompt rules and PII detectors over the texts of a request
 * (src/ngx_http_ai_guard_rules.c).
 */

#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_prompt_init(ngx_cycle_t *cycle);
int ngx_http_ai_guard_prompt_text(void *data,
    const ngx_http_ai_guard_text_t *t);
ngx_int_t ngx_http_ai_guard_prompt_check(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);
char *ngx_http_ai_guard_prompt_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_guard_prompt_rules_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_guard_pii(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_ai_guard_prompt_merge(ngx_conf_t *cf,
    ngx_http_ai_guard_loc_conf_t *prev, ngx_http_ai_guard_loc_conf_t *conf);


#endif /* _NGX_HTTP_AI_GUARD_RULES_MODULE_H_INCLUDED_ */
