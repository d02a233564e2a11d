
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_str.h"
#include "ngx_http_ai_guard_ac.h"


#define NGX_HTTP_AI_GUARD_AC_NONE     0xffffffff


static size_t ngx_http_ai_guard_ac_emit(const ngx_http_ai_guard_ac_t *ac,
    uint32_t t, u_char *found);


/*
 * Aho-Corasick over ASCII-case-folded bytes.  The alphabet is folded to
 * the bytes the literals use plus one "other" class, so the full
 * transition table stays small: states x (classes + 1) x 4 bytes; the
 * construction's own tables (the trie before renumbering, failure links,
 * the queue, the new numbers) take the rest of the buffer.
 */

size_t
ngx_http_ai_guard_ac_size(const ngx_http_ai_guard_lit_t *lits, size_t n)
{
    size_t  i, j, states, classes;
    u_char  seen[256];

    memset(seen, 0, sizeof(seen));

    states = 1;
    classes = 1;

    for (i = 0; i < n; i++) {
        states += lits[i].len;

        for (j = 0; j < lits[i].len; j++) {
            if (!seen[ngx_http_ai_guard_tolower(lits[i].data[j])]) {
                seen[ngx_http_ai_guard_tolower(lits[i].data[j])] = 1;
                classes++;
            }
        }
    }

    return sizeof(ngx_http_ai_guard_ac_t) + 8
           + (2 * states * (classes + 1) + states * 6 + n * 2)
             * sizeof(uint32_t);
}


ngx_http_ai_guard_ac_t *
ngx_http_ai_guard_ac_build(void *buf, size_t size,
    const ngx_http_ai_guard_lit_t *lits, size_t n)
{
    u_char                   b, map[256];
    size_t                   i, j, states;
    uint32_t                 s, t, f, c, nc, w, na, nb, *fail, *queue, qh,
                             qt, *mem, *trie, *emit, *num;
    ngx_http_ai_guard_ac_t  *ac;

    if (size < ngx_http_ai_guard_ac_size(lits, n) || n >= 0xffffffff) {
        return NULL;
    }

    ac = buf;
    memset(ac, 0, sizeof(ngx_http_ai_guard_ac_t));
    memset(map, 0, sizeof(map));

    states = 1;
    nc = 1;

    for (i = 0; i < n; i++) {
        states += lits[i].len;

        for (j = 0; j < lits[i].len; j++) {
            b = ngx_http_ai_guard_tolower(lits[i].data[j]);

            if (map[b] == 0 && nc < 256) {
                map[b] = (u_char) nc++;
            }
        }

        if (lits[i].group >= ac->ngroups) {
            ac->ngroups = lits[i].group + 1;
        }
    }

    for (i = 0; i < 256; i++) {
        ac->cls[i] = map[ngx_http_ai_guard_tolower(i)];
    }

    w = nc + 1;

    ac->width = w;
    ac->nlits = (uint32_t) n;

    mem = (uint32_t *) (((uintptr_t) (ac + 1) + 7) & ~(uintptr_t) 7);

    ac->next = mem;
    mem += states * w;
    ac->dict = mem;
    mem += states;
    ac->out = mem;
    mem += states;
    ac->same = mem;
    mem += n;
    ac->group = mem;
    mem += n;
    trie = mem;
    mem += states * w;
    emit = mem;
    mem += states;
    fail = mem;
    mem += states;
    queue = mem;
    mem += states;
    num = mem;

    memset(trie, 0xff, states * w * sizeof(uint32_t));
    memset(ac->out, 0xff, states * sizeof(uint32_t));
    memset(ac->dict, 0xff, states * sizeof(uint32_t));

    ac->nstates = 1;

    for (i = 0; i < n; i++) {
        s = 0;
        ac->group[i] = lits[i].group;

        for (j = 0; j < lits[i].len; j++) {
            c = ac->cls[lits[i].data[j]];

            if (trie[s * w + c] == NGX_HTTP_AI_GUARD_AC_NONE) {
                trie[s * w + c] = ac->nstates++;
            }

            s = trie[s * w + c];
        }

        if (s == 0) {
            /* an empty literal occurs in every text; left out */
            ac->same[i] = NGX_HTTP_AI_GUARD_AC_NONE;
            continue;
        }

        ac->same[i] = ac->out[s];
        ac->out[s] = (uint32_t) i;
    }

    qh = 0;
    qt = 0;

    for (c = 0; c < nc; c++) {
        t = trie[c];

        if (t == NGX_HTTP_AI_GUARD_AC_NONE) {
            trie[c] = 0;

        } else {
            fail[t] = 0;
            queue[qt++] = t;
        }
    }

    while (qh < qt) {
        s = queue[qh++];

        for (c = 0; c < nc; c++) {
            t = trie[s * w + c];
            f = trie[fail[s] * w + c];

            if (t == NGX_HTTP_AI_GUARD_AC_NONE) {
                trie[s * w + c] = f;
                continue;
            }

            fail[t] = f;
            ac->dict[t] = (ac->out[f] != NGX_HTTP_AI_GUARD_AC_NONE)
                          ? f : ac->dict[f];
            queue[qt++] = t;
        }
    }

    /* states without an output first, the root keeping 0 */

    na = 0;

    for (s = 0; s < ac->nstates; s++) {
        emit[s] = (ac->out[s] != NGX_HTTP_AI_GUARD_AC_NONE)
                  ? s : ac->dict[s];

        if (emit[s] == NGX_HTTP_AI_GUARD_AC_NONE) {
            num[s] = na++;
        }
    }

    nb = na;

    for (s = 0; s < ac->nstates; s++) {
        if (emit[s] != NGX_HTTP_AI_GUARD_AC_NONE) {
            num[s] = nb++;
        }
    }

    ac->limit = na * w;

    for (s = 0; s < ac->nstates; s++) {
        for (c = 0; c < nc; c++) {
            ac->next[num[s] * w + c] = num[trie[s * w + c]] * w;
        }

        ac->next[num[s] * w + nc] = emit[s];
    }

    return ac;
}


/*
 * Marks found[g] = 1 for every group g one of whose literals occurs in
 * the text (found has ngroups bytes) and returns how many groups do.
 * The loop is unrolled: a state with an output is rare in prose, so a
 * byte costs a class load, a table load and a compare.
 */

size_t
ngx_http_ai_guard_ac_scan(const ngx_http_ai_guard_ac_t *ac, const u_char *p,
    size_t len, u_char *found)
{
    size_t           s, w, limit, count;
    const u_char    *end, *cls;
    const uint32_t  *next;

    memset(found, 0, ac->ngroups);

    count = 0;
    s = 0;
    w = ac->width;
    limit = ac->limit;
    next = ac->next;
    cls = ac->cls;
    end = p + len;

#define ngx_http_ai_guard_ac_step(c)                                        \
    s = next[s + cls[c]];                                                   \
    if (s >= limit) {                                                       \
        count += ngx_http_ai_guard_ac_emit(ac, next[s + w - 1], found);     \
    }

    while (end - p >= 4) {
        ngx_http_ai_guard_ac_step(p[0]);
        ngx_http_ai_guard_ac_step(p[1]);
        ngx_http_ai_guard_ac_step(p[2]);
        ngx_http_ai_guard_ac_step(p[3]);
        p += 4;
    }

    while (p < end) {
        ngx_http_ai_guard_ac_step(*p);
        p++;
    }

#undef ngx_http_ai_guard_ac_step

    return count;
}


static size_t
ngx_http_ai_guard_ac_emit(const ngx_http_ai_guard_ac_t *ac, uint32_t t,
    u_char *found)
{
    size_t    count;
    uint32_t  l;

    count = 0;

    for ( /* void */ ; t != NGX_HTTP_AI_GUARD_AC_NONE; t = ac->dict[t]) {
        for (l = ac->out[t]; l != NGX_HTTP_AI_GUARD_AC_NONE; l = ac->same[l])
        {
            if (!found[ac->group[l]]) {
                found[ac->group[l]] = 1;
                count++;
            }
        }
    }

    return count;
}
