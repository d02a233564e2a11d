
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REPORT_METRICS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REPORT_METRICS_H_INCLUDED_


/*
 * ai_guard_metrics: Prometheus text from the series zone.
 */

#include "ngx_http_ai_guard_common.h"


char *ngx_http_ai_guard_metrics_cmd(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_AI_GUARD_REPORT_METRICS_H_INCLUDED_ */
