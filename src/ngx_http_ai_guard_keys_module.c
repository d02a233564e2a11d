
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_conf.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_jwt_module.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_store.h"
#include "ngx_http_ai_guard_keys_module.h"


/* the keys file is read this much at a time */
#define NGX_HTTP_AI_GUARD_READ_CHUNK  65536


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
static ngx_uint_t ngx_http_ai_guard_header_is(ngx_table_elt_t *h,
    u_char *name, size_t len);
static ngx_int_t ngx_http_ai_guard_bearer(ngx_str_t *value, ngx_str_t *key);
static ngx_int_t ngx_http_ai_guard_identify(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v,
    ngx_http_ai_guard_found_t *found);
static ngx_int_t ngx_http_ai_guard_no_key(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_bad_key(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v, ngx_http_ai_guard_found_t *found);
static void *ngx_http_ai_guard_pool_alloc(void *pool, size_t size);
static void ngx_http_ai_guard_keys_cleanup(void *data);
static ngx_int_t ngx_http_ai_guard_strip_keys(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_found_t *found);


ngx_int_t
ngx_http_ai_guard_authenticate(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v)
{
    ngx_int_t                  rc;
    ngx_http_ai_guard_found_t  found;

    ngx_http_ai_guard_find_key(r, alcf, &found);

    rc = ngx_http_ai_guard_identify(r, ctx, v, &found);

    /* the verdict and the key's id, never the key */

#if (NGX_DEBUG)
    if (ctx->key) {
        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai_guard auth: rc:%i %s key:\"%V\" tenant:\"%V\"",
                       rc, v->status ? v->code : "ok", &ctx->key->id,
                       &ctx->key->tenant);

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai_guard auth: rc:%i %s, no key", rc,
                       v->status ? v->code : "ok");
    }
#endif

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
    ngx_tm_t                        tm;
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
        return ngx_http_ai_guard_no_key(r, v);
    }

    if (found->key.len > NGX_HTTP_AI_GUARD_MAX_KEY) {
        return ngx_http_ai_guard_bad_key(r, v, found);
    }

    if (ngx_http_ai_guard_digest(&found->key, 1, digest) != NGX_OK) {
        return NGX_ERROR;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    /* no keys file: a location that takes only tokens */

    key = amcf->keys ? ngx_http_ai_guard_keys_lookup(amcf->keys, digest)
                     : NULL;

    /* the keys file first, then the keys the admin API made */

    if (key == NULL && amcf->store) {
        switch (ngx_http_ai_guard_store_lookup(r, digest, &key)) {

        case NGX_OK:
            break;

        case NGX_ERROR:
            return NGX_ERROR;

        default: /* NGX_DECLINED */
            key = NULL;
        }
    }

    if (key == NULL
        || CRYPTO_memcmp(key->digest, digest, NGX_HTTP_AI_GUARD_DIGEST_LEN)
           != 0)
    {
        /* a digest prefix in the log tells keys apart, never the key */
        ngx_memcpy(ctx->digest, digest, sizeof(ctx->digest));
        ctx->has_digest = 1;

        return ngx_http_ai_guard_bad_key(r, v, found);
    }

    ctx->key = key;

    if (key->disabled) {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_UNAUTHORIZED,
                                      "key_disabled",
                                      "This API key has been disabled: ask "
                                      "the API's provider for a new key.");
        return NGX_DECLINED;
    }

    if (key->expires && key->expires <= ngx_time()) {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_UNAUTHORIZED,
                                      "key_expired", NULL);

        ngx_gmtime((time_t) key->expires, &tm);

        return ngx_http_ai_guard_verdict_message(r, v,
                                    "This API key expired at "
                                    "%4d-%02d-%02dT%02d:%02d:%02dZ: ask the "
                                    "API's provider for a new key.",
                                    tm.ngx_tm_year, tm.ngx_tm_mon,
                                    tm.ngx_tm_mday, tm.ngx_tm_hour,
                                    tm.ngx_tm_min, tm.ngx_tm_sec) == NGX_OK
               ? NGX_DECLINED : NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Where the key goes, as this location reads it: the header that
 * ai_guard_key_header names, else a bearer token or x-api-key.
 */

static ngx_int_t
ngx_http_ai_guard_no_key(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v)
{
    ngx_http_ai_guard_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_module);

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_UNAUTHORIZED, "missing_api_key",
                                  "Missing API key: send it as "
                                  "\"Authorization: Bearer <key>\" "
                                  "or \"x-api-key: <key>\".");

    if (alcf->key_header.len == 0) {
        return NGX_DECLINED;
    }

    if (alcf->key_header.len == sizeof("Authorization") - 1
        && ngx_strncasecmp(alcf->key_header.data, (u_char *) "Authorization",
                           alcf->key_header.len)
           == 0)
    {
        ngx_str_set(&v->message, "Missing API key: send it as "
                                 "\"Authorization: Bearer <key>\".");
        return NGX_DECLINED;
    }

    return ngx_http_ai_guard_verdict_message(r, v,
                                "Missing API key: send it as \"%V: <key>\".",
                                &alcf->key_header) == NGX_OK
           ? NGX_DECLINED : NGX_ERROR;
}


static ngx_int_t
ngx_http_ai_guard_bad_key(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v, ngx_http_ai_guard_found_t *found)
{
    char                          *where;
    ngx_http_ai_guard_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_module);

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_UNAUTHORIZED, "invalid_api_key",
                                  NULL);

    if (found->authorization) {
        where = "\"Authorization: Bearer\"";

    } else if (alcf->key_header.len) {
        return ngx_http_ai_guard_verdict_message(r, v,
                                    "Incorrect API key provided in \"%V\": "
                                    "check the key, or ask the API's "
                                    "provider for one.", &alcf->key_header)
               == NGX_OK ? NGX_DECLINED : NGX_ERROR;

    } else {
        where = "\"x-api-key\"";
    }

    return ngx_http_ai_guard_verdict_message(r, v,
                                "Incorrect API key provided in %s: check "
                                "the key, or ask the API's provider for one.",
                                where) == NGX_OK ? NGX_DECLINED : NGX_ERROR;
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
                && ngx_http_ai_guard_header_is(h, (u_char *) "authorization",
                                         sizeof("authorization") - 1))
            {
                return 3;
            }

            return 0;
        }

        return ngx_http_ai_guard_header_is(h, (u_char *) "authorization",
                                           sizeof("authorization") - 1)
               ? 1 : 2;
    }

    if (ngx_http_ai_guard_header_is(h, (u_char *) "authorization",
                                    sizeof("authorization") - 1))
    {
        return 1;
    }

    if (ngx_http_ai_guard_header_is(h, (u_char *) "x-api-key",
                                    sizeof("x-api-key") - 1))
    {
        return 2;
    }

    return 0;
}


/*
 * name in lower case: nginx has lowered the request's header names once
 * already, a memcmp() of them costs a tenth of ngx_strncasecmp() on every
 * request; a header some module pushed without a lowered name is
 * compared the long way.
 */

static ngx_uint_t
ngx_http_ai_guard_header_is(ngx_table_elt_t *h, u_char *name, size_t len)
{
    if (h->key.len != len) {
        return 0;
    }

    if (h->lowcase_key != NULL) {
        return ngx_memcmp(h->lowcase_key, name, len) == 0;
    }

    return ngx_strncasecmp(h->key.data, name, len) == 0;
}


static ngx_int_t
ngx_http_ai_guard_bearer(ngx_str_t *value, ngx_str_t *key)
{
    u_char      *p, *last;
    ngx_uint_t   i;

    static u_char  bearer[] = "bearer";

    if (value->len < sizeof("Bearer ") - 1
        || value->data[sizeof("bearer") - 1] != ' ')
    {
        return NGX_DECLINED;
    }

    /* letters only: setting bit 5 folds their case and nothing else's */

    for (i = 0; i < sizeof("bearer") - 1; i++) {
        if ((value->data[i] | 0x20) != bearer[i]) {
            return NGX_DECLINED;
        }
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


ngx_int_t
ngx_http_ai_guard_load_keys(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf)
{
    u_char                           *buf;
    size_t                            line, column;
    ssize_t                           n;
    ngx_fd_t                          fd;
    ngx_int_t                         rc;
    ngx_pool_cleanup_t               *cln;
    ngx_http_ai_guard_key_t          *k;
    ngx_http_ai_guard_keys_parser_t  *kp;

    fd = ngx_open_file(amcf->keys_file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN,
                       0);
    if (fd == NGX_INVALID_FILE) {
        ngx_http_ai_guard_open_error(cf, &amcf->keys_where, "ai_guard_keys",
                                     &amcf->keys_value, &amcf->keys_file,
                                     ngx_errno);
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    buf = ngx_palloc(cf->temp_pool, NGX_HTTP_AI_GUARD_READ_CHUNK);
    if (buf == NULL) {
        goto done;
    }

    kp = ngx_http_ai_guard_keys_parser_create(ngx_http_ai_guard_pool_alloc,
                                              cf->pool);
    if (kp == NULL) {
        goto done;
    }

    cln = ngx_pool_cleanup_add(cf->temp_pool, 0);
    if (cln == NULL) {
        ngx_http_ai_guard_keys_parser_free(kp);
        goto done;
    }

    cln->handler = ngx_http_ai_guard_keys_cleanup;
    cln->data = kp;

    for ( ;; ) {
        n = ngx_read_fd(fd, buf, NGX_HTTP_AI_GUARD_READ_CHUNK);

        if (n == -1) {
            ngx_http_ai_guard_conf_error(cf, &amcf->keys_where, ngx_errno,
                                         "ai_guard_keys \"%V\": "
                                         ngx_read_fd_n " failed",
                                         &amcf->keys_file);
            goto done;
        }

        if (n == 0) {
            break;
        }

        if (ngx_http_ai_guard_keys_parse(kp, buf, n) != 0) {
            goto invalid;
        }
    }

    amcf->keys = ngx_http_ai_guard_keys_finish(kp);
    if (amcf->keys == NULL) {
        goto invalid;
    }

    /* tiers are all declared by now: the http block has been read */

    for (k = amcf->keys->first; k; k = k->next) {

        if (k->tier.len == 0) {
            continue;
        }

        k->tier_conf = ngx_http_ai_guard_tier_find(amcf, k->tier.data,
                                                   k->tier.len);

        if (k->tier_conf == NULL) {
            ngx_http_ai_guard_conf_error(cf, &amcf->keys_where, 0,
                          "ai_guard_keys \"%V\", line %uz: entry %uz "
                          "(\"%*s\"): tier \"%*s\" is not declared by "
                          "ai_guard_tier, it must be %s",
                          &amcf->keys_file, k->line, k->index, k->id.len,
                          k->id.data, k->tier.len, k->tier.data,
                          ngx_http_ai_guard_conf_tiers(cf, amcf));
            goto done;
        }
    }

    rc = NGX_OK;
    goto done;

invalid:

    line = ngx_http_ai_guard_keys_error_line(kp, &column);

    if (line && column) {
        ngx_http_ai_guard_conf_error(cf, &amcf->keys_where, 0,
                                     "ai_guard_keys \"%V\", line %uz, "
                                     "column %uz: %s", &amcf->keys_file,
                                     line, column,
                                     ngx_http_ai_guard_keys_error(kp));

    } else if (line) {
        ngx_http_ai_guard_conf_error(cf, &amcf->keys_where, 0,
                                     "ai_guard_keys \"%V\", line %uz: %s",
                                     &amcf->keys_file, line,
                                     ngx_http_ai_guard_keys_error(kp));

    } else {
        ngx_http_ai_guard_conf_error(cf, &amcf->keys_where, 0,
                                     "ai_guard_keys \"%V\": %s",
                                     &amcf->keys_file,
                                     ngx_http_ai_guard_keys_error(kp));
    }

done:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &amcf->keys_file);
    }

    return rc;
}


static void *
ngx_http_ai_guard_pool_alloc(void *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


static void
ngx_http_ai_guard_keys_cleanup(void *data)
{
    ngx_http_ai_guard_keys_parser_free(data);
}
