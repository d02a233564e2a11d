
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "src/ngx_http_ai_guard.h"
#include "src/ngx_http_ai_guard_record.h"


#define NGX_HTTP_AI_GUARD_READ_CHUNK  65536


static ngx_int_t ngx_http_ai_guard_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_guard_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_guard_init_process(ngx_cycle_t *cycle);
static void *ngx_http_ai_guard_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ai_guard_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_ai_guard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_guard_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);

static char *ngx_http_ai_guard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_guard_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_guard_tier(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_guard_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_guard_limit_by(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static ngx_int_t ngx_http_ai_guard_add_zones(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf);
static ngx_array_t *ngx_http_ai_guard_split(ngx_conf_t *cf, ngx_str_t *s);
static ngx_int_t ngx_http_ai_guard_tier_limit(ngx_http_ai_guard_tier_t *tier,
    ngx_str_t *param);
static ngx_int_t ngx_http_ai_guard_load_keys(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf);
static void *ngx_http_ai_guard_pool_alloc(void *pool, size_t size);
static void ngx_http_ai_guard_keys_cleanup(void *data);


static ngx_conf_enum_t  ngx_http_ai_guard_modes[] = {
    { ngx_string("enforce"), NGX_HTTP_AI_GUARD_ENFORCE },
    { ngx_string("monitor"), NGX_HTTP_AI_GUARD_MODE_MONITOR },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ai_guard_pii_actions[] = {
    { ngx_string("block"), NGX_HTTP_AI_GUARD_PII_BLOCK },
    { ngx_string("log"), NGX_HTTP_AI_GUARD_PII_LOG },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ai_guard_cache_keys[] = {
    { ngx_string("off"), NGX_HTTP_AI_GUARD_CACHE_OFF },
    { ngx_string("on"), NGX_HTTP_AI_GUARD_CACHE_ON },
    { ngx_string("always"), NGX_HTTP_AI_GUARD_CACHE_ALWAYS },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ai_guard_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ai_guard_commands[] = {

    { ngx_string("ai_guard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_ai_guard,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, enable),
      NULL },

    { ngx_string("ai_guard_keys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_keys,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_key_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, key_header),
      NULL },

    { ngx_string("ai_guard_tier"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ai_guard_tier,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_guard_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_price"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_guard_price,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_usage_days"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_main_conf_t, usage_days),
      NULL },

    { ngx_string("ai_guard_usage_max_models"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_main_conf_t, usage_max_models),
      NULL },

    { ngx_string("ai_guard_metrics_max_series"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_main_conf_t, max_series),
      NULL },

    { ngx_string("ai_guard_usage_event_name"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_main_conf_t, event_name),
      NULL },

    { ngx_string("ai_guard_limit_by"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_ai_guard_limit_by,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, log_level),
      &ngx_http_ai_guard_log_levels },

    { ngx_string("ai_guard_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, mode),
      &ngx_http_ai_guard_modes },

    { ngx_string("ai_guard_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, max_body),
      NULL },

    { ngx_string("ai_guard_prompt_deny"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_guard_prompt_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_prompt_allow"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_guard_prompt_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_prompt_rules"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_prompt_rules_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_pii"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_guard_pii,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_pii_action"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, pii_action),
      &ngx_http_ai_guard_pii_actions },

    { ngx_string("ai_guard_cache_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, cache_key),
      &ngx_http_ai_guard_cache_keys },

    { ngx_string("ai_guard_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ai_guard_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_usage"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ai_guard_usage_cmd,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ai_guard_metrics_cmd,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_guard_module_ctx = {
    ngx_http_ai_guard_preconfiguration,    /* preconfiguration */
    ngx_http_ai_guard_postconfiguration,   /* postconfiguration */

    ngx_http_ai_guard_create_main_conf,    /* create main configuration */
    ngx_http_ai_guard_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_guard_create_loc_conf,     /* create location configuration */
    ngx_http_ai_guard_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_ai_guard_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_guard_module_ctx,         /* module context */
    ngx_http_ai_guard_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ai_guard_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_ai_guard_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ai_guard_add_variables(cf);
}


static ngx_int_t
ngx_http_ai_guard_postconfiguration(ngx_conf_t *cf)
{
    ngx_array_t                    *a;
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_guard_module);

    if (!amcf->enabled) {
        return NGX_OK;
    }

    if (ngx_http_ai_guard_add_zones(cf, amcf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_guard_access_handler;

    /*
     * the log handler goes first, as lua-nginx-module's does, so that the
     * variables are settled before access_log writes them
     */

    a = &cmcf->phases[NGX_HTTP_LOG_PHASE].handlers;

    h = ngx_array_push(a);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = a->elts;
    ngx_memmove(&h[1], &h[0], (a->nelts - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_ai_guard_log_handler;

    if (ngx_http_ai_guard_filter_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_guard_request_body_filter_init(cf);
}


static ngx_int_t
ngx_http_ai_guard_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_guard_module);

    if (amcf == NULL || !amcf->enabled) {
        return NGX_OK;
    }

    if (ngx_http_ai_guard_init_digest(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_guard_redis_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_guard_prompt_init(cycle);
}


static void *
ngx_http_ai_guard_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     amcf->keys_file = { 0, NULL };
     *     amcf->keys = NULL;
     *     amcf->enabled = 0;
     *     amcf->event_name = { 0, NULL };
     */

    amcf->usage_days = NGX_CONF_UNSET_UINT;
    amcf->usage_max_models = NGX_CONF_UNSET_UINT;
    amcf->max_series = NGX_CONF_UNSET_UINT;

    if (ngx_array_init(&amcf->tiers, cf->pool, 4,
                       sizeof(ngx_http_ai_guard_tier_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&amcf->prices, cf->pool, 4,
                       sizeof(ngx_http_ai_guard_price_rule_t))
        != NGX_OK)
    {
        return NULL;
    }

    return amcf;
}


static char *
ngx_http_ai_guard_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    ngx_uint_t                 i;
    ngx_http_ai_guard_tier_t  *tier;

    ngx_conf_init_uint_value(amcf->usage_days, 35);
    ngx_conf_init_uint_value(amcf->usage_max_models, 32);
    ngx_conf_init_uint_value(amcf->max_series, 1000);

    if (amcf->event_name.data == NULL) {
        ngx_str_set(&amcf->event_name, "ai_tokens");
    }

    ngx_http_ai_guard_price_init(amcf);

    /* a budget of requests that cost nothing would never hold */

    tier = amcf->tiers.elts;

    for (i = 0; amcf->prices.nelts == 0 && i < amcf->tiers.nelts; i++) {
        if (tier[i].limits[NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY]
            || tier[i].limits[NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH])
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_tier \"%V\" has a budget, but no "
                               "ai_guard_price prices a model: add "
                               "ai_guard_price lines (\"ai_guard_price * "
                               "input=... output=...\" prices every model)",
                               &tier[i].name);
            return NGX_CONF_ERROR;
        }
    }

    if (amcf->keys_file.len == 0) {
        return NGX_CONF_OK;
    }

    if (ngx_http_ai_guard_load_keys(cf, amcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_ai_guard_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_guard_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     alcf->key_header = { 0, NULL };
     *     alcf->deny = NULL;
     *     alcf->allow = NULL;
     *     alcf->limit_by_value = NULL;
     *     alcf->limit_by_global = 0;
     */

    alcf->enable = NGX_CONF_UNSET;
    alcf->log_level = NGX_CONF_UNSET_UINT;
    alcf->mode = NGX_CONF_UNSET_UINT;
    alcf->max_body = NGX_CONF_UNSET_SIZE;
    alcf->pii = NGX_CONF_UNSET_UINT;
    alcf->pii_action = NGX_CONF_UNSET_UINT;
    alcf->cache_key = NGX_CONF_UNSET_UINT;
    alcf->limit_by = NGX_CONF_UNSET_UINT;
    alcf->limit_by_max = NGX_CONF_UNSET_UINT;

    return alcf;
}


static char *
ngx_http_ai_guard_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_guard_loc_conf_t *prev = parent;
    ngx_http_ai_guard_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->key_header, prev->key_header, "");
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_INFO);
    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_HTTP_AI_GUARD_ENFORCE);
    ngx_conf_merge_size_value(conf->max_body, prev->max_body,
                              NGX_HTTP_AI_GUARD_MAX_BODY);
    ngx_conf_merge_uint_value(conf->pii, prev->pii, 0);
    ngx_conf_merge_uint_value(conf->pii_action, prev->pii_action,
                              NGX_HTTP_AI_GUARD_PII_BLOCK);
    ngx_conf_merge_uint_value(conf->cache_key, prev->cache_key,
                              NGX_HTTP_AI_GUARD_CACHE_OFF);

    if (conf->limit_by == NGX_CONF_UNSET_UINT) {
        conf->limit_by = (prev->limit_by == NGX_CONF_UNSET_UINT)
                         ? NGX_HTTP_AI_GUARD_LIMIT_BY_TENANT : prev->limit_by;
        conf->limit_by_value = prev->limit_by_value;
        conf->limit_by_max = prev->limit_by_max;
        conf->limit_by_global = prev->limit_by_global;
    }

    ngx_conf_merge_uint_value(conf->limit_by_max, prev->limit_by_max, 1000);

    if (ngx_http_ai_guard_prompt_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /*
     * "ai_guard on" needs "ai_guard_keys" or "ai_guard_jwt on": the check
     * is in ngx_http_ai_guard_jwt_module's merge, which runs after this
     * one and sees both.
     */

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_guard(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                           *rv;
    ngx_http_ai_guard_loc_conf_t   *alcf = conf;
    ngx_http_ai_guard_main_conf_t  *amcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (alcf->enable) {
        amcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_ai_guard_module);
        amcf->enabled = 1;
    }

    return NGX_CONF_OK;
}


/* ai_guard_zone <name> <size> [limits=<size>] [ledger=<size>] [series=..] */

static char *
ngx_http_ai_guard_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    ssize_t      size;
    ngx_str_t   *value, s;
    ngx_uint_t   i, part;

    static char  *parts[] = { "limits=", "ledger=", "series=" };

    if (amcf->zone_name.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (3 * NGX_HTTP_AI_GUARD_PART_MIN))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\": at least 96k, "
                           "32k for each of its three parts", &value[2]);
        return NGX_CONF_ERROR;
    }

    amcf->zone_name = value[1];
    amcf->zone_size = size;

    for (i = 3; i < cf->args->nelts; i++) {

        for (part = 0; part < NGX_HTTP_AI_GUARD_PARTS; part++) {
            if (ngx_strncmp(value[i].data, parts[part], 7) == 0) {
                break;
            }
        }

        if (part == NGX_HTTP_AI_GUARD_PARTS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": limits=, "
                               "ledger= or series=", &value[i]);
            return NGX_CONF_ERROR;
        }

        s.data = value[i].data + 7;
        s.len = value[i].len - 7;

        size = ngx_parse_size(&s);

        if (size == NGX_ERROR || size < NGX_HTTP_AI_GUARD_PART_MIN) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid zone part size \"%V\": at least 32k",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        amcf->part_size[part] = size;
    }

    return NGX_CONF_OK;
}


/*
 * The three zones of ai_guard_zone (docs/state.md).  The series part must
 * hold ai_guard_metrics_max_series series of the largest size; the parts
 * not given share what is left, half and half.
 */

static ngx_int_t
ngx_http_ai_guard_add_zones(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf)
{
    size_t       need, fixed, rest, *size;
    ngx_str_t    name;
    ngx_uint_t   i, n, unset;

    static ngx_str_t  suffix[] = {
        ngx_string(":limits"), ngx_string(":ledger"), ngx_string(":series")
    };

    if (amcf->zone_name.data == NULL) {
        ngx_str_set(&amcf->zone_name, "ai_guard");
        amcf->zone_size = NGX_HTTP_AI_GUARD_ZONE_SIZE;
    }

    size = amcf->part_size;

    /*
     * Series of the largest slab class in whole pages, a page of each
     * smaller class and the zone's own, each page with its descriptor,
     * and the pool's header and alignment.
     */

    n = ngx_pagesize / NGX_HTTP_AI_GUARD_SERIES_BYTES;

    need = ((amcf->max_series + n - 1) / n + 4)
           * (ngx_pagesize + sizeof(ngx_slab_page_t))
           + 2 * ngx_pagesize;

    if (size[NGX_HTTP_AI_GUARD_PART_SERIES] == 0) {
        size[NGX_HTTP_AI_GUARD_PART_SERIES] = ngx_max(need,
                                                NGX_HTTP_AI_GUARD_PART_MIN);
    }

    if (size[NGX_HTTP_AI_GUARD_PART_SERIES] < need) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_zone \"%V\": the series part (%uzk) "
                           "cannot hold ai_guard_metrics_max_series %ui "
                           "(it needs %uzk): raise series= or lower "
                           "ai_guard_metrics_max_series", &amcf->zone_name,
                           size[NGX_HTTP_AI_GUARD_PART_SERIES] / 1024,
                           amcf->max_series, need / 1024 + 1);
        return NGX_ERROR;
    }

    fixed = 0;
    unset = 0;

    for (i = 0; i < NGX_HTTP_AI_GUARD_PARTS; i++) {
        fixed += size[i];
        unset += (size[i] == 0);
    }

    if (fixed > amcf->zone_size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_zone \"%V\" %uzk is smaller than its "
                           "parts, which add up to %uzk (the series part "
                           "%uzk for ai_guard_metrics_max_series %ui)",
                           &amcf->zone_name, amcf->zone_size / 1024,
                           fixed / 1024 + 1,
                           size[NGX_HTTP_AI_GUARD_PART_SERIES] / 1024,
                           amcf->max_series);
        return NGX_ERROR;
    }

    rest = amcf->zone_size - fixed;

    for (i = 0; i < NGX_HTTP_AI_GUARD_PARTS; i++) {

        if (size[i] == 0) {
            size[i] = rest / unset;
        }

        if (size[i] < NGX_HTTP_AI_GUARD_PART_MIN) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_zone \"%V\" %uzk leaves its %*s "
                               "part %uzk, under the minimum of 32k",
                               &amcf->zone_name, amcf->zone_size / 1024,
                               suffix[i].len - 1, suffix[i].data + 1,
                               size[i] / 1024);
            return NGX_ERROR;
        }

        name.len = amcf->zone_name.len + suffix[i].len;
        name.data = ngx_pnalloc(cf->pool, name.len);
        if (name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ngx_cpymem(name.data, amcf->zone_name.data,
                              amcf->zone_name.len),
                   suffix[i].data, suffix[i].len);

        if (ngx_http_ai_guard_zone_add(cf, &amcf->zones[i], &name, size[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ngx_http_ai_guard_limiter_zone(amcf);
    ngx_http_ai_guard_ledger_zone(amcf);

    return NGX_OK;
}


/* ai_guard_limit_by key | tenant | <complex value> [global] [max=<n>] */

static char *
ngx_http_ai_guard_limit_by(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_loc_conf_t *alcf = conf;

    ngx_int_t                          n;
    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_compile_complex_value_t   ccv;

    if (alcf->limit_by != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "key") == 0
        || ngx_strcmp(value[1].data, "tenant") == 0)
    {
        if (cf->args->nelts > 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": \"global\" and "
                               "\"max=\" are for values with variables",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        alcf->limit_by = (value[1].data[0] == 'k')
                         ? NGX_HTTP_AI_GUARD_LIMIT_BY_KEY
                         : NGX_HTTP_AI_GUARD_LIMIT_BY_TENANT;
        alcf->limit_by_max = 0;

        return NGX_CONF_OK;
    }

    alcf->limit_by_value = ngx_palloc(cf->pool,
                                      sizeof(ngx_http_complex_value_t));
    if (alcf->limit_by_value == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = alcf->limit_by_value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    alcf->limit_by = NGX_HTTP_AI_GUARD_LIMIT_BY_VALUE;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "global") == 0) {
            alcf->limit_by_global = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\": max= is a "
                                   "number of values, at least 1",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            alcf->limit_by_max = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": \"global\" or "
                           "\"max=<number>\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (alcf->limit_by_max == NGX_CONF_UNSET_UINT) {
        alcf->limit_by_max = 1000;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_guard_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    ngx_str_t  *value;

    if (amcf->keys_file.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    amcf->keys_file = value[1];

    if (ngx_conf_full_name(cf->cycle, &amcf->keys_file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_guard_tier(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    off_t                      n;
    ssize_t                    size;
    ngx_str_t                 *value, s;
    ngx_uint_t                 i;
    ngx_http_ai_guard_tier_t  *tier;

    value = cf->args->elts;

    tier = amcf->tiers.elts;

    for (i = 0; i < amcf->tiers.nelts; i++) {
        if (tier[i].name.len == value[1].len
            && ngx_strncmp(tier[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate tier \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    tier = ngx_array_push(&amcf->tiers);
    if (tier == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(tier, sizeof(ngx_http_ai_guard_tier_t));

    tier->name = value[1];
    tier->max_tokens = -1;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "models=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            tier->models = ngx_http_ai_guard_split(cf, &s);
            if (tier->models == NULL) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_tokens=", 11) == 0) {
            n = ngx_atoof(value[i].data + 11, value[i].len - 11);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            tier->max_tokens = n;
            continue;
        }

        if (ngx_http_ai_guard_tier_limit(tier, &value[i]) == NGX_OK) {
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_body=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size == 0) {
                goto invalid;
            }

            tier->max_body = size;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * rpm= rph= rpd= tpm= tph= tpd= tokens_month= concurrency= and
 * budget=<USD>/day|month; NGX_DECLINED: not a limit parameter,
 * NGX_ERROR: a limit with a bad value
 */

static ngx_int_t
ngx_http_ai_guard_tier_limit(ngx_http_ai_guard_tier_t *tier,
    ngx_str_t *param)
{
    u_char                              *eq;
    off_t                                n;
    int64_t                              pico;
    ngx_str_t                            name;
    ngx_uint_t                           k;
    ngx_http_ai_guard_budget_period_e    period;

    eq = ngx_strlchr(param->data, param->data + param->len, '=');
    if (eq == NULL) {
        return NGX_DECLINED;
    }

    name.data = param->data;
    name.len = eq - param->data;
    eq++;

    if (name.len == 6 && ngx_strncmp(name.data, "budget", 6) == 0) {
        if (ngx_http_ai_guard_budget_parse(eq, param->data + param->len - eq,
                                           &pico, &period)
            != 0 || pico <= 0)
        {
            return NGX_ERROR;
        }

        k = (period == NGX_HTTP_AI_GUARD_BUDGET_DAY)
            ? NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY
            : NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH;

        tier->limits[k] = pico;
        tier->has_limits = 1;

        return NGX_OK;
    }

    for (k = NGX_HTTP_AI_GUARD_LIMIT_RPM;
         k <= NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY;
         k++)
    {
        if (ngx_strlen(ngx_http_ai_guard_limit_name(k)) == name.len
            && ngx_strncmp(ngx_http_ai_guard_limit_name(k), name.data,
                           name.len)
               == 0)
        {
            n = ngx_atoof(eq, param->data + param->len - eq);
            if (n <= 0 || (uint64_t) n > NGX_HTTP_AI_GUARD_LIMIT_MAX) {
                return NGX_ERROR;
            }

            tier->limits[k] = n;
            tier->has_limits = 1;

            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* "a,b,c" into an array of ngx_str_t; empty items are an error */

static ngx_array_t *
ngx_http_ai_guard_split(ngx_conf_t *cf, ngx_str_t *s)
{
    u_char       *p, *last, *comma;
    ngx_str_t    *item;
    ngx_array_t  *a;

    a = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
    if (a == NULL) {
        return NULL;
    }

    p = s->data;
    last = s->data + s->len;

    for ( ;; ) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (comma == p) {
            return NULL;
        }

        item = ngx_array_push(a);
        if (item == NULL) {
            return NULL;
        }

        item->data = p;
        item->len = comma - p;

        if (comma == last) {
            return a;
        }

        p = comma + 1;
    }
}


static ngx_int_t
ngx_http_ai_guard_load_keys(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf)
{
    u_char                           *buf;
    ssize_t                           n;
    ngx_fd_t                          fd;
    ngx_int_t                         rc;
    ngx_uint_t                        i;
    ngx_pool_cleanup_t               *cln;
    ngx_http_ai_guard_key_t          *k;
    ngx_http_ai_guard_tier_t         *tier;
    ngx_http_ai_guard_keys_parser_t  *kp;

    fd = ngx_open_file(amcf->keys_file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN,
                       0);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", &amcf->keys_file);
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    buf = ngx_palloc(cf->temp_pool, NGX_HTTP_AI_GUARD_READ_CHUNK);
    if (buf == NULL) {
        goto done;
    }

    kp = ngx_http_ai_guard_keys_parser_create(ngx_http_ai_guard_pool_alloc,
                                              cf->pool);
    if (kp == NULL) {
        goto done;
    }

    cln = ngx_pool_cleanup_add(cf->temp_pool, 0);
    if (cln == NULL) {
        ngx_http_ai_guard_keys_parser_free(kp);
        goto done;
    }

    cln->handler = ngx_http_ai_guard_keys_cleanup;
    cln->data = kp;

    for ( ;; ) {
        n = ngx_read_fd(fd, buf, NGX_HTTP_AI_GUARD_READ_CHUNK);

        if (n == -1) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                          ngx_read_fd_n " \"%V\" failed", &amcf->keys_file);
            goto done;
        }

        if (n == 0) {
            break;
        }

        if (ngx_http_ai_guard_keys_parse(kp, buf, n) != 0) {
            goto invalid;
        }
    }

    amcf->keys = ngx_http_ai_guard_keys_finish(kp);
    if (amcf->keys == NULL) {
        goto invalid;
    }

    /* tiers are all declared by now: the http block has been read */

    for (k = amcf->keys->first; k; k = k->next) {

        if (k->tier.len == 0) {
            continue;
        }

        tier = amcf->tiers.elts;

        for (i = 0; i < amcf->tiers.nelts; i++) {
            if (tier[i].name.len == k->tier.len
                && ngx_strncmp(tier[i].name.data, k->tier.data, k->tier.len)
                   == 0)
            {
                k->tier_conf = &tier[i];
                break;
            }
        }

        if (k->tier_conf == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "ai_guard_keys \"%V\": entry %uz (\"%*s\"): "
                          "tier \"%*s\" is not declared by ai_guard_tier",
                          &amcf->keys_file, k->index, k->id.len, k->id.data,
                          k->tier.len, k->tier.data);
            goto done;
        }
    }

    rc = NGX_OK;
    goto done;

invalid:

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "ai_guard_keys \"%V\": %s",
                  &amcf->keys_file, ngx_http_ai_guard_keys_error(kp));

done:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &amcf->keys_file);
    }

    return rc;
}


static void *
ngx_http_ai_guard_pool_alloc(void *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


static void
ngx_http_ai_guard_keys_cleanup(void *data)
{
    ngx_http_ai_guard_keys_parser_free(data);
}
