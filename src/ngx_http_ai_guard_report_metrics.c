
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_redis.h"
#include "ngx_http_ai_guard_report_out.h"
#include "ngx_http_ai_guard_series.h"
#include "ngx_http_ai_guard_store.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_report_metrics.h"


/* a walk of the series for one metric family */

typedef struct {
    ngx_http_ai_guard_out_t          *out;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_uint_t                        family;
    uint64_t                          window[2];  /* today, this month */
    uint64_t                          now;
} ngx_http_ai_guard_family_t;


/* the families of the metric series, in the order they are written */

#define NGX_HTTP_AI_GUARD_FAMILY_REQUESTS   0
#define NGX_HTTP_AI_GUARD_FAMILY_TOKENS     1
#define NGX_HTTP_AI_GUARD_FAMILY_COST       2
#define NGX_HTTP_AI_GUARD_FAMILY_ESTIMATED  3
#define NGX_HTTP_AI_GUARD_FAMILY_UNPRICED   4
#define NGX_HTTP_AI_GUARD_FAMILY_RATIO      5
#define NGX_HTTP_AI_GUARD_FAMILY_SPENT      6
#define NGX_HTTP_AI_GUARD_FAMILY_BUDGET     7
#define NGX_HTTP_AI_GUARD_FAMILY_ALERTS     8
#define NGX_HTTP_AI_GUARD_FAMILY_REMAINING  9
#define NGX_HTTP_AI_GUARD_FAMILY_LIMIT      10
#define NGX_HTTP_AI_GUARD_FAMILIES          11

static char  *ngx_http_ai_guard_families[][3] = {
    { "ai_guard_requests_total", "counter",
      "Requests ai_guard decided on, by tenant, model, decision, the "
      "error code and the reason ($ai_guard_reason)." },
    { "ai_guard_tokens_total", "counter",
      "Tokens of the requests that reached the upstream, by type; cached "
      "and cache_write tokens are parts of input tokens, reasoning tokens "
      "a part of output tokens." },
    { "ai_guard_cost_usd_total", "counter",
      "Cost in USD of the requests that reached the upstream, at the "
      "configured prices." },
    { "ai_guard_usage_estimated_total", "counter",
      "Requests settled on the estimate: the response carried no usage." },
    { "ai_guard_unpriced_requests_total", "counter",
      "Requests whose model no ai_guard_price matched, priced at the "
      "highest configured prices." },
    { "ai_guard_budget_used_ratio", "gauge",
      "The part of a tenant's (or a key's) budget spent in its window, "
      "as the last settlement left it." },
    { "ai_guard_budget_spent_usd", "gauge",
      "USD spent of a tenant's (or a key's) budget in its window." },
    { "ai_guard_budget_usd", "gauge",
      "A tenant's (or a key's) budget in its window." },
    { "ai_guard_budget_alerts_total", "counter",
      "Budget thresholds (budget_alert=) crossed, each once a window: by "
      "the worker that crossed it, or with Redis the node Redis named "
      "first." },
    { "ai_guard_limit_remaining", "gauge",
      "What remained of a tenant's limit as its last request's admission "
      "left it (the x-ratelimit-remaining-* headers), all of it once the "
      "limit is full again: requests, tokens, or USD of a budget." },
    { "ai_guard_limit_size", "gauge",
      "A tenant's limit, of the tier of its last request, in the units "
      "of ai_guard_limit_remaining." }
};


/* the dialects of the histograms, by their key's byte */

static char *
ngx_http_ai_guard_dialect_name(u_char c)
{
    switch (c) {
    case 'o':
        return "openai";
    case 'a':
        return "anthropic";
    case 'g':
        return "gemini";
    default:
        return "unknown";
    }
}


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
static ngx_int_t ngx_http_ai_guard_metrics_budget(ngx_http_ai_guard_family_t *f,
    ngx_http_ai_guard_series_t *s, ngx_http_ai_guard_labels_t *l);
static ngx_int_t ngx_http_ai_guard_metrics_remaining(
    ngx_http_ai_guard_family_t *f, ngx_http_ai_guard_series_t *s,
    ngx_http_ai_guard_labels_t *l);
static ngx_int_t ngx_http_ai_guard_metrics_histo(
    ngx_http_ai_guard_node_t *node, void *data);
static void ngx_http_ai_guard_metrics_histo_head(ngx_http_ai_guard_out_t *o,
    const ngx_http_ai_guard_histo_family_t *hf, char *suffix,
    ngx_http_ai_guard_labels_t *l, char *dialect);
static void ngx_http_ai_guard_metrics_family(ngx_http_ai_guard_out_t *o,
    char *name, char *type, char *help);
static u_char *ngx_http_ai_guard_decimal(u_char *p, uint64_t v,
    ngx_uint_t decimals);
static u_char *ngx_http_ai_guard_ratio(u_char *p, uint64_t used,
    uint64_t limit);


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
    uint64_t                                 now;
    ngx_uint_t                               h, i;
    ngx_http_ai_guard_zone_t                *zone;
    ngx_http_ai_guard_shctx_t               *sh;
    ngx_http_ai_guard_family_t               f;
    const ngx_http_ai_guard_histo_family_t  *hf;

    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_SERIES];
    sh = zone->sh;

    now = ngx_http_ai_guard_now();

    f.out = o;
    f.zone = zone;
    f.now = now;
    f.window[0] = ngx_http_ai_guard_cal_window(NGX_HTTP_AI_GUARD_CAL_DAY, now);
    f.window[1] = ngx_http_ai_guard_cal_window(NGX_HTTP_AI_GUARD_CAL_MONTH,
                                               now);

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

    /* the GenAI histograms; the token usage is one family of two types */

    for (h = 0; h < NGX_HTTP_AI_GUARD_HISTOS; h++) {
        hf = &ngx_http_ai_guard_histo_families[h];

        if (h != NGX_HTTP_AI_GUARD_HISTO_OUTPUT) {
            ngx_http_ai_guard_metrics_family(o, hf->name, "histogram",
                                             hf->help);
        }

        if (h == NGX_HTTP_AI_GUARD_HISTO_INPUT) {
            continue;
        }

        f.family = h;

        (void) ngx_http_ai_guard_zone_walk(zone,
                                           ngx_http_ai_guard_metrics_histo,
                                           &f);
    }

    /* and the same entries' answers by status */

    ngx_http_ai_guard_metrics_family(o, "ai_guard_upstream_responses_total",
                                     "counter",
                                     "Requests that reached the upstream, by "
                                     "the status class of its answer "
                                     "(\"none\": no answer came).");

    f.family = NGX_HTTP_AI_GUARD_HISTOS;

    (void) ngx_http_ai_guard_zone_walk(zone, ngx_http_ai_guard_metrics_histo,
                                       &f);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_ai_guard_metrics_family(o, "ai_guard_requests_in_flight",
                                     "gauge",
                                     "Requests between the access check and "
                                     "the end of their response.");
    ngx_http_ai_guard_out_printf(o, NGX_INT_T_LEN + 64,
                                 "ai_guard_requests_in_flight %uA\n",
                                 sh->in_flight);

    ngx_http_ai_guard_metrics_family(o, "ai_guard_pii_redacted_total",
                                     "counter",
                                     "Spans of personal data or secrets "
                                     "ai_guard_pii_action redact replaced "
                                     "in forwarded prompts, by detector.");

    for (i = 0; i < NGX_HTTP_AI_GUARD_PII_DETECTORS; i++) {
        ngx_http_ai_guard_out_printf(o, NGX_INT_T_LEN + 64,
                                 "ai_guard_pii_redacted_total"
                                 "{detector=\"%s\"} %uA\n",
                                 ngx_http_ai_guard_pii_name(1u << i),
                                 sh->redacted[i]);
    }

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
    uint64_t                   changes;
    ngx_uint_t                 i, k, keys;
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

    if (amcf->store == NULL) {
        return;
    }

    changes = ngx_http_ai_guard_store_changes(amcf, &keys);

    ngx_http_ai_guard_metrics_family(o, "ai_guard_admin_changes_total",
                                     "counter",
                                     "Keys created, updated, rotated or "
                                     "revoked through the admin API.");
    ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 64,
                                 "ai_guard_admin_changes_total %uL\n",
                                 changes);

    ngx_http_ai_guard_metrics_family(o, "ai_guard_key_store_keys", "gauge",
                                     "Keys in the key store.");
    ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 64,
                                 "ai_guard_key_store_keys %ui\n", keys);
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

    static char  *types[] = {
        "input", "output", "cached", "reasoning", "cache_write"
    };

    o = f->out;
    s = (ngx_http_ai_guard_series_t *) node->data;
    name = ngx_http_ai_guard_families[f->family][0];

    key = ngx_http_ai_guard_zone_key(s, &len);

    if (ngx_http_ai_guard_series_labels(key, len, &l) != NGX_OK) {
        return NGX_OK;
    }

    if (l.type == NGX_HTTP_AI_GUARD_SERIES_BUDGET
        || l.type == NGX_HTTP_AI_GUARD_SERIES_ALERTS)
    {
        return ngx_http_ai_guard_metrics_budget(f, s, &l);
    }

    if (l.type == NGX_HTTP_AI_GUARD_SERIES_LIMITS) {
        return ngx_http_ai_guard_metrics_remaining(f, s, &l);
    }

    if (l.type == NGX_HTTP_AI_GUARD_SERIES_HISTO) {
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
        ngx_http_ai_guard_out_label(o, ",code", l.code.data, l.code.len);
        ngx_http_ai_guard_out_label(o, ",reason", l.reason.data,
                                    l.reason.len);
        ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 4, "} %uL\n",
                                     s->requests);
        return NGX_OK;
    }

    if (l.type != NGX_HTTP_AI_GUARD_SERIES_TOKENS
        || f->family >= NGX_HTTP_AI_GUARD_FAMILY_UNPRICED
        || ngx_http_ai_guard_series_sum(f->zone, s, &sum) != NGX_OK)
    {
        return NGX_OK;
    }

    switch (f->family) {

    case NGX_HTTP_AI_GUARD_FAMILY_TOKENS:

        for (i = 0; i < 5; i++) {
            ngx_http_ai_guard_out_text(o, name);
            ngx_http_ai_guard_out_label(o, "{tenant", l.tenant.data,
                                        l.tenant.len);
            ngx_http_ai_guard_out_label(o, ",model", l.model.data,
                                        l.model.len);
            ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 32,
                                         ",type=\"%s\"} %uL\n", types[i],
                                         (i == 0) ? sum.input
                                         : (i == 1) ? sum.output
                                         : (i == 2) ? sum.cached
                                         : (i == 3) ? sum.reasoning
                                         : sum.cache_write);
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
        sum->reasoning += t->reasoning;
        sum->cache_write += t->cache_write;
        sum->estimated += t->estimated;
        sum->cost = ngx_http_ai_guard_pico_add(sum->cost, t->cost);
    }

    return NGX_OK;
}


/*
 * A budget's gauges, by tenant, key (empty for a tenant's budget) and
 * period; its window over, nothing spent in the new one yet.  And the
 * alerts of its thresholds.
 */

static ngx_int_t
ngx_http_ai_guard_metrics_budget(ngx_http_ai_guard_family_t *f,
    ngx_http_ai_guard_series_t *s, ngx_http_ai_guard_labels_t *l)
{
    u_char                             *p, buf[NGX_HTTP_AI_GUARD_USD_LEN];
    char                               *name, *period;
    uint64_t                            used, window;
    ngx_http_ai_guard_out_t            *o;
    ngx_http_ai_guard_budget_series_t  *b;

    o = f->out;
    name = ngx_http_ai_guard_families[f->family][0];
    period = (l->decision == 'd') ? "day" : "month";

    if (l->type == NGX_HTTP_AI_GUARD_SERIES_ALERTS) {
        if (f->family != NGX_HTTP_AI_GUARD_FAMILY_ALERTS) {
            return NGX_OK;
        }

        ngx_http_ai_guard_out_text(o, name);
        ngx_http_ai_guard_out_label(o, "{tenant", l->tenant.data,
                                    l->tenant.len);
        ngx_http_ai_guard_out_label(o, ",key", l->model.data, l->model.len);
        ngx_http_ai_guard_out_printf(o, 32, ",period=\"%s\"", period);
        ngx_http_ai_guard_out_label(o, ",threshold", l->reason.data,
                                    l->reason.len);
        ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 4, "} %uL\n",
                                     s->requests);
        return NGX_OK;
    }

    if (f->family < NGX_HTTP_AI_GUARD_FAMILY_RATIO
        || f->family > NGX_HTTP_AI_GUARD_FAMILY_BUDGET)
    {
        return NGX_OK;
    }

    b = (ngx_http_ai_guard_budget_series_t *) s;

    window = f->window[l->decision == 'd' ? 0 : 1];
    used = (b->window == window) ? b->used : 0;

    switch (f->family) {

    case NGX_HTTP_AI_GUARD_FAMILY_RATIO:
        p = ngx_http_ai_guard_ratio(buf, used, b->limit);
        break;

    case NGX_HTTP_AI_GUARD_FAMILY_SPENT:
        p = ngx_http_ai_guard_usd_format(buf, (int64_t) used);
        break;

    default: /* NGX_HTTP_AI_GUARD_FAMILY_BUDGET */
        p = ngx_http_ai_guard_usd_format(buf, (int64_t) b->limit);
    }

    ngx_http_ai_guard_out_text(o, name);
    ngx_http_ai_guard_out_label(o, "{tenant", l->tenant.data, l->tenant.len);
    ngx_http_ai_guard_out_label(o, ",key", l->model.data, l->model.len);
    ngx_http_ai_guard_out_printf(o, NGX_HTTP_AI_GUARD_USD_LEN + 32,
                                 ",period=\"%s\"} %*s\n", period,
                                 (size_t) (p - buf), buf);

    return NGX_OK;
}


/*
 * What remains of a tenant's limits, one series a limit its tiers have:
 * as the last admission left it, or the whole limit from the moment it
 * was all back (a bucket refilled, a quota's window over); and the
 * limits themselves.  Budgets in USD, exact.
 */

static ngx_int_t
ngx_http_ai_guard_metrics_remaining(ngx_http_ai_guard_family_t *f,
    ngx_http_ai_guard_series_t *s, ngx_http_ai_guard_labels_t *l)
{
    u_char                             *p, buf[NGX_HTTP_AI_GUARD_USD_LEN];
    char                               *name;
    uint64_t                            v;
    ngx_uint_t                          k;
    ngx_http_ai_guard_out_t            *o;
    ngx_http_ai_guard_remaining_t      *g;
    ngx_http_ai_guard_limits_series_t  *ls;

    if (f->family < NGX_HTTP_AI_GUARD_FAMILY_REMAINING) {
        return NGX_OK;
    }

    o = f->out;
    name = ngx_http_ai_guard_families[f->family][0];
    ls = (ngx_http_ai_guard_limits_series_t *) s;

    for (k = 1; k < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; k++) {
        g = &ls->kinds[k - 1];

        if (g->limit == 0) {
            continue;
        }

        v = (f->family == NGX_HTTP_AI_GUARD_FAMILY_LIMIT
             || f->now >= g->full_at)
            ? g->limit : g->remaining;

        if (k == NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY
            || k == NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH)
        {
            p = ngx_http_ai_guard_usd_format(buf, (int64_t) v);

        } else {
            p = ngx_sprintf(buf, "%uL", v);
        }

        ngx_http_ai_guard_out_text(o, name);
        ngx_http_ai_guard_out_label(o, "{tenant", l->tenant.data,
                                    l->tenant.len);
        ngx_http_ai_guard_out_printf(o, NGX_HTTP_AI_GUARD_USD_LEN + 64,
                                     ",limit=\"%s\"} %*s\n",
                                     ngx_http_ai_guard_limit_name(k),
                                     (size_t) (p - buf), buf);
    }

    return NGX_OK;
}


/* the histogram f->family of an 'H' entry, in its buckets' units */

static ngx_int_t
ngx_http_ai_guard_metrics_histo(ngx_http_ai_guard_node_t *node, void *data)
{
    ngx_http_ai_guard_family_t *f = data;

    u_char                                  *key, *p, le[NGX_INT64_LEN + 8];
    char                                    *dialect;
    size_t                                   len;
    uint64_t                                 count, *w;
    ngx_uint_t                               h, i, last;
    ngx_http_ai_guard_out_t                 *o;
    ngx_http_ai_guard_labels_t               l;
    ngx_http_ai_guard_histo_t               *histo;
    const ngx_http_ai_guard_histo_family_t  *hf;

    static char  *statuses[] = { "none", "2xx", "3xx", "4xx", "5xx" };

    o = f->out;
    histo = (ngx_http_ai_guard_histo_t *) node->data;

    key = ngx_http_ai_guard_zone_key(histo, &len);

    if (ngx_http_ai_guard_series_labels(key, len, &l) != NGX_OK
        || l.type != NGX_HTTP_AI_GUARD_SERIES_HISTO)
    {
        return NGX_OK;
    }

    dialect = ngx_http_ai_guard_dialect_name(l.decision);

    if (f->family == NGX_HTTP_AI_GUARD_HISTOS) {
        for (i = 0; i < NGX_HTTP_AI_GUARD_HISTO_STATUSES; i++) {
            ngx_http_ai_guard_out_text(o, "ai_guard_upstream_responses_total");
            ngx_http_ai_guard_out_label(o, "{tenant", l.tenant.data,
                                        l.tenant.len);
            ngx_http_ai_guard_out_label(o, ",model", l.model.data,
                                        l.model.len);
            ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 64,
                                         ",dialect=\"%s\",status=\"%s\"} "
                                         "%uL\n", dialect, statuses[i],
                                         histo->status[i]);
        }

        return NGX_OK;
    }

    /* the token usage: its input and its output, one family */

    h = (f->family == NGX_HTTP_AI_GUARD_HISTO_OUTPUT)
        ? NGX_HTTP_AI_GUARD_HISTO_INPUT : f->family;
    last = f->family;

    for ( /* void */ ; h <= last; h++) {
        hf = &ngx_http_ai_guard_histo_families[h];
        w = &histo->words[hf->offset];
        count = 0;

        for (i = 0; i <= hf->nbounds; i++) {
            count += w[i];

            if (i == hf->nbounds) {
                p = ngx_cpymem(le, "+Inf", sizeof("+Inf") - 1);

            } else {
                p = ngx_http_ai_guard_decimal(le, hf->bounds[i],
                                              hf->decimals);
            }

            ngx_http_ai_guard_metrics_histo_head(o, hf, "_bucket", &l,
                                                 dialect);
            ngx_http_ai_guard_out_printf(o, 2 * NGX_INT64_LEN + 32,
                                         ",le=\"%*s\"} %uL\n",
                                         (size_t) (p - le), le, count);
        }

        p = ngx_http_ai_guard_decimal(le, w[hf->nbounds + 1], hf->decimals);

        ngx_http_ai_guard_metrics_histo_head(o, hf, "_sum", &l, dialect);
        ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 32, "} %*s\n",
                                     (size_t) (p - le), le);

        ngx_http_ai_guard_metrics_histo_head(o, hf, "_count", &l, dialect);
        ngx_http_ai_guard_out_printf(o, NGX_INT64_LEN + 8, "} %uL\n",
                                     count);
    }

    return NGX_OK;
}


/* a histogram's sample up to its closing brace: its name and labels */

static void
ngx_http_ai_guard_metrics_histo_head(ngx_http_ai_guard_out_t *o,
    const ngx_http_ai_guard_histo_family_t *hf, char *suffix,
    ngx_http_ai_guard_labels_t *l, char *dialect)
{
    ngx_http_ai_guard_out_printf(o, 2 * NGX_INT64_LEN + 64, "%s%s",
                                 hf->name, suffix);
    ngx_http_ai_guard_out_label(o, "{tenant", l->tenant.data,
                                l->tenant.len);
    ngx_http_ai_guard_out_label(o, ",model", l->model.data, l->model.len);
    ngx_http_ai_guard_out_printf(o, 2 * NGX_INT64_LEN + 128,
                                 ",dialect=\"%s\"%s%s%s", dialect,
                                 hf->label ? ",type=\"" : "",
                                 hf->label ? hf->label : "",
                                 hf->label ? "\"" : "");
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


/*
 * An integer kept in units of 10^-decimals as its exact decimal: 2500 ms
 * with 3 decimals is "2.5"; no trailing zeros, no float.
 */

static u_char *
ngx_http_ai_guard_decimal(u_char *p, uint64_t v, ngx_uint_t decimals)
{
    uint64_t    scale, frac;
    ngx_uint_t  i;

    for (scale = 1, i = 0; i < decimals; i++) {
        scale *= 10;
    }

    p = ngx_sprintf(p, "%uL", v / scale);

    frac = v % scale;

    if (frac == 0) {
        return p;
    }

    *p++ = '.';

    while (frac) {
        scale /= 10;
        *p++ = (u_char) ('0' + frac / scale);
        frac %= scale;
    }

    return p;
}


/* used / limit to six decimals, rounded down, in integers only */

static u_char *
ngx_http_ai_guard_ratio(u_char *p, uint64_t used, uint64_t limit)
{
    uint64_t    q, r;
    ngx_uint_t  i;

    if (limit == 0) {
        return ngx_cpymem(p, "0", 1);
    }

    /* r * 10 must not wrap: a budget past 1.8 million USD loses a digit */

    while (limit > (uint64_t) -1 / 10) {
        limit /= 10;
        used /= 10;
    }

    q = used / limit;
    r = used % limit;

    p = ngx_sprintf(p, "%uL", q);

    if (r == 0) {
        return p;
    }

    *p++ = '.';

    for (i = 0; i < 6 && r; i++) {
        r *= 10;
        *p++ = (u_char) ('0' + r / limit);
        r %= limit;
    }

    return p;
}
