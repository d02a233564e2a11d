
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_budget.h"
#include "ngx_http_ai_guard_journal.h"
#include "ngx_http_ai_guard_redis_admit.h"
#include "ngx_http_ai_guard_redis_lease.h"
#include "ngx_http_ai_guard_redis_outbox.h"
#include "ngx_http_ai_guard_redis_sync.h"
#include "ngx_http_ai_guard_redis_transport.h"
#include "ngx_http_ai_guard_store_redis.h"
#include "ngx_http_ai_guard_redis.h"


static ngx_int_t ngx_http_ai_guard_redis_sync_param(
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_str_t *name, ngx_str_t *s,
    ngx_uint_t *lease, ngx_msec_t *ttl, char **must);
static ngx_int_t ngx_http_ai_guard_redis_str_param(ngx_conf_t *cf,
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_str_t *name, ngx_str_t *s,
    char **must);
static ngx_int_t ngx_http_ai_guard_redis_sentinels(ngx_conf_t *cf,
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_str_t *s);
static ngx_int_t ngx_http_ai_guard_redis_addr(ngx_conf_t *cf, ngx_str_t *s,
    u_char **host, int *port, char **err);


/*
 * ai_guard_redis <host:port | unix:/path | master name> [sentinels=]
 *     [password=] [db=] [timeout=]
 *     [sync=strict | lease | <interval>] [lease=] [fail=open | closed]
 *     [prefix=] [outbox=] [replicas=] [journal=<path>]
 *     [journal_fsync=off | batch | always]
 */

char *
ngx_http_ai_guard_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t  *amcf = conf;

    char                            *must, *err;
    u_char                          *p;
    ssize_t                          size;
    ngx_int_t                        n, rc;
    ngx_str_t                       *value, s, name;
    ngx_uint_t                       i, lease;
    ngx_msec_t                       ttl;
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

    lease = 0;
    ttl = NGX_HTTP_AI_GUARD_LEASE_TTL;

    for (i = 2; i < cf->args->nelts; i++) {

        must = "password=, db=, timeout=, sync=, lease=, fail=, prefix=, "
               "outbox=, sentinels=, replicas=, journal= or journal_fsync=";

        p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');
        if (p == NULL) {
            goto unknown;
        }

        name.data = value[i].data;
        name.len = p - value[i].data;
        s.data = p + 1;
        s.len = value[i].data + value[i].len - s.data;

        if (name.len == 2 && ngx_strncmp(name.data, "db", 2) == 0) {
            must = "a database number, 0 or more";
            rcf->db = ngx_atoi(s.data, s.len);
            if (rcf->db == NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (name.len == 7 && ngx_strncmp(name.data, "timeout", 7) == 0) {
            must = "a time above 0, such as 50ms or 1s";
            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            rcf->timeout = n;
            continue;
        }

        rc = ngx_http_ai_guard_redis_sync_param(rcf, &name, &s, &lease,
                                                &ttl, &must);
        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ERROR) {
            goto invalid;
        }

        if (name.len == 4 && ngx_strncmp(name.data, "fail", 4) == 0) {
            must = "\"open\" or \"closed\"";

            if (s.len == 4 && ngx_strncmp(s.data, "open", 4) == 0) {
                rcf->fail_closed = 0;

            } else if (s.len == 6 && ngx_strncmp(s.data, "closed", 6) == 0) {
                rcf->fail_closed = 1;

            } else {
                goto invalid;
            }

            continue;
        }

        if (name.len == 8 && ngx_strncmp(name.data, "replicas", 8) == 0) {
            must = "a number of replicas from 0 to 16";
            n = ngx_atoi(s.data, s.len);
            if (n == NGX_ERROR || n > 16) {
                goto invalid;
            }

            rcf->replicas = n;
            continue;
        }

        if (name.len == 6 && ngx_strncmp(name.data, "outbox", 6) == 0) {
            must = "a size of at least 8 memory pages (32k), such as 1m";
            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
                goto invalid;
            }

            rcf->outbox = size;
            continue;
        }

        rc = ngx_http_ai_guard_redis_str_param(cf, rcf, &name, &s, &must);

        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ERROR) {
            goto invalid;
        }

        goto unknown;
    }

    /* with sentinels=, the first argument names the master */

    err = NULL;

    if (rcf->sentinels == NULL
        && ngx_http_ai_guard_redis_addr(cf, &value[1], &rcf->host,
                                        &rcf->port, &err)
           != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_redis: invalid address \"%V\"%s%s, "
                           "it must be host[:port] or unix:/path, such as "
                           "127.0.0.1:6379, or a master's name with "
                           "sentinels=", &value[1], err ? ": " : "",
                           err ? err : "");
        return NGX_CONF_ERROR;
    }

    amcf->redis = rcf;

    rcf->lease = lease ? ttl : 0;

    if (ngx_http_ai_guard_redis_zone(cf, rcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* each owner registers its script; every connection loads them all */

    if (ngx_http_ai_guard_redis_admit_init(cf) != NGX_OK
        || ngx_http_ai_guard_redis_outbox_init(cf, rcf) != NGX_OK
        || ngx_http_ai_guard_redis_sync_init(cf) != NGX_OK
        || ngx_http_ai_guard_redis_lease_init(cf, rcf) != NGX_OK
        || ngx_http_ai_guard_budget_redis_init(cf) != NGX_OK
        || ngx_http_ai_guard_store_redis_init(cf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

unknown:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "ai_guard_redis %V: unknown parameter \"%V\", it "
                       "must be %s", &value[1], &value[i], must);

    return NGX_CONF_ERROR;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "ai_guard_redis %V: invalid %V \"%V\", it must be "
                       "%s", &value[1], &name, &s, must);

    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_ai_guard_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ai_guard_main_conf_t  *amcf;

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

    if (ngx_http_ai_guard_redis_start(cycle, amcf->redis) != NGX_OK
        || ngx_http_ai_guard_redis_admit_init_process(cycle) != NGX_OK
        || ngx_http_ai_guard_redis_outbox_init_process(cycle) != NGX_OK
        || ngx_http_ai_guard_redis_sync_init_process(cycle) != NGX_OK
        || ngx_http_ai_guard_redis_lease_init_process(cycle) != NGX_OK
        || ngx_http_ai_guard_store_redis_init_process(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * sync= and lease=: NGX_DECLINED, another parameter; NGX_ERROR, an
 * invalid value, "must" says what it must be.  sync=lease takes lease=
 * wherever it is on the line.
 */

static ngx_int_t
ngx_http_ai_guard_redis_sync_param(ngx_http_ai_guard_redis_conf_t *rcf,
    ngx_str_t *name, ngx_str_t *s, ngx_uint_t *lease, ngx_msec_t *ttl,
    char **must)
{
    ngx_int_t  n;

    if (name->len == 5 && ngx_strncmp(name->data, "lease", 5) == 0) {
        *must = "a time of at least 1s, such as 20s";
        n = ngx_parse_time(s, 0);
        if (n == NGX_ERROR || n < 1000) {
            return NGX_ERROR;
        }

        *ttl = n;
        return NGX_OK;
    }

    if (name->len != 4 || ngx_strncmp(name->data, "sync", 4) != 0) {
        return NGX_DECLINED;
    }

    *must = "\"strict\", \"lease\" or an interval of at least 10ms, such "
            "as 200ms";

    rcf->sync = 0;
    *lease = 0;

    if (s->len == 6 && ngx_strncmp(s->data, "strict", 6) == 0) {
        return NGX_OK;
    }

    if (s->len == 5 && ngx_strncmp(s->data, "lease", 5) == 0) {
        *lease = 1;
        return NGX_OK;
    }

    n = ngx_parse_time(s, 0);
    if (n == NGX_ERROR || n < 10) {
        return NGX_ERROR;
    }

    rcf->sync = n;

    return NGX_OK;
}


/*
 * sentinels=, password=, prefix=, journal= and journal_fsync=;
 * NGX_DECLINED: another parameter, NGX_ERROR: an invalid value
 */

static ngx_int_t
ngx_http_ai_guard_redis_str_param(ngx_conf_t *cf,
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_str_t *name, ngx_str_t *s,
    char **must)
{
    if (name->len == 9 && ngx_strncmp(name->data, "sentinels", 9) == 0) {
        *must = "a comma-separated list of sentinels' host:port, such as "
                "10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379";

        return ngx_http_ai_guard_redis_sentinels(cf, rcf, s);
    }

    if (name->len == 8 && ngx_strncmp(name->data, "password", 8) == 0) {
        rcf->password = *s;
        return NGX_OK;
    }

    if (name->len == 6 && ngx_strncmp(name->data, "prefix", 6) == 0) {
        rcf->prefix = *s;
        return NGX_OK;
    }

    if (name->len == 7 && ngx_strncmp(name->data, "journal", 7) == 0) {
        *must = "a file path";
        if (s->len == 0) {
            return NGX_ERROR;
        }

        rcf->journal.path = *s;
        return NGX_OK;
    }

    if (name->len != 13
        || ngx_strncmp(name->data, "journal_fsync", 13) != 0)
    {
        return NGX_DECLINED;
    }

    *must = "\"off\", \"batch\" or \"always\"";

    return ngx_http_ai_guard_journal_fsync(s, &rcf->journal.fsync);
}


/* the sentinels to ask for the master, each an address as the master's */

static ngx_int_t
ngx_http_ai_guard_redis_sentinels(ngx_conf_t *cf,
    ngx_http_ai_guard_redis_conf_t *rcf, ngx_str_t *s)
{
    char                            *err;
    u_char                          *p, *last, *comma;
    ngx_str_t                        one;
    ngx_http_ai_guard_redis_addr_t  *a;

    rcf->sentinels = ngx_array_create(cf->pool, 3,
                                      sizeof(ngx_http_ai_guard_redis_addr_t));
    if (rcf->sentinels == NULL) {
        return NGX_ERROR;
    }

    p = s->data;
    last = s->data + s->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        one.data = p;
        one.len = comma - p;

        a = ngx_array_push(rcf->sentinels);
        if (a == NULL
            || one.len == 0
            || ngx_http_ai_guard_redis_addr(cf, &one, &a->host, &a->port,
                                            &err)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = comma + 1;
    }

    return rcf->sentinels->nelts ? NGX_OK : NGX_ERROR;
}


/*
 * host[:port] or unix:/path.  hiredis 0.14 resolves names with a blocking
 * getaddrinfo(): a name is resolved here, once, and the worker connects
 * by address.
 */

static ngx_int_t
ngx_http_ai_guard_redis_addr(ngx_conf_t *cf, ngx_str_t *s, u_char **host,
    int *port, char **err)
{
    ngx_int_t  n;
    ngx_url_t  u;

    if (s->len > 5 && ngx_strncmp(s->data, "unix:", 5) == 0) {
        *host = ngx_pnalloc(cf->pool, s->len - 5 + 1);
        if (*host == NULL) {
            return NGX_ERROR;
        }

        ngx_cpystrn(*host, s->data + 5, s->len - 5 + 1);
        *port = 0;

        return NGX_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *s;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        *err = u.err;
        return NGX_ERROR;
    }

    *host = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (*host == NULL) {
        return NGX_ERROR;
    }

    n = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, *host,
                      NGX_SOCKADDR_STRLEN, 0);
    (*host)[n] = '\0';
    *port = ngx_inet_get_port(u.addrs[0].sockaddr);

    return NGX_OK;
}


static const char  *ngx_http_ai_guard_redis_le[] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05", "0.1", "0.25", "+Inf"
};


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
            (ngx_uint_t) ngx_http_ai_guard_redis_up());

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
