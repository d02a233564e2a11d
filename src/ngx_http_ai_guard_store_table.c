
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_conf.h"
#include "ngx_http_ai_guard_slots.h"
#include "ngx_http_ai_guard_store_zone.h"


/*
 * The key store's digest table (docs/architecture.md): a request's key
 * is one probe of slots.c's open-addressing table in the store's zone,
 * whatever the number of keys.  Under the zone's mutex, every function.
 */


/*
 * The least room a key takes in the zone (its entry is more than 128
 * bytes, and the slab rounds it up to 256): the zone holds at most its
 * size / 256 keys, whatever max= says, and the digest table is sized by
 * the smaller of the two.
 */
#define NGX_HTTP_AI_GUARD_STORE_KEY_MIN  256


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


static ngx_int_t ngx_http_ai_guard_store_reindex(
    ngx_http_ai_guard_node_t *node, void *data);
static int ngx_http_ai_guard_store_match(uint32_t ref, const void *key,
    void *data);


/*
 * The digest table of the zone: made when the zone has none of its own
 * (first use, or a zone resized on reload that inherited the counters),
 * or made again larger when a reload raised max=; the keys' digests are
 * put in it from the zone's records.  A table is never made smaller (the
 * old configuration's workers, still running through a reload, ask for
 * the old size).  NULL: no room.
 */

ngx_http_ai_guard_slots_t *
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

ngx_uint_t
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

ngx_int_t
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

ngx_http_ai_guard_store_rec_t *
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
