
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_redis_transport.h"
#include "ngx_http_ai_guard_store.h"
#include "ngx_http_ai_guard_store_file.h"
#include "ngx_http_ai_guard_store_redis.h"


/* how often worker 0 asks Redis for the other nodes' changes */
#define NGX_HTTP_AI_GUARD_STORE_POLL   250

/*
 * A tenant's field in the keys' hash: no key id (1 to 64 of
 * [A-Za-z0-9._-]) has a ':', so none is a tenant's.
 */
#define NGX_HTTP_AI_GUARD_STORE_TFIELD  "tenant:"
#define NGX_HTTP_AI_GUARD_STORE_TNAME   128

/* lines a poll's reply or a push carries at most; entries a push walks */
#define NGX_HTTP_AI_GUARD_STORE_BATCH  256
#define NGX_HTTP_AI_GUARD_STORE_WALK   1024

#define NGX_HTTP_AI_GUARD_STORE_NONE   ((uint64_t) -1)


/*
 * The node's sync, in the store's zone (a reload keeps it): the entry is
 * also the mark of where the push walk is.
 */

typedef struct {
    uint64_t                         version;   /* Redis's, applied */
    uint64_t                         epoch;     /* of Redis's history */
    uint64_t                         push_from; /* keys of this change on */
    ngx_uint_t                       restart;   /* the push from the head */
} ngx_http_ai_guard_store_sync_t;


/* worker 0's side */

typedef struct {
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_http_ai_guard_redis_conf_t  *rcf;
    ngx_log_t                       *log;
    ngx_event_t                      poll;
    ngx_uint_t                       reading;
    ngx_uint_t                       pushing;
} ngx_http_ai_guard_store_syncer_t;


/* a command's memory, until its reply */

typedef struct {
    ngx_pool_t                      *pool;
    uint64_t                         from;      /* a push: its push_from */
    ngx_array_t                     *infos;     /* a push walk's */
    ngx_array_t                     *deleted;
} ngx_http_ai_guard_store_cmd_t;


static ngx_http_ai_guard_store_sync_t *ngx_http_ai_guard_store_sync(
    ngx_http_ai_guard_zone_t *zone);
static void ngx_http_ai_guard_store_mark(ngx_http_ai_guard_zone_t *zone,
    uint64_t seq);
static ngx_int_t ngx_http_ai_guard_store_send(
    ngx_http_ai_guard_store_cmd_t *cmd, ngx_uint_t script,
    ngx_http_ai_guard_redis_done_pt done, ngx_array_t *args);
static ngx_int_t ngx_http_ai_guard_store_args(ngx_array_t *args,
    ngx_http_ai_guard_key_info_t *info, ngx_uint_t deleted);
static void ngx_http_ai_guard_store_published(void *data, redisReply *reply);
static void ngx_http_ai_guard_store_tick(ngx_event_t *ev);
static void ngx_http_ai_guard_store_ask(void);
static void ngx_http_ai_guard_store_got(void *data, redisReply *reply);
static ngx_uint_t ngx_http_ai_guard_store_take(ngx_pool_t *pool,
    redisReply *line);
static void ngx_http_ai_guard_store_push(void);
static ngx_int_t ngx_http_ai_guard_store_collect(
    ngx_http_ai_guard_node_t *node, void *data);
static void ngx_http_ai_guard_store_pushed(void *data, redisReply *reply);
static ngx_http_ai_guard_store_cmd_t *ngx_http_ai_guard_store_cmd(void);
static void ngx_http_ai_guard_store_again(void);


static ngx_http_ai_guard_store_syncer_t  ngx_http_ai_guard_store_syncer;

static ngx_uint_t  ngx_http_ai_guard_store_put_script;
static ngx_uint_t  ngx_http_ai_guard_store_get_script;

/* the keys, after the prefix; KEYS of both scripts, in this order */
static char  *ngx_http_ai_guard_store_keys[] = {
    "keys", "keys:version", "keys:changes", "keys:epoch"
};


/*
 * Lines into Redis.  KEYS: the hash of id to line, the version counter,
 * the sorted set of id by the version of its last change, the epoch (the
 * history's start: a new one when the counter was lost).  ARGV: id, seq,
 * deleted (0 or 1) and line, a line each.  A line older than the one
 * Redis holds is refused (at an equal seq only a deletion over a key
 * passes), so that a stale node never undoes a later change.  Returns
 * the version.
 */

static const char  ngx_http_ai_guard_store_put_lua[] =
    "local del = '\"deleted\":true}\\n'\n"
    "for i = 1, #ARGV, 4 do\n"
    "  local n = tonumber(ARGV[i + 1])\n"
    "  local cur = redis.call('HGET', KEYS[1], ARGV[i])\n"
    "  local ok = true\n"
    "  if cur then\n"
    "    local s = tonumber(string.match(cur, '^{\"seq\":(%d+)')) or 0\n"
    "    ok = n > s or (n == s and ARGV[i + 2] == '1'\n"
    "                   and string.sub(cur, -#del) ~= del)\n"
    "  end\n"
    "  if ok then\n"
    "    if redis.call('EXISTS', KEYS[2]) == 0 then\n"
    "      local t = redis.call('TIME')\n"
    "      redis.call('SET', KEYS[4],\n"
    "                 t[1] .. string.format('%06d', tonumber(t[2])))\n"
    "    end\n"
    "    local v = redis.call('INCR', KEYS[2])\n"
    "    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 3])\n"
    "    redis.call('ZADD', KEYS[3], v, ARGV[i])\n"
    "  end\n"
    "end\n"
    "return tonumber(redis.call('GET', KEYS[2]) or '0')\n";


/*
 * The changes after a version.  KEYS as above; ARGV: the version the node
 * has, the most lines to return.  Returns the version, the epoch, then
 * each changed key's version and line, oldest first.
 */

static const char  ngx_http_ai_guard_store_get_lua[] =
    "local v = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local out = {v, redis.call('GET', KEYS[4]) or ''}\n"
    "local last = tonumber(ARGV[1])\n"
    "if v <= last then return out end\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. last, '+inf',\n"
    "                       'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))\n"
    "for i = 1, #ids, 2 do\n"
    "  out[#out + 1] = tonumber(ids[i + 1])\n"
    "  out[#out + 1] = redis.call('HGET', KEYS[1], ids[i]) or ''\n"
    "end\n"
    "return out\n";


/* ai_guard_redis: the scripts, whether or not there is a key store */

ngx_int_t
ngx_http_ai_guard_store_redis_init(ngx_conf_t *cf)
{
    ngx_int_t  n;

    n = ngx_http_ai_guard_redis_script(cf, ngx_http_ai_guard_store_put_lua);
    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_store_put_script = n;

    n = ngx_http_ai_guard_redis_script(cf, ngx_http_ai_guard_store_get_lua);
    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_ai_guard_store_get_script = n;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_guard_store_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ai_guard_main_conf_t     *amcf;
    ngx_http_ai_guard_store_syncer_t  *sy;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_guard_module);
    sy = &ngx_http_ai_guard_store_syncer;

    ngx_memzero(sy, sizeof(ngx_http_ai_guard_store_syncer_t));

    sy->amcf = amcf;
    sy->rcf = amcf->redis;
    sy->log = cycle->log;

    sy->poll.handler = ngx_http_ai_guard_store_tick;
    sy->poll.log = cycle->log;
    sy->poll.data = sy;
    sy->poll.cancelable = 1;

    /* one worker a node reads Redis's changes and pushes the node's */

    if (ngx_worker == 0 && amcf->store && amcf->store->sh) {
        ngx_add_timer(&sy->poll, 1);
    }

    return NGX_OK;
}


/*
 * A change the admin API made, to Redis; called after it is in the store.
 * Whatever keeps it from Redis (Redis down, a timeout) marks the node's
 * keys from this change on to be pushed again by worker 0.  A deletion
 * leaves its mark in the zone, so that no older line brings the key back.
 */

void
ngx_http_ai_guard_store_publish(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info, ngx_uint_t deleted)
{
    ngx_array_t                    *args;
    ngx_http_ai_guard_zone_t       *zone;
    ngx_http_ai_guard_store_cmd_t  *cmd;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = amcf->store;

    if (amcf->redis == NULL || zone == NULL || zone->sh == NULL) {
        return;
    }

    if (deleted) {
        ngx_shmtx_lock(&zone->shpool->mutex);

        if (ngx_http_ai_guard_store_restore(zone, r->pool, info, 1)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai_guard key store: no room to mark %s \"%V\" "
                          "deleted", info->tenant_rec ? "tenant" : "key",
                          info->tenant_rec ? &info->key.tenant
                                           : &info->key.id);
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    cmd = ngx_http_ai_guard_store_cmd();

    if (cmd == NULL) {
        ngx_http_ai_guard_store_mark(zone, info->seq);
        return;
    }

    cmd->from = info->seq;

    args = ngx_array_create(cmd->pool, 12, sizeof(ngx_str_t));

    if (args == NULL
        || ngx_http_ai_guard_store_args(args, info, deleted) != NGX_OK
        || ngx_http_ai_guard_store_send(cmd,
                                        ngx_http_ai_guard_store_put_script,
                                        ngx_http_ai_guard_store_published,
                                        args)
           != NGX_OK)
    {
        ngx_destroy_pool(cmd->pool);
        ngx_http_ai_guard_store_mark(zone, info->seq);
    }
}


static void
ngx_http_ai_guard_store_published(void *data, redisReply *reply)
{
    ngx_http_ai_guard_store_cmd_t *cmd = data;

    ngx_http_ai_guard_main_conf_t  *amcf;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_ai_guard_module);
        ngx_http_ai_guard_store_mark(amcf->store, cmd->from);
    }

    ngx_destroy_pool(cmd->pool);
}


/* the node's keys of change "seq" on are to go to Redis again */

static void
ngx_http_ai_guard_store_mark(ngx_http_ai_guard_zone_t *zone, uint64_t seq)
{
    ngx_http_ai_guard_store_sync_t  *sync;

    ngx_shmtx_lock(&zone->shpool->mutex);

    sync = ngx_http_ai_guard_store_sync(zone);

    if (sync) {
        sync->push_from = ngx_min(sync->push_from, seq);
        sync->restart = 1;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* the sync's entry, made on first use: a new node reads and pushes all */

static ngx_http_ai_guard_store_sync_t *
ngx_http_ai_guard_store_sync(ngx_http_ai_guard_zone_t *zone)
{
    u_char                           k;
    ngx_uint_t                       created;
    ngx_http_ai_guard_store_sync_t  *sync;

    k = NGX_HTTP_AI_GUARD_STORE_SYNC;

    sync = ngx_http_ai_guard_zone_get(zone, &k, 1,
                                      sizeof(ngx_http_ai_guard_store_sync_t),
                                      0, &created);

    if (sync && created) {
        sync->push_from = 0;
        sync->restart = 1;
    }

    return sync;
}


/* worker 0, every 250 ms: the other nodes' changes, the node's to push */

static void
ngx_http_ai_guard_store_tick(ngx_event_t *ev)
{
    ngx_http_ai_guard_store_syncer_t  *sy;

    sy = &ngx_http_ai_guard_store_syncer;

    if (ngx_http_ai_guard_redis_up()) {
        if (!sy->reading) {
            ngx_http_ai_guard_store_ask();
        }

        if (!sy->pushing) {
            ngx_http_ai_guard_store_push();
        }
    }

    if (!ngx_exiting && !ev->timer_set) {
        ngx_add_timer(ev, NGX_HTTP_AI_GUARD_STORE_POLL);
    }
}


static void
ngx_http_ai_guard_store_ask(void)
{
    u_char                            *p;
    uint64_t                           version;
    ngx_str_t                         *arg;
    ngx_array_t                       *args;
    ngx_http_ai_guard_zone_t          *zone;
    ngx_http_ai_guard_store_cmd_t     *cmd;
    ngx_http_ai_guard_store_sync_t    *sync;
    ngx_http_ai_guard_store_syncer_t  *sy;

    sy = &ngx_http_ai_guard_store_syncer;
    zone = sy->amcf->store;

    ngx_shmtx_lock(&zone->shpool->mutex);

    sync = ngx_http_ai_guard_store_sync(zone);
    version = sync ? sync->version : 0;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (sync == NULL) {
        return;
    }

    cmd = ngx_http_ai_guard_store_cmd();
    if (cmd == NULL) {
        return;
    }

    args = ngx_array_create(cmd->pool, 2, sizeof(ngx_str_t));
    p = ngx_pnalloc(cmd->pool, 2 * NGX_INT64_LEN);

    if (args == NULL || p == NULL) {
        ngx_destroy_pool(cmd->pool);
        return;
    }

    arg = ngx_array_push_n(args, 2);

    arg[0].data = p;
    p = ngx_sprintf(p, "%uL", version);
    arg[0].len = p - arg[0].data;

    arg[1].data = p;
    p = ngx_sprintf(p, "%d", NGX_HTTP_AI_GUARD_STORE_BATCH);
    arg[1].len = p - arg[1].data;

    if (ngx_http_ai_guard_store_send(cmd, ngx_http_ai_guard_store_get_script,
                                     ngx_http_ai_guard_store_got, args)
        != NGX_OK)
    {
        ngx_destroy_pool(cmd->pool);
        return;
    }

    sy->reading = 1;
}


/*
 * The changes since the version the node has: each line applied as the
 * files' lines are (the later change wins, a deletion's mark stays).  A
 * history that is not the one the node followed (Redis lost its data, or
 * was restored from an older copy) is read again from its start, and the
 * node's keys are pushed to it.
 */

static void
ngx_http_ai_guard_store_got(void *data, redisReply *reply)
{
    ngx_http_ai_guard_store_cmd_t *cmd = data;

    u_char                            *buf, *p;
    size_t                             size;
    uint64_t                           version, epoch, last;
    ngx_uint_t                         i, n, lost, more;
    redisReply                        *e;
    ngx_http_ai_guard_zone_t          *zone;
    ngx_http_ai_guard_store_sync_t    *sync;
    ngx_http_ai_guard_store_syncer_t  *sy;

    sy = &ngx_http_ai_guard_store_syncer;
    sy->reading = 0;
    zone = sy->amcf->store;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 2 || reply->elements % 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        goto done;
    }

    version = (uint64_t) reply->element[0]->integer;
    e = reply->element[1];
    epoch = e->len ? (uint64_t) ngx_atoof((u_char *) e->str, e->len) : 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    sync = ngx_http_ai_guard_store_sync(zone);

    if (sync == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        goto done;
    }

    lost = (version < sync->version
            || (sync->epoch && epoch != sync->epoch));

    last = sync->version;

    if (lost) {
        sync->version = 0;
        sync->epoch = epoch;
        sync->push_from = 0;
        sync->restart = 1;

    } else {
        sync->epoch = epoch;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (lost) {
        ngx_log_error(NGX_LOG_WARN, sy->log, 0,
                      "ai_guard key store: Redis lost the keys' changes "
                      "(version %uL, the node had %uL): reading them all "
                      "again and pushing the node's keys", version, last);
        ngx_http_ai_guard_store_again();
        goto done;
    }

    /* the lines taken go to the node's journal too, for its next start */

    size = 0;

    for (i = 3; i < reply->elements; i += 2) {
        size += reply->element[i]->len + 1;
    }

    p = buf = ngx_pnalloc(cmd->pool, size + 1);
    if (buf == NULL) {
        goto done;
    }

    n = 0;

    for (i = 2; i < reply->elements; i += 2) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_INTEGER) {
            goto done;
        }

        last = (uint64_t) e->integer;
        e = reply->element[i + 1];

        if (ngx_http_ai_guard_store_take(cmd->pool, e)) {
            n++;
            p = ngx_cpymem(p, e->str, e->len);

            if (p[-1] != '\n') {
                *p++ = '\n';
            }
        }
    }

    if (p != buf && sy->amcf->state_dir) {
        (void) ngx_http_ai_guard_store_append(sy->log, cmd->pool,
                                              sy->amcf->state_dir, buf,
                                              p - buf, 0);
    }

    /* a full batch: there are more, read on at once */

    more = ((reply->elements - 2) / 2 == NGX_HTTP_AI_GUARD_STORE_BATCH);

    ngx_shmtx_lock(&zone->shpool->mutex);

    sync = ngx_http_ai_guard_store_sync(zone);

    if (sync && sync->version < version) {
        sync->version = more ? last : version;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (n) {
        ngx_log_error(NGX_LOG_INFO, sy->log, 0,
                      "ai_guard key store: %ui change(s) from Redis, "
                      "version %uL", n, more ? last : version);
    }

    if (more) {
        ngx_http_ai_guard_store_again();
    }

done:

    ngx_destroy_pool(cmd->pool);
}


/* a line from Redis into the store: 1 when it parsed */

static ngx_uint_t
ngx_http_ai_guard_store_take(ngx_pool_t *pool, redisReply *line)
{
    char                              *error;
    ngx_int_t                          rc;
    ngx_uint_t                         deleted;
    ngx_http_ai_guard_zone_t          *zone;
    ngx_http_ai_guard_key_info_t       info;
    ngx_http_ai_guard_store_syncer_t  *sy;

    sy = &ngx_http_ai_guard_store_syncer;
    zone = sy->amcf->store;

    if (line->type != REDIS_REPLY_STRING || line->len == 0) {
        return 0;
    }

    rc = ngx_http_ai_guard_store_parse(pool, (u_char *) line->str, line->len,
                                       &info, &deleted, &error);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, sy->log, 0,
                      "ai_guard key store: a line from Redis skipped: %s",
                      rc == NGX_DECLINED ? error : "no memory");
        return 0;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    rc = ngx_http_ai_guard_store_restore(zone, pool, &info, deleted);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, sy->log, 0,
                      "ai_guard key store: no room for %s \"%V\" from "
                      "Redis: raise ai_guard_key_store's size",
                      info.tenant_rec ? "tenant" : "key",
                      info.tenant_rec ? &info.key.tenant : &info.key.id);
        return 0;
    }

    return 1;
}


/*
 * The node's keys to Redis, a batch at a time: all of them after a start
 * or when Redis lost its data, else those changed since a change that
 * did not reach Redis.  The walk takes up to 1024 entries a step, under
 * the zone's mutex; Redis keeps the later of its line and the node's.
 */

static void
ngx_http_ai_guard_store_push(void)
{
    ngx_int_t                          rc;
    ngx_uint_t                         i, *del;
    ngx_array_t                       *args;
    ngx_http_ai_guard_zone_t          *zone;
    ngx_http_ai_guard_key_info_t      *info;
    ngx_http_ai_guard_store_cmd_t     *cmd;
    ngx_http_ai_guard_store_sync_t    *sync;
    ngx_http_ai_guard_store_syncer_t  *sy;

    sy = &ngx_http_ai_guard_store_syncer;
    zone = sy->amcf->store;

    cmd = ngx_http_ai_guard_store_cmd();
    if (cmd == NULL) {
        return;
    }

    cmd->infos = ngx_array_create(cmd->pool, NGX_HTTP_AI_GUARD_STORE_BATCH,
                                  sizeof(ngx_http_ai_guard_key_info_t));
    cmd->deleted = ngx_array_create(cmd->pool, NGX_HTTP_AI_GUARD_STORE_BATCH,
                                    sizeof(ngx_uint_t));
    args = ngx_array_create(cmd->pool, 4 * NGX_HTTP_AI_GUARD_STORE_BATCH,
                            sizeof(ngx_str_t));

    if (cmd->infos == NULL || cmd->deleted == NULL || args == NULL) {
        goto failed;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    sync = ngx_http_ai_guard_store_sync(zone);

    if (sync == NULL || sync->push_from == NGX_HTTP_AI_GUARD_STORE_NONE) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        goto failed;
    }

    cmd->from = sync->push_from;

    rc = ngx_http_ai_guard_zone_walk_on(zone, sync, sync->restart,
                                        NGX_HTTP_AI_GUARD_STORE_WALK,
                                        ngx_http_ai_guard_store_collect, cmd);
    sync->restart = 0;

    if (rc == NGX_DONE) {
        sync->push_from = NGX_HTTP_AI_GUARD_STORE_NONE;

    } else if (rc != NGX_OK && rc != NGX_DECLINED) {
        sync->restart = 1;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc != NGX_DONE) {
        ngx_http_ai_guard_store_again();
    }

    if (rc != NGX_OK && rc != NGX_DONE && rc != NGX_DECLINED) {
        goto failed;
    }

    info = cmd->infos->elts;
    del = cmd->deleted->elts;

    for (i = 0; i < cmd->infos->nelts; i++) {
        if (ngx_http_ai_guard_store_args(args, &info[i], del[i]) != NGX_OK) {
            ngx_http_ai_guard_store_mark(zone, cmd->from);
            goto failed;
        }
    }

    if (args->nelts == 0) {
        goto failed;
    }

    if (ngx_http_ai_guard_store_send(cmd, ngx_http_ai_guard_store_put_script,
                                     ngx_http_ai_guard_store_pushed, args)
        != NGX_OK)
    {
        ngx_http_ai_guard_store_mark(zone, cmd->from);
        goto failed;
    }

    sy->pushing = 1;

    return;

failed:

    ngx_destroy_pool(cmd->pool);
}


/*
 * A push walk's entry: a key, a tenant's limits, or the mark of either's
 * removal, changed since "from"
 */

static ngx_int_t
ngx_http_ai_guard_store_collect(ngx_http_ai_guard_node_t *node, void *data)
{
    ngx_http_ai_guard_store_cmd_t *cmd = data;

    ngx_int_t                      rc;
    ngx_uint_t                     deleted, *del;
    ngx_http_ai_guard_key_info_t   one, *info;

    rc = ngx_http_ai_guard_store_entry(node, cmd->pool, &one, &deleted);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_ai_guard_store_tenant_entry(node, cmd->pool, &one,
                                                  &deleted);
    }

    if (rc == NGX_DECLINED || (rc == NGX_OK && one.seq < cmd->from)) {
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    info = ngx_array_push(cmd->infos);
    del = ngx_array_push(cmd->deleted);

    if (info == NULL || del == NULL) {
        return NGX_ERROR;
    }

    *info = one;
    *del = deleted;

    /* a full batch: the walk stops after this one, and goes on later */

    return cmd->infos->nelts < NGX_HTTP_AI_GUARD_STORE_BATCH
           ? NGX_OK : NGX_DECLINED;
}


static void
ngx_http_ai_guard_store_pushed(void *data, redisReply *reply)
{
    ngx_http_ai_guard_store_cmd_t *cmd = data;

    ngx_http_ai_guard_store_syncer_t  *sy;

    sy = &ngx_http_ai_guard_store_syncer;
    sy->pushing = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        ngx_http_ai_guard_store_mark(sy->amcf->store, cmd->from);

    } else {
        /* the next batch at once, if there is one */
        ngx_http_ai_guard_store_again();
    }

    ngx_destroy_pool(cmd->pool);
}


/* a change's four arguments: its field (a key's id), seq, deleted, line */

static ngx_int_t
ngx_http_ai_guard_store_args(ngx_array_t *args,
    ngx_http_ai_guard_key_info_t *info, ngx_uint_t deleted)
{
    u_char     *p;
    ngx_str_t  *arg;

    arg = ngx_array_push_n(args, 4);
    p = ngx_pnalloc(args->pool, sizeof(NGX_HTTP_AI_GUARD_STORE_TFIELD) - 1
                                + NGX_HTTP_AI_GUARD_STORE_TNAME
                                + NGX_INT64_LEN + NGX_HTTP_AI_GUARD_LINE_MAX);

    if (arg == NULL || p == NULL) {
        return NGX_ERROR;
    }

    if (info->tenant_rec) {
        arg[0].data = p;
        p = ngx_cpymem(p, NGX_HTTP_AI_GUARD_STORE_TFIELD,
                       sizeof(NGX_HTTP_AI_GUARD_STORE_TFIELD) - 1);
        p = ngx_cpymem(p, info->key.tenant.data,
                       ngx_min(info->key.tenant.len,
                               NGX_HTTP_AI_GUARD_STORE_TNAME));
        arg[0].len = p - arg[0].data;

    } else {
        arg[0].data = info->key.id.data;
        arg[0].len = info->key.id.len;
    }

    arg[1].data = p;
    p = ngx_sprintf(p, "%uL", info->seq);
    arg[1].len = p - arg[1].data;

    arg[2].data = (u_char *) (deleted ? "1" : "0");
    arg[2].len = 1;

    arg[3].data = p;
    p = ngx_http_ai_guard_store_line(p, info, deleted);
    arg[3].len = p - arg[3].data;

    return NGX_OK;
}


/* the script with the store's four keys, then "args" */

static ngx_int_t
ngx_http_ai_guard_store_send(ngx_http_ai_guard_store_cmd_t *cmd,
    ngx_uint_t script, ngx_http_ai_guard_redis_done_pt done,
    ngx_array_t *args)
{
    int                                argc;
    size_t                            *len;
    ngx_str_t                         *arg, *prefix;
    ngx_uint_t                         i, nkeys;
    const char                       **argv;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_store_syncer_t  *sy;

    sy = &ngx_http_ai_guard_store_syncer;
    rcf = sy->rcf;
    prefix = &rcf->prefix;

    nkeys = sizeof(ngx_http_ai_guard_store_keys) / sizeof(char *);
    argc = (int) (3 + nkeys + args->nelts);

    argv = ngx_palloc(cmd->pool, argc * sizeof(char *));
    len = ngx_palloc(cmd->pool, argc * sizeof(size_t));

    if (argv == NULL || len == NULL) {
        return NGX_ERROR;
    }

    /* argv[0] and argv[1] are the transport's: EVALSHA and the SHA1 */

    argv[2] = (char *) "4";
    len[2] = 1;

    for (i = 0; i < nkeys; i++) {
        len[3 + i] = prefix->len + ngx_strlen(ngx_http_ai_guard_store_keys[i]);
        argv[3 + i] = ngx_pnalloc(cmd->pool, len[3 + i]);

        if (argv[3 + i] == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf((u_char *) argv[3 + i], "%V%s", prefix,
                    ngx_http_ai_guard_store_keys[i]);
    }

    arg = args->elts;

    for (i = 0; i < args->nelts; i++) {
        argv[3 + nkeys + i] = (char *) arg[i].data;
        len[3 + nkeys + i] = arg[i].len;
    }

    return ngx_http_ai_guard_redis_eval(script, done, cmd, NULL, NULL, NULL,
                                        argc, argv, len,
                                        ngx_max(rcf->timeout,
                                            NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE));
}


/* a command's pool, which its reply's handler destroys */

static ngx_http_ai_guard_store_cmd_t *
ngx_http_ai_guard_store_cmd(void)
{
    ngx_pool_t                     *pool;
    ngx_http_ai_guard_store_cmd_t  *cmd;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    cmd = ngx_pcalloc(pool, sizeof(ngx_http_ai_guard_store_cmd_t));
    if (cmd == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    cmd->pool = pool;

    return cmd;
}


/* worker 0 goes on at once rather than at the next tick */

static void
ngx_http_ai_guard_store_again(void)
{
    ngx_http_ai_guard_store_syncer_t  *sy;

    sy = &ngx_http_ai_guard_store_syncer;

    if (ngx_worker != 0 || ngx_exiting) {
        return;
    }

    /* ngx_add_timer() keeps a timer set less than 300 ms off: reset it */

    if (sy->poll.timer_set) {
        ngx_del_timer(&sy->poll);
    }

    ngx_add_timer(&sy->poll, 1);
}
