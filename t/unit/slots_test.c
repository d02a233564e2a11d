
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <tap.h>
#include <ngx_http_ai_guard_slots.h>


/* a reference is its key's number (from 1) times 256 plus a version */

#define REF(k, v)  ((uint32_t) (k) * 256 + (v))


static int
match(uint32_t ref, const void *key, void *data)
{
    (*(int *) data)++;

    return ref / 256 == *(const uint32_t *) key;
}


static ngx_http_ai_guard_slots_t *
table(uint32_t entries)
{
    ngx_http_ai_guard_slots_t  *t;

    t = malloc(ngx_http_ai_guard_slots_size(entries));
    if (t == NULL) {
        abort();
    }

    memset(t, 0xa5, ngx_http_ai_guard_slots_size(entries));
    ngx_http_ai_guard_slots_init(t, entries);

    return t;
}


static uint32_t
find(ngx_http_ai_guard_slots_t *t, uint32_t hash, uint32_t k)
{
    int  calls = 0;

    return ngx_http_ai_guard_slots_find(t, hash, match, &k, &calls);
}


static int
set(ngx_http_ai_guard_slots_t *t, uint32_t hash, uint32_t k, uint32_t v)
{
    int  calls = 0;

    return ngx_http_ai_guard_slots_set(t, hash, REF(k, v), match, &k,
                                       &calls);
}


static uint32_t
del(ngx_http_ai_guard_slots_t *t, uint32_t hash, uint32_t k)
{
    int  calls = 0;

    return ngx_http_ai_guard_slots_remove(t, hash, match, &k, &calls);
}


/* the keys in the 8 slots, "-" for an empty one: "1 2 - ..." */

static const char *
layout(ngx_http_ai_guard_slots_t *t)
{
    static char  buf[32];
    uint32_t     i;

    for (i = 0; i < 8; i++) {
        buf[2 * i] = t->slot[i].ref ? (char) ('0' + t->slot[i].ref / 256)
                                    : '-';
        buf[2 * i + 1] = ' ';
    }

    buf[15] = '\0';

    return buf;
}


int
main(void)
{
    int                         calls, all;
    uint32_t                    k, i;
    ngx_http_ai_guard_slots_t  *t;

    /* sizes: a power of two at least twice the entries, 8 at least */

    is_int(ngx_http_ai_guard_slots_size(0), 0, "no table of 0 entries");
    is_int(ngx_http_ai_guard_slots_size(NGX_HTTP_AI_GUARD_SLOTS_MAX + 1), 0,
           "no table beyond the maximum");
    is_int(ngx_http_ai_guard_slots_size(1),
           offsetof(ngx_http_ai_guard_slots_t, slot)
           + 8 * sizeof(ngx_http_ai_guard_slot_t), "1 entry: 8 slots");
    is_int(ngx_http_ai_guard_slots_size(5),
           offsetof(ngx_http_ai_guard_slots_t, slot)
           + 16 * sizeof(ngx_http_ai_guard_slot_t), "5 entries: 16 slots");
    is_int(ngx_http_ai_guard_slots_size(1000000),
           offsetof(ngx_http_ai_guard_slots_t, slot)
           + 2097152 * sizeof(ngx_http_ai_guard_slot_t),
           "a million entries: 2^21 slots, 16 MB");

    /* entries of one home slot, wrapping around the end */

    t = table(4);
    is_int(t->mask, 7, "4 entries: 8 slots");

    is_int(set(t, 6, 1, 0), 0, "key 1 at its home, slot 6");
    is_int(set(t, 6, 2, 0), 0, "key 2 of the same home: slot 7");
    is_int(set(t, 7, 3, 0), 0, "key 3, home 7: wraps to slot 0");
    is_int(set(t, 1, 4, 0), 0, "key 4, home 1");
    is_int(t->used, 4, "4 used");
    is_str(layout(t), 15, "3 4 - - - - 1 2", "key 3 wrapped to slot 0");

    is_int(set(t, 2, 5, 0), -1, "a fifth entry is refused");
    is_int(find(t, 2, 5), 0, "and not found");
    is_int(set(t, 6, 2, 9), 0, "an entry's reference replaced when full");
    is_int(find(t, 6, 2), REF(2, 9), "found with its new reference");
    is_int(t->used, 4, "still 4 used");

    /* the removal shifts back the entries its hole would hide */

    is_int(del(t, 6, 1), REF(1, 0), "key 1 removed");
    is_str(layout(t), 15, "- 4 - - - - 2 3",
           "key 2 moved into its home, key 3 back across the end, "
           "key 4 never moved");
    ok(find(t, 6, 2) == REF(2, 9) && find(t, 7, 3) == REF(3, 0)
       && find(t, 1, 4) == REF(4, 0), "keys 2, 3, 4 found");
    is_int(del(t, 6, 1), 0, "key 1 gone: nothing to remove");
    is_int(t->used, 3, "3 used");

    /* an entry whose home is after the hole stays where it is */

    is_int(set(t, 6, 6, 0), 0, "key 6, home 6: slot 0");
    is_int(del(t, 6, 2), REF(2, 9), "key 2 removed from slot 6");
    is_str(layout(t), 15, "- 4 - - - - 6 3",
           "key 6 moved back to slot 6, key 3 stays at its home, 7");
    ok(find(t, 6, 6) == REF(6, 0) && find(t, 7, 3) == REF(3, 0),
       "keys 6 and 3 found");

    /* a probe asks "match" only of entries with the same hash */

    calls = 0;
    k = 9;
    is_int(ngx_http_ai_guard_slots_find(t, 14, match, &k, &calls), 0,
           "an absent key of home 6");
    is_int(calls, 0, "no entry of its hash was asked");

    free(t);

    /* many entries removed in turns: every other one still found */

    t = table(1000);
    all = 1;

    for (k = 1; k <= 1000; k++) {
        all &= (set(t, k % 97 * 31, k, 1) == 0);
    }

    ok(all, "1000 entries of 97 hashes added");

    for (k = 1; k <= 1000; k += 2) {
        all &= (del(t, k % 97 * 31, k) == REF(k, 1));
    }

    ok(all, "the odd ones removed");

    for (k = 1; k <= 1000; k++) {
        i = find(t, k % 97 * 31, k);
        all &= (k % 2 ? i == 0 : i == REF(k, 1));
    }

    ok(all, "the even ones found, the odd ones not");
    is_int(t->used, 500, "500 used");

    free(t);

    return done_testing();
}
