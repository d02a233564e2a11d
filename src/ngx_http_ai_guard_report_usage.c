
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_ledger.h"
#include "ngx_http_ai_guard_redis_report.h"
#include "ngx_http_ai_guard_report_out.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_report_usage.h"


#define NGX_HTTP_AI_GUARD_GROUP_NONE     0
#define NGX_HTTP_AI_GUARD_GROUP_MODEL    1
#define NGX_HTTP_AI_GUARD_GROUP_KEY      2
#define NGX_HTTP_AI_GUARD_GROUP_DAY      3

#define NGX_HTTP_AI_GUARD_FORMAT_JSON    0
#define NGX_HTTP_AI_GUARD_FORMAT_CSV     1
#define NGX_HTTP_AI_GUARD_FORMAT_STRIPE  2

#define NGX_HTTP_AI_GUARD_REDIS_WARNING                                      \
    "redis unavailable: local usage of this node only"

/* the bytes of the Stripe identifier's digest that are kept, as hex */
#define NGX_HTTP_AI_GUARD_EVENT_ID_LEN   16


typedef struct {
    uint32_t                       from;      /* days since 1970-01-01 */
    uint32_t                       to;
    ngx_str_t                      tenant;    /* empty: every tenant */
    ngx_uint_t                     group;
    ngx_uint_t                     format;
    ngx_http_ai_guard_out_t       *self;      /* ai_guard_self's answer */
    ngx_str_t                      key;       /* ai_guard_self's key id */
} ngx_http_ai_guard_report_args_t;


/* a walk of the ledger for a report */

typedef struct {
    ngx_http_request_t               *request;
    ngx_array_t                      *rows;
    ngx_http_ai_guard_report_args_t  *args;
} ngx_http_ai_guard_copy_t;


static ngx_int_t ngx_http_ai_guard_usage_handler(ngx_http_request_t *r);
static void ngx_http_ai_guard_usage_redis_done(ngx_http_request_t *r,
    void *data, ngx_array_t *rows);
static ngx_int_t ngx_http_ai_guard_usage_answer(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args, ngx_array_t *rows,
    ngx_uint_t warning);
static ngx_int_t ngx_http_ai_guard_report_args(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args, ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_usage_run(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args);
static ngx_int_t ngx_http_ai_guard_usage_self_answer(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args, ngx_array_t *rows,
    ngx_uint_t warning);
static ngx_int_t ngx_http_ai_guard_usage_warning(ngx_http_request_t *r);
static void ngx_http_ai_guard_report_month(
    ngx_http_ai_guard_report_args_t *args);
static ngx_array_t *ngx_http_ai_guard_usage_copy(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_report_args_t *args);
static ngx_int_t ngx_http_ai_guard_usage_copy_row(
    ngx_http_ai_guard_node_t *node, void *data);
static void ngx_http_ai_guard_usage_rows(ngx_array_t *rows,
    ngx_http_ai_guard_report_args_t *args, ngx_uint_t redis);
static int ngx_libc_cdecl ngx_http_ai_guard_row_cmp(const void *one,
    const void *two);
static void ngx_http_ai_guard_totals_add(ngx_http_ai_guard_totals_t *t,
    ngx_http_ai_guard_totals_t *add);
static void ngx_http_ai_guard_usage_write_json(ngx_http_ai_guard_out_t *o,
    ngx_array_t *rows, ngx_http_ai_guard_report_args_t *args);
static void ngx_http_ai_guard_usage_write_csv(ngx_http_ai_guard_out_t *o,
    ngx_array_t *rows, ngx_http_ai_guard_report_args_t *args);
static void ngx_http_ai_guard_usage_write_stripe(ngx_http_request_t *r,
    ngx_http_ai_guard_out_t *o, ngx_array_t *rows);
static void ngx_http_ai_guard_out_totals(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_totals_t *t, ngx_uint_t csv);


static char  *ngx_http_ai_guard_group_names[] = {
    "", "model", "key", "day"
};


char *
ngx_http_ai_guard_usage_cmd(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_ai_guard_main_conf_t  *amcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_guard_usage_handler;

    /* the zone is created even where no location has "ai_guard on" */
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_guard_module);
    amcf->enabled = 1;

    return NGX_CONF_OK;
}


/*
 * The usage report.  With ai_guard_redis it is the cluster's, read from
 * Redis while the request waits; without, or when Redis does not answer,
 * it is this node's zone.  The zone's matching entries are copied out
 * under its mutex, then sorted, added up and written without it: a long
 * report never holds the workers that settle requests.
 */

static ngx_int_t
ngx_http_ai_guard_usage_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_http_ai_guard_verdict_t       v;
    ngx_http_ai_guard_report_args_t  *args;
    ngx_http_ai_guard_main_conf_t    *amcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER].sh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&v, sizeof(ngx_http_ai_guard_verdict_t));

    /* in the pool: the arguments outlive the handler when Redis answers */

    args = ngx_palloc(r->pool, sizeof(ngx_http_ai_guard_report_args_t));
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_ai_guard_report_args(r, args, &v);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_ai_guard_send_error(r, &v);
    }

    return ngx_http_ai_guard_usage_run(r, args);
}


/*
 * The rows of the report or of ai_guard_self: with ai_guard_redis the
 * cluster's, read from Redis while the request waits; without, or when
 * Redis is not connected, this node's zone.
 */

static ngx_int_t
ngx_http_ai_guard_usage_run(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args)
{
    ngx_int_t                       rc;
    ngx_uint_t                      warning;
    ngx_array_t                    *rows;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    warning = 0;

    if (amcf->redis) {
        rc = ngx_http_ai_guard_redis_usage(r, args->from, args->to,
                                           &args->tenant,
                                           ngx_http_ai_guard_usage_redis_done,
                                           args);

        if (rc == NGX_AGAIN) {
            r->main->count++;
            return NGX_DONE;
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* NGX_DECLINED: not connected now */
        warning = 1;
    }

    rows = ngx_http_ai_guard_usage_copy(r,
                                  &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER],
                                  args);
    if (rows == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_ai_guard_usage_rows(rows, args, 0);

    return args->self ? ngx_http_ai_guard_usage_self_answer(r, args, rows,
                                                            warning)
                      : ngx_http_ai_guard_usage_answer(r, args, rows,
                                                       warning);
}


/* Redis's rows are in, or (rows == NULL) Redis did not answer in time */

static void
ngx_http_ai_guard_usage_redis_done(ngx_http_request_t *r, void *data,
    ngx_array_t *rows)
{
    ngx_http_ai_guard_report_args_t  *args = data;

    ngx_int_t                       rc;
    ngx_uint_t                      warning;
    ngx_http_ai_guard_zone_t       *ledger;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    r->read_event_handler = ngx_http_block_reading;

    warning = 0;

    if (rows == NULL) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai_guard: no answer from redis, the usage report "
                      "is this node's own");

        warning = 1;

        ledger = &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER];

    rows = ngx_http_ai_guard_usage_copy(r, ledger, args);
        if (rows == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_http_ai_guard_usage_rows(rows, args, !warning);

    rc = args->self ? ngx_http_ai_guard_usage_self_answer(r, args, rows,
                                                          warning)
                    : ngx_http_ai_guard_usage_answer(r, args, rows, warning);

    ngx_http_finalize_request(r, rc);
}


/*
 * One writer for both sources: the rows are sorted, added up and written
 * in the format asked for.  "warning": Redis is configured and did not
 * answer, the report is this node's only.
 */

static ngx_int_t
ngx_http_ai_guard_usage_answer(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args, ngx_array_t *rows,
    ngx_uint_t warning)
{
    u_char                    from[NGX_HTTP_AI_GUARD_DATE_LEN];
    u_char                    to[NGX_HTTP_AI_GUARD_DATE_LEN];
    ngx_http_ai_guard_out_t   o;

    static char  *types[] = {
        "application/json", "text/csv", "application/x-ndjson"
    };

    ngx_qsort(rows->elts, rows->nelts, sizeof(ngx_http_ai_guard_row_t *),
              ngx_http_ai_guard_row_cmp);

    ngx_memzero(&o, sizeof(ngx_http_ai_guard_out_t));
    o.pool = r->pool;
    o.last = &o.out;

    switch (args->format) {

    case NGX_HTTP_AI_GUARD_FORMAT_CSV:
        ngx_http_ai_guard_usage_write_csv(&o, rows, args);
        break;

    case NGX_HTTP_AI_GUARD_FORMAT_STRIPE:
        ngx_http_ai_guard_usage_write_stripe(r, &o, rows);
        break;

    default: /* NGX_HTTP_AI_GUARD_FORMAT_JSON */

        ngx_http_ai_guard_date_format(from, args->from);
        ngx_http_ai_guard_date_format(to, args->to);

        ngx_http_ai_guard_out_printf(&o, 2 * NGX_HTTP_AI_GUARD_DATE_LEN + 64,
                                     "{\"from\":\"%*s\",\"to\":\"%*s\",",
                                     (size_t) NGX_HTTP_AI_GUARD_DATE_LEN, from,
                                     (size_t) NGX_HTTP_AI_GUARD_DATE_LEN, to);

        if (warning) {
            ngx_http_ai_guard_out_text(&o, "\"warning\":\""
                                       NGX_HTTP_AI_GUARD_REDIS_WARNING
                                       "\",");
        }

        ngx_http_ai_guard_out_text(&o, "\"tenants\":[");
        ngx_http_ai_guard_usage_write_json(&o, rows, args);
        ngx_http_ai_guard_out_text(&o, "]}\n");
        break;
    }

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a header for every format: CSV and NDJSON have no room for it */

    if (warning && ngx_http_ai_guard_usage_warning(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_guard_out_send(r, &o, types[args->format]);
}


static ngx_int_t
ngx_http_ai_guard_usage_warning(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-AI-Guard-Warning");
    ngx_str_set(&h->value, NGX_HTTP_AI_GUARD_REDIS_WARNING);

    return NGX_OK;
}


/* the report's defaults: every tenant, this month to today */

static void
ngx_http_ai_guard_report_month(ngx_http_ai_guard_report_args_t *args)
{
    int64_t   y, m, d;
    uint32_t  today;

    today = (uint32_t) (ngx_time() / 86400);
    ngx_http_ai_guard_civil_from_days(today, &y, &m, &d);

    args->from = (uint32_t) ngx_http_ai_guard_days_from_civil(y, m, 1);
    args->to = today;
    ngx_str_null(&args->tenant);
    args->self = NULL;
    ngx_str_null(&args->key);
}


/*
 * ai_guard_self's spend: the report's default period and its numbers,
 * from the report's source, for the key's tenant only, and of those the
 * key's own rows (none for the admin API's tenant: a key without an
 * id).  The client names nothing here.  The answer is sent
 * from here, after Redis's rows when they are waited for.
 */

ngx_int_t
ngx_http_ai_guard_usage_self(ngx_http_request_t *r,
    ngx_http_ai_guard_out_t *o, ngx_http_ai_guard_key_t *key)
{
    ngx_http_ai_guard_report_args_t  *args;

    /* in the pool: the arguments outlive the handler when Redis answers */

    args = ngx_palloc(r->pool, sizeof(ngx_http_ai_guard_report_args_t));
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_ai_guard_report_month(args);
    args->tenant.data = (u_char *) key->tenant.data;
    args->tenant.len = key->tenant.len;
    args->group = NGX_HTTP_AI_GUARD_GROUP_NONE;
    args->format = NGX_HTTP_AI_GUARD_FORMAT_JSON;
    args->self = o;
    args->key.data = (u_char *) key->id.data;
    args->key.len = key->id.len;

    return ngx_http_ai_guard_usage_run(r, args);
}


static ngx_int_t
ngx_http_ai_guard_usage_self_answer(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args, ngx_array_t *rows,
    ngx_uint_t warning)
{
    u_char                       from[NGX_HTTP_AI_GUARD_DATE_LEN];
    u_char                       to[NGX_HTTP_AI_GUARD_DATE_LEN];
    ngx_uint_t                   i;
    ngx_http_ai_guard_out_t     *o;
    ngx_http_ai_guard_row_t    **row;
    ngx_http_ai_guard_totals_t   tenant, own;

    ngx_memzero(&tenant, sizeof(ngx_http_ai_guard_totals_t));
    ngx_memzero(&own, sizeof(ngx_http_ai_guard_totals_t));

    /* the rows are the tenant's: the zone's by the walk, Redis's by rows */

    row = rows->elts;

    for (i = 0; i < rows->nelts; i++) {
        ngx_http_ai_guard_totals_add(&tenant, &row[i]->totals);

        if (ngx_http_ai_guard_str_eq(&row[i]->key, &args->key)) {
            ngx_http_ai_guard_totals_add(&own, &row[i]->totals);
        }
    }

    o = args->self;

    ngx_http_ai_guard_date_format(from, args->from);
    ngx_http_ai_guard_date_format(to, args->to);

    ngx_http_ai_guard_out_printf(o, 2 * NGX_HTTP_AI_GUARD_DATE_LEN + 64,
                                 "\"spend\":{\"from\":\"%*s\",\"to\":\"%*s\",",
                                 (size_t) NGX_HTTP_AI_GUARD_DATE_LEN, from,
                                 (size_t) NGX_HTTP_AI_GUARD_DATE_LEN, to);

    if (warning) {
        ngx_http_ai_guard_out_text(o, "\"warning\":\""
                                   NGX_HTTP_AI_GUARD_REDIS_WARNING "\",");
    }

    /* the report's shape: the name, then the totals */

    ngx_http_ai_guard_out_text(o, "\"tenant\":{\"tenant\":");
    ngx_http_ai_guard_out_json(o, &args->tenant);
    ngx_http_ai_guard_out_totals(o, &tenant, 0);

    /* the admin API's tenant has no key: its spend is the tenant's only */

    if (args->key.len) {
        ngx_http_ai_guard_out_text(o, "},\"key\":{\"key\":");
        ngx_http_ai_guard_out_json(o, &args->key);
        ngx_http_ai_guard_out_totals(o, &own, 0);
    }

    ngx_http_ai_guard_out_text(o, "}}}\n");

    if (o->failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (warning && ngx_http_ai_guard_usage_warning(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_guard_out_send(r, o, "application/json");
}


/* NGX_DECLINED with the verdict set: a bad argument, a 400 */

static ngx_int_t
ngx_http_ai_guard_report_args(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args, ngx_http_ai_guard_verdict_t *v)
{
    u_char      *dst, *src;
    ngx_str_t    value;
    ngx_uint_t   i;

    ngx_http_ai_guard_report_month(args);
    args->group = NGX_HTTP_AI_GUARD_GROUP_NONE;
    args->format = NGX_HTTP_AI_GUARD_FORMAT_JSON;

    if (ngx_http_arg(r, (u_char *) "tenant", 6, &value) == NGX_OK) {

        if (value.len == 0) {
            ngx_http_ai_guard_set_verdict(v, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request",
                                          "\"tenant\" is empty");
            ngx_str_set(&v->param, "tenant");
            return NGX_DECLINED;
        }

        dst = ngx_pnalloc(r->pool, value.len);
        if (dst == NULL) {
            return NGX_ERROR;
        }

        src = value.data;
        args->tenant.data = dst;

        ngx_unescape_uri(&dst, &src, value.len, 0);

        args->tenant.len = dst - args->tenant.data;
    }

    if (ngx_http_arg(r, (u_char *) "from", 4, &value) == NGX_OK
        && ngx_http_ai_guard_date_parse(value.data, value.len, &args->from)
           != 0)
    {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request",
                                      "\"from\" is not a date as YYYY-MM-DD");
        ngx_str_set(&v->param, "from");
        return NGX_DECLINED;
    }

    if (ngx_http_arg(r, (u_char *) "to", 2, &value) == NGX_OK
        && ngx_http_ai_guard_date_parse(value.data, value.len, &args->to)
           != 0)
    {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request",
                                      "\"to\" is not a date as YYYY-MM-DD");
        ngx_str_set(&v->param, "to");
        return NGX_DECLINED;
    }

    if (args->to < args->from) {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request",
                                      "\"to\" is before \"from\"");
        ngx_str_set(&v->param, "to");
        return NGX_DECLINED;
    }

    if (ngx_http_arg(r, (u_char *) "group", 5, &value) == NGX_OK) {

        for (i = 1; i < 4; i++) {
            if (value.len == ngx_strlen(ngx_http_ai_guard_group_names[i])
                && ngx_strncmp(value.data, ngx_http_ai_guard_group_names[i],
                               value.len)
                   == 0)
            {
                args->group = i;
                break;
            }
        }

        if (i == 4) {
            ngx_http_ai_guard_set_verdict(v, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request",
                                          "\"group\" is not one of model, "
                                          "key, day");
            ngx_str_set(&v->param, "group");
            return NGX_DECLINED;
        }
    }

    if (ngx_http_arg(r, (u_char *) "format", 6, &value) == NGX_OK) {

        if (value.len == 4 && ngx_strncmp(value.data, "json", 4) == 0) {
            args->format = NGX_HTTP_AI_GUARD_FORMAT_JSON;

        } else if (value.len == 3 && ngx_strncmp(value.data, "csv", 3) == 0) {
            args->format = NGX_HTTP_AI_GUARD_FORMAT_CSV;

        } else if (value.len == 6
                   && ngx_strncmp(value.data, "stripe", 6) == 0)
        {
            args->format = NGX_HTTP_AI_GUARD_FORMAT_STRIPE;

        } else {
            ngx_http_ai_guard_set_verdict(v, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request",
                                          "\"format\" is not one of json, "
                                          "csv, stripe");
            ngx_str_set(&v->param, "format");
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* the usage rows the arguments ask for, into r->pool, under the lock */

static ngx_array_t *
ngx_http_ai_guard_usage_copy(ngx_http_request_t *r,
    ngx_http_ai_guard_zone_t *zone, ngx_http_ai_guard_report_args_t *args)
{
    ngx_int_t                 rc;
    ngx_http_ai_guard_copy_t  copy;

    copy.request = r;
    copy.args = args;

    copy.rows = ngx_array_create(r->pool, 64,
                                 sizeof(ngx_http_ai_guard_row_t *));
    if (copy.rows == NULL) {
        return NULL;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    rc = ngx_http_ai_guard_zone_walk(zone, ngx_http_ai_guard_usage_copy_row,
                                     &copy);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return (rc == NGX_OK) ? copy.rows : NULL;
}


static ngx_int_t
ngx_http_ai_guard_usage_copy_row(ngx_http_ai_guard_node_t *node, void *data)
{
    ngx_http_ai_guard_copy_t *copy = data;

    u_char                           *key, *last;
    size_t                            len;
    uint32_t                          day;
    ngx_uint_t                        i;
    ngx_str_t                         parts[4];
    const u_char                     *p, *s;
    ngx_http_ai_guard_row_t          *row, **rowp;
    ngx_http_ai_guard_usage_entry_t  *u;

    key = ngx_http_ai_guard_zone_key(node->data, &len);

    if (len < NGX_HTTP_AI_GUARD_LEDGER_HEAD
        || key[0] != NGX_HTTP_AI_GUARD_LEDGER_ROW)
    {
        return NGX_OK;
    }

    u = (ngx_http_ai_guard_usage_entry_t *) node->data;
    ngx_memcpy(&day, key + 1, sizeof(uint32_t));

    if (day < copy->args->from || day > copy->args->to || u->requests == 0) {
        return NGX_OK;
    }

    row = ngx_palloc(copy->request->pool,
                     sizeof(ngx_http_ai_guard_row_t) + len);
    if (row == NULL) {
        return NGX_ERROR;
    }

    /* the strings point into the row's own copy of the key */

    key = ngx_cpymem(row + 1, key, len) - len;
    last = key + len;
    p = key + NGX_HTTP_AI_GUARD_LEDGER_HEAD;

    for (i = 0; i < 4; i++) {
        p = ngx_http_ai_guard_part_read(p, last, &s, &parts[i].len);
        if (p == NULL) {
            return NGX_OK;
        }

        parts[i].data = (u_char *) s;
    }

    if (copy->args->tenant.len
        && (copy->args->tenant.len != parts[0].len
            || ngx_memcmp(copy->args->tenant.data, parts[0].data,
                          parts[0].len)
               != 0))
    {
        return NGX_OK;
    }

    rowp = ngx_array_push(copy->rows);
    if (rowp == NULL) {
        return NGX_ERROR;
    }

    *rowp = row;

    row->tenant = parts[0];
    row->key = parts[1];
    row->model = parts[2];
    row->customer = parts[3];
    row->day = day;

    row->totals.requests = u->requests;
    row->totals.input = u->input;
    row->totals.output = u->output;
    row->totals.cached = u->cached;
    row->totals.estimated = u->estimated;
    row->totals.cost = u->cost;
    row->totals.reasoning = u->reasoning;
    row->totals.cache_write = u->cache_write;

    return NGX_OK;
}


/*
 * The rows of either source made ready for the writers: Redis's rows get
 * their day from their date and are kept only when in the range and of
 * the tenant asked for; the zone's get their date.  Then the label they
 * are grouped by.
 */

static void
ngx_http_ai_guard_usage_rows(ngx_array_t *rows,
    ngx_http_ai_guard_report_args_t *args, ngx_uint_t redis)
{
    ngx_uint_t                 i, n;
    ngx_http_ai_guard_row_t   *row, **rowp;

    rowp = rows->elts;
    n = 0;

    for (i = 0; i < rows->nelts; i++) {
        row = rowp[i];

        if (redis) {
            if (ngx_http_ai_guard_date_parse(row->date,
                                             NGX_HTTP_AI_GUARD_DATE_LEN,
                                             &row->day)
                != 0
                || row->day < args->from || row->day > args->to
                || (args->tenant.len
                    && !ngx_http_ai_guard_str_eq(&row->tenant,
                                                 &args->tenant)))
            {
                continue;
            }

        } else {
            ngx_http_ai_guard_date_format(row->date, row->day);
        }

        switch (args->format == NGX_HTTP_AI_GUARD_FORMAT_STRIPE
                ? NGX_HTTP_AI_GUARD_GROUP_NONE : args->group)
        {

        case NGX_HTTP_AI_GUARD_GROUP_MODEL:
            row->label = row->model;
            break;

        case NGX_HTTP_AI_GUARD_GROUP_KEY:
            row->label = row->key;
            break;

        case NGX_HTTP_AI_GUARD_GROUP_DAY:
            row->label.data = row->date;
            row->label.len = NGX_HTTP_AI_GUARD_DATE_LEN;
            break;

        default: /* NGX_HTTP_AI_GUARD_GROUP_NONE */
            ngx_str_null(&row->label);
            break;
        }

        rowp[n++] = row;
    }

    rows->nelts = n;
}


/* by tenant, then the group's label, then what a Stripe event adds up */

static int ngx_libc_cdecl
ngx_http_ai_guard_row_cmp(const void *one, const void *two)
{
    ngx_int_t                 rc;
    ngx_http_ai_guard_row_t  *a, *b;

    a = *(ngx_http_ai_guard_row_t **) one;
    b = *(ngx_http_ai_guard_row_t **) two;

    rc = ngx_memn2cmp(a->tenant.data, b->tenant.data, a->tenant.len,
                      b->tenant.len);
    if (rc) {
        return (rc < 0) ? -1 : 1;
    }

    rc = ngx_memn2cmp(a->label.data, b->label.data, a->label.len,
                      b->label.len);
    if (rc) {
        return (rc < 0) ? -1 : 1;
    }

    rc = ngx_memn2cmp(a->customer.data, b->customer.data, a->customer.len,
                      b->customer.len);
    if (rc) {
        return (rc < 0) ? -1 : 1;
    }

    if (a->day != b->day) {
        return (a->day < b->day) ? -1 : 1;
    }

    rc = ngx_memn2cmp(a->model.data, b->model.data, a->model.len,
                      b->model.len);
    if (rc) {
        return (rc < 0) ? -1 : 1;
    }

    rc = ngx_memn2cmp(a->key.data, b->key.data, a->key.len, b->key.len);

    return (rc < 0) ? -1 : (rc > 0);
}


static void
ngx_http_ai_guard_totals_add(ngx_http_ai_guard_totals_t *t,
    ngx_http_ai_guard_totals_t *add)
{
    t->requests += add->requests;
    t->input += add->input;
    t->output += add->output;
    t->cached += add->cached;
    t->estimated += add->estimated;
    t->cost = ngx_http_ai_guard_pico_add(t->cost, add->cost);
    t->reasoning += add->reasoning;
    t->cache_write += add->cache_write;
}


static void
ngx_http_ai_guard_usage_write_json(ngx_http_ai_guard_out_t *o,
    ngx_array_t *rows, ngx_http_ai_guard_report_args_t *args)
{
    ngx_uint_t                   i, j, k, n;
    ngx_http_ai_guard_row_t    **row;
    ngx_http_ai_guard_totals_t   t;

    row = rows->elts;

    for (i = 0; i < rows->nelts; i = j) {

        ngx_memzero(&t, sizeof(ngx_http_ai_guard_totals_t));

        for (j = i;
             j < rows->nelts
             && ngx_http_ai_guard_str_eq(&row[j]->tenant, &row[i]->tenant);
             j++)
        {
            ngx_http_ai_guard_totals_add(&t, &row[j]->totals);
        }

        ngx_http_ai_guard_out_text(o, i ? ",{\"tenant\":" : "{\"tenant\":");
        ngx_http_ai_guard_out_json(o, &row[i]->tenant);
        ngx_http_ai_guard_out_totals(o, &t, 0);

        if (args->group == NGX_HTTP_AI_GUARD_GROUP_NONE) {
            ngx_http_ai_guard_out_text(o, "}");
            continue;
        }

        ngx_http_ai_guard_out_text(o, ",\"groups\":[");

        for (k = i; k < j; k = n) {

            ngx_memzero(&t, sizeof(ngx_http_ai_guard_totals_t));

            for (n = k;
                 n < j
                 && ngx_http_ai_guard_str_eq(&row[n]->label, &row[k]->label);
                 n++)
            {
                ngx_http_ai_guard_totals_add(&t, &row[n]->totals);
            }

            ngx_http_ai_guard_out_text(o, (k == i) ? "{\"" : ",{\"");
            ngx_http_ai_guard_out_text(o,
                                   ngx_http_ai_guard_group_names[args->group]);
            ngx_http_ai_guard_out_text(o, "\":");
            ngx_http_ai_guard_out_json(o, &row[k]->label);
            ngx_http_ai_guard_out_totals(o, &t, 0);
            ngx_http_ai_guard_out_text(o, "}");
        }

        ngx_http_ai_guard_out_text(o, "]}");
    }
}


static void
ngx_http_ai_guard_usage_write_csv(ngx_http_ai_guard_out_t *o, ngx_array_t *rows,
    ngx_http_ai_guard_report_args_t *args)
{
    ngx_uint_t                   i, j;
    ngx_http_ai_guard_row_t    **row;
    ngx_http_ai_guard_totals_t   t;

    /* new columns go last: a reader by position keeps working */

    ngx_http_ai_guard_out_printf(o, 160, "tenant,%s%srequests,input_tokens,"
                                 "output_tokens,cached_tokens,"
                                 "estimated_requests,cost_usd,"
                                 "reasoning_tokens,cache_write_tokens\n",
                                 ngx_http_ai_guard_group_names[args->group],
                                 args->group ? "," : "");

    row = rows->elts;

    for (i = 0; i < rows->nelts; i = j) {

        ngx_memzero(&t, sizeof(ngx_http_ai_guard_totals_t));

        /* the label is empty without group=: the tenant decides alone */

        for (j = i;
             j < rows->nelts
             && ngx_http_ai_guard_str_eq(&row[j]->tenant, &row[i]->tenant)
             && ngx_http_ai_guard_str_eq(&row[j]->label, &row[i]->label);
             j++)
        {
            ngx_http_ai_guard_totals_add(&t, &row[j]->totals);
        }

        ngx_http_ai_guard_out_csv(o, &row[i]->tenant);

        if (args->group != NGX_HTTP_AI_GUARD_GROUP_NONE) {
            ngx_http_ai_guard_out_text(o, ",");
            ngx_http_ai_guard_out_csv(o, &row[i]->label);
        }

        ngx_http_ai_guard_out_totals(o, &t, 1);
        ngx_http_ai_guard_out_text(o, "\n");
    }
}


/*
 * Stripe meter events, one a line: a tenant's tokens for one customer, day
 * and model.  The identifier is a digest of those four, so an export sent
 * twice is counted once by Stripe.
 */

static void
ngx_http_ai_guard_usage_write_stripe(ngx_http_request_t *r,
    ngx_http_ai_guard_out_t *o, ngx_array_t *rows)
{
    u_char                          *p, digest[32];
    u_char                           lens[3][NGX_SIZE_T_LEN + 1];
    time_t                           ts;
    ngx_str_t                        parts[7];
    ngx_uint_t                       i, j;
    ngx_http_ai_guard_row_t        **row, *a;
    ngx_http_ai_guard_totals_t       t;
    ngx_http_ai_guard_main_conf_t   *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    row = rows->elts;

    for (i = 0; i < rows->nelts; i = j) {

        a = row[i];

        ngx_memzero(&t, sizeof(ngx_http_ai_guard_totals_t));

        for (j = i;
             j < rows->nelts
             && ngx_http_ai_guard_str_eq(&row[j]->tenant, &a->tenant)
             && ngx_http_ai_guard_str_eq(&row[j]->customer, &a->customer)
             && row[j]->day == a->day
             && ngx_http_ai_guard_str_eq(&row[j]->model, &a->model);
             j++)
        {
            ngx_http_ai_guard_totals_add(&t, &row[j]->totals);
        }

        /* a key without a Stripe customer is not billed through Stripe */

        if (a->customer.len == 0) {
            continue;
        }

        /* length-prefixed, so that no two different events collide */

        parts[0].data = lens[0];
        parts[0].len = ngx_sprintf(lens[0], "%uz:", a->tenant.len) - lens[0];
        parts[1] = a->tenant;
        parts[2].data = lens[1];
        parts[2].len = ngx_sprintf(lens[1], "%uz:", a->customer.len)
                       - lens[1];
        parts[3] = a->customer;
        parts[4].data = a->date;
        parts[4].len = NGX_HTTP_AI_GUARD_DATE_LEN;
        parts[5].data = lens[2];
        parts[5].len = ngx_sprintf(lens[2], "%uz:", a->model.len) - lens[2];
        parts[6] = a->model;

        if (ngx_http_ai_guard_digest(parts, 7, digest) != NGX_OK) {
            o->failed = 1;
            return;
        }

        /* the end of the day, or now for today: Stripe refuses the future */

        ts = (time_t) a->day * 86400 + 86399;

        if (ts > ngx_time()) {
            ts = ngx_time();
        }

        ngx_http_ai_guard_out_text(o, "{\"event_name\":");
        ngx_http_ai_guard_out_json(o, &amcf->event_name);

        /* 63 bytes of text around the timestamp and the identifier */

        p = ngx_http_ai_guard_out_reserve(o,
                                 NGX_TIME_T_LEN + 80
                                 + 2 * NGX_HTTP_AI_GUARD_EVENT_ID_LEN);
        if (p == NULL) {
            return;
        }

        p = ngx_sprintf(p, ",\"timestamp\":%T,\"identifier\":\"", ts);
        p = ngx_hex_dump(p, digest, NGX_HTTP_AI_GUARD_EVENT_ID_LEN);
        o->buf->last = ngx_cpymem(p, "\",\"payload\":{\"stripe_customer_id\":",
                                  sizeof("\",\"payload\":{"
                                         "\"stripe_customer_id\":") - 1);

        ngx_http_ai_guard_out_json(o, &a->customer);

        ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 32,
                                     ",\"value\":\"%uL\"}}\n",
                                     t.input + t.output);
    }
}


static void
ngx_http_ai_guard_out_totals(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_totals_t *t, ngx_uint_t csv)
{
    u_char  *e, cost[NGX_HTTP_AI_GUARD_USD_LEN];

    e = ngx_http_ai_guard_usd_format(cost, t->cost);

    if (csv) {
        ngx_http_ai_guard_out_printf(o, 7 * (NGX_INT64_LEN + 1)
                                        + NGX_HTTP_AI_GUARD_USD_LEN + 1,
                                     ",%uL,%uL,%uL,%uL,%uL,%*s,%uL,%uL",
                                     t->requests, t->input, t->output,
                                     t->cached, t->estimated,
                                     (size_t) (e - cost), cost,
                                     t->reasoning, t->cache_write);
        return;
    }

    ngx_http_ai_guard_out_printf(o, 7 * NGX_INT64_LEN
                                    + NGX_HTTP_AI_GUARD_USD_LEN + 192,
                                 ",\"requests\":%uL,\"input_tokens\":%uL,"
                                 "\"output_tokens\":%uL,"
                                 "\"cached_tokens\":%uL,"
                                 "\"estimated_requests\":%uL,"
                                 "\"cost_usd\":\"%*s\","
                                 "\"reasoning_tokens\":%uL,"
                                 "\"cache_write_tokens\":%uL",
                                 t->requests, t->input, t->output,
                                 t->cached, t->estimated,
                                 (size_t) (e - cost), cost,
                                 t->reasoning, t->cache_write);
}

