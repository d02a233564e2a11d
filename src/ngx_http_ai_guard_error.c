
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_error.h"


/*
 * Errors go out in OpenAI's shape, so every OpenAI SDK reads them:
 * {"error":{"message":"...","type":"...","param":null,"code":"..."}}
 */

static char *
ngx_http_ai_guard_error_type(ngx_uint_t status, char *code)
{
    switch (status) {

    case NGX_HTTP_TOO_MANY_REQUESTS:
        return (ngx_strcmp(code, "insufficient_quota") == 0)
               ? "insufficient_quota" : "requests";

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        return "server_error";

    default:
        return "invalid_request_error";
    }
}


void
ngx_http_ai_guard_set_verdict(ngx_http_ai_guard_verdict_t *v,
    ngx_uint_t status, char *code, char *message)
{
    ngx_memzero(v, sizeof(ngx_http_ai_guard_verdict_t));

    v->status = status;
    v->code = code;

    v->reason.data = (u_char *) code;
    v->reason.len = ngx_strlen(code);

    if (message) {
        v->message.data = (u_char *) message;
        v->message.len = ngx_strlen(message);
    }
}


/*
 * A message of the verdict's own, made in the request's pool: the limits,
 * models and headers that say what to do.  Never a key or prompt text;
 * a name from the request goes through ngx_http_ai_guard_printable().
 */

ngx_int_t ngx_cdecl
ngx_http_ai_guard_verdict_message(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_pnalloc(r->pool, NGX_HTTP_AI_GUARD_MESSAGE_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    va_start(args, fmt);
    v->message.len = ngx_vslprintf(p, p + NGX_HTTP_AI_GUARD_MESSAGE_LEN, fmt,
                                   args)
                     - p;
    va_end(args);

    v->message.data = p;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_guard_send_error(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v)
{
    u_char       *p;
    size_t        len;
    char         *type;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    static u_char  head[] = "{\"error\":{\"message\":\"";
    static u_char  mid1[] = "\",\"type\":\"";
    static u_char  mid2[] = "\",\"param\":";
    static u_char  mid3[] = ",\"code\":\"";
    static u_char  tail[] = "\"}}\n";

    /* no "100 Continue" for a body that is refused, as nginx's own pages */
    r->expect_tested = 1;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    type = ngx_http_ai_guard_error_type(v->status, v->code);

    len = sizeof(head) - 1
          + v->message.len
          + ngx_escape_json(NULL, v->message.data, v->message.len)
          + sizeof(mid1) - 1 + ngx_strlen(type)
          + sizeof(mid2) - 1
          + (v->param.len ? v->param.len + 2 : sizeof("null") - 1)
          + sizeof(mid3) - 1 + ngx_strlen(v->code)
          + sizeof(tail) - 1;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(b->last, head, sizeof(head) - 1);
    p = (u_char *) ngx_escape_json(p, v->message.data, v->message.len);
    p = ngx_cpymem(p, mid1, sizeof(mid1) - 1);
    p = ngx_cpymem(p, type, ngx_strlen(type));
    p = ngx_cpymem(p, mid2, sizeof(mid2) - 1);

    /* params are field names of ours, never request bytes */

    if (v->param.len) {
        *p++ = '"';
        p = ngx_cpymem(p, v->param.data, v->param.len);
        *p++ = '"';

    } else {
        p = ngx_cpymem(p, "null", sizeof("null") - 1);
    }

    p = ngx_cpymem(p, mid3, sizeof(mid3) - 1);
    p = ngx_cpymem(p, v->code, ngx_strlen(v->code));
    b->last = ngx_cpymem(p, tail, sizeof(tail) - 1);

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = v->status;
    r->headers_out.content_length_n = b->last - b->pos;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * One place turns a failed check into what the client sees: in enforce
 * mode the error, in monitor mode only a log line and the variables.
 */

ngx_int_t
ngx_http_ai_guard_decide(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v)
{
    u_char  *p, who[2 * NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD];

    /* the key itself is never logged: its id, or a digest prefix */

    if (ctx->key) {
        p = ngx_snprintf(who, sizeof(who), "key \"%V\"", &ctx->key->id);

    } else if (ctx->has_digest) {
        p = ngx_snprintf(who, sizeof(who), "key digest %*xs...",
                         sizeof(ctx->digest), ctx->digest);

    } else {
        p = ngx_cpymem(who, "no key", sizeof("no key") - 1);
    }

    if (ctx->verdict.status == 0) {
        ctx->verdict = *v;
    }

    /* the reason is worth a word when it says more than the code */

    if (v->reason.len != ngx_strlen(v->code)
        || ngx_strncmp(v->reason.data, v->code, v->reason.len) != 0)
    {
        p = ngx_snprintf(p, who + sizeof(who) - p, ", reason \"%V\"",
                         &v->reason);
    }

    if (alcf->mode == NGX_HTTP_AI_GUARD_MODE_MONITOR) {
        ngx_log_error(alcf->log_level, r->connection->log, 0,
                      "ai_guard: monitor: would reject: %s, %*s", v->code,
                      p - who, who);

        ctx->decision = NGX_HTTP_AI_GUARD_MONITOR;
        return NGX_DECLINED;
    }

    ngx_log_error(alcf->log_level, r->connection->log, 0,
                  "ai_guard: rejected: %s, %*s", v->code, p - who, who);

    ctx->decision = NGX_HTTP_AI_GUARD_REJECT;

    ngx_http_finalize_request(r, ngx_http_ai_guard_send_error(r, v));

    return NGX_DONE;
}
