
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#if (defined __SSE2__ && defined __GNUC__)
#include <emmintrin.h>
#define NGX_HTTP_AI_GUARD_SSE2  1
#endif

#if (defined __x86_64__ && defined __GNUC__)
#include <immintrin.h>
#define NGX_HTTP_AI_GUARD_AVX2  1
#endif

#include "ngx_http_ai_guard_json.h"


#define NGX_HTTP_AI_GUARD_JSON_ONES  0x0101010101010101ULL

/*
 * Whether any of the 8 bytes of w (read with memcpy()) ends a run of
 * plain string bytes: a quote, a backslash, a control character or a
 * byte past ASCII.  Exact as a yes or no: a borrow crosses into the next
 * byte only out of a byte that already answered yes.
 */
#define ngx_http_ai_guard_json_special(w)                                    \
    (((((w) ^ (0x22 * NGX_HTTP_AI_GUARD_JSON_ONES))                          \
       - NGX_HTTP_AI_GUARD_JSON_ONES)                                        \
      | (((w) ^ (0x5c * NGX_HTTP_AI_GUARD_JSON_ONES))                        \
         - NGX_HTTP_AI_GUARD_JSON_ONES)                                      \
      | ((w) - 0x20 * NGX_HTTP_AI_GUARD_JSON_ONES) | (w))                    \
     & (0x80 * NGX_HTTP_AI_GUARD_JSON_ONES))

#define ngx_http_ai_guard_json_digit(c)  ((c) >= '0' && (c) <= '9')


/* the points between the parts of a number */
typedef enum {
    sw_sign = 0,
    sw_minus,
    sw_zero,            /* a leading zero: no digit may follow */
    sw_int,
    sw_dot,
    sw_frac,
    sw_e,
    sw_exp_sign,
    sw_exp
} ngx_http_ai_guard_json_number_e;


static int ngx_http_ai_guard_json_hex(u_char c);


/*
 * The escape after a backslash.  The states: the escaped character, the
 * four hex digits of \uXXXX, and, after a high surrogate escape (with
 * pairs), the backslash of its low half.
 */

const u_char *
ngx_http_ai_guard_json_escape(ngx_http_ai_guard_json_escape_t *e,
    const u_char *p, const u_char *end)
{
    int       d;
    u_char    c;
    uint32_t  cp;
    enum {
        sw_escape = 0,
        sw_hex,
        sw_low
    } state;

    state = e->state;

    while (p < end) {
        c = *p;

        switch (state) {

        case sw_escape:
            p++;
            e->len++;

            if (c == 'u') {
                e->cp = 0;
                e->nhex = 0;
                state = sw_hex;
                continue;
            }

            if (e->high) {
                goto surrogate;
            }

            switch (c) {
            case '"':
            case '\\':
            case '/':
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            default:
                goto invalid;
            }

            e->cp = c;
            goto done;

        case sw_hex:
            d = ngx_http_ai_guard_json_hex(c);

            if (d < 0) {
                goto invalid;
            }

            p++;
            e->len++;
            e->cp = (e->cp << 4) | (uint32_t) d;

            if (++e->nhex < 4) {
                continue;
            }

            if (!e->pairs) {
                goto done;
            }

            cp = e->cp;

            if (e->high) {
                if (cp < 0xdc00 || cp > 0xdfff) {
                    goto surrogate;
                }

                e->cp = 0x10000 + (((uint32_t) e->high - 0xd800) << 10)
                        + (cp - 0xdc00);
                e->high = 0;
                goto done;
            }

            if (cp >= 0xd800 && cp <= 0xdbff) {
                e->high = (uint16_t) cp;
                state = sw_low;
                continue;
            }

            if (cp >= 0xdc00 && cp <= 0xdfff) {
                goto surrogate;
            }

            goto done;

        case sw_low:
            if (c != '\\') {
                goto surrogate;
            }

            p++;
            e->len++;
            state = sw_escape;
            continue;
        }
    }

    e->state = state;
    e->rc = NGX_HTTP_AI_GUARD_JSON_AGAIN;

    return p;

done:

    e->rc = NGX_HTTP_AI_GUARD_JSON_DONE;
    return p;

invalid:

    e->rc = NGX_HTTP_AI_GUARD_JSON_INVALID;
    return p;

surrogate:

    e->rc = NGX_HTTP_AI_GUARD_JSON_SURROGATE;
    return p;
}


static int
ngx_http_ai_guard_json_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * A number: "-"?, then "0" or a digit 1-9 and digits, then "." and
 * digits, then "e" or "E", a sign, digits; the states are the points
 * between them.  The first digit falls through into the loop over the
 * integer digits, so an integer costs one dispatch.
 */

const u_char *
ngx_http_ai_guard_json_number(ngx_http_ai_guard_json_number_t *n,
    const u_char *p, const u_char *end)
{
    u_char                           c;
    unsigned                         d, flags;
    uint64_t                         v;
    ngx_http_ai_guard_json_number_e  state;

    state = n->state;
    flags = n->flags;
    v = n->value;

    if (state == sw_sign && p < end) {
        /* a number starts, as most do whole in a buffer: no dispatch */
        c = *p;
        goto sign;
    }

    while (p < end) {
        c = *p;

        switch (state) {

        case sw_sign:
        sign:
            if (c == '-') {
                flags |= NGX_HTTP_AI_GUARD_JSON_NEGATIVE;
                state = sw_minus;
                p++;
                continue;
            }

            /* fall through */

        case sw_minus:
            if (c == '0') {
                state = sw_zero;
                p++;
                continue;
            }

            if (c < '1' || c > '9') {
                goto invalid;
            }

            v = c - '0';
            flags |= NGX_HTTP_AI_GUARD_JSON_NONZERO;
            state = sw_int;

            if (++p == end) {
                goto again;
            }

            c = *p;

            /* fall through */

        case sw_int:

            /* the first digit was 1-9: NGX_HTTP_AI_GUARD_JSON_NONZERO is set */

            while (ngx_http_ai_guard_json_digit(c)) {
                d = c - '0';

                /* INT64_MAX is 9223372036854775807 */

                if (v < 922337203685477580ULL
                    || (v == 922337203685477580ULL && d <= 7))
                {
                    v = v * 10 + d;

                } else {
                    flags |= NGX_HTTP_AI_GUARD_JSON_BIG;
                }

                if (++p == end) {
                    goto again;
                }

                c = *p;
            }

            /* fall through */

        case sw_zero:
            if (c == '.') {
                flags |= NGX_HTTP_AI_GUARD_JSON_FRACTION;
                state = sw_dot;
                p++;
                continue;
            }

            if (c == 'e' || c == 'E') {
                flags |= NGX_HTTP_AI_GUARD_JSON_EXPONENT;
                state = sw_e;
                p++;
                continue;
            }

            goto done;

        case sw_dot:
        case sw_frac:
            if (ngx_http_ai_guard_json_digit(c)) {
                if (c != '0') {
                    flags |= NGX_HTTP_AI_GUARD_JSON_NONZERO;
                }

                state = sw_frac;
                p++;
                continue;
            }

            if (state == sw_dot) {
                goto invalid;
            }

            if (c == 'e' || c == 'E') {
                flags |= NGX_HTTP_AI_GUARD_JSON_EXPONENT;
                state = sw_e;
                p++;
                continue;
            }

            goto done;

        case sw_e:
            if (c == '+' || c == '-') {
                state = sw_exp_sign;
                p++;
                continue;
            }

            /* fall through */

        case sw_exp_sign:
        case sw_exp:
            if (ngx_http_ai_guard_json_digit(c)) {
                state = sw_exp;
                p++;
                continue;
            }

            if (state != sw_exp) {
                goto invalid;
            }

            goto done;
        }
    }

again:

    n->rc = NGX_HTTP_AI_GUARD_JSON_AGAIN;
    goto out;

done:

    n->rc = NGX_HTTP_AI_GUARD_JSON_DONE;
    goto out;

invalid:

    n->rc = NGX_HTTP_AI_GUARD_JSON_INVALID;

out:

    n->value = v;
    n->state = (u_char) state;
    n->flags = (u_char) flags;

    return p;
}


int
ngx_http_ai_guard_json_number_whole(const ngx_http_ai_guard_json_number_t *n)
{
    switch (n->state) {
    case sw_zero:
    case sw_int:
    case sw_frac:
    case sw_exp:
        return 1;
    default:
        return 0;
    }
}


u_char *
ngx_http_ai_guard_json_escape_byte(u_char *p, u_char c)
{
    static const u_char  hex[] = "0123456789abcdef";

    *p++ = '\\';

    switch (c) {

    case '"':
    case '\\':
        *p++ = c;
        break;

    case '\b':
        *p++ = 'b';
        break;

    case '\f':
        *p++ = 'f';
        break;

    case '\n':
        *p++ = 'n';
        break;

    case '\r':
        *p++ = 'r';
        break;

    case '\t':
        *p++ = 't';
        break;

    default:
        *p++ = 'u';
        *p++ = '0';
        *p++ = '0';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }

    return p;
}


size_t
ngx_http_ai_guard_json_utf8_encode(u_char *p, uint32_t cp)
{
    if (cp < 0x80) {
        p[0] = (u_char) cp;
        return 1;
    }

    if (cp < 0x800) {
        p[0] = (u_char) (0xc0 | (cp >> 6));
        p[1] = (u_char) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        p[0] = (u_char) (0xe0 | (cp >> 12));
        p[1] = (u_char) (0x80 | ((cp >> 6) & 0x3f));
        p[2] = (u_char) (0x80 | (cp & 0x3f));
        return 3;
    }

    p[0] = (u_char) (0xf0 | (cp >> 18));
    p[1] = (u_char) (0x80 | ((cp >> 12) & 0x3f));
    p[2] = (u_char) (0x80 | ((cp >> 6) & 0x3f));
    p[3] = (u_char) (0x80 | (cp & 0x3f));

    return 4;
}


/* 8 ASCII bytes at a time, then a sequence as its lead byte says */

int
ngx_http_ai_guard_json_utf8_count(const u_char *p, size_t len, size_t n[4])
{
    u_char         c, lo, hi;
    size_t         k, a, two, three, four;
    uint64_t       w;
    const u_char  *end;

    a = 0;
    two = 0;
    three = 0;
    four = 0;
    end = p + len;

    while (p < end) {

        if (end - p >= 8) {
            memcpy(&w, p, 8);

            if ((w & 0x8080808080808080ULL) == 0) {
                p += 8;
                a += 8;
                continue;
            }
        }

        c = *p++;

        if (c < 0x80) {
            a++;
            continue;
        }

        k = ngx_http_ai_guard_json_utf8_lead(c, &lo, &hi);

        if (k == 0) {
            return -1;
        }

        if ((size_t) (end - p) < k || p[0] < lo || p[0] > hi) {
            return -1;
        }

        switch (k) {
        case 1:
            two++;
            break;
        case 2:
            three++;
            break;
        default:
            four++;
        }

        p++;

        while (--k) {
            if ((*p & 0xc0) != 0x80) {
                return -1;
            }

            p++;
        }
    }

    n[0] = a;
    n[1] = two;
    n[2] = three;
    n[3] = four;

    return 0;
}


#if (NGX_HTTP_AI_GUARD_AVX2)

/* set by ngx_http_ai_guard_json_simd(), once, before any skip */
static int  ngx_http_ai_guard_json_avx2;


/*
 * At least 32 bytes: a 32-byte block a step (a text of 2 KB is skipped in
 * a third of the SSE2 loop's instructions), and the last, partial block
 * read as the 32 bytes before end, the bytes already seen shifted out of
 * its mask.  Returns the first special byte, exactly, or end.
 */

__attribute__((target("avx2")))
static const u_char *
ngx_http_ai_guard_json_skip_avx2(const u_char *p, const u_char *end)
{
    unsigned       m;
    const u_char  *q;
    __m256i        v, quote, backslash, space;

    quote = _mm256_set1_epi8('"');
    backslash = _mm256_set1_epi8('\\');
    space = _mm256_set1_epi8(' ');

#define ngx_http_ai_guard_json_mask32(v)                                     \
    (unsigned) _mm256_movemask_epi8(                                         \
        _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, quote),         \
                                        _mm256_cmpeq_epi8(v, backslash)),    \
                        _mm256_cmpgt_epi8(space, v)))

    while (end - p >= 32) {
        v = _mm256_loadu_si256((const __m256i *) p);
        m = ngx_http_ai_guard_json_mask32(v);

        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 32;
    }

    if (p == end) {
        return end;
    }

    q = end - 32;
    v = _mm256_loadu_si256((const __m256i *) q);
    m = ngx_http_ai_guard_json_mask32(v) >> (p - q);

#undef ngx_http_ai_guard_json_mask32

    return m ? p + __builtin_ctz(m) : end;
}

#endif


int
ngx_http_ai_guard_json_simd(int avx2)
{
#if (NGX_HTTP_AI_GUARD_AVX2)

    __builtin_cpu_init();

    ngx_http_ai_guard_json_avx2 = avx2 && __builtin_cpu_supports("avx2");

    return ngx_http_ai_guard_json_avx2;

#else

    return 0;

#endif
}


/*
 * With AVX2, 32 bytes at a time, exactly.  Else 32 bytes at a time with
 * SSE2 (x86-64 always has it), then 16, then 8 as the end nears, else 8.
 * A signed compare with ' ' catches the control characters and the bytes
 * past ASCII together.
 */

const u_char *
ngx_http_ai_guard_json_skip(const u_char *p, const u_char *end)
{
    uint64_t  w;
#if (NGX_HTTP_AI_GUARD_SSE2)
    unsigned  m;
    __m128i   v, quote, backslash, space;
#endif

#if (NGX_HTTP_AI_GUARD_AVX2)

    if (ngx_http_ai_guard_json_avx2 && end - p >= 32) {
        return ngx_http_ai_guard_json_skip_avx2(p, end);
    }

#endif

#if (NGX_HTTP_AI_GUARD_SSE2)

    quote = _mm_set1_epi8('"');
    backslash = _mm_set1_epi8('\\');
    space = _mm_set1_epi8(' ');

#define ngx_http_ai_guard_json_mask(v)                                       \
    (unsigned) _mm_movemask_epi8(                                            \
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),                  \
                                  _mm_cmpeq_epi8(v, backslash)),             \
                     _mm_cmplt_epi8(v, space)))

    while (end - p >= 32) {
        v = _mm_loadu_si128((const __m128i *) p);
        m = ngx_http_ai_guard_json_mask(v);
        v = _mm_loadu_si128((const __m128i *) (p + 16));
        m |= ngx_http_ai_guard_json_mask(v) << 16;

        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 32;
    }

    if (end - p >= 16) {
        v = _mm_loadu_si128((const __m128i *) p);
        m = ngx_http_ai_guard_json_mask(v);

        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 16;
    }

#undef ngx_http_ai_guard_json_mask
#endif

    while (end - p >= 8) {
        memcpy(&w, p, 8);

        if (ngx_http_ai_guard_json_special(w)) {
            break;
        }

        p += 8;
    }

    return p;
}
