
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The rules prefilter, differential: on any literals and any text, each
 * vector scan this CPU runs (AVX2) finds the same groups as the
 * Aho-Corasick DFA.  Input: literals one a line up to an empty line
 * (those of 3 to 32 bytes, ASCII in their first four, kept; their
 * groups shared in turn), then the text.
 */

#include <stdlib.h>
#include <string.h>

#include "ngx_http_ai_guard_vscan.h"


#define NGX_HTTP_AI_GUARD_FUZZ_LITS    64
#define NGX_HTTP_AI_GUARD_FUZZ_GROUPS  7


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                         impl;
    u_char                      a[NGX_HTTP_AI_GUARD_FUZZ_GROUPS],
                                b[NGX_HTTP_AI_GUARD_FUZZ_GROUPS];
    void                       *acbuf, *vsbuf;
    size_t                      n, na, nb, len, i, acsize, vssize;
    const u_char               *p, *end, *nl;
    ngx_http_ai_guard_ac_t     *ac;
    ngx_http_ai_guard_lit_t     lits[NGX_HTTP_AI_GUARD_FUZZ_LITS];
    ngx_http_ai_guard_vscan_t  *vs;

    p = data;
    end = data + size;
    n = 0;

    while (p < end && n < NGX_HTTP_AI_GUARD_FUZZ_LITS) {
        nl = memchr(p, '\n', end - p);
        if (nl == NULL || nl == p) {
            break;
        }

        len = nl - p;

        for (i = 0; i < len && i < 4 && p[i] < 0x80; i++) {
            /* void */
        }

        if (len >= 3 && len <= 32 && (i == 4 || i == len)) {
            lits[n].data = p;
            lits[n].len = len;
            lits[n].group = n % NGX_HTTP_AI_GUARD_FUZZ_GROUPS;
            n++;
        }

        p = nl + 1;
    }

    if (p < end && *p == '\n') {
        p++;
    }

    if (n == 0) {
        return 0;
    }

    acsize = ngx_http_ai_guard_ac_size(lits, n);
    vssize = ngx_http_ai_guard_vscan_size(lits, n);

    if (vssize == 0) {
        /* the vector code takes every literal kept here */
        abort();
    }

    acbuf = malloc(acsize);
    vsbuf = malloc(vssize);

    ac = ngx_http_ai_guard_ac_build(acbuf, acsize, lits, n);
    if (ac == NULL) {
        abort();
    }

    memset(a, 0, sizeof(a));
    na = ngx_http_ai_guard_ac_scan(ac, p, end - p, a);

    for (impl = NGX_HTTP_AI_GUARD_VSCAN_AVX2;
         impl <= ngx_http_ai_guard_vscan_cpu();
         impl++)
    {
        vs = ngx_http_ai_guard_vscan_build(vsbuf, vssize, lits, n, impl);
        if (vs == NULL) {
            abort();
        }

        memset(b, 0, sizeof(b));
        nb = ngx_http_ai_guard_vscan_scan(vs, p, end - p, b);

        if (na != nb || memcmp(a, b, sizeof(a)) != 0) {
            abort();
        }
    }

    free(acbuf);
    free(vsbuf);

    return 0;
}
