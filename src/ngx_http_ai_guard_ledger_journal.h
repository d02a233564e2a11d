
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_LEDGER_JOURNAL_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_LEDGER_JOURNAL_H_INCLUDED_


/*
 * The local ledger's journal (ai_guard_journal, a node without Redis):
 * what the ledger's rows gained, a frame a request, so that a restart
 * (or a crash) finds them again.  Its frames are the outbox journal's
 * (src/ngx_http_ai_guard_jlog.h); a record's scope is the key of the
 * ledger row it went to.  A snapshot is the ledger's rows as U frames
 * and the requests in flight as B frames; the tail after it is what
 * the rows gained since.
 *
 * This file keeps the files, its zone (the journal's state and the
 * requests begun, not yet settled) and the frames; the ledger
 * (src/ngx_http_ai_guard_ledger.c) owns the rows, calls in here under
 * its mutex and puts its rows into a snapshot.  Lock order: the
 * ledger's mutex, then the journal's.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_jlog.h"


typedef struct ngx_http_ai_guard_ljournal_s  ngx_http_ai_guard_ljournal_t;


char *ngx_http_ai_guard_ljournal_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_guard_ljournal_init(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf);

/* a request admitted with a row: its estimate, begun */
void ngx_http_ai_guard_ljournal_begin(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log, ngx_http_ai_guard_ctx_t *ctx, u_char *key, size_t len);

/* under the ledger's mutex: a request's usage went to the row "key" */
void ngx_http_ai_guard_ljournal_settle(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log, ngx_http_ai_guard_ctx_t *ctx, u_char *key, size_t len);

/* a begun request that billed nothing: its estimate goes */
void ngx_http_ai_guard_ljournal_end(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log, ngx_http_ai_guard_ctx_t *ctx);

/* the master at a start: did this cycle make the zone (and replay) */
ngx_uint_t ngx_http_ai_guard_ljournal_fresh(ngx_http_ai_guard_ljournal_t *lj);
ngx_str_t *ngx_http_ai_guard_ljournal_path(ngx_http_ai_guard_ljournal_t *lj);
u_char *ngx_http_ai_guard_ljournal_load(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log, ngx_http_ai_guard_jlog_replay_t *rp);

/*
 * Under the ledger's mutex: "rows" (U frames, "len" bytes) become the
 * snapshot, with the requests in flight.  ..._due(): the tail has grown
 * past the snapshot's size and 1 MB, or a write failed.
 */
void ngx_http_ai_guard_ljournal_snapshot(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log, u_char *rows, size_t len);
ngx_uint_t ngx_http_ai_guard_ljournal_due(ngx_http_ai_guard_ljournal_t *lj);

/* fsync=batch: worker 0, every 100 ms */
void ngx_http_ai_guard_ljournal_sync(ngx_http_ai_guard_ljournal_t *lj,
    ngx_log_t *log);


#endif /* _NGX_HTTP_AI_GUARD_LEDGER_JOURNAL_H_INCLUDED_ */
