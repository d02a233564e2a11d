
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_str.h"
#include "ngx_http_ai_guard_vscan.h"

#if (defined __x86_64__ && defined __GNUC__)
#define NGX_HTTP_AI_GUARD_VSCAN  1
#include <immintrin.h>
#endif


#define NGX_HTTP_AI_GUARD_VSCAN_FP       3
#define NGX_HTTP_AI_GUARD_VSCAN_KEY      4
#define NGX_HTTP_AI_GUARD_VSCAN_NONE32   0xffffffff
#define NGX_HTTP_AI_GUARD_VSCAN_BITS     17
#define NGX_HTTP_AI_GUARD_VSCAN_CACHE    64
#define NGX_HTTP_AI_GUARD_VSCAN_GOLDEN   0x9e3779b1
#define NGX_HTTP_AI_GUARD_VSCAN_HASH(k)                                     \
    ngx_http_ai_guard_vscan_slot(k, NGX_HTTP_AI_GUARD_VSCAN_BITS)
#define ngx_http_ai_guard_vscan_slot(k, bits)                               \
    (((uint32_t) (k) * NGX_HTTP_AI_GUARD_VSCAN_GOLDEN) >> (32 - (bits)))
#define ngx_http_ai_guard_vscan_min(a, b)   ((a) < (b) ? (a) : (b))


/*
 * The filter: a bitmap of hashes of the literals' first four bytes,
 * folded with | 0x20 (a three-byte literal with every fourth byte the
 * fold can make), looked up at every place of the text.  The check: a
 * table of the literals' first three bytes, folded as the DFA folds,
 * each slot the run of "order" holding its literals, compared in full;
 * a literal that several groups share is compared once ("same" chains
 * the others).
 */

struct ngx_http_ai_guard_vscan_s {
    uint32_t                  seen[(1 << NGX_HTTP_AI_GUARD_VSCAN_BITS) / 32];
    u_char                    fold[256];
    uint32_t                  ngroups;
    uint32_t                  hbits;
    uint32_t                 *slot_key;
    uint32_t                 *slot_first;
    uint32_t                 *slot_count;
    uint32_t                 *order;
    uint32_t                 *group;
    uint32_t                 *same;
    uint32_t                 *len;
    uint32_t                 *off;
    u_char                   *bytes;
};


#if (NGX_HTTP_AI_GUARD_VSCAN)
static size_t ngx_http_ai_guard_vscan_avx2(
    const ngx_http_ai_guard_vscan_t *vs, const u_char *p, size_t len,
    u_char *found, uint32_t *cache);
#endif
static inline size_t ngx_http_ai_guard_vscan_cached(
    const ngx_http_ai_guard_vscan_t *vs, const u_char *p, size_t len,
    size_t pos, u_char *found, uint32_t *cache);
static size_t ngx_http_ai_guard_vscan_check(
    const ngx_http_ai_guard_vscan_t *vs, const u_char *p, size_t len,
    size_t pos, u_char *found, size_t *more);
static uint32_t ngx_http_ai_guard_vscan_hsize(size_t n, uint32_t *bits);


int
ngx_http_ai_guard_vscan_cpu(void)
{
#if (NGX_HTTP_AI_GUARD_VSCAN)

    __builtin_cpu_init();

    if (__builtin_cpu_supports("avx2")) {
        return NGX_HTTP_AI_GUARD_VSCAN_AVX2;
    }

#endif

    return NGX_HTTP_AI_GUARD_VSCAN_NONE;
}


size_t
ngx_http_ai_guard_vscan_size(const ngx_http_ai_guard_lit_t *lits, size_t n)
{
    size_t    i, j, bytes;
    uint32_t  bits;

#if !(NGX_HTTP_AI_GUARD_VSCAN)
    return 0;
#endif

    if (n == 0 || n >= 0x10000000) {
        return 0;
    }

    bytes = 0;

    for (i = 0; i < n; i++) {
        /* a literal shorter than a fingerprint: the DFA's work */
        if (lits[i].len < NGX_HTTP_AI_GUARD_VSCAN_FP
            || lits[i].len >= 0x10000000)
        {
            return 0;
        }

        for (j = 0; j < NGX_HTTP_AI_GUARD_VSCAN_KEY && j < lits[i].len;
             j++)
        {
            if (lits[i].data[j] >= 0x80) {
                return 0;
            }
        }

        bytes += lits[i].len;
    }

    return sizeof(ngx_http_ai_guard_vscan_t) + 8
           + (3 * ngx_http_ai_guard_vscan_hsize(n, &bits) + 5 * n)
             * sizeof(uint32_t)
           + bytes;
}


ngx_http_ai_guard_vscan_t *
ngx_http_ai_guard_vscan_build(void *buf, size_t size,
    const ngx_http_ai_guard_lit_t *lits, size_t n, int impl)
{
    size_t                      i, j, k, hsize, at;
    uint32_t                    key, h, *mem, **part[8];
    ngx_http_ai_guard_vscan_t  *vs;

    if (impl <= NGX_HTTP_AI_GUARD_VSCAN_NONE
        || impl > ngx_http_ai_guard_vscan_cpu()
        || ngx_http_ai_guard_vscan_size(lits, n) == 0
        || size < ngx_http_ai_guard_vscan_size(lits, n))
    {
        return NULL;
    }

    vs = buf;
    memset(vs, 0, sizeof(ngx_http_ai_guard_vscan_t));

    for (i = 0; i < 256; i++) {
        vs->fold[i] = ngx_http_ai_guard_tolower(i);
    }

    for (i = 0; i < n; i++) {
        if (lits[i].group >= vs->ngroups) {
            vs->ngroups = lits[i].group + 1;
        }


        key = 0;

        for (j = 0; j < NGX_HTTP_AI_GUARD_VSCAN_KEY && j < lits[i].len;
             j++)
        {
            /* what the scan's "| 0x20" makes of every case of the byte */
            key |= (uint32_t) (vs->fold[lits[i].data[j]] | 0x20) << (8 * j);
        }

        if (j == NGX_HTTP_AI_GUARD_VSCAN_KEY) {
            h = NGX_HTTP_AI_GUARD_VSCAN_HASH(key);
            vs->seen[h >> 5] |= 1u << (h & 31);
            continue;
        }

        /* every fourth byte the fold can make: those with bit 5 set */

        for (at = 0x20; at < 256; at = (at + 1) | 0x20) {
            h = NGX_HTTP_AI_GUARD_VSCAN_HASH(key | (uint32_t) at << 24);
            vs->seen[h >> 5] |= 1u << (h & 31);
        }
    }

    /* the exact check: folded first three bytes -> the literals */

    hsize = ngx_http_ai_guard_vscan_hsize(n, &vs->hbits);

    mem = (uint32_t *) (((uintptr_t) (vs + 1) + 7) & ~(uintptr_t) 7);

    part[0] = &vs->slot_key;
    part[1] = &vs->slot_first;
    part[2] = &vs->slot_count;
    part[3] = &vs->order;
    part[4] = &vs->group;
    part[5] = &vs->same;
    part[6] = &vs->len;
    part[7] = &vs->off;

    /* three arrays a slot, then five a literal */

    for (i = 0; i < 8; i++) {
        *part[i] = mem;
        mem += (i < 3) ? hsize : n;
    }

    vs->bytes = (u_char *) mem;

    memset(vs->slot_key, 0, 3 * hsize * sizeof(uint32_t));

    at = 0;

    for (i = 0; i < n; i++) {
        vs->group[i] = lits[i].group;
        vs->len[i] = (uint32_t) lits[i].len;
        vs->off[i] = (uint32_t) at;

        for (j = 0; j < lits[i].len; j++) {
            vs->bytes[at++] = vs->fold[lits[i].data[j]];
        }

        key = vs->bytes[vs->off[i]] | vs->bytes[vs->off[i] + 1] << 8
              | (uint32_t) vs->bytes[vs->off[i] + 2] << 16;

        for (h = ngx_http_ai_guard_vscan_slot(key, vs->hbits);
             vs->slot_key[h] != 0 && vs->slot_key[h] != key + 1;
             h = (h + 1) & (hsize - 1))
        {
            /* void */
        }

        vs->slot_key[h] = key + 1;
        vs->slot_count[h]++;
        vs->same[i] = NGX_HTTP_AI_GUARD_VSCAN_NONE32;
    }

    at = 0;

    for (h = 0; h < hsize; h++) {
        vs->slot_first[h] = (uint32_t) at;
        at += vs->slot_count[h];
        vs->slot_count[h] = 0;
    }

    for (i = 0; i < n; i++) {
        key = vs->bytes[vs->off[i]] | vs->bytes[vs->off[i] + 1] << 8
              | (uint32_t) vs->bytes[vs->off[i] + 2] << 16;

        for (h = ngx_http_ai_guard_vscan_slot(key, vs->hbits);
             vs->slot_key[h] != key + 1;
             h = (h + 1) & (hsize - 1))
        {
            /* void */
        }

        k = i;

        for (j = vs->slot_first[h];
             j < vs->slot_first[h] + vs->slot_count[h];
             j++)
        {
            k = vs->order[j];

            if (vs->len[k] == vs->len[i]
                && memcmp(vs->bytes + vs->off[k], vs->bytes + vs->off[i],
                          vs->len[i])
                   == 0)
            {
                break;
            }
        }

        if (j == vs->slot_first[h] + vs->slot_count[h]) {
            vs->order[j] = (uint32_t) i;
            vs->slot_count[h]++;
            continue;
        }

        /* the same bytes as literal k: compared once, with k */

        while (vs->same[k] != NGX_HTTP_AI_GUARD_VSCAN_NONE32) {
            k = vs->same[k];
        }

        vs->same[k] = (uint32_t) i;
    }

    return vs;
}


size_t
ngx_http_ai_guard_vscan_scan(const ngx_http_ai_guard_vscan_t *vs,
    const u_char *p, size_t len, u_char *found)
{
    uint32_t  cache[NGX_HTTP_AI_GUARD_VSCAN_CACHE];

    memset(found, 0, vs->ngroups);

    if (len < NGX_HTTP_AI_GUARD_VSCAN_FP) {
        return 0;
    }

    /* bytes 0xff never begin a literal: an empty entry never matches */
    memset(cache, 0xff, sizeof(cache));

#if (NGX_HTTP_AI_GUARD_VSCAN)

    return ngx_http_ai_guard_vscan_avx2(vs, p, len, found, cache);

#else

    return 0;

#endif
}


/* the open-addressing table of first three bytes: twice the literals */

static uint32_t
ngx_http_ai_guard_vscan_hsize(size_t n, uint32_t *bits)
{
    uint32_t  size;

    for (*bits = 4, size = 16; size < 2 * n; (*bits)++, size <<= 1) {
        /* void */
    }

    return size;
}


/*
 * A text repeats its words: four bytes, as they are, whose check found
 * nothing left to find (no literal begins so, or all that do are found)
 * are remembered for the rest of the scan, in a small direct-mapped
 * table on the stack, and the next place with the same four bytes costs
 * a load and a compare.
 */

static inline size_t
ngx_http_ai_guard_vscan_cached(const ngx_http_ai_guard_vscan_t *vs,
    const u_char *p, size_t len, size_t pos, u_char *found, uint32_t *cache)
{
    size_t    n, more;
    uint32_t  k, *c;

    if (pos + NGX_HTTP_AI_GUARD_VSCAN_KEY > len) {
        return ngx_http_ai_guard_vscan_check(vs, p, len, pos, found, &more);
    }

    memcpy(&k, p + pos, sizeof(uint32_t));
    c = &cache[(k * NGX_HTTP_AI_GUARD_VSCAN_GOLDEN) >> 26];

    if (*c == k) {
        return 0;
    }

    n = ngx_http_ai_guard_vscan_check(vs, p, len, pos, found, &more);

    if (!more) {
        *c = k;
    }

    return n;
}


/*
 * The exact check of a place: the literals whose first three bytes,
 * folded, are the place's are compared in full.  "more": some literal
 * with those bytes may still be found further on; a place past the
 * text (the zeroed tail) has none.
 */

static size_t
ngx_http_ai_guard_vscan_check(const ngx_http_ai_guard_vscan_t *vs,
    const u_char *p, size_t len, size_t pos, u_char *found, size_t *more)
{
    size_t          i, j, l, count;
    uint32_t        key, h, mask, m;
    const u_char   *fold, *lit;

    *more = 0;

    if (pos + NGX_HTTP_AI_GUARD_VSCAN_FP > len) {
        return 0;
    }

    fold = vs->fold;
    p += pos;
    len -= pos;

    key = fold[p[0]] | fold[p[1]] << 8 | (uint32_t) fold[p[2]] << 16;
    mask = (1u << vs->hbits) - 1;

    for (h = ngx_http_ai_guard_vscan_slot(key, vs->hbits);
         vs->slot_key[h] != key + 1;
         h = (h + 1) & mask)
    {
        if (vs->slot_key[h] == 0) {
            return 0;
        }
    }

    count = 0;

    for (i = vs->slot_first[h]; i < vs->slot_first[h] + vs->slot_count[h];
         i++)
    {
        l = vs->order[i];

        for (m = (uint32_t) l;
             m != NGX_HTTP_AI_GUARD_VSCAN_NONE32 && found[vs->group[m]];
             m = vs->same[m])
        {
            /* void */
        }

        if (m == NGX_HTTP_AI_GUARD_VSCAN_NONE32) {
            /* every group of the literal found */
            continue;
        }

        lit = vs->bytes + vs->off[l];

        for (j = NGX_HTTP_AI_GUARD_VSCAN_FP;
             j < vs->len[l] && j < len && fold[p[j]] == lit[j];
             j++)
        {
            /* void */
        }

        if (j < vs->len[l]) {
            *more = 1;
            continue;
        }

        for (m = (uint32_t) l; m != NGX_HTTP_AI_GUARD_VSCAN_NONE32;
             m = vs->same[m])
        {
            if (!found[vs->group[m]]) {
                found[vs->group[m]] = 1;
                count++;
            }
        }
    }

    return count;
}


#if (NGX_HTTP_AI_GUARD_VSCAN)

/*
 * The hash of the four bytes at each of 32 places, eight places a
 * register (loads at offsets 0 to 3 give the places 4i + o), looked up
 * in the bitmap with VPGATHERDD, the bit moved to the sign and gathered
 * with VMOVMSKPS: a place passes only when its four bytes hash to a
 * literal's.  A text's last
 * 35 bytes are copied into a zeroed block first (a zero byte folds to a
 * space, and the check refuses places past the text).
 */

__attribute__((target("avx2")))
static size_t
ngx_http_ai_guard_vscan_avx2(const ngx_http_ai_guard_vscan_t *vs,
    const u_char *p, size_t len, u_char *found, uint32_t *cache)
{
    u_char         tail[72];
    size_t         at, b, count;
    uint64_t       bits;
    const u_char  *q;
    __m256i        fold, golden, low;

    fold = _mm256_set1_epi32(0x20202020);
    golden = _mm256_set1_epi32((int) NGX_HTTP_AI_GUARD_VSCAN_GOLDEN);
    low = _mm256_set1_epi32(31);
    count = 0;

#define ngx_http_ai_guard_vscan_at(o)                                       \
    ((uint64_t) _mm256_movemask_ps(_mm256_castsi256_ps(                     \
        ngx_http_ai_guard_vscan_bit(_mm256_srli_epi32(                      \
            _mm256_mullo_epi32(_mm256_or_si256(                             \
                _mm256_loadu_si256((const __m256i *) (q + o)), fold),       \
                golden),                                                    \
            32 - NGX_HTTP_AI_GUARD_VSCAN_BITS))))                           \
     << (8 * o))

#define ngx_http_ai_guard_vscan_bit(h)                                      \
    _mm256_sllv_epi32(_mm256_i32gather_epi32((const int *) vs->seen,        \
                                             _mm256_srli_epi32(h, 5), 4),   \
                      _mm256_andnot_si256(h, low))

    for (at = 0; at < len; at += 32) {

        if (len >= 35 && at <= len - 35) {
            q = p + at;

        } else {
            memset(tail, 0, sizeof(tail));
            memcpy(tail, p + at, ngx_http_ai_guard_vscan_min(len - at, 72));
            q = tail;
        }

        /* bit 8o + i: the place 4i + o */

        bits = ngx_http_ai_guard_vscan_at(0) | ngx_http_ai_guard_vscan_at(1)
               | ngx_http_ai_guard_vscan_at(2)
               | ngx_http_ai_guard_vscan_at(3);

        while (bits) {
            b = __builtin_ctzll(bits);
            count += ngx_http_ai_guard_vscan_cached(vs, p, len,
                                                    at + (b >> 3)
                                                    + 4 * (b & 7),
                                                    found, cache);
            bits &= bits - 1;
        }
    }

#undef ngx_http_ai_guard_vscan_at
#undef ngx_http_ai_guard_vscan_bit

    return count;
}

#endif
