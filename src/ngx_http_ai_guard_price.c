
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>
#include <ngx_http_ai_guard_price.h>


#define NGX_HTTP_AI_GUARD_PRICE_DECIMALS  6
#define NGX_HTTP_AI_GUARD_USD_DECIMALS    12


static int ngx_http_ai_guard_decimal_parse(const u_char *p, size_t len,
    unsigned decimals, int64_t *value);
static int64_t ngx_http_ai_guard_pico_mul(uint64_t tokens, int64_t price);


/*
 * A plain decimal "12", "0.15", "2.50" with at most "decimals" digits after
 * the point, scaled by 10^decimals.  No sign, no exponent, no spaces, at
 * least one digit on each side of a point.  Returns 0, or -1 on a
 * malformed value or one above INT64_MAX once scaled.
 */

static int
ngx_http_ai_guard_decimal_parse(const u_char *p, size_t len,
    unsigned decimals, int64_t *value)
{
    unsigned       nfrac;
    uint64_t       v;
    const u_char  *end;

    end = p + len;
    v = 0;

    if (p == end || *p < '0' || *p > '9') {
        return -1;
    }

    while (p < end && *p >= '0' && *p <= '9') {
        if (v > ((uint64_t) INT64_MAX - (*p - '0')) / 10) {
            return -1;
        }

        v = v * 10 + (*p++ - '0');
    }

    nfrac = 0;

    if (p < end) {
        if (*p++ != '.' || p == end) {
            return -1;
        }

        while (p < end) {
            if (*p < '0' || *p > '9' || nfrac == decimals) {
                return -1;
            }

            if (v > ((uint64_t) INT64_MAX - (*p - '0')) / 10) {
                return -1;
            }

            v = v * 10 + (*p++ - '0');
            nfrac++;
        }
    }

    for ( /* void */ ; nfrac < decimals; nfrac++) {
        if (v > INT64_MAX / 10) {
            return -1;
        }

        v *= 10;
    }

    *value = (int64_t) v;

    return 0;
}


/* USD per 1M tokens, up to 6 decimals, into pico-USD per token */

int
ngx_http_ai_guard_price_parse(const u_char *p, size_t len, int64_t *price)
{
    return ngx_http_ai_guard_decimal_parse(p, len,
                                           NGX_HTTP_AI_GUARD_PRICE_DECIMALS,
                                           price);
}


/* USD, up to 12 decimals, into pico-USD */

int
ngx_http_ai_guard_usd_parse(const u_char *p, size_t len, int64_t *pico)
{
    return ngx_http_ai_guard_decimal_parse(p, len,
                                           NGX_HTTP_AI_GUARD_USD_DECIMALS,
                                           pico);
}


/* "5/month", "0.50/day": USD amount and its calendar period */

int
ngx_http_ai_guard_budget_parse(const u_char *p, size_t len, int64_t *pico,
    ngx_http_ai_guard_budget_period_e *period)
{
    size_t         n, rest;
    const u_char  *slash;

    slash = memchr(p, '/', len);

    if (slash == NULL) {
        return -1;
    }

    n = slash - p;
    rest = len - n - 1;

    if (rest == 3 && memcmp(slash + 1, "day", 3) == 0) {
        *period = NGX_HTTP_AI_GUARD_BUDGET_DAY;

    } else if (rest == 5 && memcmp(slash + 1, "month", 5) == 0) {
        *period = NGX_HTTP_AI_GUARD_BUDGET_MONTH;

    } else {
        return -1;
    }

    return ngx_http_ai_guard_usd_parse(p, n, pico);
}


static int64_t
ngx_http_ai_guard_pico_mul(uint64_t tokens, int64_t price)
{
    uint64_t  r;

    if (price <= 0) {
        return 0;
    }

    if (__builtin_mul_overflow(tokens, (uint64_t) price, &r)
        || r > (uint64_t) NGX_HTTP_AI_GUARD_PICO_MAX)
    {
        return NGX_HTTP_AI_GUARD_PICO_MAX;
    }

    return (int64_t) r;
}


/*
 * Saturating addition for ledger sums: the result stays within
 * [-PICO_MAX, PICO_MAX], a saturated sum stays saturated.
 */

int64_t
ngx_http_ai_guard_pico_add(int64_t a, int64_t b)
{
    int64_t  r;

    if (__builtin_add_overflow(a, b, &r)) {
        return (b > 0) ? NGX_HTTP_AI_GUARD_PICO_MAX
                       : -NGX_HTTP_AI_GUARD_PICO_MAX;
    }

    return (r < -NGX_HTTP_AI_GUARD_PICO_MAX) ? -NGX_HTTP_AI_GUARD_PICO_MAX : r;
}


/*
 * The cost of a request in pico-USD.  "input" counts every prompt token,
 * cached and cache-write ones included; those two are charged at their own
 * prices when set, else at the input price, and the rest (never below
 * zero) at the input price.  An unset input or output price costs nothing.
 * Saturates at NGX_HTTP_AI_GUARD_PICO_MAX instead of overflowing.
 */

int64_t
ngx_http_ai_guard_price_cost(const ngx_http_ai_guard_price_t *pr,
    uint64_t input, uint64_t output, uint64_t cached, uint64_t cache_write)
{
    int64_t   cost, pc, pw;
    uint64_t  uncached;

    pc = (pr->cached_input >= 0) ? pr->cached_input : pr->input;
    pw = (pr->cache_write >= 0) ? pr->cache_write : pr->input;

    uncached = (input > cached) ? input - cached : 0;
    uncached = (uncached > cache_write) ? uncached - cache_write : 0;

    cost = ngx_http_ai_guard_pico_mul(uncached, pr->input);
    cost = ngx_http_ai_guard_pico_add(cost,
                                      ngx_http_ai_guard_pico_mul(cached, pc));
    cost = ngx_http_ai_guard_pico_add(cost,
                                      ngx_http_ai_guard_pico_mul(cache_write,
                                                                 pw));
    cost = ngx_http_ai_guard_pico_add(cost,
                                      ngx_http_ai_guard_pico_mul(output,
                                                                 pr->output));

    return cost;
}


/*
 * Exact decimal USD: at least 6 decimals, the trailing zeros past the
 * sixth trimmed: "0.012345", "0.000000", "1.500000", "0.0000375".  Writes
 * at most NGX_HTTP_AI_GUARD_USD_LEN bytes, no terminating zero; returns
 * the end.
 */

u_char *
ngx_http_ai_guard_usd_format(u_char *buf, int64_t pico)
{
    int        i, last;
    u_char     tmp[20], *t;
    uint64_t   u, ip, fp;

    if (pico < 0) {
        *buf++ = '-';
        u = (uint64_t) 0 - (uint64_t) pico;

    } else {
        u = (uint64_t) pico;
    }

    ip = u / (uint64_t) NGX_HTTP_AI_GUARD_PICO_PER_USD;
    fp = u % (uint64_t) NGX_HTTP_AI_GUARD_PICO_PER_USD;

    t = tmp + sizeof(tmp);

    do {
        *--t = (u_char) ('0' + ip % 10);
        ip /= 10;
    } while (ip);

    while (t < tmp + sizeof(tmp)) {
        *buf++ = *t++;
    }

    *buf++ = '.';

    for (i = NGX_HTTP_AI_GUARD_USD_DECIMALS - 1; i >= 0; i--) {
        tmp[i] = (u_char) ('0' + fp % 10);
        fp /= 10;
    }

    for (last = NGX_HTTP_AI_GUARD_USD_DECIMALS;
         last > NGX_HTTP_AI_GUARD_PRICE_DECIMALS && tmp[last - 1] == '0';
         last--)
    {
        /* void */
    }

    for (i = 0; i < last; i++) {
        *buf++ = tmp[i];
    }

    return buf;
}


/*
 * Model name patterns: "*" any run of bytes, "?" one byte, everything else
 * itself, case-sensitive.  Iterative with one backtrack point (the last
 * "*"), so O(plen x slen) at worst and no recursion.  Returns 1 on a match.
 */

int
ngx_http_ai_guard_glob_match(const u_char *pat, size_t plen,
    const u_char *s, size_t slen)
{
    size_t  pi, si, star, mark;

    pi = 0;
    si = 0;
    star = (size_t) -1;
    mark = 0;

    while (si < slen) {

        if (pi < plen && pat[pi] == '*') {
            star = pi++;
            mark = si;

        } else if (pi < plen && (pat[pi] == '?' || pat[pi] == s[si])) {
            pi++;
            si++;

        } else if (star != (size_t) -1) {
            pi = star + 1;
            si = ++mark;

        } else {
            return 0;
        }
    }

    while (pi < plen && pat[pi] == '*') {
        pi++;
    }

    return pi == plen;
}
