
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard.h"


/* completion tokens reserved when neither the request nor its tier caps */
#define NGX_HTTP_AI_GUARD_DEFAULT_OUTPUT  1024


typedef struct {
    ngx_http_ai_guard_counter_t    counters[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
} ngx_http_ai_guard_scope_t;


static ngx_int_t ngx_http_ai_guard_scope_key(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx);
static void ngx_http_ai_guard_limit_headers(ngx_http_ai_guard_ctx_t *ctx,
    uint64_t now);


/* the cost class of each limit: a request, tokens, money, a slot */

static ngx_uint_t  ngx_http_ai_guard_limit_unit[] = {
    0,  /* none */
    1,  /* rpm */
    1,  /* rph */
    1,  /* rpd */
    2,  /* tpm */
    2,  /* tph */
    2,  /* tpd */
    2,  /* tokens_month */
    1,  /* concurrency */
    3,  /* budget_day */
    3   /* budget_month */
};


ngx_int_t
ngx_http_ai_guard_limiter_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v)
{
    int                                rc;
    int64_t                            out;
    uint64_t                           now;
    ngx_uint_t                         i, n;
    ngx_http_ai_guard_tier_t          *tier;
    ngx_http_ai_guard_scope_t         *scope;
    ngx_http_ai_guard_main_conf_t     *amcf;
    ngx_http_ai_guard_limit_item_t    *it;
    ngx_http_ai_guard_limit_result_t   res;

    tier = ctx->key ? ctx->key->tier_conf : NULL;

    /*
     * The estimate: the prompt, plus the completion the request may ask
     * for, else what its tier caps it at, else a default; times n.
     */

    out = ctx->req.max_tokens;

    if (out < 0) {
        out = (tier && tier->max_tokens >= 0)
              ? tier->max_tokens : NGX_HTTP_AI_GUARD_DEFAULT_OUTPUT;
    }

    if (ctx->req.n > 1) {
        out *= ctx->req.n;
    }

    ctx->est_input = ctx->req.estimate;
    ctx->est_tokens = ctx->req.estimate + out;
    ctx->est_money = ngx_http_ai_guard_price_of(r, ctx->req.model,
                                                ctx->req.model_len,
                                                ctx->req.estimate, out, 0, 0);

    if (tier == NULL || !tier->has_limits) {
        return NGX_OK;
    }

    if (ngx_http_ai_guard_scope_key(r, alcf, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    n = 0;

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        if (tier->limits[i] == 0) {
            continue;
        }

        it = &ctx->items[n++];

        it->kind = i;
        it->limit = tier->limits[i];
        it->window = 0;

        switch (ngx_http_ai_guard_limit_unit[i]) {

        case 1:
            it->cost = 1;
            break;

        case 2:
            it->cost = ctx->est_tokens;
            break;

        default:
            it->cost = ctx->est_money;
        }
    }

    ctx->nitems = n;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&amcf->zone.shpool->mutex);

    scope = ngx_http_ai_guard_zone_get(&amcf->zone,
                                       NGX_HTTP_AI_GUARD_ENTRY_LIMIT,
                                       ctx->scope.data, ctx->scope.len,
                                       sizeof(ngx_http_ai_guard_scope_t),
                                       ngx_http_ai_guard_evictable,
                                       r->connection->log);

    if (scope == NULL) {
        /* the zone is exhausted (ALERT logged): serve unlimited */
        ngx_shmtx_unlock(&amcf->zone.shpool->mutex);
        ctx->nitems = 0;
        return NGX_OK;
    }

    for (i = 0; i < n; i++) {
        ctx->items[i].counter = &scope->counters[ctx->items[i].kind];
    }

    rc = ngx_http_ai_guard_limit_reserve(ctx->items, n, now, &res);

    if (rc != NGX_HTTP_AI_GUARD_LIMIT_OK
        && alcf->mode == NGX_HTTP_AI_GUARD_MODE_MONITOR)
    {
        /* monitor mode: the request goes on, and so it is counted */
        ngx_http_ai_guard_limit_take(ctx->items, n);
        ctx->reserved = 1;
    }

    if (rc == NGX_HTTP_AI_GUARD_LIMIT_OK) {
        ctx->reserved = 1;
    }

    ngx_http_ai_guard_limit_headers(ctx, now);

    ngx_shmtx_unlock(&amcf->zone.shpool->mutex);

    for (i = 0; i < n; i++) {
        ctx->items[i].counter = NULL;
    }

    if (rc == NGX_HTTP_AI_GUARD_LIMIT_OK) {
        return NGX_OK;
    }

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_TOO_MANY_REQUESTS,
                          (char *) ngx_http_ai_guard_limit_code(res.kind),
                          NULL);

    v->reason.data = (u_char *) ngx_http_ai_guard_limit_name(res.kind);
    v->reason.len = ngx_strlen(v->reason.data);

    if (rc == NGX_HTTP_AI_GUARD_LIMIT_NEVER) {
        v->message.data = ngx_pnalloc(r->pool, 128);
        if (v->message.data == NULL) {
            return NGX_ERROR;
        }

        v->message.len = ngx_snprintf(v->message.data, 128,
                                      "This request alone exceeds the %V "
                                      "limit of this API key's tier; ask "
                                      "for fewer tokens.", &v->reason)
                         - v->message.data;
        return NGX_DECLINED;
    }

    v->retry_ms = res.retry_ms;
    v->retry = 1;

    v->message.data = ngx_pnalloc(r->pool, 160);
    if (v->message.data == NULL) {
        return NGX_ERROR;
    }

    v->message.len = ngx_snprintf(v->message.data, 160,
                                  "Rate limit reached for %V (limit %uL). "
                                  "Please try again in %uLms.",
                                  &v->reason,
                                  ctx->items[res.index].limit,
                                  res.retry_ms)
                     - v->message.data;

    return NGX_DECLINED;
}


/*
 * Correct the reservation to what the request really used; runs once, at
 * the log phase or, on any path that skips it, from the pool cleanup.
 */

void
ngx_http_ai_guard_limiter_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    uint64_t                        now;
    ngx_uint_t                      i;
    ngx_http_ai_guard_scope_t      *scope;
    ngx_http_ai_guard_main_conf_t  *amcf;

    if (!ctx->reserved) {
        return;
    }

    ctx->reserved = 0;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&amcf->zone.shpool->mutex);

    /* the entry may have been evicted since: then nothing is owed */

    scope = ngx_http_ai_guard_zone_find(&amcf->zone,
                                        NGX_HTTP_AI_GUARD_ENTRY_LIMIT,
                                        ctx->scope.data, ctx->scope.len);

    if (scope) {
        for (i = 0; i < ctx->nitems; i++) {
            ctx->items[i].counter = &scope->counters[ctx->items[i].kind];
        }

        ngx_http_ai_guard_limit_settle(ctx->items, ctx->nitems, now,
                                       ctx->final_tokens, ctx->final_money);

        for (i = 0; i < ctx->nitems; i++) {
            ctx->items[i].counter = NULL;
        }
    }

    ngx_shmtx_unlock(&amcf->zone.shpool->mutex);
}


static ngx_int_t
ngx_http_ai_guard_scope_key(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    u_char                   *p;
    ngx_str_t                 value;
    ngx_http_ai_guard_str_t  *s;

    switch (alcf->limit_by) {

    case NGX_HTTP_AI_GUARD_LIMIT_BY_KEY:
        s = &ctx->key->id;
        value.data = s->data;
        value.len = s->len;
        break;

    case NGX_HTTP_AI_GUARD_LIMIT_BY_TENANT:
        s = &ctx->key->tenant;
        value.data = s->data;
        value.len = s->len;
        break;

    default:
        if (ngx_http_complex_value(r, alcf->limit_by_value, &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (value.len > NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD) {
            value.len = NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD;
        }
    }

    /* "t:acme", "k:acme-1", "v:...": scopes of one kind never collide */

    p = ngx_pnalloc(r->pool, 2 + value.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p[0] = "ktv"[alcf->limit_by];
    p[1] = ':';
    ngx_memcpy(p + 2, value.data, value.len);

    ctx->scope.data = p;
    ctx->scope.len = 2 + value.len;

    return NGX_OK;
}


/* an entry with requests in flight holds their slots: never evicted */

ngx_int_t
ngx_http_ai_guard_evictable(ngx_uint_t kind, void *payload)
{
    ngx_http_ai_guard_scope_t  *scope = payload;

    if (kind != NGX_HTTP_AI_GUARD_ENTRY_LIMIT) {
        return 1;
    }

    return scope->counters[NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY].level == 0;
}


/*
 * OpenAI's x-ratelimit-* headers speak of requests and tokens: the
 * shortest window of each the tier limits is the one they describe.
 */

static void
ngx_http_ai_guard_limit_headers(ngx_http_ai_guard_ctx_t *ctx, uint64_t now)
{
    ngx_uint_t                       i, unit;
    ngx_http_ai_guard_limit_item_t  *it;

    for (i = 0; i < ctx->nitems; i++) {
        it = &ctx->items[i];
        unit = ngx_http_ai_guard_limit_unit[it->kind];

        if (unit == 1 && !ctx->has_req_limit
            && it->kind != NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY)
        {
            ctx->has_req_limit = 1;
            ctx->req_limit = it->limit;
            ctx->req_remaining = ngx_http_ai_guard_limit_remaining(it, now);
            ctx->req_reset_ms = ngx_http_ai_guard_limit_reset_ms(it, now);

        } else if (unit == 2 && !ctx->has_tok_limit) {
            ctx->has_tok_limit = 1;
            ctx->tok_limit = it->limit;
            ctx->tok_remaining = ngx_http_ai_guard_limit_remaining(it, now);
            ctx->tok_reset_ms = ngx_http_ai_guard_limit_reset_ms(it, now);
        }
    }
}


uint64_t
ngx_http_ai_guard_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/* the first ai_guard_price whose glob matches the model */

int64_t
ngx_http_ai_guard_price_of(ngx_http_request_t *r, u_char *model, size_t len,
    uint64_t input, uint64_t output, uint64_t cached, uint64_t cache_write)
{
    ngx_uint_t                      i;
    ngx_http_ai_guard_price_rule_t *rule;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    rule = amcf->prices.elts;

    for (i = 0; i < amcf->prices.nelts; i++) {
        if (ngx_http_ai_guard_glob_match(rule[i].glob.data, rule[i].glob.len,
                                         model, len))
        {
            return ngx_http_ai_guard_price_cost(&rule[i].price, input,
                                                output, cached, cache_write);
        }
    }

    return 0;
}


/* ai_guard_price <glob> input=<USD per 1M> output=<...> [cached_input=..] */

char *
ngx_http_ai_guard_price(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t *amcf = conf;

    u_char                          *p;
    int64_t                         *field;
    ngx_str_t                       *value;
    ngx_uint_t                       i;
    ngx_http_ai_guard_price_rule_t  *rule;

    value = cf->args->elts;

    rule = ngx_array_push(&amcf->prices);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    rule->glob = value[1];
    rule->price.input = NGX_HTTP_AI_GUARD_PRICE_UNSET;
    rule->price.output = NGX_HTTP_AI_GUARD_PRICE_UNSET;
    rule->price.cached_input = NGX_HTTP_AI_GUARD_PRICE_UNSET;
    rule->price.cache_write = NGX_HTTP_AI_GUARD_PRICE_UNSET;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "input=", 6) == 0) {
            field = &rule->price.input;

        } else if (ngx_strncmp(value[i].data, "output=", 7) == 0) {
            field = &rule->price.output;

        } else if (ngx_strncmp(value[i].data, "cached_input=", 13) == 0) {
            field = &rule->price.cached_input;

        } else if (ngx_strncmp(value[i].data, "cache_write=", 12) == 0) {
            field = &rule->price.cache_write;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=') + 1;

        if (ngx_http_ai_guard_price_parse(p, value[i].data + value[i].len - p,
                                          field)
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid price \"%V\": USD per 1M tokens, "
                               "at most 6 decimals", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    if (rule->price.input == NGX_HTTP_AI_GUARD_PRICE_UNSET
        || rule->price.output == NGX_HTTP_AI_GUARD_PRICE_UNSET)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_guard_price %V\" needs input= and output=",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
