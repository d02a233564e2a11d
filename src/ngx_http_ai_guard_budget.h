
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_BUDGET_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_BUDGET_H_INCLUDED_


/*
 * Budget alerts (docs/limits.md#budget-alerts): a tier's budget_alert=
 * thresholds, each alerted once per budget window, across the workers
 * (the state below, in the scope's entry of the limits zone, under its
 * mutex) and across nodes (with Redis: one script adds the threshold to
 * a set of the window and, when it was not there, an event to a stream).
 */

#include "ngx_http_ai_guard_common.h"


/* the two budgets a scope may have: ctx->budget[] and the state's index */
#define NGX_HTTP_AI_GUARD_BUDGET_DAY    0
#define NGX_HTTP_AI_GUARD_BUDGET_MONTH  1

#define ngx_http_ai_guard_budget_index(kind)                                 \
    ((kind) == NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY                            \
     ? NGX_HTTP_AI_GUARD_BUDGET_DAY : NGX_HTTP_AI_GUARD_BUDGET_MONTH)


/*
 * A budget's window as the alerts see it: the pico-USD the requests in
 * flight reserved ("held", so that what they may spend is not taken for
 * spent), and the thresholds alerted, a bit each in the order of the
 * tier's budget_alert=.  It lives in shared memory, in the first bytes of
 * a limits zone's scope entry: the reply of Redis finds it there by the
 * scope's key alone.
 */

typedef struct {
    uint64_t                       held;
    uint32_t                       window;
    uint32_t                       fired;
} ngx_http_ai_guard_budget_state_t;


/* the tier's "budget_alert=50%,80%,100%", the value after "=" */
ngx_int_t ngx_http_ai_guard_budget_alert_set(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier, ngx_str_t *value, ngx_uint_t arg);
char *ngx_http_ai_guard_budget_tier(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier);
ngx_int_t ngx_http_ai_guard_budget_redis_init(ngx_conf_t *cf);

/* at a reservation and a settlement, under the limits zone's mutex */
void ngx_http_ai_guard_budget_hold(ngx_http_ai_guard_budget_state_t *state,
    uint64_t window, uint64_t cost);
void ngx_http_ai_guard_budget_release(ngx_http_ai_guard_budget_state_t *state,
    uint64_t window, uint64_t cost);
void ngx_http_ai_guard_budget_note(ngx_http_ai_guard_ctx_t *ctx,
    ngx_uint_t kind, uint64_t used, uint64_t limit, uint64_t window);
ngx_uint_t ngx_http_ai_guard_budget_crossed(ngx_http_ai_guard_ctx_t *ctx,
    ngx_uint_t b, ngx_http_ai_guard_budget_state_t *state, uint64_t now,
    uint64_t *until);
ngx_uint_t ngx_http_ai_guard_budget_watched(ngx_http_ai_guard_ctx_t *ctx,
    ngx_uint_t b);

/* then, without it */
void ngx_http_ai_guard_budget_alert(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t b, ngx_uint_t crossed);


#endif /* _NGX_HTTP_AI_GUARD_BUDGET_H_INCLUDED_ */
