
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <string.h>

#include "ngx_http_ai_guard_json.h"
#include "ngx_http_ai_guard_canon.h"


typedef struct {
    u_char                         *key;
    size_t                          off;    /* decoded key, then member */
    size_t                          klen;
    size_t                          len;
} ngx_http_ai_guard_member_t;


/* canonical output under construction for one open container */
struct ngx_http_ai_guard_canon_level_s {
    ngx_http_ai_guard_rbuf_t        buf;    /* objects: their members */
    ngx_http_ai_guard_rbuf_t       *sink;   /* where values here go */
    ngx_http_ai_guard_member_t     *members;
    size_t                          nmembers;
    size_t                          nalloc;
    size_t                          count;
};


static int ngx_http_ai_guard_canon_end_map(ngx_http_ai_guard_canon_t *cn,
    size_t depth);
static int ngx_http_ai_guard_canon_cmp(const void *one, const void *two);
static int ngx_http_ai_guard_rbuf_escape(ngx_http_ai_guard_rbuf_t *b,
    const u_char *p, size_t len);


int
ngx_http_ai_guard_canon_init(ngx_http_ai_guard_canon_t *cn, size_t depth)
{
    memset(cn, 0, sizeof(ngx_http_ai_guard_canon_t));

    /* the levels are set up as the nesting first reaches them */

    cn->levels = malloc((depth + 1) * sizeof(ngx_http_ai_guard_canon_level_t));
    if (cn->levels == NULL) {
        return -1;
    }

    memset(&cn->levels[0], 0, sizeof(ngx_http_ai_guard_canon_level_t));
    cn->levels[0].sink = &cn->out;
    cn->nlevels = 1;

    return 0;
}


void
ngx_http_ai_guard_canon_free(ngx_http_ai_guard_canon_t *cn)
{
    size_t  i;

    if (cn->levels) {
        for (i = 0; i < cn->nlevels; i++) {
            free(cn->levels[i].buf.data);
            free(cn->levels[i].members);
        }

        free(cn->levels);
        cn->levels = NULL;
    }

    free(cn->out.data);
    cn->out.data = NULL;
}


int
ngx_http_ai_guard_canon_value(ngx_http_ai_guard_canon_t *cn, size_t depth,
    int in_array, const u_char *p, size_t len, int string)
{
    ngx_http_ai_guard_canon_level_t  *lv;

    lv = &cn->levels[depth];

    if (in_array && lv->count++ > 0) {
        if (ngx_http_ai_guard_rbuf_add(lv->sink, (u_char *) ",", 1) != 0) {
            return -1;
        }
    }

    if (string) {
        return ngx_http_ai_guard_rbuf_escape(lv->sink, p, len);
    }

    return ngx_http_ai_guard_rbuf_add(lv->sink, p, len);
}


int
ngx_http_ai_guard_canon_open(ngx_http_ai_guard_canon_t *cn, size_t depth,
    int in_array, int map)
{
    ngx_http_ai_guard_canon_level_t  *lv, *child;

    lv = &cn->levels[depth];
    child = lv + 1;

    if (depth + 1 == cn->nlevels) {
        memset(child, 0, sizeof(ngx_http_ai_guard_canon_level_t));
        cn->nlevels++;
    }

    child->count = 0;

    if (in_array && lv->count++ > 0
        && ngx_http_ai_guard_rbuf_add(lv->sink, (u_char *) ",", 1) != 0)
    {
        return -1;
    }

    if (map) {
        child->buf.len = 0;
        child->nmembers = 0;
        child->sink = &child->buf;

        return 0;
    }

    child->sink = lv->sink;

    return ngx_http_ai_guard_rbuf_add(child->sink, (u_char *) "[", 1);
}


int
ngx_http_ai_guard_canon_key(ngx_http_ai_guard_canon_t *cn, size_t depth,
    const u_char *p, size_t len)
{
    size_t                            n;
    ngx_http_ai_guard_member_t       *m;
    ngx_http_ai_guard_canon_level_t  *lv;

    lv = &cn->levels[depth];

    if (lv->nmembers) {
        m = &lv->members[lv->nmembers - 1];
        m->len = lv->buf.len - m->off;
    }

    if (lv->nmembers == lv->nalloc) {
        n = lv->nalloc ? lv->nalloc * 2 : 16;

        m = realloc(lv->members, n * sizeof(ngx_http_ai_guard_member_t));
        if (m == NULL) {
            return -1;
        }

        lv->members = m;
        lv->nalloc = n;
    }

    m = &lv->members[lv->nmembers++];
    m->off = lv->buf.len;
    m->klen = len;
    m->len = 0;

    if (ngx_http_ai_guard_rbuf_add(&lv->buf, p, len) != 0
        || ngx_http_ai_guard_rbuf_escape(&lv->buf, p, len) != 0
        || ngx_http_ai_guard_rbuf_add(&lv->buf, (u_char *) ":", 1) != 0)
    {
        return -1;
    }

    return 0;
}


int
ngx_http_ai_guard_canon_close(ngx_http_ai_guard_canon_t *cn, size_t depth,
    int map)
{
    if (map) {
        return ngx_http_ai_guard_canon_end_map(cn, depth);
    }

    return ngx_http_ai_guard_rbuf_add(cn->levels[depth].sink,
                                      (u_char *) "]", 1);
}


static int
ngx_http_ai_guard_canon_end_map(ngx_http_ai_guard_canon_t *cn, size_t depth)
{
    size_t                            i, n;
    ngx_http_ai_guard_rbuf_t         *sink;
    ngx_http_ai_guard_member_t       *m;
    ngx_http_ai_guard_canon_level_t  *lv;

    lv = &cn->levels[depth];
    sink = cn->levels[depth - 1].sink;
    n = lv->nmembers;

    if (n) {
        lv->members[n - 1].len = lv->buf.len - lv->members[n - 1].off;
    }

    for (i = 0; i < n; i++) {
        lv->members[i].key = lv->buf.data + lv->members[i].off;
    }

    if (n > 1) {
        qsort(lv->members, n, sizeof(ngx_http_ai_guard_member_t),
              ngx_http_ai_guard_canon_cmp);
    }

    if (ngx_http_ai_guard_rbuf_reserve(sink, lv->buf.len + 2) != 0) {
        return -1;
    }

    sink->data[sink->len++] = '{';

    for (i = 0; i < n; i++) {
        m = &lv->members[i];

        if (i) {
            sink->data[sink->len++] = ',';
        }

        memcpy(sink->data + sink->len, m->key + m->klen, m->len - m->klen);
        sink->len += m->len - m->klen;
    }

    sink->data[sink->len++] = '}';

    lv->buf.len = 0;
    lv->nmembers = 0;

    return 0;
}


/* bytewise by decoded key; equal keys keep their order */

static int
ngx_http_ai_guard_canon_cmp(const void *one, const void *two)
{
    int                                rc;
    size_t                             n;
    const ngx_http_ai_guard_member_t  *a, *b;

    a = one;
    b = two;
    n = a->klen < b->klen ? a->klen : b->klen;

    rc = n ? memcmp(a->key, b->key, n) : 0;

    if (rc == 0) {
        if (a->klen != b->klen) {
            rc = a->klen < b->klen ? -1 : 1;

        } else {
            rc = a->off < b->off ? -1 : (a->off > b->off);
        }
    }

    return rc;
}


int
ngx_http_ai_guard_rbuf_reserve(ngx_http_ai_guard_rbuf_t *b, size_t n)
{
    size_t   size;
    u_char  *p;

    if (b->size - b->len >= n) {
        return 0;
    }

    /*
     * Large enough at once for the usual prompt that spans two body
     * buffers: growing 1 KB to 2 KB on its second piece cost a realloc()
     * and a copy of the first, about 400 instructions; the first block
     * costs the same malloc() at either size.
     */

    size = b->size ? b->size : NGX_HTTP_AI_GUARD_RBUF_FIRST;

    while (size - b->len < n) {
        if (size > ((size_t) -1) / 2) {
            return -1;
        }

        size *= 2;
    }

    p = realloc(b->data, size);
    if (p == NULL) {
        return -1;
    }

    b->data = p;
    b->size = size;

    return 0;
}


/*
 * Minimal, deterministic escaping: '"', '\\' and the control characters,
 * the usual short forms where JSON has one, else \u00xx in lower case.
 * Runs of other bytes are found as the parser finds them and copied.
 */

static int
ngx_http_ai_guard_rbuf_escape(ngx_http_ai_guard_rbuf_t *b, const u_char *p,
    size_t len)
{
    u_char         c, *d;
    size_t         n;
    const u_char  *q, *end;

    end = p + len;

    if (ngx_http_ai_guard_rbuf_reserve(b, len + 2) != 0) {
        return -1;
    }

    b->data[b->len++] = '"';

    for ( ;; ) {

        for (q = p; q < end; q++) {
            q = ngx_http_ai_guard_json_skip(q, end);

            if (q == end) {
                break;
            }

            c = *q;

            if (c < 0x20 || c == '"' || c == '\\') {
                break;
            }
        }

        /* 6 for an escape, 1 for the closing quote */

        n = q - p;

        if (ngx_http_ai_guard_rbuf_reserve(b, n + 7) != 0) {
            return -1;
        }

        d = b->data + b->len;

        if (n) {
            memcpy(d, p, n);
            d += n;
        }

        if (q == end) {
            break;
        }

        d = ngx_http_ai_guard_json_escape_byte(d, *q);

        b->len = d - b->data;
        p = q + 1;
    }

    *d++ = '"';
    b->len = d - b->data;

    return 0;
}
