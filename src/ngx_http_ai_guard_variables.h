
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_VARIABLES_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_VARIABLES_H_INCLUDED_


/*
 * $ai_guard_* variables.
 */

#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_AI_GUARD_VARIABLES_H_INCLUDED_ */
