
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REPORT_SELF_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REPORT_SELF_H_INCLUDED_


/*
 * ai_guard_self: a key's holder reads its own tier, limits, what remains
 * of them and its spend this month; nothing of any other key.
 */

#include "ngx_http_ai_guard_common.h"


char *ngx_http_ai_guard_self_cmd(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_AI_GUARD_REPORT_SELF_H_INCLUDED_ */
