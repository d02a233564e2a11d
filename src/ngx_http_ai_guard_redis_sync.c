
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_limit_sync.h"
#include "ngx_http_ai_guard_redis_transport.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_redis_sync.h"


/* the worker's side of sync=<interval>: worker 0 syncs */

typedef struct {
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_http_ai_guard_redis_conf_t  *rcf;
    ngx_log_t                       *log;
    ngx_event_t                      sync;
    ngx_uint_t                       syncing;
} ngx_http_ai_guard_redis_syncer_t;


static void ngx_http_ai_guard_redis_sync_handler(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_sync_done(void *data, redisReply *reply);


static ngx_http_ai_guard_redis_syncer_t  ngx_http_ai_guard_redis_syncer;

/* the index of the sync script in the transport's registry */
static ngx_uint_t  ngx_http_ai_guard_redis_sync_script;


/*
 * sync=<interval>: a node adds what it counted since its last sync to the
 * cluster's counters and reads back their totals.  KEYS: one a counter;
 * ARGV: type, limit, delta and period a counter.  Returns each counter's
 * cluster level, as the local limiter keeps it (a bucket's level in
 * unit-milliseconds at Redis's "now").
 */

static const char  ngx_http_ai_guard_redis_sync_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local out = {now}\n"
    "for i = 1, #KEYS do\n"
    "  local a = (i - 1) * 4\n"
    "  local ty = ARGV[a + 1]\n"
    "  local lim = tonumber(ARGV[a + 2])\n"
    "  local per = tonumber(ARGV[a + 4])\n"
    "  if ty == 'b' then\n"
    "    local h = redis.call('HMGET', KEYS[i], 'l', 's')\n"
    "    local l = tonumber(h[1]) or 0\n"
    "    local s = tonumber(h[2]) or now\n"
    "    if now > s then\n"
    "      l = l - (now - s) * lim\n"
    "      if l < 0 then l = 0 end\n"
    "      s = now\n"
    "    end\n"
    "    l = l + tonumber(ARGV[a + 3]) * per\n"
    "    if l < 0 then l = 0 end\n"
    "    redis.call('HSET', KEYS[i], 'l', l, 's', s)\n"
    "    redis.call('PEXPIRE', KEYS[i], math.ceil(l / lim) + 1000)\n"
    "    out[#out + 1] = l\n"
    "  else\n"
    "    local l = redis.call('INCRBY', KEYS[i], ARGV[a + 3])\n"
    "    if l < 0 then\n"
    "      redis.call('SET', KEYS[i], 0, 'KEEPTTL')\n"
    "      l = 0\n"
    "    end\n"
    "    if redis.call('PTTL', KEYS[i]) < 0 then\n"
    "      redis.call('PEXPIRE', KEYS[i], per)\n"
    "    end\n"
    "    out[#out + 1] = l\n"
    "  end\n"
    "end\n"
    "return out\n";


ngx_int_t
ngx_http_ai_guard_redis_sync_init(ngx_conf_t *cf)
{
    ngx_int_t  n;

    n = ngx_http_ai_guard_redis_script(cf, ngx_http_ai_guard_redis_sync_lua);
    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_redis_sync_script = n;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_guard_redis_sync_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ai_guard_main_conf_t     *amcf;
    ngx_http_ai_guard_redis_syncer_t  *sy;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_guard_module);
    sy = &ngx_http_ai_guard_redis_syncer;

    ngx_memzero(sy, sizeof(ngx_http_ai_guard_redis_syncer_t));

    sy->amcf = amcf;
    sy->rcf = amcf->redis;
    sy->log = cycle->log;

    sy->sync.handler = ngx_http_ai_guard_redis_sync_handler;
    sy->sync.log = cycle->log;
    sy->sync.data = sy;
    sy->sync.cancelable = 1;

    /* one worker a node syncs */

    if (ngx_worker == 0 && sy->rcf->sync) {
        ngx_add_timer(&sy->sync, sy->rcf->sync);
    }

    return NGX_OK;
}


/*
 * sync=<interval>: decisions stay in the zone; every interval worker 0
 * adds the node's own counts since the last sync to the cluster's and
 * sets the zone's counters to the cluster's totals.
 */

static void
ngx_http_ai_guard_redis_sync_handler(ngx_event_t *ev)
{
    ngx_int_t                          rc;
    ngx_http_ai_guard_redis_syncer_t  *sy;

    sy = &ngx_http_ai_guard_redis_syncer;

    if (ngx_http_ai_guard_redis_up() && !sy->syncing) {
        rc = ngx_http_ai_guard_limiter_sync(sy->amcf, sy->log,
                                            ngx_http_ai_guard_redis_sync_send);
        if (rc == NGX_OK) {
            sy->syncing = 1;
        }
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, sy->rcf->sync);
    }
}


/*
 * Called by the limiter with the counters to sync: the keys and deltas
 * are copied into "pool", which lives until the reply is handled.
 */

ngx_int_t
ngx_http_ai_guard_redis_sync_send(ngx_pool_t *pool,
    ngx_http_ai_guard_redis_sync_t *items, ngx_uint_t n)
{
    u_char                                *s;
    size_t                                *len;
    uint64_t                               now, period;
    ngx_uint_t                             i, a;
    const char                           **argv;
    ngx_http_ai_guard_redis_conf_t        *rcf;
    const ngx_http_ai_guard_redis_kind_t  *k;

    rcf = ngx_http_ai_guard_redis_syncer.rcf;

    argv = ngx_palloc(pool, (3 + 5 * n) * sizeof(char *));
    len = ngx_palloc(pool, (3 + 5 * n) * sizeof(size_t));
    s = ngx_pnalloc(pool, 16 + 4 * n * NGX_INT64_LEN);

    if (argv == NULL || len == NULL || s == NULL) {
        return NGX_ERROR;
    }

    now = ngx_http_ai_guard_now();

    /* argv[0] and argv[1] are the transport's: EVALSHA and the SHA1 */

    argv[2] = (char *) s;
    s = ngx_sprintf(s, "%ui", n);
    len[2] = s - (u_char *) argv[2];

    a = 3 + n;

    for (i = 0; i < n; i++) {
        k = &ngx_http_ai_guard_redis_kinds[items[i].kind];

        argv[3 + i] = (char *) ngx_http_ai_guard_redis_limit_key(pool,
                                   &rcf->prefix, items[i].scope.data,
                                   items[i].scope.len, items[i].kind,
                                   items[i].window, &len[3 + i]);
        if (argv[3 + i] == NULL) {
            return NGX_ERROR;
        }

        period = (k->type == 'b') ? k->period
                 : (k->type == 'q') ? ngx_http_ai_guard_cal_reset_ms(k->cal,
                                                                     now)
                                      + NGX_HTTP_AI_GUARD_DAY_MS
                 : 3600000;

        argv[a] = (k->type == 'b') ? "b" : (k->type == 'q') ? "q" : "c";
        len[a++] = 1;

        argv[a] = (char *) s;
        s = ngx_sprintf(s, "%uL", items[i].limit);
        len[a] = s - (u_char *) argv[a];
        a++;

        argv[a] = (char *) s;
        s = ngx_sprintf(s, "%L", items[i].delta);
        len[a] = s - (u_char *) argv[a];
        a++;

        argv[a] = (char *) s;
        s = ngx_sprintf(s, "%uL", period);
        len[a] = s - (u_char *) argv[a];
        a++;
    }

    if (ngx_http_ai_guard_redis_eval(ngx_http_ai_guard_redis_sync_script,
                                     ngx_http_ai_guard_redis_sync_done, pool,
                                     NULL, NULL, NULL, (int) a, argv, len,
                                     ngx_max(rcf->timeout,
                                             NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_ai_guard_redis_sync_done(void *data, redisReply *reply)
{
    ngx_pool_t  *pool = data;

    uint64_t                          *totals;
    ngx_uint_t                         i, n;
    ngx_http_ai_guard_redis_syncer_t  *sy;

    sy = &ngx_http_ai_guard_redis_syncer;

    sy->syncing = 0;

    n = 0;
    totals = NULL;

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        n = reply->elements;

        totals = ngx_palloc(pool, n * sizeof(uint64_t));

        if (totals) {
            for (i = 0; i < n; i++) {
                totals[i] = (reply->element[i]->type == REDIS_REPLY_INTEGER
                             && reply->element[i]->integer > 0)
                            ? (uint64_t) reply->element[i]->integer : 0;
            }
        }

        ngx_shmtx_lock(&sy->rcf->shpool->mutex);
        sy->rcf->sh->syncs++;
        ngx_shmtx_unlock(&sy->rcf->shpool->mutex);
    }

    /* the limiter applies the totals, or puts the deltas back */
    ngx_http_ai_guard_limiter_synced(sy->amcf, pool,
                                     totals ? totals + 1 : NULL,
                                     totals ? n - 1 : 0,
                                     totals ? totals[0] : 0);

    ngx_destroy_pool(pool);
}
