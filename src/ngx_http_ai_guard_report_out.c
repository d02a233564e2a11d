
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_report_out.h"


/* the size of an output buffer; a longer piece gets one of its own */
#define NGX_HTTP_AI_GUARD_OUT_SIZE       16384


u_char *
ngx_http_ai_guard_out_reserve(ngx_http_ai_guard_out_t *o, size_t n)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (o->failed) {
        return NULL;
    }

    b = o->buf;

    if (b && (size_t) (b->end - b->last) >= n) {
        return b->last;
    }

    b = ngx_create_temp_buf(o->pool, ngx_max(n, NGX_HTTP_AI_GUARD_OUT_SIZE));
    if (b == NULL) {
        o->failed = 1;
        return NULL;
    }

    cl = ngx_alloc_chain_link(o->pool);
    if (cl == NULL) {
        o->failed = 1;
        return NULL;
    }

    cl->buf = b;
    cl->next = NULL;

    *o->last = cl;
    o->last = &cl->next;
    o->buf = b;

    return b->last;
}


void
ngx_http_ai_guard_out_text(ngx_http_ai_guard_out_t *o, char *text)
{
    u_char  *p;
    size_t   len;

    len = ngx_strlen(text);

    p = ngx_http_ai_guard_out_reserve(o, len);
    if (p == NULL) {
        return;
    }

    o->buf->last = ngx_cpymem(p, text, len);
}


/* "max" bounds what the format may write: ngx_vslprintf() stops there */

void
ngx_http_ai_guard_out_printf(ngx_http_ai_guard_out_t *o, size_t max,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_http_ai_guard_out_reserve(o, max);
    if (p == NULL) {
        return;
    }

    va_start(args, fmt);
    o->buf->last = ngx_vslprintf(p, p + max, fmt, args);
    va_end(args);
}


void
ngx_http_ai_guard_out_json(ngx_http_ai_guard_out_t *o, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_http_ai_guard_out_reserve(o, s->len + 2
                                      + ngx_escape_json(NULL, s->data,
                                                        s->len));
    if (p == NULL) {
        return;
    }

    *p++ = '"';
    p = (u_char *) ngx_escape_json(p, s->data, s->len);
    *p++ = '"';

    o->buf->last = p;
}


/*
 * RFC 4180: a field with a comma, a quote or a line break is quoted.  A
 * field a spreadsheet would read as a formula (model names come from
 * clients) gets a leading quote and is quoted, as OWASP recommends.
 */

void
ngx_http_ai_guard_out_csv(ngx_http_ai_guard_out_t *o, ngx_str_t *s)
{
    u_char      *p;
    ngx_uint_t   i, quote, formula;

    formula = (s->len
               && (s->data[0] == '=' || s->data[0] == '+'
                   || s->data[0] == '-' || s->data[0] == '@'
                   || s->data[0] == '\t' || s->data[0] == '\r'));

    quote = formula;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] == ',' || s->data[i] == '"' || s->data[i] == '\r'
            || s->data[i] == '\n')
        {
            quote = 1;
            break;
        }
    }

    p = ngx_http_ai_guard_out_reserve(o, 2 * s->len + 3);
    if (p == NULL) {
        return;
    }

    if (quote) {
        *p++ = '"';
    }

    if (formula) {
        *p++ = '\'';
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] == '"') {
            *p++ = '"';
        }

        *p++ = s->data[i];
    }

    if (quote) {
        *p++ = '"';
    }

    o->buf->last = p;
}


/* name="value", the value escaped as the text format asks: \\ \" \n */

void
ngx_http_ai_guard_out_label(ngx_http_ai_guard_out_t *o, char *name,
    u_char *data, size_t len)
{
    u_char  *p;
    size_t   i, n;

    n = ngx_strlen(name);

    p = ngx_http_ai_guard_out_reserve(o, n + 3 + 2 * len);
    if (p == NULL) {
        return;
    }

    p = ngx_cpymem(p, name, n);

    *p++ = '=';
    *p++ = '"';

    for (i = 0; i < len; i++) {
        switch (data[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = data[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = data[i];
        }
    }

    *p++ = '"';

    o->buf->last = p;
}


ngx_int_t
ngx_http_ai_guard_out_send(ngx_http_request_t *r, ngx_http_ai_guard_out_t *o,
    char *type)
{
    off_t         len;
    ngx_int_t     rc;
    ngx_chain_t  *cl;

    len = 0;

    for (cl = o->out; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    if (r->headers_out.status == 0) {
        r->headers_out.status = NGX_HTTP_OK;
    }

    r->headers_out.content_length_n = len;

    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (o->out == NULL) {
        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    o->buf->last_buf = (r == r->main) ? 1 : 0;
    o->buf->last_in_chain = 1;

    return ngx_http_output_filter(r, o->out);
}
