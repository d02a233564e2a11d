
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_jlog.h"


#define NGX_HTTP_AI_GUARD_JLOG_MAGIC    'J'

/* a record's payload is at most its header, 255 items and 5 strings */
#define NGX_HTTP_AI_GUARD_JLOG_MAX      (1024 * 1024)


static uint32_t ngx_http_ai_guard_jlog_sum(u_char type, const u_char *p,
    size_t len);
static const u_char *ngx_http_ai_guard_jlog_next(const u_char *buf,
    size_t len, size_t *off, u_char *type, size_t *plen);
static const ngx_http_ai_guard_batch_rec_t *ngx_http_ai_guard_jlog_rec(
    const u_char *p, size_t plen);
static void ngx_http_ai_guard_jlog_end(ngx_http_ai_guard_jlog_replay_t *rp,
    uint64_t id);


size_t
ngx_http_ai_guard_jlog_size(size_t len)
{
    return NGX_HTTP_AI_GUARD_JLOG_HEADER + ((len + 7) & ~(size_t) 7);
}


void
ngx_http_ai_guard_jlog_header(u_char *dst, u_char type, const void *payload,
    size_t len)
{
    uint32_t  n, sum;

    memset(dst, 0, NGX_HTTP_AI_GUARD_JLOG_HEADER);

    n = (uint32_t) len;
    sum = ngx_http_ai_guard_jlog_sum(type, payload, len);

    dst[0] = NGX_HTTP_AI_GUARD_JLOG_MAGIC;
    dst[1] = type;
    memcpy(dst + 4, &n, 4);
    memcpy(dst + 8, &sum, 4);
}


size_t
ngx_http_ai_guard_jlog_frame(u_char *dst, u_char type, const void *payload,
    size_t len)
{
    size_t  size;

    size = ngx_http_ai_guard_jlog_size(len);

    memset(dst, 0, size);

    ngx_http_ai_guard_jlog_header(dst, type, payload, len);
    memcpy(dst + NGX_HTTP_AI_GUARD_JLOG_HEADER, payload, len);

    return size;
}


size_t
ngx_http_ai_guard_jlog_count(const u_char *buf, size_t len)
{
    u_char   type;
    size_t   off, plen, n;

    off = 0;
    n = 0;

    while (ngx_http_ai_guard_jlog_next(buf, len, &off, &type, &plen)) {
        n += (type == NGX_HTTP_AI_GUARD_JLOG_REC
              || type == NGX_HTTP_AI_GUARD_JLOG_ROW
              || type == NGX_HTTP_AI_GUARD_JLOG_FINISH
              || type == NGX_HTTP_AI_GUARD_JLOG_BEGUN);
    }

    return n;
}


/*
 * The acknowledgements leave the head of the queue in the order the
 * outbox removed them; one that does not match the head means the file
 * is not what this code wrote, and replay keeps what came before it.
 */

void
ngx_http_ai_guard_jlog_replay(const u_char *buf, size_t len,
    ngx_http_ai_guard_jlog_replay_t *rp)
{
    u_char                                type;
    size_t                                off, plen, h, n;
    const u_char                         *p;
    ngx_http_ai_guard_jlog_batch_t        b;
    uint64_t                              id;
    const ngx_http_ai_guard_batch_rec_t  *rec;

    memset(&rp->head, 0, sizeof(ngx_http_ai_guard_jlog_head_t));
    memset(&rp->lease, 0, sizeof(ngx_http_ai_guard_jlog_batch_t));
    rp->nrecs = 0;
    rp->nbegun = 0;
    rp->nrows = 0;
    rp->end = 0;
    rp->valid = 0;

    off = 0;
    h = 0;
    n = 0;

    p = ngx_http_ai_guard_jlog_next(buf, len, &off, &type, &plen);

    if (p == NULL || type != NGX_HTTP_AI_GUARD_JLOG_HEAD
        || plen != sizeof(ngx_http_ai_guard_jlog_head_t))
    {
        return;
    }

    memcpy(&rp->head, p, plen);
    rp->end = off;

    while ((p = ngx_http_ai_guard_jlog_next(buf, len, &off, &type, &plen))) {

        switch (type) {

        case NGX_HTTP_AI_GUARD_JLOG_FINISH:
        case NGX_HTTP_AI_GUARD_JLOG_END:
            if (plen < sizeof(uint64_t)
                || (type == NGX_HTTP_AI_GUARD_JLOG_END
                    && plen != sizeof(uint64_t)))
            {
                goto done;
            }

            memcpy(&id, p, sizeof(uint64_t));
            ngx_http_ai_guard_jlog_end(rp, id);

            if (type == NGX_HTTP_AI_GUARD_JLOG_END) {
                break;
            }

            p += sizeof(uint64_t);
            plen -= sizeof(uint64_t);

            /* fall through */

        case NGX_HTTP_AI_GUARD_JLOG_REC:
            rec = ngx_http_ai_guard_jlog_rec(p, plen);

            if (rec == NULL || rec->seq < rp->head.seq) {
                goto done;
            }

            rp->recs[n++] = rec;
            rp->head.seq = rec->seq + 1;
            break;

        case NGX_HTTP_AI_GUARD_JLOG_BEGUN:
            rec = ngx_http_ai_guard_jlog_rec(p, plen);

            if (rec == NULL) {
                goto done;
            }

            rp->begun[rp->nbegun++] = rec;
            break;

        case NGX_HTTP_AI_GUARD_JLOG_ROW:

            /* the snapshot's part: a row after its end is forged */

            if (rp->rows == NULL || rp->valid
                || plen < sizeof(uint64_t)
                || ngx_http_ai_guard_jlog_rec(p + sizeof(uint64_t),
                                              plen - sizeof(uint64_t))
                   == NULL)
            {
                goto done;
            }

            rp->rows[rp->nrows++] = (const ngx_http_ai_guard_jlog_row_t *) p;
            break;

        case NGX_HTTP_AI_GUARD_JLOG_LEASE:
        case NGX_HTTP_AI_GUARD_JLOG_ACK:
            if (plen != sizeof(ngx_http_ai_guard_jlog_batch_t)) {
                goto done;
            }

            memcpy(&b, p, plen);

            if (b.n == 0 || b.n > n - h || rp->recs[h]->seq != b.first) {
                goto done;
            }

            if (type == NGX_HTTP_AI_GUARD_JLOG_LEASE) {
                rp->lease = b;
                break;
            }

            h += b.n;

            if (rp->lease.first == b.first) {
                rp->lease.n = 0;
            }

            break;

        case NGX_HTTP_AI_GUARD_JLOG_SNAP:
            if (rp->valid) {
                goto done;
            }

            rp->valid = 1;
            break;

        default:
            goto done;
        }

        rp->end = off;
    }

done:

    if (!rp->valid) {
        rp->end = 0;
        rp->nbegun = 0;
        rp->nrows = 0;
        return;
    }

    rp->nrecs = n - h;
    memmove(rp->recs, rp->recs + h,
            rp->nrecs * sizeof(ngx_http_ai_guard_batch_rec_t *));

    if (rp->lease.n && (rp->nrecs == 0 || rp->lease.n > rp->nrecs
                        || rp->recs[0]->seq != rp->lease.first))
    {
        rp->lease.n = 0;
    }
}


/* a record that is as long as it says, or NULL */

static const ngx_http_ai_guard_batch_rec_t *
ngx_http_ai_guard_jlog_rec(const u_char *p, size_t plen)
{
    const ngx_http_ai_guard_batch_rec_t  *rec;

    rec = (const ngx_http_ai_guard_batch_rec_t *) p;

    if (plen < sizeof(ngx_http_ai_guard_batch_rec_t)
        || ngx_http_ai_guard_batch_rec_size(rec) != plen)
    {
        return NULL;
    }

    return rec;
}


/*
 * A begun request settled: its estimate no longer counts.  Searched
 * from the newest, since requests in flight are few and most end soon;
 * an id no B frame began (the request began with no room in the zone
 * for its estimate, or while the journal was broken) ends nothing.
 */

static void
ngx_http_ai_guard_jlog_end(ngx_http_ai_guard_jlog_replay_t *rp, uint64_t id)
{
    size_t  i;

    for (i = rp->nbegun; i > 0; i--) {
        if (rp->begun[i - 1]->seq == id) {
            memmove(&rp->begun[i - 1], &rp->begun[i],
                    (rp->nbegun - i) * sizeof(void *));
            rp->nbegun--;
            return;
        }
    }
}


/* the next whole, unforged frame at "*off", or NULL */

static const u_char *
ngx_http_ai_guard_jlog_next(const u_char *buf, size_t len, size_t *off,
    u_char *type, size_t *plen)
{
    size_t         size;
    uint32_t       n, sum;
    const u_char  *f;

    if (len - *off < NGX_HTTP_AI_GUARD_JLOG_HEADER || *off > len) {
        return NULL;
    }

    f = buf + *off;

    memcpy(&n, f + 4, 4);
    memcpy(&sum, f + 8, 4);

    if (f[0] != NGX_HTTP_AI_GUARD_JLOG_MAGIC
        || n > NGX_HTTP_AI_GUARD_JLOG_MAX)
    {
        return NULL;
    }

    size = ngx_http_ai_guard_jlog_size(n);

    if (size > len - *off
        || ngx_http_ai_guard_jlog_sum(f[1], f + NGX_HTTP_AI_GUARD_JLOG_HEADER,
                                      n)
           != sum)
    {
        return NULL;
    }

    *off += size;
    *type = f[1];
    *plen = n;

    return f + NGX_HTTP_AI_GUARD_JLOG_HEADER;
}


/* FNV-1a: catches a torn or stale frame, not an adversary's */

static uint32_t
ngx_http_ai_guard_jlog_sum(u_char type, const u_char *p, size_t len)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    h = (h ^ type) * 16777619u;

    for (i = 0; i < len; i++) {
        h = (h ^ p[i]) * 16777619u;
    }

    return h;
}
