
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_STORE_FILE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_STORE_FILE_H_INCLUDED_


/*
 * The key store on disk (docs/admin.md, "Durable"): a journal a worker
 * appends a line to for each change, and a snapshot the master writes
 * (temp file, fsync, rename) when it fills a new zone from both.
 */

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_admin_body.h"
#include "ngx_http_ai_guard_store.h"


char *ngx_http_ai_guard_state_dir(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_guard_store_journal(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info, ngx_uint_t deleted);
ngx_int_t ngx_http_ai_guard_store_load(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_guard_store_append(ngx_log_t *log, ngx_pool_t *pool,
    ngx_path_t *dir, u_char *buf, size_t len, ngx_uint_t sync);

/*
 * The longest line: the strings escaped, 2 bytes a byte at worst (a
 * control character is refused): about 14.1k with 16 models and 16
 * metadata members of 128-byte names and values, the ten limits, the
 * rest as long.
 */
#define NGX_HTTP_AI_GUARD_LINE_MAX  (NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY)

/* a key's line, as the journal and Redis keep it (never a secret) */
u_char *ngx_http_ai_guard_store_line(u_char *p,
    ngx_http_ai_guard_key_info_t *info, ngx_uint_t deleted);
ngx_int_t ngx_http_ai_guard_store_parse(ngx_pool_t *pool, u_char *line,
    size_t len, ngx_http_ai_guard_key_info_t *out, ngx_uint_t *deleted,
    char **error);

/* ,"limits":{...} of a key's own limits: at most LIMITS_LEN bytes */
#define NGX_HTTP_AI_GUARD_LIMITS_LEN  512

u_char *ngx_http_ai_guard_store_limits(u_char *p, const uint64_t *limits);


#endif /* _NGX_HTTP_AI_GUARD_STORE_FILE_H_INCLUDED_ */
