
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_FILTER_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_FILTER_H_INCLUDED_


/*
 * The header and body filters: rate-limit headers, the meter fed as
 * the response passes.
 */

#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_filter_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_AI_GUARD_FILTER_H_INCLUDED_ */
