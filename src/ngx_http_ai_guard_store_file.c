
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_admin_body.h"
#include "ngx_http_ai_guard_price.h"
#include "ngx_http_ai_guard_store.h"
#include "ngx_http_ai_guard_store_file.h"


#define NGX_HTTP_AI_GUARD_JOURNAL   "keys.journal"
#define NGX_HTTP_AI_GUARD_SNAPSHOT  "keys.snapshot"
#define NGX_HTTP_AI_GUARD_TEMP      "keys.snapshot.tmp"

#define NGX_HTTP_AI_GUARD_READ_BUF  65536


typedef struct {
    ngx_fd_t                       fd;
    ngx_log_t                     *log;
    ngx_str_t                      name;
    u_char                        *buf;
    size_t                         len;
    ngx_uint_t                     failed;
} ngx_http_ai_guard_snapshot_t;


static u_char *ngx_http_ai_guard_store_json(u_char *p, ngx_str_t *name,
    ngx_http_ai_guard_str_t *s);
static ngx_int_t ngx_http_ai_guard_store_read(ngx_cycle_t *cycle,
    ngx_http_ai_guard_zone_t *zone, ngx_str_t *name);
static ngx_int_t ngx_http_ai_guard_store_apply(ngx_cycle_t *cycle,
    ngx_http_ai_guard_zone_t *zone, ngx_pool_t *pool, ngx_str_t *name,
    u_char *line, size_t len, ngx_uint_t n);
static ngx_int_t ngx_http_ai_guard_store_write(
    ngx_http_ai_guard_key_info_t *info, void *data);
static ngx_int_t ngx_http_ai_guard_store_snapshot(ngx_cycle_t *cycle,
    ngx_http_ai_guard_zone_t *zone, ngx_path_t *dir);
static ngx_int_t ngx_http_ai_guard_store_name(ngx_pool_t *pool,
    ngx_path_t *dir, char *file, ngx_str_t *name);
static void ngx_http_ai_guard_store_owner(ngx_cycle_t *cycle, ngx_fd_t fd,
    ngx_str_t *name);


/* ai_guard_state_dir <path>: made at start, owned by the workers' user */

char *
ngx_http_ai_guard_state_dir(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_main_conf_t *amcf = conf;

    ngx_str_t   *value;
    ngx_path_t  *path;

    if (amcf->state_dir) {
        return "is duplicate";
    }

    value = cf->args->elts;

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    path->name = value[1];

    if (path->name.len > 1 && path->name.data[path->name.len - 1] == '/') {
        path->name.len--;
    }

    if (ngx_conf_full_name(cf->cycle, &path->name, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    amcf->state_dir = path;

    if (ngx_add_path(cf, &amcf->state_dir) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A change made by the admin API, on disk before its answer: one line
 * appended to the journal and fsync()ed.  Lines of two workers may land
 * in either order; each carries the change's number, and the load keeps
 * the later.  A write that fails leaves the change in force in memory,
 * and says so: NGX_ERROR.
 */

ngx_int_t
ngx_http_ai_guard_store_journal(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info, ngx_uint_t deleted)
{
    u_char                         *line, *last;
    ngx_http_ai_guard_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

    if (amcf->state_dir == NULL) {
        return NGX_OK;
    }

    line = ngx_pnalloc(r->pool, NGX_HTTP_AI_GUARD_LINE_MAX);
    if (line == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_ai_guard_store_line(line, info, deleted);

    return ngx_http_ai_guard_store_append(r->connection->log, r->pool,
                                          amcf->state_dir, line,
                                          last - line, 1);
}


/*
 * Whole lines appended to the journal in one write(): the admin API's
 * change, fsync()ed before its answer, or a batch of the other nodes'
 * lines from Redis, not fsync()ed (Redis has them: a start reads them
 * again), so that worker 0 never waits for the disk.
 */

ngx_int_t
ngx_http_ai_guard_store_append(ngx_log_t *log, ngx_pool_t *pool,
    ngx_path_t *dir, u_char *buf, size_t len, ngx_uint_t sync)
{
    ssize_t    n;
    ngx_fd_t   fd;
    ngx_str_t  name;

    if (ngx_http_ai_guard_store_name(pool, dir, NGX_HTTP_AI_GUARD_JOURNAL,
                                     &name)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_APPEND, NGX_FILE_CREATE_OR_OPEN,
                       0600);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed: the change is in "
                      "force but not on disk", &name);
        return NGX_ERROR;
    }

    /* one write(): a line is whole or absent, never cut by a kill */

    n = ngx_write_fd(fd, buf, len);

    if (n != (ssize_t) len || (sync && fsync(fd) == -1)) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ai_guard key store: writing \"%V\" failed: the "
                      "change is in force but not on disk", &name);
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &name);
    }

    return NGX_OK;
}


/*
 * init_module: a zone that is new (nginx started, or the store resized)
 * is filled from the snapshot and the journal, then a new snapshot is
 * written and the journal emptied.  A reload adopts the zone as it is.
 */

ngx_int_t
ngx_http_ai_guard_store_load(ngx_cycle_t *cycle)
{
    ngx_fd_t                        fd;
    ngx_str_t                       snapshot, journal;
    ngx_int_t                       rc;
    ngx_http_ai_guard_zone_t       *zone;
    ngx_http_ai_guard_main_conf_t  *amcf;

    if (ngx_test_config) {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_guard_module);

    if (amcf == NULL || amcf->store == NULL || amcf->store->sh == NULL) {
        return NGX_OK;
    }

    zone = amcf->store;

    if (ngx_http_ai_guard_store_ready(zone) != NGX_OK) {
        return NGX_ERROR;
    }

    if (amcf->state_dir == NULL) {
        return NGX_OK;
    }

    if (ngx_http_ai_guard_store_loaded(zone) == NGX_OK) {
        return NGX_OK;
    }

    if (ngx_http_ai_guard_store_name(cycle->pool, amcf->state_dir,
                                     NGX_HTTP_AI_GUARD_SNAPSHOT, &snapshot)
        != NGX_OK
        || ngx_http_ai_guard_store_name(cycle->pool, amcf->state_dir,
                                        NGX_HTTP_AI_GUARD_JOURNAL, &journal)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_ai_guard_store_read(cycle, zone, &snapshot);

    if (rc == NGX_OK) {
        rc = ngx_http_ai_guard_store_read(cycle, zone, &journal);
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_guard_store_snapshot(cycle, zone, amcf->state_dir)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* all of it is in the snapshot now: the journal starts empty */

    fd = ngx_open_file(journal.data, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       0600);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", &journal);
        return NGX_ERROR;
    }

    ngx_http_ai_guard_store_owner(cycle, fd, &journal);

    (void) ngx_close_file(fd);

    return NGX_OK;
}


/* a file's lines, each a key's state or its deletion */

static ngx_int_t
ngx_http_ai_guard_store_read(ngx_cycle_t *cycle,
    ngx_http_ai_guard_zone_t *zone, ngx_str_t *name)
{
    u_char      *buf, *p, *nl, *last;
    size_t       held;
    ssize_t      n;
    ngx_fd_t     fd;
    ngx_int_t    rc;
    ngx_uint_t   line;
    ngx_pool_t  *pool;

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno == NGX_ENOENT) {
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    buf = ngx_alloc(NGX_HTTP_AI_GUARD_READ_BUF, cycle->log);
    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cycle->log);

    if (buf == NULL || pool == NULL) {
        goto done;
    }

    held = 0;
    line = 0;

    for ( ;; ) {
        n = ngx_read_fd(fd, buf + held, NGX_HTTP_AI_GUARD_READ_BUF - held);

        if (n == -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          ngx_read_fd_n " \"%V\" failed", name);
            goto done;
        }

        last = buf + held + n;
        p = buf;

        while ((nl = ngx_strlchr(p, last, '\n')) != NULL) {
            line++;

            if (ngx_http_ai_guard_store_apply(cycle, zone, pool, name, p,
                                              nl - p, line)
                != NGX_OK)
            {
                goto done;
            }

            p = nl + 1;
        }

        held = last - p;

        if (n == 0) {
            break;
        }

        /* a line longer than the buffer is no line of ours */

        if (held == NGX_HTTP_AI_GUARD_READ_BUF) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "ai_guard key store \"%V\": a line over %d "
                          "bytes skipped", name, NGX_HTTP_AI_GUARD_READ_BUF);
            held = 0;
            continue;
        }

        ngx_memmove(buf, p, held);
    }

    /* a last line without its end was being written when nginx stopped */

    if (held) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "ai_guard key store \"%V\": an unfinished last line "
                      "skipped", name);
    }

    rc = NGX_OK;

done:

    if (pool) {
        ngx_destroy_pool(pool);
    }

    if (buf) {
        ngx_free(buf);
    }

    (void) ngx_close_file(fd);

    return rc;
}


static ngx_int_t
ngx_http_ai_guard_store_apply(ngx_cycle_t *cycle,
    ngx_http_ai_guard_zone_t *zone, ngx_pool_t *pool, ngx_str_t *name,
    u_char *line, size_t len, ngx_uint_t n)
{
    char                          *error;
    ngx_int_t                      rc;
    ngx_uint_t                     deleted;
    ngx_http_ai_guard_key_info_t   info;

    rc = ngx_http_ai_guard_store_parse(pool, line, len, &info, &deleted,
                                       &error);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "ai_guard key store \"%V\", line %ui skipped: %s",
                      name, n, error);
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_guard_store_restore(zone, pool, &info, deleted)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "ai_guard key store \"%V\", line %ui: the store has "
                      "no room for its keys: raise ai_guard_key_store's "
                      "size", name, n);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A line of the files (or of Redis) into "info", its strings in the
 * line: NGX_OK; NGX_DECLINED, not a line of ours (*error says why);
 * NGX_ERROR.
 */

ngx_int_t
ngx_http_ai_guard_store_parse(ngx_pool_t *pool, u_char *line, size_t len,
    ngx_http_ai_guard_key_info_t *out, ngx_uint_t *deleted, char **error)
{
    ngx_uint_t                       i, need, tenant;
    ngx_http_ai_guard_key_t         *key;
    ngx_http_ai_guard_key_info_t     info;
    ngx_http_ai_guard_admin_body_t  *b;

    b = ngx_palloc(pool, sizeof(ngx_http_ai_guard_admin_body_t));
    if (b == NULL) {
        return NGX_ERROR;
    }

    /* a line without an id is a tenant's limits (or their removal) */

    tenant = (ngx_http_ai_guard_admin_body_parse(line, len, ~0u, b) == 0
              && !(b->has & NGX_HTTP_AI_GUARD_ADMIN_ID)
              && (b->has & NGX_HTTP_AI_GUARD_ADMIN_TENANT));

    need = NGX_HTTP_AI_GUARD_ADMIN_SEQ
           | (tenant ? (b->deleted ? 0 : NGX_HTTP_AI_GUARD_ADMIN_LIMITS)
                     : NGX_HTTP_AI_GUARD_ADMIN_ID);

    if (b->error[0]
        || (b->has & need) != need
        || (!b->deleted && !tenant
            && !(b->has & NGX_HTTP_AI_GUARD_ADMIN_TENANT
                 && b->has & NGX_HTTP_AI_GUARD_ADMIN_SHA256)))
    {
        *error = b->error[0] ? b->error : "a field missing";
        return NGX_DECLINED;
    }

    ngx_memzero(&info, sizeof(ngx_http_ai_guard_key_info_t));

    key = &info.key;
    info.tenant_rec = tenant;

    key->id.data = b->id.data;
    key->id.len = b->id.len;
    key->tenant.data = b->tenant.data;
    key->tenant.len = b->tenant.len;
    key->tier.data = b->tier.data;
    key->tier.len = b->tier.len;
    key->stripe_customer.data = b->customer.data;
    key->stripe_customer.len = b->customer.len;
    key->expires = b->expires;
    key->disabled = b->disabled ? 1 : 0;
    key->nmodels = b->nmodels;

    if (b->nmodels) {
        key->models = ngx_palloc(pool,
                           b->nmodels * sizeof(ngx_http_ai_guard_str_t));
        if (key->models == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < b->nmodels; i++) {
            key->models[i].data = b->models[i].data;
            key->models[i].len = b->models[i].len;
        }
    }

    if (ngx_http_ai_guard_store_metadata(pool, &info, b) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memcpy(key->digest, b->digest, NGX_HTTP_AI_GUARD_DIGEST_LEN);
    ngx_memcpy(info.old_digest, b->old_digest, NGX_HTTP_AI_GUARD_DIGEST_LEN);
    info.has_old = (b->has & NGX_HTTP_AI_GUARD_ADMIN_OLD_SHA256) ? 1 : 0;
    info.grace_until = b->old_until;
    info.created = b->created;
    info.seq = b->seq;

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        info.limits[i] = b->limits[i];
    }

    *out = info;
    *deleted = b->deleted ? 1 : 0;

    return NGX_OK;
}


/* temp file, fsync, rename, fsync of the directory: never half a file */

static ngx_int_t
ngx_http_ai_guard_store_snapshot(ngx_cycle_t *cycle,
    ngx_http_ai_guard_zone_t *zone, ngx_path_t *dir)
{
    ngx_fd_t                      dfd;
    ngx_int_t                     rc;
    ngx_str_t                     name;
    ngx_pool_t                   *pool;
    ngx_http_ai_guard_snapshot_t  s;

    ngx_memzero(&s, sizeof(ngx_http_ai_guard_snapshot_t));

    if (ngx_http_ai_guard_store_name(cycle->pool, dir,
                                     NGX_HTTP_AI_GUARD_TEMP, &s.name)
        != NGX_OK
        || ngx_http_ai_guard_store_name(cycle->pool, dir,
                                        NGX_HTTP_AI_GUARD_SNAPSHOT, &name)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    s.log = cycle->log;
    s.buf = ngx_alloc(NGX_HTTP_AI_GUARD_READ_BUF, cycle->log);
    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cycle->log);

    s.fd = ngx_open_file(s.name.data, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                         0600);

    if (s.buf == NULL || pool == NULL || s.fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "ai_guard key store: cannot write \"%V\"", &s.name);
        rc = NGX_ERROR;
        goto done;
    }

    rc = ngx_http_ai_guard_store_each(zone, pool,
                                      ngx_http_ai_guard_store_write, &s);

    if (rc == NGX_OK && s.len
        && ngx_write_fd(s.fd, s.buf, s.len) != (ssize_t) s.len)
    {
        rc = NGX_ERROR;
    }

    if (rc != NGX_OK || s.failed || fsync(s.fd) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "ai_guard key store: writing \"%V\" failed", &s.name);
        rc = NGX_ERROR;
        goto done;
    }

    ngx_http_ai_guard_store_owner(cycle, s.fd, &name);

    if (ngx_rename_file(s.name.data, name.data) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      ngx_rename_file_n " \"%V\" to \"%V\" failed",
                      &s.name, &name);
        rc = NGX_ERROR;
        goto done;
    }

    /* the rename itself is durable once its directory is */

    dfd = ngx_open_file(dir->name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (dfd != NGX_INVALID_FILE) {
        (void) fsync(dfd);
        (void) ngx_close_file(dfd);
    }

done:

    if (s.fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(s.fd);
    }

    if (pool) {
        ngx_destroy_pool(pool);
    }

    if (s.buf) {
        ngx_free(s.buf);
    }

    return rc;
}


static ngx_int_t
ngx_http_ai_guard_store_write(ngx_http_ai_guard_key_info_t *info,
    void *data)
{
    ngx_http_ai_guard_snapshot_t *s = data;

    if (NGX_HTTP_AI_GUARD_READ_BUF - s->len < NGX_HTTP_AI_GUARD_LINE_MAX) {
        if (ngx_write_fd(s->fd, s->buf, s->len) != (ssize_t) s->len) {
            s->failed = 1;
            return NGX_ERROR;
        }

        s->len = 0;
    }

    s->len = ngx_http_ai_guard_store_line(s->buf + s->len, info, 0)
             - s->buf;

    return NGX_OK;
}


/*
 * A line of the files: what the admin API shows of a key, with its
 * digests, times as seconds, and the change's number; never a secret.
 */

u_char *
ngx_http_ai_guard_store_line(u_char *p, ngx_http_ai_guard_key_info_t *info,
    ngx_uint_t deleted)
{
    ngx_str_t                 name;
    ngx_tm_t                  tm;
    ngx_uint_t                i;
    ngx_http_ai_guard_key_t  *key;

    key = &info->key;

    p = ngx_sprintf(p, "{\"seq\":%uL", info->seq);

    if (info->tenant_rec) {
        /* a tenant's limits: no id; removed, or the limits it has */

        ngx_str_set(&name, "tenant");
        p = ngx_http_ai_guard_store_json(p, &name, &key->tenant);

        if (deleted) {
            return ngx_cpymem(p, ",\"deleted\":true}\n",
                              sizeof(",\"deleted\":true}\n") - 1);
        }

        p = ngx_http_ai_guard_store_limits(p, info->limits);

        return ngx_cpymem(p, "}\n", 2);
    }

    ngx_str_set(&name, "id");
    p = ngx_http_ai_guard_store_json(p, &name, &key->id);

    if (deleted) {
        return ngx_cpymem(p, ",\"deleted\":true}\n",
                          sizeof(",\"deleted\":true}\n") - 1);
    }

    ngx_str_set(&name, "tenant");
    p = ngx_http_ai_guard_store_json(p, &name, &key->tenant);

    if (key->tier.len) {
        ngx_str_set(&name, "tier");
        p = ngx_http_ai_guard_store_json(p, &name, &key->tier);
    }

    if (key->stripe_customer.len) {
        ngx_str_set(&name, "stripe_customer");
        p = ngx_http_ai_guard_store_json(p, &name, &key->stripe_customer);
    }

    if (key->nmodels) {
        p = ngx_cpymem(p, ",\"models\":[", sizeof(",\"models\":[") - 1);

        for (i = 0; i < key->nmodels; i++) {
            if (i) {
                *p++ = ',';
            }

            *p++ = '"';
            p = (u_char *) ngx_escape_json(p, key->models[i].data,
                                           key->models[i].len);
            *p++ = '"';
        }

        *p++ = ']';
    }

    if (info->nmeta) {
        p = ngx_cpymem(p, ",\"metadata\":{", sizeof(",\"metadata\":{") - 1);

        for (i = 0; i < 2 * info->nmeta; i++) {
            if (i) {
                *p++ = (i % 2) ? ':' : ',';
            }

            *p++ = '"';
            p = (u_char *) ngx_escape_json(p, info->meta[i].data,
                                           info->meta[i].len);
            *p++ = '"';
        }

        *p++ = '}';
    }

    if (key->expires) {
        ngx_gmtime((time_t) key->expires, &tm);
        p = ngx_sprintf(p, ",\"expires\":\"%4d-%02d-%02dT%02d:%02d:%02dZ\"",
                        tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                        tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
    }

    if (key->disabled) {
        p = ngx_cpymem(p, ",\"disabled\":true",
                       sizeof(",\"disabled\":true") - 1);
    }

    for (i = 1; i < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; i++) {
        if (info->limits[i]) {
            p = ngx_http_ai_guard_store_limits(p, info->limits);
            break;
        }
    }

    p = ngx_sprintf(p, ",\"created\":%L,\"sha256\":\"", info->created);
    p = ngx_hex_dump(p, key->digest, NGX_HTTP_AI_GUARD_DIGEST_LEN);

    if (info->has_old) {
        p = ngx_cpymem(p, "\",\"old_sha256\":\"",
                       sizeof("\",\"old_sha256\":\"") - 1);
        p = ngx_hex_dump(p, info->old_digest, NGX_HTTP_AI_GUARD_DIGEST_LEN);
        p = ngx_sprintf(p, "\",\"old_until\":%L", info->grace_until);

    } else {
        *p++ = '"';
    }

    return ngx_cpymem(p, "}\n", 2);
}


/*
 * A key's own limits as the API shows them and the files keep them, by
 * the names and in the units of ai_guard_tier: counts, and budgets as
 * exact USD strings (a pico-USD is read back as it was).
 */

u_char *
ngx_http_ai_guard_store_limits(u_char *p, const uint64_t *limits)
{
    ngx_uint_t   k, n;

    p = ngx_cpymem(p, ",\"limits\":{", sizeof(",\"limits\":{") - 1);

    n = 0;

    for (k = 1; k < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; k++) {
        if (limits[k] == 0) {
            continue;
        }

        p = ngx_sprintf(p, "%s\"%s\":", n++ ? "," : "",
                        ngx_http_ai_guard_limit_name(k));

        if (ngx_http_ai_guard_limit_unit(k) == 3) {
            *p++ = '"';
            p = ngx_http_ai_guard_usd_format(p, (int64_t) limits[k]);
            *p++ = '"';

        } else {
            p = ngx_sprintf(p, "%uL", limits[k]);
        }
    }

    *p++ = '}';

    return p;
}


static u_char *
ngx_http_ai_guard_store_json(u_char *p, ngx_str_t *name,
    ngx_http_ai_guard_str_t *s)
{
    p = ngx_sprintf(p, ",\"%V\":\"", name);
    p = (u_char *) ngx_escape_json(p, s->data, s->len);
    *p++ = '"';

    return p;
}


static ngx_int_t
ngx_http_ai_guard_store_name(ngx_pool_t *pool, ngx_path_t *dir, char *file,
    ngx_str_t *name)
{
    size_t  len;

    len = ngx_strlen(file);

    name->len = dir->name.len + 1 + len;
    name->data = ngx_pnalloc(pool, name->len + 1);
    if (name->data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name->data, "%V/%s%Z", &dir->name, file);

    return NGX_OK;
}


/* a file the master made is the workers' to append to */

static void
ngx_http_ai_guard_store_owner(ngx_cycle_t *cycle, ngx_fd_t fd,
    ngx_str_t *name)
{
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (geteuid() != 0 || ccf->user == (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        return;
    }

    if (fchown(fd, ccf->user, (gid_t) -1) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "fchown(\"%V\") failed", name);
    }
}
