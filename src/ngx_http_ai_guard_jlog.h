
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
 *   S  the snapshot is complete (a file without it is ignored)
 *   R, L, and A (a batch Redis acknowledged: it leaves the head) follow.
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


typedef struct {
    uint64_t                               gen;
    uint64_t                               node;
    uint64_t                               seq;     /* the first one */
} ngx_http_ai_guard_jlog_head_t;


typedef struct {
    uint64_t                               first;
    uint64_t                               n;
} ngx_http_ai_guard_jlog_batch_t;


/*
 * What a file replays to.  The caller gives "recs" room for as many
 * records as ngx_http_ai_guard_jlog_count() says; replay leaves there
 * the records Redis has not acknowledged, oldest first, pointing into
 * the file's bytes.
 */

typedef struct {
    ngx_http_ai_guard_jlog_head_t          head;
    const ngx_http_ai_guard_batch_rec_t  **recs;
    size_t                                 nrecs;
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

/* the most records a file can hold */
size_t ngx_http_ai_guard_jlog_count(const u_char *buf, size_t len);

/* "buf" must be 8-aligned (malloc()ed) */
void ngx_http_ai_guard_jlog_replay(const u_char *buf, size_t len,
    ngx_http_ai_guard_jlog_replay_t *rp);


#endif /* _NGX_HTTP_AI_GUARD_JLOG_H_INCLUDED_ */
