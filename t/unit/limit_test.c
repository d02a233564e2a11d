
/*
 * Copyright (C) ngx_ai_guard developers
 */


#define _GNU_SOURCE
#include <time.h>
#include <tap.h>
#include <ngx_http_ai_guard_limit.h>


#define MS(y, mo, d, h, mi, s)  ((uint64_t) utc(y, mo, d, h, mi, s) * 1000)


static time_t
utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm  tm;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;

    return timegm(&tm);
}


static int
reserve1(ngx_http_ai_guard_counter_t *c, ngx_http_ai_guard_limit_kind_e kind,
    uint64_t limit, uint64_t cost, uint64_t now, uint64_t *retry)
{
    int                               rc;
    ngx_http_ai_guard_limit_item_t    it;
    ngx_http_ai_guard_limit_result_t  res;

    memset(&it, 0, sizeof(it));
    it.counter = c;
    it.kind = kind;
    it.limit = limit;
    it.cost = cost;

    rc = ngx_http_ai_guard_limit_reserve(&it, 1, now, &res);
    *retry = res.retry_ms;

    return rc;
}


static void
test_rpm(void)
{
    int                             i, rc;
    uint64_t                        now, wait;
    ngx_http_ai_guard_counter_t     c;
    ngx_http_ai_guard_limit_item_t  it;

    memset(&c, 0, sizeof(c));
    now = MS(2025, 3, 14, 10, 0, 0) + 123;

    for (i = 0; i < 5; i++) {
        rc = reserve1(&c, NGX_HTTP_AI_GUARD_LIMIT_RPM, 5, 1, now, &wait);
        is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "rpm=5: request %d allowed",
               i + 1);
    }

    rc = reserve1(&c, NGX_HTTP_AI_GUARD_LIMIT_RPM, 5, 1, now, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "rpm=5: 6th denied");
    is_int(wait, 12000, "rpm=5: retry exactly 12000 ms");

    memset(&it, 0, sizeof(it));
    it.counter = &c;
    it.kind = NGX_HTTP_AI_GUARD_LIMIT_RPM;
    it.limit = 5;
    it.cost = 1;

    is_int(ngx_http_ai_guard_limit_remaining(&it, now), 0, "remaining 0");
    is_int(ngx_http_ai_guard_limit_reset_ms(&it, now), 60000,
           "reset in 60000 ms");

    rc = reserve1(&c, NGX_HTTP_AI_GUARD_LIMIT_RPM, 5, 1, now + 11999, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "denied 1 ms early");
    is_int(wait, 1, "retry 1 ms");

    rc = reserve1(&c, NGX_HTTP_AI_GUARD_LIMIT_RPM, 5, 1, now + 12000, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "after 12 s one more allowed");

    rc = reserve1(&c, NGX_HTTP_AI_GUARD_LIMIT_RPM, 5, 1, now + 12000, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "and only one");
    is_int(wait, 12000, "retry 12000 ms again");

    is_int(ngx_http_ai_guard_limit_remaining(&it, now + 36000), 2,
           "remaining 2 after 24 more seconds");
    is_int(ngx_http_ai_guard_limit_reset_ms(&it, now + 36000), 36000,
           "reset 36000 ms");
    is_int(ngx_http_ai_guard_limit_remaining(&it, now + 72000), 5,
           "full after 60 s");
    is_int(ngx_http_ai_guard_limit_reset_ms(&it, now + 72000), 0,
           "reset 0 when full");

    /* a worker whose clock is 10 ms behind the last update */
    rc = reserve1(&c, NGX_HTTP_AI_GUARD_LIMIT_RPM, 5, 5, now + 72000, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "burst of 5 at once");
    rc = reserve1(&c, NGX_HTTP_AI_GUARD_LIMIT_RPM, 5, 1, now + 71990, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "skewed clock denied");
    is_int(wait, 12010, "skew added to the wait");

    rc = reserve1(&c, NGX_HTTP_AI_GUARD_LIMIT_RPM, 5, 6, now + 500000,
                  &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_NEVER, "cost 6 > rpm 5: never");
    is_int(wait, 0, "never has no retry");

    /* rph: 3600 per hour drains one per second */
    memset(&c, 0, sizeof(c));
    rc = reserve1(&c, NGX_HTTP_AI_GUARD_LIMIT_RPH, 3600, 3600, now, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "rph: whole hour at once");
    rc = reserve1(&c, NGX_HTTP_AI_GUARD_LIMIT_RPH, 3600, 1, now, &wait);
    is_int(wait, 1000, "rph=3600: retry 1000 ms");
}


static void
test_tokens(void)
{
    int                               rc;
    uint64_t                          now, wait;
    ngx_http_ai_guard_counter_t       c;
    ngx_http_ai_guard_limit_item_t    it;
    ngx_http_ai_guard_limit_result_t  res;

    memset(&c, 0, sizeof(c));
    memset(&it, 0, sizeof(it));
    now = MS(2025, 6, 1, 0, 0, 0);

    it.counter = &c;
    it.kind = NGX_HTTP_AI_GUARD_LIMIT_TPM;
    it.limit = 1000;
    it.cost = 100;

    rc = ngx_http_ai_guard_limit_reserve(&it, 1, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "tpm: reserve 100 of 1000");
    is_int(ngx_http_ai_guard_limit_remaining(&it, now), 900, "900 left");

    /* the real usage was 1600: 600 tokens of debt */
    ngx_http_ai_guard_limit_settle(&it, 1, now, 1600, 0);
    is_int(ngx_http_ai_guard_limit_remaining(&it, now), 0,
           "in debt: remaining 0, never negative");
    is_int(ngx_http_ai_guard_limit_reset_ms(&it, now), 96000,
           "debt: full again after 1600 tokens drain, 96 s");

    it.cost = 1;
    rc = ngx_http_ai_guard_limit_reserve(&it, 1, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "in debt: 1 token denied");
    is_int(res.retry_ms, 36060, "wait until 601 tokens drained: 36060 ms");
    is_int(res.kind, NGX_HTTP_AI_GUARD_LIMIT_TPM, "decided by tpm");

    rc = ngx_http_ai_guard_limit_reserve(&it, 1, now + 36059, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "1 ms early still denied");
    rc = ngx_http_ai_guard_limit_reserve(&it, 1, now + 36060, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "allowed after the wait");

    /* refund */
    memset(&c, 0, sizeof(c));
    it.cost = 500;
    rc = ngx_http_ai_guard_limit_reserve(&it, 1, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "reserve 500");
    ngx_http_ai_guard_limit_settle(&it, 1, now, 200, 0);
    is_int(ngx_http_ai_guard_limit_remaining(&it, now), 800,
           "settle at 200 refunds 300");
    ngx_http_ai_guard_limit_settle(&it, 1, now, 0, 0);
    is_int(ngx_http_ai_guard_limit_remaining(&it, now), 1000,
           "over-refund floors at empty");

    /* floor of remaining, ceil of reset */
    memset(&c, 0, sizeof(c));
    ngx_http_ai_guard_bucket_take(&c, 1000, NGX_HTTP_AI_GUARD_MINUTE_MS, now,
                                  1);
    is_int(ngx_http_ai_guard_bucket_remaining(&c, 1000,
                                              NGX_HTTP_AI_GUARD_MINUTE_MS,
                                              now + 1),
           999, "remaining floors partial tokens");
    is_int(ngx_http_ai_guard_bucket_reset_ms(&c, 1000,
                                             NGX_HTTP_AI_GUARD_MINUTE_MS,
                                             now + 1),
           59, "reset_ms for one token: 60 ms, 1 already passed");

    /* 40000 tpm: 1.5 ms a token, exact without floats */
    memset(&c, 0, sizeof(c));
    ngx_http_ai_guard_bucket_take(&c, 40000, NGX_HTTP_AI_GUARD_MINUTE_MS,
                                  now, 40000);
    rc = ngx_http_ai_guard_bucket_check(&c, 40000,
                                        NGX_HTTP_AI_GUARD_MINUTE_MS, now, 3,
                                        &wait);
    is_int(wait, 5, "tpm=40000: 3 tokens in 4.5 ms, rounded up to 5");
    rc = ngx_http_ai_guard_bucket_check(&c, 40000,
                                        NGX_HTTP_AI_GUARD_MINUTE_MS, now + 4,
                                        3, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "not yet at 4 ms");
    is_int(wait, 1, "0.5 ms short: 1 ms");
    rc = ngx_http_ai_guard_bucket_check(&c, 40000,
                                        NGX_HTTP_AI_GUARD_MINUTE_MS, now + 5,
                                        3, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "fits at 5 ms");

    /* a long idle (and a zero stamp) refills to empty */
    rc = ngx_http_ai_guard_bucket_check(&c, 40000,
                                        NGX_HTTP_AI_GUARD_MINUTE_MS,
                                        now + 100000000, 40000, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "idle for a day: full");

    /* huge debt saturates and still drains */
    memset(&c, 0, sizeof(c));
    ngx_http_ai_guard_bucket_settle(&c, 10, NGX_HTTP_AI_GUARD_HOUR_MS, now,
                                    INT64_MAX);
    is_int(c.level == UINT64_MAX, 1, "huge debt saturates");
    is_int(ngx_http_ai_guard_bucket_remaining(&c, 10,
                                              NGX_HTTP_AI_GUARD_HOUR_MS,
                                              now + 5000000),
           0, "still in debt");
    ngx_http_ai_guard_bucket_settle(&c, 10, NGX_HTTP_AI_GUARD_HOUR_MS, now,
                                    -INT64_MAX);
    is_int(ngx_http_ai_guard_bucket_remaining(&c, 10,
                                              NGX_HTTP_AI_GUARD_HOUR_MS,
                                              now + 5000000),
           10, "refund clears it");

    /* limit 0 */
    memset(&c, 0, sizeof(c));
    rc = ngx_http_ai_guard_bucket_check(&c, 0, NGX_HTTP_AI_GUARD_MINUTE_MS,
                                        now, 1, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_NEVER, "limit 0: never");
}


static void
test_all_or_nothing(void)
{
    int                               rc, i;
    uint64_t                          now;
    ngx_http_ai_guard_counter_t       c[6];
    ngx_http_ai_guard_limit_item_t    it[6];
    ngx_http_ai_guard_limit_result_t  res;

    memset(c, 0, sizeof(c));
    memset(it, 0, sizeof(it));
    now = MS(2025, 1, 31, 23, 59, 0);

    it[0].kind = NGX_HTTP_AI_GUARD_LIMIT_RPM;
    it[0].limit = 10;
    it[0].cost = 1;
    it[1].kind = NGX_HTTP_AI_GUARD_LIMIT_TPM;
    it[1].limit = 1000;
    it[1].cost = 300;
    it[2].kind = NGX_HTTP_AI_GUARD_LIMIT_TPD;
    it[2].limit = 5000;
    it[2].cost = 300;
    it[3].kind = NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY;
    it[3].limit = 2;
    it[3].cost = 1;
    it[4].kind = NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH;
    it[4].limit = 5000000000000LL;          /* 5 USD */
    it[4].cost = 1000000000LL;              /* 0.001 USD */
    it[5].kind = NGX_HTTP_AI_GUARD_LIMIT_RPD;
    it[5].limit = 100;
    it[5].cost = 1;

    for (i = 0; i < 6; i++) {
        it[i].counter = &c[i];
    }

    rc = ngx_http_ai_guard_limit_reserve(it, 6, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "six scopes reserved");
    is_int(res.kind, NGX_HTTP_AI_GUARD_LIMIT_NONE, "nothing decided");

    rc = ngx_http_ai_guard_limit_reserve(it, 6, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "second reserved");

    it[1].cost = 500;
    rc = ngx_http_ai_guard_limit_reserve(it, 6, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "third denied");
    is_int(res.kind, NGX_HTTP_AI_GUARD_LIMIT_TPM,
           "the longest wait decides: tpm (6 s) over concurrency (1 s)");
    is_int(res.retry_ms, 6000, "100 tokens over at 1000 tpm: 6000 ms");
    is_int(res.index, 1, "index of the deciding item");
    is_str(ngx_http_ai_guard_limit_name(res.kind),
           strlen(ngx_http_ai_guard_limit_name(res.kind)), "tpm", "name");
    is_str(ngx_http_ai_guard_limit_code(res.kind),
           strlen(ngx_http_ai_guard_limit_code(res.kind)),
           "rate_limit_exceeded", "code");

    is_int(ngx_http_ai_guard_limit_remaining(&it[0], now), 8,
           "rpm untouched by the failed reservation");
    is_int(ngx_http_ai_guard_limit_remaining(&it[2], now), 4400,
           "tpd untouched");
    is_int(ngx_http_ai_guard_limit_remaining(&it[3], now), 0,
           "concurrency: two in flight");
    is_int(ngx_http_ai_guard_limit_remaining(&it[4], now),
           5000000000000LL - 2000000000LL, "budget untouched");
    is_int(ngx_http_ai_guard_limit_remaining(&it[5], now), 98,
           "rpd untouched");

    /* the first request finishes: 100 tokens, 0.0004 USD */
    it[1].cost = 300;
    ngx_http_ai_guard_limit_settle(it, 6, now, 100, 400000000LL);
    is_int(ngx_http_ai_guard_limit_remaining(&it[0], now), 8,
           "settle leaves request counters");
    is_int(ngx_http_ai_guard_limit_remaining(&it[1], now), 600,
           "tpm refunded 200");
    is_int(ngx_http_ai_guard_limit_remaining(&it[2], now), 4600,
           "tpd refunded 200");
    is_int(ngx_http_ai_guard_limit_remaining(&it[3], now), 1,
           "concurrency slot released");
    is_int(ngx_http_ai_guard_limit_remaining(&it[4], now),
           5000000000000LL - 1400000000LL, "budget refunded 0.0006 USD");

    /* concurrency alone now decides */
    it[1].cost = 1;
    rc = ngx_http_ai_guard_limit_reserve(it, 6, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "slot free again");
    rc = ngx_http_ai_guard_limit_reserve(it, 6, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "concurrency full");
    is_int(res.kind, NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY, "by concurrency");
    is_int(res.retry_ms, NGX_HTTP_AI_GUARD_LIMIT_CONC_RETRY_MS,
           "concurrency retry hint");

    /* a quota outlasts a rate: tpd decides, insufficient_quota */
    it[2].cost = 5000;
    it[3].limit = 10;
    rc = ngx_http_ai_guard_limit_reserve(it, 6, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "tpd exhausted");
    is_int(res.kind, NGX_HTTP_AI_GUARD_LIMIT_TPD, "by tpd");
    is_int(res.retry_ms, 60000, "until midnight UTC: 60 s");
    is_str(ngx_http_ai_guard_limit_code(res.kind),
           strlen(ngx_http_ai_guard_limit_code(res.kind)),
           "insufficient_quota", "tpd code");

    /* a cost no limit can hold beats any wait */
    it[4].cost = 6000000000000LL;
    rc = ngx_http_ai_guard_limit_reserve(it, 6, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_NEVER, "budget can never fit");
    is_int(res.kind, NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH, "by budget_month");

    /* NULL counters and kind NONE are skipped */
    it[0].counter = NULL;
    it[1].kind = NGX_HTTP_AI_GUARD_LIMIT_NONE;
    it[2].counter = NULL;
    it[4].counter = NULL;
    it[5].counter = NULL;
    rc = ngx_http_ai_guard_limit_reserve(it, 6, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "skipped items");
    rc = ngx_http_ai_guard_limit_reserve(NULL, 0, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "no items");
}


static void
test_saturation(void)
{
    int                               rc, i;
    uint64_t                          now, est, out, wait, cost;
    ngx_http_ai_guard_counter_t       c[5], before[5];
    ngx_http_ai_guard_limit_item_t    it[5];
    ngx_http_ai_guard_limit_result_t  res;

    /* the estimate: request, else tier, else default; times n */
    est = ngx_http_ai_guard_limit_estimate(100, 50, -1, 4096, 1024, &out);
    is_int(est, 150, "estimate: prompt + max_tokens");
    is_int(out, 50, "output: max_tokens");
    est = ngx_http_ai_guard_limit_estimate(100, -1, -1, 4096, 1024, &out);
    is_int(est, 4196, "no max_tokens: the tier's cap");
    est = ngx_http_ai_guard_limit_estimate(100, -1, 3, -1, 1024, &out);
    is_int(est, 100 + 3 * 1024, "no cap: the default, times n");
    is_int(out, 3 * 1024, "output times n");
    est = ngx_http_ai_guard_limit_estimate(10, 5, 0, -1, 1024, &out);
    is_int(est, 15, "n 0 counts once");
    est = ngx_http_ai_guard_limit_estimate(10, 0, 7, -1, 1024, &out);
    is_int(est, 10, "max_tokens 0 is a cap of 0, not absent");

    /* 2^63 - 1 times 2 fits in 64 bits: exact, no signed overflow */
    est = ngx_http_ai_guard_limit_estimate(0, INT64_MAX, 2, -1, 1024, &out);
    ok(out == UINT64_MAX - 1, "INT64_MAX x 2 is exact");
    est = ngx_http_ai_guard_limit_estimate(100, INT64_MAX, 2, -1, 1024,
                                           &out);
    ok(est == UINT64_MAX, "plus the prompt saturates");
    est = ngx_http_ai_guard_limit_estimate(100, INT64_MAX, INT64_MAX, -1,
                                           1024, &out);
    ok(est == UINT64_MAX && out == UINT64_MAX,
       "INT64_MAX x INT64_MAX saturates");
    est = ngx_http_ai_guard_limit_estimate(0, 1LL << 62, 4, -1, 1024, &out);
    ok(out == UINT64_MAX, "2^62 x 4 saturates, does not wrap to 0");
    est = ngx_http_ai_guard_limit_estimate(UINT64_MAX, -1, INT64_MAX,
                                           INT64_MAX, UINT64_MAX, &out);
    ok(est == UINT64_MAX, "a saturated prompt stays saturated");

    /* such an estimate can never fit a small tpm; nothing is taken */
    memset(c, 0, sizeof(c));
    memset(it, 0, sizeof(it));
    now = MS(2025, 5, 5, 5, 5, 5);

    it[0].kind = NGX_HTTP_AI_GUARD_LIMIT_RPM;
    it[0].limit = 100;
    it[1].kind = NGX_HTTP_AI_GUARD_LIMIT_TPM;
    it[1].limit = 1000;
    it[2].kind = NGX_HTTP_AI_GUARD_LIMIT_TPD;
    it[2].limit = 1000000;
    it[3].kind = NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY;
    it[3].limit = 4;
    it[4].kind = NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY;
    it[4].limit = 5000000000000LL;

    for (i = 0; i < 5; i++) {
        it[i].counter = &c[i];
        it[i].cost = 1;
    }

    rc = ngx_http_ai_guard_limit_reserve(it, 5, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "a small request first");
    memcpy(before, c, sizeof(c));

    est = ngx_http_ai_guard_limit_estimate(20, INT64_MAX, 16, -1, 1024,
                                           &out);
    it[1].cost = est;
    it[2].cost = est;
    rc = ngx_http_ai_guard_limit_reserve(it, 5, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_NEVER,
           "max_tokens x n saturated: never fits tpm=1000");
    is_int(res.kind, NGX_HTTP_AI_GUARD_LIMIT_TPM, "decided by tpm");
    ok(memcmp(before, c, sizeof(c)) == 0, "refused: no counter changed");

    /* monitor mode takes it anyway: every counter saturates, none wraps */
    ngx_http_ai_guard_limit_take(it, 5);
    ok(c[1].level == UINT64_MAX, "tpm level saturated");
    ok(c[2].level == UINT64_MAX, "tpd level saturated");
    is_int(c[0].level, 2 * NGX_HTTP_AI_GUARD_MINUTE_MS, "rpm took 1");
    is_int(c[3].level, 2, "concurrency took 1");

    /* the settle refunds the whole difference, not just INT64_MAX of it */
    ngx_http_ai_guard_limit_settle(it, 5, now, 700, 1);
    is_int(c[1].level, 0, "tpm: refund beyond INT64_MAX floors at empty");
    is_int(c[2].level, 700, "tpd: holds the real usage");
    is_int(c[3].level, 1, "the slot is back");

    /* a cost whose cost x period wraps 64 bits: the old take added ~0 */
    memset(c, 0, sizeof(c));
    c[1].stamp = now;
    c[1].level = 5;
    cost = UINT64_MAX / NGX_HTTP_AI_GUARD_MINUTE_MS + 1;
    it[1].cost = cost;
    it[2].cost = UINT64_MAX;
    c[2].level = 7;
    c[2].stamp = ngx_http_ai_guard_cal_window(NGX_HTTP_AI_GUARD_CAL_DAY, now);
    it[3].cost = UINT64_MAX;
    c[3].level = 1;
    ngx_http_ai_guard_limit_take(&it[1], 3);
    ok(c[1].level == UINT64_MAX, "bucket take: cost x period saturates");
    ok(c[2].level == UINT64_MAX, "quota take: level + cost saturates");
    ok(c[3].level == UINT64_MAX, "concurrency take saturates");

    /* a settle at the extremes never wraps */
    ngx_http_ai_guard_bucket_settle(&c[1], 1000, NGX_HTTP_AI_GUARD_MINUTE_MS,
                                    now, INT64_MAX);
    ok(c[1].level == UINT64_MAX, "a charge on a full level stays full");
    ngx_http_ai_guard_quota_settle(&c[2], NGX_HTTP_AI_GUARD_CAL_DAY, now,
                                   c[2].stamp, INT64_MAX);
    ok(c[2].level == UINT64_MAX, "a quota charge on a full level too");
    ngx_http_ai_guard_quota_settle(&c[2], NGX_HTTP_AI_GUARD_CAL_DAY, now,
                                   c[2].stamp, INT64_MIN);
    ok(c[2].level == UINT64_MAX - ((uint64_t) INT64_MAX + 1),
       "a refund of INT64_MIN is 2^63 exactly");
    ngx_http_ai_guard_bucket_settle(&c[1], 1000, NGX_HTTP_AI_GUARD_MINUTE_MS,
                                    now, INT64_MIN);
    is_int(c[1].level, 0, "a bucket refund of INT64_MIN empties it");

    /* a stamp far ahead of this worker's clock: the wait saturates */
    memset(c, 0, sizeof(c));
    c[0].level = UINT64_MAX;
    c[0].stamp = UINT64_MAX - 1;
    rc = ngx_http_ai_guard_bucket_check(&c[0], 2, NGX_HTTP_AI_GUARD_MINUTE_MS,
                                        0, 1, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "far-ahead stamp: wait");
    ok(wait == UINT64_MAX, "the wait saturates, does not wrap short");
    ok(ngx_http_ai_guard_bucket_reset_ms(&c[0], 2,
                                         NGX_HTTP_AI_GUARD_MINUTE_MS, 0)
       == UINT64_MAX, "and so does the reset");

    /* the last day and month before 2^64 ms end there */
    ok(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_DAY,
                                      UINT64_MAX - 1000) == 1000,
       "day reset at the end of time: no wrap");
    ok(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_MONTH,
                                      UINT64_MAX - 1000) == 1000,
       "month reset at the end of time: no wrap");

    /* a quota's cost near UINT64_MAX */
    memset(c, 0, sizeof(c));
    rc = ngx_http_ai_guard_quota_check(&c[0], NGX_HTTP_AI_GUARD_CAL_MONTH,
                                       UINT64_MAX, now, UINT64_MAX, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "a UINT64_MAX quota holds it");
    ngx_http_ai_guard_quota_take(&c[0], NGX_HTTP_AI_GUARD_CAL_MONTH, now,
                                 UINT64_MAX);
    rc = ngx_http_ai_guard_quota_check(&c[0], NGX_HTTP_AI_GUARD_CAL_MONTH,
                                       UINT64_MAX, now, 1, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "then one more waits");
    is_int(ngx_http_ai_guard_quota_remaining(&c[0],
                                             NGX_HTTP_AI_GUARD_CAL_MONTH,
                                             UINT64_MAX, now),
           0, "remaining 0");
}


static void
test_names(void)
{
    static const char  *names[] = {
        "none", "rpm", "rph", "rpd", "tpm", "tph", "tpd", "tokens_month",
        "concurrency", "budget_day", "budget_month"
    };
    static const char  *codes[] = {
        "", "rate_limit_exceeded", "rate_limit_exceeded",
        "insufficient_quota", "rate_limit_exceeded", "rate_limit_exceeded",
        "insufficient_quota", "insufficient_quota", "rate_limit_exceeded",
        "insufficient_quota", "insufficient_quota"
    };
    int                 i, good;

    good = 1;

    for (i = 0; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        if (strcmp(ngx_http_ai_guard_limit_name(i), names[i]) != 0
            || strcmp(ngx_http_ai_guard_limit_code(i), codes[i]) != 0)
        {
            good = 0;
            printf("# kind %d: %s %s\n", i, ngx_http_ai_guard_limit_name(i),
                   ngx_http_ai_guard_limit_code(i));
        }
    }

    ok(good, "every kind's name and code");
    is_str(ngx_http_ai_guard_limit_name(99), 4, "none", "unknown kind");
}


static void
test_calendar(void)
{
    int                          rc, good;
    uint64_t                     now, wait, d, ms, want;
    struct tm                    tm;
    ngx_http_ai_guard_counter_t  c;
    time_t                       t;

    now = MS(2024, 2, 29, 12, 0, 0);
    is_int(ngx_http_ai_guard_cal_window(NGX_HTTP_AI_GUARD_CAL_MONTH, now),
           2024 * 12 + 1, "2024-02-29: month window");
    is_int(ngx_http_ai_guard_cal_window(NGX_HTTP_AI_GUARD_CAL_DAY, now),
           19782, "2024-02-29: day 19782");
    is_int(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_MONTH, now),
           12 * 3600000, "leap day noon: month resets in 12 h");
    is_int(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_MONTH,
                                          MS(2024, 2, 1, 0, 0, 0)),
           29 * NGX_HTTP_AI_GUARD_DAY_MS, "February 2024 has 29 days");
    is_int(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_MONTH,
                                          MS(2100, 2, 1, 0, 0, 0)),
           28 * NGX_HTTP_AI_GUARD_DAY_MS, "February 2100 has 28");
    is_int(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_MONTH,
                                          MS(2000, 2, 1, 0, 0, 0)),
           29 * NGX_HTTP_AI_GUARD_DAY_MS, "February 2000 has 29");
    is_int(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_MONTH,
                                          MS(2100, 2, 28, 23, 0, 0)),
           3600000, "2100-02-28 23:00: 1 h to March");
    is_int(ngx_http_ai_guard_cal_window(NGX_HTTP_AI_GUARD_CAL_MONTH,
                                        MS(2100, 3, 1, 0, 0, 0)),
           2100 * 12 + 2, "2100-03-01 is March");
    is_int(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_DAY,
                                          MS(2024, 12, 31, 23, 59, 59) + 999),
           1, "year end: 1 ms to midnight");
    is_int(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_MONTH,
                                          MS(2024, 12, 31, 23, 59, 59) + 999),
           1, "year end: 1 ms to January");
    is_int(ngx_http_ai_guard_cal_window(NGX_HTTP_AI_GUARD_CAL_MONTH,
                                        MS(2025, 1, 1, 0, 0, 0)),
           2025 * 12, "2025-01-01 is January 2025");
    is_int(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_DAY,
                                          MS(2025, 1, 1, 0, 0, 0)),
           NGX_HTTP_AI_GUARD_DAY_MS, "at midnight: a whole day");
    is_int(ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_MONTH,
                                          MS(2025, 4, 30, 23, 59, 59)),
           1000, "April has 30 days");
    is_int(ngx_http_ai_guard_cal_window(NGX_HTTP_AI_GUARD_CAL_MONTH, 0),
           1970 * 12, "epoch: January 1970");

    /* every 7th hour from 1970 to 2400 against gmtime */
    good = 1;

    for (ms = 0; ms < (uint64_t) 13600000000ULL * 1000;
         ms += 7 * 3600000ULL + 1234)
    {
        t = (time_t) (ms / 1000);
        gmtime_r(&t, &tm);
        want = (uint64_t) (tm.tm_year + 1900) * 12 + tm.tm_mon;

        if (ngx_http_ai_guard_cal_window(NGX_HTTP_AI_GUARD_CAL_MONTH, ms)
            != want)
        {
            good = 0;
            break;
        }

        tm.tm_mon++;
        tm.tm_mday = 1;
        tm.tm_hour = 0;
        tm.tm_min = 0;
        tm.tm_sec = 0;
        want = (uint64_t) timegm(&tm) * 1000 - ms;

        if (ngx_http_ai_guard_cal_reset_ms(NGX_HTTP_AI_GUARD_CAL_MONTH, ms)
            != want)
        {
            good = 0;
            break;
        }
    }

    ok(good, "month window and reset agree with gmtime 1970-2400");

    if (!good) {
        printf("#   at %llu ms\n", (unsigned long long) ms);
    }

    /* a day quota across midnight */
    memset(&c, 0, sizeof(c));
    now = MS(2025, 3, 31, 23, 59, 0);

    rc = ngx_http_ai_guard_quota_check(&c, NGX_HTTP_AI_GUARD_CAL_DAY, 1000,
                                       now, 1000, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "tpd: 1000 of 1000 fits");
    ngx_http_ai_guard_quota_take(&c, NGX_HTTP_AI_GUARD_CAL_DAY, now, 1000);
    d = c.stamp;

    rc = ngx_http_ai_guard_quota_check(&c, NGX_HTTP_AI_GUARD_CAL_DAY, 1000,
                                       now, 1, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "spent");
    is_int(wait, 60000, "until midnight");
    rc = ngx_http_ai_guard_quota_check(&c, NGX_HTTP_AI_GUARD_CAL_DAY, 1000,
                                       now, 1001, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_NEVER, "over the quota: never");

    now += 60000;
    is_int(ngx_http_ai_guard_quota_remaining(&c, NGX_HTTP_AI_GUARD_CAL_DAY,
                                             1000, now),
           1000, "new day: full quota");

    ngx_http_ai_guard_quota_take(&c, NGX_HTTP_AI_GUARD_CAL_DAY, now, 10);
    ngx_http_ai_guard_quota_settle(&c, NGX_HTTP_AI_GUARD_CAL_DAY, now, d,
                                   -500);
    is_int(ngx_http_ai_guard_quota_remaining(&c, NGX_HTTP_AI_GUARD_CAL_DAY,
                                             1000, now),
           990, "yesterday's refund does not touch today");
    ngx_http_ai_guard_quota_settle(&c, NGX_HTTP_AI_GUARD_CAL_DAY, now, d,
                                   1500);
    is_int(ngx_http_ai_guard_quota_remaining(&c, NGX_HTTP_AI_GUARD_CAL_DAY,
                                             1000, now),
           0, "a late charge lands today, in debt");
    rc = ngx_http_ai_guard_quota_check(&c, NGX_HTTP_AI_GUARD_CAL_DAY, 1000,
                                       now, 0, &wait);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_WAIT, "debt denies even cost 0");
    ngx_http_ai_guard_quota_settle(&c, NGX_HTTP_AI_GUARD_CAL_DAY, now,
                                   c.stamp, -1000);
    is_int(ngx_http_ai_guard_quota_remaining(&c, NGX_HTTP_AI_GUARD_CAL_DAY,
                                             1000, now),
           490, "same-day refund applies");

    /* a worker a little behind midnight counts into the new day */
    now -= 5;
    is_int(ngx_http_ai_guard_quota_remaining(&c, NGX_HTTP_AI_GUARD_CAL_DAY,
                                             1000, now),
           490, "skewed clock keeps the newer window");

    /* month quota at a month end */
    memset(&c, 0, sizeof(c));
    now = MS(2024, 2, 29, 23, 0, 0);
    ngx_http_ai_guard_quota_take(&c, NGX_HTTP_AI_GUARD_CAL_MONTH, now, 7);
    is_int(ngx_http_ai_guard_quota_remaining(&c, NGX_HTTP_AI_GUARD_CAL_MONTH,
                                             10, now),
           3, "7 of 10 used in February");
    is_int(ngx_http_ai_guard_quota_remaining(&c, NGX_HTTP_AI_GUARD_CAL_MONTH,
                                             10, now + 3600000),
           10, "March starts afresh");
}


/* against printf, at every length and around every power of ten */

static void
test_uint_format(void)
{
    int       ok;
    char      want[32];
    u_char    buf[NGX_HTTP_AI_GUARD_UINT_LEN], *e;
    uint64_t  v, p;

    ok = 1;

    for (v = 0; v < 100100 && ok; v++) {
        e = ngx_http_ai_guard_uint_format(buf, v);
        snprintf(want, sizeof(want), "%llu", (unsigned long long) v);
        ok = ((size_t) (e - buf) == strlen(want)
              && memcmp(buf, want, e - buf) == 0);
    }

    is_int(ok, 1, "0 to 100099 as printf writes them");

    for (p = 10; p <= 10000000000000000000ULL; p *= 10) {
        for (v = p - 1; v <= p + 1; v++) {
            e = ngx_http_ai_guard_uint_format(buf, v);
            snprintf(want, sizeof(want), "%llu", (unsigned long long) v);
            is_str(buf, e - buf, want, "%s as printf writes it", want);
        }

        if (p == 10000000000000000000ULL) {
            break;
        }
    }

    e = ngx_http_ai_guard_uint_format(buf, UINT64_MAX);
    is_str(buf, e - buf, "18446744073709551615", "UINT64_MAX, 20 bytes");
}


static void
test_durations(void)
{
    u_char    buf[NGX_HTTP_AI_GUARD_DURATION_LEN], *e;
    uint64_t  ms;

#define DUR(v, want)                                                         \
    e = ngx_http_ai_guard_duration_format(buf, v);                           \
    is_str(buf, e - buf, want, "duration %llu ms", (unsigned long long) (v))

    DUR(0, "0s");
    DUR(1, "1ms");
    DUR(20, "20ms");
    DUR(250, "250ms");
    DUR(999, "999ms");
    DUR(1000, "1s");
    DUR(1001, "2s");
    DUR(12000, "12s");
    DUR(59999, "1m0s");
    DUR(360000, "6m0s");
    DUR(3600000, "1h0m0s");
    DUR(3723000, "1h2m3s");
    DUR(86400000, "24h0m0s");
    DUR(UINT64_MAX, "5124095576030h25m52s");

#undef DUR

#define PARSE(s, want)                                                       \
    ms = 12345;                                                              \
    is_int(ngx_http_ai_guard_duration_parse((u_char *) s, strlen(s), &ms),   \
           0, "parse \"%s\"", s);                                            \
    is_int(ms, want, "\"%s\" is %llu ms", s, (unsigned long long) (want))

    PARSE("0s", 0);
    PARSE("250ms", 250);
    PARSE("6m0s", 360000);
    PARSE("1h2m3s", 3723000);
    PARSE("1m500ms", 60500);

#undef PARSE

#define BAD(s)                                                               \
    is_int(ngx_http_ai_guard_duration_parse((u_char *) s, strlen(s), &ms),   \
           -1, "bad duration \"%s\"", s)

    BAD("");
    BAD("5");
    BAD("1x");
    BAD("ms");
    BAD("1h2");
    BAD("-1s");
    BAD("1 s");
    BAD("99999999999999999999s");
    BAD("18446744073709551615h");

#undef BAD

    is_int(ngx_http_ai_guard_retry_after(0), 1, "retry-after at least 1");
    is_int(ngx_http_ai_guard_retry_after(1), 1, "1 ms: 1 s");
    is_int(ngx_http_ai_guard_retry_after(1000), 1, "1000 ms: 1 s");
    is_int(ngx_http_ai_guard_retry_after(1001), 2, "1001 ms: 2 s, rounded up");
    is_int(ngx_http_ai_guard_retry_after(12000), 12, "12000 ms: 12 s");
}


/*
 * A reservation that a later scope refused is given back whole: every
 * counter as before it, requests too; a settlement leaves requests.
 */

static void
test_untake(void)
{
    int                               rc, i;
    uint64_t                          now;
    ngx_http_ai_guard_counter_t       c[4];
    ngx_http_ai_guard_limit_item_t    it[4];
    ngx_http_ai_guard_limit_result_t  res;

    static const uint64_t  spec[4][3] = {
        { NGX_HTTP_AI_GUARD_LIMIT_RPM, 10, 1 },
        { NGX_HTTP_AI_GUARD_LIMIT_TPD, 5000, 300 },
        { NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY, 2, 1 },
        { NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH, 1000000, 400 }
    };

    memset(c, 0, sizeof(c));
    memset(it, 0, sizeof(it));
    now = MS(2026, 11, 30, 12, 0, 0);

    for (i = 0; i < 4; i++) {
        it[i].kind = (ngx_http_ai_guard_limit_kind_e) spec[i][0];
        it[i].limit = spec[i][1];
        it[i].cost = spec[i][2];
        it[i].counter = &c[i];
    }

    is_int(ngx_http_ai_guard_limit_fresh_at(it, 4, now), now,
           "fresh now: nothing counted");

    rc = ngx_http_ai_guard_limit_reserve(it, 4, now, &res);
    is_int(rc, NGX_HTTP_AI_GUARD_LIMIT_OK, "reserved");
    is_int(ngx_http_ai_guard_limit_fresh_at(it, 4, now),
           MS(2026, 12, 1, 0, 0, 0), "fresh when the month's window ends");

    ngx_http_ai_guard_limit_untake(it, 4, now);

    is_int(ngx_http_ai_guard_limit_remaining(&it[0], now), 10,
           "untake: rpm back, the request too");
    is_int(ngx_http_ai_guard_limit_remaining(&it[1], now), 5000,
           "untake: tpd back");
    is_int(ngx_http_ai_guard_limit_remaining(&it[2], now), 2,
           "untake: the slot back");
    is_int(ngx_http_ai_guard_limit_remaining(&it[3], now), 1000000,
           "untake: the budget back");
    is_int(ngx_http_ai_guard_limit_fresh_at(it, 4, now), now,
           "fresh again after the untake");

    is_int(ngx_http_ai_guard_limit_unit(NGX_HTTP_AI_GUARD_LIMIT_RPD), 1,
           "rpd counts requests");
    is_int(ngx_http_ai_guard_limit_unit(NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY),
           1, "concurrency counts slots, one a request");
    is_int(ngx_http_ai_guard_limit_unit(NGX_HTTP_AI_GUARD_LIMIT_TPH), 2,
           "tph counts tokens");
    is_int(ngx_http_ai_guard_limit_unit(NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY),
           3, "budget_day counts money");
    is_int(ngx_http_ai_guard_limit_unit(NGX_HTTP_AI_GUARD_LIMIT_NKINDS), 0,
           "no kind: no unit");
}


int
main(void)
{
    test_rpm();
    test_tokens();
    test_all_or_nothing();
    test_untake();
    test_saturation();
    test_names();
    test_calendar();
    test_uint_format();
    test_durations();

    return done_testing();
}
