
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDACT_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDACT_H_INCLUDED_


/*
 * "ai_guard_pii_action redact": each PII finding in a text the model
 * reads is replaced in the forwarded body by a placeholder
 * ("ai_guard_pii_placeholder", "[%D_%N]": "[EMAIL_1]"), the same value
 * by the same placeholder within a request.  Counted by detector in
 * the series zone; logged by detector, never by value.
 */

#include "ngx_http_ai_guard_common.h"


#define NGX_HTTP_AI_GUARD_PII_PLACEHOLDER  "[%D_%N]"


char *ngx_http_ai_guard_pii_placeholder(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * NGX_OK: nothing found, or every finding replaced in the body the
 * upstream gets; NGX_DECLINED: a finding it could not place (one only the
 * normal form shows), ctx->pii_hit names its detector and the caller
 * refuses as "block" would; NGX_ERROR.
 */
ngx_int_t ngx_http_ai_guard_redact(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);


#endif /* _NGX_HTTP_AI_GUARD_REDACT_H_INCLUDED_ */
