
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_STORE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_STORE_H_INCLUDED_


/*
 * The key store (docs/admin.md): the keys the admin API made, in a shared
 * memory zone of their own, so that a change is in force on every worker
 * for the next request.  Only digests are kept, never a secret.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_admin_body.h"


/* a key as the store holds it, copied out into a request's pool */

typedef struct {
    ngx_http_ai_guard_key_t        key;
    int64_t                        created;
    int64_t                        last_used;    /* 0: never */
    int64_t                        grace_until;  /* the old secret's end */
    uint64_t                       seq;          /* of its last change */
    uint64_t                       limits[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    u_char                         old_digest[NGX_HTTP_AI_GUARD_DIGEST_LEN];
    ngx_http_ai_guard_str_t       *meta;         /* name, value, ... */
    ngx_uint_t                     nmeta;        /* names */
    unsigned                       has_old:1;
    unsigned                       from_file:1;
    unsigned                       tenant_rec:1; /* a tenant's limits:
                                                    key.tenant, limits and
                                                    seq only */
} ngx_http_ai_guard_key_info_t;


char *ngx_http_ai_guard_key_store(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_ai_guard_store_metadata(ngx_pool_t *pool,
    ngx_http_ai_guard_key_info_t *info, ngx_http_ai_guard_admin_body_t *b);

ngx_int_t ngx_http_ai_guard_store_lookup(ngx_http_request_t *r,
    u_char *digest, ngx_http_ai_guard_key_t **key);

ngx_int_t ngx_http_ai_guard_store_get(ngx_http_request_t *r, ngx_str_t *id,
    ngx_http_ai_guard_key_info_t *info);
ngx_int_t ngx_http_ai_guard_store_create(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info);
ngx_int_t ngx_http_ai_guard_store_replace(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info, ngx_http_ai_guard_key_info_t *old);
ngx_int_t ngx_http_ai_guard_store_delete(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info);
ngx_array_t *ngx_http_ai_guard_store_list(ngx_http_request_t *r,
    ngx_str_t *tenant);
uint64_t ngx_http_ai_guard_store_changes(ngx_http_ai_guard_main_conf_t *amcf,
    ngx_uint_t *keys);

/* a tenant's limits (docs/admin.md, tenants): by kind, 0 none */
ngx_int_t ngx_http_ai_guard_store_tenant(ngx_http_request_t *r,
    ngx_str_t *tenant, uint64_t *limits);
ngx_int_t ngx_http_ai_guard_store_tenant_set(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info, ngx_http_ai_guard_key_info_t *old);

/* the store's files (store_file.c): loading, the snapshot's walk */
typedef ngx_int_t (*ngx_http_ai_guard_store_each_pt)(
    ngx_http_ai_guard_key_info_t *info, void *data);

ngx_int_t ngx_http_ai_guard_store_ready(ngx_http_ai_guard_zone_t *zone);
ngx_int_t ngx_http_ai_guard_store_loaded(ngx_http_ai_guard_zone_t *zone);
ngx_int_t ngx_http_ai_guard_store_restore(ngx_http_ai_guard_zone_t *zone,
    ngx_pool_t *pool, ngx_http_ai_guard_key_info_t *info,
    ngx_uint_t deleted);
/* the store's sync with Redis (store_redis.c): its entry, the walk's */
#define NGX_HTTP_AI_GUARD_STORE_SYNC  '~'

ngx_int_t ngx_http_ai_guard_store_entry(ngx_http_ai_guard_node_t *node,
    ngx_pool_t *pool, ngx_http_ai_guard_key_info_t *info,
    ngx_uint_t *deleted);
ngx_int_t ngx_http_ai_guard_store_tenant_entry(ngx_http_ai_guard_node_t *node,
    ngx_pool_t *pool, ngx_http_ai_guard_key_info_t *info,
    ngx_uint_t *deleted);
ngx_int_t ngx_http_ai_guard_store_each(ngx_http_ai_guard_zone_t *zone,
    ngx_pool_t *pool, ngx_http_ai_guard_store_each_pt each, void *data);


#endif /* _NGX_HTTP_AI_GUARD_STORE_H_INCLUDED_ */
