
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_ACCESS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_ACCESS_H_INCLUDED_


/*
 * The access phase handler: the checks of a request in order of cost.
 */

#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_access_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_AI_GUARD_ACCESS_H_INCLUDED_ */
