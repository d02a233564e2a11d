
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * libFuzzer target for the price and limit parsers: decimal prices, USD
 * amounts, budgets, durations, and the model name glob, each checked
 * against a property (round trips, a reference matcher), plus the cost
 * arithmetic on arbitrary numbers.
 */

#include <stdlib.h>
#include <string.h>
#include <ngx_http_ai_guard_limit.h>
#include <ngx_http_ai_guard_price.h>


#define NGX_HTTP_AI_GUARD_FUZZ_GLOB_MAX  64


static int ngx_http_ai_guard_fuzz_glob_ref(const u_char *pat, size_t plen,
    const u_char *s, size_t slen);


/* dynamic programming: obviously right, and slow enough to stay small */

static int
ngx_http_ai_guard_fuzz_glob_ref(const u_char *pat, size_t plen,
    const u_char *s, size_t slen)
{
    size_t  i, j;
    u_char  m[NGX_HTTP_AI_GUARD_FUZZ_GLOB_MAX + 1]
             [NGX_HTTP_AI_GUARD_FUZZ_GLOB_MAX + 1];

    /* m[i][j]: pat[i..] matches s[j..] */

    for (i = plen + 1; i-- > 0; /* void */) {
        for (j = slen + 1; j-- > 0; /* void */) {

            if (i == plen) {
                m[i][j] = (j == slen);

            } else if (pat[i] == '*') {
                m[i][j] = m[i + 1][j] || (j < slen && m[i][j + 1]);

            } else {
                m[i][j] = j < slen && (pat[i] == '?' || pat[i] == s[j])
                          && m[i + 1][j + 1];
            }
        }
    }

    return m[0][0];
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                                 rc;
    size_t                              plen;
    int64_t                             v, w;
    uint64_t                            ms, ms2, t[4];
    u_char                              buf[64], *e;
    const u_char                       *nl;
    ngx_http_ai_guard_price_t           pr;
    ngx_http_ai_guard_budget_period_e   per;

    if (ngx_http_ai_guard_price_parse(data, size, &v) == 0) {
        if (v < 0) {
            abort();
        }

        /* pico-USD a token formats as USD a token: 1e-6 of the input */
        e = ngx_http_ai_guard_usd_format(buf, v);

        if (ngx_http_ai_guard_usd_parse(buf, e - buf, &w) != 0 || w != v) {
            abort();
        }
    }

    if (ngx_http_ai_guard_usd_parse(data, size, &v) == 0) {
        e = ngx_http_ai_guard_usd_format(buf, v);

        if ((size_t) (e - buf) > NGX_HTTP_AI_GUARD_USD_LEN
            || ngx_http_ai_guard_usd_parse(buf, e - buf, &w) != 0
            || w != v)
        {
            abort();
        }
    }

    if (ngx_http_ai_guard_budget_parse(data, size, &v, &per) == 0) {
        if (v < 0 || (per != NGX_HTTP_AI_GUARD_BUDGET_DAY
                      && per != NGX_HTTP_AI_GUARD_BUDGET_MONTH))
        {
            abort();
        }
    }

    if (ngx_http_ai_guard_duration_parse(data, size, &ms) == 0) {
        e = ngx_http_ai_guard_duration_format(buf, ms);

        if ((size_t) (e - buf) > NGX_HTTP_AI_GUARD_DURATION_LEN) {
            abort();
        }

        rc = ngx_http_ai_guard_duration_parse(buf, e - buf, &ms2);

        if (ms < (1ULL << 63)
            && (rc != 0
                || ms2 != (ms < 1000 ? ms : (ms + 999) / 1000 * 1000)))
        {
            abort();
        }
    }

    /* "pattern\nstring" */
    nl = memchr(data, '\n', size);

    if (nl != NULL) {
        plen = nl - data;
        rc = ngx_http_ai_guard_glob_match(data, plen, nl + 1,
                                          size - plen - 1);

        if (plen <= NGX_HTTP_AI_GUARD_FUZZ_GLOB_MAX
            && size - plen - 1 <= NGX_HTTP_AI_GUARD_FUZZ_GLOB_MAX
            && rc != ngx_http_ai_guard_fuzz_glob_ref(data, plen, nl + 1,
                                                     size - plen - 1))
        {
            abort();
        }
    }

    if (size >= 64) {
        memcpy(&pr, data, sizeof(pr));
        memcpy(t, data + 32, sizeof(t));

        v = ngx_http_ai_guard_price_cost(&pr, t[0], t[1], t[2], t[3]);

        if (v < 0) {
            abort();
        }

        e = ngx_http_ai_guard_usd_format(buf, v);

        if ((size_t) (e - buf) > NGX_HTTP_AI_GUARD_USD_LEN) {
            abort();
        }

        e = ngx_http_ai_guard_usd_format(buf, (int64_t) t[0]);

        if ((size_t) (e - buf) > NGX_HTTP_AI_GUARD_USD_LEN) {
            abort();
        }

        e = ngx_http_ai_guard_duration_format(buf, t[1]);

        if ((size_t) (e - buf) > NGX_HTTP_AI_GUARD_DURATION_LEN) {
            abort();
        }
    }

    return 0;
}
