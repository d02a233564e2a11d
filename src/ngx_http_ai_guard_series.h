
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
 * A metric series' key: its type, a byte of its own (the decision, a
 * dialect, a period), then the parts tenant, model, code and reason, each
 * cut at its NGX_HTTP_AI_GUARD_LABEL_* bytes, empty where the type has no
 * such label.
 *
 *   'R'  requests: decision, tenant, model, code, reason
 *   'T'  tokens and cost: decision, tenant, model
 *   'U'  requests no ai_guard_price priced: tenant
 *   'H'  the GenAI histograms and the upstream's answers by status:
 *        dialect, tenant, model
 *   'B'  a budget's gauge: period, tenant, the key id of a key's budget
 *        (in the model's part)
 *   'A'  budget alerts: period, tenant, key id (the model's part), the
 *        threshold (the reason's part)
 *   'L'  what remains of a tenant's limits: tenant
 *
 * 'H' entries are bounded by ai_guard_metrics_max_histograms, the others
 * by ai_guard_metrics_max_series.
 */

#define NGX_HTTP_AI_GUARD_SERIES_REQUESTS  'R'
#define NGX_HTTP_AI_GUARD_SERIES_TOKENS    'T'
#define NGX_HTTP_AI_GUARD_SERIES_UNPRICED  'U'
#define NGX_HTTP_AI_GUARD_SERIES_HISTO     'H'
#define NGX_HTTP_AI_GUARD_SERIES_BUDGET    'B'
#define NGX_HTTP_AI_GUARD_SERIES_ALERTS    'A'
#define NGX_HTTP_AI_GUARD_SERIES_LIMITS    'L'

#define NGX_HTTP_AI_GUARD_LABEL_TENANT     128
#define NGX_HTTP_AI_GUARD_LABEL_MODEL      128
#define NGX_HTTP_AI_GUARD_LABEL_CODE       32
#define NGX_HTTP_AI_GUARD_LABEL_REASON     64

/* the longest series key, and the most a series takes in its zone */
#define NGX_HTTP_AI_GUARD_SERIES_KEY                                         \
    (2 + NGX_HTTP_AI_GUARD_LABEL_TENANT + NGX_HTTP_AI_GUARD_LABEL_MODEL      \
     + NGX_HTTP_AI_GUARD_LABEL_CODE + NGX_HTTP_AI_GUARD_LABEL_REASON + 4 * 4)
#define NGX_HTTP_AI_GUARD_SERIES_BYTES     512

/* and a histogram entry: a node, its 816 bytes and the longest key */
#define NGX_HTTP_AI_GUARD_HISTO_BYTES      2048


/*
 * The GenAI histograms (docs/reports.md), each kept in its own unit: the
 * durations in milliseconds, the time per output token in microseconds,
 * the tokens as they are.  A histogram is its buckets, the last one
 * +Inf, then its sum.
 */

#define NGX_HTTP_AI_GUARD_HISTO_DURATION   0
#define NGX_HTTP_AI_GUARD_HISTO_FIRST_BYTE 1
#define NGX_HTTP_AI_GUARD_HISTO_TTFT       2
#define NGX_HTTP_AI_GUARD_HISTO_TPOT       3
#define NGX_HTTP_AI_GUARD_HISTO_INPUT      4
#define NGX_HTTP_AI_GUARD_HISTO_OUTPUT     5
#define NGX_HTTP_AI_GUARD_HISTOS           6

/* the words of all six: 15 + 15 + 17 + 14 + 15 + 15 buckets, 6 sums */
#define NGX_HTTP_AI_GUARD_HISTO_WORDS      97

/*
 * And the entry's answers by the upstream's status: none (no answer came),
 * 1xx and 2xx, 3xx, 4xx, 5xx.
 */
#define NGX_HTTP_AI_GUARD_HISTO_STATUSES   5


typedef struct {
    char                          *name;
    char                          *help;
    char                          *label;     /* "type" of the token ones */
    const uint64_t                *bounds;
    ngx_uint_t                     nbounds;   /* without +Inf */
    ngx_uint_t                     decimals;  /* 3: ms, 6: us, 0 */
    ngx_uint_t                     offset;    /* its first word */
} ngx_http_ai_guard_histo_family_t;


extern const ngx_http_ai_guard_histo_family_t
    ngx_http_ai_guard_histo_families[NGX_HTTP_AI_GUARD_HISTOS];


typedef struct {
    uint64_t                       words[NGX_HTTP_AI_GUARD_HISTO_WORDS];
    uint64_t                       status[NGX_HTTP_AI_GUARD_HISTO_STATUSES];
} ngx_http_ai_guard_histo_t;


typedef struct {
    uint64_t                       requests;
    uint64_t                       input;
    uint64_t                       output;
    uint64_t                       cached;
    uint64_t                       estimated;
    int64_t                        cost;      /* pico-USD */
    uint64_t                       reasoning;   /* part of output */
    uint64_t                       cache_write; /* part of input */
} ngx_http_ai_guard_series_t;


/* a budget's gauge: what was last settled in its window */

typedef struct {
    uint64_t                       used;      /* pico-USD */
    uint64_t                       limit;     /* pico-USD */
    uint64_t                       window;
} ngx_http_ai_guard_budget_series_t;


/*
 * What remained of a tenant's limits as the admission of its last request
 * left them, by kind (its index less one; concurrency has none): the
 * limit, what remained of it, and from when on all of it is back (a
 * bucket refilled, a quota's window over).  "stamp": the admission's
 * time, so that a long request that ends last does not write older news.
 * With a key of the longest tenant, this fits a 512-byte series.
 */

typedef struct {
    uint64_t                       limit;     /* 0: the tier has none */
    uint64_t                       remaining;
    uint64_t                       full_at;   /* ms */
} ngx_http_ai_guard_remaining_t;


typedef struct {
    uint64_t                       stamp;
    ngx_http_ai_guard_remaining_t  kinds[NGX_HTTP_AI_GUARD_LIMIT_NKINDS - 1];
} ngx_http_ai_guard_limits_series_t;


/* a series key read back (the labels point into the key), or to write */

typedef struct {
    u_char                         type;
    u_char                         decision;
    ngx_str_t                      tenant;
    ngx_str_t                      model;
    ngx_str_t                      code;
    ngx_str_t                      reason;
} ngx_http_ai_guard_labels_t;


void ngx_http_ai_guard_record(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_record_budget(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_series_fit(ngx_http_ai_guard_main_conf_t *amcf);
size_t ngx_http_ai_guard_series_need(ngx_http_ai_guard_main_conf_t *amcf);
size_t ngx_http_ai_guard_series_key(u_char *buf, u_char type, u_char decision,
    ngx_str_t *tenant, ngx_str_t *model, ngx_str_t *code, ngx_str_t *reason);
ngx_int_t ngx_http_ai_guard_series_labels(u_char *key, size_t len,
    ngx_http_ai_guard_labels_t *labels);
void ngx_http_ai_guard_in_flight(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_int_t delta);
void ngx_http_ai_guard_series_alert(ngx_http_ai_guard_main_conf_t *amcf,
    ngx_str_t *tenant, ngx_str_t *key, u_char period, ngx_uint_t percent);


#endif /* _NGX_HTTP_AI_GUARD_SERIES_H_INCLUDED_ */
