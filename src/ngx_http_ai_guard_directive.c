
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_budget.h"
#include "ngx_http_ai_guard_ledger.h"
#include "ngx_http_ai_guard_limit_module.h"
#include "ngx_http_ai_guard_series.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_directive.h"


static ngx_int_t ngx_http_ai_guard_tier_limit(ngx_http_ai_guard_tier_t *tier,
    ngx_str_t *param);
static ngx_array_t *ngx_http_ai_guard_split(ngx_conf_t *cf, ngx_str_t *s);


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

ngx_int_t
ngx_http_ai_guard_add_zones(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf)
{
    size_t       need, fixed, rest, *size;
    ngx_str_t    name;
    ngx_uint_t   i, unset;

    static ngx_str_t  suffix[] = {
        ngx_string(":limits"), ngx_string(":ledger"), ngx_string(":series")
    };

    if (amcf->zone_name.data == NULL) {
        ngx_str_set(&amcf->zone_name, "ai_guard");
        amcf->zone_size = NGX_HTTP_AI_GUARD_ZONE_SIZE;
    }

    size = amcf->part_size;

    /* the series and histograms of their bounds: series.c counts it */

    ngx_http_ai_guard_series_fit(amcf);

    need = ngx_http_ai_guard_series_need(amcf);

    if (size[NGX_HTTP_AI_GUARD_PART_SERIES] == 0) {
        size[NGX_HTTP_AI_GUARD_PART_SERIES] = ngx_max(need,
                                                NGX_HTTP_AI_GUARD_PART_MIN);
    }

    if (size[NGX_HTTP_AI_GUARD_PART_SERIES] < need) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
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


char *
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


char *
ngx_http_ai_guard_tier(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    off_t                      n;
    ssize_t                    size;
    ngx_str_t                 *value, s;
    ngx_uint_t                 i;
    ngx_http_ai_guard_tier_t  *tier;

    value = cf->args->elts;

    if (ngx_http_ai_guard_tier_find(amcf, value[1].data, value[1].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate tier \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
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

        if (ngx_strncmp(value[i].data, "budget_alert=", 13) == 0) {
            if (ngx_http_ai_guard_budget_alert_parse(cf, tier, &value[i])
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
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

    return ngx_http_ai_guard_budget_tier(cf, tier);

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
