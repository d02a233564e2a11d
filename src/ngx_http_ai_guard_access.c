
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_cache.h"
#include "ngx_http_ai_guard_ctx.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_keys_module.h"
#include "ngx_http_ai_guard_ledger.h"
#include "ngx_http_ai_guard_limit_module.h"
#include "ngx_http_ai_guard_redis_outbox.h"
#include "ngx_http_ai_guard_request_module.h"
#include "ngx_http_ai_guard_rules_module.h"
#include "ngx_http_ai_guard_stream_usage.h"
#include "ngx_http_ai_guard_series.h"
#include "ngx_http_ai_guard_access.h"


/*
 * The checks in order of cost: the key, the body's own checks (JSON,
 * model, max_tokens), the limits, the prompt rules, the ledger row.  A
 * client over its limits costs no regex time; a request refused by a
 * rule gives its reservation back when it settles (at zero usage).  The
 * handler runs again after the body is read and after Redis answers: the
 * ctx's bits say what is done.
 */

ngx_int_t
ngx_http_ai_guard_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_ai_guard_ctx_t       *ctx;
    ngx_http_ai_guard_verdict_t    v;
    ngx_http_ai_guard_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_module);

    if (!alcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_ai_guard_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_ai_guard_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memzero(&v, sizeof(ngx_http_ai_guard_verdict_t));

        rc = ngx_http_ai_guard_authenticate(r, alcf, ctx, &v);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            rc = ngx_http_ai_guard_decide(r, alcf, ctx, &v);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }

        /*
         * Any method may carry a body, and the upstream reads it whatever
         * the method: a body is checked on GET, DELETE or OPTIONS as on
         * POST.  A request without one (GET /v1/models) has nothing to
         * check but its key and limits.
         */

        if ((r->method & (NGX_HTTP_POST|NGX_HTTP_PUT|NGX_HTTP_PATCH))
            || r->headers_in.content_length_n > 0
            || r->headers_in.chunked)
        {
            rc = ngx_http_ai_guard_read_body(r, alcf, ctx);
            if (rc != NGX_OK) {
                return rc;
            }

        } else {
            ctx->body_done = 1;
            ctx->checked = 1;
        }

    } else {
        /* an internal redirect clears module contexts */
        ngx_http_set_ctx(r, ctx, ngx_http_ai_guard_module);
    }

    if (ctx->admitted) {
        /* an internal redirect back into a guarded location */
        return NGX_DECLINED;
    }

    if (!ctx->body_done) {
        return NGX_AGAIN;
    }

    if (!ctx->checked) {
        ctx->checked = 1;
        ctx->parsed = 1;

        rc = ngx_http_ai_guard_check(r, alcf, ctx);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    if (ctx->key && !ctx->limited) {
        ngx_memzero(&v, sizeof(ngx_http_ai_guard_verdict_t));

        rc = ngx_http_ai_guard_limiter_reserve(r, alcf, ctx, &v);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_AGAIN) {
            /* resumed by Redis's reply through ngx_http_core_run_phases() */
            return NGX_AGAIN;
        }

        ctx->limited = 1;

        if (rc == NGX_DECLINED) {
            rc = ngx_http_ai_guard_decide(r, alcf, ctx, &v);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }
    }

    if (!ctx->ruled) {
        ctx->ruled = 1;

        ngx_memzero(&v, sizeof(ngx_http_ai_guard_verdict_t));

        rc = ngx_http_ai_guard_prompt_check(r, alcf, ctx, &v);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (v.status) {
            rc = ngx_http_ai_guard_decide(r, alcf, ctx, &v);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }

        /* after redaction: the edits compose */

        if (ctx->parser
            && ngx_http_ai_guard_stream_usage_inject(r, alcf, ctx) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx->key && !ctx->has_row) {
        ngx_memzero(&v, sizeof(ngx_http_ai_guard_verdict_t));

        rc = ngx_http_ai_guard_ledger_reserve(r, ctx, &v);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            rc = ngx_http_ai_guard_decide(r, alcf, ctx, &v);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }
    }

    if (alcf->cache_key != NGX_HTTP_AI_GUARD_CACHE_OFF
        && ctx->parser
        && ngx_http_ai_guard_cache_key(r, alcf, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->decision == 0) {
        ctx->decision = NGX_HTTP_AI_GUARD_ALLOW;
    }

    ctx->admitted = 1;

    ngx_http_ai_guard_in_flight(r, ctx, 1);

    /* with a journal, on disk before the upstream can have it */
    ngx_http_ai_guard_redis_begin(r, ctx);
    ngx_http_ai_guard_ledger_begin(r, ctx);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard admitted: decision:%ui tokens:%uL",
                   ctx->decision, ctx->est_tokens);

    return NGX_DECLINED;
}

