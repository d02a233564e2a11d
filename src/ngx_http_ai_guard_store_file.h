
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
#include "ngx_http_ai_guard_store.h"


char *ngx_http_ai_guard_state_dir(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_guard_store_journal(ngx_http_request_t *r,
    ngx_http_ai_guard_key_info_t *info, ngx_uint_t deleted);
ngx_int_t ngx_http_ai_guard_store_load(ngx_cycle_t *cycle);

/* ,"limits":{...} of a key's own limits: at most LIMITS_LEN bytes */
#define NGX_HTTP_AI_GUARD_LIMITS_LEN  512

u_char *ngx_http_ai_guard_store_limits(u_char *p, const uint64_t *limits);


#endif /* _NGX_HTTP_AI_GUARD_STORE_FILE_H_INCLUDED_ */
