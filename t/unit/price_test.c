
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <tap.h>
#include <ngx_http_ai_guard_price.h>


#define S(s)  (const u_char *) (s), strlen(s)


static void
test_price_parse(void)
{
    int64_t  v;

#define GOOD(s, want)                                                        \
    v = -7;                                                                  \
    is_int(ngx_http_ai_guard_price_parse(S(s), &v), 0, "price \"%s\"", s);   \
    is_int(v, want, "price \"%s\" is %lld pico-USD a token", s,              \
           (long long) (want))

    GOOD("0.15", 150000);
    GOOD("2.50", 2500000);
    GOOD("0.075", 75000);
    GOOD("10", 10000000);
    GOOD("0.0375", 37500);
    GOOD("0.000001", 1);
    GOOD("0", 0);
    GOOD("007.5", 7500000);
    GOOD("9223372036854.775807", INT64_MAX);

#undef GOOD

#define BAD(s)                                                               \
    v = -7;                                                                  \
    is_int(ngx_http_ai_guard_price_parse(S(s), &v), -1, "bad price \"%s\"",  \
           s);                                                               \
    is_int(v, -7, "\"%s\" leaves the value alone", s)

    BAD("");
    BAD(".");
    BAD(".5");
    BAD("5.");
    BAD("0.0000001");
    BAD("0.1500000");
    BAD("-1");
    BAD("+1");
    BAD("1e3");
    BAD("1.2.3");
    BAD(" 1");
    BAD("1 ");
    BAD("0x10");
    BAD("1,5");
    BAD("99999999999999999999");
    BAD("9223372036854.775808");
    BAD("9223372036855");

#undef BAD

    is_int(ngx_http_ai_guard_price_parse((const u_char *) "0.15", 3, &v), 0,
           "length bounds the input");
    is_int(v, 100000, "\"0.1\" of \"0.15\"");
}


static void
test_usd_parse(void)
{
    int64_t                             v;
    ngx_http_ai_guard_budget_period_e   per;

    is_int(ngx_http_ai_guard_usd_parse(S("5"), &v), 0, "usd 5");
    is_int(v, 5000000000000LL, "5 USD in pico");
    is_int(ngx_http_ai_guard_usd_parse(S("0.000000000001"), &v), 0,
           "usd 1 pico");
    is_int(v, 1, "1 pico");
    is_int(ngx_http_ai_guard_usd_parse(S("9223372"), &v), 0,
           "largest whole dollars");
    is_int(v, 9223372000000000000LL, "9223372 USD");
    is_int(ngx_http_ai_guard_usd_parse(S("9223373"), &v), -1,
           "usd overflow");
    is_int(ngx_http_ai_guard_usd_parse(S("0.0000000000001"), &v), -1,
           "usd 13 decimals");

    v = 0;
    per = NGX_HTTP_AI_GUARD_BUDGET_DAY;
    is_int(ngx_http_ai_guard_budget_parse(S("5/month"), &v, &per), 0,
           "budget 5/month");
    is_int(v, 5000000000000LL, "5 USD");
    is_int(per, NGX_HTTP_AI_GUARD_BUDGET_MONTH, "a month");

    is_int(ngx_http_ai_guard_budget_parse(S("0.50/day"), &v, &per), 0,
           "budget 0.50/day");
    is_int(v, 500000000000LL, "0.50 USD");
    is_int(per, NGX_HTTP_AI_GUARD_BUDGET_DAY, "a day");

    is_int(ngx_http_ai_guard_budget_parse(S("500/month"), &v, &per), 0,
           "budget 500/month");
    is_int(v, 500000000000000LL, "500 USD");

    is_int(ngx_http_ai_guard_budget_parse(S("0/day"), &v, &per), 0,
           "budget 0/day");
    is_int(v, 0, "nothing to spend");

#define BAD(s)                                                               \
    is_int(ngx_http_ai_guard_budget_parse(S(s), &v, &per), -1,               \
           "bad budget \"%s\"", s)

    BAD("");
    BAD("5");
    BAD("5/");
    BAD("/day");
    BAD("5/week");
    BAD("5/Day");
    BAD("5/month/");
    BAD("5/monthx");
    BAD("5/mont");
    BAD("-5/day");
    BAD("5 /day");
    BAD("1e3/day");
    BAD("5//day");
    BAD("99999999/month");

#undef BAD
}


static void
test_cost(void)
{
    u_char                     buf[NGX_HTTP_AI_GUARD_USD_LEN], *e;
    int64_t                    c, sum;
    ngx_http_ai_guard_price_t  mini, sonnet, plain;

    mini.input = 150000;            /* 0.15 */
    mini.output = 600000;           /* 0.60 */
    mini.cached_input = 75000;      /* 0.075 */
    mini.cache_write = NGX_HTTP_AI_GUARD_PRICE_UNSET;

    sonnet.input = 3000000;         /* 3.00 */
    sonnet.output = 15000000;       /* 15.00 */
    sonnet.cached_input = 300000;   /* 0.30 */
    sonnet.cache_write = 3750000;   /* 3.75 */

    plain.input = 2500000;          /* 2.50 */
    plain.output = 10000000;        /* 10.00 */
    plain.cached_input = NGX_HTTP_AI_GUARD_PRICE_UNSET;
    plain.cache_write = NGX_HTTP_AI_GUARD_PRICE_UNSET;

    /* 1234 x 150000 + 567 x 600000 = 185100000 + 340200000 */
    c = ngx_http_ai_guard_price_cost(&mini, 1234, 567, 0, 0);
    is_int(c, 525300000, "1234 in @0.15 + 567 out @0.60");
    e = ngx_http_ai_guard_usd_format(buf, c);
    is_str(buf, e - buf, "0.0005253", "as USD");
    sum = c;

    /* 6000 x 150000 + 4000 x 75000 */
    c = ngx_http_ai_guard_price_cost(&mini, 10000, 0, 4000, 0);
    is_int(c, 1200000000, "4000 of 10000 cached @0.075");
    sum = ngx_http_ai_guard_pico_add(sum, c);

    /* cache_write unset: at the input price */
    c = ngx_http_ai_guard_price_cost(&mini, 1000, 0, 0, 400);
    is_int(c, 150000000, "cache writes at the input price when unset");

    /* 1000 x 3e6 + 2000 x 3e5 + 500 x 3.75e6 + 200 x 15e6 */
    c = ngx_http_ai_guard_price_cost(&sonnet, 3500, 200, 2000, 500);
    is_int(c, 8475000000LL, "uncached, cache read, cache write, output");
    e = ngx_http_ai_guard_usd_format(buf, c);
    is_str(buf, e - buf, "0.008475", "as USD");
    sum = ngx_http_ai_guard_pico_add(sum, c);

    /* cached unset: at the input price */
    c = ngx_http_ai_guard_price_cost(&plain, 1000, 100, 600, 0);
    is_int(c, 3500000000LL, "cached at the input price when unset");
    sum = ngx_http_ai_guard_pico_add(sum, c);

    is_int(sum, 525300000LL + 1200000000LL + 8475000000LL + 3500000000LL,
           "a ledger is the exact sum");
    e = ngx_http_ai_guard_usd_format(buf, sum);
    is_str(buf, e - buf, "0.0137003", "the sum as USD");

    c = ngx_http_ai_guard_price_cost(&mini, 100, 0, 300, 0);
    is_int(c, 300 * 75000, "more cached than input: uncached is 0");

    c = ngx_http_ai_guard_price_cost(&sonnet, 100, 0, 80, 80);
    is_int(c, 80 * 300000 + 80 * 3750000, "cached + writes > input");

    c = ngx_http_ai_guard_price_cost(&mini, 0, 0, 0, 0);
    is_int(c, 0, "nothing costs nothing");

    c = ngx_http_ai_guard_price_cost(&plain, UINT64_MAX, 0, 0, 0);
    is_int(c, NGX_HTTP_AI_GUARD_PICO_MAX, "overflow saturates");
    c = ngx_http_ai_guard_price_cost(&plain, 4000000000000LL, 1, 0, 0);
    is_int(c, NGX_HTTP_AI_GUARD_PICO_MAX, "a saturated sum stays saturated");

    plain.input = NGX_HTTP_AI_GUARD_PRICE_UNSET;
    c = ngx_http_ai_guard_price_cost(&plain, 1000, 1, 500, 0);
    is_int(c, 10000000, "unset input price costs nothing");

    is_int(ngx_http_ai_guard_pico_add(INT64_MAX, 1), INT64_MAX,
           "add saturates up");
    is_int(ngx_http_ai_guard_pico_add(-INT64_MAX, -5), -INT64_MAX,
           "add saturates down");
    is_int(ngx_http_ai_guard_pico_add(INT64_MAX, -1), INT64_MAX - 1,
           "add");
}


static void
test_format(void)
{
    u_char  buf[NGX_HTTP_AI_GUARD_USD_LEN], *e;

#define FMT(v, want)                                                         \
    e = ngx_http_ai_guard_usd_format(buf, v);                                \
    is_str(buf, e - buf, want, "format %lld", (long long) (v))

    FMT(0, "0.000000");
    FMT(1, "0.000000000001");
    FMT(10, "0.00000000001");
    FMT(1000000, "0.000001");
    FMT(12345000000LL, "0.012345");
    FMT(37500000, "0.0000375");
    FMT(1500000000000LL, "1.500000");
    FMT(1000000000000LL, "1.000000");
    FMT(123456789000000LL, "123.456789");
    FMT(123456789012345LL, "123.456789012345");
    FMT(INT64_MAX, "9223372.036854775807");
    FMT(-1, "-0.000000000001");
    FMT(-1500000000000LL, "-1.500000");
    FMT(INT64_MIN, "-9223372.036854775808");

#undef FMT
}


static void
test_glob(void)
{
    char  s[200];

#define GLOB(p, str, want)                                                   \
    is_int(ngx_http_ai_guard_glob_match(S(p), S(str)), want,                 \
           "\"%s\" %s \"%s\"", p, (want) ? "matches" : "does not match", str)

    GLOB("gpt-4o-mini*", "gpt-4o-mini", 1);
    GLOB("gpt-4o-mini*", "gpt-4o-mini-2024-07-18", 1);
    GLOB("gpt-4o-mini*", "gpt-4o", 0);
    GLOB("gpt-4o*", "gpt-4o-mini", 1);
    GLOB("*", "", 1);
    GLOB("*", "claude-3-opus", 1);
    GLOB("", "", 1);
    GLOB("", "a", 0);
    GLOB("a", "", 0);
    GLOB("gpt-4o-mini*", "", 0);
    GLOB("?*", "", 0);
    GLOB("claude-3-5-*", "claude-3-5-sonnet-20241022", 1);
    GLOB("claude-3-5-*", "claude-3-opus", 0);
    GLOB("gpt-?o", "gpt-4o", 1);
    GLOB("gpt-?o", "gpt-o", 0);
    GLOB("???", "ab", 0);
    GLOB("*-mini", "gpt-4o-mini", 1);
    GLOB("*-mini", "gpt-4o-mini-x", 0);
    GLOB("a*b*c", "aXbYc", 1);
    GLOB("a*b*c", "abcbc", 1);
    GLOB("a*b*c", "aXbY", 0);
    GLOB("a**b", "ab", 1);
    GLOB("*a*", "bab", 1);
    GLOB("GPT*", "gpt-4", 0);
    GLOB("gpt-4", "gpt-4o", 0);
    GLOB("gpt-4o", "gpt-4", 0);
    GLOB("*?", "", 0);
    GLOB("*?", "x", 1);

#undef GLOB

    memset(s, 'a', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    is_int(ngx_http_ai_guard_glob_match(S("a*a*a*a*a*a*a*a*a*a*b"), S(s)), 0,
           "pathological pattern, no blow-up");
}


int
main(void)
{
    test_price_parse();
    test_usd_parse();
    test_cost();
    test_format();
    test_glob();

    return done_testing();
}
