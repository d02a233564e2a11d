
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_zone.h"


/* the entries a new entry may free first, as limit_req's expire does */
#define NGX_HTTP_AI_GUARD_EXPIRE_N      2

/* entries examined, then tries, when the slab has no room left */
#define NGX_HTTP_AI_GUARD_EXPIRE_SCAN   64
#define NGX_HTTP_AI_GUARD_ALLOC_TRIES   16

/* a full zone says so at most once this many seconds a worker */
#define NGX_HTTP_AI_GUARD_ALERT_EVERY   60

/* bytes of a key a log line shows */
#define NGX_HTTP_AI_GUARD_LOG_KEY       64


static ngx_int_t ngx_http_ai_guard_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_guard_zone_inherit(ngx_shm_zone_t *shm_zone);
static void ngx_http_ai_guard_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_ai_guard_node_t *ngx_http_ai_guard_zone_lookup(
    ngx_http_ai_guard_zone_t *zone, uint32_t hash, u_char *key, size_t len);
static ngx_http_ai_guard_node_t *ngx_http_ai_guard_zone_insert(
    ngx_http_ai_guard_zone_t *zone, uint32_t hash, u_char *key, size_t len,
    size_t size);
static void ngx_http_ai_guard_zone_delete(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_node_t *node);


/*
 * MurmurHash2 takes four bytes a step where CRC32 takes one: keys here
 * are long (length-prefixed tenant, key, model), and hashed on every
 * request.  The tree orders equal hashes by the key itself.  nginx's own
 * ngx_murmur_hash2() shifts a byte promoted to int by 24 places, which
 * is undefined for a byte of 128 or more (the key store's keys are
 * digests): this one shifts unsigned values, with the same results.
 */

static uint32_t
ngx_http_ai_guard_zone_hash(u_char *data, size_t len)
{
    uint32_t  h, k;

    h = 0 ^ (uint32_t) len;

    while (len >= 4) {
        k = (uint32_t) data[0];
        k |= (uint32_t) data[1] << 8;
        k |= (uint32_t) data[2] << 16;
        k |= (uint32_t) data[3] << 24;

        k *= 0x5bd1e995;
        k ^= k >> 24;
        k *= 0x5bd1e995;

        h *= 0x5bd1e995;
        h ^= k;

        data += 4;
        len -= 4;
    }

    switch (len) {
    case 3:
        h ^= (uint32_t) data[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t) data[1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t) data[0];
        h *= 0x5bd1e995;
    }

    h ^= h >> 13;
    h *= 0x5bd1e995;
    h ^= h >> 15;

    return h;
}


/*
 * A zone an older or newer module made, met on a reload: its layout is
 * not ours, and reading it would misread every entry.
 */

ngx_int_t
ngx_http_ai_guard_zone_foreign(ngx_shm_zone_t *shm_zone, char *what,
    char *change)
{
    ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                  "ai_guard %s \"%V\" was made by another version of the "
                  "module: change %s to start it afresh, or restart nginx",
                  what, &shm_zone->shm.name, change);

    return NGX_ERROR;
}


ngx_int_t
ngx_http_ai_guard_zone_add(ngx_conf_t *cf, ngx_http_ai_guard_zone_t *zone,
    ngx_str_t *name, size_t size)
{
    extern ngx_module_t  ngx_http_ai_guard_module;

    zone->shm_zone = ngx_shared_memory_add(cf, name, size,
                                           &ngx_http_ai_guard_module);
    if (zone->shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (zone->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", name);
        return NGX_ERROR;
    }

    zone->shm_zone->init = ngx_http_ai_guard_init_zone;
    zone->shm_zone->data = zone;

    return NGX_OK;
}


/* as ngx_http_limit_req_module: a reload adopts the zone, counters live */

static ngx_int_t
ngx_http_ai_guard_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_guard_zone_t  *ozone = data;

    size_t                     len;
    ngx_http_ai_guard_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        if (ozone->sh->version != NGX_HTTP_AI_GUARD_ZONE_VERSION) {
            return ngx_http_ai_guard_zone_foreign(shm_zone, "zone",
                                                  "the zone's size or name");
        }

        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        zone->sh->cycles++;

        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;

        return NGX_OK;
    }

    zone->sh = ngx_slab_calloc(zone->shpool,
                               sizeof(ngx_http_ai_guard_shctx_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;
    zone->sh->version = NGX_HTTP_AI_GUARD_ZONE_VERSION;
    zone->sh->cycles = 1;

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_ai_guard_rbtree_insert_value);

    ngx_queue_init(&zone->sh->queue);

    len = sizeof(" in ai_guard zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in ai_guard zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is the owner's to report, in its own words */
    zone->shpool->log_nomem = 0;

    ngx_http_ai_guard_zone_inherit(shm_zone);

    return NGX_OK;
}


/*
 * A zone whose size changed on reload is a new zone; the old one, still
 * mapped while the new configuration is made, gives it its entries, so
 * that resizing loses neither limits nor billed usage.  Entries the old
 * zone's workers write after this copy stay with it (docs/state.md).
 */

static void
ngx_http_ai_guard_zone_inherit(ngx_shm_zone_t *shm_zone)
{
    size_t                     len;
    ngx_uint_t                 i, copied, lost, level;
    ngx_queue_t               *q;
    ngx_list_part_t           *part;
    ngx_shm_zone_t            *oshm_zone;
    ngx_http_ai_guard_node_t  *n, *c;
    ngx_http_ai_guard_zone_t  *zone, *ozone;

    zone = shm_zone->data;
    ozone = NULL;

    /* during the reload, ngx_cycle is still the old cycle */
    part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
    oshm_zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            oshm_zone = part->elts;
            i = 0;
        }

        if (oshm_zone[i].tag == shm_zone->tag
            && oshm_zone[i].shm.name.len == shm_zone->shm.name.len
            && ngx_strncmp(oshm_zone[i].shm.name.data,
                           shm_zone->shm.name.data,
                           shm_zone->shm.name.len)
               == 0)
        {
            ozone = oshm_zone[i].data;
            break;
        }
    }

    if (ozone == NULL || ozone->sh == NULL || ozone->shpool == NULL
        || ozone->sh->version != NGX_HTTP_AI_GUARD_ZONE_VERSION)
    {
        return;
    }

    /* its entries go on in the new zone: the old workers must know */
    ozone->sh->cycles++;

    copied = 0;
    lost = 0;

    ngx_shmtx_lock(&ozone->shpool->mutex);

    /* oldest first, each to the head: the order is kept */

    for (q = ngx_queue_last(&ozone->sh->queue);
         q != ngx_queue_sentinel(&ozone->sh->queue);
         q = ngx_queue_prev(q))
    {
        n = ngx_queue_data(q, ngx_http_ai_guard_node_t, queue);
        len = n->len;

        c = ngx_http_ai_guard_zone_insert(zone,
                                          ngx_http_ai_guard_zone_hash(
                                              (u_char *) n->data + n->size,
                                              len),
                                          (u_char *) n->data + n->size, len,
                                          n->size);
        if (c == NULL) {
            lost++;
            continue;
        }

        ngx_memcpy(c->data, n->data, n->size);
        copied++;
    }

    ngx_memcpy(&zone->sh->freed, &ozone->sh->freed,
               sizeof(ngx_http_ai_guard_shctx_t)
               - offsetof(ngx_http_ai_guard_shctx_t, freed));

    ngx_shmtx_unlock(&ozone->shpool->mutex);

    level = lost ? NGX_LOG_ALERT : NGX_LOG_NOTICE;

    ngx_log_error(level, shm_zone->shm.log, 0,
                  "ai_guard: zone \"%V\" resized: %ui entries kept, "
                  "%ui did not fit", &shm_zone->shm.name, copied, lost);
}


static void
ngx_http_ai_guard_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_ai_guard_node_t   *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            n = (ngx_http_ai_guard_node_t *) node;
            t = (ngx_http_ai_guard_node_t *) temp;

            p = (ngx_memn2cmp((u_char *) n->data + n->size,
                              (u_char *) t->data + t->size, n->len, t->len)
                 < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_ai_guard_node_t *
ngx_http_ai_guard_zone_lookup(ngx_http_ai_guard_zone_t *zone, uint32_t hash,
    u_char *key, size_t len)
{
    ngx_int_t                  rc;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_ai_guard_node_t  *n;

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        n = (ngx_http_ai_guard_node_t *) node;

        rc = ngx_memn2cmp(key, (u_char *) n->data + n->size, len, n->len);

        if (rc == 0) {
            return n;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* the caller holds the zone's mutex */

void *
ngx_http_ai_guard_zone_find(ngx_http_ai_guard_zone_t *zone, u_char *key,
    size_t len)
{
    ngx_http_ai_guard_node_t  *n;

    n = ngx_http_ai_guard_zone_lookup(zone,
                                      ngx_http_ai_guard_zone_hash(key, len),
                                      key, len);

    return n ? n->data : NULL;
}


/*
 * The entry of a key, created zeroed when there is none ("created" says
 * which).  Making room takes only entries the zone's policy calls fresh:
 * none that holds state.  NULL: no room (the caller refuses, and says
 * so).  The caller holds the zone's mutex.
 */

void *
ngx_http_ai_guard_zone_get(ngx_http_ai_guard_zone_t *zone, u_char *key,
    size_t len, size_t size, uint64_t now, ngx_uint_t *created)
{
    uint32_t                   hash;
    ngx_uint_t                 i;
    ngx_http_ai_guard_node_t  *node;

    hash = ngx_http_ai_guard_zone_hash(key, len);

    node = ngx_http_ai_guard_zone_lookup(zone, hash, key, len);

    if (node) {
        if (zone->lru) {
            ngx_queue_remove(&node->queue);
            ngx_queue_insert_head(&zone->sh->queue, &node->queue);
        }

        if (created) {
            *created = 0;
        }

        return node->data;
    }

    if (zone->fresh) {
        (void) ngx_http_ai_guard_zone_expire(zone, now,
                                             NGX_HTTP_AI_GUARD_EXPIRE_N,
                                             NGX_HTTP_AI_GUARD_EXPIRE_N);
    }

    for (i = 0; /* void */; i++) {
        node = ngx_http_ai_guard_zone_insert(zone, hash, key, len, size);
        if (node) {
            break;
        }

        if (i == NGX_HTTP_AI_GUARD_ALLOC_TRIES
            || zone->fresh == NULL
            || ngx_http_ai_guard_zone_expire(zone, now, 1,
                                             NGX_HTTP_AI_GUARD_EXPIRE_SCAN)
               == 0)
        {
            return NULL;
        }
    }

    if (created) {
        *created = 1;
    }

    return node->data;
}


static ngx_http_ai_guard_node_t *
ngx_http_ai_guard_zone_insert(ngx_http_ai_guard_zone_t *zone, uint32_t hash,
    u_char *key, size_t len, size_t size)
{
    size_t                     n;
    ngx_http_ai_guard_node_t  *node;

    size = ngx_align(size, sizeof(uint64_t));
    n = offsetof(ngx_http_ai_guard_node_t, data) + size + len;

    node = ngx_slab_alloc_locked(zone->shpool, n);
    if (node == NULL) {
        return NULL;
    }

    ngx_memzero(node->data, size);

    node->node.key = hash;
    node->size = (uint32_t) size;
    node->len = (uint32_t) len;
    ngx_memcpy((u_char *) node->data + size, key, len);

    ngx_rbtree_insert(&zone->sh->rbtree, &node->node);
    ngx_queue_insert_head(&zone->sh->queue, &node->queue);
    zone->sh->entries++;

    return node;
}


void
ngx_http_ai_guard_zone_free(ngx_http_ai_guard_zone_t *zone, void *payload)
{
    ngx_http_ai_guard_zone_delete(zone, ngx_http_ai_guard_zone_node(payload));
}


static void
ngx_http_ai_guard_zone_delete(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_node_t *node)
{
    if (zone->free) {
        zone->free(zone, node);
    }

    ngx_queue_remove(&node->queue);
    ngx_rbtree_delete(&zone->sh->rbtree, &node->node);
    ngx_slab_free_locked(zone->shpool, node);

    zone->sh->entries--;
}


/*
 * Frees up to n fresh entries among the "scan" oldest.  In an LRU zone an
 * entry that may not go is moved to the head, so that the next search
 * examines others; in a zone kept in creation order the first entry that
 * may not go ends the search (the ones after it are younger).  Returns
 * the number freed.
 */

ngx_uint_t
ngx_http_ai_guard_zone_expire(ngx_http_ai_guard_zone_t *zone, uint64_t now,
    ngx_uint_t n, ngx_uint_t scan)
{
    ngx_uint_t                 i, freed;
    ngx_queue_t               *q;
    ngx_http_ai_guard_node_t  *node;

    freed = 0;

    for (i = 0; i < scan && freed < n; i++) {

        if (ngx_queue_empty(&zone->sh->queue)) {
            break;
        }

        q = ngx_queue_last(&zone->sh->queue);
        node = ngx_queue_data(q, ngx_http_ai_guard_node_t, queue);

        if (zone->fresh(zone, node, now)) {
            ngx_http_ai_guard_zone_delete(zone, node);
            zone->sh->freed++;
            freed++;
            continue;
        }

        if (!zone->lru) {
            break;
        }

        ngx_queue_remove(q);
        ngx_queue_insert_head(&zone->sh->queue, q);
    }

    return freed;
}


/* every entry, the most recent first; the caller holds the mutex */

ngx_int_t
ngx_http_ai_guard_zone_walk(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_zone_walk_pt visit, void *data)
{
    ngx_int_t                  rc;
    ngx_queue_t               *q, *next;
    ngx_http_ai_guard_node_t  *node;

    /* the next one first: a visitor may free the entry it is given */

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = next)
    {
        next = ngx_queue_next(q);
        node = ngx_queue_data(q, ngx_http_ai_guard_node_t, queue);

        rc = visit(node, data);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * A walk in steps, from a mark of the caller's (an entry it owns): at most
 * "max" entries after the mark (from the head with "restart"), then the
 * mark goes after the last one visited, so that the next step goes on
 * from there whatever was freed meanwhile.  NGX_DONE: the walk reached the
 * end.  The caller holds the mutex; a visitor must not free the mark.
 */

ngx_int_t
ngx_http_ai_guard_zone_walk_on(ngx_http_ai_guard_zone_t *zone, void *mark,
    ngx_uint_t restart, ngx_uint_t max, ngx_http_ai_guard_zone_walk_pt visit,
    void *data)
{
    ngx_int_t                  rc;
    ngx_uint_t                 n;
    ngx_queue_t               *q, *next, *m, *prev;
    ngx_http_ai_guard_node_t  *node;

    m = &ngx_http_ai_guard_zone_node(mark)->queue;

    if (restart) {
        ngx_queue_remove(m);
        ngx_queue_insert_head(&zone->sh->queue, m);
    }

    rc = NGX_OK;

    for (q = ngx_queue_next(m), n = 0;
         q != ngx_queue_sentinel(&zone->sh->queue) && n < max;
         q = next, n++)
    {
        next = ngx_queue_next(q);
        node = ngx_queue_data(q, ngx_http_ai_guard_node_t, queue);

        rc = visit(node, data);
        if (rc != NGX_OK) {
            q = next;
            break;
        }
    }

    /* ngx_queue_insert_after() is a macro that reads its "h" twice */

    ngx_queue_remove(m);
    prev = ngx_queue_prev(q);
    ngx_queue_insert_after(prev, m);

    if (rc != NGX_OK) {
        return rc;
    }

    return q == ngx_queue_sentinel(&zone->sh->queue) ? NGX_DONE : NGX_OK;
}


/*
 * A request was refused for want of room: said loudly, but not once a
 * request (a full zone stays full for a while).  The key is printed with
 * its control bytes escaped.  Called without the zone's mutex.
 */

void
ngx_http_ai_guard_zone_alert(ngx_http_ai_guard_zone_t *zone, ngx_log_t *log,
    const char *what, u_char *key, size_t len)
{
    u_char  *e, buf[NGX_HTTP_AI_GUARD_PRINTABLE_LEN(NGX_HTTP_AI_GUARD_LOG_KEY)];

    if (ngx_time() - zone->alerted < NGX_HTTP_AI_GUARD_ALERT_EVERY) {
        return;
    }

    zone->alerted = ngx_time();

    e = ngx_http_ai_guard_printable(buf, sizeof(buf), key,
                                    ngx_min(len, NGX_HTTP_AI_GUARD_LOG_KEY));

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "ai_guard: zone \"%V\" is full: %s \"%*s\" was refused; "
                  "entries that hold state are never evicted, so requests "
                  "that need a new entry are refused until some become "
                  "free (%uL refused so far)",
                  &zone->shm_zone->shm.name, what, e - buf, buf,
                  zone->sh->refused);
}


ngx_http_ai_guard_node_t *
ngx_http_ai_guard_zone_node(void *payload)
{
    return (ngx_http_ai_guard_node_t *)
               ((u_char *) payload - offsetof(ngx_http_ai_guard_node_t, data));
}


u_char *
ngx_http_ai_guard_zone_key(void *payload, size_t *len)
{
    ngx_http_ai_guard_node_t  *n;

    n = ngx_http_ai_guard_zone_node(payload);

    *len = n->len;

    return (u_char *) n->data + n->size;
}


/* bytes in pages in use: the zone size less its free pages */

size_t
ngx_http_ai_guard_zone_used(ngx_http_ai_guard_zone_t *zone)
{
    size_t  size;

    size = zone->shm_zone->shm.size;

    return size - ngx_min(size, zone->shpool->pfree << ngx_pagesize_shift);
}
