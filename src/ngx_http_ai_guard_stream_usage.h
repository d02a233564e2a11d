
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_STREAM_USAGE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_STREAM_USAGE_H_INCLUDED_


/*
 * "ai_guard_stream_usage inject": an OpenAI streaming request without
 * stream_options.include_usage gets it in the forwarded body, so that the
 * upstream's own usage settles the stream; the usage chunk (empty
 * "choices") is then taken out of what the client, which did not ask for
 * it, sees.
 */

#include "ngx_http_ai_guard_common.h"


ngx_int_t ngx_http_ai_guard_stream_usage_inject(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);

/* the response's chain without the usage chunk, in *out */
ngx_int_t ngx_http_ai_guard_stream_usage_strip(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_chain_t *in, ngx_chain_t **out);


#endif /* _NGX_HTTP_AI_GUARD_STREAM_USAGE_H_INCLUDED_ */
