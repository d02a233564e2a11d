
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REPORT_USAGE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REPORT_USAGE_H_INCLUDED_


/*
 * ai_guard_usage: the usage report, JSON, CSV and Stripe meter events.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_report_out.h"


char *ngx_http_ai_guard_usage_cmd(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_guard_usage_self(ngx_http_request_t *r,
    ngx_http_ai_guard_out_t *o, ngx_http_ai_guard_key_t *key);


#endif /* _NGX_HTTP_AI_GUARD_REPORT_USAGE_H_INCLUDED_ */
