
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_SLOTS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_SLOTS_H_INCLUDED_


/*
 * An open-addressing hash table of fixed size, made to live in shared
 * memory as it is (no pointers): the key store's lookup by digest
 * (docs/admin.md), whose cost must not grow with the number of keys.
 * Pure code (no nginx runtime); the caller serializes access.
 *
 * A slot holds a 32-bit hash and a 32-bit reference (0: empty), which
 * only the caller can read: "match" tells whether the entry a reference
 * names has the key looked for.  Linear probing from hash & mask; a
 * removal shifts the entries after it back (no tombstones), so a probe
 * ends at the first empty slot whatever the history of the table.
 *
 * A table made for "entries" has a power of two slots at least twice
 * that, and refuses an entry beyond "entries": it is never more than
 * half full, so a probe stays short at any size.
 */

#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_AI_GUARD_SLOTS_MAX  (1U << 30)    /* entries, at most */


typedef struct {
    uint32_t                       hash;
    uint32_t                       ref;
} ngx_http_ai_guard_slot_t;


typedef struct {
    uint32_t                       mask;      /* slots less one */
    uint32_t                       used;
    uint32_t                       entries;   /* it takes at most */
    uint32_t                       reserved;
    ngx_http_ai_guard_slot_t       slot[1];
} ngx_http_ai_guard_slots_t;


/* nonzero: the entry "ref" names has "key" */
typedef int (*ngx_http_ai_guard_slots_match_pt)(uint32_t ref,
    const void *key, void *data);


/* bytes of a table for "entries" (1 .. SLOTS_MAX), 0 when out of range */
size_t ngx_http_ai_guard_slots_size(uint32_t entries);

/* "t": slots_size(entries) bytes of any content */
void ngx_http_ai_guard_slots_init(ngx_http_ai_guard_slots_t *t,
    uint32_t entries);

/* the reference of the entry with "key", 0: none */
uint32_t ngx_http_ai_guard_slots_find(ngx_http_ai_guard_slots_t *t,
    uint32_t hash, ngx_http_ai_guard_slots_match_pt match, const void *key,
    void *data);

/*
 * The entry with "key" now names "ref" (nonzero), added when there was
 * none: 0; -1: the table holds "entries" already.
 */
int ngx_http_ai_guard_slots_set(ngx_http_ai_guard_slots_t *t, uint32_t hash,
    uint32_t ref, ngx_http_ai_guard_slots_match_pt match, const void *key,
    void *data);

/* the entry with "key" removed: its reference, 0 when there was none */
uint32_t ngx_http_ai_guard_slots_remove(ngx_http_ai_guard_slots_t *t,
    uint32_t hash, ngx_http_ai_guard_slots_match_pt match, const void *key,
    void *data);


#endif /* _NGX_HTTP_AI_GUARD_SLOTS_H_INCLUDED_ */
