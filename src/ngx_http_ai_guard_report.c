
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard.h"
#include "ngx_http_ai_guard_record.h"


#define NGX_HTTP_AI_GUARD_GROUP_NONE     0
#define NGX_HTTP_AI_GUARD_GROUP_MODEL    1
#define NGX_HTTP_AI_GUARD_GROUP_KEY      2
#define NGX_HTTP_AI_GUARD_GROUP_DAY      3

#define NGX_HTTP_AI_GUARD_FORMAT_JSON    0
#define NGX_HTTP_AI_GUARD_FORMAT_CSV     1
#define NGX_HTTP_AI_GUARD_FORMAT_STRIPE  2

#define NGX_HTTP_AI_GUARD_REDIS_WARNING                                      \
    "redis unavailable: local usage of this node only"

/* the size of an output buffer; a longer piece gets one of its own */
#define NGX_HTTP_AI_GUARD_OUT_SIZE       16384

#define NGX_HTTP_AI_GUARD_DAY_MAX        2932896   /* 9999-12-31 */

/* the bytes of the Stripe identifier's digest that are kept, as hex */
#define NGX_HTTP_AI_GUARD_EVENT_ID_LEN   16

/*
 * Output written as it goes into a chain of buffers, each piece into room
 * reserved for it first: nothing is sized apart from its writing.  The
 * first failed allocation sticks, the rest of the writing is skipped.
 */

typedef struct {
    ngx_pool_t                    *pool;
    ngx_chain_t                   *out;
    ngx_chain_t                  **last;
    ngx_buf_t                     *buf;
    ngx_uint_t                     failed;
} ngx_http_ai_guard_out_t;


typedef struct {
    uint32_t                       from;      /* days since 1970-01-01 */
    uint32_t                       to;
    ngx_str_t                      tenant;    /* empty: every tenant */
    ngx_uint_t                     group;
    ngx_uint_t                     format;
} ngx_http_ai_guard_report_args_t;


/* a walk of the ledger for a report */

typedef struct {
    ngx_http_request_t               *request;
    ngx_array_t                      *rows;
    ngx_http_ai_guard_report_args_t  *args;
} ngx_http_ai_guard_copy_t;


/* a walk of the series for one metric family */

typedef struct {
    ngx_http_ai_guard_out_t          *out;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_uint_t                        family;
} ngx_http_ai_guard_family_t;


static ngx_int_t ngx_http_ai_guard_usage_handler(ngx_http_request_t *r);
static void ngx_http_ai_guard_usage_redis_done(ngx_http_request_t *r,
    void *data, ngx_array_t *rows);
static ngx_int_t ngx_http_ai_guard_usage_answer(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args, ngx_array_t *rows,
    ngx_uint_t warning);
static ngx_int_t ngx_http_ai_guard_report_args(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args, ngx_http_ai_guard_verdict_t *v);
static ngx_int_t ngx_http_ai_guard_parse_date(u_char *p, size_t len,
    uint32_t *day);
static uint32_t ngx_http_ai_guard_days_from_civil(ngx_uint_t y,
    ngx_uint_t m, ngx_uint_t d);
static void ngx_http_ai_guard_civil_from_days(uint32_t day, ngx_uint_t *y,
    ngx_uint_t *m, ngx_uint_t *d);
static u_char *ngx_http_ai_guard_format_date(u_char *p, uint32_t day);
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
static ngx_inline ngx_uint_t ngx_http_ai_guard_str_eq(ngx_str_t *a,
    ngx_str_t *b);
static void ngx_http_ai_guard_usage_json(ngx_http_ai_guard_out_t *o,
    ngx_array_t *rows, ngx_http_ai_guard_report_args_t *args);
static void ngx_http_ai_guard_usage_csv(ngx_http_ai_guard_out_t *o,
    ngx_array_t *rows, ngx_http_ai_guard_report_args_t *args);
static void ngx_http_ai_guard_usage_stripe(ngx_http_request_t *r,
    ngx_http_ai_guard_out_t *o, ngx_array_t *rows);
static void ngx_http_ai_guard_out_totals(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_totals_t *t, ngx_uint_t csv);

static ngx_int_t ngx_http_ai_guard_metrics_handler(ngx_http_request_t *r);
static void ngx_http_ai_guard_metrics_write(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_main_conf_t *amcf);
static void ngx_http_ai_guard_metrics_zones(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_main_conf_t *amcf);
static ngx_int_t ngx_http_ai_guard_metrics_series(
    ngx_http_ai_guard_node_t *node, void *data);
static ngx_int_t ngx_http_ai_guard_series_sum(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_series_t *s, ngx_http_ai_guard_series_t *sum);
static void ngx_http_ai_guard_metrics_histogram(ngx_http_ai_guard_out_t *o,
    char *name, char *help, ngx_http_ai_guard_histogram_t *h);
static void ngx_http_ai_guard_metrics_family(ngx_http_ai_guard_out_t *o,
    char *name, char *type, char *help);
static u_char *ngx_http_ai_guard_seconds(u_char *p, uint64_t ms);

static u_char *ngx_http_ai_guard_out_reserve(ngx_http_ai_guard_out_t *o,
    size_t n);
static void ngx_http_ai_guard_out_text(ngx_http_ai_guard_out_t *o,
    char *text);
static void ngx_http_ai_guard_out_printf(ngx_http_ai_guard_out_t *o,
    size_t max, const char *fmt, ...);
static void ngx_http_ai_guard_out_json(ngx_http_ai_guard_out_t *o,
    ngx_str_t *s);
static void ngx_http_ai_guard_out_csv(ngx_http_ai_guard_out_t *o,
    ngx_str_t *s);
static void ngx_http_ai_guard_out_label(ngx_http_ai_guard_out_t *o,
    char *name, u_char *data, size_t len);
static ngx_int_t ngx_http_ai_guard_out_send(ngx_http_request_t *r,
    ngx_http_ai_guard_out_t *o, char *type);


static char  *ngx_http_ai_guard_group_names[] = {
    "", "model", "key", "day"
};


/* the families of the metric series, in the order they are written */

#define NGX_HTTP_AI_GUARD_FAMILY_REQUESTS   0
#define NGX_HTTP_AI_GUARD_FAMILY_TOKENS     1
#define NGX_HTTP_AI_GUARD_FAMILY_COST       2
#define NGX_HTTP_AI_GUARD_FAMILY_ESTIMATED  3
#define NGX_HTTP_AI_GUARD_FAMILY_UNPRICED   4
#define NGX_HTTP_AI_GUARD_FAMILIES          5

static char  *ngx_http_ai_guard_families[][3] = {
    { "ai_guard_requests_total", "counter",
      "Requests ai_guard decided on, by tenant, model, decision and "
      "reason." },
    { "ai_guard_tokens_total", "counter",
      "Tokens of the requests that reached the upstream, by type; cached "
      "tokens are a part of input tokens." },
    { "ai_guard_cost_usd_total", "counter",
      "Cost in USD of the requests that reached the upstream, at the "
      "configured prices." },
    { "ai_guard_usage_estimated_total", "counter",
      "Requests settled on the estimate: the response carried no usage." },
    { "ai_guard_unpriced_requests_total", "counter",
      "Requests whose model no ai_guard_price matched, priced at the "
      "highest configured prices." }
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


char *
ngx_http_ai_guard_metrics_cmd(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_ai_guard_main_conf_t  *amcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_guard_metrics_handler;

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
    ngx_uint_t                        warning;
    ngx_array_t                      *rows;
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

    rows = ngx_http_ai_guard_usage_copy(r, &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER], args);
    if (rows == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_ai_guard_usage_rows(rows, args, 0);

    return ngx_http_ai_guard_usage_answer(r, args, rows, warning);
}


/* Redis's rows are in, or (rows == NULL) Redis did not answer in time */

static void
ngx_http_ai_guard_usage_redis_done(ngx_http_request_t *r, void *data,
    ngx_array_t *rows)
{
    ngx_http_ai_guard_report_args_t  *args = data;

    ngx_int_t                       rc;
    ngx_uint_t                      warning;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    r->read_event_handler = ngx_http_block_reading;

    warning = 0;

    if (rows == NULL) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai_guard: no answer from redis, the usage report "
                      "is this node's own");

        warning = 1;

        rows = ngx_http_ai_guard_usage_copy(r, &amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER], args);
        if (rows == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_http_ai_guard_usage_rows(rows, args, !warning);

    rc = ngx_http_ai_guard_usage_answer(r, args, rows, warning);

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
    ngx_table_elt_t          *h;
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
        ngx_http_ai_guard_usage_csv(&o, rows, args);
        break;

    case NGX_HTTP_AI_GUARD_FORMAT_STRIPE:
        ngx_http_ai_guard_usage_stripe(r, &o, rows);
        break;

    default: /* NGX_HTTP_AI_GUARD_FORMAT_JSON */

        ngx_http_ai_guard_format_date(from, args->from);
        ngx_http_ai_guard_format_date(to, args->to);

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
        ngx_http_ai_guard_usage_json(&o, rows, args);
        ngx_http_ai_guard_out_text(&o, "]}\n");
        break;
    }

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a header for every format: CSV and NDJSON have no room for it */

    if (warning) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-AI-Guard-Warning");
        ngx_str_set(&h->value, NGX_HTTP_AI_GUARD_REDIS_WARNING);
    }

    return ngx_http_ai_guard_out_send(r, &o, types[args->format]);
}


/* NGX_DECLINED with the verdict set: a bad argument, a 400 */

static ngx_int_t
ngx_http_ai_guard_report_args(ngx_http_request_t *r,
    ngx_http_ai_guard_report_args_t *args, ngx_http_ai_guard_verdict_t *v)
{
    u_char      *dst, *src;
    uint32_t     today;
    ngx_str_t    value;
    ngx_uint_t   i, y, m, d;

    today = (uint32_t) (ngx_time() / 86400);
    ngx_http_ai_guard_civil_from_days(today, &y, &m, &d);

    args->from = ngx_http_ai_guard_days_from_civil(y, m, 1);
    args->to = today;
    ngx_str_null(&args->tenant);
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
        && ngx_http_ai_guard_parse_date(value.data, value.len, &args->from)
           != NGX_OK)
    {
        ngx_http_ai_guard_set_verdict(v, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request",
                                      "\"from\" is not a date as YYYY-MM-DD");
        ngx_str_set(&v->param, "from");
        return NGX_DECLINED;
    }

    if (ngx_http_arg(r, (u_char *) "to", 2, &value) == NGX_OK
        && ngx_http_ai_guard_parse_date(value.data, value.len, &args->to)
           != NGX_OK)
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


/* "YYYY-MM-DD", a real day of the proleptic Gregorian calendar */

static ngx_int_t
ngx_http_ai_guard_parse_date(u_char *p, size_t len, uint32_t *day)
{
    ngx_uint_t  i, y, m, d, cy, cm, cd;

    if (len != NGX_HTTP_AI_GUARD_DATE_LEN || p[4] != '-' || p[7] != '-') {
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_HTTP_AI_GUARD_DATE_LEN; i++) {
        if (i != 4 && i != 7 && (p[i] < '0' || p[i] > '9')) {
            return NGX_ERROR;
        }
    }

    y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10
        + (p[3] - '0');
    m = (p[5] - '0') * 10 + (p[6] - '0');
    d = (p[8] - '0') * 10 + (p[9] - '0');

    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) {
        return NGX_ERROR;
    }

    *day = ngx_http_ai_guard_days_from_civil(y, m, d);

    /* February 30th comes back as March 2nd */

    ngx_http_ai_guard_civil_from_days(*day, &cy, &cm, &cd);

    if (cy != y || cm != m || cd != d) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Howard Hinnant's days_from_civil, for years from 1970 on */

static uint32_t
ngx_http_ai_guard_days_from_civil(ngx_uint_t y, ngx_uint_t m, ngx_uint_t d)
{
    ngx_uint_t  era, yoe, doy, doe;

    y -= (m <= 2);
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * ((m > 2) ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return (uint32_t) (era * 146097 + doe - 719468);
}


static void
ngx_http_ai_guard_civil_from_days(uint32_t day, ngx_uint_t *y, ngx_uint_t *m,
    ngx_uint_t *d)
{
    ngx_uint_t  z, era, doe, yoe, doy, mp;

    z = (ngx_uint_t) day + 719468;
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = (mp < 10) ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}


static u_char *
ngx_http_ai_guard_format_date(u_char *p, uint32_t day)
{
    ngx_uint_t  y, m, d;

    if (day > NGX_HTTP_AI_GUARD_DAY_MAX) {
        day = NGX_HTTP_AI_GUARD_DAY_MAX;
    }

    ngx_http_ai_guard_civil_from_days(day, &y, &m, &d);

    return ngx_sprintf(p, "%04ui-%02ui-%02ui", y, m, d);
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
            if (ngx_http_ai_guard_parse_date(row->date,
                                             NGX_HTTP_AI_GUARD_DATE_LEN,
                                             &row->day)
                != NGX_OK
                || row->day < args->from || row->day > args->to
                || (args->tenant.len
                    && !ngx_http_ai_guard_str_eq(&row->tenant,
                                                 &args->tenant)))
            {
                continue;
            }

        } else {
            ngx_http_ai_guard_format_date(row->date, row->day);
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
}


static ngx_inline ngx_uint_t
ngx_http_ai_guard_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_memcmp(a->data, b->data, a->len) == 0;
}


static void
ngx_http_ai_guard_usage_json(ngx_http_ai_guard_out_t *o, ngx_array_t *rows,
    ngx_http_ai_guard_report_args_t *args)
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
ngx_http_ai_guard_usage_csv(ngx_http_ai_guard_out_t *o, ngx_array_t *rows,
    ngx_http_ai_guard_report_args_t *args)
{
    ngx_uint_t                   i, j;
    ngx_http_ai_guard_row_t    **row;
    ngx_http_ai_guard_totals_t   t;

    ngx_http_ai_guard_out_printf(o, 128, "tenant,%s%srequests,input_tokens,"
                                 "output_tokens,cached_tokens,"
                                 "estimated_requests,cost_usd\n",
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
ngx_http_ai_guard_usage_stripe(ngx_http_request_t *r,
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
        ngx_http_ai_guard_out_printf(o, 5 * (NGX_INT64_LEN + 1)
                                        + NGX_HTTP_AI_GUARD_USD_LEN + 1,
                                     ",%uL,%uL,%uL,%uL,%uL,%*s",
                                     t->requests, t->input, t->output,
                                     t->cached, t->estimated,
                                     (size_t) (e - cost), cost);
        return;
    }

    ngx_http_ai_guard_out_printf(o, 5 * NGX_INT64_LEN
                                    + NGX_HTTP_AI_GUARD_USD_LEN + 128,
                                 ",\"requests\":%uL,\"input_tokens\":%uL,"
                                 "\"output_tokens\":%uL,"
                                 "\"cached_tokens\":%uL,"
                                 "\"estimated_requests\":%uL,"
                                 "\"cost_usd\":\"%*s\"",
                                 t->requests, t->input, t->output,
                                 t->cached, t->estimated,
                                 (size_t) (e - cost), cost);
}


/*
 * Prometheus text, format 0.0.4.  Written under the zone's mutex in one
 * pass into buffers allocated as it goes: what is written is what was
 * read, nothing is sized ahead.  The series are bounded by
 * ai_guard_metrics_max_series, and so is the time the mutex is held.
 */

static ngx_int_t
ngx_http_ai_guard_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_str_t                       redis;
    ngx_http_ai_guard_out_t         o;
    ngx_http_ai_guard_main_conf_t  *amcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->zones[NGX_HTTP_AI_GUARD_PART_SERIES].sh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&o, sizeof(ngx_http_ai_guard_out_t));
    o.pool = r->pool;
    o.last = &o.out;

    ngx_http_ai_guard_metrics_write(&o, amcf);

    /* the Redis gauges live in the outbox's zone, under its own mutex */

    if (ngx_http_ai_guard_redis_metrics(r, &redis) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (redis.len) {
        ngx_http_ai_guard_out_printf(&o, redis.len, "%V", &redis);
    }

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_guard_out_send(r, &o, "text/plain; version=0.0.4");
}


static void
ngx_http_ai_guard_metrics_write(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_main_conf_t *amcf)
{
    ngx_http_ai_guard_zone_t    *zone;
    ngx_http_ai_guard_shctx_t   *sh;
    ngx_http_ai_guard_family_t   f;

    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_SERIES];
    sh = zone->sh;

    f.out = o;
    f.zone = zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (f.family = 0; f.family < NGX_HTTP_AI_GUARD_FAMILIES; f.family++) {
        ngx_http_ai_guard_metrics_family(o,
                               ngx_http_ai_guard_families[f.family][0],
                               ngx_http_ai_guard_families[f.family][1],
                               ngx_http_ai_guard_families[f.family][2]);

        (void) ngx_http_ai_guard_zone_walk(zone,
                                           ngx_http_ai_guard_metrics_series,
                                           &f);
    }

    ngx_http_ai_guard_metrics_histogram(o,
        "ai_guard_upstream_response_seconds",
        "Time from the request's start in ai_guard to the end of the "
        "upstream's response.",
        &sh->upstream_time);

    ngx_http_ai_guard_metrics_histogram(o,
        "ai_guard_time_to_first_token_seconds",
        "Time from the request's start in ai_guard to the first byte of a "
        "streamed response.",
        &sh->ttft);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_ai_guard_metrics_family(o, "ai_guard_requests_in_flight",
                                     "gauge",
                                     "Requests between the access check and "
                                     "the end of their response.");
    ngx_http_ai_guard_out_printf(o, NGX_INT_T_LEN + 64,
                                 "ai_guard_requests_in_flight %uA\n",
                                 sh->in_flight);

    ngx_http_ai_guard_metrics_zones(o, amcf);
}


/*
 * The zones' own gauges and counters, read without their mutexes: each
 * is one word, and a scrape a moment off is as good.
 */

static void
ngx_http_ai_guard_metrics_zones(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_main_conf_t *amcf)
{
    ngx_uint_t                 i, k;
    ngx_http_ai_guard_zone_t  *zone;

    static char  *parts[] = { "limits", "ledger", "series" };

    static char  *gauges[][3] = {
        { "ai_guard_zone_size_bytes", "gauge",
          "Size of each part of the shared memory zone." },
        { "ai_guard_zone_used_bytes", "gauge",
          "Bytes of each part in pages in use: its size less its free "
          "pages." },
        { "ai_guard_zone_entries", "gauge",
          "Entries in each part of the zone." },
        { "ai_guard_zone_expired_total", "counter",
          "Entries freed: limit scopes back to a fresh state, ledger rows "
          "older than ai_guard_usage_days." },
        { "ai_guard_zone_refused_total", "counter",
          "Requests refused before the upstream because a part had no "
          "room for their new entry." }
    };

    for (k = 0; k < sizeof(gauges) / sizeof(gauges[0]); k++) {
        ngx_http_ai_guard_metrics_family(o, gauges[k][0], gauges[k][1],
                                         gauges[k][2]);

        for (i = 0; i < NGX_HTTP_AI_GUARD_PARTS; i++) {
            zone = &amcf->zones[i];

            ngx_http_ai_guard_out_printf(o, NGX_SIZE_T_LEN + 64,
                                 "%s{part=\"%s\"} %uL\n", gauges[k][0],
                                 parts[i],
                                 (k == 0) ? (uint64_t) zone->shm_zone->shm.size
                                 : (k == 1) ? (uint64_t)
                                              ngx_http_ai_guard_zone_used(zone)
                                 : (k == 2) ? (uint64_t) zone->sh->entries
                                 : (k == 3) ? zone->sh->freed
                                 : zone->sh->refused);
        }
    }

    ngx_http_ai_guard_metrics_family(o, "ai_guard_usage_dropped_total",
                                     "counter",
                                     "Requests that reached the upstream "
                                     "with no ledger row to bill them to "
                                     "(monitor mode with a full ledger).");
    ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 64,
                  "ai_guard_usage_dropped_total %uL\n",
                  amcf->zones[NGX_HTTP_AI_GUARD_PART_LEDGER].sh->dropped);

    ngx_http_ai_guard_metrics_family(o, "ai_guard_series_dropped_total",
                                     "counter",
                                     "Counts of label sets past "
                                     "ai_guard_metrics_max_series that found "
                                     "no room even under \"other\".");
    ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 64,
                  "ai_guard_series_dropped_total %uL\n",
                  amcf->zones[NGX_HTTP_AI_GUARD_PART_SERIES].sh->dropped);
}


/* a series of the family being written */

static ngx_int_t
ngx_http_ai_guard_metrics_series(ngx_http_ai_guard_node_t *node, void *data)
{
    ngx_http_ai_guard_family_t *f = data;

    u_char                      *key, *e, cost[NGX_HTTP_AI_GUARD_USD_LEN];
    char                        *name, *decision;
    size_t                       len;
    ngx_uint_t                   i;
    ngx_http_ai_guard_out_t     *o;
    ngx_http_ai_guard_series_t  *s, sum;
    ngx_http_ai_guard_labels_t   l;

    static char  *types[] = { "input", "output", "cached" };

    o = f->out;
    s = (ngx_http_ai_guard_series_t *) node->data;
    name = ngx_http_ai_guard_families[f->family][0];

    key = ngx_http_ai_guard_zone_key(s, &len);

    if (ngx_http_ai_guard_series_labels(key, len, &l) != NGX_OK) {
        return NGX_OK;
    }

    if (l.type == NGX_HTTP_AI_GUARD_SERIES_UNPRICED) {
        if (f->family == NGX_HTTP_AI_GUARD_FAMILY_UNPRICED) {
            ngx_http_ai_guard_out_text(o, name);
            ngx_http_ai_guard_out_label(o, "{tenant", l.tenant.data,
                                        l.tenant.len);
            ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 4, "} %uL\n",
                                         s->requests);
        }

        return NGX_OK;
    }

    if (f->family == NGX_HTTP_AI_GUARD_FAMILY_REQUESTS) {

        if (l.type != NGX_HTTP_AI_GUARD_SERIES_REQUESTS) {
            return NGX_OK;
        }

        switch (l.decision) {
        case 'a':
            decision = "allow";
            break;
        case 'r':
            decision = "reject";
            break;
        case 'm':
            decision = "monitor";
            break;
        default:
            decision = "none";
            break;
        }

        ngx_http_ai_guard_out_text(o, name);
        ngx_http_ai_guard_out_label(o, "{tenant", l.tenant.data,
                                    l.tenant.len);
        ngx_http_ai_guard_out_label(o, ",model", l.model.data, l.model.len);
        ngx_http_ai_guard_out_printf(o, 32, ",decision=\"%s\"", decision);
        ngx_http_ai_guard_out_label(o, ",reason", l.reason.data,
                                    l.reason.len);
        ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 4, "} %uL\n",
                                     s->requests);
        return NGX_OK;
    }

    if (l.type != NGX_HTTP_AI_GUARD_SERIES_TOKENS
        || f->family == NGX_HTTP_AI_GUARD_FAMILY_UNPRICED
        || ngx_http_ai_guard_series_sum(f->zone, s, &sum) != NGX_OK)
    {
        return NGX_OK;
    }

    switch (f->family) {

    case NGX_HTTP_AI_GUARD_FAMILY_TOKENS:

        for (i = 0; i < 3; i++) {
            ngx_http_ai_guard_out_text(o, name);
            ngx_http_ai_guard_out_label(o, "{tenant", l.tenant.data,
                                        l.tenant.len);
            ngx_http_ai_guard_out_label(o, ",model", l.model.data,
                                        l.model.len);
            ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 32,
                                         ",type=\"%s\"} %uL\n", types[i],
                                         (i == 0) ? sum.input
                                         : (i == 1) ? sum.output
                                         : sum.cached);
        }

        break;

    case NGX_HTTP_AI_GUARD_FAMILY_COST:

        e = ngx_http_ai_guard_usd_format(cost, sum.cost);

        ngx_http_ai_guard_out_text(o, name);
        ngx_http_ai_guard_out_label(o, "{tenant", l.tenant.data,
                                    l.tenant.len);
        ngx_http_ai_guard_out_label(o, ",model", l.model.data, l.model.len);
        ngx_http_ai_guard_out_printf(o, NGX_HTTP_AI_GUARD_USD_LEN + 4,
                                     "} %*s\n", (size_t) (e - cost), cost);
        break;

    default: /* NGX_HTTP_AI_GUARD_FAMILY_ESTIMATED */

        ngx_http_ai_guard_out_text(o, name);
        ngx_http_ai_guard_out_label(o, "{tenant", l.tenant.data,
                                    l.tenant.len);
        ngx_http_ai_guard_out_label(o, ",model", l.model.data, l.model.len);
        ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 4, "} %uL\n",
                                     sum.estimated);
        break;
    }

    return NGX_OK;
}


/*
 * Token series are kept apart by the decision too (allow, monitor), but
 * written by tenant and model only: the first of the siblings found in
 * the zone writes their sum, the others are skipped.
 */

static ngx_int_t
ngx_http_ai_guard_series_sum(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_series_t *s, ngx_http_ai_guard_series_t *sum)
{
    u_char                      *key, buf[NGX_HTTP_AI_GUARD_SERIES_KEY];
    size_t                       len;
    ngx_uint_t                   i, first;
    ngx_http_ai_guard_series_t  *t;

    static u_char  decisions[] = "-arm";

    ngx_memzero(sum, sizeof(ngx_http_ai_guard_series_t));

    key = ngx_http_ai_guard_zone_key(s, &len);

    if (len > sizeof(buf)) {
        return NGX_OK;
    }

    ngx_memcpy(buf, key, len);

    first = 1;

    for (i = 0; i < sizeof(decisions) - 1; i++) {
        buf[1] = decisions[i];

        t = (buf[1] == key[1])
            ? s
            : ngx_http_ai_guard_zone_find(zone, buf, len);
        if (t == NULL) {
            continue;
        }

        if (first && t != s) {
            return NGX_DECLINED;
        }

        first = 0;

        sum->requests += t->requests;
        sum->input += t->input;
        sum->output += t->output;
        sum->cached += t->cached;
        sum->estimated += t->estimated;
        sum->cost = ngx_http_ai_guard_pico_add(sum->cost, t->cost);
    }

    return NGX_OK;
}


static void
ngx_http_ai_guard_metrics_histogram(ngx_http_ai_guard_out_t *o, char *name,
    char *help, ngx_http_ai_guard_histogram_t *h)
{
    u_char      *p, le[NGX_INT64_LEN + 8];
    uint64_t     count;
    ngx_uint_t   i;

    ngx_http_ai_guard_metrics_family(o, name, "histogram", help);

    count = 0;

    for (i = 0; i < NGX_HTTP_AI_GUARD_BUCKETS; i++) {
        count += h->count[i];

        if (i == NGX_HTTP_AI_GUARD_BUCKETS - 1) {
            p = ngx_cpymem(le, "+Inf", sizeof("+Inf") - 1);

        } else {
            p = ngx_http_ai_guard_seconds(le, ngx_http_ai_guard_bucket_ms[i]);
        }

        ngx_http_ai_guard_out_printf(o, 2 * NGX_INT64_LEN + 128,
                                     "%s_bucket{le=\"%*s\"} %uL\n", name,
                                     (size_t) (p - le), le, count);
    }

    p = ngx_http_ai_guard_seconds(le, h->sum_ms);

    ngx_http_ai_guard_out_printf(o, 2 * NGX_INT64_LEN + 128,
                                 "%s_sum %*s\n%s_count %uL\n", name,
                                 (size_t) (p - le), le, name, h->total);
}


static void
ngx_http_ai_guard_metrics_family(ngx_http_ai_guard_out_t *o, char *name,
    char *type, char *help)
{
    ngx_http_ai_guard_out_printf(o, 2 * ngx_strlen(name) + ngx_strlen(type)
                                    + ngx_strlen(help) + 32,
                                 "# HELP %s %s\n# TYPE %s %s\n",
                                 name, help, name, type);
}


/* milliseconds as exact decimal seconds: 2500 is "2.5" */

static u_char *
ngx_http_ai_guard_seconds(u_char *p, uint64_t ms)
{
    uint64_t  frac;

    p = ngx_sprintf(p, "%uL", ms / 1000);

    frac = ms % 1000;

    if (frac == 0) {
        return p;
    }

    *p++ = '.';
    *p++ = (u_char) ('0' + frac / 100);

    if (frac % 100) {
        *p++ = (u_char) ('0' + frac / 10 % 10);

        if (frac % 10) {
            *p++ = (u_char) ('0' + frac % 10);
        }
    }

    return p;
}


static u_char *
ngx_http_ai_guard_out_reserve(ngx_http_ai_guard_out_t *o, size_t n)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (o->failed) {
        return NULL;
    }

    b = o->buf;

    if (b && (size_t) (b->end - b->last) >= n) {
        return b->last;
    }

    b = ngx_create_temp_buf(o->pool, ngx_max(n, NGX_HTTP_AI_GUARD_OUT_SIZE));
    if (b == NULL) {
        o->failed = 1;
        return NULL;
    }

    cl = ngx_alloc_chain_link(o->pool);
    if (cl == NULL) {
        o->failed = 1;
        return NULL;
    }

    cl->buf = b;
    cl->next = NULL;

    *o->last = cl;
    o->last = &cl->next;
    o->buf = b;

    return b->last;
}


static void
ngx_http_ai_guard_out_text(ngx_http_ai_guard_out_t *o, char *text)
{
    u_char  *p;
    size_t   len;

    len = ngx_strlen(text);

    p = ngx_http_ai_guard_out_reserve(o, len);
    if (p == NULL) {
        return;
    }

    o->buf->last = ngx_cpymem(p, text, len);
}


/* "max" bounds what the format may write: ngx_vslprintf() stops there */

static void
ngx_http_ai_guard_out_printf(ngx_http_ai_guard_out_t *o, size_t max,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_http_ai_guard_out_reserve(o, max);
    if (p == NULL) {
        return;
    }

    va_start(args, fmt);
    o->buf->last = ngx_vslprintf(p, p + max, fmt, args);
    va_end(args);
}


static void
ngx_http_ai_guard_out_json(ngx_http_ai_guard_out_t *o, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_http_ai_guard_out_reserve(o, s->len + 2
                                      + ngx_escape_json(NULL, s->data,
                                                        s->len));
    if (p == NULL) {
        return;
    }

    *p++ = '"';
    p = (u_char *) ngx_escape_json(p, s->data, s->len);
    *p++ = '"';

    o->buf->last = p;
}


/*
 * RFC 4180: a field with a comma, a quote or a line break is quoted.  A
 * field a spreadsheet would read as a formula (model names come from
 * clients) gets a leading quote and is quoted, as OWASP recommends.
 */

static void
ngx_http_ai_guard_out_csv(ngx_http_ai_guard_out_t *o, ngx_str_t *s)
{
    u_char      *p;
    ngx_uint_t   i, quote, formula;

    formula = (s->len
               && (s->data[0] == '=' || s->data[0] == '+'
                   || s->data[0] == '-' || s->data[0] == '@'
                   || s->data[0] == '\t' || s->data[0] == '\r'));

    quote = formula;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] == ',' || s->data[i] == '"' || s->data[i] == '\r'
            || s->data[i] == '\n')
        {
            quote = 1;
            break;
        }
    }

    p = ngx_http_ai_guard_out_reserve(o, 2 * s->len + 3);
    if (p == NULL) {
        return;
    }

    if (quote) {
        *p++ = '"';
    }

    if (formula) {
        *p++ = '\'';
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] == '"') {
            *p++ = '"';
        }

        *p++ = s->data[i];
    }

    if (quote) {
        *p++ = '"';
    }

    o->buf->last = p;
}


/* name="value", the value escaped as the text format asks: \\ \" \n */

static void
ngx_http_ai_guard_out_label(ngx_http_ai_guard_out_t *o, char *name,
    u_char *data, size_t len)
{
    u_char  *p;
    size_t   i, n;

    n = ngx_strlen(name);

    p = ngx_http_ai_guard_out_reserve(o, n + 3 + 2 * len);
    if (p == NULL) {
        return;
    }

    p = ngx_cpymem(p, name, n);

    *p++ = '=';
    *p++ = '"';

    for (i = 0; i < len; i++) {
        switch (data[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = data[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = data[i];
        }
    }

    *p++ = '"';

    o->buf->last = p;
}


static ngx_int_t
ngx_http_ai_guard_out_send(ngx_http_request_t *r, ngx_http_ai_guard_out_t *o,
    char *type)
{
    off_t         len;
    ngx_int_t     rc;
    ngx_chain_t  *cl;

    len = 0;

    for (cl = o->out; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;

    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (o->out == NULL) {
        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    o->buf->last_buf = (r == r->main) ? 1 : 0;
    o->buf->last_in_chain = 1;

    return ngx_http_output_filter(r, o->out);
}
