
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REWRITE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REWRITE_H_INCLUDED_


/*
 * The request-body rewriter: edits of a whole JSON body (RFC 8259) that
 * the request parser has accepted, re-emitted as valid JSON.  An edit
 * replaces the bytes [start, end) of the body with new bytes: a string
 * token re-escaped (_string_escape), or a member set (_member).  Pure:
 * no allocation, no nginx runtime; the caller sizes the buffers.
 *
 *     n = ngx_http_ai_guard_rewrite_decode(token, len, text);
 *     ... e[i] = { start, end, escaped, escaped_len } ...
 *     out_len = ngx_http_ai_guard_rewrite_len(len, e, ne);
 *     rc = ngx_http_ai_guard_rewrite_apply(body, len, e, ne, out);
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


/* the room _member() needs in its buffer, past the three names */
#define NGX_HTTP_AI_GUARD_REWRITE_MEMBER_ROOM  16


typedef struct {
    size_t                      start;  /* body offset: first byte replaced */
    size_t                      end;    /* one past the last */
    const u_char               *data;   /* what goes there */
    size_t                      len;
} ngx_http_ai_guard_rewrite_edit_t;


/*
 * A string token, quotes included, decoded into out (room: len bytes
 * suffice, decoding never grows a string): returns the decoded length,
 * or -1 when the token is not a JSON string.
 */
ssize_t ngx_http_ai_guard_rewrite_decode(const u_char *p, size_t len,
    u_char *out);

/* the length of text as a JSON string token, quotes included */
size_t ngx_http_ai_guard_rewrite_escape_len(const u_char *p, size_t len);

/*
 * text as a JSON string token at out (room: _escape_len() bytes): quote,
 * backslash and control characters escaped, the rest as it is.  Returns
 * the end of what it wrote.
 */
u_char *ngx_http_ai_guard_rewrite_escape(u_char *out, const u_char *p,
    size_t len);

/*
 * The body's length after the edits; they must be in order, inside the
 * body and not overlap (_apply() checks).
 */
size_t ngx_http_ai_guard_rewrite_len(size_t len,
    const ngx_http_ai_guard_rewrite_edit_t *e, size_t n);

/* the body with the edits at out; -1 when the edits are out of order */
int ngx_http_ai_guard_rewrite_apply(const u_char *body, size_t len,
    const ngx_http_ai_guard_rewrite_edit_t *e, size_t n, u_char *out);

/*
 * The edit that makes the top-level object's member "object" an object
 * whose member "member" is the JSON value "value" (written as is): the
 * member's value replaced when it is there, "member" added to the object
 * when it is not, the object added when it is absent or null.  The
 * edit's bytes are built in buf (room: the three names' lengths and
 * NGX_HTTP_AI_GUARD_REWRITE_MEMBER_ROOM).  Returns 0 with *e set, 1 when
 * the value is already the same bytes (no edit), -1 when the body is not
 * an object or "object" is there but neither an object nor null.  Names
 * are compared decoded: "stream\u005foptions" is "stream_options".
 */
int ngx_http_ai_guard_rewrite_member(const u_char *body, size_t len,
    const char *object, const char *member, const char *value, u_char *buf,
    ngx_http_ai_guard_rewrite_edit_t *e);


/*
 * Server-sent events' boundaries (a blank line ends an event; lines end
 * in LF, CR or CRLF), across buffers: the state a stream keeps.
 */
typedef struct {
    unsigned                    bol:1;      /* at a line's start */
    unsigned                    cr:1;       /* the last byte was CR */
    unsigned                    pending:1;  /* an event ended at a CR */
} ngx_http_ai_guard_sse_cut_t;

void ngx_http_ai_guard_sse_cut_init(ngx_http_ai_guard_sse_cut_t *c);

/*
 * The bytes of p that belong to the current event: up to its end (the
 * LF of a CRLF blank line included), with *ended set, or all of them,
 * with *ended clear.  An event that ended at a CR is reported at the next
 * byte (0 bytes, *ended set, when it is not an LF).
 */
size_t ngx_http_ai_guard_sse_cut(ngx_http_ai_guard_sse_cut_t *c,
    const u_char *p, size_t len, int *ended);

/*
 * 1 when the event (whole) is OpenAI's usage chunk: one "data:" line
 * whose JSON object has "choices": [] and a "usage" object.
 */
int ngx_http_ai_guard_sse_usage_event(const u_char *p, size_t len);


#endif /* _NGX_HTTP_AI_GUARD_REWRITE_H_INCLUDED_ */
