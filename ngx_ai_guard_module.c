
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "src/ngx_http_ai_guard_common.h"
#include "src/ngx_http_ai_guard_access.h"
#include "src/ngx_http_ai_guard_admin.h"
#include "src/ngx_http_ai_guard_conf.h"
#include "src/ngx_http_ai_guard_ctx.h"
#include "src/ngx_http_ai_guard_directive.h"
#include "src/ngx_http_ai_guard_filter.h"
#include "src/ngx_http_ai_guard_json.h"
#include "src/ngx_http_ai_guard_keys_module.h"
#include "src/ngx_http_ai_guard_price_module.h"
#include "src/ngx_http_ai_guard_redact.h"
#include "src/ngx_http_ai_guard_redis.h"
#include "src/ngx_http_ai_guard_ledger.h"
#include "src/ngx_http_ai_guard_ledger_journal.h"
#include "src/ngx_http_ai_guard_report_metrics.h"
#include "src/ngx_http_ai_guard_report_usage.h"
#include "src/ngx_http_ai_guard_report_self.h"
#include "src/ngx_http_ai_guard_request_module.h"
#include "src/ngx_http_ai_guard_rules_module.h"
#include "src/ngx_http_ai_guard_store.h"
#include "src/ngx_http_ai_guard_store_file.h"
#include "src/ngx_http_ai_guard_util.h"
#include "src/ngx_http_ai_guard_variables.h"


static ngx_int_t ngx_http_ai_guard_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_guard_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_guard_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_ai_guard_init_process(ngx_cycle_t *cycle);
static void *ngx_http_ai_guard_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ai_guard_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_ai_guard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_guard_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);


static ngx_conf_enum_t  ngx_http_ai_guard_modes[] = {
    { ngx_string("enforce"), NGX_HTTP_AI_GUARD_ENFORCE },
    { ngx_string("monitor"), NGX_HTTP_AI_GUARD_MODE_MONITOR },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ai_guard_pii_actions[] = {
    { ngx_string("block"), NGX_HTTP_AI_GUARD_PII_BLOCK },
    { ngx_string("log"), NGX_HTTP_AI_GUARD_PII_LOG },
    { ngx_string("redact"), NGX_HTTP_AI_GUARD_PII_REDACT },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ai_guard_stream_usages[] = {
    { ngx_string("off"), NGX_HTTP_AI_GUARD_STREAM_USAGE_OFF },
    { ngx_string("inject"), NGX_HTTP_AI_GUARD_STREAM_USAGE_INJECT },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ai_guard_dialects[] = {
    { ngx_string("openai"), NGX_HTTP_AI_GUARD_DIALECT_OPENAI },
    { ngx_string("anthropic"), NGX_HTTP_AI_GUARD_DIALECT_ANTHROPIC },
    { ngx_string("auto"), NGX_HTTP_AI_GUARD_DIALECT_AUTO },
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


static ngx_http_ai_guard_num_bounds_t  ngx_http_ai_guard_days_bounds = {
    1, 3660
};


static ngx_http_ai_guard_num_bounds_t  ngx_http_ai_guard_models_bounds = {
    1, 65536
};


static ngx_http_ai_guard_num_bounds_t  ngx_http_ai_guard_series_bounds = {
    1, 1048576
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
      ngx_http_ai_guard_set_header_name,
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
      ngx_http_ai_guard_set_num,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_main_conf_t, usage_days),
      &ngx_http_ai_guard_days_bounds },

    { ngx_string("ai_guard_usage_max_models"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_set_num,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_main_conf_t, usage_max_models),
      &ngx_http_ai_guard_models_bounds },

    { ngx_string("ai_guard_metrics_max_series"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_max_series,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_main_conf_t, max_series),
      &ngx_http_ai_guard_series_bounds },

    { ngx_string("ai_guard_metrics_max_histograms"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_main_conf_t, max_histograms),
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
      ngx_http_ai_guard_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, log_level),
      &ngx_http_ai_guard_log_levels },

    { ngx_string("ai_guard_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, mode),
      &ngx_http_ai_guard_modes },

    { ngx_string("ai_guard_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_set_size,
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
      ngx_http_ai_guard_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, pii_action),
      &ngx_http_ai_guard_pii_actions },

    { ngx_string("ai_guard_stream_usage"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, stream_usage),
      &ngx_http_ai_guard_stream_usages },

    { ngx_string("ai_guard_pii_placeholder"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_pii_placeholder,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, pii_placeholder),
      NULL },

    { ngx_string("ai_guard_cache_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, cache_key),
      &ngx_http_ai_guard_cache_keys },

    { ngx_string("ai_guard_dialect"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_loc_conf_t, dialect),
      &ngx_http_ai_guard_dialects },

    { ngx_string("ai_guard_journal"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_guard_ljournal_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

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

    { ngx_string("ai_guard_self"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ai_guard_self_cmd,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_key_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_guard_key_store,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_state_dir"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_state_dir,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ai_guard_admin_cmd,
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
    ngx_http_ai_guard_init_module,         /* init module */
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

    if (ngx_http_ai_guard_ljournal_init(cf, amcf) != NGX_OK) {
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


/*
 * By the master, once the zones are made or adopted and before any
 * worker runs: the key store's keys from disk, the ledger's rows from
 * its journal.
 */

static ngx_int_t
ngx_http_ai_guard_init_module(ngx_cycle_t *cycle)
{
    if (ngx_http_ai_guard_store_load(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_guard_ledger_restore(cycle);
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

    /* the request parser skips a string's plain bytes with AVX2 if it can */
    (void) ngx_http_ai_guard_json_simd(1);

    if (ngx_http_ai_guard_redis_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_guard_ledger_init_process(cycle) != NGX_OK) {
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
    amcf->max_histograms = NGX_CONF_UNSET_UINT;

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
    /* max_histograms: unset, it is what the zone holds (add_zones) */

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
            ngx_http_ai_guard_conf_error(cf, &tier[i].where, 0,
                               "ai_guard_tier \"%V\" has a budget, but no "
                               "ai_guard_price prices a model: add "
                               "ai_guard_price lines (\"ai_guard_price * "
                               "input=... output=...\" prices every model)",
                               &tier[i].name);
            return NGX_CONF_ERROR;
        }
    }

    if (amcf->admin_where.line && amcf->store == NULL) {
        ngx_http_ai_guard_conf_error(cf, &amcf->admin_where, 0,
                           "\"ai_guard_admin\" needs "
                           "\"ai_guard_key_store <size>\" in the http "
                           "block, where the keys it makes are kept");
        return NGX_CONF_ERROR;
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
    alcf->stream_usage = NGX_CONF_UNSET_UINT;
    alcf->cache_key = NGX_CONF_UNSET_UINT;
    alcf->dialect = NGX_CONF_UNSET_UINT;
    alcf->limit_by = NGX_CONF_UNSET_UINT;
    alcf->limit_by_max = NGX_CONF_UNSET_UINT;

    return alcf;
}


static char *
ngx_http_ai_guard_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_guard_loc_conf_t *prev = parent;
    ngx_http_ai_guard_loc_conf_t *conf = child;

    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable_where = prev->enable_where;
    }

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
    ngx_conf_merge_str_value(conf->pii_placeholder, prev->pii_placeholder,
                             NGX_HTTP_AI_GUARD_PII_PLACEHOLDER);
    ngx_conf_merge_uint_value(conf->stream_usage, prev->stream_usage,
                              NGX_HTTP_AI_GUARD_STREAM_USAGE_INJECT);
    ngx_conf_merge_uint_value(conf->cache_key, prev->cache_key,
                              NGX_HTTP_AI_GUARD_CACHE_OFF);
    ngx_conf_merge_uint_value(conf->dialect, prev->dialect,
                              NGX_HTTP_AI_GUARD_DIALECT_AUTO);

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

