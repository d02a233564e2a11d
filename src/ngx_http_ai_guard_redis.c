
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard.h"
#include "ngx_http_ai_guard_batch.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


#define NGX_HTTP_AI_GUARD_REDIS_BACKOFF_MIN  50
#define NGX_HTTP_AI_GUARD_REDIS_BACKOFF_MAX  2000
#define NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE    1000
#define NGX_HTTP_AI_GUARD_REDIS_FLUSH_MS     100
#define NGX_HTTP_AI_GUARD_REDIS_BATCH        256
#define NGX_HTTP_AI_GUARD_REDIS_MAX_SCOPES   1024

/* the fields of a usage hash a report reads, in HMGET's order */
#define NGX_HTTP_AI_GUARD_REDIS_FIELDS       11

#define NGX_HTTP_AI_GUARD_REDIS_RESERVE      1
#define NGX_HTTP_AI_GUARD_REDIS_FLUSH        2
#define NGX_HTTP_AI_GUARD_REDIS_SYNC         3
#define NGX_HTTP_AI_GUARD_REDIS_SCRIPTS      3

/* latency buckets, microseconds; the last one is +Inf */
#define NGX_HTTP_AI_GUARD_REDIS_BUCKETS      12

#define NGX_HTTP_AI_GUARD_REDIS_UNIT_REQ     0
#define NGX_HTTP_AI_GUARD_REDIS_UNIT_TOKEN   1
#define NGX_HTTP_AI_GUARD_REDIS_UNIT_MONEY   2
#define NGX_HTTP_AI_GUARD_REDIS_UNIT_CONC    3


typedef void (*ngx_http_ai_guard_redis_done_pt)(
    ngx_http_ai_guard_redis_cmd_t *cmd, redisReply *reply);


/*
 * A command on the wire: malloc()ed, freed when its reply (or the end of
 * the connection) comes.  A request that goes away first disarms it from
 * its pool cleanup, so a late reply touches nothing of the request.
 */

struct ngx_http_ai_guard_redis_cmd_s {
    ngx_event_t                      timer;
    redisAsyncContext               *ac;
    ngx_http_ai_guard_redis_done_pt  handler;
    void                            *data;
    ngx_pool_cleanup_t              *cln;
    uint64_t                         start_us;
    int                              argc;
    const char                     **argv;
    size_t                          *argvlen;
    ngx_uint_t                       script;
    unsigned                         armed:1;
};


/*
 * An outbox record: one settled request in the queue, laid out as
 * src/ngx_http_ai_guard_batch.h says (its items and strings follow it).
 */

typedef struct {
    ngx_queue_t                      queue;
    ngx_http_ai_guard_batch_rec_t    rec;
} ngx_http_ai_guard_redis_rec_t;


struct ngx_http_ai_guard_redis_sh_s {
    ngx_queue_t                      outbox;
    ngx_uint_t                       pending;
    uint64_t                         seq;
    uint64_t                         node;
    ngx_uint_t                       batch;       /* records in flight */
    uint64_t                         batch_first;
    uint64_t                         batch_until; /* ms: the lease */
    ngx_uint_t                       outage;      /* warned about */
    ngx_uint_t                       full;        /* alerted about */
    uint64_t                         errors;
    uint64_t                         dropped;
    uint64_t                         flushed;
    uint64_t                         syncs;
    uint64_t                         latency[NGX_HTTP_AI_GUARD_REDIS_BUCKETS];
    uint64_t                         latency_us;
    uint64_t                         latency_n;
};


/* one connection a worker */

typedef struct {
    ngx_http_ai_guard_redis_conf_t  *rcf;
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_log_t                       *log;
    redisAsyncContext               *ac;
    ngx_connection_t                *conn;
    ngx_uint_t                       ready;
    ngx_uint_t                       handshake;   /* replies still due */
    ngx_msec_t                       backoff;
    ngx_event_t                      reconnect;
    ngx_event_t                      flush;
    ngx_event_t                      sync;
    ngx_uint_t                       flushing;
    ngx_uint_t                       syncing;
    char                             sha[NGX_HTTP_AI_GUARD_REDIS_SCRIPTS][41];
} ngx_http_ai_guard_redis_worker_t;


/*
 * A batch on its way: its records copied out of the zone into "pool",
 * which lives until the reply is handled.
 */

typedef struct {
    ngx_pool_t                            *pool;
    uint64_t                               first;
    uint64_t                               node;
    ngx_uint_t                             n;
    const ngx_http_ai_guard_batch_rec_t  **recs;
    int                                    argc;
    const char                           **argv;
    size_t                                *argvlen;
} ngx_http_ai_guard_redis_flush_t;


/*
 * A usage report's reads: malloc()ed, freed with the last reply.  The
 * request's pool cleanup sets "request" to NULL: the replies still due
 * are then read and dropped.
 */

typedef struct {
    ngx_http_request_t                *request;
    ngx_http_ai_guard_redis_usage_pt   handler;
    void                              *data;
    ngx_array_t                       *rows;
    ngx_str_t                          tenant;
    ngx_pool_cleanup_t                *cln;
    ngx_uint_t                         pending;
    ngx_uint_t                         failed;
} ngx_http_ai_guard_redis_fetch_t;


/* how Redis keeps each limit kind */

typedef struct {
    char                             type;    /* b: bucket, q: quota, c */
    u_char                           unit;
    ngx_http_ai_guard_cal_e          cal;
    uint64_t                         period;
} ngx_http_ai_guard_redis_kind_t;


static ngx_int_t ngx_http_ai_guard_redis_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_guard_redis_connect(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_schedule(void);
static void ngx_http_ai_guard_redis_drop(const char *why);
static void ngx_http_ai_guard_redis_read_handler(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_write_handler(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_add_read(void *data);
static void ngx_http_ai_guard_redis_del_read(void *data);
static void ngx_http_ai_guard_redis_add_write(void *data);
static void ngx_http_ai_guard_redis_del_write(void *data);
static void ngx_http_ai_guard_redis_cleanup(void *data);
static void ngx_http_ai_guard_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_ai_guard_redis_handshake_done(
    ngx_http_ai_guard_redis_cmd_t *cmd, redisReply *reply);
static ngx_http_ai_guard_redis_cmd_t *ngx_http_ai_guard_redis_send(
    ngx_http_ai_guard_redis_done_pt handler, void *data, ngx_uint_t script,
    int argc, const char **argv, size_t *argvlen, ngx_msec_t timeout);
static void ngx_http_ai_guard_redis_callback(redisAsyncContext *ac,
    void *rp, void *privdata);
static void ngx_http_ai_guard_redis_timeout(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_disarm(void *data);
static void ngx_http_ai_guard_redis_reserve_done(
    ngx_http_ai_guard_redis_cmd_t *cmd, redisReply *reply);
static void ngx_http_ai_guard_redis_flush_handler(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_flush_batch(void);
static ngx_int_t ngx_http_ai_guard_redis_flush_copy(
    ngx_http_ai_guard_redis_flush_t *f);
static ngx_int_t ngx_http_ai_guard_redis_flush_encode(
    ngx_http_ai_guard_redis_flush_t *f, ngx_http_ai_guard_batch_t *b);
static void ngx_http_ai_guard_redis_flush_done(
    ngx_http_ai_guard_redis_cmd_t *cmd, redisReply *reply);
static void ngx_http_ai_guard_redis_sync_handler(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_sync_done(
    ngx_http_ai_guard_redis_cmd_t *cmd, redisReply *reply);
static void ngx_http_ai_guard_redis_days_done(
    ngx_http_ai_guard_redis_cmd_t *cmd, redisReply *reply);
static ngx_uint_t ngx_http_ai_guard_redis_usage_key(
    ngx_http_ai_guard_redis_fetch_t *fetch, redisReply *e);
static void ngx_http_ai_guard_redis_row_done(
    ngx_http_ai_guard_redis_cmd_t *cmd, redisReply *reply);
static ngx_int_t ngx_http_ai_guard_redis_row(
    ngx_http_ai_guard_redis_fetch_t *fetch, redisReply *reply);
static ngx_int_t ngx_http_ai_guard_redis_int(redisReply *e, int64_t *v);
static void ngx_http_ai_guard_redis_fetch_end(
    ngx_http_ai_guard_redis_fetch_t *fetch);
static void ngx_http_ai_guard_redis_fetch_cleanup(void *data);
static u_char *ngx_http_ai_guard_redis_limit_key(ngx_pool_t *pool,
    ngx_str_t *prefix, u_char *scope, size_t len, ngx_uint_t kind,
    uint64_t window, size_t *n);
static uint64_t ngx_http_ai_guard_redis_usec(void);
static void ngx_http_ai_guard_redis_observe(uint64_t us);
static void ngx_http_ai_guard_redis_error(void);
static void ngx_http_ai_guard_redis_outage(const char *why);


static ngx_http_ai_guard_redis_worker_t  ngx_http_ai_guard_redis_w;


static const ngx_http_ai_guard_redis_kind_t
    ngx_http_ai_guard_redis_kinds[NGX_HTTP_AI_GUARD_LIMIT_NKINDS] =
{
    { 'c', NGX_HTTP_AI_GUARD_REDIS_UNIT_REQ, 0, 0 },
    { 'b', NGX_HTTP_AI_GUARD_REDIS_UNIT_REQ, 0, NGX_HTTP_AI_GUARD_MINUTE_MS },
    { 'b', NGX_HTTP_AI_GUARD_REDIS_UNIT_REQ, 0, NGX_HTTP_AI_GUARD_HOUR_MS },
    { 'q', NGX_HTTP_AI_GUARD_REDIS_UNIT_REQ, NGX_HTTP_AI_GUARD_CAL_DAY, 0 },
    { 'b', NGX_HTTP_AI_GUARD_REDIS_UNIT_TOKEN, 0,
      NGX_HTTP_AI_GUARD_MINUTE_MS },
    { 'b', NGX_HTTP_AI_GUARD_REDIS_UNIT_TOKEN, 0, NGX_HTTP_AI_GUARD_HOUR_MS },
    { 'q', NGX_HTTP_AI_GUARD_REDIS_UNIT_TOKEN, NGX_HTTP_AI_GUARD_CAL_DAY, 0 },
    { 'q', NGX_HTTP_AI_GUARD_REDIS_UNIT_TOKEN, NGX_HTTP_AI_GUARD_CAL_MONTH,
      0 },
    { 'c', NGX_HTTP_AI_GUARD_REDIS_UNIT_CONC, 0, 0 },
    { 'q', NGX_HTTP_AI_GUARD_REDIS_UNIT_MONEY, NGX_HTTP_AI_GUARD_CAL_DAY, 0 },
    { 'q', NGX_HTTP_AI_GUARD_REDIS_UNIT_MONEY, NGX_HTTP_AI_GUARD_CAL_MONTH,
      0 }
};


static const uint64_t
    ngx_http_ai_guard_redis_bucket_us[NGX_HTTP_AI_GUARD_REDIS_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    (uint64_t) -1
};


static const char  *ngx_http_ai_guard_redis_fields[] = {
    "day", "tenant", "key_id", "model", "stripe_customer", "requests",
    "input_tokens", "output_tokens", "cached_tokens", "estimated_requests",
    "cost_pico_usd"
};


static const char  *ngx_http_ai_guard_redis_le[] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05", "0.1", "0.25", "+Inf"
};


/*
 * Admission: checks every limit of the request against the cluster's
 * counters, then takes all of them or none, with the arithmetic of
 * src/ngx_http_ai_guard_limit.c on Redis's own clock.  KEYS: one a limit;
 * ARGV: monitor flag, then type, limit, cost and period (a bucket's ms, a
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
    "if rc == 0 or ARGV[1] == '1' then\n"
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


/*
 * A batch of the outbox, applied once: KEYS[1] is the batch id; when it
 * is already set the batch was applied before (a retry) and nothing is
 * counted again.  ARGV: the key prefix, then the records: usage ('u') and
 * corrections of buckets ('b'), quotas ('q') and concurrency ('c').  A
 * usage hash's key is the day, then the tenant, key id, model and Stripe
 * customer, each as "<length>:<bytes>": no two rows share one.
 */

static const char  ngx_http_ai_guard_redis_flush_lua[] =
    "if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', 604800) then\n"
    "  return 0\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local p = ARGV[1]\n"
    "local i = 2\n"
    "while i <= #ARGV do\n"
    "  local ty = ARGV[i]\n"
    "  if ty == 'u' then\n"
    "    local k = p .. 'u:' .. ARGV[i + 1] .. ':'\n"
    "              .. #ARGV[i + 2] .. ':' .. ARGV[i + 2]\n"
    "              .. #ARGV[i + 3] .. ':' .. ARGV[i + 3]\n"
    "              .. #ARGV[i + 4] .. ':' .. ARGV[i + 4]\n"
    "              .. #ARGV[i + 5] .. ':' .. ARGV[i + 5]\n"
    "    redis.call('HSET', k, 'day', ARGV[i + 1], 'tenant', ARGV[i + 2],\n"
    "               'key_id', ARGV[i + 3], 'model', ARGV[i + 4],\n"
    "               'stripe_customer', ARGV[i + 5])\n"
    "    redis.call('HINCRBY', k, 'requests', ARGV[i + 6])\n"
    "    redis.call('HINCRBY', k, 'input_tokens', ARGV[i + 7])\n"
    "    redis.call('HINCRBY', k, 'output_tokens', ARGV[i + 8])\n"
    "    redis.call('HINCRBY', k, 'cached_tokens', ARGV[i + 9])\n"
    "    redis.call('HINCRBY', k, 'estimated_requests', ARGV[i + 10])\n"
    "    redis.call('HINCRBY', k, 'cost_pico_usd', ARGV[i + 11])\n"
    "    redis.call('SADD', p .. 'days:' .. ARGV[i + 1], k)\n"
    "    i = i + 12\n"
    "  elseif ty == 'b' then\n"
    "    local k = ARGV[i + 1]\n"
    "    local lim = tonumber(ARGV[i + 2])\n"
    "    local per = tonumber(ARGV[i + 3])\n"
    "    local h = redis.call('HMGET', k, 'l', 's')\n"
    "    local l = tonumber(h[1]) or 0\n"
    "    local s = tonumber(h[2]) or now\n"
    "    if now > s then\n"
    "      l = l - (now - s) * lim\n"
    "      if l < 0 then l = 0 end\n"
    "      s = now\n"
    "    end\n"
    "    l = l + tonumber(ARGV[i + 4]) * per\n"
    "    if l < 0 then l = 0 end\n"
    "    redis.call('HSET', k, 'l', l, 's', s)\n"
    "    redis.call('PEXPIRE', k, math.ceil(l / lim) + 1000)\n"
    "    i = i + 5\n"
    "  elseif ty == 'q' then\n"
    "    local k = ARGV[i + 1]\n"
    "    if redis.call('INCRBY', k, ARGV[i + 2]) < 0 then\n"
    "      redis.call('SET', k, 0, 'KEEPTTL')\n"
    "    end\n"
    "    if redis.call('PTTL', k) < 0 then\n"
    "      redis.call('PEXPIRE', k, ARGV[i + 3])\n"
    "    end\n"
    "    i = i + 4\n"
    "  else\n"
    "    local k = ARGV[i + 1]\n"
    "    if redis.call('INCRBY', k, ARGV[i + 2]) < 0 then\n"
    "      redis.call('SET', k, 0)\n"
    "    end\n"
    "    redis.call('PEXPIRE', k, 3600000)\n"
    "    i = i + 3\n"
    "  end\n"
    "end\n"
    "return 1\n";


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


static const char  *ngx_http_ai_guard_redis_scripts[] = {
    NULL,
    ngx_http_ai_guard_redis_reserve_lua,
    ngx_http_ai_guard_redis_flush_lua,
    ngx_http_ai_guard_redis_sync_lua
};


/*
 * ai_guard_redis <host:port | unix:/path> [password=] [db=] [timeout=]
 *     [sync=strict | <interval>] [fail=open | closed] [prefix=] [outbox=]
 */

char *
ngx_http_ai_guard_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    u_char                          *p;
    ssize_t                          size;
    ngx_int_t                        n;
    ngx_str_t                       *value, s, name;
    ngx_url_t                        u;
    ngx_uint_t                       i;
    ngx_http_ai_guard_redis_conf_t  *rcf;

    if (amcf->redis) {
        return "is duplicate";
    }

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_redis_conf_t));
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    rcf->addr = value[1];
    rcf->timeout = 50;
    rcf->db = 0;
    ngx_str_set(&rcf->prefix, "aiguard:");
    rcf->outbox = 1024 * 1024;

    if (value[1].len > 5 && ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        rcf->host = ngx_pnalloc(cf->pool, value[1].len - 5 + 1);
        if (rcf->host == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(rcf->host, value[1].data + 5, value[1].len - 5 + 1);
        rcf->port = 0;

    } else {

        /*
         * hiredis 0.14 resolves names with a blocking getaddrinfo(): a
         * name is resolved here, once, and the worker connects by address
         */

        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = value[1];
        u.default_port = 6379;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid redis address \"%V\"%s%s", &value[1],
                               u.err ? ": " : "", u.err ? u.err : "");
            return NGX_CONF_ERROR;
        }

        rcf->host = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (rcf->host == NULL) {
            return NGX_CONF_ERROR;
        }

        n = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, rcf->host,
                          NGX_SOCKADDR_STRLEN, 0);
        rcf->host[n] = '\0';
        rcf->port = ngx_inet_get_port(u.addrs[0].sockaddr);
    }

    for (i = 2; i < cf->args->nelts; i++) {

        p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');
        if (p == NULL) {
            goto invalid;
        }

        name.data = value[i].data;
        name.len = p - value[i].data;
        s.data = p + 1;
        s.len = value[i].data + value[i].len - s.data;

        if (name.len == 8 && ngx_strncmp(name.data, "password", 8) == 0) {
            rcf->password = s;
            continue;
        }

        if (name.len == 2 && ngx_strncmp(name.data, "db", 2) == 0) {
            rcf->db = ngx_atoi(s.data, s.len);
            if (rcf->db == NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (name.len == 7 && ngx_strncmp(name.data, "timeout", 7) == 0) {
            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            rcf->timeout = n;
            continue;
        }

        if (name.len == 4 && ngx_strncmp(name.data, "sync", 4) == 0) {
            if (s.len == 6 && ngx_strncmp(s.data, "strict", 6) == 0) {
                rcf->sync = 0;
                continue;
            }

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < 10) {
                goto invalid;
            }

            rcf->sync = n;
            continue;
        }

        if (name.len == 4 && ngx_strncmp(name.data, "fail", 4) == 0) {
            if (s.len == 4 && ngx_strncmp(s.data, "open", 4) == 0) {
                rcf->fail_closed = 0;

            } else if (s.len == 6 && ngx_strncmp(s.data, "closed", 6) == 0) {
                rcf->fail_closed = 1;

            } else {
                goto invalid;
            }

            continue;
        }

        if (name.len == 6 && ngx_strncmp(name.data, "prefix", 6) == 0) {
            rcf->prefix = s;
            continue;
        }

        if (name.len == 6 && ngx_strncmp(name.data, "outbox", 6) == 0) {
            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
                goto invalid;
            }

            rcf->outbox = size;
            continue;
        }

        goto invalid;
    }

    /* the outbox has a zone of its own: it never competes with the LRU */

    ngx_str_set(&name, "ai_guard_redis");

    rcf->shm_zone = ngx_shared_memory_add(cf, &name, rcf->outbox,
                                          &ngx_http_ai_guard_module);
    if (rcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    rcf->shm_zone->init = ngx_http_ai_guard_redis_init_zone;
    rcf->shm_zone->data = rcf;

    amcf->redis = rcf;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);

    return NGX_CONF_ERROR;
}


/* a reload adopts the outbox with what it still holds */

static ngx_int_t
ngx_http_ai_guard_redis_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_guard_redis_conf_t  *orcf = data;

    size_t                           len;
    ngx_http_ai_guard_redis_conf_t  *rcf;

    rcf = shm_zone->data;

    if (orcf) {
        rcf->sh = orcf->sh;
        rcf->shpool = orcf->shpool;

        return NGX_OK;
    }

    rcf->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        rcf->sh = rcf->shpool->data;

        return NGX_OK;
    }

    rcf->sh = ngx_slab_calloc(rcf->shpool,
                              sizeof(ngx_http_ai_guard_redis_sh_t));
    if (rcf->sh == NULL) {
        return NGX_ERROR;
    }

    rcf->shpool->data = rcf->sh;

    ngx_queue_init(&rcf->sh->outbox);

    /* batch ids must not repeat across restarts of this node */
    rcf->sh->node = ((uint64_t) ngx_time() << 32)
                    ^ ((uint64_t) ngx_random() << 8) ^ (uint64_t) ngx_pid;

    len = sizeof(" in ai_guard redis outbox \"\"") + shm_zone->shm.name.len;

    rcf->shpool->log_ctx = ngx_slab_alloc(rcf->shpool, len);
    if (rcf->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(rcf->shpool->log_ctx, " in ai_guard redis outbox \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full outbox says so itself, once */
    rcf->shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_guard_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ai_guard_main_conf_t     *amcf;
    ngx_http_ai_guard_redis_worker_t  *w;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_guard_module);

    if (amcf == NULL || amcf->redis == NULL) {
        return NGX_OK;
    }

    w = &ngx_http_ai_guard_redis_w;

    ngx_memzero(w, sizeof(ngx_http_ai_guard_redis_worker_t));

    w->rcf = amcf->redis;
    w->amcf = amcf;
    w->log = cycle->log;
    w->backoff = NGX_HTTP_AI_GUARD_REDIS_BACKOFF_MIN;

    w->reconnect.handler = ngx_http_ai_guard_redis_connect;
    w->reconnect.log = cycle->log;
    w->reconnect.data = w;
    w->reconnect.cancelable = 1;

    w->flush.handler = ngx_http_ai_guard_redis_flush_handler;
    w->flush.log = cycle->log;
    w->flush.data = w;
    w->flush.cancelable = 1;

    w->sync.handler = ngx_http_ai_guard_redis_sync_handler;
    w->sync.log = cycle->log;
    w->sync.data = w;
    w->sync.cancelable = 1;

    /* one worker a node drains the outbox and syncs */

    if (ngx_worker == 0) {
        ngx_add_timer(&w->flush, NGX_HTTP_AI_GUARD_REDIS_FLUSH_MS);

        if (w->rcf->sync) {
            ngx_add_timer(&w->sync, w->rcf->sync);
        }
    }

    ngx_http_ai_guard_redis_connect(&w->reconnect);

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_guard_redis_up(void)
{
    return ngx_http_ai_guard_redis_w.ready;
}


static void
ngx_http_ai_guard_redis_connect(ngx_event_t *ev)
{
    redisAsyncContext                 *ac;
    ngx_connection_t                  *c;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;
    rcf = w->rcf;

    if (w->ac || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* a numeric address or a path: no name lookup, no blocking call */

    if (rcf->port) {
        ac = redisAsyncConnect((char *) rcf->host, rcf->port);

    } else {
        ac = redisAsyncConnectUnix((char *) rcf->host);
    }

    if (ac == NULL) {
        ngx_http_ai_guard_redis_outage("out of memory");
        ngx_http_ai_guard_redis_schedule();
        return;
    }

    if (ac->err) {
        ngx_http_ai_guard_redis_outage(ac->errstr);
        redisAsyncFree(ac);
        ngx_http_ai_guard_redis_schedule();
        return;
    }

    c = ngx_get_connection(ac->c.fd, w->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_ai_guard_redis_schedule();
        return;
    }

    c->data = ac;
    c->read->handler = ngx_http_ai_guard_redis_read_handler;
    c->write->handler = ngx_http_ai_guard_redis_write_handler;
    c->read->log = w->log;
    c->write->log = w->log;

    /* closed by ngx_close_idle_connections() when the worker quits */
    c->idle = 1;

    ac->ev.data = c;
    ac->ev.addRead = ngx_http_ai_guard_redis_add_read;
    ac->ev.delRead = ngx_http_ai_guard_redis_del_read;
    ac->ev.addWrite = ngx_http_ai_guard_redis_add_write;
    ac->ev.delWrite = ngx_http_ai_guard_redis_del_write;
    ac->ev.cleanup = ngx_http_ai_guard_redis_cleanup;

    w->ac = ac;
    w->conn = c;
    w->ready = 0;

    redisAsyncSetConnectCallback(ac, ngx_http_ai_guard_redis_on_connect);

    /* the first write event says the non-blocking connect is done */

    ngx_http_ai_guard_redis_add_read(c);
    ngx_http_ai_guard_redis_add_write(c);

    ngx_add_timer(c->write, ngx_max(rcf->timeout,
                                    NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE));
}


static void
ngx_http_ai_guard_redis_schedule(void)
{
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    if (ngx_exiting || ngx_quit || ngx_terminate || w->reconnect.timer_set) {
        return;
    }

    ngx_add_timer(&w->reconnect, w->backoff);

    w->backoff = ngx_min(w->backoff * 2, NGX_HTTP_AI_GUARD_REDIS_BACKOFF_MAX);
}


/*
 * Gives the connection up: every command still waiting gets its callback
 * with no reply (so every request waiting resumes and the failure policy
 * decides), then the cleanup hook closes the socket and a reconnect is
 * scheduled.
 */

static void
ngx_http_ai_guard_redis_drop(const char *why)
{
    redisAsyncContext                 *ac;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    ac = w->ac;

    if (ac == NULL) {
        return;
    }

    ngx_http_ai_guard_redis_outage(why);

    w->ac = NULL;
    w->ready = 0;

    redisAsyncFree(ac);
}


static void
ngx_http_ai_guard_redis_read_handler(ngx_event_t *ev)
{
    char                               b;
    ssize_t                            n;
    ngx_uint_t                         i;
    ngx_connection_t                  *c;
    redisAsyncContext                 *ac;
    ngx_http_ai_guard_redis_worker_t  *w;

    c = ev->data;
    ac = c->data;
    w = &ngx_http_ai_guard_redis_w;

    if (c->close) {
        /* the worker quits: pending replies are still awaited */
        c->close = 0;
        c->idle = 0;

        if (w->ac == ac) {
            if (ngx_worker == 0 && w->ready && !w->flushing) {
                /* the last batch before the node goes */
                ngx_http_ai_guard_redis_flush_batch();
            }

            w->ready = 0;
            w->ac = NULL;
            redisAsyncDisconnect(ac);
        }

        return;
    }

    if (ev->timedout) {
        return;
    }

    /*
     * hiredis reads at most 16 KB a call: under edge-triggered events the
     * socket is drained until it would block, or nothing wakes us again
     */

    for (i = 0; /* void */; i++) {
        redisAsyncHandleRead(ac);

        if (w->conn != c || !(ngx_event_flags & NGX_USE_CLEAR_EVENT)) {
            return;
        }

        n = recv(c->fd, &b, 1, MSG_PEEK);

        if (n == -1 && (ngx_socket_errno == NGX_EAGAIN
                        || ngx_socket_errno == NGX_EINTR))
        {
            return;
        }

        if (i == 1024) {
            /* let the other connections run: come back at once */
            ngx_post_event(ev, &ngx_posted_events);
            return;
        }
    }
}


static void
ngx_http_ai_guard_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t                  *c;
    redisAsyncContext                 *ac;
    ngx_http_ai_guard_redis_worker_t  *w;

    c = ev->data;
    ac = c->data;
    w = &ngx_http_ai_guard_redis_w;

    if (ev->timedout) {
        /* the TCP connect, or the handshake after it, took too long */
        ev->timedout = 0;

        if (w->ac == ac) {
            ngx_http_ai_guard_redis_drop("connect timed out");
        }

        return;
    }

    redisAsyncHandleWrite(ac);
}


static void
ngx_http_ai_guard_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT,
                             (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                             ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_ai_guard_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active && !(ngx_event_flags & NGX_USE_CLEAR_EVENT)) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


/*
 * Under edge-triggered events a socket that stayed writable raises no new
 * event: the write is posted, so the commands of this turn of the event
 * loop go out in one write at its end, pipelined.
 */

static void
ngx_http_ai_guard_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT,
                             (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                             ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT);
    }

    if (ngx_http_ai_guard_redis_w.ready) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


static void
ngx_http_ai_guard_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active && !(ngx_event_flags & NGX_USE_CLEAR_EVENT)) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis is done with the context; it closes the socket right after */

static void
ngx_http_ai_guard_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    redisAsyncContext                 *ac;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;
    ac = c->data;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->read->closed = 1;
    c->write->closed = 1;

    ngx_free_connection(c);

    c->fd = (ngx_socket_t) -1;

    if (w->conn == c) {
        w->conn = NULL;

        if (w->ac == ac) {
            ngx_http_ai_guard_redis_outage(ac->err ? ac->errstr
                                                   : "connection closed");
            w->ac = NULL;
            w->ready = 0;
        }

        ngx_http_ai_guard_redis_schedule();
    }
}


static void
ngx_http_ai_guard_redis_on_connect(const redisAsyncContext *cac, int status)
{
    u_char                             db[NGX_INT_T_LEN];
    size_t                             len[3];
    ngx_uint_t                         i;
    const char                        *argv[3];
    redisAsyncContext                 *ac;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_worker_t  *w;

    ac = (redisAsyncContext *) cac;
    w = &ngx_http_ai_guard_redis_w;
    rcf = w->rcf;

    if (status != REDIS_OK || w->ac != ac) {
        /* hiredis frees the context, the cleanup reschedules */
        if (w->ac == ac) {
            ngx_http_ai_guard_redis_outage(ac->errstr);
            ngx_http_ai_guard_redis_error();
        }

        return;
    }

    /* the handshake: AUTH, SELECT, the scripts; ready when all answered */

    w->handshake = 0;

    if (rcf->password.len) {
        argv[0] = "AUTH";
        len[0] = 4;
        argv[1] = (char *) rcf->password.data;
        len[1] = rcf->password.len;

        if (ngx_http_ai_guard_redis_send(
                ngx_http_ai_guard_redis_handshake_done, ac, 0, 2, argv, len,
                NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE)
            == NULL)
        {
            return;
        }

        w->handshake++;
    }

    if (rcf->db) {
        argv[0] = "SELECT";
        len[0] = 6;
        argv[1] = (char *) db;
        len[1] = ngx_sprintf(db, "%i", rcf->db) - db;

        if (ngx_http_ai_guard_redis_send(
                ngx_http_ai_guard_redis_handshake_done, ac, 0, 2, argv, len,
                NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE)
            == NULL)
        {
            return;
        }

        w->handshake++;
    }

    for (i = 1; i < NGX_HTTP_AI_GUARD_REDIS_SCRIPTS + 1; i++) {
        argv[0] = "SCRIPT";
        len[0] = 6;
        argv[1] = "LOAD";
        len[1] = 4;
        argv[2] = ngx_http_ai_guard_redis_scripts[i];
        len[2] = ngx_strlen(argv[2]);

        if (ngx_http_ai_guard_redis_send(
                ngx_http_ai_guard_redis_handshake_done, ac, i, 3, argv, len,
                NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE)
            == NULL)
        {
            return;
        }

        w->handshake++;
    }

    /* the commands are out: the handshake has its own timers now */
    if (w->conn && w->conn->write->timer_set) {
        ngx_del_timer(w->conn->write);
    }

    ngx_post_event(w->conn->write, &ngx_posted_events);
}


static void
ngx_http_ai_guard_redis_handshake_done(ngx_http_ai_guard_redis_cmd_t *cmd,
    redisReply *reply)
{
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;
    rcf = w->rcf;

    if (cmd->data != w->ac || w->ac == NULL) {
        return;
    }

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "ai_guard: redis %V: handshake failed: %s", &rcf->addr,
                      reply ? reply->str : "no reply");
        ngx_http_ai_guard_redis_drop("handshake failed");
        return;
    }

    if (cmd->script) {
        if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
            ngx_http_ai_guard_redis_drop("SCRIPT LOAD failed");
            return;
        }

        ngx_memcpy(w->sha[cmd->script - 1], reply->str, 40);
        w->sha[cmd->script - 1][40] = '\0';
    }

    if (--w->handshake) {
        return;
    }

    w->ready = 1;
    w->backoff = NGX_HTTP_AI_GUARD_REDIS_BACKOFF_MIN;

    ngx_shmtx_lock(&rcf->shpool->mutex);

    if (rcf->sh->outage) {
        rcf->sh->outage = 0;
        ngx_shmtx_unlock(&rcf->shpool->mutex);

        ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                      "ai_guard: redis %V is available again", &rcf->addr);

    } else {
        ngx_shmtx_unlock(&rcf->shpool->mutex);
    }
}


static ngx_http_ai_guard_redis_cmd_t *
ngx_http_ai_guard_redis_send(ngx_http_ai_guard_redis_done_pt handler,
    void *data, ngx_uint_t script, int argc, const char **argv,
    size_t *argvlen, ngx_msec_t timeout)
{
    ngx_http_ai_guard_redis_cmd_t     *cmd;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    if (w->ac == NULL) {
        return NULL;
    }

    cmd = ngx_calloc(sizeof(ngx_http_ai_guard_redis_cmd_t), w->log);
    if (cmd == NULL) {
        return NULL;
    }

    cmd->ac = w->ac;
    cmd->handler = handler;
    cmd->data = data;
    cmd->armed = 1;
    cmd->script = script;
    cmd->argc = argc;
    cmd->argv = argv;
    cmd->argvlen = argvlen;
    cmd->start_us = ngx_http_ai_guard_redis_usec();

    if (redisAsyncCommandArgv(w->ac, ngx_http_ai_guard_redis_callback, cmd,
                              argc, argv, argvlen)
        != REDIS_OK)
    {
        ngx_free(cmd);
        return NULL;
    }

    cmd->timer.handler = ngx_http_ai_guard_redis_timeout;
    cmd->timer.data = cmd;
    cmd->timer.log = w->log;

    /* 0: a command of a pipeline whose last command has the timer */

    if (timeout) {
        ngx_add_timer(&cmd->timer, timeout);
    }

    return cmd;
}


static void
ngx_http_ai_guard_redis_callback(redisAsyncContext *ac, void *rp,
    void *privdata)
{
    redisReply                     *reply = rp;
    ngx_http_ai_guard_redis_cmd_t  *cmd = privdata;

    ngx_http_ai_guard_redis_cmd_t     *again;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }

    if (reply) {
        ngx_http_ai_guard_redis_observe(ngx_http_ai_guard_redis_usec()
                                        - cmd->start_us);
    }

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_http_ai_guard_redis_error();

        if (cmd->armed && cmd->script && cmd->argc > 1
            && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
            && cmd->argv[0][4] == 'S')
        {
            /* the script cache was flushed: EVAL it, the same arguments */

            cmd->argv[0] = "EVAL";
            cmd->argvlen[0] = 4;
            cmd->argv[1] = ngx_http_ai_guard_redis_scripts[cmd->script];
            cmd->argvlen[1] = ngx_strlen(cmd->argv[1]);

            again = ngx_http_ai_guard_redis_send(cmd->handler, cmd->data,
                                                 cmd->script, cmd->argc,
                                                 cmd->argv, cmd->argvlen,
                                                 w->rcf->timeout);
            if (again) {
                again->cln = cmd->cln;

                if (again->cln) {
                    again->cln->data = again;
                }

                ngx_free(cmd);
                return;
            }
        }
    }

    if (cmd->cln) {
        /* the request is still there: its pool no longer needs to disarm */
        cmd->cln->handler = NULL;
        cmd->cln = NULL;
    }

    if (cmd->armed) {
        cmd->armed = 0;
        cmd->handler(cmd, reply);
    }

    ngx_free(cmd);
}


/*
 * Redis is slower than the timeout: this command's request decides by the
 * failure policy now, and so do the next ones until a new connection is
 * ready (a frozen server still accepts TCP connections, hence the
 * handshake before "ready").
 */

static void
ngx_http_ai_guard_redis_timeout(ngx_event_t *ev)
{
    ngx_http_ai_guard_redis_cmd_t  *cmd = ev->data;

    ngx_http_ai_guard_redis_error();

    if (cmd->ac == ngx_http_ai_guard_redis_w.ac) {
        ngx_http_ai_guard_redis_drop("timed out");
        return;
    }

    /*
     * a connection already given up (the worker quits) that still waits
     * for replies: the waiting ones are called back now, and it goes
     */

    redisAsyncFree(cmd->ac);
}


static void
ngx_http_ai_guard_redis_disarm(void *data)
{
    ngx_http_ai_guard_redis_cmd_t  *cmd = data;

    cmd->armed = 0;
    cmd->cln = NULL;
    cmd->data = NULL;
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
    u_char                                *p;
    size_t                                *len;
    uint64_t                               now, period;
    ngx_uint_t                             i, n, a;
    const char                           **argv;
    ngx_pool_cleanup_t                    *cln;
    ngx_http_ai_guard_redis_cmd_t         *cmd;
    ngx_http_ai_guard_limit_item_t        *it;
    ngx_http_ai_guard_redis_worker_t      *w;
    const ngx_http_ai_guard_redis_kind_t  *k;

    w = &ngx_http_ai_guard_redis_w;

    if (!w->ready) {
        return NGX_DECLINED;
    }

    n = ctx->nitems;

    argv = ngx_palloc(r->pool, (4 + 5 * n) * sizeof(char *));
    len = ngx_palloc(r->pool, (4 + 5 * n) * sizeof(size_t));
    p = ngx_pnalloc(r->pool, n * 4 * NGX_INT64_LEN + 4);

    if (argv == NULL || len == NULL || p == NULL) {
        return NGX_ERROR;
    }

    now = ngx_http_ai_guard_now();

    argv[0] = "EVALSHA";
    len[0] = 7;
    argv[1] = w->sha[NGX_HTTP_AI_GUARD_REDIS_RESERVE - 1];
    len[1] = 40;
    argv[2] = (char *) p;
    p = ngx_sprintf(p, "%ui", n);
    len[2] = p - (u_char *) argv[2];

    a = 3 + n;

    argv[a] = (alcf->mode == NGX_HTTP_AI_GUARD_MODE_MONITOR) ? "1" : "0";
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
                                   &w->rcf->prefix, ctx->scope.data,
                                   ctx->scope.len, it->kind, it->window,
                                   &len[3 + i]);
        if (argv[3 + i] == NULL) {
            return NGX_ERROR;
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

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cmd = ngx_http_ai_guard_redis_send(ngx_http_ai_guard_redis_reserve_done,
                                       r, NGX_HTTP_AI_GUARD_REDIS_RESERVE,
                                       (int) a, argv, len, w->rcf->timeout);
    if (cmd == NULL) {
        return NGX_DECLINED;
    }

    cmd->cln = cln;
    cln->handler = ngx_http_ai_guard_redis_disarm;
    cln->data = cmd;

    ctx->redis_wait = 1;
    ctx->redis_done = 0;

    /* a client that goes away meanwhile ends the request (499) */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


static void
ngx_http_ai_guard_redis_reserve_done(ngx_http_ai_guard_redis_cmd_t *cmd,
    redisReply *reply)
{
    ngx_uint_t                        i, n;
    redisReply                      **e;
    ngx_connection_t                 *c;
    ngx_http_request_t               *r;
    ngx_http_ai_guard_ctx_t          *ctx;
    ngx_http_ai_guard_redis_reply_t  *res;

    r = cmd->data;
    c = r->connection;

    ctx = ngx_http_ai_guard_get_ctx(r);
    if (ctx == NULL) {
        return;
    }

    res = &ctx->redis;
    res->rc = NGX_HTTP_AI_GUARD_REDIS_FAILED;

    n = ctx->nitems;

    if (reply && reply->type == REDIS_REPLY_ARRAY
        && reply->elements == 3 + 2 * n)
    {
        e = reply->element;

        for (i = 0; i < reply->elements; i++) {
            if (e[i]->type != REDIS_REPLY_INTEGER || e[i]->integer < 0) {
                break;
            }
        }

        if (i == reply->elements && (ngx_uint_t) e[1]->integer < n + 1) {
            res->rc = (ngx_int_t) e[0]->integer;
            res->index = (ngx_uint_t) e[1]->integer;
            res->retry_ms = (uint64_t) e[2]->integer;

            for (i = 0; i < n; i++) {
                res->remaining[i] = (uint64_t) e[3 + 2 * i]->integer;
                res->reset_ms[i] = (uint64_t) e[4 + 2 * i]->integer;
            }
        }

    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "ai_guard: redis admission script failed: %s",
                      reply->str);
    }

    ctx->redis_done = 1;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/*
 * At the log phase (or the pool cleanup): the request's usage, and the
 * correction of a reservation it took in Redis, go into the outbox; the
 * flush timer takes them to Redis.  No round trip here.
 */

void
ngx_http_ai_guard_redis_settle(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *ctx)
{
    u_char                                *p;
    size_t                                 size;
    int64_t                                delta;
    uint64_t                               now;
    ngx_str_t                              tenant, key, model, customer;
    ngx_uint_t                             i, n, usage;
    ngx_http_ai_guard_key_t               *k;
    ngx_http_ai_guard_redis_sh_t          *sh;
    ngx_http_ai_guard_redis_rec_t         *node;
    ngx_http_ai_guard_batch_rec_t         *rec;
    ngx_http_ai_guard_batch_item_t         items[NGX_HTTP_AI_GUARD_REDIS_ITEMS];
    ngx_http_ai_guard_limit_item_t        *it;
    ngx_http_ai_guard_main_conf_t         *amcf;
    ngx_http_ai_guard_redis_conf_t        *rcf;
    const ngx_http_ai_guard_redis_kind_t  *kd;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    rcf = amcf->redis;

    if (rcf == NULL || rcf->sh == NULL) {
        return;
    }

    k = ctx->key;
    usage = (ctx->upstream && k != NULL);

    n = 0;
    now = ngx_http_ai_guard_now();

    if (ctx->redis_reserved) {
        ctx->redis_reserved = 0;

        for (i = 0; i < ctx->nitems; i++) {
            it = &ctx->items[i];
            kd = &ngx_http_ai_guard_redis_kinds[it->kind];

            switch (kd->unit) {

            case NGX_HTTP_AI_GUARD_REDIS_UNIT_TOKEN:
                delta = ngx_http_ai_guard_sat_delta(ctx->final_tokens,
                                                    it->cost);
                break;

            case NGX_HTTP_AI_GUARD_REDIS_UNIT_MONEY:
                delta = ngx_http_ai_guard_sat_delta(
                            (uint64_t) ngx_max(ctx->final_money, 0),
                            it->cost);
                break;

            case NGX_HTTP_AI_GUARD_REDIS_UNIT_CONC:
                delta = -1;
                break;

            default:
                continue;
            }

            if (delta == 0) {
                continue;
            }

            items[n].kind = it->kind;
            items[n].limit = it->limit;
            items[n].delta = delta;
            items[n].window = it->window;

            /* a charge goes to the current window, a refund to its own */

            if (kd->type == 'q' && delta > 0) {
                items[n].window = ngx_http_ai_guard_cal_window(kd->cal, now);
            }

            n++;
        }
    }

    if (!usage && n == 0) {
        return;
    }

    ngx_str_null(&tenant);
    ngx_str_null(&key);
    ngx_str_null(&model);
    ngx_str_null(&customer);

    if (usage) {
        tenant.data = k->tenant.data;
        tenant.len = ngx_min(k->tenant.len, 1024);
        key.data = k->id.data;
        key.len = ngx_min(k->id.len, 1024);
        customer.data = k->stripe_customer.data;
        customer.len = ngx_min(k->stripe_customer.len, 1024);

        /* the ledger's label: bounded as the zone's rows are */
        model = ctx->label;
    }

    size = sizeof(ngx_http_ai_guard_redis_rec_t)
           + n * sizeof(ngx_http_ai_guard_batch_item_t)
           + tenant.len + key.len + model.len + customer.len
           + (n ? ctx->scope.len : 0);

    sh = rcf->sh;

    ngx_shmtx_lock(&rcf->shpool->mutex);

    node = ngx_slab_alloc_locked(rcf->shpool, size);

    if (node == NULL) {
        sh->dropped++;

        if (!sh->full) {
            sh->full = 1;
            ngx_shmtx_unlock(&rcf->shpool->mutex);

            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "ai_guard: redis outbox full (%uz bytes), usage "
                          "is kept in the local zone only until it drains",
                          rcf->outbox);
            return;
        }

        ngx_shmtx_unlock(&rcf->shpool->mutex);
        return;
    }

    sh->full = 0;

    rec = &node->rec;

    rec->seq = sh->seq++;
    rec->day = (uint32_t) (now / NGX_HTTP_AI_GUARD_DAY_MS);
    rec->usage = (uint8_t) usage;
    rec->nitems = (uint8_t) n;
    rec->tenant_len = (uint16_t) tenant.len;
    rec->key_len = (uint16_t) key.len;
    rec->model_len = (uint16_t) model.len;
    rec->customer_len = (uint16_t) customer.len;
    rec->scope_len = (uint16_t) (n ? ctx->scope.len : 0);

    if (usage) {
        rec->input = ctx->usage.input_tokens;
        rec->output = ctx->usage.output_tokens;
        rec->cached = ctx->usage.cached_tokens;
        rec->estimated = ctx->estimated;
        rec->cost = ctx->final_money;

    } else {
        rec->input = 0;
        rec->output = 0;
        rec->cached = 0;
        rec->estimated = 0;
        rec->cost = 0;
    }

    p = (u_char *) (rec + 1);
    p = ngx_cpymem(p, items, n * sizeof(ngx_http_ai_guard_batch_item_t));
    p = ngx_cpymem(p, tenant.data, tenant.len);
    p = ngx_cpymem(p, key.data, key.len);
    p = ngx_cpymem(p, model.data, model.len);
    p = ngx_cpymem(p, customer.data, customer.len);
    ngx_memcpy(p, ctx->scope.data, rec->scope_len);

    ngx_queue_insert_tail(&sh->outbox, &node->queue);
    sh->pending++;

    ngx_shmtx_unlock(&rcf->shpool->mutex);
}


static void
ngx_http_ai_guard_redis_flush_handler(ngx_event_t *ev)
{
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    if (w->ready && !w->flushing) {
        ngx_http_ai_guard_redis_flush_batch();
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_AI_GUARD_REDIS_FLUSH_MS);
    }
}


/*
 * Sends the head of the outbox as one script call: its records are
 * copied out under the zone's mutex, then added up, encoded and sent
 * without it, so that the workers settling requests meanwhile wait for a
 * copy, not for the arithmetic.
 */

static void
ngx_http_ai_guard_redis_flush_batch(void)
{
    size_t                             nu, nc;
    ngx_pool_t                        *pool;
    ngx_http_ai_guard_batch_t          b;
    ngx_http_ai_guard_redis_sh_t      *sh;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_flush_t   *f;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;
    rcf = w->rcf;
    sh = rcf->sh;

    if (sh->pending == 0) {
        return;
    }

    pool = ngx_create_pool(16384, w->log);
    if (pool == NULL) {
        return;
    }

    f = ngx_pcalloc(pool, sizeof(ngx_http_ai_guard_redis_flush_t));
    if (f == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    f->pool = pool;

    if (ngx_http_ai_guard_redis_flush_copy(f) != NGX_OK) {
        ngx_destroy_pool(pool);
        return;
    }

    /*
     * The records added up: Redis's work for a batch is then one usage
     * hash and one counter a key, not a script's dozen calls a record
     * (a batch of 256 records of one tenant took Redis over a millisecond,
     * a millisecond the admissions of every node queued behind).  The
     * same records always add up the same: a retry is the same batch.
     */

    ngx_http_ai_guard_batch_count(f->recs, f->n, &nu, &nc);

    b.usage = ngx_palloc(pool, (nu + 1)
                               * sizeof(ngx_http_ai_guard_batch_usage_t));
    b.corr = ngx_palloc(pool, (nc + 1)
                              * sizeof(ngx_http_ai_guard_batch_corr_t));

    if (b.usage == NULL || b.corr == NULL) {
        goto failed;
    }

    ngx_http_ai_guard_batch_aggregate(&b, f->recs, f->n);

    if (ngx_http_ai_guard_redis_flush_encode(f, &b) != NGX_OK) {
        goto failed;
    }

    if (ngx_http_ai_guard_redis_send(ngx_http_ai_guard_redis_flush_done, f,
                                     NGX_HTTP_AI_GUARD_REDIS_FLUSH, f->argc,
                                     f->argv, f->argvlen,
                                     ngx_max(rcf->timeout,
                                             NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE))
        == NULL)
    {
        goto failed;
    }

    w->flushing = 1;

    return;

failed:

    /* the lease goes: the next flush sends the same records */

    ngx_shmtx_lock(&rcf->shpool->mutex);

    if (sh->batch && sh->batch_first == f->first) {
        sh->batch_until = 0;
    }

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    ngx_destroy_pool(pool);
}


/*
 * Under the zone's mutex: leases the batch and copies its records out.
 * The batch is leased in the zone (its first record and its size):
 * another flusher (the new worker 0 after a reload) takes it over only
 * when the lease has run out, and then sends the very same records under
 * the same batch id, so the SET NX in the script makes a retried batch
 * count once.  NGX_DECLINED: nothing to send now.
 */

static ngx_int_t
ngx_http_ai_guard_redis_flush_copy(ngx_http_ai_guard_redis_flush_t *f)
{
    u_char                               *p;
    size_t                                size, len;
    uint64_t                              now;
    ngx_uint_t                            i, n;
    ngx_queue_t                          *q;
    ngx_http_ai_guard_redis_sh_t         *sh;
    ngx_http_ai_guard_redis_rec_t        *node;
    ngx_http_ai_guard_redis_conf_t       *rcf;
    const ngx_http_ai_guard_batch_rec_t **recs;

    rcf = ngx_http_ai_guard_redis_w.rcf;
    sh = rcf->sh;

    now = ngx_http_ai_guard_now();

    ngx_shmtx_lock(&rcf->shpool->mutex);

    if (sh->batch && now < sh->batch_until) {
        goto busy;
    }

    if (sh->batch == 0) {
        if (sh->pending == 0) {
            goto busy;
        }

        q = ngx_queue_head(&sh->outbox);
        node = ngx_queue_data(q, ngx_http_ai_guard_redis_rec_t, queue);

        sh->batch = ngx_min(sh->pending, NGX_HTTP_AI_GUARD_REDIS_BATCH);
        sh->batch_first = node->rec.seq;
    }

    sh->batch_until = now + 2 * ngx_max(rcf->timeout,
                                        NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE);

    n = sh->batch;
    size = 0;

    for (q = ngx_queue_head(&sh->outbox), i = 0; i < n;
         q = ngx_queue_next(q), i++)
    {
        node = ngx_queue_data(q, ngx_http_ai_guard_redis_rec_t, queue);
        size += ngx_align(ngx_http_ai_guard_batch_rec_size(&node->rec), 8);
    }

    recs = ngx_palloc(f->pool, n * sizeof(ngx_http_ai_guard_batch_rec_t *));
    p = ngx_palloc(f->pool, size);

    if (recs == NULL || p == NULL) {
        sh->batch_until = 0;
        goto busy;
    }

    for (q = ngx_queue_head(&sh->outbox), i = 0; i < n;
         q = ngx_queue_next(q), i++)
    {
        node = ngx_queue_data(q, ngx_http_ai_guard_redis_rec_t, queue);
        len = ngx_http_ai_guard_batch_rec_size(&node->rec);

        recs[i] = (ngx_http_ai_guard_batch_rec_t *) p;
        ngx_memcpy(p, &node->rec, len);
        p += ngx_align(len, 8);
    }

    f->first = sh->batch_first;
    f->node = sh->node;
    f->n = n;
    f->recs = recs;

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    return NGX_OK;

busy:

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    return NGX_DECLINED;
}


/*
 * The script's arguments: the batch id, the key prefix, then a usage
 * record a row and a correction record a counter.
 */

static ngx_int_t
ngx_http_ai_guard_redis_flush_encode(ngx_http_ai_guard_redis_flush_t *f,
    ngx_http_ai_guard_batch_t *b)
{
    u_char                           *s, day[16];
    size_t                           *len, size;
    ngx_tm_t                          tm;
    ngx_uint_t                        i, a, nargs;
    const char                      **argv;
    ngx_http_ai_guard_batch_corr_t   *c;
    ngx_http_ai_guard_batch_usage_t  *u;
    ngx_http_ai_guard_redis_conf_t   *rcf;
    ngx_http_ai_guard_redis_kind_t    kd;

    rcf = ngx_http_ai_guard_redis_w.rcf;

    nargs = 5 + 12 * b->nusage + 5 * b->ncorr;
    size = rcf->prefix.len + sizeof("b::") - 1 + 16 + NGX_INT64_LEN;

    for (i = 0; i < b->nusage; i++) {
        u = &b->usage[i];
        size += NGX_HTTP_AI_GUARD_DATE_LEN + u->tenant.len + u->key.len
                + u->model.len + u->customer.len + 6 * NGX_INT64_LEN;
    }

    for (i = 0; i < b->ncorr; i++) {
        size += rcf->prefix.len + sizeof("l:::") - 1 + b->corr[i].scope.len
                + 16 + 4 * NGX_INT64_LEN;
    }

    argv = ngx_palloc(f->pool, nargs * sizeof(char *));
    len = ngx_palloc(f->pool, nargs * sizeof(size_t));
    s = ngx_pnalloc(f->pool, size);

    if (argv == NULL || len == NULL || s == NULL) {
        return NGX_ERROR;
    }

    argv[0] = "EVALSHA";
    len[0] = 7;
    argv[1] = ngx_http_ai_guard_redis_w.sha[NGX_HTTP_AI_GUARD_REDIS_FLUSH - 1];
    len[1] = 40;
    argv[2] = "1";
    len[2] = 1;

    argv[3] = (char *) s;
    s = ngx_sprintf(s, "%Vb:%016xL:%uL", &rcf->prefix, f->node, f->first);
    len[3] = s - (u_char *) argv[3];

    argv[4] = (char *) rcf->prefix.data;
    len[4] = rcf->prefix.len;

    a = 5;

#define ngx_http_ai_guard_redis_arg(fmt, v)                                 \
    argv[a] = (char *) s;                                                   \
    s = ngx_sprintf(s, fmt, v);                                             \
    len[a] = s - (u_char *) argv[a];                                        \
    a++

#define ngx_http_ai_guard_redis_str(d, l)                                   \
    argv[a] = (char *) s;                                                   \
    s = ngx_cpymem(s, d, l);                                                \
    len[a] = l;                                                             \
    a++

    for (i = 0; i < b->nusage; i++) {
        u = &b->usage[i];

        ngx_gmtime((time_t) u->day * 86400, &tm);
        (void) ngx_sprintf(day, "%4d-%02d-%02d", tm.ngx_tm_year,
                           tm.ngx_tm_mon, tm.ngx_tm_mday);

        argv[a] = "u";
        len[a++] = 1;
        ngx_http_ai_guard_redis_str(day, NGX_HTTP_AI_GUARD_DATE_LEN);
        ngx_http_ai_guard_redis_str(u->tenant.data, u->tenant.len);
        ngx_http_ai_guard_redis_str(u->key.data, u->key.len);
        ngx_http_ai_guard_redis_str(u->model.data, u->model.len);
        ngx_http_ai_guard_redis_str(u->customer.data, u->customer.len);
        ngx_http_ai_guard_redis_arg("%uL", u->requests);
        ngx_http_ai_guard_redis_arg("%uL", u->input);
        ngx_http_ai_guard_redis_arg("%uL", u->output);
        ngx_http_ai_guard_redis_arg("%uL", u->cached);
        ngx_http_ai_guard_redis_arg("%uL", u->estimated);
        ngx_http_ai_guard_redis_arg("%L", u->cost);
    }

    for (i = 0; i < b->ncorr; i++) {
        c = &b->corr[i];
        kd = ngx_http_ai_guard_redis_kinds[c->kind];

        argv[a] = (kd.type == 'b') ? "b" : (kd.type == 'q') ? "q" : "c";
        len[a++] = 1;

        argv[a] = (char *) s;
        s = ngx_sprintf(s, "%Vl:%*s:%s", &rcf->prefix, c->scope.len,
                        c->scope.data, ngx_http_ai_guard_limit_name(c->kind));
        if (kd.type == 'q') {
            s = ngx_sprintf(s, ":%uL", c->window);
        }

        len[a] = s - (u_char *) argv[a];
        a++;

        if (kd.type == 'b') {
            ngx_http_ai_guard_redis_arg("%uL", c->limit);
            ngx_http_ai_guard_redis_arg("%uL", kd.period);
            ngx_http_ai_guard_redis_arg("%L", c->delta);

        } else if (kd.type == 'q') {
            ngx_http_ai_guard_redis_arg("%L", c->delta);
            ngx_http_ai_guard_redis_arg("%uL",
                                        (kd.cal == NGX_HTTP_AI_GUARD_CAL_DAY)
                                        ? 2 * NGX_HTTP_AI_GUARD_DAY_MS
                                        : 33 * NGX_HTTP_AI_GUARD_DAY_MS);

        } else {
            ngx_http_ai_guard_redis_arg("%L", c->delta);
        }
    }

#undef ngx_http_ai_guard_redis_arg
#undef ngx_http_ai_guard_redis_str

    f->argc = (int) a;
    f->argv = argv;
    f->argvlen = len;

    return NGX_OK;
}


static void
ngx_http_ai_guard_redis_flush_done(ngx_http_ai_guard_redis_cmd_t *cmd,
    redisReply *reply)
{
    ngx_uint_t                         i, more;
    ngx_queue_t                       *q;
    ngx_http_ai_guard_redis_sh_t      *sh;
    ngx_http_ai_guard_redis_rec_t     *rec;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_flush_t   *f;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;
    rcf = w->rcf;
    sh = rcf->sh;
    f = cmd->data;

    w->flushing = 0;
    more = 0;

    ngx_shmtx_lock(&rcf->shpool->mutex);

    if (sh->batch == 0 || sh->batch_first != f->first) {
        /* another flusher took the batch over and is done with it */

    } else if (reply && reply->type == REDIS_REPLY_INTEGER) {

        /* applied now, or by an earlier try: either way it is done */

        for (i = 0; i < sh->batch; i++) {
            q = ngx_queue_head(&sh->outbox);
            rec = ngx_queue_data(q, ngx_http_ai_guard_redis_rec_t, queue);

            ngx_queue_remove(q);
            ngx_slab_free_locked(rcf->shpool, rec);
        }

        sh->pending -= sh->batch;
        sh->flushed += sh->batch;
        sh->batch = 0;
        sh->batch_until = 0;

        /*
         * a full batch goes at once (an outbox draining after an outage);
         * less waits for the timer, so that a busy node sends a batch an
         * interval rather than a trickle of small ones a round trip
         */
        more = (sh->pending >= NGX_HTTP_AI_GUARD_REDIS_BATCH);

    } else {
        sh->batch_until = 0;

        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, w->log, 0,
                          "ai_guard: redis outbox flush failed: %s",
                          reply->str);
        }
    }

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    ngx_destroy_pool(f->pool);

    if (more && w->ready) {
        ngx_http_ai_guard_redis_flush_batch();
    }
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
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    if (w->ready && !w->syncing) {
        rc = ngx_http_ai_guard_limiter_sync(w->amcf, w->log,
                                            ngx_http_ai_guard_redis_sync_send);
        if (rc == NGX_OK) {
            w->syncing = 1;
        }
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, w->rcf->sync);
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
    ngx_http_ai_guard_redis_worker_t      *w;
    const ngx_http_ai_guard_redis_kind_t  *k;

    w = &ngx_http_ai_guard_redis_w;

    argv = ngx_palloc(pool, (3 + 5 * n) * sizeof(char *));
    len = ngx_palloc(pool, (3 + 5 * n) * sizeof(size_t));
    s = ngx_pnalloc(pool, 16 + 4 * n * NGX_INT64_LEN);

    if (argv == NULL || len == NULL || s == NULL) {
        return NGX_ERROR;
    }

    now = ngx_http_ai_guard_now();

    argv[0] = "EVALSHA";
    len[0] = 7;
    argv[1] = w->sha[NGX_HTTP_AI_GUARD_REDIS_SYNC - 1];
    len[1] = 40;
    argv[2] = (char *) s;
    s = ngx_sprintf(s, "%ui", n);
    len[2] = s - (u_char *) argv[2];

    a = 3 + n;

    for (i = 0; i < n; i++) {
        k = &ngx_http_ai_guard_redis_kinds[items[i].kind];

        argv[3 + i] = (char *) ngx_http_ai_guard_redis_limit_key(pool,
                                   &w->rcf->prefix, items[i].scope.data,
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

    if (ngx_http_ai_guard_redis_send(ngx_http_ai_guard_redis_sync_done, pool,
                                     NGX_HTTP_AI_GUARD_REDIS_SYNC, (int) a,
                                     argv, len,
                                     ngx_max(w->rcf->timeout,
                                             NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE))
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_ai_guard_redis_sync_done(ngx_http_ai_guard_redis_cmd_t *cmd,
    redisReply *reply)
{
    ngx_uint_t                         i, n;
    ngx_pool_t                        *pool;
    ngx_http_ai_guard_redis_worker_t  *w;
    uint64_t                          *totals;

    w = &ngx_http_ai_guard_redis_w;
    pool = cmd->data;

    w->syncing = 0;

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

        ngx_shmtx_lock(&w->rcf->shpool->mutex);
        w->rcf->sh->syncs++;
        ngx_shmtx_unlock(&w->rcf->shpool->mutex);
    }

    /* the limiter applies the totals, or puts the deltas back */
    ngx_http_ai_guard_limiter_synced(w->amcf, pool,
                                     totals ? totals + 1 : NULL,
                                     totals ? n - 1 : 0,
                                     totals ? totals[0] : 0);

    ngx_destroy_pool(pool);
}


/*
 * The usage report from Redis, in two pipelined steps on the worker's
 * connection: one SUNION of the day sets of the range gives the usage
 * keys, then one HMGET a key (of the tenant asked for) gives the rows.
 * Redis answers in order, so only the last command of a step has a
 * timer.  NGX_AGAIN: "handler" is called with the rows, or with NULL
 * when Redis did not answer in time; NGX_DECLINED: Redis is not
 * available now.
 */

ngx_int_t
ngx_http_ai_guard_redis_usage(ngx_http_request_t *r, uint32_t from,
    uint32_t to, ngx_str_t *tenant, ngx_http_ai_guard_redis_usage_pt handler,
    void *data)
{
    u_char                            *p;
    size_t                            *len;
    uint32_t                           day, today;
    ngx_tm_t                           tm;
    ngx_uint_t                         n, i;
    const char                       **argv;
    ngx_pool_cleanup_t                *cln;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_fetch_t   *fetch;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;
    rcf = w->rcf;

    if (rcf == NULL || !w->ready) {
        return NGX_DECLINED;
    }

    /* no usage is newer than tomorrow, whatever the nodes' clocks say */

    today = (uint32_t) (ngx_time() / 86400);

    if (to > today + 1) {
        to = today + 1;
    }

    fetch = ngx_calloc(sizeof(ngx_http_ai_guard_redis_fetch_t),
                       r->connection->log);
    if (fetch == NULL) {
        return NGX_ERROR;
    }

    fetch->rows = ngx_array_create(r->pool, 64,
                                   sizeof(ngx_http_ai_guard_row_t *));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (fetch->rows == NULL || cln == NULL) {
        ngx_free(fetch);
        return NGX_ERROR;
    }

    fetch->request = r;
    fetch->handler = handler;
    fetch->data = data;
    fetch->tenant = *tenant;
    fetch->cln = cln;

    cln->handler = ngx_http_ai_guard_redis_fetch_cleanup;
    cln->data = fetch;

    /* a range after tomorrow: one day is read, the report drops it */

    if (from > to) {
        from = to;
    }

    n = to - from + 1;

    argv = ngx_palloc(r->pool, (n + 1) * sizeof(char *));
    len = ngx_palloc(r->pool, (n + 1) * sizeof(size_t));
    p = ngx_pnalloc(r->pool,
                    n * (rcf->prefix.len + sizeof("days:") - 1
                         + NGX_HTTP_AI_GUARD_DATE_LEN));

    if (argv == NULL || len == NULL || p == NULL) {
        cln->handler = NULL;
        ngx_free(fetch);
        return NGX_ERROR;
    }

    argv[0] = "SUNION";
    len[0] = 6;

    for (i = 1, day = from; day <= to; i++, day++) {
        ngx_gmtime((time_t) day * 86400, &tm);

        argv[i] = (char *) p;
        p = ngx_sprintf(p, "%Vdays:%4d-%02d-%02d", &rcf->prefix,
                        tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday);
        len[i] = p - (u_char *) argv[i];
    }

    if (ngx_http_ai_guard_redis_send(ngx_http_ai_guard_redis_days_done, fetch,
                                     0, (int) n + 1, argv, len, rcf->timeout)
        == NULL)
    {
        cln->handler = NULL;
        ngx_free(fetch);
        return NGX_DECLINED;
    }

    fetch->pending = 1;

    /* a client that goes away meanwhile ends the request (499) */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


static void
ngx_http_ai_guard_redis_days_done(ngx_http_ai_guard_redis_cmd_t *cmd,
    redisReply *reply)
{
    size_t                             len[2 + NGX_HTTP_AI_GUARD_REDIS_FIELDS];
    ngx_msec_t                         timeout;
    ngx_uint_t                         i, j, last;
    const char                        *argv[2 + NGX_HTTP_AI_GUARD_REDIS_FIELDS];
    redisReply                        *e;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_fetch_t   *fetch;

    fetch = cmd->data;
    rcf = ngx_http_ai_guard_redis_w.rcf;

    fetch->pending--;

    if (fetch->request == NULL) {
        ngx_free(fetch);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, fetch->request->connection->log, 0,
                          "ai_guard: redis usage report failed: %s",
                          reply->str);
        }

        fetch->failed = 1;
        ngx_http_ai_guard_redis_fetch_end(fetch);
        return;
    }

    /* Redis did answer: the rows, as many as there are, get more time */
    timeout = ngx_max(rcf->timeout, NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE);

    argv[0] = "HMGET";
    len[0] = 5;

    for (j = 0; j < NGX_HTTP_AI_GUARD_REDIS_FIELDS; j++) {
        argv[2 + j] = ngx_http_ai_guard_redis_fields[j];
        len[2 + j] = ngx_strlen(argv[2 + j]);
    }

    /* Redis answers in order: the last key read has the timer */

    for (last = reply->elements; last > 0; last--) {
        if (ngx_http_ai_guard_redis_usage_key(fetch,
                                              reply->element[last - 1]))
        {
            break;
        }
    }

    for (i = 0; i < last; i++) {
        e = reply->element[i];

        if (!ngx_http_ai_guard_redis_usage_key(fetch, e)) {
            continue;
        }

        argv[1] = e->str;
        len[1] = e->len;

        if (ngx_http_ai_guard_redis_send(ngx_http_ai_guard_redis_row_done,
                                         fetch, 0,
                                         2 + NGX_HTTP_AI_GUARD_REDIS_FIELDS,
                                         argv, len,
                                         (i == last - 1) ? timeout : 0)
            == NULL)
        {
            fetch->failed = 1;
            break;
        }

        fetch->pending++;
    }

    if (fetch->pending == 0) {
        ngx_http_ai_guard_redis_fetch_end(fetch);
    }
}


/*
 * "<prefix>u:<day>:<tenant>:<key id>:<model>": the keys of other tenants
 * are not read.  A tenant with a colon in its name may let another's key
 * through: the report checks the hash's own "tenant" field.
 */

static ngx_uint_t
ngx_http_ai_guard_redis_usage_key(ngx_http_ai_guard_redis_fetch_t *fetch,
    redisReply *e)
{
    size_t         n, len;
    ngx_str_t     *t;
    const u_char  *s;

    if (e->type != REDIS_REPLY_STRING) {
        return 0;
    }

    t = &fetch->tenant;

    if (t->len == 0) {
        return 1;
    }

    /* "<prefix>u:YYYY-MM-DD:", then the tenant as "<length>:<bytes>" */

    n = ngx_http_ai_guard_redis_w.rcf->prefix.len + 2
        + NGX_HTTP_AI_GUARD_DATE_LEN + 1;

    return (size_t) e->len > n
           && ngx_http_ai_guard_part_read((u_char *) e->str + n,
                                          (u_char *) e->str + e->len,
                                          &s, &len)
              != NULL
           && len == t->len
           && ngx_memcmp(s, t->data, len) == 0;
}


static void
ngx_http_ai_guard_redis_row_done(ngx_http_ai_guard_redis_cmd_t *cmd,
    redisReply *reply)
{
    ngx_http_ai_guard_redis_fetch_t  *fetch;

    fetch = cmd->data;

    fetch->pending--;

    if (fetch->request && !fetch->failed
        && ngx_http_ai_guard_redis_row(fetch, reply) != NGX_OK)
    {
        fetch->failed = 1;
    }

    if (fetch->pending) {
        return;
    }

    if (fetch->request == NULL) {
        ngx_free(fetch);
        return;
    }

    ngx_http_ai_guard_redis_fetch_end(fetch);
}


/* a usage hash into a row; a hash gone meanwhile (expired) is skipped */

static ngx_int_t
ngx_http_ai_guard_redis_row(ngx_http_ai_guard_redis_fetch_t *fetch,
    redisReply *reply)
{
    u_char                    *p;
    size_t                     size;
    int64_t                    v[NGX_HTTP_AI_GUARD_REDIS_FIELDS];
    ngx_uint_t                 i;
    redisReply               **e;
    ngx_http_ai_guard_row_t   *row, **rowp;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != NGX_HTTP_AI_GUARD_REDIS_FIELDS)
    {
        return NGX_ERROR;
    }

    e = reply->element;

    for (i = 0; i < 5; i++) {
        if (e[i]->type != REDIS_REPLY_STRING) {
            return NGX_OK;
        }
    }

    if (e[0]->len != NGX_HTTP_AI_GUARD_DATE_LEN) {
        return NGX_OK;
    }

    for (i = 5; i < NGX_HTTP_AI_GUARD_REDIS_FIELDS; i++) {
        if (ngx_http_ai_guard_redis_int(e[i], &v[i]) != NGX_OK) {
            return NGX_OK;
        }
    }

    if (v[5] <= 0) {
        return NGX_OK;
    }

    size = sizeof(ngx_http_ai_guard_row_t) + e[1]->len + e[2]->len
           + e[3]->len + e[4]->len;

    row = ngx_palloc(fetch->request->pool, size);
    rowp = ngx_array_push(fetch->rows);

    if (row == NULL || rowp == NULL) {
        return NGX_ERROR;
    }

    *rowp = row;

    ngx_memzero(row, sizeof(ngx_http_ai_guard_row_t));
    ngx_memcpy(row->date, e[0]->str, NGX_HTTP_AI_GUARD_DATE_LEN);

    p = (u_char *) (row + 1);

    row->tenant.data = p;
    row->tenant.len = e[1]->len;
    p = ngx_cpymem(p, e[1]->str, e[1]->len);

    row->key.data = p;
    row->key.len = e[2]->len;
    p = ngx_cpymem(p, e[2]->str, e[2]->len);

    row->model.data = p;
    row->model.len = e[3]->len;
    p = ngx_cpymem(p, e[3]->str, e[3]->len);

    row->customer.data = p;
    row->customer.len = e[4]->len;
    ngx_memcpy(p, e[4]->str, e[4]->len);

    row->totals.requests = (uint64_t) v[5];
    row->totals.input = (uint64_t) ngx_max(v[6], 0);
    row->totals.output = (uint64_t) ngx_max(v[7], 0);
    row->totals.cached = (uint64_t) ngx_max(v[8], 0);
    row->totals.estimated = (uint64_t) ngx_max(v[9], 0);
    row->totals.cost = v[10];

    return NGX_OK;
}


/* a decimal integer of a reply: HMGET answers strings, nil when unset */

static ngx_int_t
ngx_http_ai_guard_redis_int(redisReply *e, int64_t *v)
{
    size_t     i;
    uint64_t   n;
    ngx_int_t  neg;

    if (e->type == REDIS_REPLY_NIL) {
        *v = 0;
        return NGX_OK;
    }

    if (e->type == REDIS_REPLY_INTEGER) {
        *v = e->integer;
        return NGX_OK;
    }

    if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 20) {
        return NGX_ERROR;
    }

    i = 0;
    neg = (e->str[0] == '-');

    if (neg) {
        i = 1;

        if (e->len == 1) {
            return NGX_ERROR;
        }
    }

    n = 0;

    for ( /* void */ ; i < (size_t) e->len; i++) {
        if (e->str[i] < '0' || e->str[i] > '9'
            || n > (0x7fffffffffffffffULL - 9) / 10)
        {
            return NGX_ERROR;
        }

        n = n * 10 + (e->str[i] - '0');
    }

    *v = neg ? -(int64_t) n : (int64_t) n;

    return NGX_OK;
}


/*
 * The rows are in (or Redis failed): the request's cleanup is disarmed
 * and the fetch freed before the handler runs, since the handler may
 * finalize the request and free its pool.
 */

static void
ngx_http_ai_guard_redis_fetch_end(ngx_http_ai_guard_redis_fetch_t *fetch)
{
    void                              *data;
    ngx_array_t                       *rows;
    ngx_connection_t                  *c;
    ngx_http_request_t                *r;
    ngx_http_ai_guard_redis_usage_pt   handler;

    r = fetch->request;
    c = r->connection;
    handler = fetch->handler;
    data = fetch->data;
    rows = fetch->failed ? NULL : fetch->rows;

    fetch->cln->handler = NULL;

    if (fetch->pending == 0) {
        ngx_free(fetch);

    } else {
        /* a failed send left replies due: they find no request */
        fetch->request = NULL;
    }

    handler(r, data, rows);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_ai_guard_redis_fetch_cleanup(void *data)
{
    ngx_http_ai_guard_redis_fetch_t  *fetch = data;

    fetch->request = NULL;
    fetch->cln = NULL;
}


static u_char *
ngx_http_ai_guard_redis_limit_key(ngx_pool_t *pool, ngx_str_t *prefix,
    u_char *scope, size_t len, ngx_uint_t kind, uint64_t window, size_t *n)
{
    u_char  *p, *last;

    p = ngx_pnalloc(pool, prefix->len + 2 + len + 1 + 16 + 1
                          + NGX_INT64_LEN);
    if (p == NULL) {
        return NULL;
    }

    last = ngx_sprintf(p, "%Vl:%*s:%s", prefix, len, scope,
                       ngx_http_ai_guard_limit_name(kind));

    if (ngx_http_ai_guard_redis_kinds[kind].type == 'q') {
        last = ngx_sprintf(last, ":%uL", window);
    }

    *n = last - p;

    return p;
}


static uint64_t
ngx_http_ai_guard_redis_usec(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (uint64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}


static void
ngx_http_ai_guard_redis_observe(uint64_t us)
{
    ngx_uint_t                       i;
    ngx_http_ai_guard_redis_conf_t  *rcf;

    rcf = ngx_http_ai_guard_redis_w.rcf;

    for (i = 0; us > ngx_http_ai_guard_redis_bucket_us[i]; i++) {
        /* void */
    }

    ngx_shmtx_lock(&rcf->shpool->mutex);

    rcf->sh->latency[i]++;
    rcf->sh->latency_us += us;
    rcf->sh->latency_n++;

    ngx_shmtx_unlock(&rcf->shpool->mutex);
}


static void
ngx_http_ai_guard_redis_error(void)
{
    ngx_http_ai_guard_redis_conf_t  *rcf;

    rcf = ngx_http_ai_guard_redis_w.rcf;

    ngx_shmtx_lock(&rcf->shpool->mutex);
    rcf->sh->errors++;
    ngx_shmtx_unlock(&rcf->shpool->mutex);
}


/* one warning an outage and a node, whichever worker sees it first */

static void
ngx_http_ai_guard_redis_outage(const char *why)
{
    ngx_uint_t                       warn;
    ngx_http_ai_guard_redis_conf_t  *rcf;

    rcf = ngx_http_ai_guard_redis_w.rcf;

    ngx_shmtx_lock(&rcf->shpool->mutex);

    warn = !rcf->sh->outage;
    rcf->sh->outage = 1;

    ngx_shmtx_unlock(&rcf->shpool->mutex);

    if (warn) {
        ngx_log_error(NGX_LOG_WARN, ngx_http_ai_guard_redis_w.log, 0,
                      "ai_guard: redis %V unavailable: %s; limits are "
                      "decided %s until it is back", &rcf->addr, why,
                      rcf->fail_closed ? "as 503 limiter_unavailable"
                                       : "locally");
    }
}


/*
 * The Redis lines of the metrics, for ai_guard_metrics: allocated from the
 * request's pool; an empty string when no ai_guard_redis is configured.
 */

ngx_int_t
ngx_http_ai_guard_redis_metrics(ngx_http_request_t *r, ngx_str_t *text)
{
    u_char                          *p, *last;
    uint64_t                         cum;
    ngx_uint_t                       i;
    ngx_http_ai_guard_redis_sh_t     sh;
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_http_ai_guard_redis_conf_t  *rcf;

    ngx_str_null(text);

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    rcf = amcf->redis;

    if (rcf == NULL || rcf->sh == NULL) {
        return NGX_OK;
    }

    ngx_shmtx_lock(&rcf->shpool->mutex);
    sh = *rcf->sh;
    ngx_shmtx_unlock(&rcf->shpool->mutex);

    p = ngx_pnalloc(r->pool, 4096);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = p + 4096;
    text->data = p;

    p = ngx_slprintf(p, last,
            "# HELP ai_guard_redis_up Whether this worker's Redis "
            "connection is ready.\n"
            "# TYPE ai_guard_redis_up gauge\n"
            "ai_guard_redis_up %ui\n"
            "# HELP ai_guard_redis_latency_seconds Redis round trips.\n"
            "# TYPE ai_guard_redis_latency_seconds histogram\n",
            ngx_http_ai_guard_redis_w.ready);

    cum = 0;

    for (i = 0; i < NGX_HTTP_AI_GUARD_REDIS_BUCKETS; i++) {
        cum += sh.latency[i];
        p = ngx_slprintf(p, last,
                         "ai_guard_redis_latency_seconds_bucket{le=\"%s\"} "
                         "%uL\n", ngx_http_ai_guard_redis_le[i], cum);
    }

    p = ngx_slprintf(p, last,
            "ai_guard_redis_latency_seconds_sum %uL.%06uL\n"
            "ai_guard_redis_latency_seconds_count %uL\n"
            "# HELP ai_guard_redis_outbox_pending Settled requests not yet "
            "in Redis.\n"
            "# TYPE ai_guard_redis_outbox_pending gauge\n"
            "ai_guard_redis_outbox_pending %ui\n"
            "# HELP ai_guard_redis_outbox_dropped_total Settled requests "
            "the full outbox could not keep.\n"
            "# TYPE ai_guard_redis_outbox_dropped_total counter\n"
            "ai_guard_redis_outbox_dropped_total %uL\n"
            "# HELP ai_guard_redis_errors_total Redis errors, timeouts and "
            "failed connects.\n"
            "# TYPE ai_guard_redis_errors_total counter\n"
            "ai_guard_redis_errors_total %uL\n",
            sh.latency_us / 1000000, sh.latency_us % 1000000, sh.latency_n,
            sh.pending, sh.dropped, sh.errors);

    text->len = p - text->data;

    return NGX_OK;
}
