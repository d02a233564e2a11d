
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_NORM_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_NORM_H_INCLUDED_


/*
 * The prompt normaliser: what the rules and PII detectors read instead of
 * a text past ASCII, so that text a person reads as the same phrase
 * matches the same rule (docs/rules.md, "Normalisation").  Code point by
 * code point, from a generated table (ngx_http_ai_guard_norm_table.h):
 * Unicode spaces become a space, format and other default-ignorable
 * characters go, compatibility forms whose NFKC is ASCII (fullwidth,
 * mathematical letters, ligatures, the Kelvin sign) become it.  Case is
 * left to the matcher (PCRE2_UTF|PCRE2_UCP).  The upstream still gets
 * the original bytes.  Pure: no nginx runtime, no allocation.
 */


#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


typedef struct {
    uint32_t                    lo;
    uint32_t                    hi;
    unsigned                    inc;    /* lo + i maps to s[0] + i */
    const char                 *s;      /* what lo maps to, ASCII */
} ngx_http_ai_guard_norm_range_t;


/*
 * Writes the normal form of src to dst, which has room for len bytes (the
 * form is never longer), and returns its length.  Valid UTF-8 gives valid
 * UTF-8 whose form is itself; a byte that starts no valid sequence is
 * copied as it is.  dst may be src.
 */
size_t ngx_http_ai_guard_norm(u_char *dst, const u_char *src, size_t len);

/* what code point cp maps to, or NULL when it stays; *n its length */
const char *ngx_http_ai_guard_norm_map(uint32_t cp, char *buf, size_t *n);


#endif /* _NGX_HTTP_AI_GUARD_NORM_H_INCLUDED_ */
