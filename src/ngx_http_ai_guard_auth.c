
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <openssl/evp.h>
#include <openssl/crypto.h>

#include "ngx_http_ai_guard.h"
#include "ngx_http_ai_guard_token.h"


typedef struct {
    ngx_str_t                      key;
    ngx_str_t                      token;      /* a JWT beside a named key */
    ngx_uint_t                     nheaders;   /* key headers to strip */
    unsigned                       jwt:1;      /* the location takes JWTs */
    unsigned                       authorization:1;
} ngx_http_ai_guard_found_t;


static void ngx_http_ai_guard_find_key(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_found_t *found);
static ngx_int_t ngx_http_ai_guard_is_key_header(
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_uint_t jwt, ngx_table_elt_t *h);
static ngx_int_t ngx_http_ai_guard_bearer(ngx_str_t *value, ngx_str_t *key);
static ngx_int_t ngx_http_ai_guard_identify(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v,
    ngx_http_ai_guard_found_t *found);
static ngx_int_t ngx_http_ai_guard_strip_keys(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_found_t *found);


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


ngx_int_t
ngx_http_ai_guard_authenticate(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v)
{
    ngx_int_t                  rc;
    ngx_http_ai_guard_found_t  found;

    ngx_http_ai_guard_find_key(r, alcf, &found);

    rc = ngx_http_ai_guard_identify(r, ctx, v, &found);

    /*
     * The client's credential never goes upstream: not when it is valid,
     * and not when monitor mode lets a request with a wrong one on.
     */

    if (rc != NGX_ERROR
        && ngx_http_ai_guard_strip_keys(r, alcf, &found) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return rc;
}


static ngx_int_t
ngx_http_ai_guard_identify(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v,
    ngx_http_ai_guard_found_t *found)
{
    u_char                          digest[NGX_HTTP_AI_GUARD_DIGEST_LEN];
    ngx_str_t                      *token;
    ngx_http_ai_guard_key_t        *key;
    ngx_http_ai_guard_main_conf_t  *amcf;

    /*
     * A key and a token in one request: the key wins only when it came in
     * the header that ai_guard_key_header names; by default the bearer
     * credential is used, whichever of the two it is.
     */

    token = NULL;

    if (found->jwt) {
        if (found->key.len) {
            if (ngx_http_ai_guard_jwt_is_token(&found->key)) {
                token = &found->key;
            }

        } else if (found->token.len) {
            token = &found->token;
        }
    }

    if (token) {
        return ngx_http_ai_guard_jwt_authenticate(r, token, ctx, v);
    }

    if (found->key.len == 0) {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_UNAUTHORIZED,
                                      "missing_api_key",
                                      "Missing API key: send it as "
                                      "\"Authorization: Bearer <key>\" "
                                      "or \"x-api-key: <key>\".");
        return NGX_DECLINED;
    }

    if (found->key.len > NGX_HTTP_AI_GUARD_MAX_KEY) {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_UNAUTHORIZED,
                                      "invalid_api_key",
                                      "Incorrect API key provided.");
        return NGX_DECLINED;
    }

    if (ngx_http_ai_guard_digest(&found->key, 1, digest) != NGX_OK) {
        return NGX_ERROR;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    /* no keys file: a location that takes only tokens */

    key = amcf->keys ? ngx_http_ai_guard_keys_lookup(amcf->keys, digest)
                     : NULL;

    if (key == NULL
        || CRYPTO_memcmp(key->digest, digest, NGX_HTTP_AI_GUARD_DIGEST_LEN)
           != 0)
    {
        /* a digest prefix in the log tells keys apart, never the key */
        ngx_memcpy(ctx->digest, digest, sizeof(ctx->digest));
        ctx->has_digest = 1;

        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_UNAUTHORIZED,
                                      "invalid_api_key",
                                      "Incorrect API key provided.");
        return NGX_DECLINED;
    }

    ctx->key = key;

    if (key->disabled) {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_UNAUTHORIZED,
                                      "key_disabled",
                                      "This API key has been disabled.");
        return NGX_DECLINED;
    }

    if (key->expires && key->expires <= ngx_time()) {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_UNAUTHORIZED,
                                      "key_expired",
                                      "This API key has expired.");
        return NGX_DECLINED;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard: key \"%V\"", &key->id);

    return NGX_OK;
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

    found->jwt = ngx_http_ai_guard_jwt_on(r);

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

        switch (ngx_http_ai_guard_is_key_header(alcf, found->jwt, &h[i])) {

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

        case 3:
            /* Authorization: Bearer <token> beside a named key header */

            if (ngx_http_ai_guard_bearer(&h[i].value, &key) != NGX_OK
                || !ngx_http_ai_guard_jwt_is_token(&key))
            {
                continue;
            }

            found->nheaders++;

            if (!found->authorization) {
                found->token = key;
                found->authorization = 1;
            }

            break;

        default:
            break;
        }
    }
}


/*
 * 1: Authorization (bearer), 2: a key header, 3: Authorization where a
 * location with a named key header takes tokens as well; 0: other
 */

static ngx_int_t
ngx_http_ai_guard_is_key_header(ngx_http_ai_guard_loc_conf_t *alcf,
    ngx_uint_t jwt, ngx_table_elt_t *h)
{
    if (alcf->key_header.len) {
        if (h->key.len != alcf->key_header.len
            || ngx_strncasecmp(h->key.data, alcf->key_header.data,
                               h->key.len)
               != 0)
        {
            if (jwt
                && h->key.len == sizeof("Authorization") - 1
                && ngx_strncasecmp(h->key.data, (u_char *) "Authorization",
                                   h->key.len)
                   == 0)
            {
                return 3;
            }

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

        switch (ngx_http_ai_guard_is_key_header(alcf, found->jwt, &h[i])) {

        case 1:
            if (ngx_http_ai_guard_bearer(&h[i].value, &key) == NGX_OK) {
                continue;
            }

            break;

        case 2:
            continue;

        case 3:
            if (ngx_http_ai_guard_bearer(&h[i].value, &key) == NGX_OK
                && ngx_http_ai_guard_jwt_is_token(&key))
            {
                continue;
            }

            break;

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
