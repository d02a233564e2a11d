
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include <ngx_http_ai_guard_date.h>
#include <ngx_http_ai_guard_limit.h>


#define NGX_HTTP_AI_GUARD_TYPE_BUCKET  0
#define NGX_HTTP_AI_GUARD_TYPE_QUOTA   1
#define NGX_HTTP_AI_GUARD_TYPE_CONC    2

#define NGX_HTTP_AI_GUARD_UNIT_REQ     0
#define NGX_HTTP_AI_GUARD_UNIT_TOKEN   1
#define NGX_HTTP_AI_GUARD_UNIT_MONEY   2
#define NGX_HTTP_AI_GUARD_UNIT_CONC    3

/*
 * Below this many milliseconds the refill limit x elapsed cannot overflow
 * (limit < 2^40), so the common case needs no division.
 */
#define NGX_HTTP_AI_GUARD_ELAPSED_FAST  (1ULL << 22)


typedef struct {
    const char                 *name;
    const char                 *code;
    uint64_t                    period;   /* bucket: ms; quota: calendar */
    unsigned                    type:2;
    unsigned                    unit:2;
} ngx_http_ai_guard_limit_kind_t;


static uint64_t ngx_http_ai_guard_bucket_refill(
    ngx_http_ai_guard_counter_t *c, uint64_t limit, uint64_t now);
static void ngx_http_ai_guard_bucket_refund(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now, uint64_t amount);
static void ngx_http_ai_guard_limit_correct(
    ngx_http_ai_guard_limit_item_t *items, size_t n, uint64_t now,
    uint64_t tokens, uint64_t money, unsigned all);
static void ngx_http_ai_guard_quota_refund(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t now, uint64_t window,
    uint64_t amount);
static uint64_t ngx_http_ai_guard_quota_roll(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t now);


static const ngx_http_ai_guard_limit_kind_t
    ngx_http_ai_guard_limit_kinds[NGX_HTTP_AI_GUARD_LIMIT_NKINDS] =
{
    { "none", "", 0, NGX_HTTP_AI_GUARD_TYPE_CONC,
      NGX_HTTP_AI_GUARD_UNIT_REQ },
    { "rpm", "rate_limit_exceeded", NGX_HTTP_AI_GUARD_MINUTE_MS,
      NGX_HTTP_AI_GUARD_TYPE_BUCKET, NGX_HTTP_AI_GUARD_UNIT_REQ },
    { "rph", "rate_limit_exceeded", NGX_HTTP_AI_GUARD_HOUR_MS,
      NGX_HTTP_AI_GUARD_TYPE_BUCKET, NGX_HTTP_AI_GUARD_UNIT_REQ },
    { "rpd", "insufficient_quota", NGX_HTTP_AI_GUARD_CAL_DAY,
      NGX_HTTP_AI_GUARD_TYPE_QUOTA, NGX_HTTP_AI_GUARD_UNIT_REQ },
    { "tpm", "rate_limit_exceeded", NGX_HTTP_AI_GUARD_MINUTE_MS,
      NGX_HTTP_AI_GUARD_TYPE_BUCKET, NGX_HTTP_AI_GUARD_UNIT_TOKEN },
    { "tph", "rate_limit_exceeded", NGX_HTTP_AI_GUARD_HOUR_MS,
      NGX_HTTP_AI_GUARD_TYPE_BUCKET, NGX_HTTP_AI_GUARD_UNIT_TOKEN },
    { "tpd", "insufficient_quota", NGX_HTTP_AI_GUARD_CAL_DAY,
      NGX_HTTP_AI_GUARD_TYPE_QUOTA, NGX_HTTP_AI_GUARD_UNIT_TOKEN },
    { "tokens_month", "insufficient_quota", NGX_HTTP_AI_GUARD_CAL_MONTH,
      NGX_HTTP_AI_GUARD_TYPE_QUOTA, NGX_HTTP_AI_GUARD_UNIT_TOKEN },
    { "concurrency", "rate_limit_exceeded", 0,
      NGX_HTTP_AI_GUARD_TYPE_CONC, NGX_HTTP_AI_GUARD_UNIT_CONC },
    { "budget_day", "insufficient_quota", NGX_HTTP_AI_GUARD_CAL_DAY,
      NGX_HTTP_AI_GUARD_TYPE_QUOTA, NGX_HTTP_AI_GUARD_UNIT_MONEY },
    { "budget_month", "insufficient_quota", NGX_HTTP_AI_GUARD_CAL_MONTH,
      NGX_HTTP_AI_GUARD_TYPE_QUOTA, NGX_HTTP_AI_GUARD_UNIT_MONEY }
};


uint64_t
ngx_http_ai_guard_sat_add(uint64_t a, uint64_t b)
{
    return (a > UINT64_MAX - b) ? UINT64_MAX : a + b;
}


uint64_t
ngx_http_ai_guard_sat_mul(uint64_t a, uint64_t b)
{
    uint64_t  r;

    if (__builtin_mul_overflow(a, b, &r)) {
        return UINT64_MAX;
    }

    return r;
}


/* real - reserved, clamped to what an int64_t holds */

int64_t
ngx_http_ai_guard_sat_delta(uint64_t real, uint64_t reserved)
{
    uint64_t  d;

    if (real >= reserved) {
        d = real - reserved;
        return (d > INT64_MAX) ? INT64_MAX : (int64_t) d;
    }

    d = reserved - real;

    return (d > INT64_MAX) ? -INT64_MAX : -(int64_t) d;
}


uint64_t
ngx_http_ai_guard_limit_estimate(uint64_t prompt, int64_t max_tokens,
    int64_t n, int64_t tier_cap, uint64_t dflt, uint64_t *output)
{
    uint64_t  out;

    if (max_tokens >= 0) {
        out = (uint64_t) max_tokens;

    } else if (tier_cap >= 0) {
        out = (uint64_t) tier_cap;

    } else {
        out = dflt;
    }

    if (n > 1) {
        out = ngx_http_ai_guard_sat_mul(out, (uint64_t) n);
    }

    *output = out;

    return ngx_http_ai_guard_sat_add(prompt, out);
}


/*
 * Drains the bucket up to "now" and returns the time its level is valid
 * for: "now", or the stamp when another worker's clock ran a little ahead.
 * A refill is neutral (the level at "now" is the same whether or not it is
 * stored), so every operation starts with one.
 */

static uint64_t
ngx_http_ai_guard_bucket_refill(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t now)
{
    uint64_t  elapsed;

    if (now <= c->stamp) {
        return c->stamp;
    }

    elapsed = now - c->stamp;
    c->stamp = now;

    if (elapsed < NGX_HTTP_AI_GUARD_ELAPSED_FAST) {
        elapsed *= limit;
        c->level = (c->level > elapsed) ? c->level - elapsed : 0;
        return now;
    }

    if (limit == 0) {
        return now;
    }

    if (elapsed > c->level / limit) {
        c->level = 0;

    } else {
        c->level -= elapsed * limit;
    }

    return now;
}


int
ngx_http_ai_guard_bucket_check(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now, uint64_t cost,
    uint64_t *wait)
{
    uint64_t  t, room, need;

    if (limit > NGX_HTTP_AI_GUARD_LIMIT_MAX) {
        limit = NGX_HTTP_AI_GUARD_LIMIT_MAX;
    }

    if (period > NGX_HTTP_AI_GUARD_HOUR_MS) {
        period = NGX_HTTP_AI_GUARD_HOUR_MS;
    }

    t = ngx_http_ai_guard_bucket_refill(c, limit, now);

    *wait = 0;

    if (cost > limit) {
        return NGX_HTTP_AI_GUARD_LIMIT_NEVER;
    }

    /* cost <= limit: no overflow, and room >= 0 */
    room = (limit - cost) * period;

    if (c->level <= room) {
        return NGX_HTTP_AI_GUARD_LIMIT_OK;
    }

    if (limit == 0) {
        /* a zero limit never drains a debt */
        return NGX_HTTP_AI_GUARD_LIMIT_NEVER;
    }

    /* a clock far behind the stamp must not wrap the wait to a short one */

    need = c->level - room;
    *wait = ngx_http_ai_guard_sat_add(need / limit + (need % limit != 0),
                                      t - now);

    return NGX_HTTP_AI_GUARD_LIMIT_WAIT;
}


void
ngx_http_ai_guard_bucket_take(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now, uint64_t cost)
{
    if (limit > NGX_HTTP_AI_GUARD_LIMIT_MAX) {
        limit = NGX_HTTP_AI_GUARD_LIMIT_MAX;
    }

    if (period > NGX_HTTP_AI_GUARD_HOUR_MS) {
        period = NGX_HTTP_AI_GUARD_HOUR_MS;
    }

    (void) ngx_http_ai_guard_bucket_refill(c, limit, now);

    c->level = ngx_http_ai_guard_sat_add(c->level,
                                         ngx_http_ai_guard_sat_mul(cost,
                                                                   period));
}


/*
 * A positive delta charges beyond the reservation and may put the bucket
 * in debt (level above capacity); a negative one refunds, down to empty.
 */

void
ngx_http_ai_guard_bucket_settle(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now, int64_t delta)
{
    if (delta >= 0) {
        ngx_http_ai_guard_bucket_take(c, limit, period, now,
                                      (uint64_t) delta);
        return;
    }

    ngx_http_ai_guard_bucket_refund(c, limit, period, now,
                                    (uint64_t) 0 - (uint64_t) delta);
}


/* gives back "amount" units, down to empty */

static void
ngx_http_ai_guard_bucket_refund(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now, uint64_t amount)
{
    uint64_t  d;

    if (limit > NGX_HTTP_AI_GUARD_LIMIT_MAX) {
        limit = NGX_HTTP_AI_GUARD_LIMIT_MAX;
    }

    if (period > NGX_HTTP_AI_GUARD_HOUR_MS) {
        period = NGX_HTTP_AI_GUARD_HOUR_MS;
    }

    (void) ngx_http_ai_guard_bucket_refill(c, limit, now);

    d = ngx_http_ai_guard_sat_mul(amount, period);
    c->level = (c->level > d) ? c->level - d : 0;
}


uint64_t
ngx_http_ai_guard_bucket_remaining(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now)
{
    uint64_t  cap;

    if (limit > NGX_HTTP_AI_GUARD_LIMIT_MAX) {
        limit = NGX_HTTP_AI_GUARD_LIMIT_MAX;
    }

    if (period > NGX_HTTP_AI_GUARD_HOUR_MS) {
        period = NGX_HTTP_AI_GUARD_HOUR_MS;
    }

    if (period == 0) {
        return limit;
    }

    (void) ngx_http_ai_guard_bucket_refill(c, limit, now);

    cap = limit * period;

    return (c->level >= cap) ? 0 : (cap - c->level) / period;
}


/* ms until the bucket is empty (full capacity available) again */

uint64_t
ngx_http_ai_guard_bucket_reset_ms(ngx_http_ai_guard_counter_t *c,
    uint64_t limit, uint64_t period, uint64_t now)
{
    uint64_t  t;

    /* the period is not needed: the level drains at "limit" a millisecond */
    (void) period;

    if (limit > NGX_HTTP_AI_GUARD_LIMIT_MAX) {
        limit = NGX_HTTP_AI_GUARD_LIMIT_MAX;
    }

    t = ngx_http_ai_guard_bucket_refill(c, limit, now);

    if (c->level == 0) {
        return 0;
    }

    if (limit == 0) {
        return UINT64_MAX;
    }

    return ngx_http_ai_guard_sat_add(c->level / limit
                                     + (c->level % limit != 0),
                                     t - now);
}


uint64_t
ngx_http_ai_guard_cal_window(ngx_http_ai_guard_cal_e cal, uint64_t now)
{
    int64_t  y, m, d;

    if (cal == NGX_HTTP_AI_GUARD_CAL_DAY) {
        return now / NGX_HTTP_AI_GUARD_DAY_MS;
    }

    ngx_http_ai_guard_civil_from_days(now / NGX_HTTP_AI_GUARD_DAY_MS, &y, &m,
                                      &d);

    return (uint64_t) (y * 12 + m - 1);
}


/*
 * ms until the next UTC midnight, or the next 1st of a month 00:00 UTC;
 * in the last window before 2^64 ms, until then.
 */

uint64_t
ngx_http_ai_guard_cal_reset_ms(ngx_http_ai_guard_cal_e cal, uint64_t now)
{
    int64_t   y, m, d;
    uint64_t  days;

    days = now / NGX_HTTP_AI_GUARD_DAY_MS;

    if (cal == NGX_HTTP_AI_GUARD_CAL_MONTH) {
        ngx_http_ai_guard_civil_from_days(days, &y, &m, &d);

        if (m == 12) {
            y++;
            m = 1;

        } else {
            m++;
        }

        return ngx_http_ai_guard_sat_mul(
                   ngx_http_ai_guard_days_from_civil(y, m, 1),
                   NGX_HTTP_AI_GUARD_DAY_MS)
               - now;
    }

    return ngx_http_ai_guard_sat_mul(days + 1, NGX_HTTP_AI_GUARD_DAY_MS) - now;
}


/*
 * Moves the quota to the window of "now" and returns the window it is in;
 * a worker whose clock is behind (just before midnight while another has
 * passed it) counts into the newer window.
 */

static uint64_t
ngx_http_ai_guard_quota_roll(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t now)
{
    uint64_t  w;

    w = ngx_http_ai_guard_cal_window(cal, now);

    if (w > c->stamp) {
        c->stamp = w;
        c->level = 0;
    }

    return c->stamp;
}


int
ngx_http_ai_guard_quota_check(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t limit, uint64_t now,
    uint64_t cost, uint64_t *wait)
{
    (void) ngx_http_ai_guard_quota_roll(c, cal, now);

    *wait = 0;

    if (cost > limit) {
        return NGX_HTTP_AI_GUARD_LIMIT_NEVER;
    }

    if (c->level <= limit - cost) {
        return NGX_HTTP_AI_GUARD_LIMIT_OK;
    }

    *wait = ngx_http_ai_guard_cal_reset_ms(cal, now);

    return NGX_HTTP_AI_GUARD_LIMIT_WAIT;
}


void
ngx_http_ai_guard_quota_take(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t now, uint64_t cost)
{
    (void) ngx_http_ai_guard_quota_roll(c, cal, now);

    c->level = ngx_http_ai_guard_sat_add(c->level, cost);
}


/*
 * "window" is the window the reservation was taken in.  A charge always
 * goes to the current window (the usage is known now); a refund is given
 * back only to the window it was taken from, never to a fresh one.
 */

void
ngx_http_ai_guard_quota_settle(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t now, uint64_t window,
    int64_t delta)
{
    if (delta >= 0) {
        ngx_http_ai_guard_quota_take(c, cal, now, (uint64_t) delta);
        return;
    }

    ngx_http_ai_guard_quota_refund(c, cal, now, window,
                                   (uint64_t) 0 - (uint64_t) delta);
}


static void
ngx_http_ai_guard_quota_refund(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t now, uint64_t window,
    uint64_t amount)
{
    if (ngx_http_ai_guard_quota_roll(c, cal, now) != window) {
        return;
    }

    c->level = (c->level > amount) ? c->level - amount : 0;
}


uint64_t
ngx_http_ai_guard_quota_remaining(ngx_http_ai_guard_counter_t *c,
    ngx_http_ai_guard_cal_e cal, uint64_t limit, uint64_t now)
{
    (void) ngx_http_ai_guard_quota_roll(c, cal, now);

    return (c->level >= limit) ? 0 : limit - c->level;
}


const char *
ngx_http_ai_guard_limit_name(ngx_http_ai_guard_limit_kind_e k)
{
    if ((unsigned) k >= NGX_HTTP_AI_GUARD_LIMIT_NKINDS) {
        k = NGX_HTTP_AI_GUARD_LIMIT_NONE;
    }

    return ngx_http_ai_guard_limit_kinds[k].name;
}


/* the OpenAI error code a denial by this limit answers with */

const char *
ngx_http_ai_guard_limit_code(ngx_http_ai_guard_limit_kind_e k)
{
    if ((unsigned) k >= NGX_HTTP_AI_GUARD_LIMIT_NKINDS) {
        k = NGX_HTTP_AI_GUARD_LIMIT_NONE;
    }

    return ngx_http_ai_guard_limit_kinds[k].code;
}


int
ngx_http_ai_guard_limit_check(ngx_http_ai_guard_limit_item_t *it,
    uint64_t now, uint64_t *wait)
{
    const ngx_http_ai_guard_limit_kind_t  *k;

    *wait = 0;

    if (it->counter == NULL
        || (unsigned) it->kind - 1 >= NGX_HTTP_AI_GUARD_LIMIT_NKINDS - 1)
    {
        return NGX_HTTP_AI_GUARD_LIMIT_OK;
    }

    k = &ngx_http_ai_guard_limit_kinds[it->kind];

    switch (k->type) {

    case NGX_HTTP_AI_GUARD_TYPE_BUCKET:
        return ngx_http_ai_guard_bucket_check(it->counter, it->limit,
                                              k->period, now, it->cost, wait);

    case NGX_HTTP_AI_GUARD_TYPE_QUOTA:
        return ngx_http_ai_guard_quota_check(it->counter,
                                             (ngx_http_ai_guard_cal_e)
                                                 k->period,
                                             it->limit, now, it->cost, wait);

    default: /* NGX_HTTP_AI_GUARD_TYPE_CONC */

        if (it->cost > it->limit) {
            return NGX_HTTP_AI_GUARD_LIMIT_NEVER;
        }

        if (it->counter->level <= it->limit - it->cost) {
            return NGX_HTTP_AI_GUARD_LIMIT_OK;
        }

        *wait = NGX_HTTP_AI_GUARD_LIMIT_CONC_RETRY_MS;

        return NGX_HTTP_AI_GUARD_LIMIT_WAIT;
    }
}


/*
 * Checks every item, then takes every item, or takes none.  When several
 * deny, the one that decides is a limit that can never be met, else the
 * one with the longest wait (a retry before it would fail again), the
 * first of equals.  The caller holds the zone mutex throughout; two items
 * must not share a counter (each is checked on its own).
 */

int
ngx_http_ai_guard_limit_reserve(ngx_http_ai_guard_limit_item_t *items,
    size_t n, uint64_t now, ngx_http_ai_guard_limit_result_t *res)
{
    int        rc, r;
    size_t     i;
    uint64_t   wait;

    res->kind = NGX_HTTP_AI_GUARD_LIMIT_NONE;
    res->retry_ms = 0;
    res->index = 0;

    rc = NGX_HTTP_AI_GUARD_LIMIT_OK;

    for (i = 0; i < n; i++) {
        r = ngx_http_ai_guard_limit_check(&items[i], now, &wait);

        if (r == NGX_HTTP_AI_GUARD_LIMIT_OK) {
            continue;
        }

        if (r > rc || (r == NGX_HTTP_AI_GUARD_LIMIT_WAIT
                       && rc == NGX_HTTP_AI_GUARD_LIMIT_WAIT
                       && wait > res->retry_ms))
        {
            rc = r;
            res->kind = items[i].kind;
            res->retry_ms = wait;
            res->index = i;
        }
    }

    if (rc != NGX_HTTP_AI_GUARD_LIMIT_OK) {
        return rc;
    }

    /* every check above has brought its counter to "now" */

    ngx_http_ai_guard_limit_take(items, n);

    return NGX_HTTP_AI_GUARD_LIMIT_OK;
}


/*
 * Takes every item's cost without a check: after a failed reserve in
 * monitor mode, whose checks have already brought each counter to "now".
 */

void
ngx_http_ai_guard_limit_take(ngx_http_ai_guard_limit_item_t *items, size_t n)
{
    size_t                                 i;
    ngx_http_ai_guard_limit_item_t        *it;
    const ngx_http_ai_guard_limit_kind_t  *k;

    for (i = 0; i < n; i++) {
        it = &items[i];

        if (it->counter == NULL
            || (unsigned) it->kind - 1 >= NGX_HTTP_AI_GUARD_LIMIT_NKINDS - 1)
        {
            continue;
        }

        k = &ngx_http_ai_guard_limit_kinds[it->kind];

        /*
         * In monitor mode the cost has not been checked against the limit:
         * a huge estimate saturates the counter instead of wrapping it.
         */

        if (k->type == NGX_HTTP_AI_GUARD_TYPE_BUCKET) {
            it->counter->level = ngx_http_ai_guard_sat_add(
                                     it->counter->level,
                                     ngx_http_ai_guard_sat_mul(it->cost,
                                                               k->period));

        } else {
            it->counter->level = ngx_http_ai_guard_sat_add(it->counter->level,
                                                           it->cost);
            it->window = it->counter->stamp;
        }
    }
}


/*
 * Corrects a successful reservation to the real usage: token counters by
 * tokens - reserved, budgets by money - reserved (pico-USD), either way;
 * the concurrency slot is released; request counters stay as they are.
 */

void
ngx_http_ai_guard_limit_settle(ngx_http_ai_guard_limit_item_t *items,
    size_t n, uint64_t now, uint64_t tokens, uint64_t money)
{
    ngx_http_ai_guard_limit_correct(items, n, now, tokens, money, 0);
}


/*
 * Gives an admitted reservation back whole, requests too: a later scope
 * of the same request refused it, and a refused request costs nothing.
 */

void
ngx_http_ai_guard_limit_untake(ngx_http_ai_guard_limit_item_t *items,
    size_t n, uint64_t now)
{
    ngx_http_ai_guard_limit_correct(items, n, now, 0, 0, 1);
}


/* settle, or with "all" give back requests too at a real usage of 0 */

static void
ngx_http_ai_guard_limit_correct(ngx_http_ai_guard_limit_item_t *items,
    size_t n, uint64_t now, uint64_t tokens, uint64_t money, unsigned all)
{
    size_t                                 i;
    uint64_t                               real;
    ngx_http_ai_guard_limit_item_t        *it;
    const ngx_http_ai_guard_limit_kind_t  *k;

    for (i = 0; i < n; i++) {
        it = &items[i];

        if (it->counter == NULL
            || (unsigned) it->kind - 1 >= NGX_HTTP_AI_GUARD_LIMIT_NKINDS - 1)
        {
            continue;
        }

        k = &ngx_http_ai_guard_limit_kinds[it->kind];

        switch (k->unit) {

        case NGX_HTTP_AI_GUARD_UNIT_TOKEN:
            real = tokens;
            break;

        case NGX_HTTP_AI_GUARD_UNIT_MONEY:
            real = money;
            break;

        case NGX_HTTP_AI_GUARD_UNIT_CONC:
            it->counter->level = (it->counter->level > it->cost)
                                 ? it->counter->level - it->cost : 0;
            continue;

        default: /* NGX_HTTP_AI_GUARD_UNIT_REQ */
            if (!all) {
                continue;
            }

            real = 0;
        }

        /*
         * The difference in full, not as an int64_t delta: a saturated
         * reservation (monitor mode) is refunded exactly, not by half.
         */

        if (real == it->cost) {
            continue;
        }

        if (k->type == NGX_HTTP_AI_GUARD_TYPE_BUCKET) {
            if (real > it->cost) {
                ngx_http_ai_guard_bucket_take(it->counter, it->limit,
                                              k->period, now,
                                              real - it->cost);

            } else {
                ngx_http_ai_guard_bucket_refund(it->counter, it->limit,
                                                k->period, now,
                                                it->cost - real);
            }

        } else if (real > it->cost) {
            ngx_http_ai_guard_quota_take(it->counter,
                                         (ngx_http_ai_guard_cal_e) k->period,
                                         now, real - it->cost);

        } else {
            ngx_http_ai_guard_quota_refund(it->counter,
                                           (ngx_http_ai_guard_cal_e)
                                               k->period,
                                           now, it->window, it->cost - real);
        }
    }
}


/* 1: requests and slots, 2: tokens, 3: money (pico-USD); 0: none */

unsigned
ngx_http_ai_guard_limit_unit(ngx_http_ai_guard_limit_kind_e k)
{
    if ((unsigned) k - 1 >= NGX_HTTP_AI_GUARD_LIMIT_NKINDS - 1) {
        return 0;
    }

    switch (ngx_http_ai_guard_limit_kinds[k].unit) {

    case NGX_HTTP_AI_GUARD_UNIT_TOKEN:
        return 2;

    case NGX_HTTP_AI_GUARD_UNIT_MONEY:
        return 3;

    default: /* NGX_HTTP_AI_GUARD_UNIT_REQ, NGX_HTTP_AI_GUARD_UNIT_CONC */
        return 1;
    }
}


/*
 * When every counter of the items is the same as a new one again: each
 * bucket drained, each quota's window over; "now" for counters at zero.
 */

uint64_t
ngx_http_ai_guard_limit_fresh_at(ngx_http_ai_guard_limit_item_t *items,
    size_t n, uint64_t now)
{
    size_t     i;
    uint64_t   t, at;

    at = now;

    for (i = 0; i < n; i++) {
        if (items[i].counter == NULL || items[i].counter->level == 0) {
            continue;
        }

        t = ngx_http_ai_guard_sat_add(now,
                              ngx_http_ai_guard_limit_reset_ms(&items[i],
                                                               now));
        if (t > at) {
            at = t;
        }
    }

    return at;
}


uint64_t
ngx_http_ai_guard_limit_remaining(ngx_http_ai_guard_limit_item_t *it,
    uint64_t now)
{
    const ngx_http_ai_guard_limit_kind_t  *k;

    if (it->counter == NULL
        || (unsigned) it->kind - 1 >= NGX_HTTP_AI_GUARD_LIMIT_NKINDS - 1)
    {
        return it->limit;
    }

    k = &ngx_http_ai_guard_limit_kinds[it->kind];

    switch (k->type) {

    case NGX_HTTP_AI_GUARD_TYPE_BUCKET:
        return ngx_http_ai_guard_bucket_remaining(it->counter, it->limit,
                                                  k->period, now);

    case NGX_HTTP_AI_GUARD_TYPE_QUOTA:
        return ngx_http_ai_guard_quota_remaining(it->counter,
                                                 (ngx_http_ai_guard_cal_e)
                                                     k->period,
                                                 it->limit, now);

    default: /* NGX_HTTP_AI_GUARD_TYPE_CONC */
        return (it->counter->level >= it->limit)
               ? 0 : it->limit - it->counter->level;
    }
}


/*
 * OpenAI's x-ratelimit-reset-*: for a bucket, the time until it is back to
 * full capacity; for a quota, the end of its window; concurrency: 0.
 */

uint64_t
ngx_http_ai_guard_limit_reset_ms(ngx_http_ai_guard_limit_item_t *it,
    uint64_t now)
{
    const ngx_http_ai_guard_limit_kind_t  *k;

    if (it->counter == NULL
        || (unsigned) it->kind - 1 >= NGX_HTTP_AI_GUARD_LIMIT_NKINDS - 1)
    {
        return 0;
    }

    k = &ngx_http_ai_guard_limit_kinds[it->kind];

    switch (k->type) {

    case NGX_HTTP_AI_GUARD_TYPE_BUCKET:
        return ngx_http_ai_guard_bucket_reset_ms(it->counter, it->limit,
                                                 k->period, now);

    case NGX_HTTP_AI_GUARD_TYPE_QUOTA:
        return ngx_http_ai_guard_cal_reset_ms((ngx_http_ai_guard_cal_e)
                                                  k->period, now);

    default: /* NGX_HTTP_AI_GUARD_TYPE_CONC */
        return 0;
    }
}


/*
 * Two digits a division: the rate-limit headers of every guarded response
 * print four numbers of up to 13 digits, and a division is the dear part.
 */

static const u_char  ngx_http_ai_guard_digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";


u_char *
ngx_http_ai_guard_uint_format(u_char *p, uint64_t n)
{
    u_char    *t, tmp[NGX_HTTP_AI_GUARD_UINT_LEN];
    size_t     len;
    uint64_t   d;

    t = tmp + sizeof(tmp);

    while (n >= 100) {
        d = (n % 100) * 2;
        n /= 100;
        t -= 2;
        t[0] = ngx_http_ai_guard_digit_pairs[d];
        t[1] = ngx_http_ai_guard_digit_pairs[d + 1];
    }

    if (n >= 10) {
        t -= 2;
        t[0] = ngx_http_ai_guard_digit_pairs[n * 2];
        t[1] = ngx_http_ai_guard_digit_pairs[n * 2 + 1];

    } else {
        *--t = (u_char) ('0' + n);
    }

    len = tmp + sizeof(tmp) - t;
    memcpy(p, t, len);

    return p + len;
}


/*
 * Durations as OpenAI's x-ratelimit-reset-* print them (Go's style):
 * "0s"; below a second "250ms"; otherwise whole seconds, rounded up, as
 * "1s", "6m0s", "1h2m3s".  Writes at most NGX_HTTP_AI_GUARD_DURATION_LEN
 * bytes, no terminating zero; returns the end.
 */

u_char *
ngx_http_ai_guard_duration_format(u_char *buf, uint64_t ms)
{
    uint64_t  s, m, h;

    if (ms == 0) {
        *buf++ = '0';
        *buf++ = 's';
        return buf;
    }

    if (ms < 1000) {
        buf = ngx_http_ai_guard_uint_format(buf, ms);
        *buf++ = 'm';
        *buf++ = 's';
        return buf;
    }

    s = ms / 1000 + (ms % 1000 != 0);
    h = s / 3600;
    m = s / 60 % 60;
    s %= 60;

    if (h) {
        buf = ngx_http_ai_guard_uint_format(buf, h);
        *buf++ = 'h';
    }

    if (h || m) {
        buf = ngx_http_ai_guard_uint_format(buf, m);
        *buf++ = 'm';
    }

    buf = ngx_http_ai_guard_uint_format(buf, s);
    *buf++ = 's';

    return buf;
}


/*
 * The inverse: one or more <digits><unit>, unit "h", "m", "s" or "ms",
 * summed ("1h2m3s", "250ms", "1m500ms").  Returns 0, or -1 on an empty or
 * malformed string or an overflow.
 */

int
ngx_http_ai_guard_duration_parse(const u_char *p, size_t len, uint64_t *ms)
{
    uint64_t       n, unit, total, v;
    const u_char  *end;

    end = p + len;
    total = 0;

    if (len == 0) {
        return -1;
    }

    while (p < end) {

        if (*p < '0' || *p > '9') {
            return -1;
        }

        n = 0;

        while (p < end && *p >= '0' && *p <= '9') {
            if (n > (UINT64_MAX - 9) / 10) {
                return -1;
            }

            n = n * 10 + (*p++ - '0');
        }

        if (p == end) {
            return -1;
        }

        switch (*p++) {

        case 'h':
            unit = NGX_HTTP_AI_GUARD_HOUR_MS;
            break;

        case 'm':
            if (p < end && *p == 's') {
                p++;
                unit = 1;

            } else {
                unit = NGX_HTTP_AI_GUARD_MINUTE_MS;
            }

            break;

        case 's':
            unit = 1000;
            break;

        default:
            return -1;
        }

        if (__builtin_mul_overflow(n, unit, &v)
            || __builtin_add_overflow(total, v, &total))
        {
            return -1;
        }
    }

    *ms = total;

    return 0;
}


/* Retry-After: whole seconds, rounded up, at least 1 */

uint64_t
ngx_http_ai_guard_retry_after(uint64_t ms)
{
    uint64_t  s;

    s = ms / 1000 + (ms % 1000 != 0);

    return s ? s : 1;
}
