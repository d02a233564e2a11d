
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_redis_transport.h"
#include "ngx_http_ai_guard_report_out.h"
#include "ngx_http_ai_guard_series.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_report_metrics.h"


/* a walk of the series for one metric family */

typedef struct {
    ngx_http_ai_guard_out_t          *out;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_uint_t                        family;
} ngx_http_ai_guard_family_t;


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


static ngx_int_t ngx_http_ai_guard_metrics_handler(ngx_http_request_t *r);
static void ngx_http_ai_guard_metrics_write(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_main_conf_t *amcf);
static void ngx_http_ai_guard_metrics_zones(ngx_http_ai_guard_out_t *o,
    ngx_http_ai_guard_main_conf_t *amcf);
static ngx_int_t ngx_http_ai_guard_metrics_series(
    ngx_http_ai_guard_node_t *node,
    void *data);
static ngx_int_t ngx_http_ai_guard_series_sum(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_series_t *s, ngx_http_ai_guard_series_t *sum);
static void ngx_http_ai_guard_metrics_histogram(ngx_http_ai_guard_out_t *o,
    char *name, char *help, ngx_http_ai_guard_histogram_t *h);
static void ngx_http_ai_guard_metrics_family(ngx_http_ai_guard_out_t *o,
    char *name, char *type, char *help);
static u_char *ngx_http_ai_guard_seconds(u_char *p, uint64_t ms);


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
