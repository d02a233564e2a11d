
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * libFuzzer target for the PII detectors: every mask, hits inside the
 * text, the same first hit with only its detector enabled, and every
 * card hit checked against a plain Luhn on the digits found there.
 */

#include <stdlib.h>
#include <ngx_http_ai_guard_pii.h>


static int ngx_http_ai_guard_fuzz_luhn(const uint8_t *p, size_t len);


/* the digits of the card at p: digits with single " " or "-" between */

static int
ngx_http_ai_guard_fuzz_luhn(const uint8_t *p, size_t len)
{
    int     digits[64];
    size_t  i, n;
    int     sum, v;

    n = 0;

    for (i = 0; i < len && n < 64; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            digits[n++] = p[i] - '0';
            continue;
        }

        if ((p[i] == ' ' || p[i] == '-') && i + 1 < len
            && p[i + 1] >= '0' && p[i + 1] <= '9')
        {
            continue;
        }

        break;
    }

    if (n < 13 || n > 19) {
        return 0;
    }

    sum = 0;

    for (i = 0; i < n; i++) {
        v = digits[n - 1 - i];

        if (i % 2 == 1) {
            v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        }

        sum += v;
    }

    return sum % 10 == 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t    off, off1;
    unsigned  hit, hit1, bit;

    off = (size_t) -1;
    hit = ngx_http_ai_guard_pii_scan(data, size, NGX_HTTP_AI_GUARD_PII_ALL,
                                     &off);

    if (hit) {
        if (off >= size || ngx_http_ai_guard_pii_name(hit) == NULL) {
            abort();
        }

        off1 = (size_t) -1;
        hit1 = ngx_http_ai_guard_pii_scan(data, size, hit, &off1);

        if (hit1 != hit || off1 != off) {
            abort();
        }
    }

    for (bit = 1; bit < NGX_HTTP_AI_GUARD_PII_ALL; bit <<= 1) {
        off1 = (size_t) -1;
        hit1 = ngx_http_ai_guard_pii_scan(data, size, bit, &off1);

        if (hit1 != 0 && hit1 != bit) {
            abort();
        }

        if (hit1 && (off1 >= size || (hit == 0))) {
            abort();
        }

        if (hit1 == NGX_HTTP_AI_GUARD_PII_CARD
            && (!ngx_http_ai_guard_fuzz_luhn(data + off1, size - off1)
                || (off1 > 0 && data[off1 - 1] >= '0'
                    && data[off1 - 1] <= '9')))
        {
            abort();
        }
    }

    if (ngx_http_ai_guard_pii_scan(data, size, 0, &off1) != 0) {
        abort();
    }

    return 0;
}
