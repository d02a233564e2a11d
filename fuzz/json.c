
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * libFuzzer target for the shared JSON decoders.  The first byte picks a
 * split point; the rest is read as an escape (after its backslash, with
 * and without pairs), as a number, as UTF-8 and by the skip.  Each
 * decoder fed the input in two pieces must come to what it comes to in
 * one; a number's value is checked against strtoull() of its digits, a
 * valid UTF-8 text against a naive decoder and the encoder, and the skip
 * (SSE2, and AVX2 where the CPU has it) against a byte-by-byte search.
 */

#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>

#include "ngx_http_ai_guard_json.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void ngx_http_ai_guard_fuzz_escape(const u_char *p, size_t len,
    size_t split, int pairs);
static void ngx_http_ai_guard_fuzz_number(const u_char *p, size_t len,
    size_t split);
static void ngx_http_ai_guard_fuzz_utf8(const u_char *p, size_t len);
static void ngx_http_ai_guard_fuzz_skip(const u_char *p, size_t len);


static void
ngx_http_ai_guard_fuzz_escape(const u_char *p, size_t len, size_t split,
    int pairs)
{
    const u_char                     *end, *q, *r;
    ngx_http_ai_guard_json_escape_t   one, two;

    end = p + len;

    ngx_http_ai_guard_json_escape_init(&one, pairs);
    q = ngx_http_ai_guard_json_escape(&one, p, end);

    ngx_http_ai_guard_json_escape_init(&two, pairs);
    r = ngx_http_ai_guard_json_escape(&two, p, p + split);

    if (two.rc == NGX_HTTP_AI_GUARD_JSON_AGAIN) {
        if (r != p + split) {
            abort();
        }

        r = ngx_http_ai_guard_json_escape(&two, r, end);
    }

    if (q != r || one.rc != two.rc || q < p || q > end) {
        abort();
    }

    if (one.rc != NGX_HTTP_AI_GUARD_JSON_DONE) {
        return;
    }

    if (one.cp != two.cp || one.len != two.len
        || (size_t) one.len != (size_t) (q - p) + 1
        || one.cp > 0x10ffff
        || (pairs && one.cp >= 0xd800 && one.cp <= 0xdfff))
    {
        abort();
    }
}


static void
ngx_http_ai_guard_fuzz_number(const u_char *p, size_t len, size_t split)
{
    int                               big;
    char                             *digits;
    size_t                            i, n;
    const u_char                     *end, *q, *r, *s;
    unsigned long long                v;
    ngx_http_ai_guard_json_number_t   one, two;

    end = p + len;

    ngx_http_ai_guard_json_number_init(&one);
    q = ngx_http_ai_guard_json_number(&one, p, end);

    ngx_http_ai_guard_json_number_init(&two);
    r = ngx_http_ai_guard_json_number(&two, p, p + split);

    if (two.rc == NGX_HTTP_AI_GUARD_JSON_AGAIN) {
        r = ngx_http_ai_guard_json_number(&two, r, end);
    }

    if (q != r || one.rc != two.rc || one.flags != two.flags
        || one.value != two.value
        || ngx_http_ai_guard_json_number_whole(&one)
           != ngx_http_ai_guard_json_number_whole(&two))
    {
        abort();
    }

    if (one.rc == NGX_HTTP_AI_GUARD_JSON_DONE
        && !ngx_http_ai_guard_json_number_whole(&one))
    {
        abort();
    }

    for (i = 0; p + i < q; i++) {
        if (strchr("-+.eE0123456789", p[i]) == NULL) {
            abort();
        }
    }

    if (!ngx_http_ai_guard_json_number_whole(&one)) {
        return;
    }

    /* the integer part, as strtoull() reads it */

    s = p + (*p == '-');

    for (n = 0; s + n < q && s[n] >= '0' && s[n] <= '9'; n++) {
        /* void */
    }

    if (n == 0 || (n > 1 && s[0] == '0')) {
        abort();
    }

    big = (one.flags & NGX_HTTP_AI_GUARD_JSON_BIG) != 0;

    if (n >= 20) {
        if (!big) {
            abort();
        }

        return;
    }

    digits = malloc(n + 1);
    if (digits == NULL) {
        return;
    }

    memcpy(digits, s, n);
    digits[n] = '\0';
    v = strtoull(digits, NULL, 10);
    free(digits);

    if (big != (v > INT64_MAX) || (!big && one.value != v)) {
        abort();
    }
}


static void
ngx_http_ai_guard_fuzz_utf8(const u_char *p, size_t len)
{
    u_char         buf[4], lo, hi;
    size_t         n[4], k, m, i, seen[4];
    uint32_t       cp;
    const u_char  *end;

    if (ngx_http_ai_guard_json_utf8_count(p, len, n) != 0) {
        return;
    }

    /* valid: decode naively, re-encode, and count again */

    memset(seen, 0, sizeof(seen));
    end = p + len;

    while (p < end) {
        if (*p < 0x80) {
            seen[0]++;
            p++;
            continue;
        }

        k = ngx_http_ai_guard_json_utf8_lead(*p, &lo, &hi);

        if (k == 0 || (size_t) (end - p) < k + 1 || p[1] < lo || p[1] > hi) {
            abort();
        }

        cp = *p & (0x3f >> k);

        for (i = 1; i <= k; i++) {
            cp = (cp << 6) | (p[i] & 0x3f);
        }

        m = ngx_http_ai_guard_json_utf8_encode(buf, cp);

        if (m != k + 1 || memcmp(buf, p, m) != 0
            || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        {
            abort();
        }

        seen[k]++;
        p += m;
    }

    if (memcmp(seen, n, sizeof(seen)) != 0) {
        abort();
    }
}


static void
ngx_http_ai_guard_fuzz_skip(const u_char *p, size_t len)
{
    int            avx2, exact;
    size_t         i;
    const u_char  *q;

    for (i = 0; i < len; i++) {
        if (p[i] == '"' || p[i] == '\\' || p[i] < 0x20 || p[i] >= 0x80) {
            break;
        }
    }

    /* SSE2, then AVX2 where the CPU has it: exact from 32 bytes on */

    for (avx2 = 0; avx2 < 2; avx2++) {
        exact = ngx_http_ai_guard_json_simd(avx2) && len >= 32;

        q = ngx_http_ai_guard_json_skip(p, p + len);

        if (q > p + i || q + 8 <= p + i || (exact && q != p + i)) {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t  split;

    if (size == 0) {
        return 0;
    }

    split = data[0];
    data++;
    size--;

    if (split > size) {
        split = size;
    }

    ngx_http_ai_guard_fuzz_escape(data, size, split, 0);
    ngx_http_ai_guard_fuzz_escape(data, size, split, 1);
    ngx_http_ai_guard_fuzz_number(data, size, split);
    ngx_http_ai_guard_fuzz_utf8(data, size);
    ngx_http_ai_guard_fuzz_skip(data, size);

    return 0;
}
