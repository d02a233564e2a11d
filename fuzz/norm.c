
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The prompt normaliser: never longer, ASCII untouched, valid UTF-8 stays
 * valid and its form is its own form.
 */

#include <stdlib.h>
#include <string.h>

#include "ngx_http_ai_guard_norm.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
ngx_http_ai_guard_fuzz_utf8(const u_char *p, size_t len)
{
    size_t    i, n, k;
    uint32_t  c, min;

    for (i = 0; i < len; i += n) {
        c = p[i];

        if (c < 0x80) {
            n = 1;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 2; c &= 0x1f; min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3; c &= 0x0f; min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4; c &= 0x07; min = 0x10000;
        } else {
            return 0;
        }

        if (i + n > len) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            c = (c << 6) | (p[i + k] & 0x3f);
        }

        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t   i, n, m;
    u_char  *a, *b;
    int      ascii;

    a = malloc(size + 1);
    b = malloc(size + 1);
    if (a == NULL || b == NULL) {
        abort();
    }

    n = ngx_http_ai_guard_norm(a, data, size);

    if (n > size) {
        abort();
    }

    ascii = 1;

    for (i = 0; i < size; i++) {
        ascii &= (data[i] < 0x80);
    }

    if (ascii && (n != size || memcmp(a, data, size) != 0)) {
        abort();
    }

    /* in place gives the same */

    memcpy(b, data, size);
    m = ngx_http_ai_guard_norm(b, b, size);

    if (m != n || memcmp(a, b, n) != 0) {
        abort();
    }

    if (ngx_http_ai_guard_fuzz_utf8(data, size)) {
        if (!ngx_http_ai_guard_fuzz_utf8(a, n)) {
            abort();
        }

        m = ngx_http_ai_guard_norm(b, a, n);

        if (m != n || memcmp(a, b, n) != 0) {
            abort();
        }
    }

    free(a);
    free(b);

    return 0;
}
