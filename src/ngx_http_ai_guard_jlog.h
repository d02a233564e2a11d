
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_JLOG_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_JLOG_H_INCLUDED_


/*
 * The journal's bytes: frames, and what a journal replays to.  Pure code
 * (no nginx runtime), so t/unit/jlog_test.c reaches every torn and forged
 * shape of a file.
 *
 * A frame is a 16-byte header (magic 'J', type, payload length, FNV-1a
 * of the type and payload) and the payload, padded to 8 bytes so that a
 * record read back into memory is aligned as the outbox keeps it.  A
 * journal file is a snapshot, then appends:
 *
 *   H  head: generation, node id, the least sequence number to come
 *   R  an outbox record, laid out as src/ngx_http_ai_guard_batch.h says
 *   L  a batch leased: its first record's sequence number and size
 *   B  a request admitted, not yet settled: a record of its estimate
 *      (marked estimated) whose "seq" is the request's begun id
 *   U  a ledger row (ai_guard_journal, no Redis): its requests, then
 *      a record of its sums whose scope is the row's key
 *   S  the snapshot is complete (a file without it is ignored)
 *   R, L, B, A (a batch Redis acknowledged: it leaves the head), and
 *   F (a begun request settled: its id, then its record, as R) and E
 *   (a begun request ended with nothing to record: its id) follow.
 *
 * A begun request that no F or E ends is one a crash took between its
 * admission and its settlement: replay counts it on its estimate.  Its
 * F is one frame, so a request is counted on its estimate or on its
 * real usage, never both.
 *
 * Replay stops at the first frame that is short, forged or out of
 * order: a crash tears at most the last frame, and what came before it
 * stands.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "ngx_http_ai_guard_batch.h"


#define NGX_HTTP_AI_GUARD_JLOG_HEADER   16

#define NGX_HTTP_AI_GUARD_JLOG_HEAD     'H'
#define NGX_HTTP_AI_GUARD_JLOG_REC      'R'
#define NGX_HTTP_AI_GUARD_JLOG_LEASE    'L'
#define NGX_HTTP_AI_GUARD_JLOG_ACK      'A'
#define NGX_HTTP_AI_GUARD_JLOG_SNAP     'S'
#define NGX_HTTP_AI_GUARD_JLOG_BEGUN    'B'
#define NGX_HTTP_AI_GUARD_JLOG_FINISH   'F'
#define NGX_HTTP_AI_GUARD_JLOG_END      'E'
#define NGX_HTTP_AI_GUARD_JLOG_ROW      'U'


typedef struct {
    uint64_t                               gen;
    uint64_t                               node;
    uint64_t                               seq;     /* the first one */
} ngx_http_ai_guard_jlog_head_t;


/* a U frame's payload: the record's strings follow it */

typedef struct {
    uint64_t                               requests;
    ngx_http_ai_guard_batch_rec_t          rec;
} ngx_http_ai_guard_jlog_row_t;


typedef struct {
    uint64_t                               first;
    uint64_t                               n;
} ngx_http_ai_guard_jlog_batch_t;


/*
 * What a file replays to.  The caller gives "recs" and "begun" (and
 * "rows", or NULL where no U frame belongs) room for as many records as
 * ngx_http_ai_guard_jlog_count() says each; replay leaves in "rows" the
 * snapshot's ledger rows, in "recs" the records Redis has not
 * acknowledged, oldest first, and in "begun" the estimates of the
 * requests begun and never settled, pointing into the file's bytes.
 */

typedef struct {
    ngx_http_ai_guard_jlog_head_t          head;
    const ngx_http_ai_guard_batch_rec_t  **recs;
    size_t                                 nrecs;
    const ngx_http_ai_guard_batch_rec_t  **begun;
    size_t                                 nbegun;
    const ngx_http_ai_guard_jlog_row_t   **rows;
    size_t                                 nrows;
    ngx_http_ai_guard_jlog_batch_t         lease;   /* n 0: none */
    size_t                                 end;     /* bytes that stand */
    unsigned                               valid:1; /* a whole snapshot */
} ngx_http_ai_guard_jlog_replay_t;


/* the bytes of a frame of "len" bytes of payload */
size_t ngx_http_ai_guard_jlog_size(size_t len);

/* writes a frame's header at "dst": the payload and padding follow */
void ngx_http_ai_guard_jlog_header(u_char *dst, u_char type,
    const void *payload, size_t len);

/* writes a frame at "dst", ngx_http_ai_guard_jlog_size(len) bytes */
size_t ngx_http_ai_guard_jlog_frame(u_char *dst, u_char type,
    const void *payload, size_t len);

/* the most records (settled or begun) a file can hold */
size_t ngx_http_ai_guard_jlog_count(const u_char *buf, size_t len);

/* "buf" must be 8-aligned (malloc()ed) */
void ngx_http_ai_guard_jlog_replay(const u_char *buf, size_t len,
    ngx_http_ai_guard_jlog_replay_t *rp);


#endif /* _NGX_HTTP_AI_GUARD_JLOG_H_INCLUDED_ */
