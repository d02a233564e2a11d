
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_norm.h"
#include "ngx_http_ai_guard_norm_table.h"


#define NGX_HTTP_AI_GUARD_NORM_N                                             \
    (sizeof(ngx_http_ai_guard_norm_table)                                    \
     / sizeof(ngx_http_ai_guard_norm_range_t))


static size_t ngx_http_ai_guard_norm_decode(const u_char *p, size_t len,
    uint32_t *cp);


#define NGX_HTTP_AI_GUARD_NORM_HIGH  0x8080808080808080ULL


size_t
ngx_http_ai_guard_norm(u_char *dst, const u_char *src, size_t len)
{
    char          buf[1];
    size_t        i, n, k;
    u_char       *d;
    uint32_t      cp;
    uint64_t      w;
    const char   *s;

    d = dst;
    i = 0;

    while (i < len) {

        /*
         * ASCII stays: eight bytes at a time while none is past 0x7f.
         * d is never past src + i, and the eight are read before they
         * are written, so in place is safe.
         */

        while (i + 8 <= len) {
            memcpy(&w, src + i, 8);

            if (w & NGX_HTTP_AI_GUARD_NORM_HIGH) {
                break;
            }

            memcpy(d, &w, 8);
            d += 8;
            i += 8;
        }

        /* the bytes before the next one past 0x7f */

        while (i < len && src[i] < 0x80) {
            *d++ = src[i++];
        }

        if (i == len) {
            break;
        }

        n = ngx_http_ai_guard_norm_decode(src + i, len - i, &cp);

        if (n == 0) {
            /* not UTF-8: the byte as it is, for the rules to see */
            *d++ = src[i++];
            continue;
        }

        s = ngx_http_ai_guard_norm_map(cp, buf, &k);

        if (s == NULL) {
            /* the same bytes, forward: dst may be src, never ahead of it */
            for (k = 0; k < n; k++) {
                *d++ = src[i + k];
            }

        } else {
            memcpy(d, s, k);
            d += k;
        }

        i += n;
    }

    return d - dst;
}


const char *
ngx_http_ai_guard_norm_map(uint32_t cp, char *buf, size_t *n)
{
    size_t                                 lo, hi, mid;
    const ngx_http_ai_guard_norm_range_t  *r;

    /* most text past ASCII stays as it is: two bitmaps say so */

    if (cp < 0x800) {
        if (!(ngx_http_ai_guard_norm_low[cp >> 3] & (1u << (cp & 7)))) {
            return NULL;
        }

    } else if (!(ngx_http_ai_guard_norm_blocks[cp >> 11]
                 & (1u << ((cp >> 8) & 7))))
    {
        return NULL;
    }

    lo = 0;
    hi = NGX_HTTP_AI_GUARD_NORM_N;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        r = &ngx_http_ai_guard_norm_table[mid];

        if (cp < r->lo) {
            hi = mid;

        } else if (cp > r->hi) {
            lo = mid + 1;

        } else if (r->inc) {
            buf[0] = (char) (r->s[0] + (cp - r->lo));
            *n = 1;
            return buf;

        } else {
            *n = strlen(r->s);
            return r->s;
        }
    }

    return NULL;
}


/* the length of the valid UTF-8 sequence at p and its code point, or 0 */

static size_t
ngx_http_ai_guard_norm_decode(const u_char *p, size_t len, uint32_t *cp)
{
    size_t    n, i;
    uint32_t  c, min;

    c = p[0];

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        c &= 0x1f;
        min = 0x80;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        c &= 0x0f;
        min = 0x800;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        c &= 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if (n > len) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    *cp = c;

    return n;
}
