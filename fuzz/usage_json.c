
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The usage parser on a JSON body: the first two bytes of the input pick
 * how the rest is cut into pieces; the result must be the one of feeding
 * it whole.  Each piece is fed from an exact-size copy so that ASan sees
 * any read past a buffer.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ngx_http_ai_guard_json.h>
#include <ngx_http_ai_guard_usage.h>


#ifndef NGX_HTTP_AI_GUARD_FUZZ_SSE
#define NGX_HTTP_AI_GUARD_FUZZ_SSE  0
#endif


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
feed_copy(ngx_http_ai_guard_usage_parser_t *p, const u_char *d, size_t n)
{
    u_char  *c;

    c = malloc(n ? n : 1);
    if (c == NULL) {
        abort();
    }

    memcpy(c, d, n);
    ngx_http_ai_guard_usage_feed(p, c, n);
    free(c);
}


static int
same(const ngx_http_ai_guard_usage_t *a, const ngx_http_ai_guard_usage_t *b)
{
    return a->input_tokens == b->input_tokens
           && a->output_tokens == b->output_tokens
           && a->cached_tokens == b->cached_tokens
           && a->cache_write_tokens == b->cache_write_tokens
           && a->reasoning_tokens == b->reasoning_tokens
           && a->content_bytes == b->content_bytes
           && a->found == b->found
           && a->vendor == b->vendor
           && a->model_len == b->model_len
           && memcmp(a->model, b->model, a->model_len) == 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                             pos, n, max;
    uint32_t                           seed;
    ngx_http_ai_guard_usage_t          whole, cut;
    ngx_http_ai_guard_usage_parser_t   p;

    if (size < 2) {
        return 0;
    }

    seed = data[0] | (data[1] << 8);
    data += 2;
    size -= 2;

    /*
     * Whole, a string's plain bytes are skipped with AVX2 (where the CPU
     * has it) or SSE2, as the seed says; the pieces are too short for
     * AVX2: the two must agree.
     */

    (void) ngx_http_ai_guard_json_simd(!(seed & 0x10));

    ngx_http_ai_guard_usage_init(&p, NGX_HTTP_AI_GUARD_FUZZ_SSE);
    feed_copy(&p, data, size);
    ngx_http_ai_guard_usage_finish(&p, &whole);

    if (whole.model_len > NGX_HTTP_AI_GUARD_USAGE_MODEL_LEN
        || whole.input_tokens < 0 || whole.output_tokens < 0
        || whole.cached_tokens < 0 || whole.cached_tokens > whole.input_tokens
        || whole.reasoning_tokens < 0
        || whole.reasoning_tokens > whole.output_tokens
        || whole.content_bytes > size)
    {
        abort();
    }

    /* pieces of 1 .. max bytes, max from the seed; 1: byte by byte */
    max = (seed & 0x0f) + 1;

    ngx_http_ai_guard_usage_init(&p, NGX_HTTP_AI_GUARD_FUZZ_SSE);

    for (pos = 0; pos < size; pos += n) {
        seed = seed * 1103515245 + 12345;
        n = ((seed >> 16) % max) + 1;

        if (n > size - pos) {
            n = size - pos;
        }

        feed_copy(&p, data + pos, n);
    }

    ngx_http_ai_guard_usage_finish(&p, &cut);

    if (!same(&whole, &cut)) {
        abort();
    }

    return 0;
}
