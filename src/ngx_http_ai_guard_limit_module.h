
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_LIMIT_MODULE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_LIMIT_MODULE_H_INCLUDED_


/*
 * The limiter in shared memory: a request's scope, its reservation and
 * settlement (the arithmetic is src/ngx_http_ai_guard_limit.c).
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_budget.h"


/*
 * A scope's entry in the limits zone.  "budget": the thresholds of its
 * budgets alerted this window, first, where budget.c finds them by the
 * key alone; "fresh_at": from this millisecond on, every bucket is
 * drained, every quota's window is over and no alert is remembered (only
 * ever pushed later, so it may be late, never early); "held": requests
 * between their reservation and its settlement.  An entry goes only when
 * it is fresh and held by none: then it is the same as a new one.
 */

typedef struct {
    ngx_http_ai_guard_budget_state_t  budget[2];
    uint64_t                       fresh_at;
    uint64_t                       held;
    ngx_http_ai_guard_counter_t    counters[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
} ngx_http_ai_guard_scope_t;


void ngx_http_ai_guard_limiter_zone(ngx_http_ai_guard_main_conf_t *amcf);
ngx_int_t ngx_http_ai_guard_limiter_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);
void ngx_http_ai_guard_limiter_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
ngx_int_t ngx_http_ai_guard_scope_key(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);


#endif /* _NGX_HTTP_AI_GUARD_LIMIT_MODULE_H_INCLUDED_ */
