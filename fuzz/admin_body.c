
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * libFuzzer target for the admin API's bodies: any bytes, any set of
 * allowed fields; what is accepted must hold only bounded, printable
 * strings of the fields allowed.
 */

#include <stdlib.h>
#include <string.h>
#include <ngx_http_ai_guard_admin_body.h>


static void ngx_http_ai_guard_fuzz_str(ngx_http_ai_guard_admin_str_t *s,
    size_t max);


static void
ngx_http_ai_guard_fuzz_str(ngx_http_ai_guard_admin_str_t *s, size_t max)
{
    size_t  i;

    if (s->len > max) {
        abort();
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < 0x20 || s->data[i] == 0x7f) {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                           i, j;
    unsigned                         allowed;
    ngx_http_ai_guard_admin_body_t  *b;

    if (size == 0) {
        return 0;
    }

    /* 0xff: every field, the metadata and the files' own too */
    allowed = (data[0] == 0xff) ? ~0u : data[0];

    b = malloc(sizeof(ngx_http_ai_guard_admin_body_t));
    if (b == NULL) {
        return 0;
    }

    if (ngx_http_ai_guard_admin_body_parse(data + 1, size - 1, allowed, b)
        == 0)
    {
        if (b->has & ~allowed) {
            abort();
        }

        ngx_http_ai_guard_fuzz_str(&b->id, NGX_HTTP_AI_GUARD_ADMIN_MAX_ID);
        ngx_http_ai_guard_fuzz_str(&b->tenant,
                                   NGX_HTTP_AI_GUARD_ADMIN_MAX_STR);
        ngx_http_ai_guard_fuzz_str(&b->tier, NGX_HTTP_AI_GUARD_ADMIN_MAX_STR);
        ngx_http_ai_guard_fuzz_str(&b->customer,
                                   NGX_HTTP_AI_GUARD_ADMIN_MAX_STR);

        if (b->nmodels > NGX_HTTP_AI_GUARD_ADMIN_MAX_MODELS) {
            abort();
        }

        for (i = 0; i < b->nmodels; i++) {
            ngx_http_ai_guard_fuzz_str(&b->models[i],
                                       NGX_HTTP_AI_GUARD_ADMIN_MAX_STR);
        }

        if (b->nmeta > NGX_HTTP_AI_GUARD_ADMIN_MAX_META) {
            abort();
        }

        for (i = 0; i < 2 * b->nmeta; i++) {
            ngx_http_ai_guard_fuzz_str(&b->meta[i],
                                       NGX_HTTP_AI_GUARD_ADMIN_MAX_STR);

            if (b->meta[i].len == 0) {
                abort();
            }

            /* no name twice */

            for (j = 0; i % 2 == 0 && j < i; j += 2) {
                if (b->meta[j].len == b->meta[i].len
                    && memcmp(b->meta[j].data, b->meta[i].data,
                              b->meta[i].len) == 0)
                {
                    abort();
                }
            }
        }

    } else if (b->error[0] == '\0' || b->param == NULL) {
        abort();
    }

    free(b);

    return 0;
}
