
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_redis_transport.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_redis_outbox.h"
#include "ngx_http_ai_guard_redis_admit.h"


/*
 * What an admission asks Redis to take, kept with the command (malloc()ed,
 * the request may go first): when the request went away before the reply
 * and Redis took it, it is given back through the outbox, or a client
 * that leaves while Redis thinks would hold a concurrency slot an hour.
 */

typedef struct {
    ngx_http_ai_guard_redis_conf_t  *rcf;
    ngx_log_t                       *log;
    ngx_str_t                        scope;
    ngx_uint_t                       monitor;
    ngx_uint_t                       n;
    ngx_http_ai_guard_batch_item_t   items[NGX_HTTP_AI_GUARD_REDIS_ITEMS];
} ngx_http_ai_guard_redis_taken_t;


typedef struct {
    ngx_http_ai_guard_ctx_t         *ctx;
    ngx_http_ai_guard_redis_peek_pt  done;
} ngx_http_ai_guard_redis_peek_t;


static int ngx_http_ai_guard_redis_args(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, char *flag, const char ***pargv,
    size_t **plen);
static void ngx_http_ai_guard_redis_peek_done(void *data, redisReply *reply);
static ngx_http_ai_guard_redis_taken_t *ngx_http_ai_guard_redis_taken(
    ngx_http_request_t *r, ngx_http_ai_guard_loc_conf_t *alcf,
    ngx_http_ai_guard_ctx_t *ctx);
static void ngx_http_ai_guard_redis_reserve_done(void *data,
    redisReply *reply);
static ngx_int_t ngx_http_ai_guard_redis_reserve_reply(redisReply *reply,
    ngx_uint_t n, ngx_http_ai_guard_redis_reply_t *res);
static void ngx_http_ai_guard_redis_orphan(void *data, redisReply *reply);
static ngx_int_t ngx_http_ai_guard_redis_await(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx);
static void ngx_http_ai_guard_redis_awake(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_awaited(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_unwait(void *data);


/* a request waiting for the worker's connection to get ready */

typedef struct {
    ngx_queue_t               queue;
    ngx_event_t               timer;
    ngx_http_ai_guard_ctx_t  *ctx;        /* NULL: no longer waiting */
} ngx_http_ai_guard_redis_waiter_t;


static ngx_queue_t  ngx_http_ai_guard_redis_waiting;
static ngx_event_t  ngx_http_ai_guard_redis_changed;


/* the index of the admission script in the transport's registry */
static ngx_uint_t  ngx_http_ai_guard_redis_reserve_script;


/*
 * Admission: checks every limit of the request against the cluster's
 * counters, then takes all of them or none, with the arithmetic of
 * src/ngx_http_ai_guard_limit.c on Redis's own clock.  KEYS: one a limit;
 * ARGV: monitor flag ("2": a read, which takes nothing whatever it
 * finds), then type, limit, cost and period (a bucket's ms, a
 * quota's ms to the end of its window) a limit.  Returns rc, the index of
 * the deciding limit, the retry time, then remaining and reset a limit.
 */

static const char  ngx_http_ai_guard_redis_reserve_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local rc, idx, retry = 0, 0, 0\n"
    "local lv = {}\n"
    "for i = 1, #KEYS do\n"
    "  local a = 1 + (i - 1) * 4\n"
    "  local ty = ARGV[a + 1]\n"
    "  local lim = tonumber(ARGV[a + 2])\n"
    "  local cost = tonumber(ARGV[a + 3])\n"
    "  local per = tonumber(ARGV[a + 4])\n"
    "  local l, r, w = 0, 0, 0\n"
    "  if ty == 'b' then\n"
    "    local h = redis.call('HMGET', KEYS[i], 'l', 's')\n"
    "    l = tonumber(h[1]) or 0\n"
    "    local s = tonumber(h[2]) or now\n"
    "    if now > s then\n"
    "      l = l - (now - s) * lim\n"
    "      if l < 0 then l = 0 end\n"
    "    end\n"
    "    if cost > lim then r = 2\n"
    "    elseif l > (lim - cost) * per then\n"
    "      r = 1\n"
    "      w = math.ceil((l - (lim - cost) * per) / lim)\n"
    "    end\n"
    "  else\n"
    "    l = tonumber(redis.call('GET', KEYS[i]) or '0')\n"
    "    if cost > lim then r = 2\n"
    "    elseif l > lim - cost then\n"
    "      r = 1\n"
    "      if ty == 'q' then w = per else w = 1000 end\n"
    "    end\n"
    "  end\n"
    "  lv[i] = l\n"
    "  if r > rc or (r == 1 and rc == 1 and w > retry) then\n"
    "    rc, idx, retry = r, i - 1, w\n"
    "  end\n"
    "end\n"
    "if (rc == 0 and ARGV[1] ~= '2') or ARGV[1] == '1' then\n"
    "  for i = 1, #KEYS do\n"
    "    local a = 1 + (i - 1) * 4\n"
    "    local ty = ARGV[a + 1]\n"
    "    local lim = tonumber(ARGV[a + 2])\n"
    "    local per = tonumber(ARGV[a + 4])\n"
    "    if ty == 'b' then\n"
    "      lv[i] = lv[i] + tonumber(ARGV[a + 3]) * per\n"
    "      redis.call('HSET', KEYS[i], 'l', lv[i], 's', now)\n"
    "      redis.call('PEXPIRE', KEYS[i], math.ceil(lv[i] / lim) + 1000)\n"
    "    else\n"
    "      lv[i] = redis.call('INCRBY', KEYS[i], ARGV[a + 3])\n"
    "      if ty == 'q' then\n"
    "        redis.call('PEXPIRE', KEYS[i], per + 86400000)\n"
    "      else\n"
    "        redis.call('PEXPIRE', KEYS[i], 3600000)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local out = {rc, idx, retry}\n"
    "for i = 1, #KEYS do\n"
    "  local a = 1 + (i - 1) * 4\n"
    "  local ty = ARGV[a + 1]\n"
    "  local lim = tonumber(ARGV[a + 2])\n"
    "  local per = tonumber(ARGV[a + 4])\n"
    "  local l = lv[i]\n"
    "  if ty == 'b' then\n"
    "    if l >= lim * per then out[#out + 1] = 0\n"
    "    else out[#out + 1] = math.floor((lim * per - l) / per) end\n"
    "    out[#out + 1] = math.ceil(l / lim)\n"
    "  else\n"
    "    if l >= lim then out[#out + 1] = 0\n"
    "    else out[#out + 1] = lim - l end\n"
    "    if ty == 'q' then out[#out + 1] = per else out[#out + 1] = 0 end\n"
    "  end\n"
    "end\n"
    "return out\n";


ngx_int_t
ngx_http_ai_guard_redis_admit_init(ngx_conf_t *cf)
{
    ngx_int_t  n;

    n = ngx_http_ai_guard_redis_script(cf,
                                       ngx_http_ai_guard_redis_reserve_lua);
    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_redis_reserve_script = n;

    return NGX_OK;
}


/*
 * sync=strict: one EVALSHA a request.  NGX_AGAIN: the request waits for
 * the reply and resumes through ngx_http_core_run_phases(); NGX_DECLINED:
 * Redis is not available now, the failure policy decides at once.
 */

ngx_int_t
ngx_http_ai_guard_redis_reserve(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    int                               argc;
    size_t                           *len;
    ngx_int_t                         rc;
    const char                      **argv;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_redis_taken_t  *taken;

    if (!ngx_http_ai_guard_redis_up()) {
        return ngx_http_ai_guard_redis_await(r, ctx);
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    argc = ngx_http_ai_guard_redis_args(r, ctx,
                                        (alcf->mode
                                         == NGX_HTTP_AI_GUARD_MODE_MONITOR)
                                        ? "1" : "0", &argv, &len);
    if (argc == 0) {
        return NGX_ERROR;
    }

    /*
     * the request's ctx goes with the command; a request that goes away
     * first disarms it through its pool
     */

    taken = ngx_http_ai_guard_redis_taken(r, alcf, ctx);
    if (taken == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_ai_guard_redis_eval(ngx_http_ai_guard_redis_reserve_script,
                                      ngx_http_ai_guard_redis_reserve_done,
                                      ctx, r->pool,
                                      ngx_http_ai_guard_redis_orphan, taken,
                                      argc, argv, len, amcf->redis->timeout);
    if (rc != NGX_OK) {
        ngx_free(taken);
        return rc;
    }

    return ngx_http_ai_guard_redis_wait(r, ctx);
}


/*
 * The admission script's arguments for the request's limits (ctx->items,
 * their scope ctx->scope), with the flag given; the number of arguments,
 * 0 on an error.
 */

static int
ngx_http_ai_guard_redis_args(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, char *flag, const char ***pargv,
    size_t **plen)
{
    u_char                                *p;
    size_t                                *len;
    uint64_t                               now, period;
    ngx_uint_t                             i, n, a;
    const char                           **argv;
    ngx_http_ai_guard_limit_item_t        *it;
    ngx_http_ai_guard_main_conf_t         *amcf;
    ngx_http_ai_guard_redis_conf_t        *rcf;
    const ngx_http_ai_guard_redis_kind_t  *k;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    rcf = amcf->redis;

    n = ctx->nitems;

    argv = ngx_palloc(r->pool, (4 + 5 * n) * sizeof(char *));
    len = ngx_palloc(r->pool, (4 + 5 * n) * sizeof(size_t));
    p = ngx_pnalloc(r->pool, n * 4 * NGX_INT64_LEN + 4);

    if (argv == NULL || len == NULL || p == NULL) {
        return 0;
    }

    now = ngx_http_ai_guard_now();

    /* argv[0] and argv[1] are the transport's: EVALSHA and the SHA1 */

    argv[2] = (char *) p;
    p = ngx_sprintf(p, "%ui", n);
    len[2] = p - (u_char *) argv[2];

    a = 3 + n;

    argv[a] = flag;
    len[a++] = 1;

    for (i = 0; i < n; i++) {
        it = &ctx->items[i];
        k = &ngx_http_ai_guard_redis_kinds[it->kind];

        if (k->type == 'q') {
            it->window = ngx_http_ai_guard_cal_window(k->cal, now);
            period = ngx_http_ai_guard_cal_reset_ms(k->cal, now);

        } else {
            it->window = 0;
            period = k->period;
        }

        argv[3 + i] = (char *) ngx_http_ai_guard_redis_limit_key(r->pool,
                                   &rcf->prefix, ctx->scope.data,
                                   ctx->scope.len, it->kind, it->window,
                                   &len[3 + i]);
        if (argv[3 + i] == NULL) {
            return 0;
        }

        argv[a] = (k->type == 'b') ? "b" : (k->type == 'q') ? "q" : "c";
        len[a++] = 1;

        argv[a] = (char *) p;
        p = ngx_sprintf(p, "%uL", it->limit);
        len[a] = p - (u_char *) argv[a];
        a++;

        argv[a] = (char *) p;
        p = ngx_sprintf(p, "%uL", it->cost);
        len[a] = p - (u_char *) argv[a];
        a++;

        argv[a] = (char *) p;
        p = ngx_sprintf(p, "%uL", period);
        len[a] = p - (u_char *) argv[a];
        a++;
    }

    *pargv = argv;
    *plen = len;

    return (int) a;
}


/*
 * ai_guard_self under sync=strict: what remains of the request's limits
 * (ctx->items), as the admission script finds them, and taking nothing
 * (the script's flag "2").  NGX_AGAIN: "done" is called with the request's ctx,
 * ctx->redis.rc NGX_HTTP_AI_GUARD_REDIS_FAILED when no answer came;
 * NGX_DECLINED: Redis is not available now.
 */

ngx_int_t
ngx_http_ai_guard_redis_peek(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_redis_peek_pt done)
{
    int                              argc;
    size_t                          *len;
    ngx_int_t                        rc;
    const char                     **argv;
    ngx_http_ai_guard_redis_peek_t  *peek;
    ngx_http_ai_guard_main_conf_t   *amcf;

    if (!ngx_http_ai_guard_redis_up()) {
        return NGX_DECLINED;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    peek = ngx_palloc(r->pool, sizeof(ngx_http_ai_guard_redis_peek_t));
    argc = ngx_http_ai_guard_redis_args(r, ctx, "2", &argv, &len);

    if (peek == NULL || argc == 0) {
        return NGX_ERROR;
    }

    peek->ctx = ctx;
    peek->done = done;

    /* no orphan handler: a read that nobody waits for takes nothing */

    rc = ngx_http_ai_guard_redis_eval(ngx_http_ai_guard_redis_reserve_script,
                                      ngx_http_ai_guard_redis_peek_done,
                                      peek, r->pool, NULL, NULL, argc, argv,
                                      len, amcf->redis->timeout);

    return (rc == NGX_OK) ? NGX_AGAIN : rc;
}


static void
ngx_http_ai_guard_redis_peek_done(void *data, redisReply *reply)
{
    ngx_http_ai_guard_redis_peek_t *peek = data;

    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = peek->ctx;

    if (ngx_http_ai_guard_redis_reserve_reply(reply, ctx->nitems, &ctx->redis)
        != NGX_OK)
    {
        ctx->redis.rc = NGX_HTTP_AI_GUARD_REDIS_FAILED;
    }

    peek->done(ctx);
}


ngx_int_t
ngx_http_ai_guard_redis_admit_init_process(ngx_cycle_t *cycle)
{
    ngx_queue_init(&ngx_http_ai_guard_redis_waiting);

    ngx_http_ai_guard_redis_changed.handler = ngx_http_ai_guard_redis_awake;
    ngx_http_ai_guard_redis_changed.log = cycle->log;

    ngx_http_ai_guard_redis_on_change(&ngx_http_ai_guard_redis_changed);

    return NGX_OK;
}


/*
 * The worker's connection is not ready.  While it is being made and no
 * outage is known (a worker that has just started, after a start or a
 * reload), the request waits for it, at most timeout=: admitted in the
 * zone meanwhile it would not be counted in Redis, and a new worker would
 * admit past the cluster's limits.  The handshake has timers of its own,
 * and a connection given up ends the wait at once.  After an outage the
 * failure policy decides at once, as it always did.
 */

static ngx_int_t
ngx_http_ai_guard_redis_await(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_pool_cleanup_t                *cln;
    ngx_http_ai_guard_main_conf_t     *amcf;
    ngx_http_ai_guard_redis_waiter_t  *wt;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    /* a word read without the lock: a hint, set once an outage is seen */

    if (amcf->redis->sh->outage || ngx_exiting || ngx_quit || ngx_terminate
        || ngx_http_ai_guard_redis_changed.handler == NULL)
    {
        return NGX_DECLINED;
    }

    wt = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_redis_waiter_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (wt == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    wt->ctx = ctx;
    wt->timer.handler = ngx_http_ai_guard_redis_awaited;
    wt->timer.data = wt;
    wt->timer.log = r->connection->log;

    ngx_add_timer(&wt->timer, amcf->redis->timeout);
    ngx_queue_insert_tail(&ngx_http_ai_guard_redis_waiting, &wt->queue);

    cln->handler = ngx_http_ai_guard_redis_unwait;
    cln->data = wt;

    return ngx_http_ai_guard_redis_wait(r, ctx);
}


/* the connection got ready, or was given up: every waiting request goes */

static void
ngx_http_ai_guard_redis_awake(ngx_event_t *ev)
{
    ngx_queue_t                       *q;
    ngx_http_ai_guard_redis_waiter_t  *wt;

    while (!ngx_queue_empty(&ngx_http_ai_guard_redis_waiting)) {
        q = ngx_queue_head(&ngx_http_ai_guard_redis_waiting);
        wt = ngx_queue_data(q, ngx_http_ai_guard_redis_waiter_t, queue);

        ngx_http_ai_guard_redis_awaited(&wt->timer);
    }
}


/*
 * Ready: the admission goes to Redis, whose reply resumes the request;
 * else the request resumes at once and the failure policy decides.
 */

static void
ngx_http_ai_guard_redis_awaited(ngx_event_t *ev)
{
    ngx_http_ai_guard_redis_waiter_t *wt = ev->data;

    ngx_http_request_t       *r;
    ngx_http_ai_guard_ctx_t  *ctx;

    ctx = wt->ctx;
    r = ctx->request;

    /* the waiter is done with before the request can go, and its pool */

    ngx_http_ai_guard_redis_unwait(wt);

    ctx->redis.rc = NGX_HTTP_AI_GUARD_REDIS_FAILED;

    if (ngx_http_ai_guard_redis_up()
        && ngx_http_ai_guard_redis_reserve(r,
               ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_module),
               ctx)
           == NGX_AGAIN)
    {
        return;
    }

    ngx_http_ai_guard_redis_resume(ctx);
}


static void
ngx_http_ai_guard_redis_unwait(void *data)
{
    ngx_http_ai_guard_redis_waiter_t *wt = data;

    if (wt->ctx == NULL) {
        return;
    }

    wt->ctx = NULL;

    ngx_queue_remove(&wt->queue);

    if (wt->timer.timer_set) {
        ngx_del_timer(&wt->timer);
    }
}


/* the request waits for a reply of Redis; NGX_AGAIN */

ngx_int_t
ngx_http_ai_guard_redis_wait(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    ctx->redis_wait = 1;
    ctx->redis_done = 0;

    /* a client that goes away meanwhile ends the request (499) */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


/* the reply is in: the request goes on through its phases */

void
ngx_http_ai_guard_redis_resume(ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    ctx->redis_done = 1;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_ai_guard_redis_reserve_done(void *data, redisReply *reply)
{
    ngx_http_ai_guard_ctx_t  *ctx = data;

    if (ngx_http_ai_guard_redis_reserve_reply(reply, ctx->nitems, &ctx->redis)
        != NGX_OK
        && reply && reply->type == REDIS_REPLY_ERROR)
    {
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "ai_guard: redis admission script failed: %s",
                      reply->str);
    }

    ngx_http_ai_guard_redis_resume(ctx);
}


/* rc, the deciding limit, the retry, then remaining and reset a limit */

static ngx_int_t
ngx_http_ai_guard_redis_reserve_reply(redisReply *reply, ngx_uint_t n,
    ngx_http_ai_guard_redis_reply_t *res)
{
    ngx_uint_t    i;
    redisReply  **e;

    res->rc = NGX_HTTP_AI_GUARD_REDIS_FAILED;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3 + 2 * n)
    {
        return NGX_ERROR;
    }

    e = reply->element;

    for (i = 0; i < reply->elements; i++) {
        if (e[i]->type != REDIS_REPLY_INTEGER || e[i]->integer < 0) {
            return NGX_ERROR;
        }
    }

    if ((ngx_uint_t) e[1]->integer >= n + 1) {
        return NGX_ERROR;
    }

    res->rc = (ngx_int_t) e[0]->integer;
    res->index = (ngx_uint_t) e[1]->integer;
    res->retry_ms = (uint64_t) e[2]->integer;

    for (i = 0; i < n; i++) {
        res->remaining[i] = (uint64_t) e[3 + 2 * i]->integer;
        res->reset_ms[i] = (uint64_t) e[4 + 2 * i]->integer;
    }

    return NGX_OK;
}


/* what the admission takes when Redis says yes (or monitors) */

static ngx_http_ai_guard_redis_taken_t *
ngx_http_ai_guard_redis_taken(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    ngx_uint_t                        i;
    ngx_http_ai_guard_limit_item_t   *it;
    ngx_http_ai_guard_main_conf_t    *amcf;
    ngx_http_ai_guard_redis_taken_t  *taken;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    taken = ngx_alloc(sizeof(ngx_http_ai_guard_redis_taken_t)
                      + ctx->scope.len, r->connection->log);
    if (taken == NULL) {
        return NULL;
    }

    taken->rcf = amcf->redis;
    taken->log = ngx_cycle->log;
    taken->monitor = (alcf->mode == NGX_HTTP_AI_GUARD_MODE_MONITOR);
    taken->n = ctx->nitems;
    taken->scope.len = ctx->scope.len;
    taken->scope.data = (u_char *) (taken + 1);
    ngx_memcpy(taken->scope.data, ctx->scope.data, ctx->scope.len);

    for (i = 0; i < ctx->nitems; i++) {
        it = &ctx->items[i];

        taken->items[i].kind = it->kind;
        taken->items[i].limit = it->limit;
        taken->items[i].window = it->window;
        taken->items[i].delta =
            (it->kind == NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY)
            ? 1 : ngx_http_ai_guard_sat_delta(it->cost, 0);
    }

    return taken;
}


/*
 * The admission's command ends: "reply" is the answer a request gone
 * before it did not read (NULL when it did, or when none came).  What
 * Redis took for nobody goes back.
 */

static void
ngx_http_ai_guard_redis_orphan(void *data, redisReply *reply)
{
    ngx_http_ai_guard_redis_taken_t *taken = data;

    ngx_http_ai_guard_redis_reply_t  res;

    if (reply
        && ngx_http_ai_guard_redis_reserve_reply(reply, taken->n, &res)
           == NGX_OK
        && (res.rc == NGX_HTTP_AI_GUARD_LIMIT_OK || taken->monitor))
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, taken->log, 0,
                       "ai_guard redis: an admission of a request gone, "
                       "given back: %V", &taken->scope);

        ngx_http_ai_guard_redis_release(taken->rcf, taken->log,
                                        &taken->scope, taken->items,
                                        taken->n);
    }

    ngx_free(taken);
}
