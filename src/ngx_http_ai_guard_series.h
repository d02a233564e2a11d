
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_SERIES_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_SERIES_H_INCLUDED_


/*
 * Metric series: the record of each request, bounded labels.
 */

#include "ngx_http_ai_guard_common.h"


/*
 * A metric series: type, decision, then the parts tenant, model and
 * reason, each cut at its NGX_HTTP_AI_GUARD_LABEL_* bytes.  'R': requests
 * by tenant, model, decision and reason; 'T': tokens and cost by tenant
 * and model; 'U': requests priced by no ai_guard_price, by tenant.
 */

#define NGX_HTTP_AI_GUARD_SERIES_REQUESTS  'R'
#define NGX_HTTP_AI_GUARD_SERIES_TOKENS    'T'
#define NGX_HTTP_AI_GUARD_SERIES_UNPRICED  'U'

#define NGX_HTTP_AI_GUARD_LABEL_TENANT     128
#define NGX_HTTP_AI_GUARD_LABEL_MODEL      128
#define NGX_HTTP_AI_GUARD_LABEL_REASON     64

/* the longest series key, and the most a series takes in its zone */
#define NGX_HTTP_AI_GUARD_SERIES_KEY                                         \
    (2 + NGX_HTTP_AI_GUARD_LABEL_TENANT + NGX_HTTP_AI_GUARD_LABEL_MODEL      \
     + NGX_HTTP_AI_GUARD_LABEL_REASON + 3 * 4)
#define NGX_HTTP_AI_GUARD_SERIES_BYTES     512


typedef struct {
    uint64_t                       requests;
    uint64_t                       input;
    uint64_t                       output;
    uint64_t                       cached;
    uint64_t                       estimated;
    int64_t                        cost;      /* pico-USD */
} ngx_http_ai_guard_series_t;


/* a series key read back: the labels point into the key */

typedef struct {
    u_char                         type;
    u_char                         decision;
    ngx_str_t                      tenant;
    ngx_str_t                      model;
    ngx_str_t                      reason;
} ngx_http_ai_guard_labels_t;


void ngx_http_ai_guard_record(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
size_t ngx_http_ai_guard_series_key(u_char *buf, u_char type, u_char decision,
    ngx_str_t *tenant, ngx_str_t *model, ngx_str_t *reason);
ngx_int_t ngx_http_ai_guard_series_labels(u_char *key, size_t len,
    ngx_http_ai_guard_labels_t *labels);
void ngx_http_ai_guard_in_flight(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_int_t delta);


#endif /* _NGX_HTTP_AI_GUARD_SERIES_H_INCLUDED_ */
