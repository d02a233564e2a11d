
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_ADMIN_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_ADMIN_H_INCLUDED_


/*
 * ai_guard_admin: the admin API over the key store (docs/admin.md).
 */

#include "ngx_http_ai_guard_common.h"


char *ngx_http_ai_guard_admin_cmd(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_AI_GUARD_ADMIN_H_INCLUDED_ */
