
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * libFuzzer target for the request-body rewriter: parse(rewrite(x)) is
 * the intended document, for any x.
 *
 * 1. Member: for a body yajl reads as an object, the stream_options
 *    edit gives a body yajl reads as x with stream_options.include_usage
 *    true, and nothing else changed (yajl's tree as the reference).
 * 2. Spans: for a body the request parser accepts, each text it hands
 *    over is replaced at its span by a transform of it that needs
 *    escaping (quotes, backslashes, controls, a "[EMAIL_1]"); the request
 *    parser reads the result and hands over the transformed texts, in
 *    order, and yajl reads it too.
 * 3. Events: a stream cut into events whole and split at a point the
 *    first byte picks gives the same event ends; each event is judged a
 *    usage chunk or not without reading past it.
 */

#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_ai_guard_request.h"
#include "ngx_http_ai_guard_rewrite.h"


#define NGX_HTTP_AI_GUARD_FUZZ_TEXTS  64


typedef struct {
    size_t                            n;
    int                               overflow;
    ngx_http_ai_guard_rewrite_edit_t  e[NGX_HTTP_AI_GUARD_FUZZ_TEXTS];
    /* the transformed decoded texts, in order */
    u_char                           *want[NGX_HTTP_AI_GUARD_FUZZ_TEXTS];
    size_t                            want_len[NGX_HTTP_AI_GUARD_FUZZ_TEXTS];
    size_t                            checked;
    int                               bad;
} ngx_http_ai_guard_fuzz_spans_t;


static int ngx_http_ai_guard_fuzz_equal(yajl_val a, yajl_val b);
static yajl_val ngx_http_ai_guard_fuzz_parse(const u_char *p, size_t len);
static void ngx_http_ai_guard_fuzz_member(const u_char *p, size_t len);
static void ngx_http_ai_guard_fuzz_target(yajl_val x, yajl_val o);
static size_t ngx_http_ai_guard_fuzz_first(yajl_val obj, const char *key);
static int ngx_http_ai_guard_fuzz_collect(void *data,
    const ngx_http_ai_guard_text_t *t);
static int ngx_http_ai_guard_fuzz_check(void *data,
    const ngx_http_ai_guard_text_t *t);
static void ngx_http_ai_guard_fuzz_spans(const u_char *p, size_t len);
static size_t ngx_http_ai_guard_fuzz_cuts(const u_char *p, size_t len,
    size_t k, size_t *ends, size_t max);
static void ngx_http_ai_guard_fuzz_events(const u_char *p, size_t len);


static int
ngx_http_ai_guard_fuzz_equal(yajl_val a, yajl_val b)
{
    size_t  i;

    if (a->type != b->type) {
        return 0;
    }

    switch (a->type) {

    case yajl_t_string:
        return strcmp(a->u.string, b->u.string) == 0;

    case yajl_t_number:
        return strcmp(a->u.number.r, b->u.number.r) == 0;

    case yajl_t_object:
        if (a->u.object.len != b->u.object.len) {
            return 0;
        }

        for (i = 0; i < a->u.object.len; i++) {
            if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0
                || !ngx_http_ai_guard_fuzz_equal(a->u.object.values[i],
                                                 b->u.object.values[i]))
            {
                return 0;
            }
        }

        return 1;

    case yajl_t_array:
        if (a->u.array.len != b->u.array.len) {
            return 0;
        }

        for (i = 0; i < a->u.array.len; i++) {
            if (!ngx_http_ai_guard_fuzz_equal(a->u.array.values[i],
                                              b->u.array.values[i]))
            {
                return 0;
            }
        }

        return 1;

    default:
        return 1;
    }
}


static yajl_val
ngx_http_ai_guard_fuzz_parse(const u_char *p, size_t len)
{
    char      *s;
    yajl_val   v;

    s = malloc(len + 1);
    if (s == NULL) {
        return NULL;
    }

    memcpy(s, p, len);
    s[len] = '\0';

    v = (memchr(p, '\0', len) == NULL) ? yajl_tree_parse(s, NULL, 0) : NULL;

    free(s);

    return v;
}


/* the index of the first member named key; len when there is none */

static size_t
ngx_http_ai_guard_fuzz_first(yajl_val obj, const char *key)
{
    size_t  i;

    for (i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            break;
        }
    }

    return i;
}


/* o is x's stream_options (an object) with include_usage true */

static void
ngx_http_ai_guard_fuzz_target(yajl_val x, yajl_val o)
{
    size_t  i, m, n;

    if (!YAJL_IS_OBJECT(o)) {
        abort();
    }

    if (x == NULL || YAJL_IS_NULL(x)) {
        if (o->u.object.len != 1
            || strcmp(o->u.object.keys[0], "include_usage") != 0
            || !YAJL_IS_TRUE(o->u.object.values[0]))
        {
            abort();
        }

        return;
    }

    m = ngx_http_ai_guard_fuzz_first(x, "include_usage");
    n = x->u.object.len;

    if (m < n) {
        if (o->u.object.len != n || !YAJL_IS_TRUE(o->u.object.values[m])) {
            abort();
        }

        for (i = 0; i < n; i++) {
            if (i != m
                && (strcmp(o->u.object.keys[i], x->u.object.keys[i]) != 0
                    || !ngx_http_ai_guard_fuzz_equal(o->u.object.values[i],
                                                     x->u.object.values[i])))
            {
                abort();
            }
        }

        return;
    }

    if (o->u.object.len != n + 1
        || strcmp(o->u.object.keys[0], "include_usage") != 0
        || !YAJL_IS_TRUE(o->u.object.values[0]))
    {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (strcmp(o->u.object.keys[i + 1], x->u.object.keys[i]) != 0
            || !ngx_http_ai_guard_fuzz_equal(o->u.object.values[i + 1],
                                             x->u.object.values[i]))
        {
            abort();
        }
    }
}


static void
ngx_http_ai_guard_fuzz_member(const u_char *p, size_t len)
{
    u_char                            buf[64], *out;
    int                               rc;
    size_t                            i, t, n, olen;
    yajl_val                          x, o, xt;
    ngx_http_ai_guard_rewrite_edit_t  e;

    /*
     * yajl's tree parser takes comments and form feeds as whitespace;
     * RFC 8259, the rewriter and the request parser do not
     */

    if (memchr(p, '/', len) || memchr(p, '\f', len) || memchr(p, '\v', len))
    {
        return;
    }

    x = ngx_http_ai_guard_fuzz_parse(p, len);

    if (x == NULL) {
        return;
    }

    if (!YAJL_IS_OBJECT(x)) {
        yajl_tree_free(x);
        return;
    }

    rc = ngx_http_ai_guard_rewrite_member(p, len, "stream_options",
                                          "include_usage", "true", buf, &e);

    n = x->u.object.len;
    t = ngx_http_ai_guard_fuzz_first(x, "stream_options");
    xt = (t < n) ? x->u.object.values[t] : NULL;

    if (rc == -1) {
        /* refused only where the object cannot take the member */
        if (xt == NULL || YAJL_IS_OBJECT(xt) || YAJL_IS_NULL(xt)) {
            abort();
        }

        yajl_tree_free(x);
        return;
    }

    if (rc == 1) {
        if (xt == NULL || !YAJL_IS_OBJECT(xt)
            || ngx_http_ai_guard_fuzz_first(xt, "include_usage")
               == xt->u.object.len
            || !YAJL_IS_TRUE(xt->u.object.values[
                   ngx_http_ai_guard_fuzz_first(xt, "include_usage")]))
        {
            abort();
        }

        yajl_tree_free(x);
        return;
    }

    olen = ngx_http_ai_guard_rewrite_len(len, &e, 1);
    out = malloc(olen);
    if (out == NULL || ngx_http_ai_guard_rewrite_apply(p, len, &e, 1, out))
    {
        abort();
    }

    o = ngx_http_ai_guard_fuzz_parse(out, olen);

    if (o == NULL || !YAJL_IS_OBJECT(o)) {
        abort();
    }

    if (xt == NULL) {
        /* added first, the rest as it was */

        if (o->u.object.len != n + 1
            || strcmp(o->u.object.keys[0], "stream_options") != 0)
        {
            abort();
        }

        ngx_http_ai_guard_fuzz_target(NULL, o->u.object.values[0]);

        for (i = 0; i < n; i++) {
            if (strcmp(o->u.object.keys[i + 1], x->u.object.keys[i]) != 0
                || !ngx_http_ai_guard_fuzz_equal(o->u.object.values[i + 1],
                                                 x->u.object.values[i]))
            {
                abort();
            }
        }

    } else {
        if (o->u.object.len != n) {
            abort();
        }

        for (i = 0; i < n; i++) {
            if (strcmp(o->u.object.keys[i], x->u.object.keys[i]) != 0) {
                abort();
            }

            if (i == t) {
                ngx_http_ai_guard_fuzz_target(xt, o->u.object.values[i]);

            } else if (!ngx_http_ai_guard_fuzz_equal(o->u.object.values[i],
                                                     x->u.object.values[i]))
            {
                abort();
            }
        }
    }

    yajl_tree_free(o);
    yajl_tree_free(x);
    free(out);
}


/* a transform that needs every kind of escape, and a placeholder */

static int
ngx_http_ai_guard_fuzz_collect(void *data, const ngx_http_ai_guard_text_t *t)
{
    u_char                          *w, *esc;
    size_t                           i, n;
    ngx_http_ai_guard_fuzz_spans_t  *sp = data;

    if (sp->n == NGX_HTTP_AI_GUARD_FUZZ_TEXTS) {
        sp->overflow = 1;
        return 0;
    }

    w = malloc(t->len * 9 + 16);
    if (w == NULL) {
        abort();
    }

    n = 0;

    for (i = 0; i < t->len; i++) {
        if (t->data[i] == '@') {
            memcpy(w + n, "[EMAIL_1]", 9);
            n += 9;
            continue;
        }

        if (t->data[i] == 'a') {
            memcpy(w + n, "\"\\\n\x01", 4);
            n += 4;
            continue;
        }

        w[n++] = t->data[i];
    }

    esc = malloc(ngx_http_ai_guard_rewrite_escape_len(w, n));
    if (esc == NULL) {
        abort();
    }

    sp->want[sp->n] = w;
    sp->want_len[sp->n] = n;
    sp->e[sp->n].start = t->start;
    sp->e[sp->n].end = t->end;
    sp->e[sp->n].data = esc;
    sp->e[sp->n].len = ngx_http_ai_guard_rewrite_escape(esc, w, n) - esc;
    sp->n++;

    return 0;
}


static int
ngx_http_ai_guard_fuzz_check(void *data, const ngx_http_ai_guard_text_t *t)
{
    ngx_http_ai_guard_fuzz_spans_t  *sp = data;

    if (sp->checked >= sp->n
        || t->len != sp->want_len[sp->checked]
        || memcmp(t->data, sp->want[sp->checked], t->len) != 0)
    {
        sp->bad = 1;
    }

    sp->checked++;

    return 0;
}


static void
ngx_http_ai_guard_fuzz_spans(const u_char *p, size_t len)
{
    u_char                              *out;
    size_t                               i, olen;
    yajl_val                             o;
    ngx_http_ai_guard_request_t          req;
    ngx_http_ai_guard_fuzz_spans_t       sp;
    ngx_http_ai_guard_request_parser_t  *rp;

    memset(&sp, 0, sizeof(sp));

    rp = ngx_http_ai_guard_request_create(0, ngx_http_ai_guard_fuzz_collect,
                                          &sp);
    if (rp == NULL) {
        return;
    }

    (void) ngx_http_ai_guard_request_feed(rp, p, len);

    if (ngx_http_ai_guard_request_finish(rp, &req)
        != NGX_HTTP_AI_GUARD_REQ_OK
        || sp.overflow)
    {
        goto done;
    }

    ngx_http_ai_guard_request_free(rp);
    rp = NULL;

    olen = ngx_http_ai_guard_rewrite_len(len, sp.e, sp.n);
    out = malloc(olen + 1);
    if (out == NULL || ngx_http_ai_guard_rewrite_apply(p, len, sp.e, sp.n, out))
    {
        abort();
    }

    rp = ngx_http_ai_guard_request_create(0, ngx_http_ai_guard_fuzz_check,
                                          &sp);
    if (rp == NULL) {
        free(out);
        goto done;
    }

    (void) ngx_http_ai_guard_request_feed(rp, out, olen);

    if (ngx_http_ai_guard_request_finish(rp, &req)
        != NGX_HTTP_AI_GUARD_REQ_OK
        || sp.bad || sp.checked != sp.n)
    {
        abort();
    }

    o = ngx_http_ai_guard_fuzz_parse(out, olen);

    if (o == NULL && memchr(out, '\0', olen) == NULL) {
        abort();
    }

    if (o) {
        yajl_tree_free(o);
    }

    free(out);

done:

    ngx_http_ai_guard_request_free(rp);

    for (i = 0; i < sp.n; i++) {
        free(sp.want[i]);
        free((void *) sp.e[i].data);
    }
}


/* the ends of the events of p, fed in two pieces split at k */

static size_t
ngx_http_ai_guard_fuzz_cuts(const u_char *p, size_t len, size_t k,
    size_t *ends, size_t max)
{
    int                           ended;
    size_t                        pos, to, n;
    ngx_http_ai_guard_sse_cut_t   c;

    ngx_http_ai_guard_sse_cut_init(&c);
    n = 0;

    for (pos = 0, to = k; pos < len; to = len) {
        while (pos < to) {
            pos += ngx_http_ai_guard_sse_cut(&c, p + pos, to - pos, &ended);

            if (ended && n < max) {
                ends[n++] = pos;
            }
        }
    }

    return n;
}


static void
ngx_http_ai_guard_fuzz_events(const u_char *p, size_t len)
{
    size_t  i, n, m, from, whole[64], split[64];

    if (len < 2) {
        return;
    }

    n = ngx_http_ai_guard_fuzz_cuts(p + 1, len - 1, len - 1, whole, 64);
    m = ngx_http_ai_guard_fuzz_cuts(p + 1, len - 1, p[0] % len, split, 64);

    if (n != m || memcmp(whole, split, n * sizeof(size_t)) != 0) {
        abort();
    }

    for (i = 0, from = 0; i < n; from = whole[i++]) {
        (void) ngx_http_ai_guard_sse_usage_event(p + 1 + from,
                                                 whole[i] - from);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_http_ai_guard_fuzz_member(data, size);
    ngx_http_ai_guard_fuzz_spans(data, size);
    ngx_http_ai_guard_fuzz_events(data, size);

    return 0;
}
