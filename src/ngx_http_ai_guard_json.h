
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_JSON_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_JSON_H_INCLUDED_


/*
 * What the two hand-written JSON (RFC 8259) scanners share: the request
 * parser (request.c) and the response usage scanner (usage.c).  String
 * escapes, numbers and UTF-8, decoded incrementally: a scanner hands over
 * the bytes of the buffer it has, the buffer may end anywhere inside an
 * escape or a number, and the decoder keeps its state in a few bytes of
 * the scanner's own.  Pure: no allocation, no nginx runtime.
 *
 * The decoders return the position they stopped at and leave their
 * verdict in ->rc, so that a scanner never takes the address of its own
 * position (which would keep it out of a register in its loop):
 *
 *     p = ngx_http_ai_guard_json_number(&num, p, end);
 *
 *     switch (num.rc) {
 *     case NGX_HTTP_AI_GUARD_JSON_AGAIN:  p == end, feed the next buffer
 *     case NGX_HTTP_AI_GUARD_JSON_DONE:   the number ended before p
 *     default:                            not JSON
 *     }
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


/* the verdicts of the decoders */
#define NGX_HTTP_AI_GUARD_JSON_AGAIN          0   /* needs more bytes */
#define NGX_HTTP_AI_GUARD_JSON_DONE           1
#define NGX_HTTP_AI_GUARD_JSON_INVALID       -1   /* not JSON */
#define NGX_HTTP_AI_GUARD_JSON_SURROGATE     -2   /* unpaired \uD8xx */

/* what the bytes of a number said, in ngx_http_ai_guard_json_number_t */
#define NGX_HTTP_AI_GUARD_JSON_NEGATIVE    0x01
#define NGX_HTTP_AI_GUARD_JSON_FRACTION    0x02   /* a "." */
#define NGX_HTTP_AI_GUARD_JSON_EXPONENT    0x04   /* an "e" or "E" */
#define NGX_HTTP_AI_GUARD_JSON_BIG         0x08   /* past INT64_MAX */
#define NGX_HTTP_AI_GUARD_JSON_NONZERO     0x10   /* a digit 1-9 before
                                                     the exponent */


/*
 * An escape, from the byte after its backslash.  With "pairs", a high
 * surrogate escape must be followed at once by a low one, and the two
 * are one code point past U+FFFF; a lone half of a pair is
 * NGX_HTTP_AI_GUARD_JSON_SURROGATE.  Without, every \uXXXX is a code point
 * of its own, surrogates included, for the scanner to judge.
 */
typedef struct {
    uint32_t                            cp;     /* the code point */
    int                                 rc;
    uint16_t                            high;   /* a high surrogate */
    u_char                              state;
    u_char                              nhex;
    u_char                              len;    /* bytes as written,
                                                   backslash included */
    u_char                              pairs;
} ngx_http_ai_guard_json_escape_t;


/*
 * A number, from its first byte ("-" or a digit): the grammar of RFC
 * 8259 section 6, the integer part's value while it fits an int64_t (then
 * NGX_HTTP_AI_GUARD_JSON_BIG), and flags of what else it had.  A number
 * ends at the first byte that cannot continue it, which is not consumed:
 * it belongs to the next token, and the scanner checks it.
 */
typedef struct {
    uint64_t                            value;
    int                                 rc;
    u_char                              state;
    u_char                              flags;
} ngx_http_ai_guard_json_number_t;


const u_char *ngx_http_ai_guard_json_escape(
    ngx_http_ai_guard_json_escape_t *e, const u_char *p, const u_char *end);

const u_char *ngx_http_ai_guard_json_number(
    ngx_http_ai_guard_json_number_t *n, const u_char *p, const u_char *end);

/* 1 when the number read so far is whole: the input may end after it */
int ngx_http_ai_guard_json_number_whole(
    const ngx_http_ai_guard_json_number_t *n);

/*
 * The escape of c, a quote, a backslash or a control character, at p (6
 * bytes of room): the short form where JSON has one, else \u00xx in
 * lower case; returns the end of what it wrote.
 */
u_char *ngx_http_ai_guard_json_escape_byte(u_char *p, u_char c);

/* cp as UTF-8 at p (4 bytes of room); returns the bytes written */
size_t ngx_http_ai_guard_json_utf8_encode(u_char *p, uint32_t cp);

/*
 * Checks that p[0..len) is strict UTF-8 (as _utf8_lead() below), and
 * counts its sequences by length: n[0] ASCII bytes, n[1] two-byte
 * sequences, n[2] three-byte, n[3] four-byte.  Returns 0, or -1 when the
 * bytes are not UTF-8 (n is then left unset).
 */
int ngx_http_ai_guard_json_utf8_count(const u_char *p, size_t len,
    size_t n[4]);

/*
 * Skips plain string bytes: returns a point at or at most 7 bytes before
 * the first byte from p on that ends a run of them (a quote, a backslash,
 * a control character or a byte past ASCII), or before end; the bytes
 * before it are plain, the caller looks at the rest byte by byte.
 */
const u_char *ngx_http_ai_guard_json_skip(const u_char *p,
    const u_char *end);

/*
 * avx2: let the skip use AVX2 where the CPU has it (once a process,
 * before any skip; the tests run both ways).  Returns whether it will.
 */
int ngx_http_ai_guard_json_simd(int avx2);


static inline void
ngx_http_ai_guard_json_escape_init(ngx_http_ai_guard_json_escape_t *e,
    int pairs)
{
    e->rc = NGX_HTTP_AI_GUARD_JSON_AGAIN;
    e->high = 0;
    e->state = 0;
    e->len = 1;
    e->pairs = (u_char) pairs;
}


static inline void
ngx_http_ai_guard_json_number_init(ngx_http_ai_guard_json_number_t *n)
{
    n->value = 0;
    n->rc = NGX_HTTP_AI_GUARD_JSON_AGAIN;
    n->state = 0;
    n->flags = 0;
}


/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no encoded surrogates,
 * nothing past U+10FFFF.  The continuation bytes a lead byte needs (1 to
 * 3) and the range of the first of them (the others are 0x80-0xbf); 0
 * when c cannot lead a sequence.
 */

static inline unsigned
ngx_http_ai_guard_json_utf8_lead(u_char c, u_char *lo, u_char *hi)
{
    *lo = 0x80;
    *hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        return 1;
    }

    if (c >= 0xe0 && c <= 0xef) {
        if (c == 0xe0) {
            *lo = 0xa0;

        } else if (c == 0xed) {
            *hi = 0x9f;
        }

        return 2;
    }

    if (c >= 0xf0 && c <= 0xf4) {
        if (c == 0xf0) {
            *lo = 0x90;

        } else if (c == 0xf4) {
            *hi = 0x8f;
        }

        return 3;
    }

    return 0;
}


#endif /* _NGX_HTTP_AI_GUARD_JSON_H_INCLUDED_ */
