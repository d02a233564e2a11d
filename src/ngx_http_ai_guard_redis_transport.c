
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_redis_transport.h"

#include <hiredis/async.h>


#define NGX_HTTP_AI_GUARD_REDIS_BACKOFF_MIN  50
#define NGX_HTTP_AI_GUARD_REDIS_BACKOFF_MAX  2000

/* the handlers a worker runs as it quits: the outbox's, the lease's */
#define NGX_HTTP_AI_GUARD_REDIS_QUITS        2


/*
 * A command on the wire: malloc()ed, freed when its reply (or the end of
 * the connection) comes.  A command sent for a request's pool is disarmed
 * by that pool's cleanup when the request goes away first, so a late
 * reply touches nothing of the request; its "orphan" handler, when it has
 * one, is called once as the command ends, with the reply only a request
 * gone before it did not read (else NULL), to undo what the command did
 * for nobody and free its data.
 */

typedef struct {
    ngx_event_t                      timer;
    redisAsyncContext               *ac;
    ngx_http_ai_guard_redis_done_pt  handler;
    void                            *data;
    ngx_http_ai_guard_redis_done_pt  orphan;
    void                            *odata;
    ngx_pool_cleanup_t              *cln;
    uint64_t                         start_us;
    int                              argc;
    const char                     **argv;
    size_t                          *argvlen;
    ngx_uint_t                       script;      /* its index + 1; 0: none */
    unsigned                         armed:1;
} ngx_http_ai_guard_redis_cmd_t;


/* one connection a worker */

typedef struct {
    ngx_http_ai_guard_redis_conf_t  *rcf;
    ngx_log_t                       *log;
    redisAsyncContext               *ac;
    ngx_connection_t                *conn;
    ngx_uint_t                       ready;
    ngx_uint_t                       handshake;   /* replies still due */
    ngx_uint_t                       loaded;      /* scripts loaded */
    ngx_msec_t                       backoff;
    ngx_event_t                      reconnect;
    ngx_http_ai_guard_redis_quit_pt  quit[NGX_HTTP_AI_GUARD_REDIS_QUITS];
    ngx_uint_t                       nquit;
    ngx_event_t                     *changed;     /* posted: ready, or not */
    char                           (*sha)[41];    /* a script */

    /* sentinels=: the master they named, and whom to ask next */
    u_char                           master[NGX_SOCKADDR_STRLEN + 1];
    int                              master_port;
    ngx_uint_t                       master_known;
    ngx_uint_t                       asking;      /* a sentinel, now */
    ngx_uint_t                       sentinel;
} ngx_http_ai_guard_redis_worker_t;


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
static void ngx_http_ai_guard_redis_handshake_done(void *data,
    redisReply *reply);
static void ngx_http_ai_guard_redis_script_loaded(void *data,
    redisReply *reply);
static ngx_int_t ngx_http_ai_guard_redis_ask(redisAsyncContext *ac);
static void ngx_http_ai_guard_redis_asked(void *data, redisReply *reply);
static void ngx_http_ai_guard_redis_role(void *data, redisReply *reply);
static ngx_int_t ngx_http_ai_guard_redis_arm(ngx_pool_t *pool,
    ngx_pool_cleanup_t **cln);
static ngx_http_ai_guard_redis_cmd_t *ngx_http_ai_guard_redis_command(
    ngx_http_ai_guard_redis_done_pt handler, void *data,
    ngx_http_ai_guard_redis_done_pt orphan, void *odata, ngx_uint_t script,
    int argc, const char **argv, size_t *argvlen, ngx_msec_t timeout);
static void ngx_http_ai_guard_redis_callback(redisAsyncContext *ac,
    void *rp, void *privdata);
static void ngx_http_ai_guard_redis_timeout(ngx_event_t *ev);
static void ngx_http_ai_guard_redis_disarm(void *data);
static uint64_t ngx_http_ai_guard_redis_usec(void);
static void ngx_http_ai_guard_redis_observe(uint64_t us);
static void ngx_http_ai_guard_redis_error(void);
static void ngx_http_ai_guard_redis_outage(const char *why);


static ngx_http_ai_guard_redis_worker_t  ngx_http_ai_guard_redis_w;


const ngx_http_ai_guard_redis_kind_t
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


/*
 * The outbox has a zone of its own, "ai_guard_redis": it never competes
 * with the LRU of the limits, ledger and series.
 */

ngx_int_t
ngx_http_ai_guard_redis_zone(ngx_conf_t *cf,
    ngx_http_ai_guard_redis_conf_t *rcf)
{
    ngx_str_t  name;

    ngx_str_set(&name, "ai_guard_redis");

    rcf->shm_zone = ngx_shared_memory_add(cf, &name, rcf->outbox,
                                          &ngx_http_ai_guard_module);
    if (rcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    rcf->shm_zone->init = ngx_http_ai_guard_redis_init_zone;
    rcf->shm_zone->data = rcf;

    return NGX_OK;
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
        if (orcf->sh->layout != NGX_HTTP_AI_GUARD_OUTBOX_LAYOUT) {
            return ngx_http_ai_guard_zone_foreign(shm_zone, "redis outbox",
                                                  "outbox=");
        }

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

    rcf->sh->layout = NGX_HTTP_AI_GUARD_OUTBOX_LAYOUT;
    ngx_queue_init(&rcf->sh->outbox);
    ngx_queue_init(&rcf->sh->begun);

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


/*
 * The script registry: an owner registers its Lua while the configuration
 * is read (after ai_guard_redis set amcf->redis) and keeps the index it
 * gets; each connection loads every registered script at its handshake,
 * and ngx_http_ai_guard_redis_eval() runs one by its index.
 */

ngx_int_t
ngx_http_ai_guard_redis_script(ngx_conf_t *cf, const char *lua)
{
    ngx_str_t                       *s;
    ngx_http_ai_guard_main_conf_t   *amcf;
    ngx_http_ai_guard_redis_conf_t  *rcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_guard_module);
    rcf = amcf->redis;

    if (rcf->scripts == NULL) {
        rcf->scripts = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (rcf->scripts == NULL) {
            return NGX_ERROR;
        }
    }

    s = ngx_array_push(rcf->scripts);
    if (s == NULL) {
        return NGX_ERROR;
    }

    s->data = (u_char *) lua;
    s->len = ngx_strlen(lua);

    return rcf->scripts->nelts - 1;
}


/* the worker's connection: made now, and again whenever it is lost */

ngx_int_t
ngx_http_ai_guard_redis_start(ngx_cycle_t *cycle,
    ngx_http_ai_guard_redis_conf_t *rcf)
{
    ngx_uint_t                         n;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    ngx_memzero(w, sizeof(ngx_http_ai_guard_redis_worker_t));

    n = rcf->scripts ? rcf->scripts->nelts : 0;

    w->sha = ngx_pcalloc(cycle->pool, (n + 1) * sizeof(w->sha[0]));
    if (w->sha == NULL) {
        return NGX_ERROR;
    }

    w->rcf = rcf;
    w->log = cycle->log;
    w->backoff = NGX_HTTP_AI_GUARD_REDIS_BACKOFF_MIN;

    w->reconnect.handler = ngx_http_ai_guard_redis_connect;
    w->reconnect.log = cycle->log;
    w->reconnect.data = w;
    w->reconnect.cancelable = 1;

    ngx_http_ai_guard_redis_connect(&w->reconnect);

    return NGX_OK;
}


/*
 * The handlers run when the worker quits, while the connection is still
 * ready: the outbox's last batch goes then, and the node's slices.  The
 * worker exits once their replies are in or their timers fire.
 */

void
ngx_http_ai_guard_redis_on_quit(ngx_http_ai_guard_redis_quit_pt handler)
{
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    if (w->nquit < NGX_HTTP_AI_GUARD_REDIS_QUITS) {
        w->quit[w->nquit++] = handler;
    }
}


/* the event is posted when the connection gets ready or is given up */

void
ngx_http_ai_guard_redis_on_change(ngx_event_t *ev)
{
    ngx_http_ai_guard_redis_w.changed = ev;
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
    ngx_http_ai_guard_redis_addr_t     a, *sentinel;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;
    rcf = w->rcf;

    if (w->ac || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /*
     * With sentinels, the master is asked for whenever it is not known:
     * at the start, and after every connection to it is lost, so that a
     * failover is followed by the next connection.
     */

    a.host = rcf->host;
    a.port = rcf->port;
    w->asking = 0;

    if (rcf->sentinels && !w->master_known) {
        sentinel = rcf->sentinels->elts;
        a = sentinel[w->sentinel % rcf->sentinels->nelts];
        w->asking = 1;

    } else if (rcf->sentinels) {
        a.host = w->master;
        a.port = w->master_port;
    }

    /* a numeric address or a path: no name lookup, no blocking call */

    if (a.port) {
        ac = redisAsyncConnect((char *) a.host, a.port);

    } else {
        ac = redisAsyncConnectUnix((char *) a.host);
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
            for (i = 0; w->ready && i < w->nquit; i++) {
                w->quit[i]();
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

        /*
         * the master lost: ask again; a sentinel that did not name it:
         * ask the next one
         */

        if (!w->asking) {
            w->master_known = 0;

        } else if (!w->master_known) {
            w->sentinel++;
        }

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
    ngx_str_t                         *lua;
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

    if (w->asking) {
        (void) ngx_http_ai_guard_redis_ask(ac);
        return;
    }

    /* the handshake: AUTH, SELECT, the scripts; ready when all answered */

    w->handshake = 0;

    w->loaded = 0;

    if (rcf->sentinels) {

        /* what a sentinel named may be a master no more */

        argv[0] = "ROLE";
        len[0] = 4;

        if (ngx_http_ai_guard_redis_command(ngx_http_ai_guard_redis_role, ac,
                                            NULL, NULL, 0, 1, argv, len,
                                            NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE)
            == NULL)
        {
            return;
        }

        w->handshake++;
    }

    if (rcf->password.len) {
        argv[0] = "AUTH";
        len[0] = 4;
        argv[1] = (char *) rcf->password.data;
        len[1] = rcf->password.len;

        if (ngx_http_ai_guard_redis_command(
                ngx_http_ai_guard_redis_handshake_done, ac, NULL, NULL, 0, 2,
                argv, len,
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

        if (ngx_http_ai_guard_redis_command(
                ngx_http_ai_guard_redis_handshake_done, ac, NULL, NULL, 0, 2,
                argv, len,
                NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE)
            == NULL)
        {
            return;
        }

        w->handshake++;
    }

    /* Redis answers in order: the n-th SCRIPT LOAD reply is script n's */

    lua = rcf->scripts ? rcf->scripts->elts : NULL;

    for (i = 0; rcf->scripts && i < rcf->scripts->nelts; i++) {
        argv[0] = "SCRIPT";
        len[0] = 6;
        argv[1] = "LOAD";
        len[1] = 4;
        argv[2] = (char *) lua[i].data;
        len[2] = lua[i].len;

        if (ngx_http_ai_guard_redis_command(
                ngx_http_ai_guard_redis_script_loaded, ac, NULL, NULL, 0, 3,
                argv, len,
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
ngx_http_ai_guard_redis_handshake_done(void *data, redisReply *reply)
{
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;
    rcf = w->rcf;

    if (data != w->ac || w->ac == NULL) {
        return;
    }

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "ai_guard: redis %V: handshake failed: %s", &rcf->addr,
                      reply ? reply->str : "no reply");
        ngx_http_ai_guard_redis_drop("handshake failed");
        return;
    }

    if (--w->handshake) {
        return;
    }

    w->ready = 1;
    w->backoff = NGX_HTTP_AI_GUARD_REDIS_BACKOFF_MIN;

    if (w->changed) {
        ngx_post_event(w->changed, &ngx_posted_events);
    }

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


static void
ngx_http_ai_guard_redis_script_loaded(void *data, redisReply *reply)
{
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    if (data == w->ac && w->ac != NULL && reply != NULL
        && reply->type != REDIS_REPLY_ERROR)
    {
        if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
            ngx_http_ai_guard_redis_drop("SCRIPT LOAD failed");
            return;
        }

        ngx_memcpy(w->sha[w->loaded], reply->str, 40);
        w->sha[w->loaded][40] = '\0';
        w->loaded++;
    }

    ngx_http_ai_guard_redis_handshake_done(data, reply);
}


/*
 * Asks the sentinel "ac" is connected to where the master is.  The
 * command goes as a handshake's do: posted, with a timer.
 */

static ngx_int_t
ngx_http_ai_guard_redis_ask(redisAsyncContext *ac)
{
    size_t                             len[3];
    const char                        *argv[3];
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    argv[0] = "SENTINEL";
    len[0] = 8;
    argv[1] = "get-master-addr-by-name";
    len[1] = sizeof("get-master-addr-by-name") - 1;
    argv[2] = (char *) w->rcf->addr.data;
    len[2] = w->rcf->addr.len;

    if (ngx_http_ai_guard_redis_command(ngx_http_ai_guard_redis_asked, ac,
                                        NULL, NULL, 0, 3, argv, len,
                                        NGX_HTTP_AI_GUARD_REDIS_HANDSHAKE)
        == NULL)
    {
        return NGX_ERROR;
    }

    if (w->conn && w->conn->write->timer_set) {
        ngx_del_timer(w->conn->write);
    }

    ngx_post_event(w->conn->write, &ngx_posted_events);

    return NGX_OK;
}


/*
 * A sentinel's answer: the master's IP and port.  The connection to the
 * sentinel is then closed and the master's made at once; no answer, or
 * none that names a master (a sentinel that does not monitor it): the
 * next sentinel is asked after the backoff.
 */

static void
ngx_http_ai_guard_redis_asked(void *data, redisReply *reply)
{
#if (NGX_HAVE_INET6)
    u_char                             ip6[16];
#endif
    ngx_int_t                          port;
    redisReply                        *h, *p;
    redisAsyncContext                 *ac;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;
    rcf = w->rcf;
    ac = data;

    if (ac != w->ac || ac == NULL) {
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[0]->len == 0
        || reply->element[0]->len > NGX_SOCKADDR_STRLEN)
    {
        ngx_http_ai_guard_redis_drop("no sentinel names its master");
        return;
    }

    h = reply->element[0];
    p = reply->element[1];

    port = ngx_atoi((u_char *) p->str, p->len);

    /*
     * an IP only: hiredis would resolve a name (sentinels announce names
     * with "resolve-hostnames yes") with a blocking getaddrinfo()
     */

    if (port < 1 || port > 65535
        || (ngx_inet_addr((u_char *) h->str, h->len) == INADDR_NONE
#if (NGX_HAVE_INET6)
            && ngx_inet6_addr((u_char *) h->str, h->len, ip6) != NGX_OK
#endif
           ))
    {
        ngx_http_ai_guard_redis_drop("no sentinel names its master by IP");
        return;
    }

    if (w->master_port != port
        || ngx_strncmp(w->master, h->str, h->len + 1) != 0)
    {
        ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                      "ai_guard: redis sentinel: master \"%V\" is at %s:%i",
                      &rcf->addr, h->str, port);
    }

    ngx_memcpy(w->master, h->str, h->len);
    w->master[h->len] = '\0';
    w->master_port = (int) port;
    w->master_known = 1;

    /* the cleanup of the sentinel's connection schedules the master's */

    w->backoff = NGX_HTTP_AI_GUARD_REDIS_BACKOFF_MIN;
    w->ac = NULL;
    w->ready = 0;

    redisAsyncDisconnect(ac);
}


/* a master no more (a failover the sentinels had not yet told): ask again */

static void
ngx_http_ai_guard_redis_role(void *data, redisReply *reply)
{
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    if (data == w->ac && w->ac != NULL && reply != NULL
        && reply->type == REDIS_REPLY_ARRAY
        && (reply->elements == 0
            || reply->element[0]->type != REDIS_REPLY_STRING
            || reply->element[0]->len != 6
            || ngx_strncmp(reply->element[0]->str, "master", 6) != 0))
    {
        ngx_http_ai_guard_redis_drop("the sentinels' master is a replica");
        return;
    }

    ngx_http_ai_guard_redis_handshake_done(data, reply);
}


/*
 * A command, with the handler called with its reply.  With a pool (a
 * request's), the pool's cleanup disarms the command: a reply after the
 * pool is gone is read and dropped.  A timeout of 0: a command of a
 * pipeline whose last command has the timer.  NGX_DECLINED: not sent
 * (no connection); NGX_ERROR: no memory.
 */

ngx_int_t
ngx_http_ai_guard_redis_send(ngx_http_ai_guard_redis_done_pt handler,
    void *data, ngx_pool_t *pool, int argc, const char **argv,
    size_t *argvlen, ngx_msec_t timeout)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_ai_guard_redis_cmd_t  *cmd;

    if (ngx_http_ai_guard_redis_arm(pool, &cln) != NGX_OK) {
        return NGX_ERROR;
    }

    cmd = ngx_http_ai_guard_redis_command(handler, data, NULL, NULL, 0,
                                          argc, argv, argvlen, timeout);
    if (cmd == NULL) {
        return NGX_DECLINED;
    }

    if (cln) {
        cmd->cln = cln;
        cln->handler = ngx_http_ai_guard_redis_disarm;
        cln->data = cmd;
    }

    return NGX_OK;
}


/*
 * EVALSHA of a registered script, as ngx_http_ai_guard_redis_send() sends
 * a command: argv[0] and argv[1] are the transport's (the command and the
 * script's SHA1), the caller's arguments start at argv[2], with the number
 * of keys.  A server whose script cache was flushed gets the script again.
 */

ngx_int_t
ngx_http_ai_guard_redis_eval(ngx_uint_t script,
    ngx_http_ai_guard_redis_done_pt handler, void *data, ngx_pool_t *pool,
    ngx_http_ai_guard_redis_done_pt orphan, void *odata, int argc,
    const char **argv, size_t *argvlen, ngx_msec_t timeout)
{
    ngx_pool_cleanup_t                *cln;
    ngx_http_ai_guard_redis_cmd_t     *cmd;
    ngx_http_ai_guard_redis_worker_t  *w;

    w = &ngx_http_ai_guard_redis_w;

    if (w->rcf == NULL || w->rcf->scripts == NULL
        || script >= w->rcf->scripts->nelts)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_guard_redis_arm(pool, &cln) != NGX_OK) {
        return NGX_ERROR;
    }

    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = w->sha[script];
    argvlen[1] = 40;

    cmd = ngx_http_ai_guard_redis_command(handler, data, orphan, odata,
                                          script + 1, argc, argv, argvlen,
                                          timeout);
    if (cmd == NULL) {
        return NGX_DECLINED;
    }

    if (cln) {
        cmd->cln = cln;
        cln->handler = ngx_http_ai_guard_redis_disarm;
        cln->data = cmd;
    }

    return NGX_OK;
}


/*
 * The pool's cleanup is taken before the command goes, so that no command
 * is on the wire that a pool going away could not disarm; it stays
 * without a handler until the command is sent.
 */

static ngx_int_t
ngx_http_ai_guard_redis_arm(ngx_pool_t *pool, ngx_pool_cleanup_t **cln)
{
    *cln = NULL;

    if (pool == NULL || ngx_http_ai_guard_redis_w.ac == NULL) {
        return NGX_OK;
    }

    *cln = ngx_pool_cleanup_add(pool, 0);
    if (*cln == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_http_ai_guard_redis_cmd_t *
ngx_http_ai_guard_redis_command(ngx_http_ai_guard_redis_done_pt handler,
    void *data, ngx_http_ai_guard_redis_done_pt orphan, void *odata,
    ngx_uint_t script, int argc, const char **argv, size_t *argvlen,
    ngx_msec_t timeout)
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
    cmd->orphan = orphan;
    cmd->odata = odata;
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

    ngx_str_t                         *lua;
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

            lua = w->rcf->scripts->elts;

            cmd->argv[0] = "EVAL";
            cmd->argvlen[0] = 4;
            cmd->argv[1] = (char *) lua[cmd->script - 1].data;
            cmd->argvlen[1] = lua[cmd->script - 1].len;

            again = ngx_http_ai_guard_redis_command(cmd->handler, cmd->data,
                                                    cmd->orphan, cmd->odata,
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
        cmd->handler(cmd->data, reply);
        reply = NULL;
    }

    if (cmd->orphan) {
        cmd->orphan(cmd->odata, reply);
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


/* "<prefix>l:<scope>:<limit>", and ":<window>" for a quota */

u_char *
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

    if (ngx_http_ai_guard_redis_w.changed) {
        ngx_post_event(ngx_http_ai_guard_redis_w.changed, &ngx_posted_events);
    }

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
