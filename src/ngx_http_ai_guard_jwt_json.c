
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "ngx_http_ai_guard_jwt_json.h"


/* enough for yajl's handle, lexer, state stack and first decode buffer */
#define NGX_HTTP_AI_GUARD_JWT_ARENA        8192

/* JSON nesting kept track of; deeper documents are rejected */
#define NGX_HTTP_AI_GUARD_JWT_DEPTH        64


/* the state of one walk, on the stack of ngx_http_ai_guard_jwt_json() */
typedef struct {
    ngx_http_ai_guard_jwt_json_t    *json;
    yajl_handle                      yh;
    u_char                          *in;
    size_t                           in_len;
    unsigned                         depth;
    unsigned                         narrays;
    uint64_t                         arrays;
    size_t                           arena_used;
    uint64_t                         arena[NGX_HTTP_AI_GUARD_JWT_ARENA / 8];
} ngx_http_ai_guard_jwt_walk_t;


static int ngx_http_ai_guard_jwt_b64val(u_char c);
static const u_char *ngx_http_ai_guard_jwt_stable(
    ngx_http_ai_guard_jwt_walk_t *j, const u_char *p, size_t len);
static int ngx_http_ai_guard_jwt_event(ngx_http_ai_guard_jwt_walk_t *j,
    int type, const u_char *p, size_t len);
static int ngx_http_ai_guard_jwt_push(ngx_http_ai_guard_jwt_walk_t *j,
    int array);
static int ngx_http_ai_guard_jwt_on_null(void *ctx);
static int ngx_http_ai_guard_jwt_on_boolean(void *ctx, int b);
static int ngx_http_ai_guard_jwt_on_number(void *ctx, const char *p,
    size_t len);
static int ngx_http_ai_guard_jwt_on_string(void *ctx, const unsigned char *p,
    size_t len);
static int ngx_http_ai_guard_jwt_on_start_map(void *ctx);
static int ngx_http_ai_guard_jwt_on_map_key(void *ctx,
    const unsigned char *p, size_t len);
static int ngx_http_ai_guard_jwt_on_end_map(void *ctx);
static int ngx_http_ai_guard_jwt_on_start_array(void *ctx);
static int ngx_http_ai_guard_jwt_on_end_array(void *ctx);
static void *ngx_http_ai_guard_jwt_malloc(void *ctx, size_t size);
static int ngx_http_ai_guard_jwt_in_arena(ngx_http_ai_guard_jwt_walk_t *j,
    void *ptr);
static void *ngx_http_ai_guard_jwt_realloc(void *ctx, void *ptr, size_t size);
static void ngx_http_ai_guard_jwt_free(void *ctx, void *ptr);


static yajl_callbacks  ngx_http_ai_guard_jwt_callbacks = {
    ngx_http_ai_guard_jwt_on_null,
    ngx_http_ai_guard_jwt_on_boolean,
    NULL,
    NULL,
    ngx_http_ai_guard_jwt_on_number,
    ngx_http_ai_guard_jwt_on_string,
    ngx_http_ai_guard_jwt_on_start_map,
    ngx_http_ai_guard_jwt_on_map_key,
    ngx_http_ai_guard_jwt_on_end_map,
    ngx_http_ai_guard_jwt_on_start_array,
    ngx_http_ai_guard_jwt_on_end_array
};


static int
ngx_http_ai_guard_jwt_b64val(u_char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '-') {
        return 62;
    }

    if (c == '_') {
        return 63;
    }

    return -1;
}


ssize_t
ngx_http_ai_guard_jwt_base64url_decode(u_char *out, const u_char *in,
    size_t len)
{
    int      a, b, c, d;
    u_char  *o;
    size_t   i, tail;

    tail = len % 4;

    if (tail == 1) {
        return -1;
    }

    o = out;

    for (i = 0; i + 4 <= len; i += 4) {
        a = ngx_http_ai_guard_jwt_b64val(in[i]);
        b = ngx_http_ai_guard_jwt_b64val(in[i + 1]);
        c = ngx_http_ai_guard_jwt_b64val(in[i + 2]);
        d = ngx_http_ai_guard_jwt_b64val(in[i + 3]);

        if ((a | b | c | d) < 0) {
            return -1;
        }

        *o++ = (u_char) (a << 2 | b >> 4);
        *o++ = (u_char) (b << 4 | c >> 2);
        *o++ = (u_char) (c << 6 | d);
    }

    if (tail) {
        a = ngx_http_ai_guard_jwt_b64val(in[i]);
        b = ngx_http_ai_guard_jwt_b64val(in[i + 1]);
        c = (tail == 3) ? ngx_http_ai_guard_jwt_b64val(in[i + 2]) : 0;

        if ((a | b | c) < 0) {
            return -1;
        }

        /* the bits past the last whole byte must be zero (canonical) */

        if (tail == 2) {
            if (b & 0x0f) {
                return -1;
            }

            *o++ = (u_char) (a << 2 | b >> 4);

        } else {
            if (c & 0x03) {
                return -1;
            }

            *o++ = (u_char) (a << 2 | b >> 4);
            *o++ = (u_char) (b << 4 | c >> 2);
        }
    }

    return o - out;
}


int
ngx_http_ai_guard_jwt_path(ngx_http_ai_guard_jwt_field_t *f, const u_char *p,
    size_t len)
{
    const u_char  *last, *dot;

    memset(f, 0, sizeof(ngx_http_ai_guard_jwt_field_t));

    if (p == NULL || len == 0) {
        return 0;
    }

    last = p + len;

    for ( ;; ) {
        dot = memchr(p, '.', last - p);
        if (dot == NULL) {
            dot = last;
        }

        if (dot == p || f->ncomp == NGX_HTTP_AI_GUARD_JWT_MAX_PATH) {
            f->ncomp = 0;
            return 0;
        }

        f->comp[f->ncomp].data = p;
        f->comp[f->ncomp].len = dot - p;
        f->ncomp++;

        if (dot == last) {
            return 1;
        }

        p = dot + 1;
    }
}


/*
 * A streaming parse that follows the members named by json->fields and
 * hands their values to json->value.  Strings are handed over as spans
 * into the input, which must be writable: yajl hands an unescaped string
 * as a pointer into the input, and an escaped one is copied back over its
 * own (always longer) encoding.
 */

int
ngx_http_ai_guard_jwt_json(ngx_http_ai_guard_jwt_json_t *json, u_char *p,
    size_t len)
{
    yajl_status                    st;
    yajl_alloc_funcs               af;
    ngx_http_ai_guard_jwt_walk_t   w;

    af.malloc = ngx_http_ai_guard_jwt_malloc;
    af.realloc = ngx_http_ai_guard_jwt_realloc;
    af.free = ngx_http_ai_guard_jwt_free;
    af.ctx = &w;

    w.json = json;
    w.arena_used = 0;
    w.depth = 0;
    w.narrays = 0;
    w.arrays = 0;
    w.in = p;
    w.in_len = len;

    w.yh = yajl_alloc(&ngx_http_ai_guard_jwt_callbacks, &af, &w);
    if (w.yh == NULL) {
        json->reason = "out of memory";
        return NGX_HTTP_AI_GUARD_JWT_JSON_NOMEM;
    }

    st = yajl_parse(w.yh, p, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(w.yh);
    }

    yajl_free(w.yh);
    w.yh = NULL;

    if (st != yajl_status_ok) {
        if (json->reason == NULL) {
            json->reason = "not valid JSON";
        }

        return NGX_HTTP_AI_GUARD_JWT_JSON_INVALID;
    }

    if (w.depth != 0) {
        json->reason = "not a JSON object";
        return NGX_HTTP_AI_GUARD_JWT_JSON_INVALID;
    }

    return NGX_HTTP_AI_GUARD_JWT_JSON_OK;
}


/*
 * yajl allocates from a small arena on the stack so that a request's
 * parse does not malloc; a document that needs more falls back to libc.
 */

static void *
ngx_http_ai_guard_jwt_malloc(void *ctx, size_t size)
{
    u_char                        *p;
    size_t                         n;
    ngx_http_ai_guard_jwt_walk_t  *j;

    j = ctx;
    n = (size + 16 + 15) & ~(size_t) 15;

    if (size < NGX_HTTP_AI_GUARD_JWT_ARENA
        && n <= NGX_HTTP_AI_GUARD_JWT_ARENA - j->arena_used)
    {
        p = (u_char *) j->arena + j->arena_used;
        j->arena_used += n;
        *(size_t *) p = size;
        return p + 16;
    }

    return malloc(size);
}


static int
ngx_http_ai_guard_jwt_in_arena(ngx_http_ai_guard_jwt_walk_t *j, void *ptr)
{
    uintptr_t  p, a;

    p = (uintptr_t) ptr;
    a = (uintptr_t) j->arena;

    return p >= a && p < a + NGX_HTTP_AI_GUARD_JWT_ARENA;
}


static void *
ngx_http_ai_guard_jwt_realloc(void *ctx, void *ptr, size_t size)
{
    void                          *p;
    size_t                         old, n, m;
    ngx_http_ai_guard_jwt_walk_t  *j;

    j = ctx;

    if (ptr == NULL) {
        return ngx_http_ai_guard_jwt_malloc(ctx, size);
    }

    if (!ngx_http_ai_guard_jwt_in_arena(j, ptr)) {
        return realloc(ptr, size);
    }

    old = *(size_t *) ((u_char *) ptr - 16);

    if (size <= old) {
        return ptr;
    }

    /* the last block grows in place: yajl's stacks and buffers double */

    n = (old + 16 + 15) & ~(size_t) 15;
    m = (size + 16 + 15) & ~(size_t) 15;

    if (size < NGX_HTTP_AI_GUARD_JWT_ARENA
        && (u_char *) ptr - 16 + n == (u_char *) j->arena + j->arena_used
        && m - n <= NGX_HTTP_AI_GUARD_JWT_ARENA - j->arena_used)
    {
        j->arena_used += m - n;
        *(size_t *) ((u_char *) ptr - 16) = size;
        return ptr;
    }

    p = ngx_http_ai_guard_jwt_malloc(ctx, size);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, ptr, old);

    return p;
}


static void
ngx_http_ai_guard_jwt_free(void *ctx, void *ptr)
{
    if (ptr != NULL && !ngx_http_ai_guard_jwt_in_arena(ctx, ptr)) {
        free(ptr);
    }
}


static const u_char *
ngx_http_ai_guard_jwt_stable(ngx_http_ai_guard_jwt_walk_t *j,
    const u_char *p, size_t len)
{
    size_t     consumed;
    u_char    *dst;
    uintptr_t  a, s;

    a = (uintptr_t) p;
    s = (uintptr_t) j->in;

    if (a >= s && a <= s + j->in_len && len <= s + j->in_len - a) {
        return p;
    }

    /*
     * An escaped string, decoded into yajl's buffer.  The token just
     * lexed ends at the closing quote, at consumed - 1, and its escaped
     * text is longer than the decoded one: the copy lands inside it.
     */

    consumed = yajl_get_bytes_consumed(j->yh);

    if (consumed > j->in_len || consumed < len + 3) {
        return NULL;
    }

    dst = j->in + consumed - 1 - len;
    memmove(dst, p, len);

    return dst;
}


static int
ngx_http_ai_guard_jwt_event(ngx_http_ai_guard_jwt_walk_t *j, int type,
    const u_char *p, size_t len)
{
    int                             elt, top_array, stable;
    unsigned                        i, maps;
    ngx_http_ai_guard_jwt_field_t  *f;

    if (j->depth == 0) {
        if (type == NGX_HTTP_AI_GUARD_JWT_T_MAP) {
            return 1;
        }

        j->json->reason = "not a JSON object";
        return 0;
    }

    if (j->narrays > 1) {
        return 1;
    }

    top_array = (j->arrays >> (j->depth - 1)) & 1;

    if (j->narrays == 1 && !top_array) {
        return 1;
    }

    elt = top_array;
    maps = j->depth - j->narrays;
    stable = 0;

    for (i = 0; i < j->json->nfields; i++) {
        f = &j->json->fields[i];

        if (f->ncomp != maps || f->matched != maps) {
            continue;
        }

        if (!elt) {
            if (f->seen) {
                j->json->reason = "duplicate member";
                return 0;
            }

            f->seen = 1;
        }

        if (type == NGX_HTTP_AI_GUARD_JWT_T_NUMBER && !stable) {
            /* yajl hands numbers as spans of the input: make sure */

            if ((uintptr_t) p < (uintptr_t) j->in
                || (uintptr_t) p + len > (uintptr_t) j->in + j->in_len)
            {
                j->json->reason = "number outside the input";
                return 0;
            }

            stable = 1;
        }

        if (type == NGX_HTTP_AI_GUARD_JWT_T_STRING && !stable) {
            p = ngx_http_ai_guard_jwt_stable(j, p, len);
            if (p == NULL) {
                j->json->reason = "string outside the input";
                return 0;
            }

            stable = 1;
        }

        if (!j->json->value(j->json, i, type, p, len, elt)) {
            return 0;
        }
    }

    return 1;
}


static int
ngx_http_ai_guard_jwt_push(ngx_http_ai_guard_jwt_walk_t *j, int array)
{
    if (j->depth == NGX_HTTP_AI_GUARD_JWT_DEPTH) {
        j->json->reason = "JSON nested too deeply";
        return 0;
    }

    if (array) {
        j->arrays |= (uint64_t) 1 << j->depth;
        j->narrays++;

    } else {
        j->arrays &= ~((uint64_t) 1 << j->depth);
    }

    j->depth++;

    return 1;
}


static int
ngx_http_ai_guard_jwt_on_null(void *ctx)
{
    return ngx_http_ai_guard_jwt_event(ctx, NGX_HTTP_AI_GUARD_JWT_T_OTHER,
                                       NULL, 0);
}


static int
ngx_http_ai_guard_jwt_on_boolean(void *ctx, int b)
{
    (void) b;

    return ngx_http_ai_guard_jwt_event(ctx, NGX_HTTP_AI_GUARD_JWT_T_OTHER,
                                       NULL, 0);
}


static int
ngx_http_ai_guard_jwt_on_number(void *ctx, const char *p, size_t len)
{
    return ngx_http_ai_guard_jwt_event(ctx, NGX_HTTP_AI_GUARD_JWT_T_NUMBER,
                                       (const u_char *) p, len);
}


static int
ngx_http_ai_guard_jwt_on_string(void *ctx, const unsigned char *p,
    size_t len)
{
    return ngx_http_ai_guard_jwt_event(ctx, NGX_HTTP_AI_GUARD_JWT_T_STRING,
                                       p, len);
}


static int
ngx_http_ai_guard_jwt_on_start_map(void *ctx)
{
    ngx_http_ai_guard_jwt_walk_t  *j;

    j = ctx;

    if (!ngx_http_ai_guard_jwt_event(j, NGX_HTTP_AI_GUARD_JWT_T_MAP, NULL, 0))
    {
        return 0;
    }

    return ngx_http_ai_guard_jwt_push(j, 0);
}


static int
ngx_http_ai_guard_jwt_on_map_key(void *ctx, const unsigned char *p,
    size_t len)
{
    unsigned                        i, d;
    ngx_http_ai_guard_jwt_walk_t   *j;
    ngx_http_ai_guard_jwt_field_t  *f;

    j = ctx;

    if (j->narrays) {
        return 1;
    }

    d = j->depth;

    for (i = 0; i < j->json->nfields; i++) {
        f = &j->json->fields[i];

        if (f->matched + 1 < d) {
            continue;
        }

        f->matched = d - 1;

        if (d <= f->ncomp
            && f->comp[d - 1].len == len
            && memcmp(f->comp[d - 1].data, p, len) == 0)
        {
            f->matched = d;
        }
    }

    return 1;
}


static int
ngx_http_ai_guard_jwt_on_end_map(void *ctx)
{
    unsigned                        i;
    ngx_http_ai_guard_jwt_walk_t   *j;
    ngx_http_ai_guard_jwt_field_t  *f;

    j = ctx;

    if (j->narrays == 0) {
        for (i = 0; i < j->json->nfields; i++) {
            f = &j->json->fields[i];

            if (f->matched >= j->depth) {
                f->matched = j->depth - 1;
            }
        }
    }

    j->depth--;

    return 1;
}


static int
ngx_http_ai_guard_jwt_on_start_array(void *ctx)
{
    ngx_http_ai_guard_jwt_walk_t  *j;

    j = ctx;

    if (!ngx_http_ai_guard_jwt_event(j, NGX_HTTP_AI_GUARD_JWT_T_ARRAY, NULL,
                                     0))
    {
        return 0;
    }

    return ngx_http_ai_guard_jwt_push(j, 1);
}


static int
ngx_http_ai_guard_jwt_on_end_array(void *ctx)
{
    ngx_http_ai_guard_jwt_walk_t  *j;

    j = ctx;

    j->depth--;
    j->narrays--;

    return 1;
}
