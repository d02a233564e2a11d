
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_LEDGER_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_LEDGER_H_INCLUDED_


#include "ngx_http_ai_guard_common.h"


/*
 * The ledger's entries (docs/state.md).  Every key starts with its type
 * and the UTC day, a uint32_t in host order, then length-prefixed parts:
 *
 *   'u' day tenant key-id model customer   a usage row
 *   'm' day tenant model                   a model the tenant used that day
 *   'c' day tenant                         how many models it used
 *
 * The day comes first so that a day's entries go together when they age
 * out, in the order they were made.
 */

#define NGX_HTTP_AI_GUARD_LEDGER_ROW     'u'
#define NGX_HTTP_AI_GUARD_LEDGER_MODEL   'm'
#define NGX_HTTP_AI_GUARD_LEDGER_COUNT   'c'

/* the type byte and the day */
#define NGX_HTTP_AI_GUARD_LEDGER_HEAD    5

/* the longest key: a row of the longest tenant, key id, model, customer */
#define NGX_HTTP_AI_GUARD_LEDGER_KEY                                         \
    (NGX_HTTP_AI_GUARD_LEDGER_HEAD                                           \
     + 3 * NGX_HTTP_AI_GUARD_PART_LEN(NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD)      \
     + NGX_HTTP_AI_GUARD_PART_LEN(NGX_HTTP_AI_GUARD_REQ_MODEL_LEN + 1))


typedef struct {
    uint64_t                       requests;  /* reached the upstream */
    uint64_t                       input;     /* all prompt tokens */
    uint64_t                       output;
    uint64_t                       cached;    /* part of input */
    uint64_t                       estimated; /* requests on the estimate */
    int64_t                        cost;      /* pico-USD */
    uint64_t                       reasoning;   /* part of output */
    uint64_t                       cache_write; /* part of input */
} ngx_http_ai_guard_usage_entry_t;


void ngx_http_ai_guard_ledger_zone(ngx_http_ai_guard_main_conf_t *amcf);
ngx_int_t ngx_http_ai_guard_ledger_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v);
ngx_int_t ngx_http_ai_guard_ledger_record(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_str_t *model, uint64_t now,
    ngx_str_t *label);
void ngx_http_ai_guard_ledger_begin(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
ngx_int_t ngx_http_ai_guard_ledger_restore(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_ledger_init_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_AI_GUARD_LEDGER_H_INCLUDED_ */
