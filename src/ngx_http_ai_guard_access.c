
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <openssl/evp.h>
#include <openssl/crypto.h>

#include "ngx_http_ai_guard.h"


typedef struct {
    ngx_str_t                      key;
    ngx_uint_t                     nheaders;   /* key headers to strip */
    unsigned                       authorization:1;
} ngx_http_ai_guard_found_t;


static ngx_int_t ngx_http_ai_guard_digest(ngx_str_t *key, u_char *digest);
static ngx_http_ai_guard_ctx_t *ngx_http_ai_guard_create_ctx(
    ngx_http_request_t *r);
static void ngx_http_ai_guard_cleanup(void *data);
static void ngx_http_ai_guard_find_key(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_found_t *found);
static ngx_int_t ngx_http_ai_guard_is_key_header(
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_table_elt_t *h);
static ngx_int_t ngx_http_ai_guard_bearer(ngx_str_t *value, ngx_str_t *key);
static ngx_int_t ngx_http_ai_guard_strip_keys(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_found_t *found);
static ngx_int_t ngx_http_ai_guard_authenticate(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_found_t *found);
static ngx_int_t ngx_http_ai_guard_reject(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_uint_t status, char *code, char *message, u_char *digest);


/*
 * OpenSSL 3 looks SHA-256 up in its providers on every one-shot SHA256()
 * call, which costs more than the digest itself: fetch it once a process.
 */

static EVP_MD      *ngx_http_ai_guard_sha256;
static EVP_MD_CTX  *ngx_http_ai_guard_md_ctx;


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


static ngx_int_t
ngx_http_ai_guard_digest(ngx_str_t *key, u_char *digest)
{
    unsigned int  len;

    if (EVP_DigestInit_ex2(ngx_http_ai_guard_md_ctx,
                           ngx_http_ai_guard_sha256, NULL)
            != 1
        || EVP_DigestUpdate(ngx_http_ai_guard_md_ctx, key->data, key->len)
           != 1
        || EVP_DigestFinal_ex(ngx_http_ai_guard_md_ctx, digest, &len) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_guard_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_ai_guard_ctx_t       *ctx;
    ngx_http_ai_guard_found_t      found;
    ngx_http_ai_guard_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_module);

    if (!alcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_ai_guard_get_ctx(r);

    if (ctx != NULL) {
        /*
         * an internal redirect runs the access phase again; the key was
         * checked, and stripped, the first time
         */

        ngx_http_set_ctx(r, ctx, ngx_http_ai_guard_module);
        return NGX_DECLINED;
    }

    ctx = ngx_http_ai_guard_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_ai_guard_find_key(r, alcf, &found);

    rc = ngx_http_ai_guard_authenticate(r, alcf, ctx, &found);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_ai_guard_strip_keys(r, alcf, &found) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->decision = NGX_HTTP_AI_GUARD_ALLOW;

    return NGX_DECLINED;
}


ngx_http_ai_guard_ctx_t *
ngx_http_ai_guard_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_guard_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        /* an internal redirect clears module contexts; the cleanup stays */

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_ai_guard_cleanup) {
                ctx = cln->data;
                break;
            }
        }
    }

    return ctx;
}


static ngx_http_ai_guard_ctx_t *
ngx_http_ai_guard_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_ai_guard_ctx_t  *ctx;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_ai_guard_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;

    ngx_memzero(ctx, sizeof(ngx_http_ai_guard_ctx_t));

    cln->handler = ngx_http_ai_guard_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_ai_guard_module);

    return ctx;
}


static void
ngx_http_ai_guard_cleanup(void *data)
{
    /*
     * the request is over on every path (normal end, client abort,
     * upstream error): what the request holds is given back here
     */
}


static void
ngx_http_ai_guard_find_key(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_found_t *found)
{
    ngx_str_t         key;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    ngx_memzero(found, sizeof(ngx_http_ai_guard_found_t));

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

        switch (ngx_http_ai_guard_is_key_header(alcf, &h[i])) {

        case 1:
            /* Authorization: Bearer <key> */

            if (ngx_http_ai_guard_bearer(&h[i].value, &key) != NGX_OK) {
                continue;
            }

            found->nheaders++;

            /* the first bearer token wins over x-api-key */

            if (!found->authorization) {
                found->key = key;
                found->authorization = 1;
            }

            break;

        case 2:
            found->nheaders++;

            if (found->key.data == NULL) {
                found->key = h[i].value;
            }

            break;

        default:
            break;
        }
    }
}


/*
 * 1: an Authorization header (the key is its bearer token),
 * 2: a header whose whole value is the key, 0: another header
 */

static ngx_int_t
ngx_http_ai_guard_is_key_header(ngx_http_ai_guard_loc_conf_t *alcf,
    ngx_table_elt_t *h)
{
    if (alcf->key_header.len) {
        if (h->key.len != alcf->key_header.len
            || ngx_strncasecmp(h->key.data, alcf->key_header.data,
                               h->key.len)
               != 0)
        {
            return 0;
        }

        return (h->key.len == sizeof("Authorization") - 1
                && ngx_strncasecmp(h->key.data, (u_char *) "Authorization",
                                   h->key.len)
                   == 0)
               ? 1 : 2;
    }

    if (h->key.len == sizeof("Authorization") - 1
        && ngx_strncasecmp(h->key.data, (u_char *) "Authorization",
                           h->key.len)
           == 0)
    {
        return 1;
    }

    if (h->key.len == sizeof("x-api-key") - 1
        && ngx_strncasecmp(h->key.data, (u_char *) "x-api-key", h->key.len)
           == 0)
    {
        return 2;
    }

    return 0;
}


static ngx_int_t
ngx_http_ai_guard_bearer(ngx_str_t *value, ngx_str_t *key)
{
    u_char  *p, *last;

    if (value->len < sizeof("Bearer ") - 1
        || ngx_strncasecmp(value->data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1)
           != 0)
    {
        return NGX_DECLINED;
    }

    p = value->data + sizeof("Bearer ") - 1;
    last = value->data + value->len;

    while (p < last && *p == ' ') {
        p++;
    }

    while (last > p && last[-1] == ' ') {
        last--;
    }

    key->data = p;
    key->len = last - p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_authenticate(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_found_t *found)
{
    u_char                          digest[NGX_HTTP_AI_GUARD_DIGEST_LEN];
    ngx_http_ai_guard_key_t        *key;
    ngx_http_ai_guard_main_conf_t  *amcf;

    if (found->key.len == 0) {
        return ngx_http_ai_guard_reject(r, alcf, ctx, NGX_HTTP_UNAUTHORIZED,
                                        "missing_api_key",
                                        "Missing API key: send it as "
                                        "\"Authorization: Bearer <key>\" "
                                        "or \"x-api-key: <key>\".", NULL);
    }

    if (found->key.len > NGX_HTTP_AI_GUARD_MAX_KEY) {
        return ngx_http_ai_guard_reject(r, alcf, ctx, NGX_HTTP_UNAUTHORIZED,
                                        "invalid_api_key",
                                        "Incorrect API key provided.", NULL);
    }

    if (ngx_http_ai_guard_digest(&found->key, digest) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    key = ngx_http_ai_guard_keys_lookup(amcf->keys, digest);

    if (key == NULL
        || CRYPTO_memcmp(key->digest, digest, NGX_HTTP_AI_GUARD_DIGEST_LEN) != 0)
    {
        return ngx_http_ai_guard_reject(r, alcf, ctx, NGX_HTTP_UNAUTHORIZED,
                                        "invalid_api_key",
                                        "Incorrect API key provided.",
                                        digest);
    }

    ctx->key = key;

    if (key->disabled) {
        return ngx_http_ai_guard_reject(r, alcf, ctx, NGX_HTTP_UNAUTHORIZED,
                                        "key_disabled",
                                        "This API key has been disabled.",
                                        NULL);
    }

    if (key->expires && key->expires <= ngx_time()) {
        return ngx_http_ai_guard_reject(r, alcf, ctx, NGX_HTTP_UNAUTHORIZED,
                                        "key_expired",
                                        "This API key has expired.", NULL);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard: key \"%V\"", &key->id);

    return NGX_DECLINED;
}


/*
 * The client's key must not reach the upstream: the request headers are
 * copied without it.  Pointers such as r->headers_in.host keep pointing
 * at the old elements, which live as long as the request and hold the
 * same values.
 */

static ngx_int_t
ngx_http_ai_guard_strip_keys(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_found_t *found)
{
    ngx_str_t         key;
    ngx_list_t        headers;
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    if (found->nheaders == 0) {
        return NGX_OK;
    }

    n = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        n += part->nelts;
    }

    if (ngx_list_init(&headers, r->pool, n, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
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

        switch (ngx_http_ai_guard_is_key_header(alcf, &h[i])) {

        case 1:
            if (ngx_http_ai_guard_bearer(&h[i].value, &key) == NGX_OK) {
                continue;
            }

            break;

        case 2:
            continue;

        default:
            break;
        }

        nh = ngx_list_push(&headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];
    }

    r->headers_in.headers = headers;

    if (found->authorization) {
        r->headers_in.authorization = NULL;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_reject(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_uint_t status, char *code, char *message, u_char *digest)
{
    ngx_str_t  msg;

    ctx->decision = NGX_HTTP_AI_GUARD_REJECT;
    ctx->reason.data = (u_char *) code;
    ctx->reason.len = ngx_strlen(code);

    /* the key itself is never logged: its id, or a digest prefix */

    if (ctx->key) {
        ngx_log_error(alcf->log_level, r->connection->log, 0,
                      "ai_guard: rejected: %s, key \"%V\"", code,
                      &ctx->key->id);

    } else if (digest) {
        ngx_log_error(alcf->log_level, r->connection->log, 0,
                      "ai_guard: rejected: %s, key digest %*xs...", code,
                      (size_t) 4, digest);

    } else {
        ngx_log_error(alcf->log_level, r->connection->log, 0,
                      "ai_guard: rejected: %s", code);
    }

    msg.data = (u_char *) message;
    msg.len = ngx_strlen(message);

    ngx_http_finalize_request(r,
                        ngx_http_ai_guard_send_error(r, status, code, &msg));

    return NGX_DONE;
}
