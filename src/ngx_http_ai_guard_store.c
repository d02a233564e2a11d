
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


#define NGX_HTTP_AI_GUARD_STORE_MAX  100000
#define NGX_HTTP_AI_GUARD_ID_MAX     64

/*
 * The least room a key takes in the zone (its entry is more than 128
 * bytes, and the slab rounds it up to 256): the zone holds at most its
 * size / 256 keys, whatever max= says, and the digest table is sized by
 * the smaller of the two.
 */
#define NGX_HTTP_AI_GUARD_STORE_KEY_MIN  256

/* the digest table's references: a record's offset in the zone / 8 */
#define NGX_HTTP_AI_GUARD_STORE_SIZE_MAX  ((size_t) 32 << 30)

/* the entries' keys: a byte of kind, then the id */
#define NGX_HTTP_AI_GUARD_STORE_KEY  'i'
#define NGX_HTTP_AI_GUARD_STORE_META '#'
#define NGX_HTTP_AI_GUARD_STORE_TOMB 'x'


/*
 * A key: its times, digests, and its strings after it, each a length
 * byte and its bytes (id, tenant, tier, customer, the models, then the
 * metadata's names and values in turn).
 */

typedef struct {
    u_char                         digest[NGX_HTTP_AI_GUARD_DIGEST_LEN];
    u_char                         old_digest[NGX_HTTP_AI_GUARD_DIGEST_LEN];
    int64_t                        created;
    int64_t                        expires;
    int64_t                        last_used;
    int64_t                        grace_until;
    uint64_t                       seq;
    uint32_t                       len;
    uint16_t                       nmodels;
    u_char                         disabled;
    u_char                         has_old;
    u_char                         nmeta;     /* metadata's names */
    u_char                         data[1];
} ngx_http_ai_guard_store_rec_t;


/*
 * The counters, and the table of digests: the lookup a request makes is
 * one probe of it, whatever the number of keys (the zone's tree, by id,
 * serves the admin API).  Each of a key's digests (two while an old
 * secret is in its grace period) names the key's record.  "pool" is the
 * zone the table was made in: a zone resized on reload inherits these
 * bytes from the old zone, and makes a table of its own.
 */

typedef struct {
    uint64_t                       changes;
    uint64_t                       seq;       /* the last change's */
    ngx_uint_t                     keys;
    ngx_uint_t                     loaded;    /* from the state files */
    ngx_http_ai_guard_slots_t     *table;
    ngx_slab_pool_t               *pool;
} ngx_http_ai_guard_store_meta_t;


/* a table being made: the zone's records to put in it */

typedef struct {
    ngx_http_ai_guard_zone_t      *zone;
    ngx_http_ai_guard_slots_t     *table;
} ngx_http_ai_guard_store_index_t;


/* a digest looked for, and the record it must name (0: any) */

typedef struct {
    u_char                        *digest;
    uint32_t                       ref;
} ngx_http_ai_guard_store_probe_t;


/* while the files are read: a key deleted, at which change */

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
static ngx_http_ai_guard_store_meta_t *ngx_http_ai_guard_store_meta(
    ngx_http_ai_guard_zone_t *zone);
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
static ngx_http_ai_guard_slots_t *ngx_http_ai_guard_store_table(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_store_meta_t *meta);
static ngx_int_t ngx_http_ai_guard_store_reindex(
    ngx_http_ai_guard_node_t *node, void *data);
static ngx_uint_t ngx_http_ai_guard_store_room(
    ngx_http_ai_guard_store_meta_t *meta, ngx_uint_t add, ngx_uint_t drop);
static ngx_int_t ngx_http_ai_guard_store_index(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_slots_t *table,
    ngx_http_ai_guard_store_rec_t *rec, ngx_uint_t add);
static ngx_http_ai_guard_store_rec_t *ngx_http_ai_guard_store_by_digest(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_slots_t *table,
    u_char *digest);
static int ngx_http_ai_guard_store_match(uint32_t ref, const void *key,
    void *data);


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
        if (key[0] == NGX_HTTP_AI_GUARD_STORE_TOMB) {
            ngx_http_ai_guard_zone_free(w->zone, rec);
            return NGX_OK;
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

    if ((tomb && tomb->seq >= info->seq) || (rec && rec->seq >= info->seq)) {
        return NGX_OK;
    }

    if (rec) {
        (void) ngx_http_ai_guard_store_index(zone, meta->table, rec, 0);
        ngx_http_ai_guard_zone_free(zone, rec);
        meta->keys--;
    }

    if (deleted) {
        tomb = ngx_http_ai_guard_zone_get(zone, k, 1 + id->len,
                                      sizeof(ngx_http_ai_guard_store_tomb_t),
                                      0, NULL);
        if (tomb == NULL) {
            return NGX_BUSY;
        }

        tomb->seq = info->seq;

        return NGX_OK;
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

    if (n == 0) {
        return NGX_OK;
    }

    s = ngx_palloc(pool, n * sizeof(ngx_http_ai_guard_str_t));
    if (s == NULL) {
        return NGX_ERROR;
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
 * The digest table of the zone: made when the zone has none of its own
 * (first use, or a zone resized on reload that inherited the counters),
 * or made again larger when a reload raised max=; the keys' digests are
 * put in it from the zone's records.  A table is never made smaller (the
 * old configuration's workers, still running through a reload, ask for
 * the old size).  NULL: no room.
 */

static ngx_http_ai_guard_slots_t *
ngx_http_ai_guard_store_table(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_store_meta_t *meta)
{
    size_t                            keys, size;
    ngx_http_ai_guard_slots_t        *table, *old;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_store_index_t   w;

    amcf = zone->data;
    old = (meta->pool == zone->shpool) ? meta->table : NULL;

    keys = ngx_min(amcf->store_max,
                   zone->shm_zone->shm.size / NGX_HTTP_AI_GUARD_STORE_KEY_MIN);
    keys = ngx_max(keys, 1);

    /* two digests a key: the old secret's, while in its grace period */

    if (old && old->entries >= 2 * keys) {
        return old;
    }

    size = ngx_http_ai_guard_slots_size((uint32_t) (2 * keys));

    table = ngx_slab_alloc_locked(zone->shpool, size);

    if (table == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "ai_guard_key_store: no room in the zone for the "
                      "digest table of %uz keys (%uz bytes)", keys, size);
        return old;
    }

    ngx_http_ai_guard_slots_init(table, (uint32_t) (2 * keys));

    w.zone = zone;
    w.table = table;

    if (ngx_http_ai_guard_zone_walk(zone, ngx_http_ai_guard_store_reindex, &w)
        != NGX_OK)
    {
        ngx_slab_free_locked(zone->shpool, table);
        return old;
    }

    if (old) {
        ngx_slab_free_locked(zone->shpool, old);
    }

    meta->table = table;
    meta->pool = zone->shpool;

    return table;
}


static ngx_int_t
ngx_http_ai_guard_store_reindex(ngx_http_ai_guard_node_t *node, void *data)
{
    ngx_http_ai_guard_store_index_t *w = data;

    u_char  *key;
    size_t   len;

    key = ngx_http_ai_guard_zone_key(node->data, &len);

    if (len == 0 || key[0] != NGX_HTTP_AI_GUARD_STORE_KEY) {
        return NGX_OK;
    }

    return ngx_http_ai_guard_store_index(w->zone, w->table,
                                 (ngx_http_ai_guard_store_rec_t *) node->data,
                                 1);
}


/* can the table take "add" digests more once "drop" of its own are out */

static ngx_uint_t
ngx_http_ai_guard_store_room(ngx_http_ai_guard_store_meta_t *meta,
    ngx_uint_t add, ngx_uint_t drop)
{
    return meta->table->used + add <= meta->table->entries + drop;
}


/*
 * The record's digests (its secret's, and the old one's in its grace
 * period) put in the table, naming it (add), or taken out when they name
 * it.  NGX_BUSY: the table is full; the caller asked _room() before.
 */

static ngx_int_t
ngx_http_ai_guard_store_index(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_slots_t *table, ngx_http_ai_guard_store_rec_t *rec,
    ngx_uint_t add)
{
    uint32_t                          hash, ref;
    ngx_uint_t                        i;
    ngx_http_ai_guard_store_probe_t   probe;

    ref = (uint32_t) (((u_char *) rec - (u_char *) zone->shpool) >> 3);

    /* a digest names one key, the last one given it; out, only its own */

    probe.ref = add ? 0 : ref;

    for (i = 0; i < 1 + (ngx_uint_t) rec->has_old; i++) {
        probe.digest = i ? rec->old_digest : rec->digest;
        ngx_memcpy(&hash, probe.digest, sizeof(uint32_t));

        if (!add) {
            (void) ngx_http_ai_guard_slots_remove(table, hash,
                                              ngx_http_ai_guard_store_match,
                                              &probe, zone->shpool);

        } else if (ngx_http_ai_guard_slots_set(table, hash, ref,
                                           ngx_http_ai_guard_store_match,
                                           &probe, zone->shpool)
                   != 0)
        {
            return NGX_BUSY;
        }
    }

    return NGX_OK;
}


/* the record a digest names, NULL: none; one probe of the table */

static ngx_http_ai_guard_store_rec_t *
ngx_http_ai_guard_store_by_digest(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_slots_t *table, u_char *digest)
{
    uint32_t                          hash, ref;
    ngx_http_ai_guard_store_probe_t   probe;

    probe.digest = digest;
    probe.ref = 0;

    ngx_memcpy(&hash, digest, sizeof(uint32_t));

    ref = ngx_http_ai_guard_slots_find(table, hash,
                                       ngx_http_ai_guard_store_match, &probe,
                                       zone->shpool);
    if (ref == 0) {
        return NULL;
    }

    return (ngx_http_ai_guard_store_rec_t *)
               ((u_char *) zone->shpool + ((size_t) ref << 3));
}


/* does the record "ref" has the probe's digest (and is it the one asked) */

static int
ngx_http_ai_guard_store_match(uint32_t ref, const void *key, void *data)
{
    const ngx_http_ai_guard_store_probe_t *probe = key;

    ngx_http_ai_guard_store_rec_t  *rec;

    if (probe->ref && probe->ref != ref) {
        return 0;
    }

    rec = (ngx_http_ai_guard_store_rec_t *) ((u_char *) data
                                             + ((size_t) ref << 3));

    return ngx_memcmp(rec->digest, probe->digest,
                      NGX_HTTP_AI_GUARD_DIGEST_LEN) == 0
           || (rec->has_old
               && ngx_memcmp(rec->old_digest, probe->digest,
                             NGX_HTTP_AI_GUARD_DIGEST_LEN) == 0);
}
