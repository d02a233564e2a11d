
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdio.h>
#include <string.h>
#include <ngx_http_ai_guard_json.h>
#include <ngx_http_ai_guard_rewrite.h>


/*
 * _member()'s names are short; a name of the body is compared decoded,
 * as the request parser reads it, so its token may be six times longer
 * (every character a \u escape) and still be one of them: a shorter
 * buffer would miss "\u0073\u0074..." and add a second member.
 */
#define NGX_HTTP_AI_GUARD_REWRITE_NAME  64
#define NGX_HTTP_AI_GUARD_REWRITE_TOKEN                                      \
    (6 * NGX_HTTP_AI_GUARD_REWRITE_NAME + 2)


static const u_char *ngx_http_ai_guard_sse_data(const u_char *p,
    const u_char *end, const u_char **last);
static const u_char *ngx_http_ai_guard_rewrite_ws(const u_char *p,
    const u_char *end);
static const u_char *ngx_http_ai_guard_rewrite_skip_string(const u_char *p,
    const u_char *end);
static const u_char *ngx_http_ai_guard_rewrite_skip(const u_char *p,
    const u_char *end);
static const u_char *ngx_http_ai_guard_rewrite_find(const u_char *p,
    const u_char *end, const char *name, const u_char **value);


ssize_t
ngx_http_ai_guard_rewrite_decode(const u_char *p, size_t len, u_char *out)
{
    u_char                           *o;
    const u_char                     *end;
    ngx_http_ai_guard_json_escape_t   esc;

    if (len < 2 || p[0] != '"' || p[len - 1] != '"') {
        return -1;
    }

    o = out;
    end = p + len - 1;
    p++;

    while (p < end) {

        if (*p < 0x20 || *p == '"') {
            return -1;
        }

        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }

        ngx_http_ai_guard_json_escape_init(&esc, 1);
        p = ngx_http_ai_guard_json_escape(&esc, p + 1, end);

        if (esc.rc != NGX_HTTP_AI_GUARD_JSON_DONE) {
            return -1;
        }

        o += ngx_http_ai_guard_json_utf8_encode(o, esc.cp);
    }

    return o - out;
}


size_t
ngx_http_ai_guard_rewrite_escape_len(const u_char *p, size_t len)
{
    size_t  n, i;

    n = len + 2;

    for (i = 0; i < len; i++) {
        switch (p[i]) {

        case '"':
        case '\\':
        case '\b':
        case '\f':
        case '\n':
        case '\r':
        case '\t':
            n++;
            break;

        default:
            if (p[i] < 0x20) {
                n += 5;
            }
        }
    }

    return n;
}


u_char *
ngx_http_ai_guard_rewrite_escape(u_char *out, const u_char *p, size_t len)
{
    u_char         c;
    const u_char  *end;

    *out++ = '"';

    for (end = p + len; p < end; p++) {
        c = *p;

        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = c;
            continue;
        }

        out = ngx_http_ai_guard_json_escape_byte(out, c);
    }

    *out++ = '"';

    return out;
}


size_t
ngx_http_ai_guard_rewrite_len(size_t len,
    const ngx_http_ai_guard_rewrite_edit_t *e, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        len = len - (e[i].end - e[i].start) + e[i].len;
    }

    return len;
}


int
ngx_http_ai_guard_rewrite_apply(const u_char *body, size_t len,
    const ngx_http_ai_guard_rewrite_edit_t *e, size_t n, u_char *out)
{
    size_t  i, at;

    at = 0;

    /* checked before a byte is written: out is sized by _len() */

    for (i = 0; i < n; i++) {
        if (e[i].start < at || e[i].end < e[i].start || e[i].end > len) {
            return -1;
        }

        at = e[i].end;
    }

    at = 0;

    for (i = 0; i < n; i++) {
        memcpy(out, body + at, e[i].start - at);
        out += e[i].start - at;

        if (e[i].len) {
            memcpy(out, e[i].data, e[i].len);
            out += e[i].len;
        }

        at = e[i].end;
    }

    memcpy(out, body + at, len - at);

    return 0;
}


int
ngx_http_ai_guard_rewrite_member(const u_char *body, size_t len,
    const char *object, const char *member, const char *value, u_char *buf,
    ngx_http_ai_guard_rewrite_edit_t *e)
{
    u_char        *b;
    size_t         vlen;
    const u_char  *p, *end, *v, *vend, *open, *mv, *mend;

    end = body + len;
    p = ngx_http_ai_guard_rewrite_ws(body, end);

    if (p == end || *p != '{') {
        return -1;
    }

    open = p;
    vend = ngx_http_ai_guard_rewrite_find(p, end, object, &v);

    if (vend == NULL) {
        return -1;
    }

    vlen = strlen(value);
    b = buf;

    if (v == NULL || (*v == 'n' && vend - v == 4)) {

        /* absent or null: the object with the one member */

        if (v == NULL) {
            b += sprintf((char *) b, "\"%s\":", object);
        }

        b += sprintf((char *) b, "{\"%s\":%s}", member, value);

        if (v == NULL) {
            p = ngx_http_ai_guard_rewrite_ws(open + 1, end);

            if (p < end && *p != '}') {
                *b++ = ',';
            }

            e->start = open + 1 - body;
            e->end = e->start;

        } else {
            e->start = v - body;
            e->end = vend - body;
        }

        e->data = buf;
        e->len = b - buf;

        return 0;
    }

    if (*v != '{') {
        return -1;
    }

    mend = ngx_http_ai_guard_rewrite_find(v, vend, member, &mv);

    if (mend == NULL) {
        return -1;
    }

    if (mv) {
        if ((size_t) (mend - mv) == vlen && memcmp(mv, value, vlen) == 0) {
            return 1;
        }

        e->start = mv - body;
        e->end = mend - body;
        e->data = (const u_char *) value;
        e->len = vlen;

        return 0;
    }

    b += sprintf((char *) b, "\"%s\":%s", member, value);

    p = ngx_http_ai_guard_rewrite_ws(v + 1, vend);

    if (p < vend && *p != '}') {
        *b++ = ',';
    }

    e->start = v + 1 - body;
    e->end = e->start;
    e->data = buf;
    e->len = b - buf;

    return 0;
}


void
ngx_http_ai_guard_sse_cut_init(ngx_http_ai_guard_sse_cut_t *c)
{
    c->bol = 1;
    c->cr = 0;
    c->pending = 0;
}


size_t
ngx_http_ai_guard_sse_cut(ngx_http_ai_guard_sse_cut_t *c, const u_char *p,
    size_t len, int *ended)
{
    u_char  ch;
    size_t  i;

    *ended = 0;

    if (c->pending && len) {
        c->pending = 0;
        *ended = 1;

        if (p[0] == '\n') {
            c->cr = 0;
            return 1;
        }

        return 0;
    }

    for (i = 0; i < len; i++) {
        ch = p[i];

        if (ch == '\n' && c->cr) {
            /* the LF of a CRLF: the line ended at the CR */
            c->cr = 0;
            continue;
        }

        if (ch != '\n' && ch != '\r') {
            c->cr = 0;
            c->bol = 0;
            continue;
        }

        c->cr = (ch == '\r');

        if (!c->bol) {
            c->bol = 1;
            continue;
        }

        /* a blank line: the event ends */

        if (ch == '\r') {
            if (i + 1 == len) {
                c->pending = 1;
                return len;
            }

            if (p[i + 1] == '\n') {
                i++;
            }
        }

        c->cr = 0;
        *ended = 1;

        return i + 1;
    }

    return len;
}


int
ngx_http_ai_guard_sse_usage_event(const u_char *p, size_t len)
{
    const u_char  *end, *v, *last, *data, *vend;

    end = p + len;
    data = NULL;
    last = NULL;
    vend = NULL;

    while (p < end) {
        v = ngx_http_ai_guard_sse_data(p, end, &last);

        if (v) {
            if (data) {
                /* more than one data line */
                return 0;
            }

            data = v;
            vend = last;
        }

        p = last;

        while (p < end && (*p == '\r' || *p == '\n')) {
            p++;
        }
    }

    if (data == NULL) {
        return 0;
    }

    data = ngx_http_ai_guard_rewrite_ws(data, vend);

    if (data == vend || *data != '{') {
        return 0;
    }

    if (ngx_http_ai_guard_rewrite_find(data, vend, "choices", &v) == NULL
        || v == NULL || *v != '[')
    {
        return 0;
    }

    v = ngx_http_ai_guard_rewrite_ws(v + 1, vend);

    if (v == vend || *v != ']') {
        return 0;
    }

    if (ngx_http_ai_guard_rewrite_find(data, vend, "usage", &v) == NULL
        || v == NULL || *v != '{')
    {
        return 0;
    }

    return 1;
}


/* a line: the value of a "data:" field, or NULL; *last: the line's end */

static const u_char *
ngx_http_ai_guard_sse_data(const u_char *p, const u_char *end,
    const u_char **last)
{
    const u_char  *q;

    for (q = p; q < end && *q != '\r' && *q != '\n'; q++) {
        /* void */
    }

    *last = q;

    if (q - p < 5 || memcmp(p, "data:", 5) != 0) {
        return NULL;
    }

    p += 5;

    if (p < q && *p == ' ') {
        p++;
    }

    return p;
}


static const u_char *
ngx_http_ai_guard_rewrite_ws(const u_char *p, const u_char *end)
{
    while (p < end
           && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    {
        p++;
    }

    return p;
}


/* from an opening quote to past the closing one; NULL: unterminated */

static const u_char *
ngx_http_ai_guard_rewrite_skip_string(const u_char *p, const u_char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }

        if (*p == '"') {
            return p + 1;
        }
    }

    return NULL;
}


/* past one value: a string, a container (brackets counted), a scalar */

static const u_char *
ngx_http_ai_guard_rewrite_skip(const u_char *p, const u_char *end)
{
    size_t  depth;

    if (p == end) {
        return NULL;
    }

    if (*p == '"') {
        return ngx_http_ai_guard_rewrite_skip_string(p, end);
    }

    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' '
               && *p != '\t' && *p != '\n' && *p != '\r')
        {
            p++;
        }

        return p;
    }

    depth = 0;

    while (p < end) {
        if (*p == '"') {
            p = ngx_http_ai_guard_rewrite_skip_string(p, end);
            if (p == NULL) {
                return NULL;
            }

            continue;
        }

        if (*p == '{' || *p == '[') {
            depth++;

        } else if (*p == '}' || *p == ']') {
            if (--depth == 0) {
                return p + 1;
            }
        }

        p++;
    }

    return NULL;
}


/*
 * The members of the object at p ("{"): *value is the first byte of the
 * value of the member "name", or NULL when there is none.  Returns the
 * end of that value, or of the object when there is none; NULL when the
 * object is not one.
 */

static const u_char *
ngx_http_ai_guard_rewrite_find(const u_char *p, const u_char *end,
    const char *name, const u_char **value)
{
    u_char         key[NGX_HTTP_AI_GUARD_REWRITE_TOKEN];
    size_t         nlen;
    ssize_t        klen;
    const u_char  *k, *v;

    nlen = strlen(name);
    *value = NULL;

    p = ngx_http_ai_guard_rewrite_ws(p + 1, end);

    if (p < end && *p == '}') {
        return p + 1;
    }

    while (p < end) {
        if (*p != '"') {
            return NULL;
        }

        k = p;
        p = ngx_http_ai_guard_rewrite_skip_string(p, end);

        if (p == NULL) {
            return NULL;
        }

        klen = -1;

        if ((size_t) (p - k) <= sizeof(key)) {
            klen = ngx_http_ai_guard_rewrite_decode(k, p - k, key);
        }

        p = ngx_http_ai_guard_rewrite_ws(p, end);

        if (p == end || *p != ':') {
            return NULL;
        }

        v = ngx_http_ai_guard_rewrite_ws(p + 1, end);
        p = ngx_http_ai_guard_rewrite_skip(v, end);

        if (p == NULL || p == v) {
            return NULL;
        }

        if (klen == (ssize_t) nlen && memcmp(key, name, nlen) == 0) {
            *value = v;
            return p;
        }

        p = ngx_http_ai_guard_rewrite_ws(p, end);

        if (p < end && *p == ',') {
            p = ngx_http_ai_guard_rewrite_ws(p + 1, end);
            continue;
        }

        if (p < end && *p == '}') {
            return p + 1;
        }

        return NULL;
    }

    return NULL;
}
