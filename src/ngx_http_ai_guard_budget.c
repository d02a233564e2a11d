
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_redis_transport.h"
#include "ngx_http_ai_guard_series.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_budget.h"


/* the stream of alerts keeps about this many events (XADD MAXLEN ~) */
#define NGX_HTTP_AI_GUARD_BUDGET_STREAM_LEN  "10000"

/* the fields of a stream's event, and the script's arguments */
#define NGX_HTTP_AI_GUARD_BUDGET_FIELDS      10
#define NGX_HTTP_AI_GUARD_BUDGET_ARGS        (8 + 2 * 10)

/* a window's set of alerted thresholds outlives the window by a day */
#define NGX_HTTP_AI_GUARD_BUDGET_KEEP_MS     NGX_HTTP_AI_GUARD_DAY_MS


/*
 * An alert on its way: what the log line, the counter and the stream's
 * event say, and where its bit is when Redis did not take it.  With
 * Redis it is malloc()ed and goes with the command (the request is gone
 * by the reply); its strings follow it.
 */

typedef struct {
    ngx_http_ai_guard_main_conf_t  *amcf;
    ngx_log_t                      *log;
    ngx_str_t                       scope;
    ngx_str_t                       tenant;
    ngx_str_t                       key;       /* empty: a tenant's */
    uint64_t                        used;
    uint64_t                        limit;
    uint64_t                        window;
    ngx_uint_t                      b;
    ngx_uint_t                      bit;
    ngx_uint_t                      percent;
} ngx_http_ai_guard_budget_sent_t;


static ngx_http_ai_guard_budget_sent_t *ngx_http_ai_guard_budget_sent(
    ngx_http_request_t *r, ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t b,
    ngx_uint_t bit, ngx_http_ai_guard_budget_sent_t *local);
static ngx_int_t ngx_http_ai_guard_budget_send(ngx_http_request_t *r,
    ngx_http_ai_guard_budget_sent_t *a);
static void ngx_http_ai_guard_budget_done(void *data, redisReply *reply);
static void ngx_http_ai_guard_budget_unmark(
    ngx_http_ai_guard_budget_sent_t *a);
static void ngx_http_ai_guard_budget_fired(ngx_http_ai_guard_budget_sent_t *a);
static u_char *ngx_http_ai_guard_budget_window(u_char *p, ngx_uint_t b,
    uint64_t window);
static uint64_t ngx_http_ai_guard_budget_threshold(uint64_t limit,
    ngx_uint_t percent);


/*
 * KEYS: the window's set of alerted thresholds, the stream.  ARGV: the
 * threshold, the set's time to live (ms), the stream's length, then the
 * event's fields and values.  1: this call alerted; 0: one before it did.
 */

static const char  ngx_http_ai_guard_budget_lua[] =
    "if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',\n"
    "           unpack(ARGV, 4))\n"
    "return 1\n";

static ngx_uint_t  ngx_http_ai_guard_budget_script;


/*
 * budget_alert=50%,80%,100%, the value after "=": up to 8 percents, 1% to
 * 1000%, any order; the tier's parameter table reports what is wrong
 */

ngx_int_t
ngx_http_ai_guard_budget_alert_set(ngx_conf_t *cf,
    ngx_http_ai_guard_tier_t *tier, ngx_str_t *value, ngx_uint_t arg)
{
    u_char      *p, *last, *q;
    ngx_int_t    n;
    ngx_uint_t   i, j;

    if (tier->budget_alerts) {
        return NGX_DECLINED;
    }

    p = value->data;
    last = value->data + value->len;

    while (p < last) {
        q = ngx_strlchr(p, last, ',');
        if (q == NULL) {
            q = last;
        }

        n = (q - p >= 2 && q[-1] == '%') ? ngx_atoi(p, q - p - 1)
                                          : NGX_ERROR;

        if (n < 1 || n > 1000
            || tier->budget_alerts == NGX_HTTP_AI_GUARD_ALERTS)
        {
            goto invalid;
        }

        /* kept ascending: the bits of the alert state follow this order */

        for (i = 0; i < tier->budget_alerts; i++) {
            if (tier->budget_alert[i] == (ngx_uint_t) n) {
                goto invalid;
            }

            if (tier->budget_alert[i] > (ngx_uint_t) n) {
                break;
            }
        }

        for (j = tier->budget_alerts; j > i; j--) {
            tier->budget_alert[j] = tier->budget_alert[j - 1];
        }

        tier->budget_alert[i] = n;
        tier->budget_alerts++;

        p = q + 1;
    }

    if (tier->budget_alerts && last[-1] != ',') {
        return NGX_OK;
    }

invalid:

    tier->budget_alerts = 0;

    return NGX_ERROR;
}


/* at the tier's end: thresholds need a budget to be thresholds of */

char *
ngx_http_ai_guard_budget_tier(ngx_conf_t *cf, ngx_http_ai_guard_tier_t *tier)
{
    if (tier->budget_alerts
        && tier->limits[NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY] == 0
        && tier->limits[NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH] == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_tier \"%V\" has budget_alert= but no "
                           "budget to alert on: add \"budget=<USD>/day\" or "
                           "\"budget=<USD>/month\"", &tier->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_ai_guard_budget_redis_init(ngx_conf_t *cf)
{
    ngx_int_t  n;

    n = ngx_http_ai_guard_redis_script(cf, ngx_http_ai_guard_budget_lua);
    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_budget_script = n;

    return NGX_OK;
}


/* a reservation in the window; a new window starts with nothing */

void
ngx_http_ai_guard_budget_hold(ngx_http_ai_guard_budget_state_t *state,
    uint64_t window, uint64_t cost)
{
    if (state->window != (uint32_t) window) {
        state->window = (uint32_t) window;
        state->fired = 0;
        state->held = 0;
    }

    state->held = ngx_http_ai_guard_sat_add(state->held, cost);
}


/* its settlement; one of a window gone is of no concern any more */

void
ngx_http_ai_guard_budget_release(ngx_http_ai_guard_budget_state_t *state,
    uint64_t window, uint64_t cost)
{
    if (state->window == (uint32_t) window) {
        state->held -= ngx_min(state->held, cost);
    }
}


/*
 * A budget of the request's scope as its settlement left it, for its
 * gauge and its alerts: a tenant's or a key's, never a scope of values
 * the clients choose (their names would be labels).
 */

void
ngx_http_ai_guard_budget_note(ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t kind,
    uint64_t used, uint64_t limit, uint64_t window)
{
    ngx_uint_t                        b;
    ngx_http_ai_guard_budget_note_t  *note;

    if (ctx->key == NULL || ctx->scope.len == 0
        || (ctx->scope.data[0] != 't' && ctx->scope.data[0] != 'k'))
    {
        return;
    }

    b = (kind == NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY)
        ? NGX_HTTP_AI_GUARD_BUDGET_DAY : NGX_HTTP_AI_GUARD_BUDGET_MONTH;

    note = &ctx->budget[b];

    note->used = used;
    note->limit = limit;
    note->window = window;
    note->period = (b == NGX_HTTP_AI_GUARD_BUDGET_DAY) ? 'd' : 'm';
}


/* a noted budget past its tier's lowest threshold */

ngx_uint_t
ngx_http_ai_guard_budget_watched(ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t b)
{
    ngx_http_ai_guard_tier_t         *tier;
    ngx_http_ai_guard_budget_note_t  *note;

    note = &ctx->budget[b];

    if (note->period == 0) {
        return 0;
    }

    tier = ctx->key->tier_conf;

    return tier && tier->budget_alerts
           && note->used >= ngx_http_ai_guard_budget_threshold(note->limit,
                                                   tier->budget_alert[0]);
}


/*
 * The thresholds the budget crossed that its window has not alerted yet,
 * marked alerted now, under the limits zone's mutex: one worker of one
 * node takes each.  "until" is the end of the window, which the entry
 * must outlive.
 */

ngx_uint_t
ngx_http_ai_guard_budget_crossed(ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t b,
    ngx_http_ai_guard_budget_state_t *state, uint64_t now, uint64_t *until)
{
    ngx_uint_t                        i, crossed;
    ngx_http_ai_guard_tier_t         *tier;
    ngx_http_ai_guard_budget_note_t  *note;

    if (!ngx_http_ai_guard_budget_watched(ctx, b)) {
        return 0;
    }

    note = &ctx->budget[b];
    tier = ctx->key->tier_conf;

    if (state->window != (uint32_t) note->window) {
        state->window = (uint32_t) note->window;
        state->fired = 0;
        state->held = 0;
    }

    crossed = 0;

    for (i = 0; i < tier->budget_alerts; i++) {
        if (!(state->fired & (1u << i))
            && note->used >= ngx_http_ai_guard_budget_threshold(note->limit,
                                                   tier->budget_alert[i]))
        {
            crossed |= 1u << i;
        }
    }

    state->fired |= crossed;

    *until = now + ngx_http_ai_guard_cal_reset_ms(
                       (b == NGX_HTTP_AI_GUARD_BUDGET_DAY)
                       ? NGX_HTTP_AI_GUARD_CAL_DAY
                       : NGX_HTTP_AI_GUARD_CAL_MONTH,
                       now);

    return crossed;
}


/*
 * Each threshold crossed: without Redis, alerted now (the log line and
 * the counter); with Redis, when Redis says this node is the first.
 */

void
ngx_http_ai_guard_budget_alert(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t b, ngx_uint_t crossed)
{
    ngx_uint_t                        bit;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_budget_sent_t   local, *a;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    for (bit = 0; bit < NGX_HTTP_AI_GUARD_ALERTS; bit++) {

        if (!(crossed & (1u << bit))) {
            continue;
        }

        a = ngx_http_ai_guard_budget_sent(r, ctx, b, bit,
                                          amcf->redis ? NULL : &local);
        if (a == NULL) {
            return;
        }

        if (amcf->redis == NULL) {
            ngx_http_ai_guard_budget_fired(a);
            continue;
        }

        if (ngx_http_ai_guard_budget_send(r, a) != NGX_OK) {
            ngx_http_ai_guard_budget_unmark(a);
            ngx_free(a);
        }
    }
}


static ngx_http_ai_guard_budget_sent_t *
ngx_http_ai_guard_budget_sent(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_uint_t b, ngx_uint_t bit,
    ngx_http_ai_guard_budget_sent_t *local)
{
    u_char                           *p;
    ngx_str_t                         key;
    ngx_http_ai_guard_budget_sent_t  *a;

    ngx_str_null(&key);

    if (ctx->scope.data[0] == 'k') {
        key.data = ctx->key->id.data;
        key.len = ctx->key->id.len;
    }

    a = local;

    if (a == NULL) {
        a = ngx_alloc(sizeof(ngx_http_ai_guard_budget_sent_t)
                      + ctx->scope.len + ctx->key->tenant.len + key.len,
                      r->connection->log);
        if (a == NULL) {
            return NULL;
        }
    }

    a->amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    a->log = local ? r->connection->log : ngx_cycle->log;
    a->used = ctx->budget[b].used;
    a->limit = ctx->budget[b].limit;
    a->window = ctx->budget[b].window;
    a->b = b;
    a->bit = bit;
    a->percent = ((ngx_http_ai_guard_tier_t *) ctx->key->tier_conf)
                     ->budget_alert[bit];

    if (local) {
        a->scope = ctx->scope;
        a->tenant.data = ctx->key->tenant.data;
        a->tenant.len = ctx->key->tenant.len;
        a->key = key;
        return a;
    }

    p = (u_char *) (a + 1);

    a->scope.data = p;
    a->scope.len = ctx->scope.len;
    p = ngx_cpymem(p, ctx->scope.data, ctx->scope.len);

    a->tenant.data = p;
    a->tenant.len = ctx->key->tenant.len;
    p = ngx_cpymem(p, ctx->key->tenant.data, ctx->key->tenant.len);

    a->key.data = p;
    a->key.len = key.len;
    ngx_memcpy(p, key.data, key.len);

    return a;
}


/* the alert script: NGX_OK when the command went (a is then its data) */

static ngx_int_t
ngx_http_ai_guard_budget_send(ngx_http_request_t *r,
    ngx_http_ai_guard_budget_sent_t *a)
{
    u_char                          *p, *buf;
    size_t                           len[NGX_HTTP_AI_GUARD_BUDGET_ARGS];
    uint64_t                         now, ttl;
    ngx_str_t                        values[NGX_HTTP_AI_GUARD_BUDGET_FIELDS];
    ngx_uint_t                       i, n, kind;
    const char                      *argv[NGX_HTTP_AI_GUARD_BUDGET_ARGS];
    ngx_http_ai_guard_redis_conf_t  *rcf;

    static const char  *names[NGX_HTTP_AI_GUARD_BUDGET_FIELDS] = {
        "tenant", "key", "scope", "period", "window", "threshold",
        "spent_usd", "budget_usd", "node", "time"
    };

    rcf = a->amcf->redis;

    kind = (a->b == NGX_HTTP_AI_GUARD_BUDGET_DAY)
           ? NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY
           : NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH;

    /* <prefix>a:<scope>:budget_month:<window>: the limit's key, an "a" */

    argv[3] = (char *) ngx_http_ai_guard_redis_limit_key(r->pool,
                                   &rcf->prefix, a->scope.data, a->scope.len,
                                   kind, a->window, &len[3]);
    if (argv[3] == NULL) {
        return NGX_ERROR;
    }

    ((u_char *) argv[3])[rcf->prefix.len] = 'a';

    buf = ngx_pnalloc(r->pool, rcf->prefix.len + sizeof("budget_alerts")
                               + 4 * NGX_INT64_LEN
                               + 2 * NGX_HTTP_AI_GUARD_USD_LEN
                               + NGX_HTTP_AI_GUARD_DATE_LEN);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    now = ngx_http_ai_guard_now();
    ttl = ngx_http_ai_guard_cal_reset_ms(
              (a->b == NGX_HTTP_AI_GUARD_BUDGET_DAY)
              ? NGX_HTTP_AI_GUARD_CAL_DAY : NGX_HTTP_AI_GUARD_CAL_MONTH,
              now)
          + NGX_HTTP_AI_GUARD_BUDGET_KEEP_MS;

    p = buf;

    /* argv[0] and argv[1] are the transport's: EVALSHA and the SHA1 */

    argv[2] = "2";
    len[2] = 1;

    argv[4] = (char *) p;
    p = ngx_sprintf(p, "%Vbudget_alerts", &rcf->prefix);
    len[4] = p - (u_char *) argv[4];

    argv[5] = (char *) p;
    p = ngx_sprintf(p, "%ui", a->percent);
    len[5] = p - (u_char *) argv[5];

    argv[6] = (char *) p;
    p = ngx_sprintf(p, "%uL", ttl);
    len[6] = p - (u_char *) argv[6];

    argv[7] = NGX_HTTP_AI_GUARD_BUDGET_STREAM_LEN;
    len[7] = sizeof(NGX_HTTP_AI_GUARD_BUDGET_STREAM_LEN) - 1;

    /* the event, field and value */

    values[0].data = a->tenant.data;
    values[0].len = a->tenant.len;
    values[1] = a->key;
    ngx_str_set(&values[2], "tenant");
    ngx_str_set(&values[3], "month");

    if (a->key.len) {
        ngx_str_set(&values[2], "key");
    }

    if (a->b == NGX_HTTP_AI_GUARD_BUDGET_DAY) {
        ngx_str_set(&values[3], "day");
    }

    values[4].data = p;
    p = ngx_http_ai_guard_budget_window(p, a->b, a->window);
    values[4].len = p - values[4].data;

    values[5].data = (u_char *) argv[5];
    values[5].len = len[5];

    values[6].data = p;
    p = ngx_http_ai_guard_usd_format(p, (int64_t) a->used);
    values[6].len = p - values[6].data;

    values[7].data = p;
    p = ngx_http_ai_guard_usd_format(p, (int64_t) a->limit);
    values[7].len = p - values[7].data;

    values[8] = ngx_cycle->hostname;

    values[9].data = p;
    p = ngx_sprintf(p, "%uL", now / 1000);
    values[9].len = p - values[9].data;

    n = 8;

    for (i = 0; i < NGX_HTTP_AI_GUARD_BUDGET_FIELDS; i++) {
        argv[n] = names[i];
        len[n++] = ngx_strlen(names[i]);
        argv[n] = (char *) values[i].data;
        len[n++] = values[i].len;
    }

    return ngx_http_ai_guard_redis_eval(ngx_http_ai_guard_budget_script,
                                        ngx_http_ai_guard_budget_done, a,
                                        NULL, NULL, NULL, (int) n, argv, len,
                                        rcf->timeout);
}


/* Redis answered (or not): the first node alerts, the others say so */

static void
ngx_http_ai_guard_budget_done(void *data, redisReply *reply)
{
    ngx_http_ai_guard_budget_sent_t *a = data;

    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        ngx_http_ai_guard_budget_fired(a);

    } else if (reply && reply->type == REDIS_REPLY_INTEGER) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, a->log, 0,
                       "ai_guard budget: %V %ui%% alerted by another node "
                       "(%V)", &a->tenant, a->percent, &a->scope);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, a->log, 0,
                      "ai_guard: the budget alert of tenant \"%V\" at "
                      "%ui%% did not reach Redis%s%s; the next request of "
                      "its scope tries again",
                      &a->tenant, a->percent,
                      (reply && reply->type == REDIS_REPLY_ERROR)
                      ? ": " : "",
                      (reply && reply->type == REDIS_REPLY_ERROR)
                      ? reply->str : "");

        ngx_http_ai_guard_budget_unmark(a);
    }

    ngx_free(a);
}


/* not alerted after all: the threshold is crossed again by the next one */

static void
ngx_http_ai_guard_budget_unmark(ngx_http_ai_guard_budget_sent_t *a)
{
    ngx_http_ai_guard_zone_t          *zone;
    ngx_http_ai_guard_budget_state_t  *state;

    zone = &a->amcf->zones[NGX_HTTP_AI_GUARD_PART_LIMITS];

    if (zone->sh == NULL) {
        return;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    state = ngx_http_ai_guard_zone_find(zone, a->scope.data, a->scope.len);

    if (state && state[a->b].window == (uint32_t) a->window) {
        state[a->b].fired &= ~(1u << a->bit);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


static void
ngx_http_ai_guard_budget_fired(ngx_http_ai_guard_budget_sent_t *a)
{
    u_char  used[NGX_HTTP_AI_GUARD_USD_LEN], limit[NGX_HTTP_AI_GUARD_USD_LEN];
    u_char  window[NGX_HTTP_AI_GUARD_DATE_LEN], *u, *l, *w;

    u = ngx_http_ai_guard_usd_format(used, (int64_t) a->used);
    l = ngx_http_ai_guard_usd_format(limit, (int64_t) a->limit);
    w = ngx_http_ai_guard_budget_window(window, a->b, a->window);

    if (a->key.len) {
        ngx_log_error(NGX_LOG_WARN, a->log, 0,
                      "ai_guard: budget alert: key \"%V\" of tenant \"%V\" "
                      "has spent %ui%% of its %s budget: %*s of %*s USD in "
                      "%*s", &a->key, &a->tenant, a->percent,
                      a->b == NGX_HTTP_AI_GUARD_BUDGET_DAY ? "day" : "month",
                      u - used, used, l - limit, limit, w - window, window);

    } else {
        ngx_log_error(NGX_LOG_WARN, a->log, 0,
                      "ai_guard: budget alert: tenant \"%V\" has spent "
                      "%ui%% of its %s budget: %*s of %*s USD in %*s",
                      &a->tenant, a->percent,
                      a->b == NGX_HTTP_AI_GUARD_BUDGET_DAY ? "day" : "month",
                      u - used, used, l - limit, limit, w - window, window);
    }

    ngx_http_ai_guard_series_alert(a->amcf, &a->tenant, &a->key,
                                   a->b == NGX_HTTP_AI_GUARD_BUDGET_DAY
                                   ? 'd' : 'm',
                                   a->percent);
}


/* "2026-11-29", or "2026-11" of a month's window, year * 12 + month - 1 */

static u_char *
ngx_http_ai_guard_budget_window(u_char *p, ngx_uint_t b, uint64_t window)
{
    if (b == NGX_HTTP_AI_GUARD_BUDGET_DAY) {
        return ngx_http_ai_guard_date_format(p, (uint32_t) window);
    }

    return ngx_sprintf(p, "%04uL-%02uL", window / 12, window % 12 + 1);
}


/* percent of limit, rounded down; saturates: a threshold never reached */

static uint64_t
ngx_http_ai_guard_budget_threshold(uint64_t limit, ngx_uint_t percent)
{
    return ngx_http_ai_guard_sat_add(
               ngx_http_ai_guard_sat_mul(limit / 100, percent),
               (limit % 100) * percent / 100);
}
