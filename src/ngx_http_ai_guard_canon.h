
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_CANON_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_CANON_H_INCLUDED_


/*
 * The canonical form of a JSON document, built as a parser reads it:
 * keys sorted bytewise by their decoded bytes, recursively (equal keys
 * keep their order); no insignificant whitespace; strings re-escaped
 * minimally and deterministically; numbers and literals as written.  Two
 * bodies that differ only in key order, whitespace or the spelling of
 * escapes have one form: the cache key of a request (cache.c).
 *
 * The parser (request.c) checks the syntax and calls in at every token
 * with the depth of the container the token is in (0: the root, outside
 * any), and whether that container is an array.  Each open object
 * collects its members in a buffer of its own, each member prefixed with
 * its decoded key for sorting; arrays and scalars write straight into the
 * nearest open object's buffer (the sink).  When an object closes, its
 * members are sorted and copied into the sink of its parent.  Memory
 * stays within a small multiple of the document, and the copies within
 * the depth of object nesting.  Pure: malloc and libc, no nginx runtime.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>


/* the first block of a growable buffer */
#define NGX_HTTP_AI_GUARD_RBUF_FIRST  4096


/* a growable buffer (malloc) */
typedef struct {
    u_char                         *data;
    size_t                          len;
    size_t                          size;
} ngx_http_ai_guard_rbuf_t;


typedef struct ngx_http_ai_guard_canon_level_s  ngx_http_ai_guard_canon_level_t;


typedef struct {
    ngx_http_ai_guard_rbuf_t          out;
    ngx_http_ai_guard_canon_level_t  *levels;  /* NULL: no form wanted */
    size_t                            nlevels; /* of them, initialized */
} ngx_http_ai_guard_canon_t;


/*
 * All but _free() return 0, or -1 when out of memory; after -1 the form
 * is incomplete, and only _free() is left to call.
 */

/* for documents nested at most "depth" deep */
int ngx_http_ai_guard_canon_init(ngx_http_ai_guard_canon_t *cn,
    size_t depth);
void ngx_http_ai_guard_canon_free(ngx_http_ai_guard_canon_t *cn);

/* a scalar: a string's decoded bytes (string 1), else its text */
int ngx_http_ai_guard_canon_value(ngx_http_ai_guard_canon_t *cn,
    size_t depth, int in_array, const u_char *p, size_t len, int string);

/* an object's key (decoded), before its value */
int ngx_http_ai_guard_canon_key(ngx_http_ai_guard_canon_t *cn,
    size_t depth, const u_char *p, size_t len);

/* a container opens inside the one at depth; it is at depth + 1 */
int ngx_http_ai_guard_canon_open(ngx_http_ai_guard_canon_t *cn,
    size_t depth, int in_array, int map);

/* the container at depth (1 or more) closes */
int ngx_http_ai_guard_canon_close(ngx_http_ai_guard_canon_t *cn,
    size_t depth, int map);

/* room for n more bytes: 0, or -1 when out of memory */
int ngx_http_ai_guard_rbuf_reserve(ngx_http_ai_guard_rbuf_t *b, size_t n);


/* inline: the parser keeps the bytes of a token that spans buffers */

static inline int
ngx_http_ai_guard_rbuf_add(ngx_http_ai_guard_rbuf_t *b, const u_char *p,
    size_t len)
{
    if (b->size - b->len < len
        && ngx_http_ai_guard_rbuf_reserve(b, len) != 0)
    {
        return -1;
    }

    if (len) {
        memcpy(b->data + b->len, p, len);
        b->len += len;
    }

    return 0;
}


#endif /* _NGX_HTTP_AI_GUARD_CANON_H_INCLUDED_ */
