
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_conf.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_report_out.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_admin_body.h"
#include "ngx_http_ai_guard_report_usage.h"
#include "ngx_http_ai_guard_store.h"
#include "ngx_http_ai_guard_store_file.h"
#include "ngx_http_ai_guard_store_redis.h"
#include "ngx_http_ai_guard_admin.h"


/* symbols of a secret after "sk-aig-": 40 of base62, 238 bits */
#define NGX_HTTP_AI_GUARD_SECRET_LEN  40
#define NGX_HTTP_AI_GUARD_SECRET      (sizeof("sk-aig-") - 1             \
                                       + NGX_HTTP_AI_GUARD_SECRET_LEN)

/* keys a listing shows at most */
#define NGX_HTTP_AI_GUARD_LIST_MAX    1000

#define NGX_HTTP_AI_GUARD_OP_LIST     0
#define NGX_HTTP_AI_GUARD_OP_CREATE   1
#define NGX_HTTP_AI_GUARD_OP_GET      2
#define NGX_HTTP_AI_GUARD_OP_UPDATE   3
#define NGX_HTTP_AI_GUARD_OP_DELETE   4
#define NGX_HTTP_AI_GUARD_OP_ROTATE   5
#define NGX_HTTP_AI_GUARD_OP_TENANT_GET  6
#define NGX_HTTP_AI_GUARD_OP_TENANT_PUT  7
#define NGX_HTTP_AI_GUARD_OP_TENANT_DEL  8

/* a tenant's name in a path: as a key's tenant, 1 to 128 bytes */
#define NGX_HTTP_AI_GUARD_TENANT_LEN  128


typedef struct {
    ngx_uint_t                      op;
    ngx_str_t                       id;
    ngx_str_t                       tenant;
    ngx_http_ai_guard_admin_body_t  body;
    u_char                          secret[NGX_HTTP_AI_GUARD_SECRET];
} ngx_http_ai_guard_admin_ctx_t;


static ngx_int_t ngx_http_ai_guard_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_guard_admin_route(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, ngx_http_ai_guard_verdict_t *v);
static void ngx_http_ai_guard_admin_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_guard_admin_read(ngx_http_request_t *r,
    u_char **body, size_t *len);
static ngx_int_t ngx_http_ai_guard_admin_run(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, u_char *body, size_t len);
static ngx_int_t ngx_http_ai_guard_admin_create(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_admin_change(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_admin_list(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_admin_apply(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_body_t *b, ngx_http_ai_guard_key_info_t *info,
    ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_admin_secret(ngx_http_request_t *r,
    u_char *secret, u_char *digest);
static ngx_int_t ngx_http_ai_guard_admin_file_key(ngx_http_request_t *r,
    ngx_str_t *id, ngx_http_ai_guard_key_info_t *info);
static ngx_int_t ngx_http_ai_guard_admin_route_tenant(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, ngx_http_ai_guard_verdict_t *v,
    u_char *p, u_char *last);
static ngx_int_t ngx_http_ai_guard_admin_tenant(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_admin_get(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info);
static ngx_int_t ngx_http_ai_guard_admin_tenant_get(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx);
static void ngx_http_ai_guard_admin_audit(ngx_http_request_t *r,
    const char *what, ngx_http_ai_guard_key_info_t *info);
static void ngx_http_ai_guard_admin_fields(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_key_info_t *info, u_char *secret);
static void ngx_http_ai_guard_admin_write(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_key_info_t *info, u_char *secret);
static void ngx_http_ai_guard_admin_time(ngx_http_ai_guard_out_t *o,
    char *name, int64_t t);
static ngx_int_t ngx_http_ai_guard_admin_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_ai_guard_key_info_t *info, u_char *secret);
static ngx_int_t ngx_http_ai_guard_admin_unsaved(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_admin_invalid(
    ngx_http_ai_guard_verdict_t *v, char *param, char *message);
static ngx_int_t ngx_http_ai_guard_admin_refuse(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v, ngx_uint_t status, char *code,
    const char *param, const char *message);


char *
ngx_http_ai_guard_admin_cmd(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_ai_guard_main_conf_t  *amcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_guard_admin_handler;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_guard_module);
    amcf->enabled = 1;

    /* the store may be declared after the server: checked at init */
    ngx_http_ai_guard_where(cf, &amcf->admin_where);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_guard_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_ai_guard_verdict_t     v;
    ngx_http_ai_guard_admin_ctx_t  *actx;

    actx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_admin_ctx_t));
    if (actx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&v, sizeof(ngx_http_ai_guard_verdict_t));

    rc = ngx_http_ai_guard_admin_route(r, actx, &v);

    if (rc == NGX_DECLINED) {
        return ngx_http_ai_guard_send_error(r, &v);
    }

    if (actx->op == NGX_HTTP_AI_GUARD_OP_CREATE
        || actx->op == NGX_HTTP_AI_GUARD_OP_UPDATE
        || actx->op == NGX_HTTP_AI_GUARD_OP_ROTATE
        || actx->op == NGX_HTTP_AI_GUARD_OP_TENANT_PUT)
    {
        if (r->headers_in.content_length_n
            > NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY)
        {
            return ngx_http_ai_guard_admin_refuse(r, &v,
                                       NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "request_too_large", NULL,
                                       "The body is over 16384 bytes.");
        }

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_ai_guard_admin_body);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ai_guard_admin_run(r, actx, NULL, 0);
}


/*
 * The operation from the method and the path after the location's
 * prefix: keys, keys/<id>, keys/<id>/rotate.  NGX_DECLINED: the verdict
 * says what was wrong.
 */

static ngx_int_t
ngx_http_ai_guard_admin_route(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, ngx_http_ai_guard_verdict_t *v)
{
    u_char                    *p, *last, *slash;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    p = r->uri.data;
    last = r->uri.data + r->uri.len;

    if (r->uri.len >= clcf->name.len
        && ngx_strncmp(p, clcf->name.data, clcf->name.len) == 0)
    {
        p += clcf->name.len;
    }

    while (p < last && *p == '/') {
        p++;
    }

    if (last - p > 8 && ngx_strncmp(p, "tenants/", 8) == 0) {
        return ngx_http_ai_guard_admin_route_tenant(r, actx, v, p + 8, last);
    }

    if (last - p < 4 || ngx_strncmp(p, "keys", 4) != 0
        || (last - p > 4 && p[4] != '/'))
    {
        goto not_found;
    }

    p += 4;

    if (p == last || p + 1 == last) {
        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            actx->op = NGX_HTTP_AI_GUARD_OP_LIST;
            return NGX_OK;
        }

        if (r->method & NGX_HTTP_POST) {
            actx->op = NGX_HTTP_AI_GUARD_OP_CREATE;
            return NGX_OK;
        }

        goto not_allowed;
    }

    p++;

    slash = ngx_strlchr(p, last, '/');

    actx->id.data = p;
    actx->id.len = (slash ? slash : last) - p;

    if (!ngx_http_ai_guard_admin_id_valid(actx->id.data, actx->id.len)) {
        return ngx_http_ai_guard_admin_invalid(v, "id",
                                      "A key's id is 1 to 64 letters, "
                                      "digits, \".\", \"_\" or \"-\".");
    }

    if (slash) {
        if ((size_t) (last - slash) != sizeof("/rotate") - 1
            || ngx_strncmp(slash, "/rotate", sizeof("/rotate") - 1) != 0)
        {
            goto not_found;
        }

        if (!(r->method & NGX_HTTP_POST)) {
            goto not_allowed;
        }

        actx->op = NGX_HTTP_AI_GUARD_OP_ROTATE;
        return NGX_OK;
    }

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        actx->op = NGX_HTTP_AI_GUARD_OP_GET;

    } else if (r->method & NGX_HTTP_PATCH) {
        actx->op = NGX_HTTP_AI_GUARD_OP_UPDATE;

    } else if (r->method & NGX_HTTP_DELETE) {
        actx->op = NGX_HTTP_AI_GUARD_OP_DELETE;

    } else {
        goto not_allowed;
    }

    return NGX_OK;

not_found:

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_NOT_FOUND, "not_found",
                                  "No such admin resource: the API has "
                                  "keys, keys/<id>, keys/<id>/rotate and "
                                  "tenants/<tenant>.");
    return NGX_DECLINED;

not_allowed:

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_NOT_ALLOWED,
                                  "method_not_allowed",
                                  "This method is not allowed here: "
                                  "see docs/admin.md.");
    return NGX_DECLINED;
}


static void
ngx_http_ai_guard_admin_body(ngx_http_request_t *r)
{
    u_char                         *body;
    size_t                          len;
    ngx_int_t                       rc;
    ngx_http_ai_guard_verdict_t     v;
    ngx_http_ai_guard_admin_ctx_t  *actx;

    /*
     * The route again, rather than a context in the module's slot, where
     * the log phase looks for a guarded request's
     */

    actx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_admin_ctx_t));
    if (actx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memzero(&v, sizeof(ngx_http_ai_guard_verdict_t));

    (void) ngx_http_ai_guard_admin_route(r, actx, &v);

    rc = ngx_http_ai_guard_admin_read(r, &body, &len);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_ai_guard_admin_refuse(r, &v,
                                            NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                            "request_too_large", NULL,
                                            "The body is over 16384 bytes.");

    } else if (rc == NGX_OK) {
        rc = ngx_http_ai_guard_admin_run(r, actx, body, len);

    } else {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_finalize_request(r, rc);
}


/* the body in one piece; NGX_DECLINED: it is over the bound */

static ngx_int_t
ngx_http_ai_guard_admin_read(ngx_http_request_t *r, u_char **body,
    size_t *len)
{
    u_char       *p;
    off_t         size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *body = NULL;
    *len = 0;

    if (r->request_body == NULL) {
        return NGX_OK;
    }

    size = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        size += ngx_buf_size(cl->buf);
    }

    if (size > NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, (size_t) size + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *body = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);

            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    *len = p - *body;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_admin_run(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, u_char *body, size_t len)
{
    unsigned                        allowed;
    ngx_int_t                       rc;
    ngx_http_ai_guard_verdict_t     v;
    ngx_http_ai_guard_key_info_t    info;
    ngx_http_ai_guard_main_conf_t  *amcf;

    ngx_memzero(&v, sizeof(ngx_http_ai_guard_verdict_t));

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->store == NULL || amcf->store->sh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (actx->op) {

    case NGX_HTTP_AI_GUARD_OP_CREATE:
        allowed = NGX_HTTP_AI_GUARD_ADMIN_ID | NGX_HTTP_AI_GUARD_ADMIN_TENANT
                  | NGX_HTTP_AI_GUARD_ADMIN_TIER
                  | NGX_HTTP_AI_GUARD_ADMIN_MODELS
                  | NGX_HTTP_AI_GUARD_ADMIN_EXPIRES
                  | NGX_HTTP_AI_GUARD_ADMIN_DISABLED
                  | NGX_HTTP_AI_GUARD_ADMIN_CUSTOMER
                  | NGX_HTTP_AI_GUARD_ADMIN_LIMITS
                  | NGX_HTTP_AI_GUARD_ADMIN_METADATA;
        break;

    case NGX_HTTP_AI_GUARD_OP_UPDATE:
        allowed = NGX_HTTP_AI_GUARD_ADMIN_TIER
                  | NGX_HTTP_AI_GUARD_ADMIN_MODELS
                  | NGX_HTTP_AI_GUARD_ADMIN_EXPIRES
                  | NGX_HTTP_AI_GUARD_ADMIN_DISABLED
                  | NGX_HTTP_AI_GUARD_ADMIN_CUSTOMER
                  | NGX_HTTP_AI_GUARD_ADMIN_LIMITS
                  | NGX_HTTP_AI_GUARD_ADMIN_METADATA;
        break;

    case NGX_HTTP_AI_GUARD_OP_ROTATE:
        allowed = NGX_HTTP_AI_GUARD_ADMIN_GRACE;
        break;

    case NGX_HTTP_AI_GUARD_OP_TENANT_PUT:
        allowed = NGX_HTTP_AI_GUARD_ADMIN_LIMITS;
        break;

    default:
        allowed = 0;
        break;
    }

    if (ngx_http_ai_guard_admin_body_parse(body, len, allowed, &actx->body)
        != 0)
    {
        return ngx_http_ai_guard_admin_refuse(r, &v, NGX_HTTP_BAD_REQUEST,
                                              "invalid_request",
                                              actx->body.param,
                                              actx->body.error);
    }

    switch (actx->op) {

    case NGX_HTTP_AI_GUARD_OP_LIST:
        return ngx_http_ai_guard_admin_list(r, &v);

    case NGX_HTTP_AI_GUARD_OP_TENANT_GET:
        return ngx_http_ai_guard_admin_tenant_get(r, actx);

    case NGX_HTTP_AI_GUARD_OP_TENANT_PUT:
    case NGX_HTTP_AI_GUARD_OP_TENANT_DEL:
        return ngx_http_ai_guard_admin_tenant(r, actx, &v);

    case NGX_HTTP_AI_GUARD_OP_CREATE:
        return ngx_http_ai_guard_admin_create(r, actx, &v);

    case NGX_HTTP_AI_GUARD_OP_GET:
        rc = ngx_http_ai_guard_store_get(r, &actx->id, &info);

        if (rc == NGX_DECLINED) {
            rc = ngx_http_ai_guard_admin_file_key(r, &actx->id, &info);
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_ai_guard_admin_refuse(r, &v, NGX_HTTP_NOT_FOUND,
                                                  "key_not_found", "id",
                                                  "No key has this id.");
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_ai_guard_admin_get(r, &info);

    default:
        return ngx_http_ai_guard_admin_change(r, actx, &v);
    }
}


static ngx_int_t
ngx_http_ai_guard_admin_create(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, ngx_http_ai_guard_verdict_t *v)
{
    ngx_int_t                        rc;
    ngx_uint_t                       level;
    ngx_http_ai_guard_key_info_t     info, file;
    ngx_http_ai_guard_admin_body_t  *b;

    b = &actx->body;

    if (!(b->has & NGX_HTTP_AI_GUARD_ADMIN_ID)) {
        return ngx_http_ai_guard_admin_refuse(r, v, NGX_HTTP_BAD_REQUEST,
                                              "invalid_request", "id",
                                              "\"id\" is required.");
    }

    if (!(b->has & NGX_HTTP_AI_GUARD_ADMIN_TENANT)) {
        return ngx_http_ai_guard_admin_refuse(r, v, NGX_HTTP_BAD_REQUEST,
                                              "invalid_request", "tenant",
                                              "\"tenant\" is required.");
    }

    ngx_memzero(&info, sizeof(ngx_http_ai_guard_key_info_t));

    info.key.id.data = b->id.data;
    info.key.id.len = b->id.len;
    info.key.tenant.data = b->tenant.data;
    info.key.tenant.len = b->tenant.len;
    info.created = ngx_time();

    rc = ngx_http_ai_guard_admin_apply(r, b, &info, v);

    if (rc == NGX_DECLINED) {
        return ngx_http_ai_guard_send_error(r, v);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    /* the keys file's ids are its own: one id, one key, everywhere */

    if (ngx_http_ai_guard_admin_file_key(r, (ngx_str_t *) &info.key.id,
                                         &file)
        == NGX_OK)
    {
        goto exists;
    }

    if (ngx_http_ai_guard_admin_secret(r, actx->secret, info.key.digest)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_ai_guard_store_create(r, &info);

    if (rc == NGX_DECLINED) {
        goto exists;
    }

    if (rc == NGX_BUSY || rc == NGX_ABORT) {

        /* max= is the operator's bound; a zone out of room is an alert */

        level = (rc == NGX_BUSY) ? NGX_LOG_WARN : NGX_LOG_ALERT;

        ngx_log_error(level, r->connection->log, 0,
                      "ai_guard key store is full (%s): key \"%V\" refused",
                      rc == NGX_BUSY ? "max= keys" : "no room in the zone",
                      &info.key.id);

        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "key_store_full",
                                      "The key store is full: delete keys, "
                                      "or raise ai_guard_key_store's size "
                                      "or max=.");
        v->retry_ms = 60000;
        v->retry = 1;
        return ngx_http_ai_guard_send_error(r, v);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_ai_guard_admin_audit(r, "created", &info);
    ngx_http_ai_guard_store_publish(r, &info, 0);

    if (ngx_http_ai_guard_store_journal(r, &info, 0) != NGX_OK) {
        return ngx_http_ai_guard_admin_unsaved(r, v);
    }

    return ngx_http_ai_guard_admin_send(r, NGX_HTTP_CREATED, &info,
                                        actx->secret);

exists:

    return ngx_http_ai_guard_admin_refuse(r, v, NGX_HTTP_CONFLICT,
                                          "key_exists", "id",
                                          "A key with this id exists.");
}


/* update, delete, rotate: a key of the store, never one of the file */

static ngx_int_t
ngx_http_ai_guard_admin_change(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, ngx_http_ai_guard_verdict_t *v)
{
    u_char                        *secret;
    ngx_int_t                      rc;
    const char                    *what;
    ngx_http_ai_guard_key_info_t   old, info;

    ngx_memzero(&info, sizeof(ngx_http_ai_guard_key_info_t));
    info.key.id.data = actx->id.data;
    info.key.id.len = actx->id.len;

    secret = NULL;

    if (actx->op == NGX_HTTP_AI_GUARD_OP_DELETE) {
        rc = ngx_http_ai_guard_store_delete(r, &info);
        what = "revoked";
        goto done;
    }

    rc = ngx_http_ai_guard_store_get(r, &actx->id, &old);

    if (rc != NGX_OK) {
        goto done;
    }

    info = old;

    if (actx->op == NGX_HTTP_AI_GUARD_OP_UPDATE) {
        rc = ngx_http_ai_guard_admin_apply(r, &actx->body, &info, v);

        if (rc == NGX_DECLINED) {
            return ngx_http_ai_guard_send_error(r, v);
        }

        if (rc != NGX_OK) {
            return rc;
        }

        what = "updated";

    } else {
        /*
         * rotate: the old secret works for the grace the caller chose,
         * none with 0: its entry stays until the next rotation, refused
         */

        ngx_memcpy(info.old_digest, old.key.digest,
                   NGX_HTTP_AI_GUARD_DIGEST_LEN);
        info.has_old = 1;
        info.grace_until = ngx_time() + actx->body.grace;

        if (ngx_http_ai_guard_admin_secret(r, actx->secret, info.key.digest)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        secret = actx->secret;
        what = "rotated";
    }

    rc = ngx_http_ai_guard_store_replace(r, &info, &old);

done:

    if (rc == NGX_DECLINED) {
        if (ngx_http_ai_guard_admin_file_key(r, &actx->id, &old) == NGX_OK) {
            return ngx_http_ai_guard_admin_refuse(r, v, NGX_HTTP_CONFLICT,
                                            "key_in_file", "id",
                                            "This key is in the keys file: "
                                            "change it there, then reload.");
        }

        return ngx_http_ai_guard_admin_refuse(r, v, NGX_HTTP_NOT_FOUND,
                                              "key_not_found", "id",
                                              "No key has this id.");
    }

    if (rc == NGX_BUSY) {
        return ngx_http_ai_guard_admin_refuse(r, v,
                                              NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "key_store_full", NULL,
                                              "The key store has no room for "
                                              "this change: the key is as it "
                                              "was.");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_ai_guard_admin_audit(r, what, &info);
    ngx_http_ai_guard_store_publish(r, &info,
                                    actx->op == NGX_HTTP_AI_GUARD_OP_DELETE);

    if (ngx_http_ai_guard_store_journal(r, &info,
                                        actx->op == NGX_HTTP_AI_GUARD_OP_DELETE)
        != NGX_OK)
    {
        return ngx_http_ai_guard_admin_unsaved(r, v);
    }

    if (actx->op == NGX_HTTP_AI_GUARD_OP_DELETE) {
        info.key.disabled = 1;
    }

    return ngx_http_ai_guard_admin_send(r, NGX_HTTP_OK, &info, secret);
}


/*
 * The body's fields onto the key; a tier must be declared.  NGX_DECLINED:
 * the verdict says what was wrong.
 */

static ngx_int_t
ngx_http_ai_guard_admin_apply(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_body_t *b, ngx_http_ai_guard_key_info_t *info,
    ngx_http_ai_guard_verdict_t *v)
{
    ngx_uint_t                      i;
    ngx_http_ai_guard_key_t        *key;
    ngx_http_ai_guard_main_conf_t  *amcf;

    key = &info->key;

    if (b->has & NGX_HTTP_AI_GUARD_ADMIN_TIER) {
        amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

        if (ngx_http_ai_guard_tier_find(amcf, b->tier.data, b->tier.len)
            == NULL)
        {
            return ngx_http_ai_guard_admin_invalid(v, "tier",
                                                   "\"tier\" names no tier "
                                                   "of ai_guard_tier.");
        }

        key->tier.data = b->tier.data;
        key->tier.len = b->tier.len;
    }

    if (b->has & NGX_HTTP_AI_GUARD_ADMIN_MODELS) {
        key->models = ngx_palloc(r->pool, (b->nmodels + 1)
                                          * sizeof(ngx_http_ai_guard_str_t));
        if (key->models == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = 0; i < b->nmodels; i++) {
            key->models[i].data = b->models[i].data;
            key->models[i].len = b->models[i].len;
        }

        key->nmodels = b->nmodels;
        key->has_models = (b->nmodels != 0);
    }

    if (b->has & NGX_HTTP_AI_GUARD_ADMIN_EXPIRES) {
        key->expires = b->expires;
    }

    if (b->has & NGX_HTTP_AI_GUARD_ADMIN_DISABLED) {
        key->disabled = b->disabled ? 1 : 0;
    }

    if (b->has & NGX_HTTP_AI_GUARD_ADMIN_CUSTOMER) {
        key->stripe_customer.data = b->customer.data;
        key->stripe_customer.len = b->customer.len;
    }

    /* named limits are set or removed (null); the others stay as they are */

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        if ((b->limits_set | b->limits_null) & (1u << i)) {
            info->limits[i] = b->limits[i];
        }
    }

    if (ngx_http_ai_guard_store_metadata(r->pool, info, b) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/* tenants/<tenant>: GET, PUT, DELETE; the name as nginx decoded it */

static ngx_int_t
ngx_http_ai_guard_admin_route_tenant(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, ngx_http_ai_guard_verdict_t *v,
    u_char *p, u_char *last)
{
    u_char  *c;

    if (last - p > NGX_HTTP_AI_GUARD_TENANT_LEN) {
        goto invalid;
    }

    for (c = p; c < last; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            goto invalid;
        }
    }

    actx->tenant.data = p;
    actx->tenant.len = last - p;

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        actx->op = NGX_HTTP_AI_GUARD_OP_TENANT_GET;

    } else if (r->method & NGX_HTTP_PUT) {
        actx->op = NGX_HTTP_AI_GUARD_OP_TENANT_PUT;

    } else if (r->method & NGX_HTTP_DELETE) {
        actx->op = NGX_HTTP_AI_GUARD_OP_TENANT_DEL;

    } else {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_NOT_ALLOWED,
                                      "method_not_allowed",
                                      "This method is not allowed here: "
                                      "see docs/admin.md.");
        return NGX_DECLINED;
    }

    return NGX_OK;

invalid:

    return ngx_http_ai_guard_admin_invalid(v, "tenant",
                                           "A tenant is 1 to 128 bytes "
                                           "without control characters.");
}


/*
 * PUT: the tenant's limits are the body's (all of them: a limit it does
 * not name is removed); DELETE: none.  Audited, journaled and sent to
 * Redis as a key's change; the answer is the tenant's limits, as they
 * were for a DELETE.
 */

static ngx_int_t
ngx_http_ai_guard_admin_tenant(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx, ngx_http_ai_guard_verdict_t *v)
{
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_uint_t                      i, del;
    ngx_http_ai_guard_out_t         o;
    ngx_http_ai_guard_key_info_t    info, old;
    ngx_http_ai_guard_admin_body_t *b;

    b = &actx->body;
    del = (actx->op == NGX_HTTP_AI_GUARD_OP_TENANT_DEL);

    if (!del && !(b->has & NGX_HTTP_AI_GUARD_ADMIN_LIMITS)) {
        return ngx_http_ai_guard_admin_refuse(r, v, NGX_HTTP_BAD_REQUEST,
                                              "invalid_request", "limits",
                                              "\"limits\" is required.");
    }

    ngx_memzero(&info, sizeof(ngx_http_ai_guard_key_info_t));
    ngx_memzero(&old, sizeof(ngx_http_ai_guard_key_info_t));

    info.tenant_rec = 1;
    info.key.tenant.data = actx->tenant.data;
    info.key.tenant.len = actx->tenant.len;
    old.tenant_rec = 1;
    old.key.tenant = info.key.tenant;

    for (i = 1; !del && i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        info.limits[i] = b->limits[i];
    }

    rc = ngx_http_ai_guard_store_tenant_set(r, &info, &old);

    if (rc == NGX_DECLINED && del) {
        return ngx_http_ai_guard_admin_refuse(r, v, NGX_HTTP_NOT_FOUND,
                                              "tenant_not_found", "tenant",
                                              "This tenant has no limits "
                                              "of its own.");
    }

    if (rc == NGX_BUSY) {
        return ngx_http_ai_guard_admin_refuse(r, v,
                                              NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "key_store_full", NULL,
                                              "The key store has no room for "
                                              "this change: the tenant is as "
                                              "it was.");
    }

    if (rc == NGX_OK) {
        /* a PUT that names no limit removes them, as a DELETE */
        del = (b->limits_set == 0);

        ngx_http_ai_guard_admin_audit(r, del ? "limits removed"
                                             : "limits set", &info);
        ngx_http_ai_guard_store_publish(r, &info, del);

        if (ngx_http_ai_guard_store_journal(r, &info, del) != NGX_OK) {
            return ngx_http_ai_guard_admin_unsaved(r, v);
        }

    } else if (rc != NGX_DECLINED) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&o, sizeof(ngx_http_ai_guard_out_t));
    o.pool = r->pool;
    o.last = &o.out;

    ngx_http_ai_guard_out_text(&o, "{\"tenant\":");
    ngx_http_ai_guard_out_json(&o, &actx->tenant);

    p = ngx_http_ai_guard_out_reserve(&o, NGX_HTTP_AI_GUARD_LIMITS_LEN);

    if (p) {
        o.buf->last = ngx_http_ai_guard_store_limits(p,
                                  actx->op == NGX_HTTP_AI_GUARD_OP_TENANT_DEL
                                  ? old.limits : info.limits);
    }

    ngx_http_ai_guard_out_text(&o, "}\n");

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_guard_out_send(r, &o, "application/json");
}


/*
 * GET: the tenant's limits, the ids of its keys (the keys file's, then
 * the store's, at most a listing's 1000), and its spend as the usage
 * report says it, sent from there (after Redis's rows when waited for).
 */

static ngx_int_t
ngx_http_ai_guard_admin_tenant_get(ngx_http_request_t *r,
    ngx_http_ai_guard_admin_ctx_t *actx)
{
    u_char                         *p;
    uint64_t                        limits[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    ngx_uint_t                      i, n;
    ngx_array_t                    *keys;
    ngx_http_ai_guard_key_t        *k, *who;
    ngx_http_ai_guard_out_t        *o;
    ngx_http_ai_guard_key_info_t   *info;
    ngx_http_ai_guard_main_conf_t  *amcf;

    ngx_memzero(limits, sizeof(limits));
    (void) ngx_http_ai_guard_store_tenant(r, &actx->tenant, limits);

    keys = ngx_http_ai_guard_store_list(r, &actx->tenant);

    o = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_out_t));
    who = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_key_t));

    if (keys == NULL || o == NULL || who == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o->pool = r->pool;
    o->last = &o->out;

    ngx_http_ai_guard_out_text(o, "{\"tenant\":");
    ngx_http_ai_guard_out_json(o, &actx->tenant);

    p = ngx_http_ai_guard_out_reserve(o, NGX_HTTP_AI_GUARD_LIMITS_LEN);

    if (p) {
        o->buf->last = ngx_http_ai_guard_store_limits(p, limits);
    }

    ngx_http_ai_guard_out_text(o, ",\"keys\":[");

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    n = 0;

    for (k = amcf->keys ? amcf->keys->first : NULL;
         k && n < NGX_HTTP_AI_GUARD_LIST_MAX;
         k = k->next)
    {
        if (ngx_http_ai_guard_str_eq((ngx_str_t *) &k->tenant,
                                     &actx->tenant))
        {
            ngx_http_ai_guard_out_text(o, n++ ? "," : "");
            ngx_http_ai_guard_out_json(o, (ngx_str_t *) &k->id);
        }
    }

    info = keys->elts;

    for (i = 0; i < keys->nelts && n < NGX_HTTP_AI_GUARD_LIST_MAX; i++) {
        ngx_http_ai_guard_out_text(o, n++ ? "," : "");
        ngx_http_ai_guard_out_json(o, (ngx_str_t *) &info[i].key.id);
    }

    ngx_http_ai_guard_out_text(o, "],");

    /* the report of the tenant, without a key's own rows */

    who->tenant.data = actx->tenant.data;
    who->tenant.len = actx->tenant.len;

    return ngx_http_ai_guard_usage_self(r, o, who);
}


/*
 * GET of a key: its fields and its spend as ai_guard_self says it (the
 * usage report's default period, the tenant's and the key's own rows,
 * from the report's source), sent from there.  The strings of "info"
 * are the pool's or the keys file's: the report keeps them while it
 * waits for Redis.
 */

static ngx_int_t
ngx_http_ai_guard_admin_get(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info)
{
    ngx_http_ai_guard_out_t  *o;

    o = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_out_t));
    if (o == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o->pool = r->pool;
    o->last = &o->out;

    ngx_http_ai_guard_admin_fields(o, info, NULL);
    ngx_http_ai_guard_out_text(o, ",");

    return ngx_http_ai_guard_usage_self(r, o, &info->key);
}


/* a secret from OpenSSL's CSPRNG, and its digest: the only thing kept */

static ngx_int_t
ngx_http_ai_guard_admin_secret(ngx_http_request_t *r, u_char *secret,
    u_char *digest)
{
    u_char     rnd[64], *p;
    size_t     n;
    ngx_str_t  s;

    p = ngx_cpymem(secret, "sk-aig-", sizeof("sk-aig-") - 1);
    n = 0;

    while (n < NGX_HTTP_AI_GUARD_SECRET_LEN) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "ai_guard admin: RAND_bytes() failed");
            return NGX_ERROR;
        }

        n += ngx_http_ai_guard_admin_base62(p + n,
                                            NGX_HTTP_AI_GUARD_SECRET_LEN - n,
                                            rnd, sizeof(rnd));
    }

    ngx_explicit_memzero(rnd, sizeof(rnd));

    s.data = secret;
    s.len = NGX_HTTP_AI_GUARD_SECRET;

    return ngx_http_ai_guard_digest(&s, 1, digest);
}


/* a key of the keys file, as the store's are shown; NGX_DECLINED: none */

static ngx_int_t
ngx_http_ai_guard_admin_file_key(ngx_http_request_t *r, ngx_str_t *id,
    ngx_http_ai_guard_key_info_t *info)
{
    ngx_http_ai_guard_key_t        *k;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    for (k = amcf->keys ? amcf->keys->first : NULL; k; k = k->next) {
        if (k->id.len == id->len
            && ngx_memcmp(k->id.data, id->data, id->len) == 0)
        {
            ngx_memzero(info, sizeof(ngx_http_ai_guard_key_info_t));
            info->key = *k;
            info->from_file = 1;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_guard_admin_list(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v)
{
    u_char                        *dst, *src;
    ngx_str_t                      value, tenant;
    ngx_uint_t                     i, n;
    ngx_array_t                   *keys;
    ngx_http_ai_guard_out_t        o;
    ngx_http_ai_guard_key_t       *k;
    ngx_http_ai_guard_key_info_t  *info, file;
    ngx_http_ai_guard_main_conf_t *amcf;

    ngx_str_null(&tenant);

    if (ngx_http_arg(r, (u_char *) "tenant", 6, &value) == NGX_OK) {
        dst = ngx_pnalloc(r->pool, value.len + 1);
        if (dst == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        src = value.data;
        tenant.data = dst;
        ngx_unescape_uri(&dst, &src, value.len, 0);
        tenant.len = dst - tenant.data;
    }

    keys = ngx_http_ai_guard_store_list(r, &tenant);
    if (keys == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&o, sizeof(ngx_http_ai_guard_out_t));
    o.pool = r->pool;
    o.last = &o.out;

    ngx_http_ai_guard_out_text(&o, "{\"keys\":[");

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    n = 0;

    for (k = amcf->keys ? amcf->keys->first : NULL; k; k = k->next) {
        if (tenant.len
            && (k->tenant.len != tenant.len
                || ngx_memcmp(k->tenant.data, tenant.data, tenant.len) != 0))
        {
            continue;
        }

        if (n == NGX_HTTP_AI_GUARD_LIST_MAX) {
            break;
        }

        ngx_memzero(&file, sizeof(ngx_http_ai_guard_key_info_t));
        file.key = *k;
        file.from_file = 1;

        ngx_http_ai_guard_out_text(&o, n++ ? "," : "");
        ngx_http_ai_guard_admin_write(&o, &file, NULL);
    }

    info = keys->elts;

    for (i = 0; i < keys->nelts && n < NGX_HTTP_AI_GUARD_LIST_MAX; i++) {
        ngx_http_ai_guard_out_text(&o, n++ ? "," : "");
        ngx_http_ai_guard_admin_write(&o, &info[i], NULL);
    }

    ngx_http_ai_guard_out_printf(&o, 64, "],\"truncated\":%s}\n",
                                 (n == NGX_HTTP_AI_GUARD_LIST_MAX
                                  && i < keys->nelts) ? "true" : "false");

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_guard_out_send(r, &o, "application/json");
}


/* one line a change: who, what, which key; never a secret */

static void
ngx_http_ai_guard_admin_audit(ngx_http_request_t *r, const char *what,
    ngx_http_ai_guard_key_info_t *info)
{
    u_char     who[NGX_HTTP_AI_GUARD_NAME_LEN * 4], *last;
    ngx_str_t  user;

    if (r->headers_in.user.len == 0) {
        (void) ngx_http_auth_basic_user(r);
    }

    user = r->headers_in.user;

    if (user.len == 0) {
        last = ngx_http_ai_guard_printable(who, sizeof(who),
                                           r->connection->addr_text.data,
                                           r->connection->addr_text.len);

    } else {
        last = ngx_http_ai_guard_printable(who, sizeof(who), user.data,
                                           ngx_min(user.len,
                                                NGX_HTTP_AI_GUARD_NAME_LEN));
    }

    if (info->tenant_rec) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "ai_guard admin: tenant \"%V\" %s by %s \"%*s\"",
                      &info->key.tenant, what,
                      user.len ? "user" : "address", last - who, who);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "ai_guard admin: key \"%V\" of tenant \"%V\" %s by %s "
                  "\"%*s\"", &info->key.id, &info->key.tenant, what,
                  user.len ? "user" : "address", last - who, who);
}


static ngx_int_t
ngx_http_ai_guard_admin_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_ai_guard_key_info_t *info, u_char *secret)
{
    ngx_table_elt_t          *h;
    ngx_http_ai_guard_out_t   o;

    ngx_memzero(&o, sizeof(ngx_http_ai_guard_out_t));
    o.pool = r->pool;
    o.last = &o.out;

    ngx_http_ai_guard_admin_write(&o, info, secret);
    ngx_http_ai_guard_out_text(&o, "\n");

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;

    /* a secret is shown once: no cache on the way keeps it */

    if (secret) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Cache-Control");
        ngx_str_set(&h->value, "no-store");
    }

    return ngx_http_ai_guard_out_send(r, &o, "application/json");
}


static void
ngx_http_ai_guard_admin_write(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_key_info_t *info, u_char *secret)
{
    ngx_http_ai_guard_admin_fields(o, info, secret);
    ngx_http_ai_guard_out_text(o, "}");
}


/* a key's object without its closing brace: a GET adds its spend */

static void
ngx_http_ai_guard_admin_fields(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_key_info_t *info, u_char *secret)
{
    u_char                   *p;
    ngx_str_t                 s;
    ngx_uint_t                i;
    ngx_http_ai_guard_key_t  *key;

    key = &info->key;

    ngx_http_ai_guard_out_text(o, "{\"id\":");
    ngx_http_ai_guard_out_json(o, (ngx_str_t *) &key->id);

    if (secret) {
        s.data = secret;
        s.len = NGX_HTTP_AI_GUARD_SECRET;
        ngx_http_ai_guard_out_text(o, ",\"key\":");
        ngx_http_ai_guard_out_json(o, &s);
    }

    ngx_http_ai_guard_out_text(o, ",\"tenant\":");
    ngx_http_ai_guard_out_json(o, (ngx_str_t *) &key->tenant);

    ngx_http_ai_guard_out_text(o, ",\"tier\":");

    if (key->tier.len) {
        ngx_http_ai_guard_out_json(o, (ngx_str_t *) &key->tier);

    } else {
        ngx_http_ai_guard_out_text(o, "null");
    }

    ngx_http_ai_guard_out_text(o, ",\"models\":[");

    for (i = 0; i < key->nmodels; i++) {
        ngx_http_ai_guard_out_text(o, i ? "," : "");
        ngx_http_ai_guard_out_json(o, (ngx_str_t *) &key->models[i]);
    }

    ngx_http_ai_guard_out_text(o, "]");

    ngx_http_ai_guard_admin_time(o, "expires", key->expires);

    ngx_http_ai_guard_out_text(o, key->disabled ? ",\"disabled\":true"
                                                : ",\"disabled\":false");

    ngx_http_ai_guard_out_text(o, ",\"stripe_customer\":");

    if (key->stripe_customer.len) {
        ngx_http_ai_guard_out_json(o, (ngx_str_t *) &key->stripe_customer);

    } else {
        ngx_http_ai_guard_out_text(o, "null");
    }

    p = ngx_http_ai_guard_out_reserve(o, NGX_HTTP_AI_GUARD_LIMITS_LEN);

    if (p) {
        o->buf->last = ngx_http_ai_guard_store_limits(p, info->limits);
    }

    /* the operator's own labels: shown, never read by the guard */

    if (info->nmeta) {
        ngx_http_ai_guard_out_text(o, ",\"metadata\":{");

        for (i = 0; i < 2 * info->nmeta; i++) {
            ngx_http_ai_guard_out_text(o, i == 0 ? "" : (i % 2 ? ":" : ","));
            ngx_http_ai_guard_out_json(o, (ngx_str_t *) &info->meta[i]);
        }

        ngx_http_ai_guard_out_text(o, "}");
    }

    ngx_http_ai_guard_out_text(o, info->from_file ? ",\"source\":\"file\""
                                                  : ",\"source\":\"api\"");

    ngx_http_ai_guard_admin_time(o, "created", info->created);
    ngx_http_ai_guard_admin_time(o, "last_used", info->last_used);
    ngx_http_ai_guard_admin_time(o, "old_key_until",
                                 (info->has_old
                                  && info->grace_until > ngx_time())
                                 ? info->grace_until : 0);
}


/* ,"name":"YYYY-MM-DDThh:mm:ssZ" or ,"name":null for 0 */

static void
ngx_http_ai_guard_admin_time(ngx_http_ai_guard_out_t *o, char *name,
    int64_t t)
{
    ngx_tm_t  tm;

    if (t == 0) {
        ngx_http_ai_guard_out_printf(o, 64, ",\"%s\":null", name);
        return;
    }

    ngx_gmtime((time_t) t, &tm);

    ngx_http_ai_guard_out_printf(o, 64,
                                 ",\"%s\":\"%4d-%02d-%02dT%02d:%02d:%02dZ\"",
                                 name, tm.ngx_tm_year, tm.ngx_tm_mon,
                                 tm.ngx_tm_mday, tm.ngx_tm_hour,
                                 tm.ngx_tm_min, tm.ngx_tm_sec);
}


static ngx_int_t
ngx_http_ai_guard_admin_refuse(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v, ngx_uint_t status, char *code,
    const char *param, const char *message)
{
    ngx_http_ai_guard_set_verdict(v, status, code, NULL);

    v->message.data = (u_char *) message;
    v->message.len = ngx_strlen(message);

    if (param && param[0]) {
        v->param.data = (u_char *) param;
        v->param.len = ngx_strlen(param);
    }

    return ngx_http_ai_guard_send_error(r, v);
}


/* a 400 of a field: NGX_DECLINED with the verdict set */

static ngx_int_t
ngx_http_ai_guard_admin_invalid(ngx_http_ai_guard_verdict_t *v, char *param,
    char *message)
{
    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  message);

    v->param.data = (u_char *) param;
    v->param.len = ngx_strlen(param);

    return NGX_DECLINED;
}


/* the change is in force, but its journal line could not be written */

static ngx_int_t
ngx_http_ai_guard_admin_unsaved(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v)
{
    return ngx_http_ai_guard_admin_refuse(r, v,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          "key_not_saved", NULL,
                                          "The change is in force, but it "
                                          "could not be saved to "
                                          "ai_guard_state_dir: see the "
                                          "error log.");
}
