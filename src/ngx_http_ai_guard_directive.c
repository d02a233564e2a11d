
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_budget.h"
#include "ngx_http_ai_guard_conf.h"
#include "ngx_http_ai_guard_ledger.h"
#include "ngx_http_ai_guard_limit_module.h"
#include "ngx_http_ai_guard_series.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_directive.h"


/*
 * The parameters of ai_guard_tier, "name=value" each: a new one is a line
 * here and a setter.  A setter returns NGX_OK, NGX_ERROR when the value is
 * not what "must" says (the message is made from the table), or
 * NGX_DECLINED when the tier has that setting already.
 */

typedef ngx_int_t (*ngx_http_ai_guard_tier_set_pt)(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier, ngx_str_t *value, ngx_uint_t arg);

typedef struct {
    ngx_str_t                       name;
    ngx_http_ai_guard_tier_set_pt   set;
    ngx_uint_t                      arg;
    char                           *must;
} ngx_http_ai_guard_tier_param_t;


static ngx_int_t ngx_http_ai_guard_tier_models(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier, ngx_str_t *value, ngx_uint_t arg);
static ngx_int_t ngx_http_ai_guard_tier_max_tokens(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier, ngx_str_t *value, ngx_uint_t arg);
static ngx_int_t ngx_http_ai_guard_tier_max_body(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier, ngx_str_t *value, ngx_uint_t arg);
static ngx_int_t ngx_http_ai_guard_tier_count(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier, ngx_str_t *value, ngx_uint_t arg);
static ngx_int_t ngx_http_ai_guard_tier_budget(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier, ngx_str_t *value, ngx_uint_t arg);
static ngx_array_t *ngx_http_ai_guard_split(ngx_conf_t *cf, ngx_str_t *s);


#define NGX_HTTP_AI_GUARD_COUNT_MUST                                          \
    "a whole number from 1 to 1000000000000"

static ngx_http_ai_guard_tier_param_t  ngx_http_ai_guard_tier_params[] = {

    { ngx_string("models"), ngx_http_ai_guard_tier_models, 0,
      "model globs separated by commas, such as gpt-4o-mini*,gpt-4o" },

    { ngx_string("max_tokens"), ngx_http_ai_guard_tier_max_tokens, 0,
      "a whole number of tokens, at least 1" },

    { ngx_string("max_body"), ngx_http_ai_guard_tier_max_body, 0,
      "a size above 0 such as 512k or 1m" },

    { ngx_string("rpm"), ngx_http_ai_guard_tier_count,
      NGX_HTTP_AI_GUARD_LIMIT_RPM, NGX_HTTP_AI_GUARD_COUNT_MUST },

    { ngx_string("rph"), ngx_http_ai_guard_tier_count,
      NGX_HTTP_AI_GUARD_LIMIT_RPH, NGX_HTTP_AI_GUARD_COUNT_MUST },

    { ngx_string("rpd"), ngx_http_ai_guard_tier_count,
      NGX_HTTP_AI_GUARD_LIMIT_RPD, NGX_HTTP_AI_GUARD_COUNT_MUST },

    { ngx_string("tpm"), ngx_http_ai_guard_tier_count,
      NGX_HTTP_AI_GUARD_LIMIT_TPM, NGX_HTTP_AI_GUARD_COUNT_MUST },

    { ngx_string("tph"), ngx_http_ai_guard_tier_count,
      NGX_HTTP_AI_GUARD_LIMIT_TPH, NGX_HTTP_AI_GUARD_COUNT_MUST },

    { ngx_string("tpd"), ngx_http_ai_guard_tier_count,
      NGX_HTTP_AI_GUARD_LIMIT_TPD, NGX_HTTP_AI_GUARD_COUNT_MUST },

    { ngx_string("tokens_month"), ngx_http_ai_guard_tier_count,
      NGX_HTTP_AI_GUARD_LIMIT_TOKENS_MONTH, NGX_HTTP_AI_GUARD_COUNT_MUST },

    { ngx_string("concurrency"), ngx_http_ai_guard_tier_count,
      NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY, NGX_HTTP_AI_GUARD_COUNT_MUST },

    { ngx_string("budget"), ngx_http_ai_guard_tier_budget, 0,
      "USD a day or a month with at most 6 decimals, above 0, such as "
      "budget=5/month or budget=0.50/day" },

    { ngx_string("budget_alert"), ngx_http_ai_guard_budget_alert_set, 0,
      "up to 8 distinct percentages of the budget from 1% to 1000%, "
      "separated by commas, such as budget_alert=50%,80%,100%" },

    { ngx_null_string, NULL, 0, NULL }
};


char *
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

    ngx_http_ai_guard_where(cf, &alcf->enable_where);

    return NGX_CONF_OK;
}


/* ai_guard_zone <name> <size> [limits=<size>] [ledger=<size>] [series=..] */

char *
ngx_http_ai_guard_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    ssize_t      size;
    ngx_str_t   *value, s;
    ngx_uint_t   i, part;

    static ngx_str_t  parts[] = {
        ngx_string("limits"), ngx_string("ledger"), ngx_string("series"),
        ngx_null_string
    };

    if (amcf->zone_name.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (3 * NGX_HTTP_AI_GUARD_PART_MIN))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_zone \"%V\": invalid size \"%V\", it "
                           "must be at least 96k (32k for each of its "
                           "three parts), such as 10m", &value[1],
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    amcf->zone_name = value[1];
    amcf->zone_size = size;

    ngx_http_ai_guard_where(cf, &amcf->zone_where);

    for (i = 3; i < cf->args->nelts; i++) {

        for (part = 0; part < NGX_HTTP_AI_GUARD_PARTS; part++) {
            if (value[i].len > parts[part].len
                && value[i].data[parts[part].len] == '='
                && ngx_strncmp(value[i].data, parts[part].data,
                               parts[part].len)
                   == 0)
            {
                break;
            }
        }

        if (part == NGX_HTTP_AI_GUARD_PARTS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_zone \"%V\": unknown parameter "
                               "\"%V\", it must be %s", &value[1], &value[i],
                               ngx_http_ai_guard_conf_list(cf, parts, 0,
                                                           sizeof(ngx_str_t),
                                                           "="));
            return NGX_CONF_ERROR;
        }

        s.data = value[i].data + parts[part].len + 1;
        s.len = value[i].len - parts[part].len - 1;

        size = ngx_parse_size(&s);

        if (size == NGX_ERROR || size < NGX_HTTP_AI_GUARD_PART_MIN) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_zone \"%V\": invalid %V size "
                               "\"%V\", it must be at least 32k",
                               &value[1], &parts[part], &s);
            return NGX_CONF_ERROR;
        }

        amcf->part_size[part] = size;
    }

    return NGX_CONF_OK;
}


/* ai_guard_metrics_max_series: its line, for the zone's check of it */

char *
ngx_http_ai_guard_max_series(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    ngx_http_ai_guard_where(cf, &amcf->max_series_where);

    return ngx_http_ai_guard_set_num(cf, cmd, conf);
}


/*
 * The three zones of ai_guard_zone (docs/state.md).  The series part must
 * hold ai_guard_metrics_max_series series of the largest size; the parts
 * not given share what is left, half and half.
 */

ngx_int_t
ngx_http_ai_guard_add_zones(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf)
{
    size_t                      need, fixed, rest, *size;
    ngx_str_t                   name;
    ngx_uint_t                  i, unset;
    ngx_http_ai_guard_where_t  *w;

    static ngx_str_t  suffix[] = {
        ngx_string(":limits"), ngx_string(":ledger"), ngx_string(":series")
    };

    if (amcf->zone_name.data == NULL) {
        ngx_str_set(&amcf->zone_name, "ai_guard");
        amcf->zone_size = NGX_HTTP_AI_GUARD_ZONE_SIZE;
        amcf->zone_where = amcf->max_series_where;
    }

    w = &amcf->zone_where;

    size = amcf->part_size;

    /* the series and histograms of their bounds: series.c counts it */

    ngx_http_ai_guard_series_fit(amcf);

    need = ngx_http_ai_guard_series_need(amcf);

    if (size[NGX_HTTP_AI_GUARD_PART_SERIES] == 0) {
        size[NGX_HTTP_AI_GUARD_PART_SERIES] = ngx_max(need,
                                                NGX_HTTP_AI_GUARD_PART_MIN);
    }

    if (size[NGX_HTTP_AI_GUARD_PART_SERIES] < need) {
        ngx_http_ai_guard_conf_error(cf, w, 0,
                           "ai_guard_zone \"%V\": the series part (%uzk) "
                           "cannot hold ai_guard_metrics_max_series %ui "
                           "and ai_guard_metrics_max_histograms %ui (it "
                           "needs %uzk): raise series= or lower them",
                           &amcf->zone_name,
                           size[NGX_HTTP_AI_GUARD_PART_SERIES] / 1024,
                           amcf->max_series, amcf->max_histograms,
                           need / 1024 + 1);
        return NGX_ERROR;
    }

    fixed = 0;
    unset = 0;

    for (i = 0; i < NGX_HTTP_AI_GUARD_PARTS; i++) {
        fixed += size[i];
        unset += (size[i] == 0);
    }

    if (fixed > amcf->zone_size) {
        ngx_http_ai_guard_conf_error(cf, w, 0,
                           "ai_guard_zone \"%V\" %uzk is smaller than its "
                           "parts, which add up to %uzk (the series part "
                           "%uzk for ai_guard_metrics_max_series %ui): it "
                           "must be larger, or the parts smaller",
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
            ngx_http_ai_guard_conf_error(cf, w, 0,
                               "ai_guard_zone \"%V\" %uzk leaves its %*s "
                               "part %uzk, under the minimum of 32k: make "
                               "the zone larger or give the parts' sizes",
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

char *
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
                               "ai_guard_limit_by %V: invalid parameter "
                               "\"%V\", \"global\" and \"max=\" go only "
                               "with a value of variables, such as "
                               "\"ai_guard_limit_by $http_x_end_user "
                               "max=1000\"", &value[1], &value[2]);
            return NGX_CONF_ERROR;
        }

        alcf->limit_by = (value[1].data[0] == 'k')
                         ? NGX_HTTP_AI_GUARD_LIMIT_BY_KEY
                         : NGX_HTTP_AI_GUARD_LIMIT_BY_TENANT;
        alcf->limit_by_max = 0;

        return NGX_CONF_OK;
    }

    /*
     * a value without a variable is the same for every request: one
     * counter for all tenants, which a typo ("tenantt") would give
     */

    if (ngx_http_script_variables_count(&value[1]) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_limit_by: invalid value \"%V\", it "
                           "must be \"key\", \"tenant\" or a value with "
                           "variables, such as $http_x_end_user or "
                           "$binary_remote_addr", &value[1]);
        return NGX_CONF_ERROR;
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
                                   "ai_guard_limit_by %V: invalid max "
                                   "\"%*s\", it must be a whole number of "
                                   "values, at least 1", &value[1],
                                   value[i].len - 4, value[i].data + 4);
                return NGX_CONF_ERROR;
            }

            alcf->limit_by_max = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_limit_by %V: unknown parameter "
                           "\"%V\", it must be \"global\" or "
                           "\"max=<number>\"", &value[1], &value[i]);
        return NGX_CONF_ERROR;
    }

    if (alcf->limit_by_max == NGX_CONF_UNSET_UINT) {
        alcf->limit_by_max = 1000;
    }

    return NGX_CONF_OK;
}


/*
 * The file is read when the http block is complete (tiers may come after
 * it), and its errors are reported at this line.
 */

char *
ngx_http_ai_guard_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    ngx_str_t  *value;

    if (amcf->keys_file.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    amcf->keys_value = value[1];
    amcf->keys_file = value[1];

    if (ngx_conf_full_name(cf->cycle, &amcf->keys_file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_http_ai_guard_where(cf, &amcf->keys_where);

    return NGX_CONF_OK;
}


char *
ngx_http_ai_guard_tier(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    u_char                          *eq;
    ngx_int_t                        rc;
    ngx_str_t                       *value, name, v;
    ngx_uint_t                       i;
    ngx_http_ai_guard_tier_t        *tier;
    ngx_http_ai_guard_tier_param_t  *prm;

    value = cf->args->elts;

    tier = ngx_http_ai_guard_tier_find(amcf, value[1].data, value[1].len);

    if (tier) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_tier \"%V\": the tier is declared "
                           "already, at %V:%ui; it must be declared once, "
                           "with all its parameters", &value[1],
                           &tier->where.file, tier->where.line);
        return NGX_CONF_ERROR;
    }

    tier = ngx_array_push(&amcf->tiers);
    if (tier == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(tier, sizeof(ngx_http_ai_guard_tier_t));

    tier->name = value[1];
    tier->max_tokens = -1;

    ngx_http_ai_guard_where(cf, &tier->where);

    for (i = 2; i < cf->args->nelts; i++) {

        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        name.data = value[i].data;
        name.len = eq ? (size_t) (eq - value[i].data) : value[i].len;

        for (prm = ngx_http_ai_guard_tier_params; prm->name.len; prm++) {
            if (prm->name.len == name.len
                && ngx_strncmp(prm->name.data, name.data, name.len) == 0)
            {
                break;
            }
        }

        if (prm->name.len == 0 || eq == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_tier \"%V\": unknown parameter "
                               "\"%V\", it must be %s", &value[1], &value[i],
                               ngx_http_ai_guard_conf_list(cf,
                                   ngx_http_ai_guard_tier_params, 0,
                                   sizeof(ngx_http_ai_guard_tier_param_t),
                                   "="));
            return NGX_CONF_ERROR;
        }

        v.data = eq + 1;
        v.len = value[i].data + value[i].len - v.data;

        rc = prm->set(cf, tier, &v, prm->arg);

        if (rc == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_tier \"%V\": invalid %V \"%V\", it "
                               "must be %s", &value[1], &prm->name, &v,
                               prm->must);
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_tier \"%V\": duplicate parameter "
                               "\"%V\", %V= must be given once%s",
                               &value[1], &value[i], &prm->name,
                               (prm->set == ngx_http_ai_guard_tier_budget)
                               ? " a period (/day, /month)" : "");
            return NGX_CONF_ERROR;
        }
    }

    return ngx_http_ai_guard_budget_tier(cf, tier);
}


static ngx_int_t
ngx_http_ai_guard_tier_models(ngx_conf_t *cf, ngx_http_ai_guard_tier_t *tier,
    ngx_str_t *value, ngx_uint_t arg)
{
    if (tier->models) {
        return NGX_DECLINED;
    }

    tier->models = ngx_http_ai_guard_split(cf, value);

    return tier->models ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_ai_guard_tier_max_tokens(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier, ngx_str_t *value, ngx_uint_t arg)
{
    off_t  n;

    if (tier->max_tokens != -1) {
        return NGX_DECLINED;
    }

    n = ngx_atoof(value->data, value->len);
    if (n == NGX_ERROR || n == 0) {
        return NGX_ERROR;
    }

    tier->max_tokens = n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_tier_max_body(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier, ngx_str_t *value, ngx_uint_t arg)
{
    ssize_t  size;

    if (tier->max_body) {
        return NGX_DECLINED;
    }

    size = ngx_parse_size(value);
    if (size == NGX_ERROR || size == 0) {
        return NGX_ERROR;
    }

    tier->max_body = size;

    return NGX_OK;
}


/* rpm= rph= rpd= tpm= tph= tpd= tokens_month= concurrency=: arg the kind */

static ngx_int_t
ngx_http_ai_guard_tier_count(ngx_conf_t *cf, ngx_http_ai_guard_tier_t *tier,
    ngx_str_t *value, ngx_uint_t arg)
{
    off_t  n;

    if (tier->limits[arg]) {
        return NGX_DECLINED;
    }

    n = ngx_atoof(value->data, value->len);
    if (n <= 0 || (uint64_t) n > NGX_HTTP_AI_GUARD_LIMIT_MAX) {
        return NGX_ERROR;
    }

    tier->limits[arg] = n;
    tier->has_limits = 1;

    return NGX_OK;
}


/* budget=<USD>/day | budget=<USD>/month: one of each at most */

static ngx_int_t
ngx_http_ai_guard_tier_budget(ngx_conf_t *cf, ngx_http_ai_guard_tier_t *tier,
    ngx_str_t *value, ngx_uint_t arg)
{
    int64_t                             pico;
    ngx_uint_t                          k;
    ngx_http_ai_guard_budget_period_e   period;

    if (ngx_http_ai_guard_budget_parse(value->data, value->len, &pico,
                                       &period)
        != 0 || pico <= 0)
    {
        return NGX_ERROR;
    }

    k = (period == NGX_HTTP_AI_GUARD_BUDGET_DAY)
        ? NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY
        : NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH;

    if (tier->limits[k]) {
        return NGX_DECLINED;
    }

    tier->limits[k] = pico;
    tier->has_limits = 1;

    return NGX_OK;
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
