
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include <ngx_http_ai_guard_str.h>


u_char *
ngx_http_ai_guard_part_write(u_char *p, const u_char *s, size_t len)
{
    u_char   tmp[20], *t;
    size_t   n;

    /* most parts are names under a hundred bytes: no division loop */

    if (len < 10) {
        *p++ = (u_char) ('0' + len);

    } else if (len < 100) {
        *p++ = (u_char) ('0' + len / 10);
        *p++ = (u_char) ('0' + len % 10);

    } else {
        t = tmp + sizeof(tmp);
        n = len;

        do {
            *--t = (u_char) ('0' + n % 10);
            n /= 10;
        } while (n);

        n = tmp + sizeof(tmp) - t;
        memcpy(p, t, n);
        p += n;
    }

    *p++ = ':';

    if (len) {
        memcpy(p, s, len);
    }

    return p + len;
}


const u_char *
ngx_http_ai_guard_part_read(const u_char *p, const u_char *last,
    const u_char **s, size_t *len)
{
    size_t  n;

    if (p >= last || *p < '0' || *p > '9') {
        return NULL;
    }

    /* as written: no leading zero but for the length 0 itself */

    if (*p == '0' && p + 1 < last && p[1] != ':') {
        return NULL;
    }

    n = 0;

    while (p < last && *p >= '0' && *p <= '9') {
        if (n > ((size_t) -1 - 9) / 10) {
            return NULL;
        }

        n = n * 10 + (*p++ - '0');
    }

    if (p == last || *p++ != ':' || (size_t) (last - p) < n) {
        return NULL;
    }

    *s = p;
    *len = n;

    return p + n;
}


u_char *
ngx_http_ai_guard_printable(u_char *dst, size_t size, const u_char *src,
    size_t len)
{
    u_char  *last;
    size_t   i;

    static const u_char  hex[] = "0123456789abcdef";

    last = dst + size;

    for (i = 0; i < len; i++) {

        if (src[i] >= 0x20 && src[i] < 0x7f && src[i] != '\\') {
            if (dst == last) {
                break;
            }

            *dst++ = src[i];
            continue;
        }

        if (last - dst < 4) {
            break;
        }

        *dst++ = '\\';
        *dst++ = 'x';
        *dst++ = hex[src[i] >> 4];
        *dst++ = hex[src[i] & 0xf];
    }

    return dst;
}
