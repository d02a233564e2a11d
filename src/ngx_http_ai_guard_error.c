
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_error.h"


static char *ngx_http_ai_guard_error_type(ngx_uint_t status, char *code);
static char *ngx_http_ai_guard_anthropic_type(ngx_uint_t status);
static ngx_buf_t *ngx_http_ai_guard_error_buf(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v);
static ngx_buf_t *ngx_http_ai_guard_openai_body(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v);
static ngx_buf_t *ngx_http_ai_guard_anthropic_body(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v);


/*
 * The API the client speaks, so that its SDK reads our errors as its
 * provider's.  "auto": Anthropic's SDKs send anthropic-version on every
 * request, and its API's paths are /v1/messages and the ones under it
 * (count_tokens, batches); OpenAI's Assistants messages are under
 * /v1/threads/, so never match.  Anything else is OpenAI's.
 */

ngx_uint_t
ngx_http_ai_guard_dialect(ngx_http_request_t *r)
{
    u_char                        *p, *last;
    ngx_uint_t                     i;
    ngx_list_part_t               *part;
    ngx_table_elt_t               *h;
    ngx_http_ai_guard_loc_conf_t  *alcf;

    static u_char  path[] = "/v1/messages";

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_module);

    if (alcf->dialect != NGX_HTTP_AI_GUARD_DIALECT_AUTO) {
        return alcf->dialect;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("anthropic-version") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "anthropic-version",
                               h[i].key.len)
               == 0)
        {
            return NGX_HTTP_AI_GUARD_DIALECT_ANTHROPIC;
        }
    }

    p = r->uri.data;
    last = r->uri.data + r->uri.len;

    /*
     * The path starts with its '/': trying it at each slash costs a few
     * comparisons a segment, where ngx_strlcasestrn() lowers every byte.
     */

    for ( ;; ) {
        p = ngx_strlchr(p, last, '/');

        if (p == NULL || (size_t) (last - p) < sizeof(path) - 1) {
            break;
        }

        if (ngx_strncasecmp(p, path, sizeof(path) - 1) == 0
            && (p + sizeof(path) - 1 == last
                || p[sizeof(path) - 1] == '/'))
        {
            return NGX_HTTP_AI_GUARD_DIALECT_ANTHROPIC;
        }

        p++;
    }

    return NGX_HTTP_AI_GUARD_DIALECT_OPENAI;
}


/*
 * OpenAI's shape, so every OpenAI SDK reads them:
 * {"error":{"message":"...","type":"...","param":null,"code":"..."}}
 */

static char *
ngx_http_ai_guard_error_type(ngx_uint_t status, char *code)
{
    switch (status) {

    case NGX_HTTP_TOO_MANY_REQUESTS:
        return (ngx_strcmp(code, "insufficient_quota") == 0)
               ? "insufficient_quota" : "requests";

    default:
        return (status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
               ? "server_error" : "invalid_request_error";
    }
}


/*
 * Anthropic's types, by status as its API documents them (docs/errors.md
 * has the table): its SDK raises its class by the status and gives the
 * type as e.type.  Our 503 keeps its status, the SDK retries any 5xx.
 */

static char *
ngx_http_ai_guard_anthropic_type(ngx_uint_t status)
{
    switch (status) {

    case NGX_HTTP_UNAUTHORIZED:
        return "authentication_error";

    case NGX_HTTP_FORBIDDEN:
        return "permission_error";

    case NGX_HTTP_NOT_FOUND:
        return "not_found_error";

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        return "request_too_large";

    case NGX_HTTP_TOO_MANY_REQUESTS:
        return "rate_limit_error";

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        return "overloaded_error";

    case NGX_HTTP_GATEWAY_TIME_OUT:
        return "timeout_error";

    default:
        return (status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
               ? "api_error" : "invalid_request_error";
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
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    /* no "100 Continue" for a body that is refused, as nginx's own pages */
    r->expect_tested = 1;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    b = ngx_http_ai_guard_error_buf(r, v);
    if (b == NULL) {
        return NGX_ERROR;
    }

    r->headers_out.status = v->status;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * nginx's own page of a 502, 503 or 504 (the upstream refused, reset or
 * did not answer in time; limit_req) is HTML, which no SDK reads: a
 * guarded location answers it in the client's dialect, so the SDK raises
 * its usual class and retries as it would against the provider.  The
 * header filter calls this; the body filter sends ctx->page in place of
 * the page's bytes.
 */

ngx_int_t
ngx_http_ai_guard_gateway_page(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t **ctxp)
{
    ngx_http_ai_guard_ctx_t       *ctx;
    ngx_http_ai_guard_verdict_t    v;
    ngx_http_ai_guard_loc_conf_t  *alcf;

    ctx = *ctxp;

    if (r->err_status < NGX_HTTP_BAD_GATEWAY
        || r->err_status > NGX_HTTP_GATEWAY_TIME_OUT
        || (ctx && ctx->page))
    {
        return NGX_DECLINED;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_module);

    if (!alcf->enable) {
        return NGX_DECLINED;
    }

    /*
     * The page must be nginx's own, of the location that made it: an
     * error_page leads elsewhere with an internal redirect, which clears
     * the module's context (the guard's checks ran before it), or which
     * counts in r->uri_changes (they did not run).  What that location
     * answers, guarded or not, is the operator's.
     */

    if (ctx) {
        if (ngx_http_get_module_ctx(r, ngx_http_ai_guard_module) == NULL) {
            return NGX_DECLINED;
        }

    } else {
        if (r->uri_changes != NGX_HTTP_MAX_URI_CHANGES + 1) {
            return NGX_DECLINED;
        }

        /*
         * limit_req and limit_conn refuse before the guard's checks made
         * a context: one for the page alone, finished already, so that
         * the log phase neither bills nor counts the request
         */

        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ctx->request = r;
        ctx->finished = 1;

        *ctxp = ctx;
    }

    switch (r->err_status) {

    case NGX_HTTP_BAD_GATEWAY:
        ngx_http_ai_guard_set_verdict(&v, r->err_status,
                                      "upstream_unavailable",
                                      "The upstream server could not be "
                                      "reached or sent an invalid response; "
                                      "please retry later.");
        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        ngx_http_ai_guard_set_verdict(&v, r->err_status,
                                      "service_unavailable",
                                      "The service is busy or unavailable; "
                                      "please retry later.");
        break;

    default: /* NGX_HTTP_GATEWAY_TIME_OUT */
        ngx_http_ai_guard_set_verdict(&v, r->err_status, "upstream_timeout",
                                      "The upstream server did not answer "
                                      "in time; please retry later.");
        break;
    }

    ctx->page = ngx_http_ai_guard_error_buf(r, &v);

    return (ctx->page == NULL) ? NGX_ERROR : NGX_OK;
}


/* the body in the request's dialect, and the headers that go with it */

static ngx_buf_t *
ngx_http_ai_guard_error_buf(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v)
{
    ngx_buf_t  *b;

    if (ngx_http_ai_guard_dialect(r) == NGX_HTTP_AI_GUARD_DIALECT_ANTHROPIC) {
        b = ngx_http_ai_guard_anthropic_body(r, v);

    } else {
        b = ngx_http_ai_guard_openai_body(r, v);
    }

    if (b == NULL) {
        return NULL;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.content_length_n = b->last - b->pos;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    return b;
}


static ngx_buf_t *
ngx_http_ai_guard_openai_body(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v)
{
    u_char     *p;
    size_t      len;
    char       *type;
    ngx_buf_t  *b;

    static u_char  head[] = "{\"error\":{\"message\":\"";
    static u_char  mid1[] = "\",\"type\":\"";
    static u_char  mid2[] = "\",\"param\":";
    static u_char  mid3[] = ",\"code\":\"";
    static u_char  tail[] = "\"}}\n";

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
        return NULL;
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

    return b;
}


/*
 * Anthropic's shape, with the id of the request in the body and in a
 * request-id header, as its API sends them:
 * {"type":"error","error":{"type":"...","message":"..."},
 *  "request_id":"req_..."}
 */

static ngx_buf_t *
ngx_http_ai_guard_anthropic_body(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v)
{
    u_char           *p, *id, *rid;
    size_t            len;
    char             *type;
    ngx_buf_t        *b;
    ngx_table_elt_t  *h;

    static u_char  head[] = "{\"type\":\"error\",\"error\":{\"type\":\"";
    static u_char  mid1[] = "\",\"message\":\"";
    static u_char  mid2[] = "\"},\"request_id\":";
    static u_char  tail[] = "}\n";

    type = ngx_http_ai_guard_anthropic_type(v->status);

    /* $request_id, so that the access log can name it too */

    id = NULL;
    rid = ngx_http_ai_guard_request_id(r);

    if (rid) {
        id = ngx_pnalloc(r->pool, sizeof("req_") - 1
                                  + NGX_HTTP_AI_GUARD_ID_LEN);
        if (id == NULL) {
            return NULL;
        }

        ngx_memcpy(ngx_cpymem(id, "req_", sizeof("req_") - 1), rid,
                   NGX_HTTP_AI_GUARD_ID_LEN);

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NULL;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "request-id");
        h->value.data = id;
        h->value.len = sizeof("req_") - 1 + NGX_HTTP_AI_GUARD_ID_LEN;
    }

    len = sizeof(head) - 1 + ngx_strlen(type)
          + sizeof(mid1) - 1
          + v->message.len
          + ngx_escape_json(NULL, v->message.data, v->message.len)
          + sizeof(mid2) - 1
          + (id ? sizeof("\"req_\"") - 1 + NGX_HTTP_AI_GUARD_ID_LEN
                : sizeof("null") - 1)
          + sizeof(tail) - 1;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NULL;
    }

    p = ngx_cpymem(b->last, head, sizeof(head) - 1);
    p = ngx_cpymem(p, type, ngx_strlen(type));
    p = ngx_cpymem(p, mid1, sizeof(mid1) - 1);
    p = (u_char *) ngx_escape_json(p, v->message.data, v->message.len);
    p = ngx_cpymem(p, mid2, sizeof(mid2) - 1);

    if (id) {
        *p++ = '"';
        p = ngx_cpymem(p, id, sizeof("req_") - 1 + NGX_HTTP_AI_GUARD_ID_LEN);
        *p++ = '"';

    } else {
        p = ngx_cpymem(p, "null", sizeof("null") - 1);
    }

    b->last = ngx_cpymem(p, tail, sizeof(tail) - 1);

    return b;
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
