
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * libFuzzer target for the keys file parser: any bytes, fed in two
 * pieces split where the first byte says; every allocation is tracked and
 * freed, as the configuration pool would; a table that parses must find
 * each of its keys by its digest.
 */

#include <stdlib.h>
#include <string.h>

#include "ngx_http_ai_guard_keys.h"


typedef struct {
    void    **blocks;
    size_t    n;
    size_t    cap;
} fuzz_pool_t;


static void *
fuzz_alloc(void *data, size_t size)
{
    void         *p, **b;
    fuzz_pool_t  *pool = data;

    if (pool->n == pool->cap) {
        pool->cap = pool->cap ? pool->cap * 2 : 64;
        b = realloc(pool->blocks, pool->cap * sizeof(void *));
        if (b == NULL) {
            return NULL;
        }

        pool->blocks = b;
    }

    p = malloc(size ? size : 1);
    if (p != NULL) {
        pool->blocks[pool->n++] = p;
    }

    return p;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                            i, split;
    fuzz_pool_t                       pool;
    ngx_http_ai_guard_key_t          *k;
    ngx_http_ai_guard_keys_t         *keys;
    ngx_http_ai_guard_keys_parser_t  *kp;

    memset(&pool, 0, sizeof(fuzz_pool_t));

    kp = ngx_http_ai_guard_keys_parser_create(fuzz_alloc, &pool);
    if (kp == NULL) {
        goto done;
    }

    split = size ? data[0] % (size + 1) : 0;

    if (ngx_http_ai_guard_keys_parse(kp, data, split) == 0
        && ngx_http_ai_guard_keys_parse(kp, data + split, size - split) == 0)
    {
        keys = ngx_http_ai_guard_keys_finish(kp);

        if (keys != NULL) {
            for (k = keys->first; k; k = k->next) {
                if (ngx_http_ai_guard_keys_lookup(keys, k->digest) == NULL
                    || k->id.len == 0 || k->tenant.len == 0)
                {
                    abort();
                }
            }
        }
    }

    /* the error text is always a C string */
    (void) strlen(ngx_http_ai_guard_keys_error(kp));

    ngx_http_ai_guard_keys_parser_free(kp);

done:

    for (i = 0; i < pool.n; i++) {
        free(pool.blocks[i]);
    }

    free(pool.blocks);

    return 0;
}
