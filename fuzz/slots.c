
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * libFuzzer target for the key store's table: the bytes are operations
 * (set, remove, find) on 64 keys whose hashes collide on purpose, checked
 * after each against a plain array of what each key names; the table
 * must also hold no more than it was made for, and never say it is full
 * while it holds fewer.
 */

#include <stdlib.h>
#include <string.h>

#include "ngx_http_ai_guard_slots.h"


#define FUZZ_KEYS     64
#define FUZZ_ENTRIES  40


static int
fuzz_match(uint32_t ref, const void *key, void *data)
{
    return ref >> 16 == *(const uint32_t *) key + 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                         rc;
    size_t                      i;
    uint32_t                    k, ref, used, got, hash[FUZZ_KEYS];
    uint32_t                    model[FUZZ_KEYS];
    ngx_http_ai_guard_slots_t  *t;

    t = malloc(ngx_http_ai_guard_slots_size(FUZZ_ENTRIES));
    if (t == NULL) {
        return 0;
    }

    ngx_http_ai_guard_slots_init(t, FUZZ_ENTRIES);

    /* few distinct homes: long runs, wrapping around the end */

    for (k = 0; k < FUZZ_KEYS; k++) {
        hash[k] = (k * 2654435761U) >> (size ? data[0] % 32 : 0);
        model[k] = 0;
    }

    used = 0;

    for (i = 1; i < size; i++) {
        k = data[i] & (FUZZ_KEYS - 1);
        ref = ((k + 1) << 16) | (uint32_t) (i & 0xffff);

        switch (data[i] >> 6) {

        case 0:
        case 1:
            rc = ngx_http_ai_guard_slots_set(t, hash[k], ref, fuzz_match, &k,
                                             NULL);
            if (rc == 0) {
                used += (model[k] == 0);
                model[k] = ref;

            } else if (model[k] || used < FUZZ_ENTRIES) {
                abort();
            }

            break;

        case 2:
            got = ngx_http_ai_guard_slots_remove(t, hash[k], fuzz_match, &k,
                                                 NULL);
            if (got != model[k]) {
                abort();
            }

            used -= (model[k] != 0);
            model[k] = 0;
            break;

        default:
            break;
        }

        if (t->used != used || used > FUZZ_ENTRIES) {
            abort();
        }

        for (k = 0; k < FUZZ_KEYS; k++) {
            if (ngx_http_ai_guard_slots_find(t, hash[k], fuzz_match, &k, NULL)
                != model[k])
            {
                abort();
            }
        }
    }

    free(t);

    return 0;
}
