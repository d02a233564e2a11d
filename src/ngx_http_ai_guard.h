
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_guard_str.h"
#include "ngx_http_ai_guard_keys.h"
#include "ngx_http_ai_guard_request.h"
#include "ngx_http_ai_guard_price.h"
#include "ngx_http_ai_guard_limit.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_usage.h"
#include "ngx_http_ai_guard_rules.h"
#include "ngx_http_ai_guard_redis.h"


#define NGX_HTTP_AI_GUARD_ALLOW        1
#define NGX_HTTP_AI_GUARD_REJECT       2
#define NGX_HTTP_AI_GUARD_MONITOR      3

#define NGX_HTTP_AI_GUARD_ENFORCE      0
#define NGX_HTTP_AI_GUARD_MODE_MONITOR 1

#define NGX_HTTP_AI_GUARD_CACHE_OFF    0
#define NGX_HTTP_AI_GUARD_CACHE_ON     1
#define NGX_HTTP_AI_GUARD_CACHE_ALWAYS 2

#define NGX_HTTP_AI_GUARD_PII_BLOCK    0
#define NGX_HTTP_AI_GUARD_PII_LOG      1

#define NGX_HTTP_AI_GUARD_LIMIT_BY_KEY     0
#define NGX_HTTP_AI_GUARD_LIMIT_BY_TENANT  1
#define NGX_HTTP_AI_GUARD_LIMIT_BY_VALUE   2

#define NGX_HTTP_AI_GUARD_MAX_KEY      512
#define NGX_HTTP_AI_GUARD_MAX_BODY     (1024 * 1024)

/* the model label of usage past a tenant's ai_guard_usage_max_models */
#define NGX_HTTP_AI_GUARD_OTHER        "other"


typedef struct {
    ngx_str_t                      name;
    ngx_array_t                   *models;      /* ngx_str_t globs */
    int64_t                        max_tokens;  /* -1: no cap */
    size_t                         max_body;    /* 0: the location's */
    uint64_t                       limits[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    ngx_uint_t                     has_limits;
} ngx_http_ai_guard_tier_t;


typedef struct {
    ngx_str_t                      glob;
    ngx_http_ai_guard_price_t      price;
} ngx_http_ai_guard_price_rule_t;


typedef struct {
    ngx_str_t                      id;
    ngx_str_t                      pattern;
    ngx_regex_t                   *regex;
    ngx_uint_t                     lit_first;   /* its first word set */
    ngx_uint_t                     nlits;       /* word sets; 0: always run */
} ngx_http_ai_guard_prompt_rule_t;


/*
 * The rules of one level of the configuration, with one Aho-Corasick
 * automaton over the word sets their matches must contain (each set one
 * of several alternative literals): a rule runs on a text only when every
 * one of its sets has a word in it.
 */

typedef struct {
    ngx_array_t                    rules;  /* ngx_http_ai_guard_prompt_rule_t */
    ngx_http_ai_guard_ac_t        *ac;
    ngx_uint_t                     nlits;       /* word sets of all rules */
} ngx_http_ai_guard_ruleset_t;


typedef struct {
    ngx_str_t                      keys_file;
    ngx_http_ai_guard_keys_t      *keys;
    ngx_array_t                    tiers;     /* ngx_http_ai_guard_tier_t */
    ngx_array_t                    prices;    /* first match wins */
    ngx_http_ai_guard_price_t      price_max; /* of models none matches */
    ngx_str_t                      zone_name;
    size_t                         zone_size;
    size_t                         part_size[NGX_HTTP_AI_GUARD_PARTS];
    ngx_http_ai_guard_zone_t       zones[NGX_HTTP_AI_GUARD_PARTS];
    ngx_uint_t                     usage_days;
    ngx_uint_t                     usage_max_models;
    ngx_uint_t                     max_series;
    ngx_str_t                      event_name;
    ngx_uint_t                     enabled;   /* "ai_guard on" was seen */
    ngx_http_ai_guard_redis_conf_t  *redis;   /* NULL: no ai_guard_redis */
} ngx_http_ai_guard_main_conf_t;


typedef struct {
    ngx_flag_t                     enable;
    ngx_str_t                      key_header;  /* empty: the default */
    ngx_uint_t                     log_level;
    ngx_uint_t                     mode;
    size_t                         max_body;
    ngx_http_ai_guard_ruleset_t   *deny;
    ngx_http_ai_guard_ruleset_t   *allow;
    ngx_uint_t                     pii;         /* detector bits */
    ngx_uint_t                     pii_action;
    ngx_uint_t                     cache_key;
    ngx_uint_t                     limit_by;
    ngx_http_complex_value_t      *limit_by_value;
    ngx_uint_t                     limit_by_max;
    ngx_uint_t                     limit_by_global;
} ngx_http_ai_guard_loc_conf_t;


/* what a check decided against the request: status 0 lets it on */

typedef struct {
    ngx_uint_t                     status;
    char                          *code;
    ngx_str_t                      message;
    ngx_str_t                      reason;      /* $ai_guard_reason */
    ngx_str_t                      param;       /* the error's "param" */
    uint64_t                       retry_ms;
    unsigned                       retry:1;     /* a 429 that may retry */
} ngx_http_ai_guard_verdict_t;


typedef struct {
    ngx_http_request_t            *request;
    ngx_http_ai_guard_key_t       *key;
    ngx_http_ai_guard_verdict_t    verdict;
    ngx_uint_t                     decision;

    ngx_http_ai_guard_request_parser_t  *parser;
    ngx_http_ai_guard_request_t          req;
    off_t                                body_bytes;
    size_t                               max_body;

    ngx_array_t                   *texts;       /* ngx_str_t, for rules */
    ngx_http_ai_guard_prompt_rule_t  *deny_hit; /* the first deny hit */
    const char                    *pii_hit;     /* the first detector hit */
    u_char                        *found;       /* prefilter scratch */
    size_t                         found_size;
    ngx_int_t                      rule_error;  /* a match limit was hit */

    /* reserve at access, settle at the log phase or the pool cleanup */
    ngx_http_ai_guard_limit_item_t items[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    ngx_uint_t                     nitems;
    ngx_str_t                      scope;
    uint64_t                       est_input;
    uint64_t                       est_tokens;
    int64_t                        est_money;
    uint64_t                       final_tokens;
    int64_t                        final_money;

    /* sync=strict: the admission waits for Redis's reply */
    ngx_http_ai_guard_redis_reply_t  redis;

    /* what the x-ratelimit-* headers say */
    uint64_t                       req_limit;
    uint64_t                       req_remaining;
    uint64_t                       req_reset_ms;
    uint64_t                       tok_limit;
    uint64_t                       tok_remaining;
    uint64_t                       tok_reset_ms;

    /* the ledger row reserved before the upstream */
    ngx_str_t                      label;       /* its model label */
    uint32_t                       row_day;

    /* the meter: the upstream's own usage, or the estimate */
    ngx_http_ai_guard_usage_parser_t  *meter;
    ngx_http_ai_guard_usage_t      usage;
    off_t                          body_out;    /* response body bytes */
    uint64_t                       start_ms;
    uint64_t                       ttft_ms;
    uint64_t                       response_ms;
    ngx_uint_t                     upstream_status;

    u_char                         cache_key[64];
    u_char                         digest[4];   /* of an unknown key */

    unsigned                       has_digest:1;
    unsigned                       too_large:1;
    unsigned                       reading_body:1;
    unsigned                       body_done:1;
    unsigned                       parsed:1;
    unsigned                       checked:1;   /* the body checks ran */
    unsigned                       limited:1;   /* the limits decided */
    unsigned                       ruled:1;     /* the prompt rules ran */
    unsigned                       admitted:1;  /* on to the upstream */
    unsigned                       has_row:1;   /* a ledger row waits */
    unsigned                       allow_hit:1;
    unsigned                       has_cache_key:1;
    unsigned                       reserved:1;
    unsigned                       has_req_limit:1;
    unsigned                       has_tok_limit:1;
    unsigned                       finished:1;
    unsigned                       in_flight:1;
    unsigned                       upstream:1;    /* reached the upstream */
    unsigned                       estimated:1;   /* no usage in the reply */
    unsigned                       first_byte:1;
    unsigned                       redis_wait:1;     /* a reply is due */
    unsigned                       redis_done:1;     /* the reply is in */
    unsigned                       redis_reserved:1; /* taken in Redis */
} ngx_http_ai_guard_ctx_t;


ngx_http_ai_guard_ctx_t *ngx_http_ai_guard_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_guard_access_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_guard_request_body_filter_init(ngx_conf_t *cf);

ngx_int_t ngx_http_ai_guard_init_digest(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_digest(ngx_str_t *parts, ngx_uint_t n,
    u_char *digest);
ngx_int_t ngx_http_ai_guard_authenticate(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);

ngx_int_t ngx_http_ai_guard_prompt_init(ngx_cycle_t *cycle);
int ngx_http_ai_guard_prompt_text(void *data, const u_char *p, size_t len);
ngx_int_t ngx_http_ai_guard_prompt_check(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);
char *ngx_http_ai_guard_prompt_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_guard_prompt_rules_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_guard_pii(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_ai_guard_prompt_merge(ngx_conf_t *cf,
    ngx_http_ai_guard_loc_conf_t *prev, ngx_http_ai_guard_loc_conf_t *conf);

void ngx_http_ai_guard_limiter_zone(ngx_http_ai_guard_main_conf_t *amcf);
ngx_int_t ngx_http_ai_guard_limiter_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v);
void ngx_http_ai_guard_limiter_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
ngx_int_t ngx_http_ai_guard_limiter_sync(ngx_http_ai_guard_main_conf_t *amcf,
    ngx_log_t *log, ngx_http_ai_guard_redis_sync_pt send);
void ngx_http_ai_guard_limiter_synced(ngx_http_ai_guard_main_conf_t *amcf,
    ngx_pool_t *pool, uint64_t *totals, ngx_uint_t n, uint64_t redis_now);
ngx_int_t ngx_http_ai_guard_redis_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_redis_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
ngx_int_t ngx_http_ai_guard_redis_metrics(ngx_http_request_t *r,
    ngx_str_t *text);
int64_t ngx_http_ai_guard_price_of(ngx_http_request_t *r, u_char *model,
    size_t len, uint64_t input, uint64_t output, uint64_t cached,
    uint64_t cache_write);
ngx_http_ai_guard_price_t *ngx_http_ai_guard_price_find(ngx_http_request_t *r,
    u_char *model, size_t len);
void ngx_http_ai_guard_price_init(ngx_http_ai_guard_main_conf_t *amcf);
uint64_t ngx_http_ai_guard_now(void);
void ngx_http_ai_guard_ledger_zone(ngx_http_ai_guard_main_conf_t *amcf);
ngx_int_t ngx_http_ai_guard_ledger_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v);
void ngx_http_ai_guard_record(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
void ngx_http_ai_guard_in_flight(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_int_t delta);
char *ngx_http_ai_guard_price(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

ngx_int_t ngx_http_ai_guard_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_guard_log_handler(ngx_http_request_t *r);
void ngx_http_ai_guard_finish(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);

ngx_int_t ngx_http_ai_guard_send_error(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v);
void ngx_http_ai_guard_set_verdict(ngx_http_ai_guard_verdict_t *v,
    ngx_uint_t status, char *code, char *message);

ngx_int_t ngx_http_ai_guard_add_variables(ngx_conf_t *cf);

ngx_int_t ngx_http_ai_guard_cache_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_guard_cache_key(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);
ngx_http_ai_guard_ctx_t *ngx_http_ai_guard_cacheable(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_guard_cache_key_value(ngx_http_request_t *r,
    ngx_str_t *key);

char *ngx_http_ai_guard_usage_cmd(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_guard_metrics_cmd(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


extern ngx_module_t  ngx_http_ai_guard_module;


#endif /* _NGX_HTTP_AI_GUARD_H_INCLUDED_ */
