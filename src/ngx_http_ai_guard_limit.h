
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_LIMIT_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_LIMIT_H_INCLUDED_


/*
 * Limiter arithmetic: token buckets, calendar quotas, concurrency and the
 * all-or-nothing reservation over them.  Pure code (no nginx runtime, no
 * floating point): counters are fixed-size plain structs without pointers,
 * so they live in shared memory as they are, and every function runs under
 * the zone mutex held by the caller.  Times are UTC milliseconds since the
 * epoch, passed in by the caller.
 *
 * One counter type serves every kind (16 bytes):
 *
 *   bucket (rpm, rph, tpm, tph): continuous refill of L units per period P.
 *     "level" is the usage in unit-milliseconds, units x P, so that the
 *     bucket drains by exactly L every millisecond and refill is exact.
 *     Capacity is L x P.  A settle that charges more than was reserved may
 *     push the level above capacity: the bucket is in DEBT, every request
 *     is denied until it drains below capacity again, and the retry time
 *     says when.  "stamp" is the millisecond the level was computed for.
 *
 *   quota (rpd, tpd, tokens_month, budget_day, budget_month): "level" is
 *     the amount used in the calendar window "stamp" (the UTC day number,
 *     or year * 12 + month - 1); a new window starts from zero.  Settles
 *     may push the amount used above the limit as well (debt until the
 *     window ends).
 *
 *   concurrency: "level" is the number of requests in flight.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_AI_GUARD_MINUTE_MS      60000ULL
#define NGX_HTTP_AI_GUARD_HOUR_MS        3600000ULL
#define NGX_HTTP_AI_GUARD_DAY_MS         86400000ULL

/*
 * The largest limit a bucket honours (larger ones are clamped): L x P then
 * stays below 2^62 for periods up to an hour.
 */
#define NGX_HTTP_AI_GUARD_LIMIT_MAX      1000000000000ULL

/* concurrency has no refill to wait for: the retry hint it gives */
#define NGX_HTTP_AI_GUARD_LIMIT_CONC_RETRY_MS  1000

/* bytes a formatted uint64_t may take: "18446744073709551615" */
#define NGX_HTTP_AI_GUARD_UINT_LEN       20

/* bytes a formatted duration may take: "5124095576030h25m52s" */
#define NGX_HTTP_AI_GUARD_DURATION_LEN   32

/* results of check and reserve */
#define NGX_HTTP_AI_GUARD_LIMIT_OK       0
#define NGX_HTTP_AI_GUARD_LIMIT_WAIT     1  /* denied, retry after ms */
#define NGX_HTTP_AI_GUARD_LIMIT_NEVER    2  /* cost > limit: cannot fit */


/* which limit decided; ngx_http_ai_guard_limit_name() prints it */
typedef enum {
    NGX_HTTP_AI_GUARD_LIMIT_NONE = 0,
    NGX_HTTP_AI_GUARD_LIMIT_RPM,
    NGX_HTTP_AI_GUARD_LIMIT_RPH,
    NGX_HTTP_AI_GUARD_LIMIT_RPD,
    NGX_HTTP_AI_GUARD_LIMIT_TPM,
    NGX_HTTP_AI_GUARD_LIMIT_TPH,
    NGX_HTTP_AI_GUARD_LIMIT_TPD,
    NGX_HTTP_AI_GUARD_LIMIT_TOKENS_MONTH,
    NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY,
    NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY,
    NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH,
    NGX_HTTP_AI_GUARD_LIMIT_NKINDS
} ngx_http_ai_guard_limit_kind_e;


typedef enum {
    NGX_HTTP_AI_GUARD_CAL_DAY = 0,
    NGX_HTTP_AI_GUARD_CAL_MONTH
} ngx_http_ai_guard_cal_e;


/* lives in shared memory: no pointers */
typedef struct {
    uint64_t                            level;
    uint64_t                            stamp;
} ngx_http_ai_guard_counter_t;


/*
 * One limit of a request, in the caller's (per-request) memory.  "cost" is
 * what is reserved: 1 for request counters and concurrency, the token
 * estimate for token counters, pico-USD for budgets.  "window" is set by
 * reserve for quotas, so that a settle after midnight does not refund the
 * new day.  An item whose counter is NULL is skipped.
 */
typedef struct {
    ngx_http_ai_guard_counter_t        *counter;
    uint64_t                            limit;
    uint64_t                            cost;
    uint64_t                            window;
    ngx_http_ai_guard_limit_kind_e      kind;
} ngx_http_ai_guard_limit_item_t;


typedef struct {
    ngx_http_ai_guard_limit_kind_e      kind;      /* NONE when allowed */
    uint64_t                            retry_ms;  /* with LIMIT_WAIT */
    size_t                              index;     /* the deciding item */
} ngx_http_ai_guard_limit_result_t;


/*
 * Arithmetic on numbers a client or an upstream chose (token counts,
 * max_tokens, n, prices): the result stops at UINT64_MAX instead of
 * wrapping, so a huge number stays huge.
 */
uint64_t ngx_http_ai_guard_sat_add(uint64_t a, uint64_t b);
uint64_t ngx_http_ai_guard_sat_mul(uint64_t a, uint64_t b);
int64_t ngx_http_ai_guard_sat_delta(uint64_t real, uint64_t reserved);

/*
 * The token estimate of a request: "prompt" plus the completion it may
 * ask for, "max_tokens" (as the request parser gives it, -1 absent), else
 * "tier_cap" (the tier's max_tokens, -1 none), else "dflt"; the completion
 * counts "n" times (n below 1 or absent counts once).  Every step saturates
 * at UINT64_MAX, so a huge max_tokens x n is an estimate no token limit
 * holds (LIMIT_NEVER), never a small wrapped one.  The completion alone is
 * stored in "*output", for the price of the estimate.
 */
uint64_t ngx_http_ai_guard_limit_estimate(uint64_t prompt, int64_t max_tokens,
    int64_t n, int64_t tier_cap, uint64_t dflt, uint64_t *output);

/* token bucket */
int ngx_http_ai_guard_bucket_check(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now, uint64_t cost,
    uint64_t *wait);
void ngx_http_ai_guard_bucket_take(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now, uint64_t cost);
void ngx_http_ai_guard_bucket_settle(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now, int64_t delta);
uint64_t ngx_http_ai_guard_bucket_remaining(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now);
uint64_t ngx_http_ai_guard_bucket_reset_ms(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now);

/* calendar quota */
uint64_t ngx_http_ai_guard_cal_window(ngx_http_ai_guard_cal_e cal,
    uint64_t now);
uint64_t ngx_http_ai_guard_cal_reset_ms(ngx_http_ai_guard_cal_e cal,
    uint64_t now);
int ngx_http_ai_guard_quota_check(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t limit, uint64_t now,
    uint64_t cost, uint64_t *wait);
void ngx_http_ai_guard_quota_take(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t now, uint64_t cost);
void ngx_http_ai_guard_quota_settle(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t now, uint64_t window,
    int64_t delta);
uint64_t ngx_http_ai_guard_quota_remaining(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t limit, uint64_t now);

/* any kind */
const char *ngx_http_ai_guard_limit_name(ngx_http_ai_guard_limit_kind_e k);
const char *ngx_http_ai_guard_limit_code(ngx_http_ai_guard_limit_kind_e k);
int ngx_http_ai_guard_limit_check(ngx_http_ai_guard_limit_item_t *it,
    uint64_t now, uint64_t *wait);
int ngx_http_ai_guard_limit_reserve(ngx_http_ai_guard_limit_item_t *items,
    size_t n, uint64_t now, ngx_http_ai_guard_limit_result_t *res);
void ngx_http_ai_guard_limit_take(ngx_http_ai_guard_limit_item_t *items,
    size_t n);
void ngx_http_ai_guard_limit_settle(ngx_http_ai_guard_limit_item_t *items,
    size_t n, uint64_t now, uint64_t tokens, uint64_t money);
void ngx_http_ai_guard_limit_untake(ngx_http_ai_guard_limit_item_t *items,
    size_t n, uint64_t now);
unsigned ngx_http_ai_guard_limit_unit(ngx_http_ai_guard_limit_kind_e k);
uint64_t ngx_http_ai_guard_limit_fresh_at(ngx_http_ai_guard_limit_item_t *items,
    size_t n, uint64_t now);
uint64_t ngx_http_ai_guard_limit_remaining(ngx_http_ai_guard_limit_item_t *it,
    uint64_t now);
uint64_t ngx_http_ai_guard_limit_reset_ms(ngx_http_ai_guard_limit_item_t *it,
    uint64_t now);

/* OpenAI's header formats */
u_char *ngx_http_ai_guard_uint_format(u_char *p, uint64_t n);
u_char *ngx_http_ai_guard_duration_format(u_char *buf, uint64_t ms);
int ngx_http_ai_guard_duration_parse(const u_char *p, size_t len,
    uint64_t *ms);
uint64_t ngx_http_ai_guard_retry_after(uint64_t ms);


#endif /* _NGX_HTTP_AI_GUARD_LIMIT_H_INCLUDED_ */
