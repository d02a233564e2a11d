
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
static const ngx_http_ai_guard_batch_rec_t  *begun[MAX_RECS];
static const ngx_http_ai_guard_jlog_row_t   *rows[MAX_RECS];

/* the next replay takes U frames, as the local ledger's journal does */
static int                                   with_rows;

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


/*
 * A record of tenant "acme" with "input" tokens, as "type": R; B (then
 * "seq" is the begun id); F, after the id "id" of the request it ends;
 * U, after its "id" requests.
 */

static void
put_any(jfile_t *f, u_char type, uint64_t id, uint64_t seq, uint64_t input)
{
    struct {
        uint64_t                       id;
        ngx_http_ai_guard_batch_rec_t  r;
        u_char                         s[8];
    } rec;

    memset(&rec, 0, sizeof(rec));
    rec.id = id;
    rec.r.seq = seq;
    rec.r.usage = 1;
    rec.r.input = input;
    rec.r.estimated = (type == NGX_HTTP_AI_GUARD_JLOG_BEGUN);
    rec.r.tenant_len = 4;
    memcpy(rec.s, "acme", 4);

    if (type == NGX_HTTP_AI_GUARD_JLOG_FINISH
        || type == NGX_HTTP_AI_GUARD_JLOG_ROW)
    {
        put(f, type, &rec, sizeof(uint64_t)
                           + sizeof(ngx_http_ai_guard_batch_rec_t) + 4);
        return;
    }

    put(f, type, &rec.r, sizeof(ngx_http_ai_guard_batch_rec_t) + 4);
}


static void
put_rec(jfile_t *f, uint64_t seq, uint64_t input)
{
    put_any(f, NGX_HTTP_AI_GUARD_JLOG_REC, 0, seq, input);
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
    rp->begun = begun;
    rp->rows = with_rows ? rows : NULL;

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


/* requests admitted before the upstream, and their settlements */

static void
test_begun(void)
{
    uint64_t                         id;
    jfile_t                          f = { NULL, 0 };
    ngx_http_ai_guard_jlog_replay_t  rp;

    fresh(&f);
    put_any(&f, NGX_HTTP_AI_GUARD_JLOG_BEGUN, 0, 1, 50);
    put_any(&f, NGX_HTTP_AI_GUARD_JLOG_BEGUN, 0, 2, 60);
    put_any(&f, NGX_HTTP_AI_GUARD_JLOG_BEGUN, 0, 3, 70);

    replay(&f, f.len, &rp);
    ok(rp.nrecs == 0 && rp.nbegun == 3,
       "requests begun and never settled are replayed as begun");
    ok(rp.nbegun == 3 && rp.begun[0]->input == 50 && rp.begun[0]->estimated
       && rp.begun[2]->input == 70, "with their estimates, marked so");

    put_any(&f, NGX_HTTP_AI_GUARD_JLOG_FINISH, 2, 0, 64);
    id = 1;
    put(&f, NGX_HTTP_AI_GUARD_JLOG_END, &id, sizeof(id));

    replay(&f, f.len, &rp);
    ok(rp.nrecs == 1 && rp.recs[0]->input == 64 && !rp.recs[0]->estimated,
       "a settled one counts once, on its real usage");
    ok(rp.nbegun == 1 && rp.begun[0]->seq == 3,
       "and neither it nor one ended without usage counts its estimate");
    is_int(rp.head.seq, 1, "a settlement's record takes its sequence number");

    put_batch(&f, NGX_HTTP_AI_GUARD_JLOG_ACK, 0, 1);
    put_any(&f, NGX_HTTP_AI_GUARD_JLOG_FINISH, 99, 1, 5);

    replay(&f, f.len, &rp);
    ok(rp.nrecs == 1 && rp.recs[0]->seq == 1 && rp.nbegun == 1,
       "a settlement of no begun request is a record, and ends nothing");

    replay(&f, f.len - 5, &rp);
    ok(rp.nrecs == 0 && rp.nbegun == 1,
       "a settlement torn by a crash: the begun estimate stands");

    id = 3;
    put(&f, NGX_HTTP_AI_GUARD_JLOG_END, &id, 4);

    replay(&f, f.len, &rp);
    ok(rp.nbegun == 1 && rp.end < f.len,
       "an end frame of the wrong length stops the replay");

    fresh(&f);
    put(&f, NGX_HTTP_AI_GUARD_JLOG_FINISH, &id, sizeof(id));

    replay(&f, f.len, &rp);
    ok(rp.nrecs == 0 && rp.end < f.len,
       "a settlement without its record stops the replay");

    free(f.buf);
    f.buf = NULL;
    f.len = 0;

    put_head(&f, 2, 0);
    put_any(&f, NGX_HTTP_AI_GUARD_JLOG_BEGUN, 0, 1, 50);

    replay(&f, f.len, &rp);
    ok(!rp.valid && rp.nbegun == 0,
       "nothing begun counts from a snapshot without its end");

    free(f.buf);
}


/* the local ledger's snapshot: its rows, then the tail */

static void
test_rows(void)
{
    jfile_t                          f = { NULL, 0 };
    ngx_http_ai_guard_jlog_replay_t  rp;

    with_rows = 1;

    put_head(&f, 3, 0);
    put_any(&f, NGX_HTTP_AI_GUARD_JLOG_ROW, 7, 0, 700);
    put_any(&f, NGX_HTTP_AI_GUARD_JLOG_ROW, 2, 0, 20);
    put_any(&f, NGX_HTTP_AI_GUARD_JLOG_BEGUN, 0, 1, 50);
    put(&f, NGX_HTTP_AI_GUARD_JLOG_SNAP, "", 0);
    put_rec(&f, 0, 5);

    replay(&f, f.len, &rp);
    ok(rp.valid && rp.nrows == 2 && rp.rows[0]->requests == 7
       && rp.rows[0]->rec.input == 700 && rp.rows[1]->requests == 2,
       "a snapshot's rows are replayed with their requests and sums");
    ok(rp.nrecs == 1 && rp.recs[0]->input == 5 && rp.nbegun == 1,
       "and the tail after it, and the requests in flight");

    replay(&f, f.len - 8, &rp);
    ok(rp.nrows == 2 && rp.nrecs == 0 && rp.end < f.len,
       "a torn last frame: the snapshot stands, the torn record does not");

    put_any(&f, NGX_HTTP_AI_GUARD_JLOG_ROW, 1, 0, 1);
    put_rec(&f, 1, 6);

    replay(&f, f.len, &rp);
    ok(rp.nrows == 2 && rp.nrecs == 1 && rp.end < f.len,
       "a row after the snapshot's end stops the replay");

    with_rows = 0;

    replay(&f, f.len, &rp);
    ok(!rp.valid && rp.nrows == 0,
       "a row in the outbox's journal (no rows asked for) is forged");

    with_rows = 1;

    free(f.buf);
    f.buf = NULL;
    f.len = 0;

    put_head(&f, 3, 0);
    put(&f, NGX_HTTP_AI_GUARD_JLOG_ROW, "1234567812345678", 16);
    put(&f, NGX_HTTP_AI_GUARD_JLOG_SNAP, "", 0);

    replay(&f, f.len, &rp);
    ok(!rp.valid && rp.nrows == 0, "a row without its record is forged");

    with_rows = 0;

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
    test_begun();
    test_rows();
    test_frame();

    free(copy);

    return done_testing();
}
