
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REDIS_TRANSPORT_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REDIS_TRANSPORT_H_INCLUDED_


/*
 * The Redis transport: one hiredis connection a worker on nginx's event
 * loop, its handshake, commands with timers, reconnection with backoff,
 * the registry of the Lua scripts, the outbox's shared memory zone and
 * the Redis metrics.  The owners of the scripts (admissions, the outbox,
 * sync) and the cluster report send through it; it calls none of them,
 * only the hook an owner gives it.
 */

#include "ngx_http_ai_guard_common.h"

#include <hiredis/hiredis.h>


/*
 * The least time a handshake, an outbox batch, a sync and a report's rows
 * are given, whatever timeout= says: their replies are longer than an
 * admission's.
 */
#define NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE    1000

/* latency buckets, microseconds; the last one is +Inf */
#define NGX_HTTP_AI_GUARD_REDIS_BUCKETS      12

#define NGX_HTTP_AI_GUARD_REDIS_UNIT_REQ     0
#define NGX_HTTP_AI_GUARD_REDIS_UNIT_TOKEN   1
#define NGX_HTTP_AI_GUARD_REDIS_UNIT_MONEY   2
#define NGX_HTTP_AI_GUARD_REDIS_UNIT_CONC    3


/*
 * A command's reply, or NULL: no reply came (a timeout, or the connection
 * was lost).  Not called at all for a command whose pool went first.
 */

typedef void (*ngx_http_ai_guard_redis_done_pt)(void *data,
    redisReply *reply);

typedef void (*ngx_http_ai_guard_redis_quit_pt)(void);


/*
 * The zone shared by the workers of a node: the outbox (its queue and its
 * batch's lease, kept by src/ngx_http_ai_guard_redis_outbox.c) and the
 * transport's counters for the metrics.
 */

/*
 * The outbox's layout: its records are ngx_http_ai_guard_batch_rec_t.  The
 * word comes first, where an older layout had a pointer, so that a
 * reload of an upgraded module tells an older outbox apart.
 */
#define NGX_HTTP_AI_GUARD_OUTBOX_LAYOUT  0x6169677561726402ULL


struct ngx_http_ai_guard_redis_sh_s {
    uint64_t                         layout;
    ngx_queue_t                      outbox;
    ngx_queue_t                      begun;       /* journaled, unsettled */
    uint64_t                         bseq;        /* their ids */
    ngx_uint_t                       pending;
    uint64_t                         seq;
    uint64_t                         node;
    ngx_uint_t                       batch;       /* records in flight */
    uint64_t                         batch_first;
    uint64_t                         batch_until; /* ms: the lease */
    ngx_uint_t                       outage;      /* warned about */
    ngx_uint_t                       full;        /* alerted about */
    uint64_t                         errors;
    uint64_t                         dropped;
    uint64_t                         flushed;
    uint64_t                         syncs;
    uint64_t                         latency[NGX_HTTP_AI_GUARD_REDIS_BUCKETS];
    uint64_t                         latency_us;
    uint64_t                         latency_n;
    ngx_http_ai_guard_journal_sh_t   journal;
};


/*
 * How Redis keeps each limit kind, as the three scripts that touch the
 * limit counters (admission, outbox, sync) agree on it.
 */

typedef struct {
    char                             type;    /* b: bucket, q: quota, c */
    u_char                           unit;
    ngx_http_ai_guard_cal_e          cal;
    uint64_t                         period;
} ngx_http_ai_guard_redis_kind_t;


extern const ngx_http_ai_guard_redis_kind_t
    ngx_http_ai_guard_redis_kinds[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];


/* configuration */
ngx_int_t ngx_http_ai_guard_redis_zone(ngx_conf_t *cf,
    ngx_http_ai_guard_redis_conf_t *rcf);
ngx_int_t ngx_http_ai_guard_redis_script(ngx_conf_t *cf, const char *lua);

/* the worker */
ngx_int_t ngx_http_ai_guard_redis_start(ngx_cycle_t *cycle,
    ngx_http_ai_guard_redis_conf_t *rcf);
void ngx_http_ai_guard_redis_on_quit(ngx_http_ai_guard_redis_quit_pt handler);

/* commands */
ngx_int_t ngx_http_ai_guard_redis_send(ngx_http_ai_guard_redis_done_pt handler,
    void *data, ngx_pool_t *pool, int argc, const char **argv,
    size_t *argvlen, ngx_msec_t timeout);
ngx_int_t ngx_http_ai_guard_redis_eval(ngx_uint_t script,
    ngx_http_ai_guard_redis_done_pt handler, void *data, ngx_pool_t *pool,
    ngx_http_ai_guard_redis_done_pt orphan, void *odata, int argc,
    const char **argv, size_t *argvlen, ngx_msec_t timeout);

/* keys */
u_char *ngx_http_ai_guard_redis_limit_key(ngx_pool_t *pool, ngx_str_t *prefix,
    u_char *scope, size_t len, ngx_uint_t kind, uint64_t window, size_t *n);
void ngx_http_ai_guard_redis_on_change(ngx_event_t *ev);
ngx_int_t ngx_http_ai_guard_redis_up(void);


#endif /* _NGX_HTTP_AI_GUARD_REDIS_TRANSPORT_H_INCLUDED_ */
