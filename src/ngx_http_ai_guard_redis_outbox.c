
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_redis_transport.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_batch.h"
#include "ngx_http_ai_guard_jlog.h"
#include "ngx_http_ai_guard_journal.h"
#include "ngx_http_ai_guard_redis_outbox.h"


#define NGX_HTTP_AI_GUARD_REDIS_FLUSH_MS     100
#define NGX_HTTP_AI_GUARD_REDIS_BATCH        256


/*
 * An outbox record: one settled request in the queue, laid out as
 * src/ngx_http_ai_guard_batch.h says (its items and strings follow it).
 * A begun request's estimate is one too, in the begun queue; "id" is
 * where its journal's F frame takes the id from, just before the record.
 */

typedef struct {
    ngx_queue_t                      queue;
    uint64_t                         id;
    ngx_http_ai_guard_batch_rec_t    rec;
} ngx_http_ai_guard_redis_rec_t;


/*
 * A batch on its way: its records copied out of the zone into "pool",
 * which lives until the reply is handled.
 */

typedef struct {
    ngx_pool_t                            *pool;
    uint64_t                               first;
    uint64_t                               node;
    ngx_uint_t                             n;
    const ngx_http_ai_guard_batch_rec_t  **recs;
    int                                    argc;
    const char                           **argv;
    size_t                                *argvlen;
    ngx_uint_t                             replies;   /* still due */
    unsigned                               applied:1;
    unsigned                               replicated:1;
} ngx_http_ai_guard_redis_flush_t;


/* the strings of a record, before they are copied in */

typedef struct {
    ngx_str_t                        tenant;
    ngx_str_t                        key;
    ngx_str_t                        model;
    ngx_str_t                        customer;
    ngx_str_t                        scope;
} ngx_http_ai_guard_redis_strs_t;


/* the worker's side of the outbox: worker 0 flushes it */

typedef struct {
    ngx_http_ai_guard_redis_conf_t  *rcf;
    ngx_log_t                       *log;
    ngx_event_t                      flush;
    ngx_uint_t                       flushing;
} ngx_http_ai_guard_redis_flusher_t;


static ngx_uint_t ngx_http_ai_guard_redis_corrections(
    ngx_http_ai_guard_ctx_t *ctx, uint64_t now,
    ngx_http_ai_guard_batch_item_t *items);
static void ngx_http_ai_guard_redis_outbox_put(
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_log_t *log,
    ngx_http_ai_guard_batch_rec_t *rec, ngx_http_ai_guard_redis_strs_t *strs,
    ngx_http_ai_guard_batch_item_t *items, ngx_uint_t n, uint64_t now,
    ngx_http_ai_guard_redis_rec_t *begun);
static ngx_http_ai_guard_redis_rec_t *ngx_http_ai_guard_redis_rec_alloc(
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_http_ai_guard_batch_rec_t *rec,
    ngx_http_ai_guard_redis_strs_t *strs,
    ngx_http_ai_guard_batch_item_t *items, ngx_uint_t n, uint64_t now);
static void ngx_http_ai_guard_redis_usage_strs(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_redis_strs_t *strs);
static void ngx_http_ai_guard_redis_unbegin(
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_http_ai_guard_redis_rec_t *b);
static void ngx_http_ai_guard_redis_flush_handler(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_flush_quit(void);
static void ngx_http_ai_guard_redis_flush_batch(void);
static ngx_int_t ngx_http_ai_guard_redis_flush_copy(
    ngx_http_ai_guard_redis_flush_t *f);
static ngx_int_t ngx_http_ai_guard_redis_flush_encode(
    ngx_http_ai_guard_redis_flush_t *f, ngx_http_ai_guard_batch_t *b);
static void ngx_http_ai_guard_redis_flush_done(void *data,
    redisReply *reply);
static void ngx_http_ai_guard_redis_flush_waited(void *data,
    redisReply *reply);
static void ngx_http_ai_guard_redis_flush_end(
    ngx_http_ai_guard_redis_flush_t *f);
static ngx_int_t ngx_http_ai_guard_redis_outbox_zone(ngx_shm_zone_t *zone,
    void *data);
static void ngx_http_ai_guard_redis_outbox_restore(
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_log_t *log);
static void ngx_http_ai_guard_redis_outbox_snapshot(
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_log_t *log);
static size_t ngx_http_ai_guard_redis_outbox_frames(ngx_queue_t *queue,
    u_char *p, u_char type);
static ngx_uint_t ngx_http_ai_guard_redis_outbox_take(
    ngx_http_ai_guard_redis_conf_t *rcf,
    const ngx_http_ai_guard_batch_rec_t **recs, size_t n,
    ngx_uint_t renumber);


static ngx_http_ai_guard_redis_flusher_t  ngx_http_ai_guard_redis_flusher;

/* the index of the outbox script in the transport's registry */
static ngx_uint_t  ngx_http_ai_guard_redis_flush_script;

/* the transport's init of the zone, which the journal's wraps */
static ngx_shm_zone_init_pt  ngx_http_ai_guard_redis_zone_init;


/*
 * A batch of the outbox, applied once: KEYS[1] is the batch id; when it
 * is already set the batch was applied before (a retry) and nothing is
 * counted again.  ARGV: the key prefix, then the records: usage ('u') and
 * corrections of buckets ('b'), quotas ('q') and concurrency ('c').  A
 * usage hash's key is the day, then the tenant, key id, model and Stripe
 * customer, each as "<length>:<bytes>": no two rows share one.  Its
 * reasoning_tokens and cache_write_tokens came later: a row an older
 * node wrote has neither, which the report reads as 0.
 */

static const char  ngx_http_ai_guard_redis_flush_lua[] =
    "if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', 604800) then\n"
    "  return 0\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local p = ARGV[1]\n"
    "local i = 2\n"
    "while i <= #ARGV do\n"
    "  local ty = ARGV[i]\n"
    "  if ty == 'u' then\n"
    "    local k = p .. 'u:' .. ARGV[i + 1] .. ':'\n"
    "              .. #ARGV[i + 2] .. ':' .. ARGV[i + 2]\n"
    "              .. #ARGV[i + 3] .. ':' .. ARGV[i + 3]\n"
    "              .. #ARGV[i + 4] .. ':' .. ARGV[i + 4]\n"
    "              .. #ARGV[i + 5] .. ':' .. ARGV[i + 5]\n"
    "    redis.call('HSET', k, 'day', ARGV[i + 1], 'tenant', ARGV[i + 2],\n"
    "               'key_id', ARGV[i + 3], 'model', ARGV[i + 4],\n"
    "               'stripe_customer', ARGV[i + 5])\n"
    "    redis.call('HINCRBY', k, 'requests', ARGV[i + 6])\n"
    "    redis.call('HINCRBY', k, 'input_tokens', ARGV[i + 7])\n"
    "    redis.call('HINCRBY', k, 'output_tokens', ARGV[i + 8])\n"
    "    redis.call('HINCRBY', k, 'cached_tokens', ARGV[i + 9])\n"
    "    redis.call('HINCRBY', k, 'estimated_requests', ARGV[i + 10])\n"
    "    redis.call('HINCRBY', k, 'cost_pico_usd', ARGV[i + 11])\n"
    "    redis.call('HINCRBY', k, 'reasoning_tokens', ARGV[i + 12])\n"
    "    redis.call('HINCRBY', k, 'cache_write_tokens', ARGV[i + 13])\n"
    "    redis.call('SADD', p .. 'days:' .. ARGV[i + 1], k)\n"
    "    i = i + 14\n"
    "  elseif ty == 'b' then\n"
    "    local k = ARGV[i + 1]\n"
    "    local lim = tonumber(ARGV[i + 2])\n"
    "    local per = tonumber(ARGV[i + 3])\n"
    "    local h = redis.call('HMGET', k, 'l', 's')\n"
    "    local l = tonumber(h[1]) or 0\n"
    "    local s = tonumber(h[2]) or now\n"
    "    if now > s then\n"
    "      l = l - (now - s) * lim\n"
    "      if l < 0 then l = 0 end\n"
    "      s = now\n"
    "    end\n"
    "    l = l + tonumber(ARGV[i + 4]) * per\n"
    "    if l < 0 then l = 0 end\n"
    "    redis.call('HSET', k, 'l', l, 's', s)\n"
    "    redis.call('PEXPIRE', k, math.ceil(l / lim) + 1000)\n"
    "    i = i + 5\n"
    "  elseif ty == 'q' then\n"
    "    local k = ARGV[i + 1]\n"
    "    if redis.call('INCRBY', k, ARGV[i + 2]) < 0 then\n"
    "      redis.call('SET', k, 0, 'KEEPTTL')\n"
    "    end\n"
    "    if redis.call('PTTL', k) < 0 then\n"
    "      redis.call('PEXPIRE', k, ARGV[i + 3])\n"
    "    end\n"
    "    i = i + 4\n"
    "  else\n"
    "    local k = ARGV[i + 1]\n"
    "    if redis.call('INCRBY', k, ARGV[i + 2]) < 0 then\n"
    "      redis.call('SET', k, 0)\n"
    "    end\n"
    "    redis.call('PEXPIRE', k, 3600000)\n"
    "    i = i + 3\n"
    "  end\n"
    "end\n"
    "return 1\n";


ngx_int_t
ngx_http_ai_guard_redis_outbox_init(ngx_conf_t *cf,
    ngx_http_ai_guard_redis_conf_t *rcf)
{
    ngx_int_t  n;

    n = ngx_http_ai_guard_redis_script(cf, ngx_http_ai_guard_redis_flush_lua);
    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_redis_flush_script = n;

    if (rcf->journal.path.len) {
        rcf->journal.what = "redis journal";
        rcf->journal.directive = "ai_guard_redis";

        if (ngx_http_ai_guard_journal_open(cf, &rcf->journal) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_ai_guard_redis_zone_init = rcf->shm_zone->init;
        rcf->shm_zone->init = ngx_http_ai_guard_redis_outbox_zone;
    }

    return NGX_OK;
}


/*
 * The zone is made (a start) or adopted (a reload); with a journal, a
 * start first takes back what the journal holds, and either way the
 * journal is rewritten from the outbox, so that its files and the zone
 * agree from here on.  By the master, before any worker runs.
 */

static ngx_int_t
ngx_http_ai_guard_redis_outbox_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_int_t                        rc;
    ngx_uint_t                       fresh;
    ngx_http_ai_guard_redis_conf_t  *rcf;

    rcf = zone->data;
    fresh = (data == NULL && !zone->shm.exists);

    rc = ngx_http_ai_guard_redis_zone_init(zone, data);

    if (rc != NGX_OK || ngx_test_config) {
        return rc;
    }

    rcf->journal.sh = &rcf->sh->journal;

    ngx_shmtx_lock(&rcf->shpool->mutex);

    if (fresh) {
        ngx_http_ai_guard_redis_outbox_restore(rcf, zone->shm.log);
    }

    ngx_http_ai_guard_redis_outbox_snapshot(rcf, zone->shm.log);

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    return NGX_OK;
}


/*
 * The records Redis had not acknowledged go back into the outbox under
 * their node id and sequence numbers, and the batch that was leased
 * with its size: it goes out again as it went before, under the same
 * batch id, so Redis counts it once whether or not it had applied it.
 */

static void
ngx_http_ai_guard_redis_outbox_restore(ngx_http_ai_guard_redis_conf_t *rcf,
    ngx_log_t *log)
{
    u_char                           *buf;
    ngx_uint_t                        lost, blost, level;
    ngx_http_ai_guard_redis_sh_t     *sh;
    ngx_http_ai_guard_jlog_replay_t   rp;

    sh = rcf->sh;

    buf = ngx_http_ai_guard_journal_load(&rcf->journal, log, &rp);
    if (buf == NULL) {
        return;
    }

    sh->node = rp.head.node;
    sh->seq = rp.head.seq;

    lost = ngx_http_ai_guard_redis_outbox_take(rcf, rp.recs, rp.nrecs, 0);

    if (rp.lease.n && lost == 0) {
        sh->batch = rp.lease.n;
        sh->batch_first = rp.lease.first;
    }

    /*
     * Requests admitted and never settled: the crash took them after
     * their journal's B frame, so they may have reached the upstream;
     * they are counted on their estimate, as estimated, after the
     * settled ones.
     */

    blost = ngx_http_ai_guard_redis_outbox_take(rcf, rp.begun, rp.nbegun, 1);

    if (rp.nbegun) {
        level = blost ? NGX_LOG_ALERT : NGX_LOG_NOTICE;

        ngx_log_error(level, log, 0,
                      "ai_guard: redis journal \"%V\": %ui requests "
                      "admitted but never settled are counted on their "
                      "estimate, %ui that did not fit in the outbox lost",
                      &rcf->journal.path, rp.nbegun - blost, blost);
    }

    level = lost ? NGX_LOG_ALERT : NGX_LOG_NOTICE;

    ngx_log_error(level, log, 0,
                  "ai_guard: redis journal \"%V\": %ui settled requests "
                  "not yet in Redis taken back into the outbox, %ui that "
                  "did not fit in it lost", &rcf->journal.path,
                  rp.nrecs - lost, lost);

    ngx_free(rp.recs);
    ngx_free(rp.begun);
    ngx_free(buf);
}


/*
 * Replayed records into the outbox, as they were or ("renumber") under
 * the next sequence numbers; the number that did not fit is returned.
 */

static ngx_uint_t
ngx_http_ai_guard_redis_outbox_take(ngx_http_ai_guard_redis_conf_t *rcf,
    const ngx_http_ai_guard_batch_rec_t **recs, size_t n,
    ngx_uint_t renumber)
{
    size_t                          i, size;
    ngx_uint_t                      lost;
    ngx_http_ai_guard_redis_sh_t   *sh;
    ngx_http_ai_guard_redis_rec_t  *node;

    sh = rcf->sh;
    lost = 0;

    for (i = 0; i < n; i++) {
        size = sizeof(ngx_http_ai_guard_redis_rec_t)
               - sizeof(ngx_http_ai_guard_batch_rec_t)
               + ngx_http_ai_guard_batch_rec_size(recs[i]);

        node = ngx_slab_alloc_locked(rcf->shpool, size);
        if (node == NULL) {
            lost++;
            continue;
        }

        ngx_memcpy(&node->rec, recs[i], size
                   - offsetof(ngx_http_ai_guard_redis_rec_t, rec));

        if (renumber) {
            node->rec.seq = sh->seq++;
        }

        ngx_queue_insert_tail(&sh->outbox, &node->queue);
        sh->pending++;
    }

    return lost;
}


/*
 * Under the zone's mutex: the outbox as it is becomes the journal, a
 * snapshot of it (head, records, the leased batch, end).  Done after a
 * batch when the outbox is empty (a few bytes) or the journal has grown
 * to twice the outbox's size, so a journal stays under about three
 * times outbox= on disk.
 */

static void
ngx_http_ai_guard_redis_outbox_snapshot(ngx_http_ai_guard_redis_conf_t *rcf,
    ngx_log_t *log)
{
    u_char                          *buf, *p;
    size_t                           size;
    ngx_http_ai_guard_redis_sh_t    *sh;
    ngx_http_ai_guard_redis_rec_t   *node;
    ngx_http_ai_guard_jlog_head_t    head;
    ngx_http_ai_guard_jlog_batch_t   lease;

    sh = rcf->sh;

    size = ngx_http_ai_guard_jlog_size(sizeof(ngx_http_ai_guard_jlog_head_t))
           + ngx_http_ai_guard_jlog_size(sizeof(ngx_http_ai_guard_jlog_batch_t))
           + ngx_http_ai_guard_jlog_size(0);

    size += ngx_http_ai_guard_redis_outbox_frames(&sh->outbox, NULL, 0);
    size += ngx_http_ai_guard_redis_outbox_frames(&sh->begun, NULL, 0);

    buf = ngx_alloc(size, log);
    if (buf == NULL) {
        return;
    }

    /* the records that follow count up from their first */

    head.gen = sh->journal.gen + 1;
    head.node = sh->node;
    head.seq = sh->seq;

    if (!ngx_queue_empty(&sh->outbox)) {
        node = ngx_queue_data(ngx_queue_head(&sh->outbox),
                              ngx_http_ai_guard_redis_rec_t, queue);
        head.seq = node->rec.seq;
    }

    p = buf;
    p += ngx_http_ai_guard_jlog_frame(p, NGX_HTTP_AI_GUARD_JLOG_HEAD, &head,
                                      sizeof(ngx_http_ai_guard_jlog_head_t));

    p += ngx_http_ai_guard_redis_outbox_frames(&sh->outbox, p,
                                               NGX_HTTP_AI_GUARD_JLOG_REC);

    /* the requests in flight: still begun in the new journal */
    p += ngx_http_ai_guard_redis_outbox_frames(&sh->begun, p,
                                               NGX_HTTP_AI_GUARD_JLOG_BEGUN);

    if (sh->batch) {
        lease.first = sh->batch_first;
        lease.n = sh->batch;
        p += ngx_http_ai_guard_jlog_frame(p, NGX_HTTP_AI_GUARD_JLOG_LEASE,
                                          &lease, sizeof(lease));
    }

    p += ngx_http_ai_guard_jlog_frame(p, NGX_HTTP_AI_GUARD_JLOG_SNAP, "", 0);

    (void) ngx_http_ai_guard_journal_rewrite(&rcf->journal, log, head.gen,
                                             buf, p - buf);

    ngx_free(buf);
}


/* a queue's records as frames of "type" at "p"; their bytes (p NULL) */

static size_t
ngx_http_ai_guard_redis_outbox_frames(ngx_queue_t *queue, u_char *p,
    u_char type)
{
    size_t                          size, len;
    ngx_queue_t                    *q;
    ngx_http_ai_guard_redis_rec_t  *node;

    size = 0;

    for (q = ngx_queue_head(queue);
         q != ngx_queue_sentinel(queue);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_ai_guard_redis_rec_t, queue);
        len = ngx_http_ai_guard_batch_rec_size(&node->rec);

        if (p == NULL) {
            size += ngx_http_ai_guard_jlog_size(len);
            continue;
        }

        size += ngx_http_ai_guard_jlog_frame(p + size, type, &node->rec, len);
    }

    return size;
}


ngx_int_t
ngx_http_ai_guard_redis_outbox_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ai_guard_main_conf_t      *amcf;
    ngx_http_ai_guard_redis_flusher_t  *fl;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_guard_module);
    fl = &ngx_http_ai_guard_redis_flusher;

    ngx_memzero(fl, sizeof(ngx_http_ai_guard_redis_flusher_t));

    fl->rcf = amcf->redis;
    fl->log = cycle->log;

    fl->flush.handler = ngx_http_ai_guard_redis_flush_handler;
    fl->flush.log = cycle->log;
    fl->flush.data = fl;
    fl->flush.cancelable = 1;

    /* one worker a node drains the outbox, and sends its last batch */

    if (ngx_worker == 0) {
        ngx_add_timer(&fl->flush, NGX_HTTP_AI_GUARD_REDIS_FLUSH_MS);
        ngx_http_ai_guard_redis_on_quit(ngx_http_ai_guard_redis_flush_quit);
    }

    return NGX_OK;
}


/*
 * At the log phase (or the pool cleanup): the request's usage, and the
 * correction of a reservation it took in Redis, go into the outbox; the
 * flush timer takes them to Redis.  No round trip here.
 */

void
ngx_http_ai_guard_redis_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    uint64_t                         now;
    ngx_uint_t                       n;
    ngx_http_ai_guard_key_t         *k;
    ngx_http_ai_guard_batch_rec_t    rec;
    ngx_http_ai_guard_redis_rec_t   *begun;
    ngx_http_ai_guard_batch_item_t   items[NGX_HTTP_AI_GUARD_REDIS_ITEMS];
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_http_ai_guard_redis_conf_t  *rcf;
    ngx_http_ai_guard_redis_strs_t   strs;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    rcf = amcf->redis;

    if (rcf == NULL || rcf->sh == NULL) {
        return;
    }

    k = ctx->key;

    ngx_memzero(&rec, sizeof(ngx_http_ai_guard_batch_rec_t));
    ngx_memzero(&strs, sizeof(ngx_http_ai_guard_redis_strs_t));

    rec.usage = (ctx->upstream && k != NULL);

    n = 0;
    now = ngx_http_ai_guard_now();

    if (ctx->redis_reserved) {
        ctx->redis_reserved = 0;
        n = ngx_http_ai_guard_redis_corrections(ctx, now, items);
        strs.scope = ctx->scope;
    }

    begun = ctx->begun;
    ctx->begun = NULL;

    if (!rec.usage && n == 0) {

        /* admitted, yet nothing to bill: its estimate goes */

        if (begun) {
            ngx_shmtx_lock(&rcf->shpool->mutex);

            ngx_http_ai_guard_journal_append(&rcf->journal,
                                             r->connection->log,
                                             NGX_HTTP_AI_GUARD_JLOG_END,
                                             &begun->rec.seq,
                                             sizeof(uint64_t));
            ngx_http_ai_guard_redis_unbegin(rcf, begun);

            ngx_shmtx_unlock(&rcf->shpool->mutex);
        }

        return;
    }

    if (rec.usage) {
        ngx_http_ai_guard_redis_usage_strs(ctx, &strs);

        rec.input = ctx->usage.input_tokens;
        rec.output = ctx->usage.output_tokens;
        rec.cached = ctx->usage.cached_tokens;
        rec.estimated = ctx->estimated;
        rec.cost = ctx->final_money;
        rec.reasoning = ctx->usage.reasoning_tokens;
        rec.cache_write = ctx->usage.cache_write_tokens;
    }

    ngx_http_ai_guard_redis_outbox_put(rcf, r->connection->log, &rec, &strs,
                                       items, n, now, begun);
}


/*
 * A reservation Redis took for a request that went away before it read
 * the answer: its tokens, its budget and its concurrency slot go back,
 * as a settlement at zero usage would give them.
 */

void
ngx_http_ai_guard_redis_release(ngx_http_ai_guard_redis_conf_t *rcf,
    ngx_log_t *log, ngx_str_t *scope, ngx_http_ai_guard_batch_item_t *items,
    ngx_uint_t n)
{
    uint64_t                        now;
    ngx_uint_t                      i, m;
    ngx_http_ai_guard_batch_rec_t   rec;
    ngx_http_ai_guard_redis_strs_t  strs;

    if (rcf->sh == NULL) {
        return;
    }

    /* the items hold what was reserved: each comes back, negated */

    for (i = 0, m = 0; i < n; i++) {
        switch (ngx_http_ai_guard_redis_kinds[items[i].kind].unit) {

        case NGX_HTTP_AI_GUARD_REDIS_UNIT_TOKEN:
        case NGX_HTTP_AI_GUARD_REDIS_UNIT_MONEY:
        case NGX_HTTP_AI_GUARD_REDIS_UNIT_CONC:

            if (items[i].delta == 0) {
                continue;
            }

            items[m] = items[i];
            items[m].delta = -items[i].delta;
            m++;
            break;

        default:
            continue;
        }
    }

    if (m == 0) {
        return;
    }

    ngx_memzero(&rec, sizeof(ngx_http_ai_guard_batch_rec_t));
    ngx_memzero(&strs, sizeof(ngx_http_ai_guard_redis_strs_t));

    strs.scope = *scope;
    now = ngx_http_ai_guard_now();

    ngx_http_ai_guard_redis_outbox_put(rcf, log, &rec, &strs, items, m,
                                       now, NULL);
}


/*
 * A record into the outbox's zone.  A begun request's settlement leaves
 * the begun queue and is journaled as one F frame (its id, then the
 * record), so a crash counts it either on its estimate or on this.
 */

static void
ngx_http_ai_guard_redis_outbox_put(ngx_http_ai_guard_redis_conf_t *rcf,
    ngx_log_t *log, ngx_http_ai_guard_batch_rec_t *rec,
    ngx_http_ai_guard_redis_strs_t *strs,
    ngx_http_ai_guard_batch_item_t *items, ngx_uint_t n, uint64_t now,
    ngx_http_ai_guard_redis_rec_t *begun)
{
    size_t                          len;
    ngx_http_ai_guard_redis_sh_t   *sh;
    ngx_http_ai_guard_redis_rec_t  *node;

    sh = rcf->sh;

    ngx_shmtx_lock(&rcf->shpool->mutex);

    node = ngx_http_ai_guard_redis_rec_alloc(rcf, rec, strs, items, n, now);

    if (node == NULL) {
        sh->dropped++;

        if (begun) {
            /* not in the outbox, so not in the journal as settled */
            ngx_http_ai_guard_journal_append(&rcf->journal, log,
                                             NGX_HTTP_AI_GUARD_JLOG_END,
                                             &begun->rec.seq,
                                             sizeof(uint64_t));
            ngx_http_ai_guard_redis_unbegin(rcf, begun);
        }

        if (!sh->full) {
            sh->full = 1;
            ngx_shmtx_unlock(&rcf->shpool->mutex);

            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "ai_guard: redis outbox full (%uz bytes), usage "
                          "is kept in the local zone only until it drains",
                          rcf->outbox);
            return;
        }

        ngx_shmtx_unlock(&rcf->shpool->mutex);
        return;
    }

    sh->full = 0;

    node->rec.seq = sh->seq++;

    ngx_queue_insert_tail(&sh->outbox, &node->queue);
    sh->pending++;

    /* the journal's order is the outbox's: written under its mutex */

    len = ngx_http_ai_guard_batch_rec_size(&node->rec);

    if (begun) {
        node->id = begun->rec.seq;
        ngx_http_ai_guard_journal_append(&rcf->journal, log,
                                         NGX_HTTP_AI_GUARD_JLOG_FINISH,
                                         &node->id, sizeof(uint64_t) + len);
        ngx_http_ai_guard_redis_unbegin(rcf, begun);

    } else {
        ngx_http_ai_guard_journal_append(&rcf->journal, log,
                                         NGX_HTTP_AI_GUARD_JLOG_REC,
                                         &node->rec, len);
    }

    ngx_shmtx_unlock(&rcf->shpool->mutex);
}


/*
 * An admitted request about to go to the upstream, with a journal: its
 * estimate (the reservation's: the prompt's tokens, max_tokens, their
 * price), marked estimated, is journaled as begun (one append, under the
 * outbox's mutex; an fsync only with journal_fsync=always) and kept in
 * the begun queue so that a journal rewrite carries it.  A crash before
 * its settlement leaves it unended, and the restart counts it.
 */

void
ngx_http_ai_guard_redis_begin(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_http_ai_guard_redis_sh_t    *sh;
    ngx_http_ai_guard_batch_rec_t    rec;
    ngx_http_ai_guard_redis_rec_t   *node;
    ngx_http_ai_guard_redis_strs_t   strs;
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_http_ai_guard_redis_conf_t  *rcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    rcf = amcf->redis;

    if (rcf == NULL || rcf->sh == NULL || rcf->journal.path.len == 0
        || ctx->key == NULL || !ctx->has_row || ctx->begun)
    {
        return;
    }

    ngx_memzero(&rec, sizeof(ngx_http_ai_guard_batch_rec_t));
    ngx_memzero(&strs, sizeof(ngx_http_ai_guard_redis_strs_t));

    ngx_http_ai_guard_redis_usage_strs(ctx, &strs);

    rec.usage = 1;
    rec.estimated = 1;
    rec.input = ctx->est_input;
    rec.output = ctx->est_tokens > ctx->est_input
                 ? ctx->est_tokens - ctx->est_input : 0;
    rec.cost = ctx->est_money;

    sh = rcf->sh;

    ngx_shmtx_lock(&rcf->shpool->mutex);

    node = ngx_http_ai_guard_redis_rec_alloc(rcf, &rec, &strs, NULL, 0,
                                             ngx_http_ai_guard_now());

    if (node == NULL) {
        /* the settlement is journaled as a plain record then */
        ngx_shmtx_unlock(&rcf->shpool->mutex);
        return;
    }

    node->rec.seq = ++sh->bseq;

    ngx_queue_insert_tail(&sh->begun, &node->queue);

    ngx_http_ai_guard_journal_append(&rcf->journal, r->connection->log,
                                     NGX_HTTP_AI_GUARD_JLOG_BEGUN, &node->rec,
                                     ngx_http_ai_guard_batch_rec_size(
                                         &node->rec));

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    ctx->begun = node;
}


/* under the mutex: a record of the header, the items, the strings */

static ngx_http_ai_guard_redis_rec_t *
ngx_http_ai_guard_redis_rec_alloc(ngx_http_ai_guard_redis_conf_t *rcf,
    ngx_http_ai_guard_batch_rec_t *rec, ngx_http_ai_guard_redis_strs_t *strs,
    ngx_http_ai_guard_batch_item_t *items, ngx_uint_t n, uint64_t now)
{
    u_char                         *p;
    size_t                          size;
    ngx_http_ai_guard_redis_rec_t  *node;

    size = sizeof(ngx_http_ai_guard_redis_rec_t)
           + n * sizeof(ngx_http_ai_guard_batch_item_t)
           + strs->tenant.len + strs->key.len + strs->model.len
           + strs->customer.len + (n ? strs->scope.len : 0);

    node = ngx_slab_alloc_locked(rcf->shpool, size);
    if (node == NULL) {
        return NULL;
    }

    node->id = 0;
    node->rec = *rec;

    node->rec.day = (uint32_t) (now / NGX_HTTP_AI_GUARD_DAY_MS);
    node->rec.nitems = (uint8_t) n;
    node->rec.tenant_len = (uint16_t) strs->tenant.len;
    node->rec.key_len = (uint16_t) strs->key.len;
    node->rec.model_len = (uint16_t) strs->model.len;
    node->rec.customer_len = (uint16_t) strs->customer.len;
    node->rec.scope_len = (uint16_t) (n ? strs->scope.len : 0);

    p = (u_char *) (&node->rec + 1);
    p = ngx_cpymem(p, items, n * sizeof(ngx_http_ai_guard_batch_item_t));
    p = ngx_cpymem(p, strs->tenant.data, strs->tenant.len);
    p = ngx_cpymem(p, strs->key.data, strs->key.len);
    p = ngx_cpymem(p, strs->model.data, strs->model.len);
    p = ngx_cpymem(p, strs->customer.data, strs->customer.len);
    ngx_memcpy(p, strs->scope.data, node->rec.scope_len);

    return node;
}


/* the usage row's strings: the key's, and the ledger's model label */

static void
ngx_http_ai_guard_redis_usage_strs(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_redis_strs_t *strs)
{
    ngx_http_ai_guard_key_t  *k;

    k = ctx->key;

    strs->tenant.data = k->tenant.data;
    strs->tenant.len = ngx_min(k->tenant.len, 1024);
    strs->key.data = k->id.data;
    strs->key.len = ngx_min(k->id.len, 1024);
    strs->customer.data = k->stripe_customer.data;
    strs->customer.len = ngx_min(k->stripe_customer.len, 1024);

    /* bounded as the zone's rows are */
    strs->model = ctx->label;
}


/* under the mutex: a begun request settled, its estimate goes */

static void
ngx_http_ai_guard_redis_unbegin(ngx_http_ai_guard_redis_conf_t *rcf,
    ngx_http_ai_guard_redis_rec_t *b)
{
    ngx_queue_remove(&b->queue);
    ngx_slab_free_locked(rcf->shpool, b);
}


/*
 * The corrections of a reservation taken in Redis: the token and budget
 * differences to the real usage, and the concurrency slot given back.
 */

static ngx_uint_t
ngx_http_ai_guard_redis_corrections(ngx_http_ai_guard_ctx_t *ctx,
    uint64_t now, ngx_http_ai_guard_batch_item_t *items)
{
    int64_t                                delta;
    ngx_uint_t                             i, n;
    ngx_http_ai_guard_limit_item_t        *it;
    const ngx_http_ai_guard_redis_kind_t  *kd;

    n = 0;

    for (i = 0; i < ctx->nitems; i++) {
        it = &ctx->items[i];
        kd = &ngx_http_ai_guard_redis_kinds[it->kind];

        switch (kd->unit) {

        case NGX_HTTP_AI_GUARD_REDIS_UNIT_TOKEN:
            delta = ngx_http_ai_guard_sat_delta(ctx->final_tokens, it->cost);
            break;

        case NGX_HTTP_AI_GUARD_REDIS_UNIT_MONEY:
            delta = ngx_http_ai_guard_sat_delta(
                        (uint64_t) ngx_max(ctx->final_money, 0), it->cost);
            break;

        case NGX_HTTP_AI_GUARD_REDIS_UNIT_CONC:
            delta = -1;
            break;

        default:
            continue;
        }

        if (delta == 0) {
            continue;
        }

        items[n].kind = it->kind;
        items[n].limit = it->limit;
        items[n].delta = delta;
        items[n].window = it->window;

        /* a charge goes to the current window, a refund to its own */

        if (kd->type == 'q' && delta > 0) {
            items[n].window = ngx_http_ai_guard_cal_window(kd->cal, now);
        }

        n++;
    }

    return n;
}


static void
ngx_http_ai_guard_redis_flush_handler(ngx_event_t *ev)
{
    ngx_http_ai_guard_redis_sh_t    *sh;
    ngx_http_ai_guard_redis_conf_t  *rcf;

    rcf = ngx_http_ai_guard_redis_flusher.rcf;

    /* fsync=batch: what the workers appended in the last interval */
    ngx_http_ai_guard_journal_sync(&rcf->journal, ev->log);

    /*
     * begun requests that end with nothing to record (a cache hit, a
     * client gone before the upstream) make no batch, so no rewrite
     * after one: their frames are trimmed here
     */

    if (rcf->journal.path.len) {
        sh = rcf->sh;

        ngx_shmtx_lock(&rcf->shpool->mutex);

        if (sh->journal.size > sh->journal.snap
            && sh->journal.size > (off_t) (2 * rcf->outbox))
        {
            ngx_http_ai_guard_redis_outbox_snapshot(rcf, ev->log);
        }

        ngx_shmtx_unlock(&rcf->shpool->mutex);
    }

    if (ngx_http_ai_guard_redis_up()
        && !ngx_http_ai_guard_redis_flusher.flushing)
    {
        ngx_http_ai_guard_redis_flush_batch();
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_AI_GUARD_REDIS_FLUSH_MS);
    }
}


/* the worker quits: the last batch before the node goes */

static void
ngx_http_ai_guard_redis_flush_quit(void)
{
    if (!ngx_http_ai_guard_redis_flusher.flushing) {
        ngx_http_ai_guard_redis_flush_batch();
    }
}


/*
 * Sends the head of the outbox as one script call: its records are
 * copied out under the zone's mutex, then added up, encoded and sent
 * without it, so that the workers settling requests meanwhile wait for a
 * copy, not for the arithmetic.
 */

static void
ngx_http_ai_guard_redis_flush_batch(void)
{
    u_char                              wait[2 * NGX_INT_T_LEN];
    size_t                              nu, nc, len[3];
    const char                         *argv[3];
    ngx_pool_t                         *pool;
    ngx_http_ai_guard_batch_t           b;
    ngx_http_ai_guard_redis_sh_t       *sh;
    ngx_http_ai_guard_redis_conf_t     *rcf;
    ngx_http_ai_guard_redis_flush_t    *f;
    ngx_http_ai_guard_redis_flusher_t  *fl;

    fl = &ngx_http_ai_guard_redis_flusher;
    rcf = fl->rcf;
    sh = rcf->sh;

    if (sh->pending == 0) {
        return;
    }

    pool = ngx_create_pool(16384, fl->log);
    if (pool == NULL) {
        return;
    }

    f = ngx_pcalloc(pool, sizeof(ngx_http_ai_guard_redis_flush_t));
    if (f == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    f->pool = pool;

    if (ngx_http_ai_guard_redis_flush_copy(f) != NGX_OK) {
        ngx_destroy_pool(pool);
        return;
    }

    /*
     * The records added up: Redis's work for a batch is then one usage
     * hash and one counter a key, not a script's dozen calls a record
     * (a batch of 256 records of one tenant took Redis over a millisecond,
     * a millisecond the admissions of every node queued behind).  The
     * same records always add up the same: a retry is the same batch.
     */

    ngx_http_ai_guard_batch_count(f->recs, f->n, &nu, &nc);

    b.usage = ngx_palloc(pool, (nu + 1)
                               * sizeof(ngx_http_ai_guard_batch_usage_t));
    b.corr = ngx_palloc(pool, (nc + 1)
                              * sizeof(ngx_http_ai_guard_batch_corr_t));

    if (b.usage == NULL || b.corr == NULL) {
        goto failed;
    }

    ngx_http_ai_guard_batch_aggregate(&b, f->recs, f->n);

    if (ngx_http_ai_guard_redis_flush_encode(f, &b) != NGX_OK) {
        goto failed;
    }

    if (ngx_http_ai_guard_redis_eval(ngx_http_ai_guard_redis_flush_script,
                                     ngx_http_ai_guard_redis_flush_done, f,
                                     NULL, NULL, NULL, f->argc, f->argv,
                                     f->argvlen,
                                     ngx_max(rcf->timeout,
                                             NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE))
        != NGX_OK)
    {
        goto failed;
    }

    fl->flushing = 1;
    f->replies = 1;

    /*
     * replicas=: the batch is delivered once that many replicas have it
     * too, so that a failover to one of them loses none of it.  WAIT
     * follows the script on the same connection, so it waits for the
     * script's writes.  Not sent: the batch is kept, and sent again.
     */

    if (rcf->replicas) {
        argv[0] = "WAIT";
        len[0] = 4;
        argv[1] = (char *) wait;
        len[1] = ngx_sprintf(wait, "%ui", rcf->replicas) - wait;
        argv[2] = (char *) wait + NGX_INT_T_LEN;
        len[2] = ngx_sprintf(wait + NGX_INT_T_LEN, "%M", rcf->timeout)
                 - (wait + NGX_INT_T_LEN);

        if (ngx_http_ai_guard_redis_send(ngx_http_ai_guard_redis_flush_waited,
                                         f, NULL, 3, argv, len,
                                         rcf->timeout
                                         + NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE)
            == NGX_OK)
        {
            f->replies++;
        }
    }

    return;

failed:

    /* the lease goes: the next flush sends the same records */

    ngx_shmtx_lock(&rcf->shpool->mutex);

    if (sh->batch && sh->batch_first == f->first) {
        sh->batch_until = 0;
    }

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    ngx_destroy_pool(pool);
}


/*
 * Under the zone's mutex: leases the batch and copies its records out.
 * The batch is leased in the zone (its first record and its size):
 * another flusher (the new worker 0 after a reload) takes it over only
 * when the lease has run out, and then sends the very same records under
 * the same batch id, so the SET NX in the script makes a retried batch
 * count once.  NGX_DECLINED: nothing to send now.
 */

static ngx_int_t
ngx_http_ai_guard_redis_flush_copy(ngx_http_ai_guard_redis_flush_t *f)
{
    u_char                               *p;
    size_t                                size, len;
    uint64_t                              now;
    ngx_uint_t                            i, n;
    ngx_queue_t                          *q;
    ngx_http_ai_guard_redis_sh_t         *sh;
    ngx_http_ai_guard_redis_rec_t        *node;
    ngx_http_ai_guard_redis_conf_t       *rcf;
    ngx_http_ai_guard_jlog_batch_t        lease;
    const ngx_http_ai_guard_batch_rec_t **recs;

    rcf = ngx_http_ai_guard_redis_flusher.rcf;
    sh = rcf->sh;

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&rcf->shpool->mutex);

    if (sh->batch && now < sh->batch_until) {
        goto busy;
    }

    if (sh->batch == 0) {
        if (sh->pending == 0) {
            goto busy;
        }

        q = ngx_queue_head(&sh->outbox);
        node = ngx_queue_data(q, ngx_http_ai_guard_redis_rec_t, queue);

        sh->batch = ngx_min(sh->pending, NGX_HTTP_AI_GUARD_REDIS_BATCH);
        sh->batch_first = node->rec.seq;

        /* a replay must send this very batch again, before it is sent */
        lease.first = sh->batch_first;
        lease.n = sh->batch;
        ngx_http_ai_guard_journal_append(&rcf->journal, ngx_cycle->log,
                                         NGX_HTTP_AI_GUARD_JLOG_LEASE, &lease,
                                         sizeof(lease));
    }

    sh->batch_until = now + 2 * ngx_max(rcf->timeout,
                                        NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE);

    n = sh->batch;
    size = 0;

    for (q = ngx_queue_head(&sh->outbox), i = 0; i < n;
         q = ngx_queue_next(q), i++)
    {
        node = ngx_queue_data(q, ngx_http_ai_guard_redis_rec_t, queue);
        size += ngx_align(ngx_http_ai_guard_batch_rec_size(&node->rec), 8);
    }

    recs = ngx_palloc(f->pool, n * sizeof(ngx_http_ai_guard_batch_rec_t *));
    p = ngx_palloc(f->pool, size);

    if (recs == NULL || p == NULL) {
        sh->batch_until = 0;
        goto busy;
    }

    for (q = ngx_queue_head(&sh->outbox), i = 0; i < n;
         q = ngx_queue_next(q), i++)
    {
        node = ngx_queue_data(q, ngx_http_ai_guard_redis_rec_t, queue);
        len = ngx_http_ai_guard_batch_rec_size(&node->rec);

        recs[i] = (ngx_http_ai_guard_batch_rec_t *) p;
        ngx_memcpy(p, &node->rec, len);
        p += ngx_align(len, 8);
    }

    f->first = sh->batch_first;
    f->node = sh->node;
    f->n = n;
    f->recs = recs;

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    return NGX_OK;

busy:

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    return NGX_DECLINED;
}


/*
 * The script's arguments: the batch id, the key prefix, then a usage
 * record a row and a correction record a counter.
 */

static ngx_int_t
ngx_http_ai_guard_redis_flush_encode(ngx_http_ai_guard_redis_flush_t *f,
    ngx_http_ai_guard_batch_t *b)
{
    u_char                           *s, day[16];
    size_t                           *len, size;
    ngx_tm_t                          tm;
    ngx_uint_t                        i, a, nargs;
    const char                      **argv;
    ngx_http_ai_guard_batch_corr_t   *c;
    ngx_http_ai_guard_batch_usage_t  *u;
    ngx_http_ai_guard_redis_conf_t   *rcf;
    ngx_http_ai_guard_redis_kind_t    kd;

    rcf = ngx_http_ai_guard_redis_flusher.rcf;

    nargs = 5 + 14 * b->nusage + 5 * b->ncorr;
    size = rcf->prefix.len + sizeof("b::") - 1 + 16 + NGX_INT64_LEN;

    for (i = 0; i < b->nusage; i++) {
        u = &b->usage[i];
        size += NGX_HTTP_AI_GUARD_DATE_LEN + u->tenant.len + u->key.len
                + u->model.len + u->customer.len + 8 * NGX_INT64_LEN;
    }

    for (i = 0; i < b->ncorr; i++) {
        size += rcf->prefix.len + sizeof("l:::") - 1 + b->corr[i].scope.len
                + 16 + 4 * NGX_INT64_LEN;
    }

    argv = ngx_palloc(f->pool, nargs * sizeof(char *));
    len = ngx_palloc(f->pool, nargs * sizeof(size_t));
    s = ngx_pnalloc(f->pool, size);

    if (argv == NULL || len == NULL || s == NULL) {
        return NGX_ERROR;
    }

    /* argv[0] and argv[1] are the transport's: EVALSHA and the SHA1 */

    argv[2] = "1";
    len[2] = 1;

    argv[3] = (char *) s;
    s = ngx_sprintf(s, "%Vb:%016xL:%uL", &rcf->prefix, f->node, f->first);
    len[3] = s - (u_char *) argv[3];

    argv[4] = (char *) rcf->prefix.data;
    len[4] = rcf->prefix.len;

    a = 5;

#define ngx_http_ai_guard_redis_arg(fmt, v)                                 \
    argv[a] = (char *) s;                                                   \
    s = ngx_sprintf(s, fmt, v);                                             \
    len[a] = s - (u_char *) argv[a];                                        \
    a++

#define ngx_http_ai_guard_redis_str(d, l)                                   \
    argv[a] = (char *) s;                                                   \
    s = ngx_cpymem(s, d, l);                                                \
    len[a] = l;                                                             \
    a++

    for (i = 0; i < b->nusage; i++) {
        u = &b->usage[i];

        ngx_gmtime((time_t) u->day * 86400, &tm);
        (void) ngx_sprintf(day, "%4d-%02d-%02d", tm.ngx_tm_year,
                           tm.ngx_tm_mon, tm.ngx_tm_mday);

        argv[a] = "u";
        len[a++] = 1;
        ngx_http_ai_guard_redis_str(day, NGX_HTTP_AI_GUARD_DATE_LEN);
        ngx_http_ai_guard_redis_str(u->tenant.data, u->tenant.len);
        ngx_http_ai_guard_redis_str(u->key.data, u->key.len);
        ngx_http_ai_guard_redis_str(u->model.data, u->model.len);
        ngx_http_ai_guard_redis_str(u->customer.data, u->customer.len);
        ngx_http_ai_guard_redis_arg("%uL", u->requests);
        ngx_http_ai_guard_redis_arg("%uL", u->input);
        ngx_http_ai_guard_redis_arg("%uL", u->output);
        ngx_http_ai_guard_redis_arg("%uL", u->cached);
        ngx_http_ai_guard_redis_arg("%uL", u->estimated);
        ngx_http_ai_guard_redis_arg("%L", u->cost);
        ngx_http_ai_guard_redis_arg("%uL", u->reasoning);
        ngx_http_ai_guard_redis_arg("%uL", u->cache_write);
    }

    for (i = 0; i < b->ncorr; i++) {
        c = &b->corr[i];
        kd = ngx_http_ai_guard_redis_kinds[c->kind];

        argv[a] = (kd.type == 'b') ? "b" : (kd.type == 'q') ? "q" : "c";
        len[a++] = 1;

        argv[a] = (char *) s;
        s = ngx_sprintf(s, "%Vl:%*s:%s", &rcf->prefix, c->scope.len,
                        c->scope.data, ngx_http_ai_guard_limit_name(c->kind));
        if (kd.type == 'q') {
            s = ngx_sprintf(s, ":%uL", c->window);
        }

        len[a] = s - (u_char *) argv[a];
        a++;

        if (kd.type == 'b') {
            ngx_http_ai_guard_redis_arg("%uL", c->limit);
            ngx_http_ai_guard_redis_arg("%uL", kd.period);
            ngx_http_ai_guard_redis_arg("%L", c->delta);

        } else if (kd.type == 'q') {
            ngx_http_ai_guard_redis_arg("%L", c->delta);
            ngx_http_ai_guard_redis_arg("%uL",
                                        (kd.cal == NGX_HTTP_AI_GUARD_CAL_DAY)
                                        ? 2 * NGX_HTTP_AI_GUARD_DAY_MS
                                        : 33 * NGX_HTTP_AI_GUARD_DAY_MS);

        } else {
            ngx_http_ai_guard_redis_arg("%L", c->delta);
        }
    }

#undef ngx_http_ai_guard_redis_arg
#undef ngx_http_ai_guard_redis_str

    f->argc = (int) a;
    f->argv = argv;
    f->argvlen = len;

    return NGX_OK;
}


static void
ngx_http_ai_guard_redis_flush_done(void *data, redisReply *reply)
{
    ngx_http_ai_guard_redis_flush_t  *f = data;

    f->applied = (reply && reply->type == REDIS_REPLY_INTEGER);

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_ai_guard_redis_flusher.log, 0,
                      "ai_guard: redis outbox flush failed: %s", reply->str);
    }

    ngx_http_ai_guard_redis_flush_end(f);
}


/* WAIT's answer: how many replicas have the batch */

static void
ngx_http_ai_guard_redis_flush_waited(void *data, redisReply *reply)
{
    ngx_http_ai_guard_redis_flush_t  *f = data;

    f->replicated = (reply && reply->type == REDIS_REPLY_INTEGER
                     && reply->integer >= 0
                     && (ngx_uint_t) reply->integer
                        >= ngx_http_ai_guard_redis_flusher.rcf->replicas);

    ngx_http_ai_guard_redis_flush_end(f);
}


/*
 * Both replies in (the script's, and WAIT's with replicas=): the batch
 * leaves the outbox when it is applied (now, or by an earlier try) and,
 * with replicas=, replicated.
 */

static void
ngx_http_ai_guard_redis_flush_end(ngx_http_ai_guard_redis_flush_t *f)
{
    ngx_uint_t                          i, more;
    ngx_queue_t                        *q;
    ngx_http_ai_guard_redis_sh_t       *sh;
    ngx_http_ai_guard_redis_rec_t      *rec;
    ngx_http_ai_guard_redis_conf_t     *rcf;
    ngx_http_ai_guard_jlog_batch_t      ack;
    ngx_http_ai_guard_redis_flusher_t  *fl;

    fl = &ngx_http_ai_guard_redis_flusher;
    rcf = fl->rcf;
    sh = rcf->sh;

    if (--f->replies) {
        return;
    }

    fl->flushing = 0;
    more = 0;

    ngx_shmtx_lock(&rcf->shpool->mutex);

    if (sh->batch == 0 || sh->batch_first != f->first) {
        /* another flusher took the batch over and is done with it */

    } else if (f->applied && (rcf->replicas == 0 || f->replicated)) {

        /* applied now, or by an earlier try: either way it is done */

        for (i = 0; i < sh->batch; i++) {
            q = ngx_queue_head(&sh->outbox);
            rec = ngx_queue_data(q, ngx_http_ai_guard_redis_rec_t, queue);

            ngx_queue_remove(q);
            ngx_slab_free_locked(rcf->shpool, rec);
        }

        ack.first = sh->batch_first;
        ack.n = sh->batch;
        ngx_http_ai_guard_journal_append(&rcf->journal, fl->log,
                                         NGX_HTTP_AI_GUARD_JLOG_ACK, &ack,
                                         sizeof(ack));

        sh->pending -= sh->batch;
        sh->flushed += sh->batch;
        sh->batch = 0;
        sh->batch_until = 0;

        if (rcf->journal.path.len
            && (sh->journal.broken
                || (sh->journal.size > sh->journal.snap
                    && (sh->pending == 0
                        || sh->journal.size > (off_t) (2 * rcf->outbox)))))
        {
            ngx_http_ai_guard_redis_outbox_snapshot(rcf, fl->log);
        }

        /*
         * a full batch goes at once (an outbox draining after an outage);
         * less waits for the timer, so that a busy node sends a batch an
         * interval rather than a trickle of small ones a round trip
         */
        more = (sh->pending >= NGX_HTTP_AI_GUARD_REDIS_BATCH);

    } else {
        sh->batch_until = 0;
    }

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    ngx_destroy_pool(f->pool);

    if (more && ngx_http_ai_guard_redis_up()) {
        ngx_http_ai_guard_redis_flush_batch();
    }
}
