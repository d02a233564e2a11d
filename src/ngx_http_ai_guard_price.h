
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_PRICE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_PRICE_H_INCLUDED_


/*
 * Price arithmetic in integers.  The ledger unit is the pico-dollar
 * (1e-12 USD) in an int64_t, which holds up to 9,223,372.036854775807 USD.
 * Prices are configured in USD per 1M tokens with at most 6 decimals and
 * kept in micro-USD per 1M tokens, which is pico-USD per token: a cost is
 * tokens x price, exact.  Pure code: no nginx runtime, no floating point.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_AI_GUARD_PICO_PER_USD   1000000000000LL
#define NGX_HTTP_AI_GUARD_PICO_MAX       INT64_MAX

/* a price not configured (cached_input, cache_write fall back to input) */
#define NGX_HTTP_AI_GUARD_PRICE_UNSET    (-1)

/* bytes a formatted amount may take: "-9223372.036854775808" */
#define NGX_HTTP_AI_GUARD_USD_LEN        32


typedef enum {
    NGX_HTTP_AI_GUARD_BUDGET_DAY = 0,
    NGX_HTTP_AI_GUARD_BUDGET_MONTH
} ngx_http_ai_guard_budget_period_e;


/* pico-USD per token (= micro-USD per 1M tokens), or PRICE_UNSET */
typedef struct {
    int64_t                             input;
    int64_t                             output;
    int64_t                             cached_input;
    int64_t                             cache_write;
} ngx_http_ai_guard_price_t;


int ngx_http_ai_guard_price_parse(const u_char *p, size_t len,
    int64_t *price);
int ngx_http_ai_guard_usd_parse(const u_char *p, size_t len, int64_t *pico);
int ngx_http_ai_guard_budget_parse(const u_char *p, size_t len,
    int64_t *pico, ngx_http_ai_guard_budget_period_e *period);

int64_t ngx_http_ai_guard_price_cost(const ngx_http_ai_guard_price_t *pr,
    uint64_t input, uint64_t output, uint64_t cached, uint64_t cache_write);
int64_t ngx_http_ai_guard_pico_add(int64_t a, int64_t b);
u_char *ngx_http_ai_guard_usd_format(u_char *buf, int64_t pico);

int ngx_http_ai_guard_glob_match(const u_char *pat, size_t plen,
    const u_char *s, size_t slen);


#endif /* _NGX_HTTP_AI_GUARD_PRICE_H_INCLUDED_ */
