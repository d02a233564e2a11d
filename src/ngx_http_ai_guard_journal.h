
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_JOURNAL_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_JOURNAL_H_INCLUDED_


/*
 * A journal on disk, the outbox's (ai_guard_redis journal=) or the local
 * ledger's (ai_guard_journal): two files, <path>.0 and <path>.1, opened
 * by the master as nginx opens its logs, so the workers append through
 * descriptors they inherit whatever user they run as.  One file is
 * active (the owner's zone says which); a rewrite writes the other and
 * makes it active.  The caller holds its owner's mutex for every call
 * but the load and the sync: the journal's order is the owner's.  The
 * frames are src/ngx_http_ai_guard_jlog.h's.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_jlog.h"


#define NGX_HTTP_AI_GUARD_JOURNAL_OFF      0
#define NGX_HTTP_AI_GUARD_JOURNAL_BATCH    1
#define NGX_HTTP_AI_GUARD_JOURNAL_ALWAYS   2


ngx_int_t ngx_http_ai_guard_journal_fsync(ngx_str_t *s, ngx_uint_t *fsync);
ngx_int_t ngx_http_ai_guard_journal_open(ngx_conf_t *cf,
    ngx_http_ai_guard_journal_t *j);
void ngx_http_ai_guard_journal_append(ngx_http_ai_guard_journal_t *j,
    ngx_log_t *log, u_char type, const void *payload, size_t len);
ngx_int_t ngx_http_ai_guard_journal_rewrite(
    ngx_http_ai_guard_journal_t *j, ngx_log_t *log, uint64_t gen,
    u_char *buf, size_t len);
u_char *ngx_http_ai_guard_journal_load(ngx_http_ai_guard_journal_t *j,
    ngx_log_t *log, ngx_http_ai_guard_jlog_replay_t *rp);
void ngx_http_ai_guard_journal_sync(ngx_http_ai_guard_journal_t *j,
    ngx_log_t *log);


#endif /* _NGX_HTTP_AI_GUARD_JOURNAL_H_INCLUDED_ */
