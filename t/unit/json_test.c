
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The JSON pieces both scanners share: escapes (short forms, \uXXXX,
 * surrogate pairs and their errors, with and without pairing), numbers
 * (grammar, flags, the int64 edge, where they end), UTF-8 encoding and
 * lead bytes, and the skip over plain string bytes.  Every decoder is
 * also fed one byte a call and must come to the same result.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "ngx_http_ai_guard_json.h"


typedef struct {
    int         rc;
    uint32_t    cp;
    size_t      used;
    unsigned    len;
} t_escape_t;


typedef struct {
    int         rc;
    uint64_t    value;
    unsigned    flags;
    size_t      used;
    int         whole;
} t_number_t;


/* decodes the escape after a backslash, whole or a byte a call */

static void
t_escape(const char *s, int pairs, int bytewise, t_escape_t *r)
{
    const u_char                     *p, *end, *stop;
    ngx_http_ai_guard_json_escape_t   e;

    p = (const u_char *) s;
    end = p + strlen(s);

    ngx_http_ai_guard_json_escape_init(&e, pairs);

    do {
        stop = bytewise && p < end ? p + 1 : end;
        p = ngx_http_ai_guard_json_escape(&e, p, stop);
    } while (e.rc == NGX_HTTP_AI_GUARD_JSON_AGAIN && p < end);

    r->rc = e.rc;
    r->cp = e.cp;
    r->used = p - (const u_char *) s;
    r->len = e.len;
}


static void
t_number(const char *s, int bytewise, t_number_t *r)
{
    const u_char                     *p, *end, *stop;
    ngx_http_ai_guard_json_number_t   n;

    p = (const u_char *) s;
    end = p + strlen(s);

    ngx_http_ai_guard_json_number_init(&n);

    do {
        stop = bytewise && p < end ? p + 1 : end;
        p = ngx_http_ai_guard_json_number(&n, p, stop);
    } while (n.rc == NGX_HTTP_AI_GUARD_JSON_AGAIN && p < end);

    r->rc = n.rc;
    r->value = n.value;
    r->flags = n.flags;
    r->used = p - (const u_char *) s;
    r->whole = ngx_http_ai_guard_json_number_whole(&n);
}


static void
test_escapes(void)
{
    int           pairs, bytewise;
    t_escape_t    r, b;
    const char   *s;

#define ESC(str, pr, want_rc, want_cp, want_used)                            \
    t_escape(str, pr, 0, &r);                                                \
    t_escape(str, pr, 1, &b);                                                \
    ok(r.rc == (want_rc) && (r.rc != NGX_HTTP_AI_GUARD_JSON_DONE             \
                             || r.cp == (uint32_t) (want_cp))                \
       && r.used == (size_t) (want_used)                                     \
       && b.rc == r.rc && b.cp == r.cp && b.used == r.used && b.len == r.len, \
       "escape \\%s%s: rc %d cp %04x used %zu", str,                         \
       (pr) ? "" : " (no pairs)", r.rc, r.cp, r.used)

    ESC("\"", 1, NGX_HTTP_AI_GUARD_JSON_DONE, '"', 1);
    ESC("\\", 1, NGX_HTTP_AI_GUARD_JSON_DONE, '\\', 1);
    ESC("/", 1, NGX_HTTP_AI_GUARD_JSON_DONE, '/', 1);
    ESC("b", 1, NGX_HTTP_AI_GUARD_JSON_DONE, '\b', 1);
    ESC("f", 1, NGX_HTTP_AI_GUARD_JSON_DONE, '\f', 1);
    ESC("n", 1, NGX_HTTP_AI_GUARD_JSON_DONE, '\n', 1);
    ESC("r", 1, NGX_HTTP_AI_GUARD_JSON_DONE, '\r', 1);
    ESC("t", 1, NGX_HTTP_AI_GUARD_JSON_DONE, '\t', 1);
    ESC("nX", 1, NGX_HTTP_AI_GUARD_JSON_DONE, '\n', 1);
    ESC("a", 1, NGX_HTTP_AI_GUARD_JSON_INVALID, 0, 1);
    ESC("U0041", 1, NGX_HTTP_AI_GUARD_JSON_INVALID, 0, 1);
    ESC("'", 1, NGX_HTTP_AI_GUARD_JSON_INVALID, 0, 1);
    ESC("u0041", 1, NGX_HTTP_AI_GUARD_JSON_DONE, 'A', 5);
    ESC("u00e9", 1, NGX_HTTP_AI_GUARD_JSON_DONE, 0xe9, 5);
    ESC("u00E9rest", 1, NGX_HTTP_AI_GUARD_JSON_DONE, 0xe9, 5);
    ESC("uFFFF", 1, NGX_HTTP_AI_GUARD_JSON_DONE, 0xffff, 5);
    ESC("u0000", 1, NGX_HTTP_AI_GUARD_JSON_DONE, 0, 5);
    ESC("u00g0", 1, NGX_HTTP_AI_GUARD_JSON_INVALID, 0, 3);
    ESC("u004", 1, NGX_HTTP_AI_GUARD_JSON_AGAIN, 0, 4);

    ESC("ud83d\\ude00", 1, NGX_HTTP_AI_GUARD_JSON_DONE, 0x1f600, 11);
    ESC("uD800\\uDC00", 1, NGX_HTTP_AI_GUARD_JSON_DONE, 0x10000, 11);
    ESC("udbff\\udfff", 1, NGX_HTTP_AI_GUARD_JSON_DONE, 0x10ffff, 11);
    ESC("ud83d", 1, NGX_HTTP_AI_GUARD_JSON_AGAIN, 0, 5);
    ESC("ud83dx", 1, NGX_HTTP_AI_GUARD_JSON_SURROGATE, 0, 5);
    ESC("ud83d\\n", 1, NGX_HTTP_AI_GUARD_JSON_SURROGATE, 0, 7);
    ESC("ud83d\\x", 1, NGX_HTTP_AI_GUARD_JSON_SURROGATE, 0, 7);
    ESC("ud83d\\u0041", 1, NGX_HTTP_AI_GUARD_JSON_SURROGATE, 0, 11);
    ESC("ud83d\\ud83d", 1, NGX_HTTP_AI_GUARD_JSON_SURROGATE, 0, 11);
    ESC("ud83d\\uzzzz", 1, NGX_HTTP_AI_GUARD_JSON_INVALID, 0, 7);
    ESC("ude00", 1, NGX_HTTP_AI_GUARD_JSON_SURROGATE, 0, 5);

    ESC("ud83d\\ude00", 0, NGX_HTTP_AI_GUARD_JSON_DONE, 0xd83d, 5);
    ESC("ude00", 0, NGX_HTTP_AI_GUARD_JSON_DONE, 0xde00, 5);
    ESC("n", 0, NGX_HTTP_AI_GUARD_JSON_DONE, '\n', 1);

#undef ESC

    t_escape("n", 1, 0, &r);
    is_int(r.len, 2, "a short escape is 2 bytes as written");
    t_escape("u0041", 1, 0, &r);
    is_int(r.len, 6, "\\uXXXX is 6 bytes");
    t_escape("ud83d\\ude00", 1, 0, &r);
    is_int(r.len, 12, "a pair is 12 bytes");

    /* every two-byte escape: exactly the eight short forms decode */

    for (pairs = 0; pairs < 2; pairs++) {
        unsigned  c, n;
        char      one[2];

        n = 0;

        for (c = 1; c < 256; c++) {
            one[0] = (char) c;
            one[1] = '\0';
            t_escape(one, pairs, 0, &r);
            n += (r.rc == NGX_HTTP_AI_GUARD_JSON_DONE);
        }

        is_int(n, 8, "eight short escapes (pairs %d)", pairs);
    }

    /* an escape fed from an empty buffer waits */

    s = "n";
    bytewise = 0;
    {
        ngx_http_ai_guard_json_escape_t  e;
        const u_char                    *p;

        ngx_http_ai_guard_json_escape_init(&e, 1);
        p = ngx_http_ai_guard_json_escape(&e, (const u_char *) s,
                                          (const u_char *) s + bytewise);
        ok(e.rc == NGX_HTTP_AI_GUARD_JSON_AGAIN && p == (const u_char *) s,
           "no bytes: again");
    }
}


static void
test_numbers(void)
{
    t_number_t  r, b;

#define NUM(str, want_rc, want_value, want_flags, want_used, want_whole)     \
    t_number(str, 0, &r);                                                    \
    t_number(str, 1, &b);                                                    \
    ok(r.rc == (want_rc)                                                     \
       && (r.rc == NGX_HTTP_AI_GUARD_JSON_INVALID                            \
           || (r.value == (uint64_t) (want_value)                            \
               && r.flags == (unsigned) (want_flags)))                       \
       && r.used == (size_t) (want_used) && r.whole == (want_whole)          \
       && b.rc == r.rc && b.value == r.value && b.flags == r.flags           \
       && b.used == r.used && b.whole == r.whole,                            \
       "number \"%s\": rc %d value %llu flags %02x used %zu whole %d", str,  \
       r.rc, (unsigned long long) r.value, r.flags, r.used, r.whole)

#define DONE     NGX_HTTP_AI_GUARD_JSON_DONE
#define AGAIN    NGX_HTTP_AI_GUARD_JSON_AGAIN
#define BAD      NGX_HTTP_AI_GUARD_JSON_INVALID
#define NEG      NGX_HTTP_AI_GUARD_JSON_NEGATIVE
#define FRAC     NGX_HTTP_AI_GUARD_JSON_FRACTION
#define EXP      NGX_HTTP_AI_GUARD_JSON_EXPONENT
#define BIG      NGX_HTTP_AI_GUARD_JSON_BIG
#define NZ       NGX_HTTP_AI_GUARD_JSON_NONZERO

    NUM("0,", DONE, 0, 0, 1, 1);
    NUM("0", AGAIN, 0, 0, 1, 1);
    NUM("7}", DONE, 7, NZ, 1, 1);
    NUM("256 ", DONE, 256, NZ, 3, 1);
    NUM("100]", DONE, 100, NZ, 3, 1);
    NUM("-0,", DONE, 0, NEG, 2, 1);
    NUM("-12,", DONE, 12, NEG|NZ, 3, 1);
    NUM("-", AGAIN, 0, NEG, 1, 0);
    NUM("-,", BAD, 0, 0, 1, 0);
    NUM("-a", BAD, 0, 0, 1, 0);
    NUM("01", DONE, 0, 0, 1, 1);
    NUM("1.5,", DONE, 1, NZ|FRAC, 3, 1);
    NUM("0.0,", DONE, 0, FRAC, 3, 1);
    NUM("0.001 ", DONE, 0, FRAC|NZ, 5, 1);
    NUM("1.", AGAIN, 1, NZ|FRAC, 2, 0);
    NUM("1.,", BAD, 0, 0, 2, 0);
    NUM("1.e5", BAD, 0, 0, 2, 0);
    NUM("1e5,", DONE, 1, NZ|EXP, 3, 1);
    NUM("0e5,", DONE, 0, EXP, 3, 1);
    NUM("0E+5,", DONE, 0, EXP, 4, 1);
    NUM("1e-5}", DONE, 1, NZ|EXP, 4, 1);
    NUM("2.5E10 ", DONE, 2, NZ|FRAC|EXP, 6, 1);
    NUM("1e", AGAIN, 1, NZ|EXP, 2, 0);
    NUM("1e+", AGAIN, 1, NZ|EXP, 3, 0);
    NUM("1e,", BAD, 0, 0, 2, 0);
    NUM("1e+,", BAD, 0, 0, 3, 0);
    NUM("1e5.0", DONE, 1, NZ|EXP, 3, 1);
    NUM("1x", DONE, 1, NZ, 1, 1);
    NUM("+1", BAD, 0, 0, 0, 0);
    NUM(".5", BAD, 0, 0, 0, 0);
    NUM("9223372036854775807,", DONE, 9223372036854775807ULL, NZ, 19, 1);
    NUM("9223372036854775808,", DONE, 922337203685477580ULL, NZ|BIG, 19, 1);
    NUM("99999999999999999999,", DONE, 9999999999999999999ULL / 10, NZ|BIG,
        20, 1);
    NUM("-9223372036854775808,", DONE, 922337203685477580ULL, NEG|NZ|BIG, 20,
        1);
    NUM("10000000000000000000000.5e-3]", DONE, 1000000000000000000ULL,
        NZ|BIG|FRAC|EXP, 28, 1);

#undef NUM
#undef DONE
#undef AGAIN
#undef BAD
#undef NEG
#undef FRAC
#undef EXP
#undef BIG
#undef NZ
}


static void
test_utf8(void)
{
    u_char    buf[4], lo, hi;
    unsigned  c, n, leads;

#define ENC(cp, want)                                                        \
    n = ngx_http_ai_guard_json_utf8_encode(buf, cp);                         \
    ok(n == strlen(want) && memcmp(buf, want, n) == 0, "U+%04X as UTF-8",    \
       (unsigned) (cp))

    ENC(0x41, "A");
    ENC(0x7f, "\x7f");
    ENC(0x80, "\xc2\x80");
    ENC(0x7ff, "\xdf\xbf");
    ENC(0x800, "\xe0\xa0\x80");
    ENC(0xe9, "\xc3\xa9");
    ENC(0xffff, "\xef\xbf\xbf");
    ENC(0x10000, "\xf0\x90\x80\x80");
    ENC(0x1f600, "\xf0\x9f\x98\x80");
    ENC(0x10ffff, "\xf4\x8f\xbf\xbf");

#undef ENC

    n = ngx_http_ai_guard_json_utf8_encode(buf, 0);
    ok(n == 1 && buf[0] == 0, "U+0000 is a NUL byte");

    leads = 0;

    for (c = 0; c < 256; c++) {
        leads += ngx_http_ai_guard_json_utf8_lead((u_char) c, &lo, &hi) != 0;
    }

    is_int(leads, 0xdf - 0xc2 + 1 + 16 + 5, "lead bytes: C2-DF, E0-EF, F0-F4");

    is_int(ngx_http_ai_guard_json_utf8_lead(0xc1, &lo, &hi), 0,
           "C1 leads an overlong form");
    is_int(ngx_http_ai_guard_json_utf8_lead(0x80, &lo, &hi), 0,
           "a continuation byte does not lead");
    is_int(ngx_http_ai_guard_json_utf8_lead(0xf5, &lo, &hi), 0,
           "F5 is past U+10FFFF");
    ok(ngx_http_ai_guard_json_utf8_lead(0xe0, &lo, &hi) == 2 && lo == 0xa0
       && hi == 0xbf, "E0: no overlong three-byte form");
    ok(ngx_http_ai_guard_json_utf8_lead(0xed, &lo, &hi) == 2 && lo == 0x80
       && hi == 0x9f, "ED: no encoded surrogate");
    ok(ngx_http_ai_guard_json_utf8_lead(0xf0, &lo, &hi) == 3 && lo == 0x90
       && hi == 0xbf, "F0: no overlong four-byte form");
    ok(ngx_http_ai_guard_json_utf8_lead(0xf4, &lo, &hi) == 3 && lo == 0x80
       && hi == 0x8f, "F4: nothing past U+10FFFF");
    ok(ngx_http_ai_guard_json_utf8_lead(0xc3, &lo, &hi) == 1 && lo == 0x80
       && hi == 0xbf, "C3: one continuation byte");
}


static void
test_utf8_count(void)
{
    int          rc;
    size_t       n[4];
    const char  *s;

#define COUNT(str, want_rc, a, b, c, d)                                      \
    s = str;                                                                 \
    n[0] = n[1] = n[2] = n[3] = 99;                                          \
    rc = ngx_http_ai_guard_json_utf8_count((const u_char *) s, strlen(s), n); \
    ok(rc == (want_rc) && (rc != 0 || (n[0] == (a) && n[1] == (b)            \
                                       && n[2] == (c) && n[3] == (d))),      \
       "count \"%s\": rc %d, %zu %zu %zu %zu", s, rc, n[0], n[1], n[2], n[3])

    COUNT("", 0, 0, 0, 0, 0);
    COUNT("plain ascii, more than eight bytes", 0, 34, 0, 0, 0);
    COUNT("caf\xc3\xa9", 0, 3, 1, 0, 0);
    COUNT("\xe6\x97\xa5\xe6\x9c\xac", 0, 0, 0, 2, 0);
    COUNT("a\xf0\x9f\x98\x80" "b", 0, 2, 0, 0, 1);
    COUNT("0123456789\xc3\xa9\xe2\x82\xac\xf4\x8f\xbf\xbf", 0, 10, 1, 1,
          1);
    COUNT("\xc3", -1, 0, 0, 0, 0);
    COUNT("\xc3(", -1, 0, 0, 0, 0);
    COUNT("\xc0\x80", -1, 0, 0, 0, 0);
    COUNT("\xe0\x80\x80", -1, 0, 0, 0, 0);
    COUNT("\xed\xa0\x80", -1, 0, 0, 0, 0);
    COUNT("\xf4\x90\x80\x80", -1, 0, 0, 0, 0);
    COUNT("\xf0\x9f\x98", -1, 0, 0, 0, 0);
    COUNT("\xe2\x82(", -1, 0, 0, 0, 0);
    COUNT("\x80", -1, 0, 0, 0, 0);
    COUNT("\xff", -1, 0, 0, 0, 0);

#undef COUNT
}


/*
 * The skip, over every special byte at every offset of every length, with
 * SSE2 and, where the CPU has it, with AVX2.
 */

static void
test_skip(int avx2)
{
    u_char          buf[64];
    size_t          at, len, bad;
    unsigned        c, stops;
    const u_char   *q;
    static u_char   special[] = { '"', '\\', 0x00, 0x1f, 0x80, 0xff, 0x0a };

    bad = 0;

    for (c = 0; c < sizeof(special); c++) {
        for (len = 0; len <= sizeof(buf); len++) {
            for (at = 0; at <= len; at++) {
                memset(buf, 'a', sizeof(buf));

                if (at < len) {
                    buf[at] = special[c];
                }

                q = ngx_http_ai_guard_json_skip(buf, buf + len);

                /* AVX2 reads 32 bytes or none: exact from 32 on */

                if (q > buf + at || q + 8 <= buf + at
                    || (avx2 && len >= 32 && q != buf + at))
                {
                    bad++;
                }
            }
        }
    }

    is_int(bad, 0, "the skip (%s) stops at most 7 bytes before the first "
           "special byte (or the end), never past it",
           avx2 ? "AVX2" : "SSE2");

    stops = 0;

    for (c = 0x20; c < 0x80; c++) {
        if (c == '"' || c == '\\') {
            continue;
        }

        memset(buf, 'a', sizeof(buf));
        buf[20] = (u_char) c;

        stops += ngx_http_ai_guard_json_skip(buf, buf + sizeof(buf))
                 != buf + sizeof(buf);
    }

    is_int(stops, 0, "printable ASCII other than '\"' and '\\\\' is plain "
           "(%s)", avx2 ? "AVX2" : "SSE2");
}


int
main(void)
{
    test_escapes();
    test_numbers();
    test_utf8();
    test_utf8_count();
    test_skip(ngx_http_ai_guard_json_simd(0));
    test_skip(ngx_http_ai_guard_json_simd(1));
    (void) ngx_http_ai_guard_json_simd(0);

    return done_testing();
}
