
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <tap.h>
#include <ngx_http_ai_guard_jlog.h>


#define MAX_RECS  64


/* a journal being written, as the outbox writes it */

typedef struct {
    u_char                               *buf;
    size_t                                len;
} jfile_t;


static const ngx_http_ai_guard_batch_rec_t  *recs[MAX_RECS];

/* the bytes the last replay's records point into */
static u_char                               *copy;


static void
put(jfile_t *f, u_char type, const void *payload, size_t len)
{
    f->buf = realloc(f->buf, f->len + ngx_http_ai_guard_jlog_size(len));
    if (f->buf == NULL) {
        abort();
    }

    f->len += ngx_http_ai_guard_jlog_frame(f->buf + f->len, type, payload,
                                           len);
}


/* a record of tenant "acme" with "input" tokens */

static void
put_rec(jfile_t *f, uint64_t seq, uint64_t input)
{
    struct {
        ngx_http_ai_guard_batch_rec_t  r;
        u_char                         s[8];
    } rec;

    memset(&rec, 0, sizeof(rec));
    rec.r.seq = seq;
    rec.r.usage = 1;
    rec.r.input = input;
    rec.r.tenant_len = 4;
    memcpy(rec.s, "acme", 4);

    put(f, NGX_HTTP_AI_GUARD_JLOG_REC, &rec,
        sizeof(ngx_http_ai_guard_batch_rec_t) + 4);
}


static void
put_batch(jfile_t *f, u_char type, uint64_t first, uint64_t n)
{
    ngx_http_ai_guard_jlog_batch_t  b;

    b.first = first;
    b.n = n;
    put(f, type, &b, sizeof(b));
}


static void
put_head(jfile_t *f, uint64_t gen, uint64_t seq)
{
    ngx_http_ai_guard_jlog_head_t  h;

    h.gen = gen;
    h.node = 0xabcdef;
    h.seq = seq;
    put(f, NGX_HTTP_AI_GUARD_JLOG_HEAD, &h, sizeof(h));
}


/* a new file: its head and its (empty) snapshot's end */

static void
fresh(jfile_t *f)
{
    free(f->buf);
    f->buf = NULL;
    f->len = 0;

    put_head(f, 1, 0);
    put(f, NGX_HTTP_AI_GUARD_JLOG_SNAP, "", 0);
}


static void
replay(jfile_t *f, size_t len, ngx_http_ai_guard_jlog_replay_t *rp)
{
    /* the file read back into malloc()ed, aligned memory */
    free(copy);
    copy = malloc(len + 1);
    memcpy(copy, f->buf, len);

    memset(rp, 0, sizeof(*rp));
    rp->recs = recs;

    if (ngx_http_ai_guard_jlog_count(copy, len) > MAX_RECS) {
        abort();
    }

    ngx_http_ai_guard_jlog_replay(copy, len, rp);
}


static void
test_replay(void)
{
    jfile_t                          f = { NULL, 0 };
    ngx_http_ai_guard_jlog_replay_t  rp;

    put_head(&f, 3, 10);
    put_rec(&f, 10, 100);
    put_batch(&f, NGX_HTTP_AI_GUARD_JLOG_LEASE, 10, 1);
    put(&f, NGX_HTTP_AI_GUARD_JLOG_SNAP, "", 0);

    replay(&f, f.len, &rp);
    ok(rp.valid, "a snapshot with its end stands");
    is_int(rp.head.gen, 3, "its generation");
    is_int(rp.head.node, 0xabcdef, "its node id");
    is_int(rp.nrecs, 1, "its record");
    is_int(rp.lease.n, 1, "its leased batch, of 1 record");
    is_int(rp.lease.first, 10, "the batch's first record");
    is_int(rp.head.seq, 11, "the next sequence number follows the record");
    is_int(rp.end, f.len, "every byte stands");

    put_rec(&f, 11, 200);
    put_rec(&f, 12, 300);
    put_batch(&f, NGX_HTTP_AI_GUARD_JLOG_ACK, 10, 1);
    put_batch(&f, NGX_HTTP_AI_GUARD_JLOG_LEASE, 11, 2);

    replay(&f, f.len, &rp);
    is_int(rp.nrecs, 2, "an acknowledged batch leaves the head");
    ok(rp.nrecs == 2 && rp.recs[0]->seq == 11 && rp.recs[0]->input == 200
       && rp.recs[1]->seq == 12, "the records that stay, oldest first");
    ok(rp.lease.first == 11 && rp.lease.n == 2,
       "the batch leased after it goes again as it was");
    is_int(rp.head.seq, 13, "the next sequence number");

    put_batch(&f, NGX_HTTP_AI_GUARD_JLOG_ACK, 11, 2);

    replay(&f, f.len, &rp);
    is_int(rp.nrecs, 0, "all acknowledged: nothing to send again");
    is_int(rp.lease.n, 0, "and no batch leased");

    free(f.buf);
}


static void
test_torn(void)
{
    size_t                           whole;
    jfile_t                          f = { NULL, 0 };
    ngx_http_ai_guard_jlog_replay_t  rp;

    fresh(&f);
    put_rec(&f, 0, 1);
    put_rec(&f, 1, 2);
    whole = f.len;
    put_rec(&f, 2, 3);

    replay(&f, f.len - 5, &rp);
    ok(rp.valid && rp.nrecs == 2,
       "a frame torn by a crash is read past, the ones before stand");
    is_int(rp.end, whole, "the bytes that stand end before the torn frame");

    /* a byte of the last record's payload changed */
    f.buf[f.len - 20] ^= 1;

    replay(&f, f.len, &rp);
    is_int(rp.nrecs, 2, "a frame whose sum does not match is not replayed");

    f.buf[f.len - 20] ^= 1;
    f.buf[whole] = 'X';

    replay(&f, f.len, &rp);
    is_int(rp.nrecs, 2, "nor one without the magic");

    free(f.buf);
}


static void
test_invalid(void)
{
    jfile_t                          f = { NULL, 0 };
    ngx_http_ai_guard_jlog_replay_t  rp;

    put_head(&f, 5, 0);
    put_rec(&f, 0, 1);

    replay(&f, f.len, &rp);
    ok(!rp.valid && rp.nrecs == 0,
       "a snapshot without its end (a crash while it was written) is not "
       "replayed");

    free(f.buf);
    f.buf = NULL;
    f.len = 0;

    put_rec(&f, 0, 1);
    put(&f, NGX_HTTP_AI_GUARD_JLOG_SNAP, "", 0);

    replay(&f, f.len, &rp);
    ok(!rp.valid, "a file without a head is not a journal");

    fresh(&f);
    put_rec(&f, 0, 1);
    put_rec(&f, 1, 1);
    put_batch(&f, NGX_HTTP_AI_GUARD_JLOG_ACK, 1, 1);
    put_rec(&f, 2, 1);

    replay(&f, f.len, &rp);
    is_int(rp.nrecs, 2,
           "an acknowledgement that is not of the head stops the replay");

    fresh(&f);
    put_rec(&f, 4, 1);
    put_rec(&f, 4, 1);

    replay(&f, f.len, &rp);
    is_int(rp.nrecs, 1, "a sequence number never goes back");

    fresh(&f);
    put_rec(&f, 0, 1);
    put_batch(&f, NGX_HTTP_AI_GUARD_JLOG_LEASE, 0, 2);

    replay(&f, f.len, &rp);
    ok(rp.nrecs == 1 && rp.lease.n == 0,
       "a lease of more records than there are is refused");

    free(f.buf);
}


static void
test_frame(void)
{
    u_char  buf[64];

    is_int(ngx_http_ai_guard_jlog_size(0), 16, "a frame without payload");
    is_int(ngx_http_ai_guard_jlog_size(1), 24, "payloads pad to 8 bytes");
    is_int(ngx_http_ai_guard_jlog_frame(buf, 'S', "", 0), 16,
           "a frame's bytes are its size");
    is_int(ngx_http_ai_guard_jlog_count(buf, 16), 0,
           "an end frame is no record");
}


int
main(void)
{
    test_replay();
    test_torn();
    test_invalid();
    test_frame();

    free(copy);

    return done_testing();
}
