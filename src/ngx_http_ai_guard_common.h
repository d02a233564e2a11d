
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_COMMON_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_COMMON_H_INCLUDED_


/*
 * The types the module's files share, and nothing else: the
 * configurations, the request's context, a verdict, the Redis and report
 * types that cross files.  Each glue file declares its own functions in a
 * header of its own (docs/architecture.md).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_guard_str.h"
#include "ngx_http_ai_guard_date.h"
#include "ngx_http_ai_guard_keys.h"
#include "ngx_http_ai_guard_request.h"
#include "ngx_http_ai_guard_price.h"
#include "ngx_http_ai_guard_limit.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_usage.h"
#include "ngx_http_ai_guard_rules.h"
#include "ngx_http_ai_guard_rewrite.h"


/* Redis: its configuration and the types that cross its files */

typedef struct ngx_http_ai_guard_redis_sh_s   ngx_http_ai_guard_redis_sh_t;


/* an address of Redis or of a sentinel: an IP or a unix path, NUL */

typedef struct {
    u_char                        *host;
    int                            port;        /* 0: a unix socket */
} ngx_http_ai_guard_redis_addr_t;


/*
 * A journal on disk (src/ngx_http_ai_guard_journal.c): the outbox's
 * (ai_guard_redis journal=) or the local ledger's (ai_guard_journal).
 * Its state shared by the workers lives in its owner's zone.
 */

typedef struct {
    ngx_uint_t                     active;      /* the file written */
    uint64_t                       gen;
    off_t                          size;        /* the active one's */
    off_t                          snap;        /* after the rewrite */
    ngx_uint_t                     broken;      /* a write failed */
} ngx_http_ai_guard_journal_sh_t;


typedef struct {
    ngx_str_t                        path;      /* "": none */
    ngx_uint_t                       fsync;
    ngx_fd_t                         fd[2];
    ngx_http_ai_guard_journal_sh_t  *sh;
    char                            *what;      /* in messages */
    char                            *directive;
    ngx_uint_t                       rows;      /* a snapshot of rows */
} ngx_http_ai_guard_journal_t;


typedef struct {
    ngx_str_t                      addr;        /* or the master's name */
    ngx_array_t                   *sentinels;   /* redis_addr_t; or NULL */
    u_char                        *host;        /* IP or unix path, NUL */
    int                            port;        /* 0: a unix socket */
    ngx_str_t                      password;
    ngx_int_t                      db;
    ngx_msec_t                     timeout;
    ngx_msec_t                     sync;        /* 0: sync=strict */
    ngx_msec_t                     lease;       /* sync=lease: lifetime */
    ngx_uint_t                     fail_closed;
    ngx_str_t                      prefix;
    size_t                         outbox;
    ngx_uint_t                     replicas;    /* WAIT for, a batch */
    ngx_http_ai_guard_journal_t    journal;     /* path "": none */

    /* the scripts' Lua, as their owners registered them (ngx_str_t) */
    ngx_array_t                   *scripts;

    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_ai_guard_redis_sh_t  *sh;

    void                          *lease_zone;  /* sync=lease: the slices */
} ngx_http_ai_guard_redis_conf_t;


/* the limits a request reserves in one round trip: one item a kind */
#define NGX_HTTP_AI_GUARD_REDIS_ITEMS  NGX_HTTP_AI_GUARD_LIMIT_NKINDS


/*
 * What the admission script answered, in the order of the request's
 * limit items; rc is NGX_HTTP_AI_GUARD_LIMIT_OK / _WAIT / _NEVER, or
 * NGX_HTTP_AI_GUARD_REDIS_FAILED when no answer came in time.
 */

#define NGX_HTTP_AI_GUARD_REDIS_FAILED  -1

typedef struct {
    ngx_int_t                      rc;
    ngx_uint_t                     index;
    uint64_t                       retry_ms;
    uint64_t                       remaining[NGX_HTTP_AI_GUARD_REDIS_ITEMS];
    uint64_t                       reset_ms[NGX_HTTP_AI_GUARD_REDIS_ITEMS];

    /* sync=lease: a budget's spend as the node knows it, at settlement */
    uint64_t                       spent[NGX_HTTP_AI_GUARD_REDIS_ITEMS];
} ngx_http_ai_guard_redis_reply_t;


/* a counter of sync=<interval>: what the node counted since the last sync */

typedef struct {
    ngx_str_t                      scope;
    ngx_uint_t                     kind;
    uint64_t                       limit;
    int64_t                        delta;       /* units */
    uint64_t                       window;      /* quotas */
} ngx_http_ai_guard_redis_sync_t;

typedef ngx_int_t (*ngx_http_ai_guard_redis_sync_pt)(ngx_pool_t *pool,
    ngx_http_ai_guard_redis_sync_t *items, ngx_uint_t n);


/* the usage report: its rows, from the ledger or from Redis */

typedef struct {
    uint64_t                       requests;
    uint64_t                       input;
    uint64_t                       output;
    uint64_t                       cached;
    uint64_t                       estimated;
    int64_t                        cost;        /* pico-USD */
    uint64_t                       reasoning;   /* part of output */
    uint64_t                       cache_write; /* part of input */
} ngx_http_ai_guard_totals_t;


/*
 * A row of the usage report: a usage entry of a tenant, key, model and
 * day, copied out of the local zone or read from Redis's usage hashes.
 */

typedef struct {
    ngx_str_t                      tenant;
    ngx_str_t                      key;
    ngx_str_t                      model;
    ngx_str_t                      customer;
    ngx_str_t                      label;       /* what it is grouped by */
    uint32_t                       day;
    u_char                         date[NGX_HTTP_AI_GUARD_DATE_LEN];
    ngx_http_ai_guard_totals_t     totals;
} ngx_http_ai_guard_row_t;


/*
 * The rows Redis holds for a report (an array of ngx_http_ai_guard_row_t
 * pointers in the request's pool, "day" still unset), or NULL: Redis did
 * not answer.
 */

typedef void (*ngx_http_ai_guard_redis_usage_pt)(ngx_http_request_t *r,
    void *data, ngx_array_t *rows);


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
#define NGX_HTTP_AI_GUARD_PII_REDACT   2

#define NGX_HTTP_AI_GUARD_STREAM_USAGE_OFF     0
#define NGX_HTTP_AI_GUARD_STREAM_USAGE_INJECT  1

#define NGX_HTTP_AI_GUARD_DIALECT_OPENAI     0
#define NGX_HTTP_AI_GUARD_DIALECT_ANTHROPIC  1
#define NGX_HTTP_AI_GUARD_DIALECT_AUTO       2

#define NGX_HTTP_AI_GUARD_LIMIT_BY_KEY     0
#define NGX_HTTP_AI_GUARD_LIMIT_BY_TENANT  1
#define NGX_HTTP_AI_GUARD_LIMIT_BY_VALUE   2

#define NGX_HTTP_AI_GUARD_MAX_KEY      512
#define NGX_HTTP_AI_GUARD_MAX_BODY     (1024 * 1024)

/* the model label of usage past a tenant's ai_guard_usage_max_models */
#define NGX_HTTP_AI_GUARD_OTHER        "other"

/* the thresholds of a tier's budget_alert= */
#define NGX_HTTP_AI_GUARD_ALERTS  8


/* where a directive was read: checked later, reported at its line */

typedef struct {
    ngx_str_t                      file;        /* empty: command line */
    ngx_uint_t                     line;
} ngx_http_ai_guard_where_t;


typedef struct {
    ngx_str_t                      name;
    ngx_array_t                   *models;      /* ngx_str_t globs */
    int64_t                        max_tokens;  /* -1: no cap */
    size_t                         max_body;    /* 0: the location's */
    uint64_t                       limits[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    ngx_uint_t                     has_limits;

    /* budget_alert=: percents of each budget, ascending */
    ngx_uint_t                     budget_alerts;
    ngx_uint_t                     budget_alert[NGX_HTTP_AI_GUARD_ALERTS];
    ngx_http_ai_guard_where_t      where;
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
 * A kept text, in the normal form the rules read; group: the parts of
 * one content array share it, or 0; start, end: the JSON string it was
 * decoded from, in the body (what "ai_guard_pii_action redact" edits).
 */
typedef struct {
    ngx_str_t                      text;
    uint32_t                       group;
    size_t                         start;
    size_t                         end;
} ngx_http_ai_guard_prompt_text_t;


/*
 * The rules of one level of the configuration, with one Aho-Corasick
 * automaton over the word sets their matches must contain (each set one
 * of several alternative literals): a rule runs on a text only when every
 * one of its sets has a word in it.  The vector scan of the same
 * literals, when the CPU has one, gives the same answer faster.
 */

typedef struct {
    ngx_array_t                    rules;  /* ngx_http_ai_guard_prompt_rule_t */
    ngx_http_ai_guard_ac_t        *ac;
    ngx_http_ai_guard_vscan_t     *vscan;
    ngx_uint_t                     nlits;       /* word sets of all rules */
} ngx_http_ai_guard_ruleset_t;


typedef struct {
    ngx_str_t                      keys_file;
    ngx_str_t                      keys_value;  /* as configured */
    ngx_http_ai_guard_where_t      keys_where;
    ngx_http_ai_guard_keys_t      *keys;
    ngx_array_t                    tiers;     /* ngx_http_ai_guard_tier_t */
    ngx_array_t                    prices;    /* first match wins */
    ngx_http_ai_guard_price_t      price_max; /* of models none matches */
    ngx_str_t                      zone_name;
    size_t                         zone_size;
    ngx_http_ai_guard_where_t      zone_where;
    ngx_http_ai_guard_where_t      max_series_where;
    size_t                         part_size[NGX_HTTP_AI_GUARD_PARTS];
    ngx_http_ai_guard_zone_t       zones[NGX_HTTP_AI_GUARD_PARTS];
    ngx_uint_t                     usage_days;
    ngx_uint_t                     usage_max_models;
    ngx_uint_t                     max_series;
    ngx_uint_t                     max_histograms;
    ngx_str_t                      event_name;
    ngx_uint_t                     enabled;   /* "ai_guard on" was seen */
    ngx_http_ai_guard_redis_conf_t  *redis;   /* NULL: no ai_guard_redis */

    /* ai_guard_journal: the ledger's journal (ledger_journal.c) */
    void                          *journal;   /* NULL: none */

    /* ai_guard_key_store: the keys the admin API made (store.c) */
    ngx_http_ai_guard_zone_t      *store;     /* NULL: none */
    ngx_uint_t                     store_max;
    ngx_http_ai_guard_where_t      admin_where; /* an ai_guard_admin */
    ngx_path_t                    *state_dir;   /* ai_guard_state_dir */
} ngx_http_ai_guard_main_conf_t;


typedef struct {
    ngx_flag_t                     enable;
    ngx_http_ai_guard_where_t      enable_where;
    ngx_str_t                      key_header;  /* empty: the default */
    ngx_uint_t                     log_level;
    ngx_uint_t                     mode;
    size_t                         max_body;
    ngx_http_ai_guard_ruleset_t   *deny;
    ngx_http_ai_guard_ruleset_t   *allow;
    ngx_uint_t                     pii;         /* detector bits */
    ngx_uint_t                     pii_action;
    ngx_str_t                      pii_placeholder;
    ngx_uint_t                     stream_usage;
    ngx_uint_t                     cache_key;
    ngx_uint_t                     dialect;     /* of our own answers */
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


/*
 * What the admission found left of every limit of the request, by item,
 * for the tenant's gauge (ai_guard_limit_remaining); from the request's
 * pool, for a tier with limits only, so that the context of the others
 * stays as small as it was.
 */

typedef struct {
    uint64_t                       at;          /* ms, nginx's clock */
    uint64_t                       remaining[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    uint64_t                       reset_ms[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
} ngx_http_ai_guard_said_t;


/*
 * A budget of the request's scope as its settlement left it, for the
 * budget's gauge: pico-USD used in the window (a UTC day, or a month).
 */

typedef struct {
    uint64_t                       used;
    uint64_t                       limit;
    uint64_t                       window;
    u_char                         period;      /* 'd', 'm'; 0: none */
} ngx_http_ai_guard_budget_note_t;


typedef struct {
    ngx_http_request_t            *request;
    ngx_http_ai_guard_key_t       *key;
    ngx_http_ai_guard_verdict_t    verdict;
    ngx_uint_t                     decision;

    ngx_http_ai_guard_request_parser_t  *parser;
    ngx_http_ai_guard_request_t          req;
    off_t                                body_bytes;
    size_t                               max_body;

    ngx_array_t                   *texts;       /* _prompt_text_t */
    ngx_http_ai_guard_prompt_rule_t  *deny_hit; /* the first deny hit */
    const char                    *pii_hit;     /* the first detector hit */
    u_char                        *found;       /* prefilter scratch */
    size_t                         found_size;
    ngx_int_t                      rule_error;  /* a match limit was hit */

    /* reserve at access, settle at the log phase or the pool cleanup */
    ngx_http_ai_guard_limit_item_t items[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    ngx_uint_t                     nitems;
    ngx_str_t                      scope;
    void                          *scope_entry; /* held: never freed */
    void                          *own;         /* the key's own limits:
                                                   limit_own.c */
    uint64_t                       est_input;
    uint64_t                       est_tokens;
    int64_t                        est_money;
    uint64_t                       final_tokens;
    int64_t                        final_money;

    /* sync=strict: the admission waits for Redis's reply */
    ngx_http_ai_guard_redis_reply_t  redis;
    void                          *lease;       /* sync=lease: its call */

    /* what the x-ratelimit-* headers say */
    uint64_t                       req_limit;
    uint64_t                       req_remaining;
    uint64_t                       req_reset_ms;
    uint64_t                       tok_limit;
    uint64_t                       tok_remaining;
    uint64_t                       tok_reset_ms;
    ngx_http_ai_guard_said_t      *said;        /* of every limit */

    /* the JSON answer in place of nginx's page of a 502, 503 or 504 */
    ngx_buf_t                     *page;

    /* the ledger row reserved before the upstream */
    ngx_str_t                      label;       /* its model label */
    void                          *row;
    uint32_t                       row_day;
    void                          *begun;       /* its journaled estimate */

    /* the meter: the upstream's own usage, or the estimate */
    ngx_http_ai_guard_usage_parser_t  *meter;
    ngx_http_ai_guard_usage_t      usage;
    off_t                          body_out;    /* response body bytes */
    ngx_uint_t                     upstream_status;

    /*
     * nginx's clock, ms: the request's start (r->start_sec, start_msec);
     * from it, its first token (the first content of a stream, the first
     * byte of any other body) and its end (the log phase)
     */
    uint64_t                       start_ms;
    uint64_t                       ttft_ms;
    uint64_t                       response_ms;

    /* the scope's budgets after the settlement: day, month */
    ngx_http_ai_guard_budget_note_t  budget[2];

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
    unsigned                       has_remaining:1;
    unsigned                       finished:1;
    unsigned                       in_flight:1;
    unsigned                       upstream:1;    /* reached the upstream:
                                                     billed, unless it was
                                                     not inference */
    unsigned                       estimated:1;   /* no usage in the reply */
    unsigned                       first_token:1;
    unsigned                       sse:1;         /* metered as a stream */
    unsigned                       response_model:1; /* the upstream named */
    unsigned                       redis_wait:1;     /* a reply is due */
    unsigned                       redis_done:1;     /* the reply is in */
    unsigned                       redis_reserved:1; /* taken in Redis */
    unsigned                       lease_wait:1;     /* for a slice */
    unsigned                       lease_asked:1;    /* asked once */
    unsigned                       leased:1;  /* taken from a slice */
    unsigned                       jwt_verified:1;   /* signature checked */
    unsigned                       jwt_cached:1;     /* from the cache */
    unsigned                       page_sent:1;      /* ctx->page went */
    unsigned                       strip_usage:1; /* the client did not ask
                                                     for the usage chunk */
    unsigned                       strip_pass:1;  /* an event too long to
                                                     hold goes as it is */

    /* ai_guard_stream_usage inject: an event being held, its bounds */
    ngx_http_ai_guard_sse_cut_t    cut;
    u_char                        *hold;
    size_t                         hold_len;
    ngx_chain_t                   *held;       /* sent copies, to reuse */
} ngx_http_ai_guard_ctx_t;


extern ngx_module_t  ngx_http_ai_guard_module;


#endif /* _NGX_HTTP_AI_GUARD_COMMON_H_INCLUDED_ */
