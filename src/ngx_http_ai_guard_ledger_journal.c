
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_conf.h"
#include "ngx_http_ai_guard_jlog.h"
#include "ngx_http_ai_guard_journal.h"
#include "ngx_http_ai_guard_ledger.h"
#include "ngx_http_ai_guard_ledger_journal.h"


/*
 * The zone holds the journal's state and the requests in flight; 1 MB
 * is about 4,000 of them (a record is about 200 bytes, its row's key
 * included, in a 256-byte slot).  A request that finds no room is
 * journaled when it settles only: a crash before that loses its
 * estimate, and the ALERT says so.
 */
#define NGX_HTTP_AI_GUARD_LJOURNAL_SIZE   (1024 * 1024)

/* a tail past the snapshot's size and this makes the next snapshot */
#define NGX_HTTP_AI_GUARD_LJOURNAL_TAIL   (1024 * 1024)

/* an F frame's payload on the stack: a record of the longest row key */
#define NGX_HTTP_AI_GUARD_LJOURNAL_REC                                      \
    (sizeof(uint64_t) + sizeof(ngx_http_ai_guard_batch_rec_t)               \
     + NGX_HTTP_AI_GUARD_LEDGER_KEY)


typedef struct {
    ngx_http_ai_guard_journal_sh_t   journal;
    ngx_queue_t                      begun;
    uint64_t                         bseq;      /* the begun ids */
    uint64_t                         seq;       /* the records' */
    ngx_uint_t                       full;      /* alerted about */
} ngx_http_ai_guard_ljournal_sh_t;


/* a begun request: its estimate's record, its row's key after it */

typedef struct {
    ngx_queue_t                      queue;
    ngx_http_ai_guard_batch_rec_t    rec;
} ngx_http_ai_guard_ljournal_rec_t;


struct ngx_http_ai_guard_ljournal_s {
    ngx_http_ai_guard_journal_t      journal;
    ngx_shm_zone_t                  *shm_zone;
    ngx_slab_pool_t                 *shpool;
    ngx_http_ai_guard_ljournal_sh_t *sh;
    ngx_http_ai_guard_where_t        where;
    ngx_uint_t                       fresh;
};


/* the payload of an F frame: the begun id, then the record */

typedef struct {
    uint64_t                         id;
    ngx_http_ai_guard_batch_rec_t    rec;
} ngx_http_ai_guard_ljournal_fin_t;


static ngx_int_t ngx_http_ai_guard_ljournal_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static size_t ngx_http_ai_guard_ljournal_rec(
    ngx_http_ai_guard_batch_rec_t *rec, ngx_http_ai_guard_ctx_t *ctx,
    u_char *key, size_t len);
static void ngx_http_ai_guard_ljournal_unbegin(
    ngx_http_ai_guard_ljournal_t *lj, ngx_http_ai_guard_ctx_t *ctx);


/* ai_guard_journal <path> [fsync=off|batch|always] */

char *
ngx_http_ai_guard_ljournal_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_guard_main_conf_t *amcf = conf;

    ngx_str_t                     *value, s;
    ngx_http_ai_guard_ljournal_t  *lj;

    if (amcf->journal) {
        return "is duplicate";
    }

    value = cf->args->elts;

    lj = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_ljournal_t));
    if (lj == NULL) {
        return NGX_CONF_ERROR;
    }

    lj->journal.path = value[1];
    lj->journal.fsync = NGX_HTTP_AI_GUARD_JOURNAL_OFF;
    lj->journal.what = "journal";
    lj->journal.directive = "ai_guard_journal";
    lj->journal.rows = 1;

    if (cf->args->nelts == 3) {
        if (value[2].len < 6
            || ngx_strncmp(value[2].data, "fsync=", 6) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_journal: unknown parameter \"%V\", "
                               "it must be fsync=", &value[2]);
            return NGX_CONF_ERROR;
        }

        s.data = value[2].data + 6;
        s.len = value[2].len - 6;

        if (ngx_http_ai_guard_journal_fsync(&s, &lj->journal.fsync)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_journal: invalid fsync \"%V\", it "
                               "must be \"off\", \"batch\" or \"always\"",
                               &s);
            return NGX_CONF_ERROR;
        }
    }

    /* opened by the master, here: an error names this line */

    if (ngx_http_ai_guard_journal_open(cf, &lj->journal) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_http_ai_guard_where(cf, &lj->where);

    amcf->journal = lj;

    return NGX_CONF_OK;
}


/*
 * At the postconfiguration: the zone.  With Redis, the outbox's
 * journal= is the one: the usage's truth is Redis's then, and the local
 * ledger is a node's view of it.
 */

ngx_int_t
ngx_http_ai_guard_ljournal_init(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf)
{
    ngx_str_t                      name;
    ngx_http_ai_guard_ljournal_t  *lj;

    lj = amcf->journal;

    if (lj == NULL) {
        return NGX_OK;
    }

    if (amcf->redis) {
        ngx_http_ai_guard_conf_error(cf, &lj->where, 0,
                                     "\"ai_guard_journal\" is for a node "
                                     "without ai_guard_redis: with Redis, "
                                     "give ai_guard_redis its journal= "
                                     "instead");
        return NGX_ERROR;
    }

    ngx_str_set(&name, "ai_guard_journal");

    lj->shm_zone = ngx_shared_memory_add(cf, &name,
                                         NGX_HTTP_AI_GUARD_LJOURNAL_SIZE,
                                         &ngx_http_ai_guard_module);
    if (lj->shm_zone == NULL) {
        return NGX_ERROR;
    }

    lj->shm_zone->init = ngx_http_ai_guard_ljournal_zone;
    lj->shm_zone->data = lj;

    return NGX_OK;
}


/*
 * A reload adopts the zone, and with it the journal as the workers left
 * it; a start makes it, and the master then replays the files into the
 * ledger (ngx_http_ai_guard_ledger_restore()).
 */

static ngx_int_t
ngx_http_ai_guard_ljournal_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_guard_ljournal_t *olj = data;

    ngx_http_ai_guard_ljournal_t  *lj;

    lj = shm_zone->data;

    if (olj) {
        lj->sh = olj->sh;
        lj->shpool = olj->shpool;
        lj->journal.sh = &lj->sh->journal;
        return NGX_OK;
    }

    lj->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        lj->sh = lj->shpool->data;
        lj->journal.sh = &lj->sh->journal;
        return NGX_OK;
    }

    lj->sh = ngx_slab_calloc(lj->shpool,
                             sizeof(ngx_http_ai_guard_ljournal_sh_t));
    if (lj->sh == NULL) {
        return NGX_ERROR;
    }

    lj->shpool->data = lj->sh;
    lj->journal.sh = &lj->sh->journal;
    lj->fresh = 1;

    ngx_queue_init(&lj->sh->begun);

    return NGX_OK;
}


ngx_uint_t
ngx_http_ai_guard_ljournal_fresh(ngx_http_ai_guard_ljournal_t *lj)
{
    return lj->fresh;
}


ngx_str_t *
ngx_http_ai_guard_ljournal_path(ngx_http_ai_guard_ljournal_t *lj)
{
    return &lj->journal.path;
}


u_char *
ngx_http_ai_guard_ljournal_load(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log, ngx_http_ai_guard_jlog_replay_t *rp)
{
    return ngx_http_ai_guard_journal_load(&lj->journal, log, rp);
}


/*
 * Before the upstream can have the request: its estimate (the prompt's
 * tokens, max_tokens, their price), marked estimated, on disk as begun.
 * A crash before its settlement leaves it unended, and the restart
 * counts it on that estimate: the provider bills what it received.
 */

void
ngx_http_ai_guard_ljournal_begin(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log, ngx_http_ai_guard_ctx_t *ctx, u_char *key, size_t len)
{
    size_t                             size;
    ngx_http_ai_guard_ljournal_sh_t   *sh;
    ngx_http_ai_guard_ljournal_rec_t  *node;

    sh = lj->sh;
    size = sizeof(ngx_http_ai_guard_ljournal_rec_t) + len;

    ngx_shmtx_lock(&lj->shpool->mutex);

    node = ngx_slab_alloc_locked(lj->shpool, size);

    if (node == NULL) {
        if (!sh->full) {
            sh->full = 1;
            ngx_shmtx_unlock(&lj->shpool->mutex);

            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "ai_guard: journal \"%V\": no room for the "
                          "requests in flight; a crash would lose the "
                          "estimates of those beyond it",
                          &lj->journal.path);
            return;
        }

        ngx_shmtx_unlock(&lj->shpool->mutex);
        return;
    }

    sh->full = 0;

    (void) ngx_http_ai_guard_ljournal_rec(&node->rec, NULL, key, len);

    node->rec.usage = 1;
    node->rec.estimated = 1;
    node->rec.input = ctx->est_input;
    node->rec.output = ctx->est_tokens > ctx->est_input
                       ? ctx->est_tokens - ctx->est_input : 0;
    node->rec.cost = ctx->est_money;
    node->rec.seq = ++sh->bseq;

    ngx_queue_insert_tail(&sh->begun, &node->queue);

    ngx_http_ai_guard_journal_append(&lj->journal, log,
                                     NGX_HTTP_AI_GUARD_JLOG_BEGUN, &node->rec,
                                     ngx_http_ai_guard_batch_rec_size(
                                         &node->rec));

    ngx_shmtx_unlock(&lj->shpool->mutex);

    ctx->begun = node;
}


/*
 * Under the ledger's mutex, as the row gains the request's usage: the
 * same in the journal, one frame.  A begun request's is an F frame (its
 * id, then the record), so it counts on its estimate or on this, never
 * both.
 */

void
ngx_http_ai_guard_ljournal_settle(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log, ngx_http_ai_guard_ctx_t *ctx, u_char *key, size_t len)
{
    size_t                             size;
    uint64_t                           buf[NGX_HTTP_AI_GUARD_LJOURNAL_REC
                                           / sizeof(uint64_t) + 1];
    ngx_http_ai_guard_ljournal_rec_t  *begun;
    ngx_http_ai_guard_ljournal_fin_t  *fin;

    fin = (ngx_http_ai_guard_ljournal_fin_t *) buf;

    size = ngx_http_ai_guard_ljournal_rec(&fin->rec, ctx, key, len);

    begun = ctx->begun;

    ngx_shmtx_lock(&lj->shpool->mutex);

    fin->rec.seq = lj->sh->seq++;

    if (begun) {
        fin->id = begun->rec.seq;
        ngx_http_ai_guard_journal_append(&lj->journal, log,
                                         NGX_HTTP_AI_GUARD_JLOG_FINISH, fin,
                                         sizeof(uint64_t) + size);
        ngx_http_ai_guard_ljournal_unbegin(lj, ctx);

    } else {
        ngx_http_ai_guard_journal_append(&lj->journal, log,
                                         NGX_HTTP_AI_GUARD_JLOG_REC,
                                         &fin->rec, size);
    }

    ngx_shmtx_unlock(&lj->shpool->mutex);
}


void
ngx_http_ai_guard_ljournal_end(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log, ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_http_ai_guard_ljournal_rec_t  *begun;

    begun = ctx->begun;

    if (begun == NULL) {
        return;
    }

    ngx_shmtx_lock(&lj->shpool->mutex);

    ngx_http_ai_guard_journal_append(&lj->journal, log,
                                     NGX_HTTP_AI_GUARD_JLOG_END,
                                     &begun->rec.seq, sizeof(uint64_t));
    ngx_http_ai_guard_ljournal_unbegin(lj, ctx);

    ngx_shmtx_unlock(&lj->shpool->mutex);
}


/* under the journal's mutex */

static void
ngx_http_ai_guard_ljournal_unbegin(ngx_http_ai_guard_ljournal_t *lj,
    ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_http_ai_guard_ljournal_rec_t  *begun;

    begun = ctx->begun;
    ctx->begun = NULL;

    ngx_queue_remove(&begun->queue);
    ngx_slab_free_locked(lj->shpool, begun);
}


/*
 * A record of the row "key": the request's usage (ctx NULL: zeros, for
 * the caller to fill) and the key as its scope; its bytes returned.
 */

static size_t
ngx_http_ai_guard_ljournal_rec(ngx_http_ai_guard_batch_rec_t *rec,
    ngx_http_ai_guard_ctx_t *ctx, u_char *key, size_t len)
{
    ngx_memzero(rec, sizeof(ngx_http_ai_guard_batch_rec_t));

    rec->scope_len = (uint16_t) len;
    ngx_memcpy((u_char *) (rec + 1), key, len);

    if (ctx) {
        rec->usage = 1;
        rec->input = ctx->usage.input_tokens;
        rec->output = ctx->usage.output_tokens;
        rec->cached = ctx->usage.cached_tokens;
        rec->estimated = ctx->estimated;
        rec->cost = ctx->final_money;
        rec->reasoning = ctx->usage.reasoning_tokens;
        rec->cache_write = ctx->usage.cache_write_tokens;
    }

    return ngx_http_ai_guard_batch_rec_size(rec);
}


/*
 * Under the ledger's mutex (so no row gains anything meanwhile) and the
 * journal's: head, the rows, the requests in flight, end, written into
 * the file that is not active, which then is.  What a crash leaves is
 * either file whole: the new one counts only with its end frame.
 */

void
ngx_http_ai_guard_ljournal_snapshot(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log, u_char *rows, size_t len)
{
    u_char                            *buf, *p;
    size_t                             size, n;
    ngx_queue_t                       *q;
    ngx_http_ai_guard_jlog_head_t      head;
    ngx_http_ai_guard_ljournal_sh_t   *sh;
    ngx_http_ai_guard_ljournal_rec_t  *node;

    sh = lj->sh;

    ngx_shmtx_lock(&lj->shpool->mutex);

    size = ngx_http_ai_guard_jlog_size(sizeof(ngx_http_ai_guard_jlog_head_t))
           + len + ngx_http_ai_guard_jlog_size(0);

    for (q = ngx_queue_head(&sh->begun);
         q != ngx_queue_sentinel(&sh->begun);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_ai_guard_ljournal_rec_t, queue);
        size += ngx_http_ai_guard_jlog_size(
                    ngx_http_ai_guard_batch_rec_size(&node->rec));
    }

    buf = ngx_alloc(size, log);
    if (buf == NULL) {
        ngx_shmtx_unlock(&lj->shpool->mutex);
        return;
    }

    head.gen = sh->journal.gen + 1;
    head.node = 0;
    head.seq = sh->seq;

    p = buf;
    p += ngx_http_ai_guard_jlog_frame(p, NGX_HTTP_AI_GUARD_JLOG_HEAD, &head,
                                      sizeof(ngx_http_ai_guard_jlog_head_t));
    p = ngx_cpymem(p, rows, len);

    for (q = ngx_queue_head(&sh->begun);
         q != ngx_queue_sentinel(&sh->begun);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_ai_guard_ljournal_rec_t, queue);
        n = ngx_http_ai_guard_batch_rec_size(&node->rec);
        p += ngx_http_ai_guard_jlog_frame(p, NGX_HTTP_AI_GUARD_JLOG_BEGUN,
                                          &node->rec, n);
    }

    p += ngx_http_ai_guard_jlog_frame(p, NGX_HTTP_AI_GUARD_JLOG_SNAP, "", 0);

    (void) ngx_http_ai_guard_journal_rewrite(&lj->journal, log, head.gen,
                                             buf, p - buf);

    ngx_shmtx_unlock(&lj->shpool->mutex);

    ngx_free(buf);
}


ngx_uint_t
ngx_http_ai_guard_ljournal_due(ngx_http_ai_guard_ljournal_t *lj)
{
    off_t                            tail;
    ngx_http_ai_guard_journal_sh_t  *js;

    js = &lj->sh->journal;
    tail = js->size - js->snap;

    return js->broken
           || (tail > js->snap && tail > NGX_HTTP_AI_GUARD_LJOURNAL_TAIL);
}


void
ngx_http_ai_guard_ljournal_sync(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log)
{
    ngx_http_ai_guard_journal_sync(&lj->journal, log);
}
