
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_redis_admit.h"
#include "ngx_http_ai_guard_redis_transport.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_redis_lease.h"


/* the sweep of worker 0: idle and expired slices go back this often */
#define NGX_HTTP_AI_GUARD_LEASE_SWEEP    1000

/* scopes a sweep returns the slices of, at most */
#define NGX_HTTP_AI_GUARD_LEASE_SWEEP_N  64

/* a call's "need": -1 none, a slice only if one runs low; -2 give back */
#define NGX_HTTP_AI_GUARD_LEASE_RETURN   -2


/*
 * A node's slice of one limit, in units (requests, tokens, pico-USD,
 * slots).  "granted" is what Redis granted under lease "id" as far as the
 * node knows, "used" what the node took of it (settlements correct it),
 * so the node holds granted - used.  The slice is not used from
 * "expires" on: Redis gives it back a lifetime after it granted it, and
 * the node counts the lifetime from before it asked.
 */

typedef struct {
    uint64_t                        id;
    uint64_t                        window;     /* a quota's */
    uint64_t                        limit;
    int64_t                         granted;
    int64_t                         used;
    int64_t                         since;      /* taken since "asked" */
    uint64_t                        want;       /* the last slice asked */
    uint64_t                        asked;      /* ms of the last call */
    uint64_t                        expires;
    uint64_t                        denied;     /* Redis was short: ms */
    uint64_t                        used_at;
    uint64_t                        remaining;  /* the cluster's, unleased */
    uint64_t                        reset_ms;
} ngx_http_ai_guard_lease_slot_t;


/* a scope's slices, one a limit kind; "asking": a call is out, since */

typedef struct {
    uint64_t                        asking;
    ngx_http_ai_guard_lease_slot_t  slot[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
} ngx_http_ai_guard_lease_t;


/* what a call asks and reports of one slice */

typedef struct {
    ngx_uint_t                      kind;
    uint64_t                        limit;
    uint64_t                        window;
    uint64_t                        id;
    int64_t                         used;
    uint64_t                        want;
    ngx_uint_t                      close;
} ngx_http_ai_guard_lease_item_t;


/*
 * A call, malloc()ed with its arguments: a request that waits for it may
 * go first, and the slices it brings are the node's all the same.
 */

typedef struct {
    ngx_http_ai_guard_redis_conf_t *rcf;
    uint64_t                        sent;
    ngx_uint_t                      n;
    ngx_uint_t                      applied;
    int                             argc;
    const char                    **argv;
    size_t                         *argvlen;
    ngx_str_t                       scope;
    ngx_http_ai_guard_lease_item_t  items[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
} ngx_http_ai_guard_lease_call_t;


static ngx_int_t ngx_http_ai_guard_lease_fresh(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_node_t *node, uint64_t now);
static ngx_uint_t ngx_http_ai_guard_lease_take(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_lease_t *ls, uint64_t now, ngx_uint_t monitor,
    ngx_http_ai_guard_redis_reply_t *res);
static void ngx_http_ai_guard_lease_said(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_lease_t *ls, uint64_t now);
static ngx_http_ai_guard_lease_call_t *ngx_http_ai_guard_lease_call(
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_http_ai_guard_lease_t *ls,
    u_char *scope, size_t len, ngx_uint_t *kinds, ngx_uint_t n,
    int64_t *need, uint64_t now, ngx_log_t *log);
static uint64_t ngx_http_ai_guard_lease_want(
    ngx_http_ai_guard_lease_slot_t *s, int64_t need, uint64_t horizon,
    uint64_t now);
static ngx_int_t ngx_http_ai_guard_lease_send(
    ngx_http_ai_guard_lease_call_t *call, ngx_http_ai_guard_ctx_t *ctx,
    ngx_pool_t *pool);
static void ngx_http_ai_guard_lease_done(void *data, redisReply *reply);
static void ngx_http_ai_guard_lease_orphan(void *data, redisReply *reply);
static void ngx_http_ai_guard_lease_background(void *data,
    redisReply *reply);
static void ngx_http_ai_guard_lease_apply(
    ngx_http_ai_guard_lease_call_t *call, redisReply *reply);
static void ngx_http_ai_guard_lease_sweep(ngx_event_t *ev);
static void ngx_http_ai_guard_lease_quit(void);
static ngx_uint_t ngx_http_ai_guard_lease_return(
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_uint_t all);
static ngx_int_t ngx_http_ai_guard_lease_visit(ngx_http_ai_guard_node_t *node,
    void *data);


/* the index of the lease script in the transport's registry */
static ngx_uint_t  ngx_http_ai_guard_lease_script;

static ngx_event_t  ngx_http_ai_guard_lease_timer;

/* worker 0's: the zone's cycles when it started (a reload adds one) */
static ngx_uint_t   ngx_http_ai_guard_lease_cycles;

/* the rounds of calls a node that stops gives its slices back in */
#define NGX_HTTP_AI_GUARD_LEASE_QUIT_ROUNDS  64


/*
 * One call of a node for one scope: for each limit, the lease it holds
 * and the units it used of it, whether it gives the rest back, and the
 * slice it wants.  A lease's record, field "<node>:<id>" of the limit's
 * ":L" hash, is "id granted used expires dead".  While a lease lives,
 * Redis's counter holds all it granted; when it ends (given back, or
 * expired: a dead node's) the counter drops what was granted and not
 * used, and a use reported later is added: so the counter is the units
 * used plus the slices outstanding, whatever order things happen in, and
 * a call repeated after a lost reply counts nothing twice.  A quota's
 * (or budget's) lease that expires is kept whole ("dead" 2): its node
 * may have used all of it, and a quota must not end over; the node's
 * next call for the limit proves it alive and reports its use, so the
 * rest goes back then; a node restarted has a new id, so a dead one's
 * slice stays used until the window ends.  KEYS: the
 * counter and the lease hash a limit, then the lease ids' sequence.
 * ARGV: node, lifetime, then type, limit, period, id, used, close, want
 * a limit.  Returns the lease id, its total granted, this call's grant,
 * what remains unleased and the reset a limit.
 */

static const char  ngx_http_ai_guard_lease_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local node = ARGV[1]\n"
    "local ttl = tonumber(ARGV[2])\n"
    "local out = {}\n"
    "local function rd(x)\n"
    "  local r = {}\n"
    "  for w in string.gmatch(x, '%S+') do r[#r + 1] = tonumber(w) end\n"
    "  return r\n"
    "end\n"
    "local function wr(r)\n"
    "  return string.format('%d %d %d %d %d', r[1], r[2], r[3], r[4], r[5])\n"
    "end\n"
    "for i = 1, (#KEYS - 1) / 2 do\n"
    "  local a = 2 + (i - 1) * 7\n"
    "  local ty = ARGV[a + 1]\n"
    "  local lim = tonumber(ARGV[a + 2])\n"
    "  local per = tonumber(ARGV[a + 3])\n"
    "  local id = ARGV[a + 4]\n"
    "  local used = tonumber(ARGV[a + 5])\n"
    "  local close = ARGV[a + 6] == '1'\n"
    "  local want = tonumber(ARGV[a + 7])\n"
    "  local K, L = KEYS[2 * i - 1], KEYS[2 * i]\n"
    "  local m, lv = 1, 0\n"
    "  if ty == 'b' then\n"
    "    m = per\n"
    "    local h = redis.call('HMGET', K, 'l', 's')\n"
    "    lv = tonumber(h[1]) or 0\n"
    "    local s = tonumber(h[2]) or now\n"
    "    if now > s then\n"
    "      lv = lv - (now - s) * lim\n"
    "      if lv < 0 then lv = 0 end\n"
    "    end\n"
    "  else\n"
    "    lv = tonumber(redis.call('GET', K) or '0')\n"
    "  end\n"
    "  local f = redis.call('HGETALL', L)\n"
    "  local mine, cur\n"
    "  local me = node .. ':'\n"
    "  for j = 1, #f, 2 do\n"
    "    local r = rd(f[j + 1])\n"
    "    local ch = false\n"
    "    if r[5] == 0 and r[4] <= now then\n"
    "      if ty == 'q' then r[5] = 2\n"
    "      else\n"
    "        lv = lv - (r[2] - r[3]) * m\n"
    "        r[5] = 1\n"
    "      end\n"
    "      ch = true\n"
    "    end\n"
    "    if f[j] == me .. id then\n"
    "      mine = r\n"
    "    elseif r[5] == 2 and string.sub(f[j], 1, #me) == me then\n"
    "      lv = lv - (r[2] - r[3]) * m\n"
    "      r[5] = 1\n"
    "      ch = true\n"
    "    end\n"
    "    if f[j] ~= me .. id and r[5] ~= 0 and r[4] + 10 * ttl <= now then\n"
    "      redis.call('HDEL', L, f[j])\n"
    "    elseif ch then\n"
    "      redis.call('HSET', L, f[j], wr(r))\n"
    "    end\n"
    "  end\n"
    "  if mine then\n"
    "    if mine[5] == 2 then\n"
    "      lv = lv + (used - mine[2]) * m\n"
    "      mine[5] = 1\n"
    "    elseif mine[5] == 1 then\n"
    "      lv = lv + (used - mine[3]) * m\n"
    "    end\n"
    "    mine[3] = used\n"
    "    if close and mine[5] == 0 then\n"
    "      lv = lv - (mine[2] - used) * m\n"
    "      mine[5] = 1\n"
    "    end\n"
    "    redis.call('HSET', L, me .. id, wr(mine))\n"
    "    if mine[5] == 0 then cur = mine end\n"
    "  else\n"
    "    lv = lv + used * m\n"
    "  end\n"
    "  if lv < 0 then lv = 0 end\n"
    "  local free\n"
    "  if ty == 'b' then free = math.floor((lim * per - lv) / per)\n"
    "  else free = lim - lv end\n"
    "  if free < 0 then free = 0 end\n"
    "  local g = math.min(want, free)\n"
    "  if cur == nil and want > 0 then\n"
    "    cur = {redis.call('INCR', KEYS[#KEYS]), 0, 0, 0, 0}\n"
    "  end\n"
    "  local lid, tot = 0, 0\n"
    "  if cur then\n"
    "    cur[2] = cur[2] + g\n"
    "    cur[4] = now + ttl\n"
    "    lv = lv + g * m\n"
    "    lid, tot = cur[1], cur[2]\n"
    "    redis.call('HSET', L, me .. lid, wr(cur))\n"
    "  else\n"
    "    g = 0\n"
    "  end\n"
    "  local reset = 0\n"
    "  if ty == 'b' then\n"
    "    redis.call('HSET', K, 'l', lv, 's', now)\n"
    "    redis.call('PEXPIRE', K, math.ceil(lv / lim) + 1000)\n"
    "    reset = math.ceil(lv / lim)\n"
    "  elseif ty == 'q' then\n"
    "    redis.call('SET', K, lv, 'PX', per + 86400000)\n"
    "    reset = per\n"
    "  else\n"
    "    redis.call('SET', K, lv, 'PX', 3600000)\n"
    "  end\n"
    "  redis.call('PEXPIRE', L, 11 * ttl + per)\n"
    "  out[#out + 1] = lid\n"
    "  out[#out + 1] = tot\n"
    "  out[#out + 1] = g\n"
    "  out[#out + 1] = free - g\n"
    "  out[#out + 1] = reset\n"
    "end\n"
    "return out\n";


ngx_int_t
ngx_http_ai_guard_redis_lease_init(ngx_conf_t *cf,
    ngx_http_ai_guard_redis_conf_t *rcf)
{
    ngx_int_t                  n;
    ngx_str_t                  name;
    ngx_http_ai_guard_zone_t  *zone;

    n = ngx_http_ai_guard_redis_script(cf, ngx_http_ai_guard_lease_lua);
    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_lease_script = n;

    if (rcf->lease == 0) {
        return NGX_OK;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_zone_t));
    if (zone == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&name, "ai_guard_lease");

    if (ngx_http_ai_guard_zone_add(cf, zone, &name,
                                   NGX_HTTP_AI_GUARD_LEASE_ZONE)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    zone->fresh = ngx_http_ai_guard_lease_fresh;
    zone->data = rcf;
    zone->lru = 1;

    rcf->lease_zone = zone;

    return NGX_OK;
}


/* worker 0 gives back the slices nobody uses */

ngx_int_t
ngx_http_ai_guard_redis_lease_init_process(ngx_cycle_t *cycle)
{
    ngx_event_t                    *ev;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_guard_module);

    if (amcf->redis->lease == 0 || ngx_worker != 0) {
        return NGX_OK;
    }

    ev = &ngx_http_ai_guard_lease_timer;

    ngx_memzero(ev, sizeof(ngx_event_t));

    ev->handler = ngx_http_ai_guard_lease_sweep;
    ev->log = cycle->log;
    ev->data = amcf->redis;
    ev->cancelable = 1;

    ngx_add_timer(ev, NGX_HTTP_AI_GUARD_LEASE_SWEEP);

    if (amcf->redis->lease_zone) {
        ngx_http_ai_guard_lease_cycles =
            ((ngx_http_ai_guard_zone_t *) amcf->redis->lease_zone)->sh->cycles;
    }

    ngx_http_ai_guard_redis_on_quit(ngx_http_ai_guard_lease_quit);

    return NGX_OK;
}


/* an entry may go when it holds no lease, no use to report, no call */

static ngx_int_t
ngx_http_ai_guard_lease_fresh(ngx_http_ai_guard_zone_t *zone,
    ngx_http_ai_guard_node_t *node, uint64_t now)
{
    ngx_uint_t                  k;
    ngx_http_ai_guard_lease_t  *ls;

    ls = (ngx_http_ai_guard_lease_t *) node->data;

    if (ls->asking) {
        return 0;
    }

    for (k = 0; k < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; k++) {
        if (ls->slot[k].id || ls->slot[k].used) {
            return 0;
        }
    }

    return 1;
}


/*
 * sync=lease.  NGX_OK: decided from the slices, the answer in ctx->redis
 * as a strict admission's; NGX_AGAIN: the request waits for a slice;
 * NGX_DECLINED: Redis is not available and the slices do not cover the
 * request, the failure policy decides.  A request its own call did not
 * cover (another took the slice first) is admitted strictly.
 */

ngx_int_t
ngx_http_ai_guard_redis_lease_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    int64_t                             need[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    uint64_t                            now;
    ngx_int_t                           rc;
    ngx_uint_t                          i, n, asked, kinds[
                                            NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    ngx_http_ai_guard_zone_t           *zone;
    ngx_http_ai_guard_lease_t          *ls;
    ngx_http_ai_guard_redis_conf_t     *rcf;
    ngx_http_ai_guard_lease_call_t     *call;
    ngx_http_ai_guard_main_conf_t      *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    rcf = amcf->redis;
    zone = rcf->lease_zone;

    asked = ctx->lease_asked;
    ctx->lease_wait = 0;

    now = ngx_http_ai_guard_now();
    n = ctx->nitems;

    ngx_shmtx_lock(&zone->shpool->mutex);

    ls = ngx_http_ai_guard_zone_get(zone, ctx->scope.data, ctx->scope.len,
                                    sizeof(ngx_http_ai_guard_lease_t), now,
                                    NULL);
    if (ls == NULL) {
        /* no room for the scope's slices: one round trip decides */
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return ngx_http_ai_guard_redis_reserve(r, alcf, ctx);
    }

    if (ngx_http_ai_guard_lease_take(ctx, ls, now,
                                     alcf->mode
                                     == NGX_HTTP_AI_GUARD_MODE_MONITOR,
                                     &ctx->redis))
    {
        /* decided; a slice running low is refilled ahead of need */

        call = NULL;

        if (ls->asking == 0 || ls->asking + 2 * rcf->lease < now) {
            for (i = 0; i < n; i++) {
                kinds[i] = ctx->items[i].kind;
                need[i] = -1;
            }

            call = ngx_http_ai_guard_lease_call(rcf, ls, ctx->scope.data,
                                                ctx->scope.len, kinds, n,
                                                need, now,
                                                r->connection->log);
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        if (call && ngx_http_ai_guard_lease_send(call, NULL, NULL)
                    != NGX_OK)
        {
            ngx_http_ai_guard_lease_apply(call, NULL);
            ngx_free(call);
        }

        return NGX_OK;
    }

    /*
     * The slices do not cover the request: it waits for a call of its
     * own, even when another is out (a lease a crossed call opens is
     * left to expire, see the reply); once is enough.
     */

    if (asked || !ngx_http_ai_guard_redis_up()) {
        ngx_shmtx_unlock(&zone->shpool->mutex);

        /* Redis not there: NGX_DECLINED, or a new connection waited for */

        return ngx_http_ai_guard_redis_reserve(r, alcf, ctx);
    }

    for (i = 0; i < n; i++) {
        kinds[i] = ctx->items[i].kind;
        need[i] = (int64_t) ngx_min(ctx->items[i].cost, ctx->items[i].limit);
    }

    call = ngx_http_ai_guard_lease_call(rcf, ls, ctx->scope.data,
                                        ctx->scope.len, kinds, n, need, now,
                                        r->connection->log);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (call == NULL) {
        return NGX_ERROR;
    }

    ctx->lease = call;

    rc = ngx_http_ai_guard_lease_send(call, ctx, r->pool);

    if (rc != NGX_OK) {
        ctx->lease = NULL;
        ngx_http_ai_guard_lease_apply(call, NULL);
        ngx_free(call);
        return NGX_DECLINED;
    }

    ctx->lease_wait = 1;
    ctx->lease_asked = 1;

    return ngx_http_ai_guard_redis_wait(r, ctx);
}


/*
 * Under the zone's mutex: the request's limits from the node's slices.
 * 1: decided (taken, or refused while Redis said it was short, or a cost
 * no limit holds); 0: the slices do not cover it.
 */

static ngx_uint_t
ngx_http_ai_guard_lease_take(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_lease_t *ls, uint64_t now, ngx_uint_t monitor,
    ngx_http_ai_guard_redis_reply_t *res)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i, idx;
    uint64_t                         window, retry;
    ngx_http_ai_guard_limit_item_t  *it;
    ngx_http_ai_guard_lease_slot_t  *s;

    rc = NGX_HTTP_AI_GUARD_LIMIT_OK;
    idx = 0;
    retry = 0;

    for (i = 0; i < ctx->nitems; i++) {
        it = &ctx->items[i];
        s = &ls->slot[it->kind];

        window = (ngx_http_ai_guard_redis_kinds[it->kind].type == 'q')
                 ? ngx_http_ai_guard_cal_window(
                       ngx_http_ai_guard_redis_kinds[it->kind].cal, now)
                 : 0;

        it->window = window;

        if (s->limit != it->limit || s->window != window) {

            /*
             * A new window, or a tier changed by a reload: the old lease
             * is left to expire in Redis, which gives it back.
             */

            ngx_memzero(s, sizeof(ngx_http_ai_guard_lease_slot_t));
            s->limit = it->limit;
            s->window = window;
        }

        if (it->cost > it->limit) {
            rc = NGX_HTTP_AI_GUARD_LIMIT_NEVER;
            idx = i;
            break;
        }

        if (s->id && s->expires > now
            && s->granted - s->used >= (int64_t) it->cost)
        {
            continue;
        }

        if (s->denied <= now) {
            if (!monitor) {
                return 0;
            }

            continue;
        }

        /* Redis had no more a moment ago: refused without asking again */

        if (rc == NGX_HTTP_AI_GUARD_LIMIT_OK || s->denied - now > retry) {
            rc = NGX_HTTP_AI_GUARD_LIMIT_WAIT;
            idx = i;
            retry = s->denied - now;
        }
    }

    res->rc = rc;
    res->index = idx;
    res->retry_ms = retry;

    if (rc == NGX_HTTP_AI_GUARD_LIMIT_OK || monitor) {
        for (i = 0; i < ctx->nitems; i++) {
            it = &ctx->items[i];
            s = &ls->slot[it->kind];

            s->used += (int64_t) ngx_min(it->cost, it->limit);
            s->since += (int64_t) ngx_min(it->cost, it->limit);
            s->used_at = now;
        }

        ctx->leased = 1;
    }

    ngx_http_ai_guard_lease_said(ctx, ls, now);

    return 1;
}


/* the x-ratelimit-* numbers: the cluster's unleased, plus this slice */

static void
ngx_http_ai_guard_lease_said(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_lease_t *ls, uint64_t now)
{
    int64_t                          held;
    ngx_uint_t                       i;
    ngx_http_ai_guard_lease_slot_t  *s;

    for (i = 0; i < ctx->nitems; i++) {
        s = &ls->slot[ctx->items[i].kind];

        held = (s->id && s->expires > now) ? s->granted - s->used : 0;

        ctx->redis.remaining[i] = ngx_min(s->limit,
                                          s->remaining
                                          + (uint64_t) ngx_max(held, 0));
        ctx->redis.reset_ms[i] = s->reset_ms;
    }
}


/*
 * Under the zone's mutex: a call for the scope's slices "kinds".  "need":
 * what the waiting request needs of each (-1: no request waits, a call
 * only when a slice runs low).  NULL: no call is due.
 */

static ngx_http_ai_guard_lease_call_t *
ngx_http_ai_guard_lease_call(ngx_http_ai_guard_redis_conf_t *rcf,
    ngx_http_ai_guard_lease_t *ls, u_char *scope, size_t len,
    ngx_uint_t *kinds, ngx_uint_t n, int64_t *need, uint64_t now,
    ngx_log_t *log)
{
    u_char                                *p;
    size_t                                 size, klen;
    int64_t                                held;
    uint64_t                               period;
    ngx_uint_t                             i, a, due;
    ngx_http_ai_guard_lease_slot_t        *s;
    ngx_http_ai_guard_lease_item_t        *it;
    ngx_http_ai_guard_lease_call_t        *call;
    const ngx_http_ai_guard_redis_kind_t  *k;

    due = 0;

    for (i = 0; i < n; i++) {
        s = &ls->slot[kinds[i]];
        held = (s->id && s->expires > now) ? s->granted - s->used : 0;

        if (need[i] != -1
            || (s->limit && s->denied <= now
                && held < (int64_t) (s->want / 4 + 1)))
        {
            due = 1;
        }
    }

    if (!due) {
        return NULL;
    }

    /* the arguments: 2 + 1 + (2n + 1) keys + 2 + 7n, and their bytes */

    klen = rcf->prefix.len + 2 + len + 1 + 16 + 1 + NGX_INT64_LEN + 2;

    size = sizeof(ngx_http_ai_guard_lease_call_t) + len
           + (6 + 9 * n) * (sizeof(char *) + sizeof(size_t))
           + (2 * n + 1) * klen + (7 * n + 3) * (NGX_INT64_LEN + 2);

    call = ngx_alloc(size, log);
    if (call == NULL) {
        return NULL;
    }

    ngx_memzero(call, sizeof(ngx_http_ai_guard_lease_call_t));

    call->rcf = rcf;
    call->sent = now;
    call->n = n;
    call->scope.len = len;
    call->scope.data = (u_char *) (call + 1);
    ngx_memcpy(call->scope.data, scope, len);

    call->argv = (const char **) ngx_align_ptr(call->scope.data + len,
                                               sizeof(void *));
    call->argvlen = (size_t *) (call->argv + 6 + 9 * n);
    p = (u_char *) (call->argvlen + 6 + 9 * n);

    /* argv[0] and argv[1] are the transport's: EVALSHA and the SHA1 */

    call->argv[2] = (char *) p;
    p = ngx_sprintf(p, "%ui", 2 * n + 1);
    call->argvlen[2] = p - (u_char *) call->argv[2];

    a = 3 + 2 * n + 1;

    call->argv[a] = (char *) p;
    p = ngx_sprintf(p, "%uL", rcf->sh->node);
    call->argvlen[a] = p - (u_char *) call->argv[a];
    a++;

    call->argv[a] = (char *) p;
    p = ngx_sprintf(p, "%M", rcf->lease);
    call->argvlen[a] = p - (u_char *) call->argv[a];
    a++;

    for (i = 0; i < n; i++) {
        s = &ls->slot[kinds[i]];
        k = &ngx_http_ai_guard_redis_kinds[kinds[i]];
        it = &call->items[i];

        it->kind = kinds[i];
        it->limit = s->limit;
        it->window = s->window;

        /* a slice past its lifetime goes back, with its use, at last */

        it->close = (s->id && s->expires <= now);
        it->id = s->id;
        it->used = s->used;
        it->want = (need[i] == NGX_HTTP_AI_GUARD_LEASE_RETURN
                    || (need[i] < 0 && s->denied > now))
                   ? 0 : ngx_http_ai_guard_lease_want(s,
                                                      ngx_max(need[i], 0),
                                                      rcf->lease / 2, now);

        if (it->close || it->id == 0) {
            /* reported now: put back if the call fails */
            s->id = 0;
            s->granted = 0;
            s->used = 0;
        }

        s->want = it->want;
        s->asked = now;
        s->since = 0;

        period = (k->type == 'b') ? k->period
                 : (k->type == 'q') ? ngx_http_ai_guard_cal_reset_ms(k->cal,
                                                                     now)
                 : 0;

        /* the counter's key, and its leases' */

        call->argv[3 + 2 * i] = (char *) p;
        p = ngx_sprintf(p, "%Vl:%*s:%s", &rcf->prefix, len, scope,
                        ngx_http_ai_guard_limit_name(it->kind));

        if (k->type == 'q') {
            p = ngx_sprintf(p, ":%uL", it->window);
        }

        call->argvlen[3 + 2 * i] = p - (u_char *) call->argv[3 + 2 * i];

        call->argv[4 + 2 * i] = (char *) p;
        p = ngx_cpymem(p, call->argv[3 + 2 * i], call->argvlen[3 + 2 * i]);
        p = ngx_cpymem(p, ":L", 2);
        call->argvlen[4 + 2 * i] = call->argvlen[3 + 2 * i] + 2;

        call->argv[a] = (k->type == 'b') ? "b" : (k->type == 'q') ? "q" : "c";
        call->argvlen[a++] = 1;

        call->argv[a] = (char *) p;
        p = ngx_sprintf(p, "%uL", it->limit);
        call->argvlen[a] = p - (u_char *) call->argv[a];
        a++;

        call->argv[a] = (char *) p;
        p = ngx_sprintf(p, "%uL", period);
        call->argvlen[a] = p - (u_char *) call->argv[a];
        a++;

        call->argv[a] = (char *) p;
        p = ngx_sprintf(p, "%uL", it->id);
        call->argvlen[a] = p - (u_char *) call->argv[a];
        a++;

        call->argv[a] = (char *) p;
        p = ngx_sprintf(p, "%L", it->used);
        call->argvlen[a] = p - (u_char *) call->argv[a];
        a++;

        call->argv[a] = it->close ? "1" : "0";
        call->argvlen[a++] = 1;

        call->argv[a] = (char *) p;
        p = ngx_sprintf(p, "%uL", it->want);
        call->argvlen[a] = p - (u_char *) call->argv[a];
        a++;
    }

    call->argv[3 + 2 * n] = (char *) p;
    p = ngx_sprintf(p, "%Vlease_seq", &rcf->prefix);
    call->argvlen[3 + 2 * n] = p - (u_char *) call->argv[3 + 2 * n];

    call->argc = (int) a;

    ls->asking = now;

    return call;
}


/*
 * The slice to ask: what the node took in the last half lifetime's
 * worth at its recent rate, at least what the waiting request lacks, at
 * most the limit's share (NGX_HTTP_AI_GUARD_LEASE_PARTS), which bounds
 * what the node may hold and the cluster over-admit.
 */

static uint64_t
ngx_http_ai_guard_lease_want(ngx_http_ai_guard_lease_slot_t *s, int64_t need,
    uint64_t horizon, uint64_t now)
{
    int64_t   held;
    uint64_t  want, cap, lack;

    cap = ngx_max(s->limit / NGX_HTTP_AI_GUARD_LEASE_PARTS, 1);

    held = (s->id && s->expires > now) ? s->granted - s->used : 0;
    lack = (need > held) ? (uint64_t) (need - held) : 0;

    if (s->asked == 0 || now <= s->asked) {
        want = cap / 4;

    } else {
        want = ngx_http_ai_guard_sat_mul((uint64_t) ngx_max(s->since, 0),
                                         horizon) / (now - s->asked);
    }

    want = ngx_min(want, cap);
    want = ngx_max(want, lack);
    want = ngx_max(want, 1);

    return ngx_min(want, s->limit);
}


/* "ctx": the request that waits for the call, NULL for none */

static ngx_int_t
ngx_http_ai_guard_lease_send(ngx_http_ai_guard_lease_call_t *call,
    ngx_http_ai_guard_ctx_t *ctx, ngx_pool_t *pool)
{
    ngx_msec_t  timeout;

    timeout = call->rcf->timeout;

    if (ctx == NULL) {
        return ngx_http_ai_guard_redis_eval(ngx_http_ai_guard_lease_script,
                                     ngx_http_ai_guard_lease_background, call,
                                     NULL, NULL, NULL, call->argc,
                                     call->argv, call->argvlen,
                                     ngx_max(timeout,
                                             NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE
                                     ));
    }

    return ngx_http_ai_guard_redis_eval(ngx_http_ai_guard_lease_script,
                                        ngx_http_ai_guard_lease_done, ctx,
                                        pool, ngx_http_ai_guard_lease_orphan,
                                        call, call->argc, call->argv,
                                        call->argvlen, timeout);
}


/* the reply a request waits for: the slices, then the request goes on */

static void
ngx_http_ai_guard_lease_done(void *data, redisReply *reply)
{
    ngx_http_ai_guard_ctx_t  *ctx = data;

    if (ctx->lease) {
        ngx_http_ai_guard_lease_apply(ctx->lease, reply);
        ((ngx_http_ai_guard_lease_call_t *) ctx->lease)->applied = 1;
        ctx->lease = NULL;
    }

    ngx_http_ai_guard_redis_resume(ctx);
}


/* the end of a request's call: the slices are the node's if it went */

static void
ngx_http_ai_guard_lease_orphan(void *data, redisReply *reply)
{
    ngx_http_ai_guard_lease_call_t *call = data;

    if (!call->applied) {
        ngx_http_ai_guard_lease_apply(call, reply);
    }

    ngx_free(call);
}


static void
ngx_http_ai_guard_lease_background(void *data, redisReply *reply)
{
    ngx_http_ai_guard_lease_call_t *call = data;

    ngx_http_ai_guard_lease_apply(call, reply);
    ngx_free(call);
}


/*
 * A call's answer into the node's slices; without one, what the call
 * reported goes back to be reported again (the same lease and use: Redis
 * counts a repeated report once).
 */

static void
ngx_http_ai_guard_lease_apply(ngx_http_ai_guard_lease_call_t *call,
    redisReply *reply)
{
    int64_t                          tot;
    uint64_t                         id, g, now;
    ngx_uint_t                       i, ok;
    redisReply                     **e;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_lease_t       *ls;
    ngx_http_ai_guard_lease_slot_t  *s;
    ngx_http_ai_guard_lease_item_t  *it;

    zone = call->rcf->lease_zone;

    ok = (reply && reply->type == REDIS_REPLY_ARRAY
          && reply->elements == 5 * call->n);

    for (i = 0; ok && i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER
            || reply->element[i]->integer < 0)
        {
            ok = 0;
        }
    }

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "ai_guard: redis lease script failed: %s", reply->str);
    }

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    ls = ngx_http_ai_guard_zone_find(zone, call->scope.data, call->scope.len);

    if (ls == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return;
    }

    ls->asking = 0;

    for (i = 0; i < call->n; i++) {
        it = &call->items[i];
        s = &ls->slot[it->kind];

        if (s->limit != it->limit || s->window != it->window) {
            continue;
        }

        if (!ok) {
            if (it->close || it->id == 0) {
                s->id = it->id;
                s->used += it->used;
            }

            continue;
        }

        e = &reply->element[5 * i];

        id = (uint64_t) e[0]->integer;
        tot = (int64_t) e[1]->integer;
        g = (uint64_t) e[2]->integer;

        if (s->id == id && id) {
            s->granted = ngx_max(s->granted, tot);

        } else if (s->id == it->id) {

            /*
             * The lease the call reported ended (or there was none): its
             * use, as reported, is in the counter; what was used since
             * goes with the new lease, if any.
             */

            if (it->id) {
                s->used -= it->used;
            }

            s->id = id;
            s->granted = id ? tot : 0;

        } else {

            /*
             * Calls that crossed: the slice keeps its lease, and the one
             * this call opened is left to expire, so that no use is
             * reported under two leases.
             */

            continue;
        }

        if (id) {
            s->expires = call->sent + call->rcf->lease;
        }

        s->remaining = (uint64_t) e[3]->integer;
        s->reset_ms = (uint64_t) e[4]->integer;

        /* short: the node does not ask again for half a lifetime */

        if (g < it->want) {
            s->denied = ngx_max(now, call->sent) + call->rcf->lease / 2;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/*
 * The request's use of its slices, corrected to what it really used: the
 * difference is the node's to use again (or owed).
 */

void
ngx_http_ai_guard_redis_lease_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    int64_t                           d, held, spent;
    ngx_uint_t                        i;
    ngx_http_ai_guard_zone_t         *zone;
    ngx_http_ai_guard_lease_t        *ls;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_limit_item_t   *it;
    ngx_http_ai_guard_lease_slot_t   *s;

    if (!ctx->leased) {
        return;
    }

    ctx->leased = 0;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = amcf->redis->lease_zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    ls = ngx_http_ai_guard_zone_find(zone, ctx->scope.data, ctx->scope.len);

    for (i = 0; ls && i < ctx->nitems; i++) {
        it = &ctx->items[i];
        s = &ls->slot[it->kind];

        if (s->limit != it->limit || s->window != it->window) {
            continue;
        }

        switch (ngx_http_ai_guard_redis_kinds[it->kind].unit) {

        case NGX_HTTP_AI_GUARD_REDIS_UNIT_TOKEN:
            d = ngx_http_ai_guard_sat_delta(ctx->final_tokens,
                                            ngx_min(it->cost, it->limit));
            break;

        case NGX_HTTP_AI_GUARD_REDIS_UNIT_MONEY:
            d = ngx_http_ai_guard_sat_delta(
                    (uint64_t) ngx_max(ctx->final_money, 0),
                    ngx_min(it->cost, it->limit));
            break;

        case NGX_HTTP_AI_GUARD_REDIS_UNIT_CONC:
            d = -1;
            break;

        default:
            d = 0;
        }

        s->used = ngx_http_ai_guard_pico_add(s->used, d);

        /*
         * A budget's spend for its alerts: Redis's counter at the last
         * call (all it granted, and the used part of leases that ended)
         * less the part of this node's slice it has not used.  The other
         * nodes' slices count as spent, as strict mode counts requests
         * in flight: an alert comes at most their slices early.
         */

        if (ngx_http_ai_guard_redis_kinds[it->kind].unit
            == NGX_HTTP_AI_GUARD_REDIS_UNIT_MONEY)
        {
            held = s->granted - s->used;
            spent = (int64_t) (s->limit - ngx_min(s->remaining, s->limit));

            ctx->redis.spent[i] = (uint64_t) ngx_max(spent - held, 0);
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* worker 0: slices idle for half a lifetime, or past it, go back */

typedef struct {
    ngx_http_ai_guard_redis_conf_t  *rcf;
    ngx_http_ai_guard_lease_call_t  *calls[NGX_HTTP_AI_GUARD_LEASE_SWEEP_N];
    ngx_uint_t                       n;
    uint64_t                         now;
    ngx_uint_t                       all;     /* the node stops */
} ngx_http_ai_guard_lease_walk_t;


static void
ngx_http_ai_guard_lease_sweep(ngx_event_t *ev)
{
    (void) ngx_http_ai_guard_lease_return(ev->data, 0);

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_AI_GUARD_LEASE_SWEEP);
    }
}


/*
 * Worker 0 quits, its connection still up.  When no reload made or
 * adopted the zone since the worker started, the node stops: every
 * slice goes back to Redis now, rather than a lifetime later (a quota's
 * slice would stay used all its window).  The calls are sent before the
 * connection closes; the worker exits once their replies are in, or
 * their timers (timeout=, at least 1 s) fire.  After a reload the new
 * workers go on with the slices, and nothing goes back.
 */

static void
ngx_http_ai_guard_lease_quit(void)
{
    ngx_uint_t                       i, n, sent;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_redis_conf_t  *rcf;

    rcf = ngx_http_ai_guard_lease_timer.data;
    zone = rcf->lease_zone;

    if (zone->sh == NULL || zone->sh->cycles != ngx_http_ai_guard_lease_cycles)
    {
        return;
    }

    sent = 0;

    for (i = 0; i < NGX_HTTP_AI_GUARD_LEASE_QUIT_ROUNDS; i++) {
        n = ngx_http_ai_guard_lease_return(rcf, 1);
        sent += n;

        if (n < NGX_HTTP_AI_GUARD_LEASE_SWEEP_N) {
            break;
        }
    }

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "ai_guard: redis lease: the node stops, the slices of "
                  "%ui scopes go back", sent);
}


/*
 * One walk of the zone: the slices to give back ("all": every one,
 * else the idle and the expired), at most a call a scope and
 * NGX_HTTP_AI_GUARD_LEASE_SWEEP_N calls, sent; their number returned.
 */

static ngx_uint_t
ngx_http_ai_guard_lease_return(ngx_http_ai_guard_redis_conf_t *rcf,
    ngx_uint_t all)
{
    ngx_uint_t                       i;
    ngx_http_ai_guard_zone_t        *zone;
    ngx_http_ai_guard_lease_walk_t   w;

    w.rcf = rcf;
    w.n = 0;
    w.now = ngx_http_ai_guard_now();
    w.all = all;

    zone = w.rcf->lease_zone;

    if (ngx_http_ai_guard_redis_up() && zone->sh) {
        ngx_shmtx_lock(&zone->shpool->mutex);
        (void) ngx_http_ai_guard_zone_walk(zone,
                                           ngx_http_ai_guard_lease_visit, &w);
        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    for (i = 0; i < w.n; i++) {
        if (ngx_http_ai_guard_lease_send(w.calls[i], NULL, NULL) != NGX_OK) {
            ngx_http_ai_guard_lease_apply(w.calls[i], NULL);
            ngx_free(w.calls[i]);
        }
    }

    return w.n;
}


static ngx_int_t
ngx_http_ai_guard_lease_visit(ngx_http_ai_guard_node_t *node, void *data)
{
    ngx_http_ai_guard_lease_walk_t *w = data;

    u_char                          *key;
    size_t                           len;
    int64_t                          need[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    ngx_uint_t                       k, n, kinds[
                                         NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    ngx_http_ai_guard_lease_t       *ls;
    ngx_http_ai_guard_lease_slot_t  *s;
    ngx_http_ai_guard_lease_call_t  *call;

    ls = (ngx_http_ai_guard_lease_t *) node->data;

    if (ls->asking && ls->asking + 2 * w->rcf->lease >= w->now) {
        return NGX_OK;
    }

    n = 0;

    for (k = 1; k < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; k++) {
        s = &ls->slot[k];

        if ((s->id && (w->all || s->expires <= w->now
                       || s->used_at + w->rcf->lease / 2 <= w->now))
            || (s->id == 0 && s->used))
        {
            /* given back: the lease ends now */
            s->expires = ngx_min(s->expires, w->now);
            kinds[n] = k;
            need[n] = NGX_HTTP_AI_GUARD_LEASE_RETURN;
            n++;
        }
    }

    if (n == 0) {
        return NGX_OK;
    }

    key = ngx_http_ai_guard_zone_key(node->data, &len);

    call = ngx_http_ai_guard_lease_call(w->rcf, ls, key, len, kinds, n, need,
                                        w->now, ngx_cycle->log);
    if (call == NULL) {
        return NGX_DONE;
    }

    w->calls[w->n++] = call;

    return (w->n == NGX_HTTP_AI_GUARD_LEASE_SWEEP_N) ? NGX_DONE : NGX_OK;
}
