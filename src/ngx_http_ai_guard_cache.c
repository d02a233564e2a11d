
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_ctx.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_cache.h"

#include <openssl/rand.h>


/* tenant, method, host, URI, arguments, canonical body */
#define NGX_HTTP_AI_GUARD_CACHE_PARTS  6

/* "nocache-" and 128 bits in hex, as long as $request_id */
#define NGX_HTTP_AI_GUARD_NOCACHE_LEN                                        \
    (sizeof("nocache-") - 1 + NGX_HTTP_AI_GUARD_ID_LEN)


static void ngx_http_ai_guard_nocache_random(ngx_http_request_t *r,
    u_char *p);


/*
 * SHA-256 over the parts of the request the upstream's answer depends on,
 * each as "<length>:<bytes>": no tenant, URI or argument can be made to
 * end where another part begins, so two requests share a key only when
 * every part is the same.  The key is computed after the checks of the
 * body; whether it is used is decided when it is read, once the request's
 * fate is known.
 */

ngx_int_t
ngx_http_ai_guard_cache_key(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    u_char                    *p, *last;
    u_char                     lens[NGX_HTTP_AI_GUARD_CACHE_PARTS
                                    * (NGX_SIZE_T_LEN + 1)];
    u_char                     digest[NGX_HTTP_AI_GUARD_DIGEST_LEN];
    ngx_str_t                  data[NGX_HTTP_AI_GUARD_CACHE_PARTS];
    ngx_str_t                  parts[2 * NGX_HTTP_AI_GUARD_CACHE_PARTS];
    ngx_uint_t                 i;
    ngx_http_core_srv_conf_t  *cscf;

    if (alcf->cache_key == NGX_HTTP_AI_GUARD_CACHE_OFF
        || ctx->key == NULL
        || ctx->parser == NULL
        || ctx->req.stream == 1
        || (!ctx->req.deterministic
            && alcf->cache_key != NGX_HTTP_AI_GUARD_CACHE_ALWAYS))
    {
        return NGX_OK;
    }

    /* the parser has the canonical form only after a successful finish */

    if (ngx_http_ai_guard_request_canonical(ctx->parser, &data[5].data,
                                            &data[5].len)
        != NGX_HTTP_AI_GUARD_REQ_OK)
    {
        return NGX_OK;
    }

    data[0].data = ctx->key->tenant.data;
    data[0].len = ctx->key->tenant.len;

    data[1] = r->method_name;

    /* the host as $host reads it: a server may proxy_pass by name */

    if (r->headers_in.server.len) {
        data[2] = r->headers_in.server;

    } else {
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
        data[2] = cscf->server_name;
    }

    data[3] = r->uri;
    data[4] = r->args;

    p = lens;

    for (i = 0; i < NGX_HTTP_AI_GUARD_CACHE_PARTS; i++) {
        last = ngx_sprintf(p, "%uz:", data[i].len);

        parts[2 * i].data = p;
        parts[2 * i].len = last - p;
        parts[2 * i + 1] = data[i];

        p = last;
    }

    if (ngx_http_ai_guard_digest(parts, 2 * NGX_HTTP_AI_GUARD_CACHE_PARTS,
                                 digest)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_hex_dump(ctx->cache_key, digest, sizeof(digest));
    ctx->has_cache_key = 1;

    return NGX_OK;
}


/*
 * A request is cacheable only when ai_guard computed its key and let it
 * on without objection.  A subrequest (a mirror, an auth_request) is not:
 * it sends something else to another place, under the main request's
 * context.
 */

ngx_http_ai_guard_ctx_t *
ngx_http_ai_guard_cacheable(ngx_http_request_t *r)
{
    ngx_http_ai_guard_ctx_t  *ctx;

    if (r != r->main) {
        return NULL;
    }

    ctx = ngx_http_ai_guard_get_ctx(r);

    if (ctx == NULL
        || !ctx->has_cache_key
        || ctx->decision != NGX_HTTP_AI_GUARD_ALLOW)
    {
        return NULL;
    }

    return ctx;
}


/*
 * The value of $ai_guard_cache_key: the key of a cacheable request, else
 * a key no other request has, so that a cache keyed on the variable can
 * never answer one request with another's response, whatever the rest of
 * the configuration says.
 */

ngx_int_t
ngx_http_ai_guard_cache_key_value(ngx_http_request_t *r, ngx_str_t *key)
{
    u_char                   *p, *id;
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_ai_guard_cacheable(r);

    if (ctx) {
        key->data = ctx->cache_key;
        key->len = sizeof(ctx->cache_key);
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_HTTP_AI_GUARD_NOCACHE_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    key->data = p;
    key->len = NGX_HTTP_AI_GUARD_NOCACHE_LEN;

    p = ngx_cpymem(p, "nocache-", sizeof("nocache-") - 1);

    id = ngx_http_ai_guard_request_id(r);

    if (id) {
        ngx_memcpy(p, id, NGX_HTTP_AI_GUARD_ID_LEN);
        return NGX_OK;
    }

    ngx_http_ai_guard_nocache_random(r, p);

    return NGX_OK;
}


/* 128 random bits in hex, as nginx makes $request_id */

static void
ngx_http_ai_guard_nocache_random(ngx_http_request_t *r, u_char *p)
{
    u_char  random_bytes[16];

    if (RAND_bytes(random_bytes, sizeof(random_bytes)) == 1) {
        ngx_hex_dump(p, random_bytes, sizeof(random_bytes));
        return;
    }

    ngx_ssl_error(NGX_LOG_ERR, r->connection->log, 0, "RAND_bytes() failed");

    ngx_sprintf(p, "%08xD%08xD%08xD%08xD",
                (uint32_t) ngx_random(), (uint32_t) ngx_random(),
                (uint32_t) ngx_random(), (uint32_t) ngx_random());
}
