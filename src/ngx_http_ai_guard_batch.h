
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_BATCH_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_BATCH_H_INCLUDED_


/*
 * The records of a Redis outbox batch added up before they go.  Pure
 * code (no nginx runtime): the caller copies the batch's records out of
 * shared memory, then adds them up here without holding the zone's
 * mutex.
 *
 * A record is one settled request: its usage (when it reached the
 * upstream) and the corrections of the limit counters it reserved in
 * Redis.  It is a fixed-size header without pointers, so that it lives
 * in shared memory as it is; "nitems" items follow it, then the bytes of
 * the tenant, key id, model, Stripe customer and scope, in this order.
 *
 * Adding up: the records of one usage row (day, tenant, key id, model,
 * customer) make one row, those of one limit counter (scope, kind, limit,
 * window) one correction, whatever their order; every sum saturates
 * instead of wrapping (only sums that saturate may then depend on the
 * order).  Rows and corrections come in the order of their first record,
 * so the same records in the same order always make the same batch (a
 * retried batch is sent as it was).
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


typedef struct {
    uint64_t                            limit;
    int64_t                             delta;   /* units, signed */
    uint64_t                            window;  /* quotas */
    uint32_t                            kind;
} ngx_http_ai_guard_batch_item_t;


typedef struct {
    uint64_t                            seq;
    uint32_t                            day;     /* UTC day number */
    uint16_t                            tenant_len;
    uint16_t                            key_len;
    uint16_t                            model_len;
    uint16_t                            customer_len;
    uint16_t                            scope_len;
    uint8_t                             nitems;
    uint8_t                             usage;   /* the usage counts */
    uint64_t                            input;
    uint64_t                            output;
    uint64_t                            cached;
    uint64_t                            estimated;
    int64_t                             cost;    /* pico-USD */
    uint64_t                            reasoning;
    uint64_t                            cache_write;
} ngx_http_ai_guard_batch_rec_t;


typedef struct {
    const u_char                       *data;
    size_t                              len;
} ngx_http_ai_guard_batch_str_t;


/* a usage row: the sums of its records; the strings point into them */

typedef struct {
    uint32_t                            day;
    ngx_http_ai_guard_batch_str_t       tenant;
    ngx_http_ai_guard_batch_str_t       key;
    ngx_http_ai_guard_batch_str_t       model;
    ngx_http_ai_guard_batch_str_t       customer;
    uint64_t                            requests;
    uint64_t                            input;
    uint64_t                            output;
    uint64_t                            cached;
    uint64_t                            estimated;
    int64_t                             cost;
    uint64_t                            reasoning;
    uint64_t                            cache_write;
} ngx_http_ai_guard_batch_usage_t;


/* a limit counter's correction: the sum of its records' deltas, not 0 */

typedef struct {
    ngx_http_ai_guard_batch_str_t       scope;
    uint32_t                            kind;
    uint64_t                            limit;
    uint64_t                            window;
    int64_t                             delta;
} ngx_http_ai_guard_batch_corr_t;


/*
 * What a batch adds up to.  The caller gives room for "nusage" rows and
 * "ncorr" corrections, as ngx_http_ai_guard_batch_count() says; the
 * aggregate sets both to what it wrote.
 */

typedef struct {
    ngx_http_ai_guard_batch_usage_t    *usage;
    size_t                              nusage;
    ngx_http_ai_guard_batch_corr_t     *corr;
    size_t                              ncorr;
} ngx_http_ai_guard_batch_t;


/* the bytes of a record: its header, items and strings */
size_t ngx_http_ai_guard_batch_rec_size(
    const ngx_http_ai_guard_batch_rec_t *rec);

/* the most rows and corrections "n" records can make */
void ngx_http_ai_guard_batch_count(const ngx_http_ai_guard_batch_rec_t **recs,
    size_t n, size_t *nusage, size_t *ncorr);

void ngx_http_ai_guard_batch_aggregate(ngx_http_ai_guard_batch_t *b,
    const ngx_http_ai_guard_batch_rec_t **recs, size_t n);


#endif /* _NGX_HTTP_AI_GUARD_BATCH_H_INCLUDED_ */
