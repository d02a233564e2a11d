
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_util.h"


/*
 * OpenSSL 3 looks SHA-256 up in its providers on every one-shot SHA256()
 * call, which costs more than the digest itself: fetch it once a process.
 */

static EVP_MD      *ngx_http_ai_guard_sha256;
static EVP_MD_CTX  *ngx_http_ai_guard_md_ctx;

static ngx_int_t    ngx_http_ai_guard_request_id_index = NGX_ERROR;


uint64_t
ngx_http_ai_guard_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


ngx_int_t
ngx_http_ai_guard_init_digest(ngx_cycle_t *cycle)
{
    if (ngx_http_ai_guard_sha256 != NULL) {
        return NGX_OK;
    }

    ngx_http_ai_guard_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    ngx_http_ai_guard_md_ctx = EVP_MD_CTX_new();

    if (ngx_http_ai_guard_sha256 == NULL || ngx_http_ai_guard_md_ctx == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "ai_guard: OpenSSL has no SHA-256");
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_guard_digest(ngx_str_t *parts, ngx_uint_t n, u_char *digest)
{
    unsigned int  len;
    ngx_uint_t    i;

    if (EVP_DigestInit_ex2(ngx_http_ai_guard_md_ctx,
                           ngx_http_ai_guard_sha256, NULL)
        != 1)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (EVP_DigestUpdate(ngx_http_ai_guard_md_ctx, parts[i].data,
                             parts[i].len)
            != 1)
        {
            return NGX_ERROR;
        }
    }

    if (EVP_DigestFinal_ex(ngx_http_ai_guard_md_ctx, digest, &len) != 1) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_ai_guard_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_memcmp(a->data, b->data, a->len) == 0;
}


/* the ai_guard_tier of a name, or NULL */

ngx_http_ai_guard_tier_t *
ngx_http_ai_guard_tier_find(ngx_http_ai_guard_main_conf_t *amcf,
    u_char *name, size_t len)
{
    ngx_uint_t                 i;
    ngx_http_ai_guard_tier_t  *tier;

    tier = amcf->tiers.elts;

    for (i = 0; i < amcf->tiers.nelts; i++) {
        if (tier[i].name.len == len
            && ngx_strncmp(tier[i].name.data, name, len) == 0)
        {
            return &tier[i];
        }
    }

    return NULL;
}


/*
 * $request_id is the id of a main request the guard names: in the key of
 * a request ai_guard did not let be cached, and in Anthropic's
 * request-id.  nginx keeps its value for the whole request, internal
 * redirects included, so the id in a header, a cache key and a log line
 * is the same one.
 */

ngx_int_t
ngx_http_ai_guard_request_id_init(ngx_conf_t *cf)
{
    ngx_str_t  name = ngx_string("request_id");

    ngx_http_ai_guard_request_id_index = ngx_http_get_variable_index(cf,
                                                                     &name);

    return (ngx_http_ai_guard_request_id_index == NGX_ERROR) ? NGX_ERROR
                                                             : NGX_OK;
}


/*
 * $request_id of a main request, NGX_HTTP_AI_GUARD_ID_LEN hex digits, or
 * NULL: a subrequest shares the variables, and so $request_id, of its
 * main, and has no id of its own.
 */

u_char *
ngx_http_ai_guard_request_id(ngx_http_request_t *r)
{
    ngx_http_variable_value_t  *id;

    if (r != r->main) {
        return NULL;
    }

    id = ngx_http_get_indexed_variable(r, ngx_http_ai_guard_request_id_index);

    if (id == NULL || id->not_found || id->len != NGX_HTTP_AI_GUARD_ID_LEN) {
        return NULL;
    }

    return id->data;
}
