
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_jlog.h"
#include "ngx_http_ai_guard_journal.h"


/* a journal larger than this is not one this code wrote */
#define NGX_HTTP_AI_GUARD_JOURNAL_MAX      (1024 * 1024 * 1024)


static void ngx_http_ai_guard_journal_failed(
    ngx_http_ai_guard_journal_t *j, ngx_log_t *log, ngx_err_t err,
    const char *what, ngx_uint_t i);
static u_char *ngx_http_ai_guard_journal_read(
    ngx_http_ai_guard_journal_t *j, ngx_log_t *log, ngx_uint_t i,
    size_t *len);


/* a journal's fsync policy: "off", "batch" or "always" */

ngx_int_t
ngx_http_ai_guard_journal_fsync(ngx_str_t *s, ngx_uint_t *fsync)
{
    if (s->len == 3 && ngx_strncmp(s->data, "off", 3) == 0) {
        *fsync = NGX_HTTP_AI_GUARD_JOURNAL_OFF;

    } else if (s->len == 5 && ngx_strncmp(s->data, "batch", 5) == 0) {
        *fsync = NGX_HTTP_AI_GUARD_JOURNAL_BATCH;

    } else if (s->len == 6 && ngx_strncmp(s->data, "always", 6) == 0) {
        *fsync = NGX_HTTP_AI_GUARD_JOURNAL_ALWAYS;

    } else {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * At the configuration, by the master (root, as a rule): the files are
 * made 0600 in a directory that must exist, and the workers write
 * through the descriptors they inherit, as they write nginx's logs.
 */

ngx_int_t
ngx_http_ai_guard_journal_open(ngx_conf_t *cf,
    ngx_http_ai_guard_journal_t *j)
{
    u_char                   *name;
    ngx_uint_t                i;
    ngx_pool_cleanup_t       *cln;
    ngx_pool_cleanup_file_t  *clnf;

    if (ngx_conf_full_name(cf->cycle, &j->path, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < 2; i++) {
        name = ngx_pnalloc(cf->pool, j->path.len + sizeof(".0"));
        if (name == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(name, "%V.%ui%Z", &j->path, i);

        cln = ngx_pool_cleanup_add(cf->pool, sizeof(ngx_pool_cleanup_file_t));
        if (cln == NULL) {
            return NGX_ERROR;
        }

        j->fd[i] = ngx_open_file(name, NGX_FILE_RDWR,
                                    NGX_FILE_CREATE_OR_OPEN | O_APPEND, 0600);

        if (j->fd[i] == NGX_INVALID_FILE) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "%s: cannot open journal \"%s\": "
                               "its directory must exist and be writable by "
                               "the master process", j->directive, name);
            return NGX_ERROR;
        }

        clnf = cln->data;
        clnf->fd = j->fd[i];
        clnf->name = name;
        clnf->log = cf->log;
        cln->handler = ngx_pool_cleanup_file;
    }

    return NGX_OK;
}


/*
 * One frame onto the active file, in one writev(): with O_APPEND the
 * workers' frames never interleave, and a process killed mid-way leaves
 * at most this frame torn, which ngx_http_ai_guard_journal_load() reads
 * past.  A failed write marks the journal broken until the next rewrite,
 * since a later batch acknowledgement would not match its records.
 */

void
ngx_http_ai_guard_journal_append(ngx_http_ai_guard_journal_t *j,
    ngx_log_t *log, u_char type, const void *payload, size_t len)
{
    u_char                         hdr[NGX_HTTP_AI_GUARD_JLOG_HEADER], pad[8];
    size_t                         size;
    ssize_t                        n;
    ngx_fd_t                       fd;
    struct iovec                   iov[3];
    ngx_http_ai_guard_journal_sh_t  *sh;

    sh = j->sh;

    if (j->path.len == 0 || sh->broken) {
        return;
    }

    fd = j->fd[sh->active];
    size = ngx_http_ai_guard_jlog_size(len);

    ngx_http_ai_guard_jlog_header(hdr, type, payload, len);
    ngx_memzero(pad, sizeof(pad));

    iov[0].iov_base = hdr;
    iov[0].iov_len = NGX_HTTP_AI_GUARD_JLOG_HEADER;
    iov[1].iov_base = (void *) payload;
    iov[1].iov_len = len;
    iov[2].iov_base = pad;
    iov[2].iov_len = size - NGX_HTTP_AI_GUARD_JLOG_HEADER - len;

    n = writev(fd, iov, 3);

    if (n != (ssize_t) size) {
        ngx_http_ai_guard_journal_failed(j, log, n == -1 ? ngx_errno : 0,
                                         "writev()", sh->active);
        return;
    }

    sh->size += size;

    if (j->fsync == NGX_HTTP_AI_GUARD_JOURNAL_ALWAYS
        && fdatasync(fd) == -1)
    {
        ngx_http_ai_guard_journal_failed(j, log, ngx_errno, "fdatasync()",
                                         sh->active);
    }
}


/*
 * The outbox as it is, "buf" (a snapshot of generation "gen"), becomes
 * the journal: written into the file that is not active, then made
 * active.  A crash before the switch leaves the old file, whole; one
 * after it, the new one, whole: the higher generation wins only with its
 * snapshot's end frame.
 */

ngx_int_t
ngx_http_ai_guard_journal_rewrite(ngx_http_ai_guard_journal_t *j,
    ngx_log_t *log, uint64_t gen, u_char *buf, size_t len)
{
    ssize_t                        n;
    ngx_fd_t                       fd;
    ngx_uint_t                     next;
    ngx_http_ai_guard_journal_sh_t  *sh;

    sh = j->sh;
    next = !sh->active;
    fd = j->fd[next];

    if (ftruncate(fd, 0) == -1) {
        ngx_http_ai_guard_journal_failed(j, log, ngx_errno, "ftruncate()",
                                         next);
        return NGX_ERROR;
    }

    n = write(fd, buf, len);

    if (n != (ssize_t) len) {
        ngx_http_ai_guard_journal_failed(j, log, n == -1 ? ngx_errno : 0,
                                         "write()", next);
        return NGX_ERROR;
    }

    if (j->fsync != NGX_HTTP_AI_GUARD_JOURNAL_OFF
        && fdatasync(fd) == -1)
    {
        ngx_http_ai_guard_journal_failed(j, log, ngx_errno, "fdatasync()",
                                         next);
        return NGX_ERROR;
    }

    sh->active = next;
    sh->gen = gen;
    sh->size = len;
    sh->snap = len;

    /*
     * the old one holds nothing the new one lacks; left whole, it is
     * the older generation, which a start does not replay
     */

    if (ftruncate(j->fd[!next], 0) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "ai_guard: ftruncate() of %s \"%V\" failed",
                      j->what, &j->path);
    }

    if (sh->broken) {
        sh->broken = 0;
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "ai_guard: %s \"%V\" is written again",
                      j->what, &j->path);
    }

    return NGX_OK;
}


/*
 * At a start, by the master: the file of the higher generation with a
 * whole snapshot is replayed into "rp"; the bytes returned (NULL: none
 * stand) back its records and are the caller's to ngx_free().
 */

u_char *
ngx_http_ai_guard_journal_load(ngx_http_ai_guard_journal_t *j,
    ngx_log_t *log, ngx_http_ai_guard_jlog_replay_t *rp)
{
    u_char                           *buf[2];
    size_t                            len[2], n;
    ngx_uint_t                        i, best;
    ngx_http_ai_guard_jlog_replay_t   r[2];

    best = 2;

    for (i = 0; i < 2; i++) {
        ngx_memzero(&r[i], sizeof(ngx_http_ai_guard_jlog_replay_t));

        buf[i] = ngx_http_ai_guard_journal_read(j, log, i, &len[i]);
        if (buf[i] == NULL) {
            continue;
        }

        n = ngx_http_ai_guard_jlog_count(buf[i], len[i]);

        r[i].recs = ngx_alloc((n + 1) * sizeof(void *), log);
        if (r[i].recs == NULL) {
            continue;
        }

        r[i].begun = ngx_alloc((n + 1) * sizeof(void *), log);
        if (r[i].begun == NULL) {
            continue;
        }

        if (j->rows) {
            r[i].rows = ngx_alloc((n + 1) * sizeof(void *), log);
            if (r[i].rows == NULL) {
                continue;
            }
        }

        ngx_http_ai_guard_jlog_replay(buf[i], len[i], &r[i]);

        if (r[i].valid
            && (best == 2 || r[i].head.gen > r[best].head.gen))
        {
            best = i;
        }
    }

    for (i = 0; i < 2; i++) {
        if (i == best) {
            continue;
        }

        if (r[i].recs) {
            ngx_free(r[i].recs);
        }

        if (r[i].begun) {
            ngx_free(r[i].begun);
        }

        if (r[i].rows) {
            ngx_free(r[i].rows);
        }

        if (buf[i]) {
            ngx_free(buf[i]);
        }
    }

    if (best == 2) {
        return NULL;
    }

    *rp = r[best];
    j->sh->active = best;
    j->sh->gen = rp->head.gen;

    if (rp->end < len[best]) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "ai_guard: %s \"%V.%ui\": %uz bytes past "
                      "the last whole frame are ignored (a write torn by a "
                      "crash)", j->what, &j->path, best,
                      len[best] - rp->end);
    }

    return buf[best];
}


/* fsync=batch: worker 0, each flush interval, outside the zone's mutex */

void
ngx_http_ai_guard_journal_sync(ngx_http_ai_guard_journal_t *j,
    ngx_log_t *log)
{
    ngx_uint_t  i;

    if (j->path.len == 0
        || j->fsync != NGX_HTTP_AI_GUARD_JOURNAL_BATCH)
    {
        return;
    }

    i = j->sh->active;

    if (fdatasync(j->fd[i]) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ai_guard: %s \"%V.%ui\": fdatasync() "
                      "failed", j->what, &j->path, i);
    }
}


static u_char *
ngx_http_ai_guard_journal_read(ngx_http_ai_guard_journal_t *j,
    ngx_log_t *log, ngx_uint_t i, size_t *len)
{
    u_char           *buf;
    ssize_t           n;
    ngx_file_info_t   fi;

    if (ngx_fd_info(j->fd[i], &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ai_guard: %s \"%V.%ui\": fstat() failed",
                      j->what, &j->path, i);
        return NULL;
    }

    *len = (size_t) ngx_file_size(&fi);

    if (*len == 0) {
        return NULL;
    }

    if (*len > NGX_HTTP_AI_GUARD_JOURNAL_MAX) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "ai_guard: %s \"%V.%ui\" is %uz bytes, "
                      "more than any journal this module writes: ignored",
                      j->what, &j->path, i, *len);
        return NULL;
    }

    buf = ngx_alloc(*len, log);
    if (buf == NULL) {
        return NULL;
    }

    n = pread(j->fd[i], buf, *len, 0);

    if (n != (ssize_t) *len) {
        ngx_log_error(NGX_LOG_ALERT, log, n == -1 ? ngx_errno : 0,
                      "ai_guard: %s \"%V.%ui\": pread() failed",
                      j->what, &j->path, i);
        ngx_free(buf);
        return NULL;
    }

    return buf;
}


/*
 * A journal that missed a frame must not be replayed: its records would
 * go out in other batches than the ones Redis applied, under ids Redis
 * has seen.  So both files are emptied (a truncation needs no room on
 * the disk), the appends stop, and the next rewrite, after the next
 * batch, starts a whole journal again.  Meanwhile the usage still goes
 * to Redis; only a crash loses what the outbox held.  One ALERT.
 */

static void
ngx_http_ai_guard_journal_failed(ngx_http_ai_guard_journal_t *j,
    ngx_log_t *log, ngx_err_t err, const char *what, ngx_uint_t i)
{
    ngx_uint_t  k;

    for (k = 0; k < 2; k++) {
        if (ftruncate(j->fd[k], 0) == -1) {
            ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                          "ai_guard: ftruncate() of %s \"%V\" "
                          "failed", j->what, &j->path);
        }
    }

    j->sh->size = 0;

    if (j->sh->broken) {
        return;
    }

    j->sh->broken = 1;

    ngx_log_error(NGX_LOG_ALERT, log, err,
                  "ai_guard: %s \"%V.%ui\": %s failed; the usage it "
                  "held would not survive a crash until the journal is "
                  "rewritten", j->what, &j->path, i, what);
}
