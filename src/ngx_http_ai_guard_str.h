
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_STR_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_STR_H_INCLUDED_


/*
 * Small string helpers of the pure layer (no nginx runtime).
 *
 * Key parts: every key made of several strings, in the zones and in
 * Redis, writes each string as "<decimal length>:<bytes>", so that a key
 * reads back into its strings one way only: "acme-1" + "0gpt-4o" is
 * "6:acme-17:0gpt-4o" and "acme-10" + "gpt-4o" is "7:acme-106:gpt-4o".
 * Whatever bytes the strings hold (':' or digits included), two different
 * tuples never make the same key.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


/* the most a part of a string of len bytes takes: 20 digits and ':' */
#define NGX_HTTP_AI_GUARD_PART_LEN(len)  ((len) + 21)

/* bytes of the printable form of len bytes, at most */
#define NGX_HTTP_AI_GUARD_PRINTABLE_LEN(len)  (4 * (len))

/*
 * ASCII character classes of the pure scanners: no locale, as prompt
 * text, rules files and regexes are bytes (unlike <ctype.h>).
 */
#define ngx_http_ai_guard_digit(c)  ((c) >= '0' && (c) <= '9')
#define ngx_http_ai_guard_upper(c)  ((c) >= 'A' && (c) <= 'Z')
#define ngx_http_ai_guard_lower(c)  ((c) >= 'a' && (c) <= 'z')
#define ngx_http_ai_guard_alpha(c)                                          \
    (ngx_http_ai_guard_upper(c) || ngx_http_ai_guard_lower(c))
#define ngx_http_ai_guard_alnum(c)                                          \
    (ngx_http_ai_guard_alpha(c) || ngx_http_ai_guard_digit(c))
#define ngx_http_ai_guard_tolower(c)                                        \
    (u_char) (ngx_http_ai_guard_upper(c) ? (c) | 0x20 : (c))
#define ngx_http_ai_guard_space(c)                                          \
    ((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\v' || (c) == '\f')


u_char *ngx_http_ai_guard_part_write(u_char *p, const u_char *s, size_t len);

/*
 * Reads the part at p (not past last): sets *s and *len and returns the
 * byte after it, or NULL when p does not start a whole part.
 */
const u_char *ngx_http_ai_guard_part_read(const u_char *p,
    const u_char *last, const u_char **s, size_t *len);

/*
 * The bytes with every byte outside 0x20-0x7e, and the backslash, written
 * as \xHH: safe in a log line.  Writes at most size bytes, never a part
 * of an escape; returns the end.
 */
u_char *ngx_http_ai_guard_printable(u_char *dst, size_t size,
    const u_char *src, size_t len);


#endif /* _NGX_HTTP_AI_GUARD_STR_H_INCLUDED_ */
