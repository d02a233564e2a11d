
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_conf.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_slots.h"
#include "ngx_http_ai_guard_store.h"
#include "ngx_http_ai_guard_store_zone.h"


#define NGX_HTTP_AI_GUARD_STORE_MAX  100000
#define NGX_HTTP_AI_GUARD_ID_MAX     64

/* the digest table's references: a record's offset in the zone / 8 */
#define NGX_HTTP_AI_GUARD_STORE_SIZE_MAX  ((size_t) 32 << 30)

/* the entries' keys: a byte of kind, then the id or the tenant's name */
#define NGX_HTTP_AI_GUARD_STORE_META '#'
#define NGX_HTTP_AI_GUARD_STORE_TOMB 'x'
#define NGX_HTTP_AI_GUARD_STORE_TEN  'T'
#define NGX_HTTP_AI_GUARD_STORE_TTOMB 'y'
/* NGX_HTTP_AI_GUARD_STORE_KEY 'i' is store_zone.h's */
/* NGX_HTTP_AI_GUARD_STORE_SYNC '~' is store_redis.c's (store.h) */

/* a tenant's name, as a key's tenant: 1 to 128 bytes */
#define NGX_HTTP_AI_GUARD_TENANT_MAX 128


/* a tenant's limits: "T" and its name */

typedef struct {
    uint64_t                       seq;
    uint64_t                       limits[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
} ngx_http_ai_guard_store_tenant_t;


/* while the files are read: a key or a tenant deleted, at which change */

typedef struct {
    uint64_t                       seq;
} ngx_http_ai_guard_store_tomb_t;


/* a walk: the keys of a tenant into an array, or each key to "each" */

typedef struct {
    ngx_pool_t                      *pool;
    ngx_str_t                       *tenant;
    ngx_array_t                     *keys;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_store_each_pt  each;
    void                            *data;
} ngx_http_ai_guard_store_walk_t;


static ngx_http_ai_guard_store_rec_t *ngx_http_ai_guard_store_find(
    ngx_http_ai_guard_zone_t *zone, u_char *id, size_t len);
static ngx_http_ai_guard_store_rec_t *ngx_http_ai_guard_store_locked(
    ngx_http_request_t *r, ngx_str_t *id, ngx_http_ai_guard_zone_t **zone,
    ngx_http_ai_guard_store_meta_t **meta);
static ngx_http_ai_guard_store_rec_t *ngx_http_ai_guard_store_put(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_key_info_t *info);
static ngx_int_t ngx_http_ai_guard_store_copy(ngx_pool_t *pool,
    ngx_http_ai_guard_store_rec_t *rec, ngx_http_ai_guard_key_info_t *info);
static u_char *ngx_http_ai_guard_store_str(ngx_pool_t *pool, u_char *p,
    ngx_http_ai_guard_str_t *s);
static ngx_int_t ngx_http_ai_guard_store_visit(ngx_http_ai_guard_node_t *node,
    void *data);
static ngx_http_ai_guard_store_meta_t *ngx_http_ai_guard_store_meta(
    ngx_http_ai_guard_zone_t *zone);
static ngx_int_t ngx_http_ai_guard_store_tenant_restore(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_key_info_t *info,
    ngx_uint_t deleted);
static size_t ngx_http_ai_guard_store_tenant_key(u_char *k, u_char kind,
    ngx_str_t *tenant);
static ngx_int_t ngx_http_ai_guard_store_tomb(ngx_http_ai_guard_zone_t *zone,
    u_char *k, size_t len, uint64_t seq);


/* ai_guard_key_store <size> [max=<number>] */

char *
ngx_http_ai_guard_key_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t *amcf = conf;

    ssize_t     size;
    ngx_int_t   max;
    ngx_str_t  *value, name;

    if (amcf->store) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < NGX_HTTP_AI_GUARD_PART_MIN
        || (size_t) size > NGX_HTTP_AI_GUARD_STORE_SIZE_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_key_store: invalid size \"%V\", it "
                           "must be from 32k to 32g, such as 16m",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    amcf->store_max = NGX_HTTP_AI_GUARD_STORE_MAX;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "max=", 4) != 0
            || (max = ngx_atoi(value[2].data + 4, value[2].len - 4))
               == NGX_ERROR
            || max == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_key_store: invalid parameter "
                               "\"%V\", it must be max=<number of keys>, "
                               "at least 1, such as max=100000", &value[2]);
            return NGX_CONF_ERROR;
        }

        amcf->store_max = (ngx_uint_t) max;
    }

    amcf->store = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_zone_t));
    if (amcf->store == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&name, "ai_guard_key_store");

    if (ngx_http_ai_guard_zone_add(cf, amcf->store, &name, size) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* the digest table's size: max= */
    amcf->store->data = amcf;

    return NGX_CONF_OK;
}


/*
 * The key of a digest, for authentication: NGX_OK and *key (in the
 * request's pool), NGX_DECLINED: no key has it (or it is a rotated
 * secret whose grace is over).  The key's "last used" is updated.
 */

ngx_int_t
ngx_http_ai_guard_store_lookup(ngx_http_request_t *r, u_char *digest,
    ngx_http_ai_guard_key_t **key)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_store_rec_t   *rec;
    ngx_http_ai_guard_key_info_t    *info;
    ngx_http_ai_guard_store_meta_t  *meta;
    ngx_http_ai_guard_main_conf_t   *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = amcf->store;

    if (zone == NULL || zone->sh == NULL) {
        return NGX_DECLINED;
    }

    info = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_key_info_t));
    if (info == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&zone->shpool->mutex);

    meta = ngx_http_ai_guard_store_meta(zone);

    rec = meta ? ngx_http_ai_guard_store_by_digest(zone, meta->table, digest)
               : NULL;

    if (rec == NULL) {
        goto done;
    }

    /* the probe compared bytes as it went: the verdict is in constant time */

    if (CRYPTO_memcmp(rec->digest, digest, NGX_HTTP_AI_GUARD_DIGEST_LEN)
        != 0
        && !(rec->has_old
             && CRYPTO_memcmp(rec->old_digest, digest,
                              NGX_HTTP_AI_GUARD_DIGEST_LEN) == 0
             && rec->grace_until > (int64_t) ngx_time()))
    {
        goto done;
    }

    rec->last_used = ngx_time();

    rc = ngx_http_ai_guard_store_copy(r->pool, rec, info);

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc != NGX_OK) {
        return rc;
    }

    /* the secret that matched: the old one, in its grace period */
    ngx_memcpy(info->key.digest, digest, NGX_HTTP_AI_GUARD_DIGEST_LEN);

    /* in the request's pool, as the key: the limiter reads them */

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        if (info->limits[i]) {
            info->key.limits = info->limits;
            break;
        }
    }

    if (info->key.tier.len) {
        info->key.tier_conf = ngx_http_ai_guard_tier_find(amcf,
                                                          info->key.tier.data,
                                                          info->key.tier.len);

        /* a tier a reload took away: never the key without its limits */

        if (info->key.tier_conf == NULL) {
            info->key.disabled = 1;
        }
    }

    *key = &info->key;

    return NGX_OK;
}


/* NGX_OK: found, copied into the request's pool; NGX_DECLINED: none */

ngx_int_t
ngx_http_ai_guard_store_get(ngx_http_request_t *r, ngx_str_t *id,
    ngx_http_ai_guard_key_info_t *info)
{
    ngx_int_t                        rc;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_store_rec_t   *rec;
    ngx_http_ai_guard_store_meta_t  *meta;

    rec = ngx_http_ai_guard_store_locked(r, id, &zone, &meta);

    rc = rec ? ngx_http_ai_guard_store_copy(r->pool, rec, info)
             : NGX_DECLINED;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/*
 * NGX_OK; NGX_DECLINED: the id is taken; NGX_BUSY: the store holds max=
 * keys; NGX_ABORT: no room in the zone.
 */

ngx_int_t
ngx_http_ai_guard_store_create(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info)
{
    ngx_int_t                        rc;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_store_rec_t   *rec;
    ngx_http_ai_guard_store_meta_t  *meta;
    ngx_http_ai_guard_main_conf_t   *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = amcf->store;

    ngx_shmtx_lock(&zone->shpool->mutex);

    meta = ngx_http_ai_guard_store_meta(zone);

    if (meta == NULL || meta->keys >= amcf->store_max) {
        rc = NGX_BUSY;
        goto done;
    }

    if (ngx_http_ai_guard_store_find(zone, info->key.id.data,
                                     info->key.id.len))
    {
        rc = NGX_DECLINED;
        goto done;
    }

    if (!ngx_http_ai_guard_store_room(meta, 1, 0)) {
        rc = NGX_ABORT;
        goto done;
    }

    rec = ngx_http_ai_guard_store_put(zone, info);

    if (rec == NULL) {
        rc = NGX_ABORT;
        goto done;
    }

    rc = ngx_http_ai_guard_store_index(zone, meta->table, rec, 1);

    meta->keys++;
    meta->changes++;
    info->seq = ++meta->seq;

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/*
 * A key changed (its fields, or its secrets on rotation): "old" is what
 * the store held, its digests that "info" no longer has are dropped.
 * NGX_OK; NGX_DECLINED: the key is gone (deleted meanwhile); NGX_BUSY: no
 * room, the key is as it was.
 */

ngx_int_t
ngx_http_ai_guard_store_replace(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info, ngx_http_ai_guard_key_info_t *old)
{
    ngx_int_t                        rc;
    ngx_str_t                       *id;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_store_rec_t   *rec;
    ngx_http_ai_guard_store_meta_t  *meta;

    id = (ngx_str_t *) &info->key.id;

    /* the zone's mutex is held from here to the end */

    rec = ngx_http_ai_guard_store_locked(r, id, &zone, &meta);

    if (rec == NULL) {
        rc = NGX_DECLINED;
        goto done;
    }

    /* room for the new secrets' digests first: without, nothing changed */

    if (!ngx_http_ai_guard_store_room(meta, 1 + info->has_old,
                                      1 + rec->has_old))
    {
        rc = NGX_BUSY;
        goto done;
    }

    info->seq = meta->seq + 1;

    /* the table never names a freed record */

    (void) ngx_http_ai_guard_store_index(zone, meta->table, rec, 0);
    ngx_http_ai_guard_zone_free(zone, rec);

    rec = ngx_http_ai_guard_store_put(zone, info);

    if (rec == NULL) {

        /* the old entry's room was just freed: it fits there again */

        rec = ngx_http_ai_guard_store_put(zone, old);

        if (rec == NULL) {
            meta->keys--;
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "ai_guard key store: no room to keep key \"%V\"",
                          id);

        } else {
            (void) ngx_http_ai_guard_store_index(zone, meta->table, rec, 1);
        }

        rc = NGX_BUSY;
        goto done;
    }

    rc = ngx_http_ai_guard_store_index(zone, meta->table, rec, 1);

    meta->changes++;
    meta->seq++;

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/* NGX_OK: deleted, "info" holds what it was; NGX_DECLINED: none */

ngx_int_t
ngx_http_ai_guard_store_delete(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info)
{
    ngx_int_t                        rc;
    ngx_str_t                       *id;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_store_rec_t   *rec;
    ngx_http_ai_guard_store_meta_t  *meta;

    id = (ngx_str_t *) &info->key.id;

    /* the zone's mutex is held from here to the end */

    rec = ngx_http_ai_guard_store_locked(r, id, &zone, &meta);

    if (rec == NULL) {
        rc = NGX_DECLINED;
        goto done;
    }

    rc = ngx_http_ai_guard_store_copy(r->pool, rec, info);

    if (rc != NGX_OK) {
        goto done;
    }

    (void) ngx_http_ai_guard_store_index(zone, meta->table, rec, 0);
    ngx_http_ai_guard_zone_free(zone, rec);

    meta->keys--;
    meta->changes++;
    info->seq = ++meta->seq;

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/* the store's keys (of a tenant, when given), copied out */

ngx_array_t *
ngx_http_ai_guard_store_list(ngx_http_request_t *r, ngx_str_t *tenant)
{
    ngx_int_t                        rc;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_store_walk_t   w;
    ngx_http_ai_guard_main_conf_t   *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = amcf->store;

    ngx_memzero(&w, sizeof(ngx_http_ai_guard_store_walk_t));

    w.pool = r->pool;
    w.tenant = tenant;
    w.keys = ngx_array_create(r->pool, 16,
                              sizeof(ngx_http_ai_guard_key_info_t));
    if (w.keys == NULL) {
        return NULL;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    rc = ngx_http_ai_guard_zone_walk(zone, ngx_http_ai_guard_store_visit, &w);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc == NGX_OK ? w.keys : NULL;
}


static ngx_int_t
ngx_http_ai_guard_store_visit(ngx_http_ai_guard_node_t *node, void *data)
{
    ngx_http_ai_guard_store_walk_t *w = data;

    u_char                         *key;
    size_t                          len;
    ngx_http_ai_guard_key_info_t   *info, one;
    ngx_http_ai_guard_store_rec_t  *rec;

    rec = (ngx_http_ai_guard_store_rec_t *) node->data;
    key = ngx_http_ai_guard_zone_key(rec, &len);

    if (w->each) {
        if (key[0] == NGX_HTTP_AI_GUARD_STORE_TOMB
            || key[0] == NGX_HTTP_AI_GUARD_STORE_TTOMB)
        {
            ngx_http_ai_guard_zone_free(w->zone, rec);
            return NGX_OK;
        }

        if (key[0] == NGX_HTTP_AI_GUARD_STORE_TEN) {
            ngx_memzero(&one, sizeof(ngx_http_ai_guard_key_info_t));

            one.tenant_rec = 1;
            one.key.tenant.data = key + 1;
            one.key.tenant.len = len - 1;
            one.seq = ((ngx_http_ai_guard_store_tenant_t *) rec)->seq;
            ngx_memcpy(one.limits,
                       ((ngx_http_ai_guard_store_tenant_t *) rec)->limits,
                       sizeof(one.limits));

            return w->each(&one, w->data);
        }

        if (key[0] != NGX_HTTP_AI_GUARD_STORE_KEY
            || ngx_http_ai_guard_store_copy(w->pool, rec, &one) != NGX_OK)
        {
            return key[0] == NGX_HTTP_AI_GUARD_STORE_KEY ? NGX_ERROR : NGX_OK;
        }

        return w->each(&one, w->data);
    }

    if (len == 0 || key[0] != NGX_HTTP_AI_GUARD_STORE_KEY) {
        return NGX_OK;
    }

    /* the tenant is the record's second string */

    if (w->tenant && w->tenant->len
        && (rec->data[rec->data[0] + 1] != w->tenant->len
            || ngx_memcmp(&rec->data[rec->data[0] + 2], w->tenant->data,
                          w->tenant->len)
               != 0))
    {
        return NGX_OK;
    }

    info = ngx_array_push(w->keys);
    if (info == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_ai_guard_store_copy(w->pool, rec, info);
}


uint64_t
ngx_http_ai_guard_store_changes(ngx_http_ai_guard_main_conf_t *amcf,
    ngx_uint_t *keys)
{
    uint64_t                         changes;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_store_meta_t  *meta;

    zone = amcf->store;
    changes = 0;
    *keys = 0;

    if (zone == NULL || zone->sh == NULL) {
        return 0;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    meta = ngx_http_ai_guard_store_meta(zone);

    if (meta) {
        changes = meta->changes;
        *keys = meta->keys;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return changes;
}


/*
 * Called once a cycle, in the master, before any worker of the cycle: the
 * digest table made (or made larger), so that no request waits for it.
 * The old cycle's workers may be running: under the zone's mutex.
 */

ngx_int_t
ngx_http_ai_guard_store_ready(ngx_http_ai_guard_zone_t *zone)
{
    ngx_http_ai_guard_store_meta_t  *meta;

    ngx_shmtx_lock(&zone->shpool->mutex);

    meta = ngx_http_ai_guard_store_meta(zone);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return meta ? NGX_OK : NGX_ERROR;
}


/*
 * Called once a cycle, in the master: NGX_OK when the zone was filled from
 * the state files already (a reload adopted it), else NGX_DECLINED, and
 * it is marked filled.
 */

ngx_int_t
ngx_http_ai_guard_store_loaded(ngx_http_ai_guard_zone_t *zone)
{
    ngx_http_ai_guard_store_meta_t  *meta;

    meta = ngx_http_ai_guard_store_meta(zone);

    if (meta == NULL || meta->loaded) {
        return NGX_OK;
    }

    meta->loaded = 1;

    return NGX_DECLINED;
}


/*
 * A line of the state files into the zone, in the master before any
 * worker: a key's state, or its deletion ("deleted").  The line of the
 * later change wins, whatever the order of the lines (two workers write
 * in the order they finish); a deleted key leaves a mark until the end of
 * the load, so that an older line does not bring it back.  NGX_BUSY: no
 * room.
 */

ngx_int_t
ngx_http_ai_guard_store_restore(ngx_http_ai_guard_zone_t *zone,
    ngx_pool_t *pool, ngx_http_ai_guard_key_info_t *info,
    ngx_uint_t deleted)
{
    u_char                           k[1 + NGX_HTTP_AI_GUARD_ID_MAX];
    ngx_str_t                       *id;
    ngx_http_ai_guard_store_rec_t   *rec;
    ngx_http_ai_guard_store_meta_t  *meta;
    ngx_http_ai_guard_store_tomb_t  *tomb;

    if (info->tenant_rec) {
        return ngx_http_ai_guard_store_tenant_restore(zone, info, deleted);
    }

    id = (ngx_str_t *) &info->key.id;
    meta = ngx_http_ai_guard_store_meta(zone);

    if (meta == NULL || id->len > NGX_HTTP_AI_GUARD_ID_MAX) {
        return NGX_BUSY;
    }

    meta->seq = ngx_max(meta->seq, info->seq);

    k[0] = NGX_HTTP_AI_GUARD_STORE_TOMB;
    ngx_memcpy(k + 1, id->data, id->len);

    tomb = ngx_http_ai_guard_zone_find(zone, k, 1 + id->len);
    rec = ngx_http_ai_guard_store_find(zone, id->data, id->len);

    /*
     * At an equal number the line replaces the key: the same change again
     * (the files, or a node's own line back from Redis), or two nodes'
     * changes made at once, where Redis's line is the one every node gets
     * (docs/admin.md, "Across nodes").  A deletion wins a tie.
     */

    if ((tomb && tomb->seq >= info->seq) || (rec && rec->seq > info->seq)) {
        return NGX_OK;
    }

    if (rec) {
        /* when the key was last used is the node's, whoever changed it */
        info->last_used = rec->last_used;

        (void) ngx_http_ai_guard_store_index(zone, meta->table, rec, 0);
        ngx_http_ai_guard_zone_free(zone, rec);
        meta->keys--;
    }

    if (deleted) {
        return ngx_http_ai_guard_store_tomb(zone, k, 1 + id->len, info->seq);
    }

    if (!ngx_http_ai_guard_store_room(meta, 1 + info->has_old, 0)) {
        return NGX_BUSY;
    }

    rec = ngx_http_ai_guard_store_put(zone, info);

    if (rec == NULL) {
        return NGX_BUSY;
    }

    (void) ngx_http_ai_guard_store_index(zone, meta->table, rec, 1);

    meta->keys++;

    return NGX_OK;
}


/*
 * Every key of the zone, copied into the pool, to "each"; the marks of
 * deleted keys the load left are freed on the way.  In the master.
 */

ngx_int_t
ngx_http_ai_guard_store_each(ngx_http_ai_guard_zone_t *zone,
    ngx_pool_t *pool, ngx_http_ai_guard_store_each_pt each, void *data)
{
    ngx_http_ai_guard_store_walk_t  w;

    ngx_memzero(&w, sizeof(ngx_http_ai_guard_store_walk_t));

    w.zone = zone;
    w.pool = pool;
    w.each = each;
    w.data = data;

    return ngx_http_ai_guard_zone_walk(zone, ngx_http_ai_guard_store_visit,
                                       &w);
}


/*
 * An entry of the zone as a line's state: a key (NGX_OK), a deleted key's
 * mark (NGX_OK, *deleted), or NGX_DECLINED: neither.  For the walks of
 * store_redis.c, under the zone's mutex.
 */

ngx_int_t
ngx_http_ai_guard_store_entry(ngx_http_ai_guard_node_t *node,
    ngx_pool_t *pool, ngx_http_ai_guard_key_info_t *info,
    ngx_uint_t *deleted)
{
    u_char                          *key;
    size_t                           len;
    ngx_http_ai_guard_store_tomb_t  *tomb;

    key = ngx_http_ai_guard_zone_key(node->data, &len);

    if (len > 1 && key[0] == NGX_HTTP_AI_GUARD_STORE_KEY) {
        *deleted = 0;
        return ngx_http_ai_guard_store_copy(pool,
                         (ngx_http_ai_guard_store_rec_t *) node->data, info);
    }

    if (len < 2 || key[0] != NGX_HTTP_AI_GUARD_STORE_TOMB) {
        return NGX_DECLINED;
    }

    tomb = (ngx_http_ai_guard_store_tomb_t *) node->data;

    ngx_memzero(info, sizeof(ngx_http_ai_guard_key_info_t));

    info->seq = tomb->seq;
    info->key.id.len = len - 1;
    info->key.id.data = ngx_pnalloc(pool, len - 1);
    if (info->key.id.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(info->key.id.data, key + 1, len - 1);
    *deleted = 1;

    return NGX_OK;
}


static ngx_http_ai_guard_store_rec_t *
ngx_http_ai_guard_store_find(ngx_http_ai_guard_zone_t *zone, u_char *id,
    size_t len)
{
    u_char  k[1 + NGX_HTTP_AI_GUARD_ID_MAX];

    if (len > NGX_HTTP_AI_GUARD_ID_MAX) {
        return NULL;
    }

    k[0] = NGX_HTTP_AI_GUARD_STORE_KEY;
    ngx_memcpy(k + 1, id, len);

    return ngx_http_ai_guard_zone_find(zone, k, 1 + len);
}


/*
 * The store's zone, locked, and a key of it with the counters: NULL when
 * either is not there.  The caller unlocks.
 */

static ngx_http_ai_guard_store_rec_t *
ngx_http_ai_guard_store_locked(ngx_http_request_t *r, ngx_str_t *id,
    ngx_http_ai_guard_zone_t **zone, ngx_http_ai_guard_store_meta_t **meta)
{
    ngx_http_ai_guard_store_rec_t  *rec;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    *zone = amcf->store;

    ngx_shmtx_lock(&(*zone)->shpool->mutex);

    rec = ngx_http_ai_guard_store_find(*zone, id->data, id->len);
    *meta = ngx_http_ai_guard_store_meta(*zone);

    return *meta ? rec : NULL;
}


/*
 * The store's counters and its digest table, made on first use (the
 * master makes them at start and on each reload, so that no worker walks
 * the keys); NULL: no room for them.  The entry never moves: the process
 * keeps its address, and a request's lookup finds it without a walk of
 * the tree.  Under the zone's mutex.
 */

static ngx_http_ai_guard_store_meta_t *
ngx_http_ai_guard_store_meta(ngx_http_ai_guard_zone_t *zone)
{
    u_char                           k = NGX_HTTP_AI_GUARD_STORE_META;
    ngx_http_ai_guard_store_meta_t  *meta;

    meta = zone->owned;

    if (meta == NULL) {
        meta = ngx_http_ai_guard_zone_get(zone, &k, 1,
                                      sizeof(ngx_http_ai_guard_store_meta_t),
                                      0, NULL);
        if (meta == NULL) {
            return NULL;
        }

        zone->owned = meta;
    }

    return ngx_http_ai_guard_store_table(zone, meta) ? meta : NULL;
}


/* the key's entry, made (not yet in the digest table); NULL: no room */

static ngx_http_ai_guard_store_rec_t *
ngx_http_ai_guard_store_put(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_key_info_t *info)
{
    u_char                         *p, k[1 + NGX_HTTP_AI_GUARD_ID_MAX];
    size_t                          len, i;
    uint16_t                        limits;
    ngx_http_ai_guard_key_t        *key;
    ngx_http_ai_guard_store_rec_t  *rec;

    key = &info->key;

    len = 4 + key->id.len + key->tenant.len + key->tier.len
          + key->stripe_customer.len;

    for (i = 0; i < key->nmodels; i++) {
        len += 1 + key->models[i].len;
    }

    for (i = 0; i < 2 * info->nmeta; i++) {
        len += 1 + info->meta[i].len;
    }

    limits = 0;

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        if (info->limits[i]) {
            limits |= 1 << i;
            len += sizeof(uint64_t);
        }
    }

    k[0] = NGX_HTTP_AI_GUARD_STORE_KEY;
    ngx_memcpy(k + 1, key->id.data, key->id.len);

    rec = ngx_http_ai_guard_zone_get(zone, k, 1 + key->id.len,
                                 offsetof(ngx_http_ai_guard_store_rec_t, data)
                                 + len, 0, NULL);
    if (rec == NULL) {
        return NULL;
    }

    ngx_memcpy(rec->digest, key->digest, NGX_HTTP_AI_GUARD_DIGEST_LEN);
    ngx_memcpy(rec->old_digest, info->old_digest,
               NGX_HTTP_AI_GUARD_DIGEST_LEN);
    rec->created = info->created;
    rec->expires = key->expires;
    rec->last_used = info->last_used;
    rec->grace_until = info->grace_until;
    rec->seq = info->seq;
    rec->len = (uint32_t) len;
    rec->nmodels = (uint16_t) key->nmodels;
    rec->disabled = key->disabled;
    rec->has_old = info->has_old;
    rec->limits = limits;
    rec->nmeta = (u_char) info->nmeta;

    p = rec->data;

    *p++ = (u_char) key->id.len;
    p = ngx_cpymem(p, key->id.data, key->id.len);
    *p++ = (u_char) key->tenant.len;
    p = ngx_cpymem(p, key->tenant.data, key->tenant.len);
    *p++ = (u_char) key->tier.len;
    p = ngx_cpymem(p, key->tier.data, key->tier.len);
    *p++ = (u_char) key->stripe_customer.len;
    p = ngx_cpymem(p, key->stripe_customer.data, key->stripe_customer.len);

    for (i = 0; i < key->nmodels; i++) {
        *p++ = (u_char) key->models[i].len;
        p = ngx_cpymem(p, key->models[i].data, key->models[i].len);
    }

    for (i = 0; i < 2 * info->nmeta; i++) {
        *p++ = (u_char) info->meta[i].len;
        p = ngx_cpymem(p, info->meta[i].data, info->meta[i].len);
    }

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        if (limits & (1 << i)) {
            p = ngx_cpymem(p, &info->limits[i], sizeof(uint64_t));
        }
    }

    return rec;
}


static ngx_int_t
ngx_http_ai_guard_store_copy(ngx_pool_t *pool,
    ngx_http_ai_guard_store_rec_t *rec, ngx_http_ai_guard_key_info_t *info)
{
    u_char                   *p;
    ngx_uint_t                i, n;
    ngx_http_ai_guard_str_t  *s;
    ngx_http_ai_guard_key_t  *key;

    ngx_memzero(info, sizeof(ngx_http_ai_guard_key_info_t));

    key = &info->key;

    ngx_memcpy(key->digest, rec->digest, NGX_HTTP_AI_GUARD_DIGEST_LEN);
    ngx_memcpy(info->old_digest, rec->old_digest,
               NGX_HTTP_AI_GUARD_DIGEST_LEN);
    info->created = rec->created;
    info->last_used = rec->last_used;
    info->grace_until = rec->grace_until;
    info->seq = rec->seq;
    info->has_old = rec->has_old;
    key->expires = rec->expires;
    key->disabled = rec->disabled;
    key->nmodels = rec->nmodels;
    key->has_models = (rec->nmodels != 0);

    p = rec->data;

    p = ngx_http_ai_guard_store_str(pool, p, &key->id);
    p = ngx_http_ai_guard_store_str(pool, p, &key->tenant);
    p = ngx_http_ai_guard_store_str(pool, p, &key->tier);
    p = ngx_http_ai_guard_store_str(pool, p, &key->stripe_customer);

    if (p == NULL) {
        return NGX_ERROR;
    }

    /* the models, then the metadata: one array of strings in the pool */

    n = rec->nmodels + 2 * (ngx_uint_t) rec->nmeta;
    s = NULL;

    if (n) {
        s = ngx_palloc(pool, n * sizeof(ngx_http_ai_guard_str_t));
        if (s == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < n; i++) {
        p = ngx_http_ai_guard_store_str(pool, p, &s[i]);
        if (p == NULL) {
            return NGX_ERROR;
        }
    }

    key->models = rec->nmodels ? s : NULL;
    info->meta = rec->nmeta ? s + rec->nmodels : NULL;
    info->nmeta = rec->nmeta;

    /* then the key's own limits, after the strings */

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        if (rec->limits & (1 << i)) {
            ngx_memcpy(&info->limits[i], p, sizeof(uint64_t));
            p += sizeof(uint64_t);
        }
    }

    return NGX_OK;
}


/* the metadata of an admin body or a line of the files, into "info" */

ngx_int_t
ngx_http_ai_guard_store_metadata(ngx_pool_t *pool,
    ngx_http_ai_guard_key_info_t *info, ngx_http_ai_guard_admin_body_t *b)
{
    ngx_uint_t  i;

    if (!(b->has & NGX_HTTP_AI_GUARD_ADMIN_METADATA)) {
        return NGX_OK;
    }

    info->nmeta = b->nmeta;
    info->meta = NULL;

    if (b->nmeta == 0) {
        return NGX_OK;
    }

    info->meta = ngx_palloc(pool, 2 * b->nmeta
                                  * sizeof(ngx_http_ai_guard_str_t));
    if (info->meta == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < 2 * b->nmeta; i++) {
        info->meta[i].data = b->meta[i].data;
        info->meta[i].len = b->meta[i].len;
    }

    return NGX_OK;
}


static u_char *
ngx_http_ai_guard_store_str(ngx_pool_t *pool, u_char *p,
    ngx_http_ai_guard_str_t *s)
{
    if (p == NULL) {
        return NULL;
    }

    s->len = *p++;
    s->data = ngx_pnalloc(pool, s->len ? s->len : 1);

    if (s->data == NULL) {
        return NULL;
    }

    ngx_memcpy(s->data, p, s->len);

    return p + s->len;
}


/*
 * A tenant's limits, copied into "limits" (by kind); NGX_DECLINED: it
 * has none.  The limiter asks at each request of the tenant's keys.
 */

ngx_int_t
ngx_http_ai_guard_store_tenant(ngx_http_request_t *r, ngx_str_t *tenant,
    uint64_t *limits)
{
    u_char                            k[1 + NGX_HTTP_AI_GUARD_TENANT_MAX];
    size_t                            len;
    ngx_int_t                         rc;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_http_ai_guard_store_meta_t   *meta;
    ngx_http_ai_guard_store_tenant_t *t;
    ngx_http_ai_guard_main_conf_t    *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = amcf->store;

    if (zone == NULL || zone->sh == NULL
        || tenant->len == 0 || tenant->len > NGX_HTTP_AI_GUARD_TENANT_MAX)
    {
        return NGX_DECLINED;
    }

    len = ngx_http_ai_guard_store_tenant_key(k, NGX_HTTP_AI_GUARD_STORE_TEN,
                                             tenant);
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&zone->shpool->mutex);

    meta = ngx_http_ai_guard_store_meta(zone);

    /* most stores have no tenant of limits: no lookup then */

    t = (meta && meta->tenants) ? ngx_http_ai_guard_zone_find(zone, k, len)
                                : NULL;

    if (t) {
        ngx_memcpy(limits, t->limits,
                   NGX_HTTP_AI_GUARD_LIMIT_NKINDS * sizeof(uint64_t));
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/*
 * A tenant's limits set (some limit in info->limits) or removed (none),
 * the previous ones in "old" (old->seq 0: it had none).  NGX_BUSY: no
 * room; NGX_DECLINED: nothing to remove.  info->seq is the change's.
 */

ngx_int_t
ngx_http_ai_guard_store_tenant_set(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info, ngx_http_ai_guard_key_info_t *old)
{
    u_char                            k[1 + NGX_HTTP_AI_GUARD_TENANT_MAX];
    size_t                            len;
    ngx_int_t                         rc;
    ngx_uint_t                        i, any;
    ngx_str_t                        *tenant;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_http_ai_guard_store_meta_t   *meta;
    ngx_http_ai_guard_store_tenant_t *t;
    ngx_http_ai_guard_main_conf_t    *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = amcf->store;
    tenant = (ngx_str_t *) &info->key.tenant;

    any = 0;

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        any |= (info->limits[i] != 0);
    }

    len = ngx_http_ai_guard_store_tenant_key(k, NGX_HTTP_AI_GUARD_STORE_TEN,
                                             tenant);

    ngx_shmtx_lock(&zone->shpool->mutex);

    meta = ngx_http_ai_guard_store_meta(zone);
    t = ngx_http_ai_guard_zone_find(zone, k, len);

    ngx_memzero(old->limits, sizeof(old->limits));
    old->seq = 0;

    if (t) {
        ngx_memcpy(old->limits, t->limits, sizeof(old->limits));
        old->seq = t->seq;
    }

    if (meta == NULL) {
        rc = NGX_BUSY;
        goto done;
    }

    if (!any) {
        if (t == NULL) {
            rc = NGX_DECLINED;
            goto done;
        }

        ngx_http_ai_guard_zone_free(zone, t);
        meta->tenants--;

    } else {
        if (t == NULL) {
            t = ngx_http_ai_guard_zone_get(zone, k, len,
                                   sizeof(ngx_http_ai_guard_store_tenant_t),
                                   0, NULL);
            if (t == NULL) {
                rc = NGX_BUSY;
                goto done;
            }

            meta->tenants++;
        }

        ngx_memcpy(t->limits, info->limits, sizeof(t->limits));
        t->seq = meta->seq + 1;
    }

    meta->changes++;
    info->seq = ++meta->seq;
    rc = NGX_OK;

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/* a tenant's line of the files: the later change wins, whatever order */

static ngx_int_t
ngx_http_ai_guard_store_tenant_restore(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_key_info_t *info, ngx_uint_t deleted)
{
    u_char                            k[1 + NGX_HTTP_AI_GUARD_TENANT_MAX];
    u_char                            tk[1 + NGX_HTTP_AI_GUARD_TENANT_MAX];
    size_t                            len;
    ngx_str_t                        *tenant;
    ngx_http_ai_guard_store_meta_t   *meta;
    ngx_http_ai_guard_store_tomb_t   *tomb;
    ngx_http_ai_guard_store_tenant_t *t;

    tenant = (ngx_str_t *) &info->key.tenant;
    meta = ngx_http_ai_guard_store_meta(zone);

    if (meta == NULL || tenant->len == 0
        || tenant->len > NGX_HTTP_AI_GUARD_TENANT_MAX)
    {
        return NGX_BUSY;
    }

    meta->seq = ngx_max(meta->seq, info->seq);

    len = ngx_http_ai_guard_store_tenant_key(k, NGX_HTTP_AI_GUARD_STORE_TEN,
                                             tenant);
    (void) ngx_http_ai_guard_store_tenant_key(tk,
                                              NGX_HTTP_AI_GUARD_STORE_TTOMB,
                                              tenant);

    tomb = ngx_http_ai_guard_zone_find(zone, tk, len);
    t = ngx_http_ai_guard_zone_find(zone, k, len);

    /* at an equal number the line wins, as a key's (Redis's, across nodes) */

    if ((tomb && tomb->seq >= info->seq) || (t && t->seq > info->seq)) {
        return NGX_OK;
    }

    if (deleted) {
        if (t) {
            ngx_http_ai_guard_zone_free(zone, t);
            meta->tenants--;
        }

        return ngx_http_ai_guard_store_tomb(zone, tk, len, info->seq);
    }

    if (t == NULL) {
        t = ngx_http_ai_guard_zone_get(zone, k, len,
                                   sizeof(ngx_http_ai_guard_store_tenant_t),
                                   0, NULL);
        if (t == NULL) {
            return NGX_BUSY;
        }

        meta->tenants++;
    }

    ngx_memcpy(t->limits, info->limits, sizeof(t->limits));
    t->seq = info->seq;

    return NGX_OK;
}


/* a tenant's entry's key: the kind, then the name (at most 128 bytes) */

static size_t
ngx_http_ai_guard_store_tenant_key(u_char *k, u_char kind, ngx_str_t *tenant)
{
    size_t  len;

    len = ngx_min(tenant->len, NGX_HTTP_AI_GUARD_TENANT_MAX);

    k[0] = kind;
    ngx_memcpy(k + 1, tenant->data, len);

    return 1 + len;
}


/*
 * While the files are read: what was deleted, at which change, so that
 * an older line read later does not bring it back.  NGX_BUSY: no room.
 */

static ngx_int_t
ngx_http_ai_guard_store_tomb(ngx_http_ai_guard_zone_t *zone, u_char *k,
    size_t len, uint64_t seq)
{
    ngx_http_ai_guard_store_tomb_t  *tomb;

    tomb = ngx_http_ai_guard_zone_get(zone, k, len,
                                      sizeof(ngx_http_ai_guard_store_tomb_t),
                                      0, NULL);
    if (tomb == NULL) {
        return NGX_BUSY;
    }

    tomb->seq = seq;

    return NGX_OK;
}


/*
 * A tenant's entry as a line's state, for the push walk of store_redis.c
 * (under the zone's mutex): its limits (NGX_OK), the mark of their
 * removal (NGX_OK, *deleted), or NGX_DECLINED: neither.  The name is
 * copied, the walk's lines are made after the lock.
 */

ngx_int_t
ngx_http_ai_guard_store_tenant_entry(ngx_http_ai_guard_node_t *node,
    ngx_pool_t *pool, ngx_http_ai_guard_key_info_t *info,
    ngx_uint_t *deleted)
{
    u_char                            *key;
    size_t                             len;
    ngx_str_t                          name;
    ngx_http_ai_guard_store_tenant_t  *t;

    key = ngx_http_ai_guard_zone_key(node->data, &len);

    if (len < 2 || (key[0] != NGX_HTTP_AI_GUARD_STORE_TEN
                    && key[0] != NGX_HTTP_AI_GUARD_STORE_TTOMB))
    {
        return NGX_DECLINED;
    }

    ngx_memzero(info, sizeof(ngx_http_ai_guard_key_info_t));

    name.data = key + 1;
    name.len = len - 1;

    info->tenant_rec = 1;
    info->key.tenant.len = name.len;
    info->key.tenant.data = ngx_pstrdup(pool, &name);

    if (info->key.tenant.data == NULL) {
        return NGX_ERROR;
    }

    if (key[0] == NGX_HTTP_AI_GUARD_STORE_TTOMB) {
        info->seq = ((ngx_http_ai_guard_store_tomb_t *) node->data)->seq;
        *deleted = 1;
        return NGX_OK;
    }

    t = (ngx_http_ai_guard_store_tenant_t *) node->data;

    info->seq = t->seq;
    ngx_memcpy(info->limits, t->limits, sizeof(info->limits));
    *deleted = 0;

    return NGX_OK;
}
