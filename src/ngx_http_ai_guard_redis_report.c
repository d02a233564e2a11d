
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_redis_transport.h"
#include "ngx_http_ai_guard_redis_report.h"


/* the fields of a usage hash a report reads, in HMGET's order */
#define NGX_HTTP_AI_GUARD_REDIS_FIELDS       13


/*
 * A usage report's reads: malloc()ed, freed with the last reply.  The
 * request's pool cleanup sets "request" to NULL: the replies still due
 * are then read and dropped.
 */

typedef struct {
    ngx_http_request_t                *request;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_usage_pt   handler;
    void                              *data;
    ngx_array_t                       *rows;
    ngx_str_t                          tenant;
    ngx_pool_cleanup_t                *cln;
    ngx_uint_t                         pending;
    ngx_uint_t                         failed;
} ngx_http_ai_guard_redis_fetch_t;


static void ngx_http_ai_guard_redis_days_done(void *data, redisReply *reply);
static ngx_uint_t ngx_http_ai_guard_redis_usage_key(
    ngx_http_ai_guard_redis_fetch_t *fetch, redisReply *e);
static void ngx_http_ai_guard_redis_row_done(void *data, redisReply *reply);
static ngx_int_t ngx_http_ai_guard_redis_row(
    ngx_http_ai_guard_redis_fetch_t *fetch, redisReply *reply);
static ngx_int_t ngx_http_ai_guard_redis_int(redisReply *e, int64_t *v);
static void ngx_http_ai_guard_redis_fetch_end(
    ngx_http_ai_guard_redis_fetch_t *fetch);
static void ngx_http_ai_guard_redis_fetch_cleanup(void *data);


static const char  *ngx_http_ai_guard_redis_fields[] = {
    "day", "tenant", "key_id", "model", "stripe_customer", "requests",
    "input_tokens", "output_tokens", "cached_tokens", "estimated_requests",
    "cost_pico_usd", "reasoning_tokens", "cache_write_tokens"
};


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
    ngx_http_ai_guard_main_conf_t     *amcf;
    ngx_http_ai_guard_redis_conf_t    *rcf;
    ngx_http_ai_guard_redis_fetch_t   *fetch;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    rcf = amcf->redis;

    if (rcf == NULL || !ngx_http_ai_guard_redis_up()) {
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
    fetch->rcf = rcf;
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
                                     NULL, (int) n + 1, argv, len,
                                     rcf->timeout)
        != NGX_OK)
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
ngx_http_ai_guard_redis_days_done(void *data, redisReply *reply)
{
    ngx_http_ai_guard_redis_fetch_t  *fetch = data;

    size_t                             len[2 + NGX_HTTP_AI_GUARD_REDIS_FIELDS];
    ngx_msec_t                         timeout;
    ngx_uint_t                         i, j, last;
    const char                        *argv[2 + NGX_HTTP_AI_GUARD_REDIS_FIELDS];
    redisReply                        *e;
    ngx_http_ai_guard_redis_conf_t    *rcf;

    rcf = fetch->rcf;

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
                                         fetch, NULL,
                                         2 + NGX_HTTP_AI_GUARD_REDIS_FIELDS,
                                         argv, len,
                                         (i == last - 1) ? timeout : 0)
            != NGX_OK)
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

    n = fetch->rcf->prefix.len + 2
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
ngx_http_ai_guard_redis_row_done(void *data, redisReply *reply)
{
    ngx_http_ai_guard_redis_fetch_t  *fetch = data;

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

    /* absent (nil, 0) from a row only older nodes wrote */
    row->totals.reasoning = (uint64_t) ngx_max(v[11], 0);
    row->totals.cache_write = (uint64_t) ngx_max(v[12], 0);

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
