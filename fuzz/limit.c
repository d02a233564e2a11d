
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * libFuzzer target for the limiter arithmetic, where client and upstream
 * numbers meet the counters: the token estimate (max_tokens x n), price
 * costs, and sequences of reserve, monitor-mode take and settle over two
 * scopes with a counter of every kind, with limits, costs and times
 * (forwards, backwards, anywhere in 64 bits) as the input says.  Every
 * step is checked against a reference in 128-bit integers: a refused
 * reserve changes no counter, a take never lowers a level and saturates
 * instead of wrapping, a settle moves a level by exactly the difference,
 * an accepted reserve never fills a counter past its capacity, and a
 * bucket's wait is exact.  UBSan catches the rest.
 */

#include <stdlib.h>
#include <string.h>
#include <ngx_http_ai_guard_limit.h>
#include <ngx_http_ai_guard_price.h>


#define FUZZ_SCOPES     2
#define FUZZ_HELD       8
#define FUZZ_STEPS      96
#define FUZZ_NKINDS     NGX_HTTP_AI_GUARD_LIMIT_NKINDS
#define FUZZ_NITEMS     FUZZ_NKINDS     /* every kind, and one to skip */

#define FUZZ_BUCKET     0
#define FUZZ_QUOTA      1
#define FUZZ_CONC       2

#define FUZZ_REQ        0
#define FUZZ_TOKEN      1
#define FUZZ_MONEY      2
#define FUZZ_SLOT       3

#define FUZZ_U64_MAX    ((fuzz_u128_t) UINT64_MAX)

#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            abort();                                                         \
        }                                                                    \
    } while (0)


typedef unsigned __int128  fuzz_u128_t;


typedef struct {
    const uint8_t                      *p;
    const uint8_t                      *end;
} fuzz_in_t;


/* the documented meaning of each kind, written down again */
typedef struct {
    unsigned                            type;
    unsigned                            unit;
    uint64_t                            period;   /* ms, or the calendar */
} fuzz_kind_t;


/* a reservation not settled yet, as the request context keeps it */
typedef struct {
    ngx_http_ai_guard_limit_item_t      items[FUZZ_NITEMS];
    size_t                              n;
    uint64_t                            tokens;   /* what it reserved */
    uint64_t                            money;
} fuzz_held_t;


typedef struct {
    ngx_http_ai_guard_counter_t         counters[FUZZ_SCOPES][FUZZ_NKINDS];
    ngx_http_ai_guard_counter_t         sentinel;
    uint64_t                            limits[FUZZ_SCOPES][FUZZ_NKINDS];
    fuzz_held_t                         held[FUZZ_HELD];
    size_t                              nheld;
    ngx_http_ai_guard_price_t           price;
    uint64_t                            now;
} fuzz_state_t;


static const fuzz_kind_t  fuzz_kinds[FUZZ_NKINDS] = {
    { FUZZ_CONC, FUZZ_REQ, 0 },                                /* none */
    { FUZZ_BUCKET, FUZZ_REQ, NGX_HTTP_AI_GUARD_MINUTE_MS },    /* rpm */
    { FUZZ_BUCKET, FUZZ_REQ, NGX_HTTP_AI_GUARD_HOUR_MS },      /* rph */
    { FUZZ_QUOTA, FUZZ_REQ, NGX_HTTP_AI_GUARD_CAL_DAY },       /* rpd */
    { FUZZ_BUCKET, FUZZ_TOKEN, NGX_HTTP_AI_GUARD_MINUTE_MS },  /* tpm */
    { FUZZ_BUCKET, FUZZ_TOKEN, NGX_HTTP_AI_GUARD_HOUR_MS },    /* tph */
    { FUZZ_QUOTA, FUZZ_TOKEN, NGX_HTTP_AI_GUARD_CAL_DAY },     /* tpd */
    { FUZZ_QUOTA, FUZZ_TOKEN, NGX_HTTP_AI_GUARD_CAL_MONTH },   /* month */
    { FUZZ_CONC, FUZZ_SLOT, 0 },                               /* conc */
    { FUZZ_QUOTA, FUZZ_MONEY, NGX_HTTP_AI_GUARD_CAL_DAY },     /* budget */
    { FUZZ_QUOTA, FUZZ_MONEY, NGX_HTTP_AI_GUARD_CAL_MONTH }    /* budget */
};


/* times where windows turn: month ends, a leap day, a year end, the ends */
static const uint64_t  fuzz_times[8] = {
    1738367940000ULL,           /* 2025-01-31 23:59:00 */
    1709251199000ULL,           /* 2024-02-29 23:59:59 */
    1735689599999ULL,           /* 2024-12-31 23:59:59.999 */
    1741939200123ULL,           /* 2025-03-14 08:00:00.123 */
    0,
    4102444800000ULL,           /* 2100-01-01 */
    UINT64_MAX - 86400000ULL * 40,
    UINT64_MAX - 5
};


static uint8_t
fuzz_u8(fuzz_in_t *in)
{
    return (in->p < in->end) ? *in->p++ : 0;
}


static uint64_t
fuzz_bytes(fuzz_in_t *in, size_t n)
{
    size_t    i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < n; i++) {
        v = (v << 8) | fuzz_u8(in);
    }

    return v;
}


/* a number, as often near an edge as anywhere */

static uint64_t
fuzz_u64(fuzz_in_t *in)
{
    uint8_t  b;

    b = fuzz_u8(in);

    switch (b & 7) {

    case 0:
        return fuzz_u8(in);

    case 1:
        return fuzz_bytes(in, 2);

    case 2:
        return fuzz_bytes(in, 4);

    case 3:
        return fuzz_bytes(in, 8);

    case 4:
        return UINT64_MAX - fuzz_u8(in);

    case 5:
        return (uint64_t) INT64_MAX - 128 + fuzz_u8(in);

    case 6:
        return (1ULL << (fuzz_u8(in) & 63)) + (b >> 3) % 3 - 1;

    default:
        return NGX_HTTP_AI_GUARD_LIMIT_MAX - 128 + fuzz_u8(in);
    }
}


static uint64_t
fuzz_min(uint64_t a, uint64_t b)
{
    return (a < b) ? a : b;
}


static uint64_t
fuzz_clamp(fuzz_u128_t v)
{
    return (v > FUZZ_U64_MAX) ? UINT64_MAX : (uint64_t) v;
}


static uint64_t
fuzz_bucket_limit(uint64_t limit)
{
    return fuzz_min(limit, NGX_HTTP_AI_GUARD_LIMIT_MAX);
}


static uint64_t
fuzz_bucket_period(uint64_t period)
{
    return fuzz_min(period, NGX_HTTP_AI_GUARD_HOUR_MS);
}


/* what a refill or a window roll makes of a counter at "now" */

static void
fuzz_bring(ngx_http_ai_guard_counter_t *c, unsigned type, uint64_t period,
    uint64_t limit, uint64_t now)
{
    uint64_t     w;
    fuzz_u128_t  d;

    switch (type) {

    case FUZZ_BUCKET:
        if (now <= c->stamp) {
            return;
        }

        d = (fuzz_u128_t) (now - c->stamp) * fuzz_bucket_limit(limit);
        c->level = (d >= c->level) ? 0 : c->level - (uint64_t) d;
        c->stamp = now;
        return;

    case FUZZ_QUOTA:
        w = ngx_http_ai_guard_cal_window((ngx_http_ai_guard_cal_e) period,
                                         now);

        if (w > c->stamp) {
            c->stamp = w;
            c->level = 0;
        }

        return;

    default:
        return;
    }
}


/* level + amount of a kind's units, as a take must leave it */

static uint64_t
fuzz_charge(ngx_http_ai_guard_counter_t *c, unsigned type, uint64_t period,
    uint64_t amount)
{
    fuzz_u128_t  a;

    a = amount;

    if (type == FUZZ_BUCKET) {
        a *= fuzz_bucket_period(period);
    }

    return fuzz_clamp(c->level + a);
}


static uint64_t
fuzz_refund(ngx_http_ai_guard_counter_t *c, unsigned type, uint64_t period,
    uint64_t amount)
{
    fuzz_u128_t  a;

    a = amount;

    if (type == FUZZ_BUCKET) {
        a *= fuzz_bucket_period(period);
    }

    return (a >= c->level) ? 0 : c->level - (uint64_t) a;
}


/*
 * The check of one brought counter: the result and the wait.  For a
 * denied bucket or quota whose counter is at "now", the wait is then
 * verified to be exact on copies.
 */

static int
fuzz_check(ngx_http_ai_guard_counter_t *c, unsigned type, uint64_t period,
    uint64_t limit, uint64_t cost, uint64_t now, uint64_t *wait)
{
    int                          rc;
    uint64_t                     l, w, t;
    fuzz_u128_t                  room, need;
    ngx_http_ai_guard_counter_t  a;

    *wait = 0;

    switch (type) {

    case FUZZ_BUCKET:
        l = fuzz_bucket_limit(limit);
        period = fuzz_bucket_period(period);

        if (cost > l) {
            return NGX_HTTP_AI_GUARD_LIMIT_NEVER;
        }

        room = (fuzz_u128_t) (l - cost) * period;

        if (c->level <= room) {
            return NGX_HTTP_AI_GUARD_LIMIT_OK;
        }

        if (l == 0) {
            return NGX_HTTP_AI_GUARD_LIMIT_NEVER;
        }

        need = c->level - room;
        *wait = fuzz_clamp((need + l - 1) / l + (c->stamp - now));

        if (c->stamp != now || *wait > UINT64_MAX - now) {
            return NGX_HTTP_AI_GUARD_LIMIT_WAIT;
        }

        fuzz_assert(*wait >= 1);

        a = *c;
        rc = ngx_http_ai_guard_bucket_check(&a, limit, period, now + *wait,
                                            cost, &w);
        fuzz_assert(rc == NGX_HTTP_AI_GUARD_LIMIT_OK);

        a = *c;
        rc = ngx_http_ai_guard_bucket_check(&a, limit, period,
                                            now + *wait - 1, cost, &w);
        fuzz_assert(rc == NGX_HTTP_AI_GUARD_LIMIT_WAIT && w == 1);

        return NGX_HTTP_AI_GUARD_LIMIT_WAIT;

    case FUZZ_QUOTA:
        if (cost > limit) {
            return NGX_HTTP_AI_GUARD_LIMIT_NEVER;
        }

        if ((fuzz_u128_t) c->level + cost <= limit) {
            return NGX_HTTP_AI_GUARD_LIMIT_OK;
        }

        *wait = ngx_http_ai_guard_cal_reset_ms(
                    (ngx_http_ai_guard_cal_e) period, now);

        t = ngx_http_ai_guard_cal_window((ngx_http_ai_guard_cal_e) period,
                                         now);

        /* the wait ends the window of "now", unless time itself ends */

        if (c->stamp == t && *wait < UINT64_MAX - now) {
            fuzz_assert(*wait >= 1);
            fuzz_assert(ngx_http_ai_guard_cal_window(
                            (ngx_http_ai_guard_cal_e) period,
                            now + *wait - 1)
                        == t);
            fuzz_assert(ngx_http_ai_guard_cal_window(
                            (ngx_http_ai_guard_cal_e) period, now + *wait)
                        > t);
        }

        return NGX_HTTP_AI_GUARD_LIMIT_WAIT;

    default:
        if (cost > limit) {
            return NGX_HTTP_AI_GUARD_LIMIT_NEVER;
        }

        if ((fuzz_u128_t) c->level + cost <= limit) {
            return NGX_HTTP_AI_GUARD_LIMIT_OK;
        }

        *wait = NGX_HTTP_AI_GUARD_LIMIT_CONC_RETRY_MS;

        return NGX_HTTP_AI_GUARD_LIMIT_WAIT;
    }
}


static int
fuzz_valid(ngx_http_ai_guard_limit_item_t *it)
{
    return it->counter != NULL
           && it->kind > NGX_HTTP_AI_GUARD_LIMIT_NONE
           && it->kind < FUZZ_NKINDS;
}


/* the counter in "ref" that mirrors the item's counter in "st" */

static ngx_http_ai_guard_counter_t *
fuzz_mirror(fuzz_state_t *st, fuzz_state_t *ref,
    ngx_http_ai_guard_limit_item_t *it)
{
    return (ngx_http_ai_guard_counter_t *)
               ((u_char *) ref + ((u_char *) it->counter - (u_char *) st));
}


static void
fuzz_estimate(fuzz_in_t *in)
{
    int64_t      max, n, cap;
    uint64_t     prompt, dflt, est, out;
    fuzz_u128_t  o;

    prompt = fuzz_u64(in);
    max = (int64_t) fuzz_u64(in);
    n = (int64_t) fuzz_u64(in);
    cap = (int64_t) fuzz_u64(in);
    dflt = fuzz_u64(in);

    est = ngx_http_ai_guard_limit_estimate(prompt, max, n, cap, dflt, &out);

    o = (max >= 0) ? (uint64_t) max : (cap >= 0) ? (uint64_t) cap : dflt;
    o *= (n > 1) ? (uint64_t) n : 1;

    fuzz_assert(out == fuzz_clamp(o));
    fuzz_assert(est == fuzz_clamp(o + prompt));
    fuzz_assert(est >= prompt && est >= out);
}


static void
fuzz_price(fuzz_state_t *st, fuzz_in_t *in)
{
    int64_t                     c, pc, pw;
    uint64_t                    t[4], un;
    fuzz_u128_t                 sum;
    ngx_http_ai_guard_price_t  *pr;

    pr = &st->price;
    pr->input = (int64_t) fuzz_u64(in);
    pr->output = (int64_t) fuzz_u64(in);
    pr->cached_input = (int64_t) fuzz_u64(in);
    pr->cache_write = (int64_t) fuzz_u64(in);

    t[0] = fuzz_u64(in);
    t[1] = fuzz_u64(in);
    t[2] = fuzz_u64(in);
    t[3] = fuzz_u64(in);

    c = ngx_http_ai_guard_price_cost(pr, t[0], t[1], t[2], t[3]);

    pc = (pr->cached_input >= 0) ? pr->cached_input : pr->input;
    pw = (pr->cache_write >= 0) ? pr->cache_write : pr->input;
    un = (t[0] > t[2]) ? t[0] - t[2] : 0;
    un = (un > t[3]) ? un - t[3] : 0;

    /* each product < 2^127; clamped first, the sum fits too */

#define FUZZ_TERM(tokens, price)                                             \
    (((price) <= 0) ? 0                                                      \
     : ((fuzz_u128_t) (tokens) * (uint64_t) (price) > INT64_MAX              \
        ? (fuzz_u128_t) INT64_MAX                                            \
        : (fuzz_u128_t) (tokens) * (uint64_t) (price)))

    sum = FUZZ_TERM(un, pr->input) + FUZZ_TERM(t[2], pc)
          + FUZZ_TERM(t[3], pw) + FUZZ_TERM(t[1], pr->output);

#undef FUZZ_TERM

    fuzz_assert(c >= 0);
    fuzz_assert((fuzz_u128_t) c == (sum > INT64_MAX ? INT64_MAX : sum));
}


static void
fuzz_reserve(fuzz_state_t *st, fuzz_in_t *in)
{
    int                                rc, r, want;
    size_t                             i, n, rot, index;
    uint8_t                            flags;
    int64_t                            price, max, cnt, tier;
    uint64_t                           mask, prompt, tokens, money, out, wait,
                                       retry, cap;
    unsigned                           s, k;
    fuzz_held_t                       *h;
    fuzz_state_t                       ref;
    const fuzz_kind_t                 *fk;
    ngx_http_ai_guard_counter_t       *c, *m;
    ngx_http_ai_guard_limit_item_t     items[FUZZ_NITEMS];
    ngx_http_ai_guard_limit_result_t   res;

    s = fuzz_u8(in) % FUZZ_SCOPES;
    mask = fuzz_bytes(in, 2);
    rot = fuzz_u8(in);
    flags = fuzz_u8(in);

    /* the estimate and its price, as the limiter makes them, or any */

    if (flags & 1) {
        prompt = fuzz_u64(in);
        max = (int64_t) fuzz_u64(in);
        cnt = (int64_t) fuzz_u64(in);
        tier = (int64_t) fuzz_u64(in);
        tokens = ngx_http_ai_guard_limit_estimate(prompt, max, cnt, tier, 1024,
                                                  &out);
        price = ngx_http_ai_guard_price_cost(&st->price, prompt, out, 0, 0);
        fuzz_assert(price >= 0);
        money = (uint64_t) price;

    } else {
        tokens = fuzz_u64(in);
        money = fuzz_u64(in);
    }

    memset(items, 0, sizeof(items));
    n = 0;

    for (i = 0; i < FUZZ_NITEMS - 1; i++) {
        k = 1 + (unsigned) ((i + rot) % (FUZZ_NITEMS - 1));

        /* a kind the tier does not limit: left out, or without a counter */

        if (!(mask & (1u << k)) && !(mask & 1)) {
            continue;
        }

        fk = &fuzz_kinds[k];

        items[n].kind = k;
        items[n].limit = st->limits[s][k];
        items[n].counter = (mask & (1u << k)) ? &st->counters[s][k] : NULL;
        items[n].window = UINT64_MAX;       /* reserve must set it */

        switch (fk->unit) {

        case FUZZ_TOKEN:
            items[n].cost = tokens;
            break;

        case FUZZ_MONEY:
            items[n].cost = money;
            break;

        default:
            items[n].cost = (flags & 2) ? fuzz_u64(in) : 1;
        }

        n++;
    }

    /* an item the arithmetic must skip: no kind, or a kind out of range */

    if (flags & 4) {
        items[n].kind = (flags & 8) ? NGX_HTTP_AI_GUARD_LIMIT_NONE
                                    : (ngx_http_ai_guard_limit_kind_e)
                                      (FUZZ_NKINDS
                                       + (flags >> 5));
        items[n].limit = fuzz_u64(in);
        items[n].cost = fuzz_u64(in);
        items[n].counter = &st->sentinel;
        n++;
    }

    /* the reference: every counter brought to "now", each item checked */

    ref = *st;
    want = NGX_HTTP_AI_GUARD_LIMIT_OK;
    retry = 0;
    index = 0;

    for (i = 0; i < n; i++) {
        if (!fuzz_valid(&items[i])) {
            continue;
        }

        fk = &fuzz_kinds[items[i].kind];
        m = fuzz_mirror(st, &ref, &items[i]);

        fuzz_bring(m, fk->type, fk->period, items[i].limit, st->now);
        r = fuzz_check(m, fk->type, fk->period, items[i].limit,
                       items[i].cost, st->now, &wait);

        if (r > want || (r == NGX_HTTP_AI_GUARD_LIMIT_WAIT
                         && want == NGX_HTTP_AI_GUARD_LIMIT_WAIT
                         && wait > retry))
        {
            want = r;
            retry = wait;
            index = i;
        }
    }

    rc = ngx_http_ai_guard_limit_reserve(items, n, st->now, &res);

    fuzz_assert(rc == want);
    fuzz_assert(res.retry_ms == retry);

    if (rc != NGX_HTTP_AI_GUARD_LIMIT_OK) {
        fuzz_assert(res.index == index);
        fuzz_assert(res.kind == items[index].kind);

        /* all or nothing: the checks brought counters to now, no more */
        fuzz_assert(memcmp(st->counters, ref.counters, sizeof(st->counters))
                    == 0);
        fuzz_assert(memcmp(&st->sentinel, &ref.sentinel,
                           sizeof(st->sentinel))
                    == 0);

        if (!(flags & 0x10)) {
            return;
        }

        /* monitor mode: the request goes on and is counted all the same */
        ngx_http_ai_guard_limit_take(items, n);

    } else {
        fuzz_assert(res.kind == NGX_HTTP_AI_GUARD_LIMIT_NONE);
    }

    for (i = 0; i < n; i++) {
        if (!fuzz_valid(&items[i])) {
            continue;
        }

        fk = &fuzz_kinds[items[i].kind];
        c = items[i].counter;
        m = fuzz_mirror(st, &ref, &items[i]);

        fuzz_assert(c->stamp == m->stamp);
        fuzz_assert(c->level >= m->level);
        fuzz_assert(c->level == fuzz_charge(m, fk->type, fk->period,
                                            items[i].cost));

        if (fk->type != FUZZ_BUCKET && fk->type != FUZZ_CONC) {
            fuzz_assert(items[i].window == c->stamp);
        }

        if (rc != NGX_HTTP_AI_GUARD_LIMIT_OK) {
            continue;
        }

        /* an accepted reservation fits: no counter past its capacity */

        cap = (fk->type == FUZZ_BUCKET)
              ? fuzz_clamp((fuzz_u128_t) fuzz_bucket_limit(items[i].limit)
                           * fk->period)
              : items[i].limit;

        fuzz_assert(c->level <= cap);
    }

    fuzz_assert(memcmp(&st->sentinel, &ref.sentinel, sizeof(st->sentinel))
                == 0);

    if (st->nheld == FUZZ_HELD) {
        return;
    }

    h = &st->held[st->nheld++];
    memcpy(h->items, items, sizeof(items));
    h->n = n;
    h->tokens = tokens;
    h->money = money;
}


static void
fuzz_settle(fuzz_state_t *st, fuzz_in_t *in)
{
    size_t                           i;
    uint8_t                          b;
    uint64_t                         tokens, money, real;
    fuzz_held_t                      h;
    fuzz_state_t                     ref;
    const fuzz_kind_t               *fk;
    ngx_http_ai_guard_counter_t     *m;
    ngx_http_ai_guard_limit_item_t  *it;

    if (st->nheld == 0) {
        return;
    }

    b = fuzz_u8(in);
    i = b % st->nheld;
    h = st->held[i];
    st->held[i] = st->held[--st->nheld];

    /* the real usage: as reserved, or any */

    if (b & 0x80) {
        tokens = h.tokens;
        money = h.money;

    } else {
        tokens = fuzz_u64(in);
        money = (b & 0x40) ? h.money : fuzz_u64(in);
    }

    ref = *st;

    for (i = 0; i < h.n; i++) {
        it = &h.items[i];

        if (!fuzz_valid(it)) {
            continue;
        }

        fk = &fuzz_kinds[it->kind];
        m = fuzz_mirror(st, &ref, it);

        switch (fk->unit) {

        case FUZZ_TOKEN:
            real = tokens;
            break;

        case FUZZ_MONEY:
            real = money;
            break;

        case FUZZ_SLOT:
            m->level = fuzz_refund(m, FUZZ_CONC, 0, it->cost);
            continue;

        default:
            continue;
        }

        if (real == it->cost) {
            continue;
        }

        fuzz_bring(m, fk->type, fk->period, it->limit, st->now);

        if (real > it->cost) {
            m->level = fuzz_charge(m, fk->type, fk->period, real - it->cost);

        } else if (fk->type == FUZZ_BUCKET || m->stamp == it->window) {
            /* a quota refunds only the window it was taken from */
            m->level = fuzz_refund(m, fk->type, fk->period, it->cost - real);
        }
    }

    ngx_http_ai_guard_limit_settle(h.items, h.n, st->now, tokens, money);

    /*
     * With the usage as reserved, the reference touched no token or budget
     * counter: they stay as the reserve left them, only the slot is back.
     */

    fuzz_assert(memcmp(st->counters, ref.counters, sizeof(st->counters))
                == 0);
    fuzz_assert(memcmp(&st->sentinel, &ref.sentinel, sizeof(st->sentinel))
                == 0);
}


/* what the rate-limit headers read: never above the limit */

static void
fuzz_report(fuzz_state_t *st, fuzz_in_t *in)
{
    unsigned                         s, k;
    uint64_t                         rem, reset, l;
    const fuzz_kind_t               *fk;
    ngx_http_ai_guard_counter_t      a;
    ngx_http_ai_guard_limit_item_t   it;

    s = fuzz_u8(in) % FUZZ_SCOPES;

    for (k = 1; k < FUZZ_NKINDS; k++) {
        fk = &fuzz_kinds[k];

        memset(&it, 0, sizeof(it));
        it.kind = k;
        it.limit = st->limits[s][k];
        it.counter = &st->counters[s][k];

        a = *it.counter;
        fuzz_bring(&a, fk->type, fk->period, it.limit, st->now);

        rem = ngx_http_ai_guard_limit_remaining(&it, st->now);
        reset = ngx_http_ai_guard_limit_reset_ms(&it, st->now);

        /* a refill or a roll is neutral: the same as the reference's */
        fuzz_assert(memcmp(&a, it.counter, sizeof(a)) == 0);

        switch (fk->type) {

        case FUZZ_BUCKET:
            l = fuzz_bucket_limit(it.limit);
            fuzz_assert(rem <= l);

            if (l) {
                fuzz_assert((a.level == 0) == (rem == l));
                fuzz_assert((a.level == 0) == (reset == 0));
            }

            break;

        case FUZZ_QUOTA:
            fuzz_assert(rem <= it.limit);
            fuzz_assert(reset == ngx_http_ai_guard_cal_reset_ms(
                                     (ngx_http_ai_guard_cal_e) fk->period,
                                     st->now));
            break;

        default:
            fuzz_assert(rem <= it.limit && reset == 0);
        }
    }
}


/* the counter functions on their own, with any period and delta */

static void
fuzz_raw(fuzz_state_t *st, fuzz_in_t *in)
{
    int                           rc;
    uint8_t                       b;
    int64_t                       delta;
    unsigned                      k;
    uint64_t                      limit, period, amount, window, wait;
    ngx_http_ai_guard_cal_e       cal;
    ngx_http_ai_guard_counter_t  *c, ref;

    b = fuzz_u8(in);
    c = &st->counters[(b >> 4) % FUZZ_SCOPES][1 + (b >> 5) % 2];
    limit = fuzz_u64(in);
    period = (b & 8) ? fuzz_u64(in) : NGX_HTTP_AI_GUARD_HOUR_MS;
    delta = (int64_t) fuzz_u64(in);
    amount = (delta >= 0) ? (uint64_t) delta : (uint64_t) 0 - (uint64_t) delta;

    ref = *c;

    switch (b & 7) {

    case 0:
        fuzz_bring(&ref, FUZZ_BUCKET, 0, limit, st->now);
        ngx_http_ai_guard_bucket_take(c, limit, period, st->now, amount);
        fuzz_assert(c->level == fuzz_charge(&ref, FUZZ_BUCKET, period,
                                            amount));
        fuzz_assert(c->level >= ref.level);
        break;

    case 1:
        fuzz_bring(&ref, FUZZ_BUCKET, 0, limit, st->now);
        ngx_http_ai_guard_bucket_settle(c, limit, period, st->now, delta);
        fuzz_assert(c->level == ((delta >= 0)
                                 ? fuzz_charge(&ref, FUZZ_BUCKET, period,
                                               amount)
                                 : fuzz_refund(&ref, FUZZ_BUCKET, period,
                                               amount)));
        break;

    case 2:
        fuzz_bring(&ref, FUZZ_BUCKET, 0, limit, st->now);
        rc = ngx_http_ai_guard_bucket_check(c, limit, period, st->now, amount,
                                            &wait);
        fuzz_assert(rc == fuzz_check(&ref, FUZZ_BUCKET, period, limit,
                                     amount, st->now, &window));
        fuzz_assert(wait == window);
        (void) ngx_http_ai_guard_bucket_remaining(c, limit, period, st->now);
        (void) ngx_http_ai_guard_bucket_reset_ms(c, limit, period, st->now);
        break;

    case 3:
        k = (b & 0x20) ? NGX_HTTP_AI_GUARD_LIMIT_TOKENS_MONTH
                       : NGX_HTTP_AI_GUARD_LIMIT_TPD;
        cal = (ngx_http_ai_guard_cal_e) fuzz_kinds[k].period;
        c = &st->counters[(b >> 4) % FUZZ_SCOPES][k];
        ref = *c;
        fuzz_bring(&ref, FUZZ_QUOTA, cal, 0, st->now);
        ngx_http_ai_guard_quota_take(c, cal, st->now, amount);
        fuzz_assert(c->level == fuzz_charge(&ref, FUZZ_QUOTA, 0, amount));
        fuzz_assert(c->level >= ref.level);
        break;

    default:
        k = (b & 0x20) ? NGX_HTTP_AI_GUARD_LIMIT_TOKENS_MONTH
                       : NGX_HTTP_AI_GUARD_LIMIT_TPD;
        cal = (ngx_http_ai_guard_cal_e) fuzz_kinds[k].period;
        c = &st->counters[(b >> 4) % FUZZ_SCOPES][k];
        ref = *c;
        window = (b & 1) ? c->stamp : fuzz_u64(in);
        fuzz_bring(&ref, FUZZ_QUOTA, cal, 0, st->now);
        ngx_http_ai_guard_quota_settle(c, cal, st->now, window, delta);

        if (delta >= 0) {
            fuzz_assert(c->level == fuzz_charge(&ref, FUZZ_QUOTA, 0,
                                                amount));

        } else if (ref.stamp == window) {
            fuzz_assert(c->level == fuzz_refund(&ref, FUZZ_QUOTA, 0,
                                                amount));

        } else {
            fuzz_assert(c->level == ref.level);
        }
    }

    fuzz_assert(c->stamp == ref.stamp);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t        step;
    unsigned      s, k;
    uint8_t       op;
    uint64_t      d;
    fuzz_in_t     in;
    fuzz_state_t  st;

    in.p = data;
    in.end = data + size;

    memset(&st, 0, sizeof(st));

    st.now = fuzz_times[fuzz_u8(&in) & 7];
    st.now = ngx_http_ai_guard_sat_add(st.now, fuzz_bytes(&in, 2));

    fuzz_estimate(&in);
    fuzz_price(&st, &in);

    for (s = 0; s < FUZZ_SCOPES; s++) {
        for (k = 1; k < FUZZ_NKINDS; k++) {
            st.limits[s][k] = fuzz_u64(&in);
        }
    }

    for (step = 0; step < FUZZ_STEPS && in.p < in.end; step++) {
        op = fuzz_u8(&in);

        switch (op % 9) {

        case 0:
            st.now = ngx_http_ai_guard_sat_add(st.now, fuzz_bytes(&in, 2));
            break;

        case 1:
            /* another worker's clock, a little behind */
            d = fuzz_bytes(&in, 2);
            st.now = (st.now > d) ? st.now - d : 0;
            break;

        case 2:
            st.now = fuzz_u64(&in);
            break;

        case 3:
        case 4:
            fuzz_reserve(&st, &in);
            break;

        case 5:
            fuzz_settle(&st, &in);
            break;

        case 6:
            fuzz_report(&st, &in);
            break;

        case 7:
            fuzz_raw(&st, &in);
            break;

        default:
            /* a reload: one limit changes under held reservations */
            s = fuzz_u8(&in) % FUZZ_SCOPES;
            k = 1 + fuzz_u8(&in) % (FUZZ_NKINDS - 1);
            st.limits[s][k] = fuzz_u64(&in);
            fuzz_estimate(&in);
        }
    }

    return 0;
}
