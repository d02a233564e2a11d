
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_slots.h"


static uint32_t ngx_http_ai_guard_slots_index(ngx_http_ai_guard_slots_t *t,
    uint32_t hash, ngx_http_ai_guard_slots_match_pt match, const void *key,
    void *data);


size_t
ngx_http_ai_guard_slots_size(uint32_t entries)
{
    size_t  n;

    if (entries == 0 || entries > NGX_HTTP_AI_GUARD_SLOTS_MAX) {
        return 0;
    }

    /* a power of two at least twice the entries: at most half full */

    for (n = 8; n < (size_t) entries * 2; n <<= 1) { /* void */ }

    return offsetof(ngx_http_ai_guard_slots_t, slot)
           + n * sizeof(ngx_http_ai_guard_slot_t);
}


void
ngx_http_ai_guard_slots_init(ngx_http_ai_guard_slots_t *t, uint32_t entries)
{
    size_t  n;

    n = (ngx_http_ai_guard_slots_size(entries)
         - offsetof(ngx_http_ai_guard_slots_t, slot))
        / sizeof(ngx_http_ai_guard_slot_t);

    t->mask = (uint32_t) (n - 1);
    t->used = 0;
    t->entries = entries;
    t->reserved = 0;

    memset(t->slot, 0, n * sizeof(ngx_http_ai_guard_slot_t));
}


uint32_t
ngx_http_ai_guard_slots_find(ngx_http_ai_guard_slots_t *t, uint32_t hash,
    ngx_http_ai_guard_slots_match_pt match, const void *key, void *data)
{
    uint32_t  i;

    i = ngx_http_ai_guard_slots_index(t, hash, match, key, data);

    return t->slot[i].ref;
}


int
ngx_http_ai_guard_slots_set(ngx_http_ai_guard_slots_t *t, uint32_t hash,
    uint32_t ref, ngx_http_ai_guard_slots_match_pt match, const void *key,
    void *data)
{
    uint32_t  i;

    i = ngx_http_ai_guard_slots_index(t, hash, match, key, data);

    if (t->slot[i].ref == 0) {
        if (t->used >= t->entries) {
            return -1;
        }

        t->used++;
        t->slot[i].hash = hash;
    }

    t->slot[i].ref = ref;

    return 0;
}


uint32_t
ngx_http_ai_guard_slots_remove(ngx_http_ai_guard_slots_t *t, uint32_t hash,
    ngx_http_ai_guard_slots_match_pt match, const void *key, void *data)
{
    uint32_t  i, j, home, ref;

    i = ngx_http_ai_guard_slots_index(t, hash, match, key, data);
    ref = t->slot[i].ref;

    if (ref == 0) {
        return 0;
    }

    t->used--;

    /*
     * The entries after the hole, up to the next empty slot, each moved
     * into it unless its probe starts after the hole (cyclically), where
     * a probe for it would never pass the hole: then every probe still
     * meets its entry before an empty slot.
     */

    for (j = (i + 1) & t->mask; t->slot[j].ref; j = (j + 1) & t->mask) {
        home = t->slot[j].hash & t->mask;

        if (((j - home) & t->mask) < ((j - i) & t->mask)) {
            continue;
        }

        t->slot[i] = t->slot[j];
        i = j;
    }

    t->slot[i].hash = 0;
    t->slot[i].ref = 0;

    return ref;
}


/* the slot of the entry with "key", or the empty slot its probe ends at */

static uint32_t
ngx_http_ai_guard_slots_index(ngx_http_ai_guard_slots_t *t, uint32_t hash,
    ngx_http_ai_guard_slots_match_pt match, const void *key, void *data)
{
    uint32_t  i;

    for (i = hash & t->mask; t->slot[i].ref; i = (i + 1) & t->mask) {
        if (t->slot[i].hash == hash && match(t->slot[i].ref, key, data)) {
            break;
        }
    }

    return i;
}
