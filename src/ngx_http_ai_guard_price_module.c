
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_price_module.h"


/* the first ai_guard_price whose glob matches the model */

int64_t
ngx_http_ai_guard_price_of(ngx_http_request_t *r, u_char *model, size_t len,
    uint64_t input, uint64_t output, uint64_t cached, uint64_t cache_write)
{
    ngx_http_ai_guard_price_t  *price;

    price = ngx_http_ai_guard_price_find(r, model, len);

    if (price == NULL) {
        /* no ai_guard_price at all: nothing is priced */
        return 0;
    }

    return ngx_http_ai_guard_price_cost(price, input, output, cached,
                                        cache_write);
}


/*
 * The price of the first ai_guard_price whose glob matches the model; a
 * model none matches costs the highest price of each kind, so that an
 * invented model name is never free.  NULL: no ai_guard_price at all.
 */

ngx_http_ai_guard_price_t *
ngx_http_ai_guard_price_find(ngx_http_request_t *r, u_char *model,
    size_t len)
{
    ngx_uint_t                      i;
    ngx_http_ai_guard_price_rule_t *rule;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->prices.nelts == 0) {
        return NULL;
    }

    rule = amcf->prices.elts;

    for (i = 0; i < amcf->prices.nelts; i++) {
        if (ngx_http_ai_guard_glob_match(rule[i].glob.data, rule[i].glob.len,
                                         model, len))
        {
            return &rule[i].price;
        }
    }

    return &amcf->price_max;
}


/* the highest price of each kind, for the models no glob matches */

void
ngx_http_ai_guard_price_init(ngx_http_ai_guard_main_conf_t *amcf)
{
    int64_t                          v;
    ngx_uint_t                       i;
    ngx_http_ai_guard_price_t       *m, *p;
    ngx_http_ai_guard_price_rule_t  *rule;

    m = &amcf->price_max;

    m->input = 0;
    m->output = 0;
    m->cached_input = 0;
    m->cache_write = 0;

    rule = amcf->prices.elts;

    for (i = 0; i < amcf->prices.nelts; i++) {
        p = &rule[i].price;

        m->input = ngx_max(m->input, p->input);
        m->output = ngx_max(m->output, p->output);

        v = (p->cached_input >= 0) ? p->cached_input : p->input;
        m->cached_input = ngx_max(m->cached_input, v);

        v = (p->cache_write >= 0) ? p->cache_write : p->input;
        m->cache_write = ngx_max(m->cache_write, v);
    }
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
                               "ai_guard_price \"%V\": unknown parameter "
                               "\"%V\", it must be input=, output=, "
                               "cached_input= or cache_write=", &value[1],
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=') + 1;

        if (ngx_http_ai_guard_price_parse(p, value[i].data + value[i].len - p,
                                          field)
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_price \"%V\": invalid price "
                               "\"%V\", it must be USD per million tokens "
                               "with at most 6 decimals, such as "
                               "input=2.50", &value[1], &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    if (rule->price.input == NGX_HTTP_AI_GUARD_PRICE_UNSET
        || rule->price.output == NGX_HTTP_AI_GUARD_PRICE_UNSET)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_price \"%V\": input= and output= "
                           "are required, such as \"ai_guard_price %V "
                           "input=2.50 output=10\"", &value[1], &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
