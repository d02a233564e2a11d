
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_STORE_ZONE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_STORE_ZONE_H_INCLUDED_


/*
 * The key store's zone as store.c (the keys, the tenants) and
 * store_table.c (the digest table) share it: a key's record, the
 * counters.  Not for other files: they go through store.h.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_slots.h"
#include "ngx_http_ai_guard_store.h"


/* a key's entry's key: this byte of kind, then the id */
#define NGX_HTTP_AI_GUARD_STORE_KEY  'i'


/*
 * A key: its times, digests, and its strings after it, each a length
 * byte and its bytes (id, tenant, tier, customer, the models, then the
 * metadata's names and values in turn), then the values of its own
 * limits, 8 bytes each, of the kinds "limits" has a bit of: a key without
 * limits of its own is no larger for them.
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
    uint16_t                       limits;
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
    ngx_uint_t                     tenants;   /* with limits of their own */
    ngx_http_ai_guard_slots_t     *table;
    ngx_slab_pool_t               *pool;
} ngx_http_ai_guard_store_meta_t;


ngx_http_ai_guard_slots_t *ngx_http_ai_guard_store_table(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_store_meta_t *meta);
ngx_uint_t ngx_http_ai_guard_store_room(ngx_http_ai_guard_store_meta_t *meta,
    ngx_uint_t add, ngx_uint_t drop);
ngx_int_t ngx_http_ai_guard_store_index(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_slots_t *table, ngx_http_ai_guard_store_rec_t *rec,
    ngx_uint_t add);
ngx_http_ai_guard_store_rec_t *ngx_http_ai_guard_store_by_digest(
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_slots_t *table,
    u_char *digest);


#endif /* _NGX_HTTP_AI_GUARD_STORE_ZONE_H_INCLUDED_ */
